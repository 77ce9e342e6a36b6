"""Each exercise's instant check: silent on a right answer, plain words on typical wrong ones."""

import math

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from titn_lite.classroom import checks
from titn_lite.classroom.checks import CheckFailed


def attention(q, k, v, mask=None, scale=True, dim=-1):
    scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=dim)
    return weights @ v, weights


def test_attention_check():
    checks.check_attention(attention)
    with pytest.raises(CheckFailed, match=r"^scores are not divided by sqrt\(d_k\)$"):
        checks.check_attention(lambda q, k, v, mask=None: attention(q, k, v, mask, scale=False))
    with pytest.raises(CheckFailed, match="softmax runs over the queries"):
        checks.check_attention(lambda q, k, v, mask=None: attention(q, k, v, mask, dim=-2))
    with pytest.raises(CheckFailed, match="the mask is ignored"):
        checks.check_attention(lambda q, k, v, mask=None: attention(q, k, v))
    with pytest.raises(CheckFailed, match="is not written yet: replace `raise NotImplementedError\\(\\)`"):
        checks.check_attention(lambda q, k, v, mask=None: (_ for _ in ()).throw(NotImplementedError()))


def make_multi_head(pattern):
    class MultiHead(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.to_qkv = nn.Linear(dim, 3 * dim)
            self.to_out = nn.Linear(dim, dim)

        def forward(self, x):
            q, k, v = rearrange(self.to_qkv(x), pattern, qkv=3, h=self.heads)
            return self.to_out(rearrange(attention(q, k, v)[0], "b h n d -> b n (h d)"))
    return MultiHead


def test_multi_head_check():
    checks.check_multi_head(make_multi_head("b n (qkv h d) -> qkv b h n d"))
    with pytest.raises(CheckFailed, match="one head works but four do not: the split into heads is wrong"):
        checks.check_multi_head(make_multi_head("b n (qkv d h) -> qkv b h n d"))


def test_patches_check():
    checks.check_patches(lambda x, p: rearrange(x, "b c (gh p1) (gw p2) -> b (gh gw) (c p1 p2)", p1=p, p2=p))
    with pytest.raises(CheckFailed, match="column-major order"):
        checks.check_patches(lambda x, p: rearrange(x, "b c (gh p1) (gw p2) -> b (gw gh) (c p1 p2)", p1=p, p2=p))
    with pytest.raises(CheckFailed, match=r"ordered \(p1 p2 c\)"):
        checks.check_patches(lambda x, p: rearrange(x, "b c (gh p1) (gw p2) -> b (gh gw) (p1 p2 c)", p1=p, p2=p))
    with pytest.raises(CheckFailed, match=r"patches should be shaped \(batch, patches, channels x p x p\)"):
        checks.check_patches(lambda x, p: x.flatten(2))


def pixel_to_patch(pixels, norm, proj, batch_size, pad=(0, 0, 1, 1), normalise=True):
    flat = rearrange(norm(pixels) if normalise else pixels, "(b p) n d -> b p (n d)", b=batch_size)
    return F.pad(proj(flat), pad)


def test_pixel_to_patch_check():
    checks.check_pixel_to_patch(pixel_to_patch)
    with pytest.raises(CheckFailed, match="^the class-token row is not zero"):
        checks.check_pixel_to_patch(lambda *a: pixel_to_patch(*a, pad=(0, 0, 0, 2)))
    with pytest.raises(CheckFailed, match="^the distillation-token row is not zero"):
        checks.check_pixel_to_patch(lambda *a: pixel_to_patch(*a, pad=(0, 0, 2, 0)))
    with pytest.raises(CheckFailed, match="not normalised"):
        checks.check_pixel_to_patch(lambda *a: pixel_to_patch(*a, normalise=False))


def cutmix(images, labels, alpha, partner, correct=True, source="partner", side_power=0.5, in_place=False,
           fixed_centre=False, uniform=False):
    """The notebook's answer (torchvision's order: lambda, then the centre's x and y; int()
    halves), with switches for the common mistakes."""
    lam = float(torch.rand(())) if uniform else float(
        torch.distributions.Beta(torch.tensor([alpha]), torch.tensor([alpha])).sample(()))
    height, width = images.shape[-2:]
    cx, cy = torch.randint(width, size=(1,)), torch.randint(height, size=(1,))
    if fixed_centre:
        cx, cy = torch.tensor([width // 2]), torch.tensor([height // 2])
    share = (1 - lam) ** side_power
    half_w, half_h = int(0.5 * share * width), int(0.5 * share * height)
    x1, x2 = int(torch.clamp(cx - half_w, min=0)), int(torch.clamp(cx + half_w, max=width))
    y1, y2 = int(torch.clamp(cy - half_h, min=0)), int(torch.clamp(cy + half_h, max=height))
    mixed = images if in_place else images.clone()
    pasted = images[partner] if source == "partner" else images.clone()
    mixed[..., y1:y2, x1:x2] = pasted[..., y1:y2, x1:x2]
    corrected = 1 - (x2 - x1) * (y2 - y1) / (width * height)
    return mixed, labels, labels[partner], lam, corrected if correct else lam


def cutmix_rounded_y_first(images, labels, alpha, partner):
    """Another correct answer: the centre's y drawn before x, sides rounded, lambda drawn last."""
    height, width = images.shape[-2:]
    cy, cx = int(torch.randint(height, ())), int(torch.randint(width, ()))
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    box_h, box_w = round(math.sqrt(1 - lam) * height), round(math.sqrt(1 - lam) * width)
    y1, y2 = max(cy - box_h // 2, 0), min(cy - box_h // 2 + box_h, height)
    x1, x2 = max(cx - box_w // 2, 0), min(cx - box_w // 2 + box_w, width)
    mixed = images.clone()
    mixed[:, :, y1:y2, x1:x2] = images[partner, :, y1:y2, x1:x2]
    return mixed, labels, labels[partner], lam, 1 - (y2 - y1) * (x2 - x1) / (height * width)


def cutmix_box_inside(images, labels, alpha, partner):
    """Another correct answer: the box's corner drawn so that the box always fits (never clipped)."""
    height, width = images.shape[-2:]
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    box_h, box_w = int(math.sqrt(1 - lam) * height), int(math.sqrt(1 - lam) * width)
    y1, x1 = int(torch.randint(height - box_h + 1, ())), int(torch.randint(width - box_w + 1, ()))
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[y1:y1 + box_h, x1:x1 + box_w] = True
    mixed = torch.where(mask, images[partner], images)
    return mixed, labels, labels[partner], lam, 1 - float(mask.float().mean())


def test_cutmix_check_passes_correct_answers_written_differently():
    for answer in (cutmix, cutmix_rounded_y_first, cutmix_box_inside):
        checks.check_cutmix(answer)


def _paste_for(images, labels, partner, lam, square=False):
    """CutMix for a given lambda; ``square``: the mistake square images hide, the width taken
    for both sides of the box."""
    height, width = images.shape[-2:]
    cy, cx = int(torch.randint(height, ())), int(torch.randint(width, ()))
    half_h, half_w = (int(0.5 * math.sqrt(1 - lam) * side) for side in ((width, width) if square else (height, width)))
    y1, y2, x1, x2 = max(cy - half_h, 0), min(cy + half_h, height), max(cx - half_w, 0), min(cx + half_w, width)
    mixed = images.clone()
    mixed[..., y1:y2, x1:x2] = images[partner][..., y1:y2, x1:x2]
    return mixed, labels, labels[partner], lam, 1 - (y2 - y1) * (x2 - x1) / (height * width)


def cutmix_square_box(images, labels, alpha, partner):
    """A mistake that square images hide: the width taken for both sides."""
    return _paste_for(images, labels, partner, float(torch.distributions.Beta(alpha, alpha).sample()), square=True)


def cutmix_unclamped_start(images, labels, alpha, partner):
    """A mistake: the box's start not clamped at 0, so a negative start slices nothing."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    height, width = images.shape[-2:]
    cx, cy = int(torch.randint(width, ())), int(torch.randint(height, ()))
    half_w, half_h = int(0.5 * math.sqrt(1 - lam) * width), int(0.5 * math.sqrt(1 - lam) * height)
    x1, x2, y1, y2 = cx - half_w, min(cx + half_w, width), cy - half_h, min(cy + half_h, height)
    mixed = images.clone()
    mixed[..., y1:y2, x1:x2] = images[partner][..., y1:y2, x1:x2]
    kept = 1 - float((mixed != images).all(1).float().mean())
    return mixed, labels, labels[partner], lam, kept


@pytest.mark.parametrize("answer, message", [
    (lambda i, labels, a, p: _paste_for(i, labels, p, 0.5), "^with alpha = 1 lambda should be uniform"),
    (cutmix_square_box, "^the box .* is too (large|small) for lambda drawn"),
    (cutmix_unclamped_start, "clamp the box's start at 0"),
    (lambda i, labels, a, p: (*cutmix(i, labels, a, p)[:3], torch.full((6,), 0.5), torch.full((6,), 0.5)),
     "^return one lambda drawn and one corrected for the whole batch"),
])
def test_cutmix_check_names_the_subtler_mistakes(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_cutmix(answer)


@pytest.mark.parametrize("mistake, message", [
    (dict(correct=False), "^lambda is not corrected to the pasted area"),
    (dict(source="self"), "^nothing of the partner was pasted"),
    (dict(side_power=1.0), "^the box .* is too small for lambda drawn"),
    (dict(in_place=True), "^your function changed the input images in place"),
    (dict(fixed_centre=True), r"^the box sat in only \d place"),
    (dict(uniform=True), "^with alpha = 50 lambda should stay near 0.5"),
])
def test_cutmix_check_names_each_common_mistake(mistake, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_cutmix(lambda *a: cutmix(*a, **mistake))


def test_cutmix_check_names_answers_of_the_wrong_shape():
    with pytest.raises(CheckFailed, match="return five things"):
        checks.check_cutmix(lambda *a: cutmix(*a)[:4])

    def blended(images, labels, alpha, partner):
        mixed, *rest = cutmix(images, labels, alpha, partner)
        return (0.5 * mixed + 0.5 * images, *rest)

    with pytest.raises(CheckFailed, match="^some pixels come from neither the image nor its partner"):
        checks.check_cutmix(blended)

    def box_per_image(images, labels, alpha, partner):  # each image draws its own box
        pairs = [cutmix(torch.stack([images[i], images[j]]), labels[[i, j]], alpha, torch.tensor([1, 0]))
                 for i, j in enumerate(partner.tolist())]
        return (torch.stack([mixed[0] for mixed, *_ in pairs]), labels, labels[partner], pairs[0][3], pairs[0][4])

    with pytest.raises(CheckFailed, match="^the images got different boxes"):
        checks.check_cutmix(box_per_image)

    with pytest.raises(CheckFailed, match="^the labels are wrong"):
        checks.check_cutmix(lambda *a: (cutmix(*a)[0], a[1], a[1], *cutmix(*a)[3:]))


def hard_loss(class_logits, distill_logits, batch, teacher_logits, alpha=0.5, swap=False, soft=False):
    cutmix_term = batch.lam * F.cross_entropy(class_logits, batch.labels) + (1 - batch.lam) * F.cross_entropy(
        class_logits, batch.partner_labels)
    target = teacher_logits.softmax(1) if soft else teacher_logits.argmax(1)
    teacher_term = F.cross_entropy(distill_logits, target)
    a = 1 - alpha if swap else alpha
    return a * cutmix_term + (1 - a) * teacher_term


def test_hard_distillation_check():
    checks.check_hard_distillation(hard_loss)
    with pytest.raises(CheckFailed, match="alpha weights the wrong term"):
        checks.check_hard_distillation(lambda *a: hard_loss(*a, swap=True))
    with pytest.raises(CheckFailed, match="hard distillation uses its argmax label"):
        checks.check_hard_distillation(lambda *a: hard_loss(*a, soft=True))


def rollout(layers, residual=True, reverse=False):
    result = torch.eye(layers[0].shape[-1])
    for weights in layers:
        step = weights.mean(1)
        if residual:
            step = 0.5 * step + 0.5 * torch.eye(weights.shape[-1])
        result = result @ step if reverse else step @ result
    return result


def test_rollout_check():
    checks.check_rollout(rollout)
    with pytest.raises(CheckFailed, match="the residual path is missing"):
        checks.check_rollout(lambda layers: rollout(layers, residual=False))
    with pytest.raises(CheckFailed, match="multiplied in the wrong order"):
        checks.check_rollout(lambda layers: rollout(layers, reverse=True))


# --- every graded exercise: a second correct answer written differently passes, and each
# mistake its check names is named (the first answers and some mistakes are tested above) ---

def attention_einsum(q, k, v, mask=None):
    """Another correct answer: einsum, a large negative fill instead of -inf, F.softmax."""
    scores = torch.einsum("...qd,...kd->...qk", q, k) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), -1e9)
    weights = F.softmax(scores, dim=-1)
    return torch.einsum("...qk,...kd->...qd", weights, v), weights


def test_attention_check_other_answer_and_remaining_mistakes():
    checks.check_attention(attention_einsum)
    with pytest.raises(CheckFailed, match="^scores are divided by d_k; divide by sqrt"):
        checks.check_attention(lambda q, k, v, mask=None: attention(q / math.sqrt(q.shape[-1]), k, v, mask))
    with pytest.raises(CheckFailed, match="^the weights are returned as the output"):
        checks.check_attention(lambda q, k, v, mask=None: (attention(q, k, v, mask)[1],) * 2)
    with pytest.raises(CheckFailed, match="^attention must return a pair"):
        checks.check_attention(lambda q, k, v, mask=None: attention(q, k, v, mask)[0])
    with pytest.raises(CheckFailed, match="^the output is right but the returned weights are not"):
        checks.check_attention(lambda q, k, v, mask=None: (attention(q, k, v, mask)[0], torch.zeros(1)))
    with pytest.raises(CheckFailed, match="^with a mask the output is wrong"):  # masked after the softmax
        checks.check_attention(lambda q, k, v, mask=None: attention(q, k, v) if mask is None else (
            (attention(q, k, v)[1] * mask) @ v, attention(q, k, v)[1] * mask))


class MultiHeadByHand(make_multi_head("b n (qkv h d) -> qkv b h n d")):
    """Another correct answer: view/permute instead of einops, and PyTorch's fused attention."""

    def forward(self, x):
        b, n, dim = x.shape
        q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, dim))


def test_multi_head_check_other_answer_and_remaining_mistakes():
    checks.check_multi_head(MultiHeadByHand)

    class Renamed(MultiHeadByHand):
        def __init__(self, dim, heads):
            super().__init__(dim, heads)
            self.qkv = self.to_qkv
            del self.to_qkv

    with pytest.raises(CheckFailed, match="^your module's layers must be named to_qkv"):
        checks.check_multi_head(Renamed)

    class NoProjection(MultiHeadByHand):
        def forward(self, x):
            return super().forward(x) - self.to_out.bias + 1.0

    with pytest.raises(CheckFailed, match="^even with one head the output is wrong"):
        checks.check_multi_head(NoProjection)


def test_patches_check_other_answer_and_remaining_mistakes():
    def unfolded(images, p):  # nn.Unfold's (c p1 p2) columns, one per patch, row by row
        return F.unfold(images, kernel_size=p, stride=p).transpose(1, 2)

    checks.check_patches(unfolded)
    with pytest.raises(CheckFailed, match="^each patch holds the right values in the wrong order"):
        checks.check_patches(lambda x, p: unfolded(x, p).flip(-1))
    with pytest.raises(CheckFailed, match="^the patches hold the wrong pixels"):
        checks.check_patches(lambda x, p: unfolded(x, p) + 1)


def test_pixel_to_patch_check_other_answer_and_remaining_mistakes():
    def concatenated(pixels, norm, proj, batch_size):  # zero rows by concatenation instead of F.pad
        patches = proj(norm(pixels).reshape(batch_size, -1, pixels.shape[1] * pixels.shape[2]))
        zero = patches.new_zeros(batch_size, 1, patches.shape[-1])
        return torch.cat([zero, patches, zero], dim=1)

    checks.check_pixel_to_patch(concatenated)
    with pytest.raises(CheckFailed, match=r"^expected shape \(batch, 1 \+ patches \+ 1, patch dim\)"):
        checks.check_pixel_to_patch(lambda *a: pixel_to_patch(*a, pad=(0, 0, 0, 0)))
    with pytest.raises(CheckFailed, match="^the patch rows differ"):
        checks.check_pixel_to_patch(lambda *a: pixel_to_patch(*a) * 2)


def hard_loss_by_hand(class_logits, distill_logits, batch, teacher_logits, alpha):
    """Another correct answer: log-softmax and gathered log-probabilities instead of F.cross_entropy."""
    log_class, log_distill = class_logits.log_softmax(1), distill_logits.log_softmax(1)
    picked = lambda log_p, labels: -log_p.gather(1, labels[:, None]).mean()  # noqa: E731
    cutmix_term = (batch.lam * picked(log_class, batch.labels)
                   + (1 - batch.lam) * picked(log_class, batch.partner_labels))
    return alpha * cutmix_term + (1 - alpha) * picked(log_distill, teacher_logits.argmax(dim=1))


def test_hard_distillation_check_other_answer_and_remaining_mistakes():
    checks.check_hard_distillation(hard_loss_by_hand)

    def own_labels_only(class_logits, distill_logits, batch, teacher_logits, alpha):
        return alpha * F.cross_entropy(class_logits, batch.labels) + (1 - alpha) * F.cross_entropy(
            distill_logits, teacher_logits.argmax(1))

    def teacher_on_class_head(class_logits, distill_logits, batch, teacher_logits, alpha):
        return hard_loss(class_logits, class_logits, batch, teacher_logits, alpha)

    with pytest.raises(CheckFailed, match="^the class head ignores the partner label"):
        checks.check_hard_distillation(own_labels_only)
    with pytest.raises(CheckFailed, match="^the teacher's labels train the class head"):
        checks.check_hard_distillation(teacher_on_class_head)
    with pytest.raises(CheckFailed, match=r"^the loss is .* where eq. 10 gives"):
        checks.check_hard_distillation(lambda *a: hard_loss(*a) + 1)


def test_rollout_check_other_answer_and_remaining_mistakes():
    def rollout_reduced(layers):  # the product written as one reduction, newest layer on the left
        import functools

        eye = torch.eye(layers[0].shape[-1])
        steps = [0.5 * w.mean(dim=1) + 0.5 * eye for w in layers]
        return functools.reduce(lambda acc, step: step @ acc, steps[1:], steps[0])

    checks.check_rollout(rollout_reduced)

    def first_head(layers):
        return rollout([w[:, :1] for w in layers])

    with pytest.raises(CheckFailed, match="^only the first head is used"):
        checks.check_rollout(first_head)
    with pytest.raises(CheckFailed, match="^the rollout differs"):
        checks.check_rollout(lambda layers: rollout(layers) * 2)


def test_interval_checks_print_each_run_interval_with_its_coverage(capsys):
    """A run's intervals are read with their stated coverage; one without a coverage rules out nothing."""
    from titn_lite.results.stats import compare_pairs, seed_results

    results = seed_results({"ref": [80.0, 81.0, 82.0], "a": [81.1, 82.3, 83.0], "b": [79.0, 81.5, 81.0]})
    intervals = [d.interval for d in compare_pairs(results, [("a", "ref"), ("b", "ref")])]
    checks.check_interval_verdict(lambda low, high: 1 if low > 0 else -1 if high < 0 else 0, intervals)
    checks.check_ruled_out(lambda low, high, effect: not low <= effect <= high, intervals, 1.5)
    shown = capsys.readouterr().out
    assert shown.count("simultaneous 97.5% interval (Bonferroni, m = 2)") == 4 and "at that coverage" in shown
    checks.check_ruled_out(lambda low, high, effect: not low <= effect <= high, [(-1.0, 3.0)], 1.5)
    assert "states no coverage, so it rules out nothing" in capsys.readouterr().out
