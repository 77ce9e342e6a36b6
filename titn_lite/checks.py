"""Instant checks for the classroom exercises: each runs a student's function on small
inputs beside the package's, and says in plain words what is wrong.

Every check raises ``AssertionError`` with a diagnosis (nbgrader and
``titn-lite assignments grade`` score a graded cell that raises as 0) and prints a short
confirmation when the answer is right.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from titn_lite.attention import MultiHeadAttention, attention_rollout, scaled_dot_product_attention
from titn_lite.blocks import PatchEmbedding, PixelToPatch
from titn_lite.losses import DistillationLoss
from titn_lite.mixing import MixedBatch


class CheckFailed(AssertionError):
    """A student's answer differs from the package's; the message says how."""


def _close(a: object, b: Tensor, atol: float = 1e-5) -> bool:
    return isinstance(a, Tensor) and a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=atol)


def _run(what: str, call: Callable[[], object]) -> object:
    try:
        return call()
    except NotImplementedError:
        raise CheckFailed(f"{what} is not written yet: replace `raise NotImplementedError()` with your code") from None
    except Exception as error:  # the student's code crashed: say where, in one line
        raise CheckFailed(f"{what} raised {type(error).__name__}: {error}") from None


def _passed(name: str) -> None:
    print(f"✓ {name}: correct")


def check_attention(attention: Callable[..., tuple[Tensor, Tensor]]) -> None:
    """Exercise 01a: ``attention(q, k, v, mask=None) -> (output, weights)`` (eq. 1)."""
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 3, 5, 16).unbind(0)
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    result = _run("your attention", lambda: attention(q, k, v))
    if not (isinstance(result, tuple) and len(result) == 2):
        raise CheckFailed("attention must return a pair: (output, weights)")
    output, weights = result
    expected, expected_weights = scaled_dot_product_attention(q, k, v)
    if not _close(output, expected):
        scores = q @ k.transpose(-2, -1)
        diagnoses = [
            (scores.softmax(-1) @ v, "scores are not divided by sqrt(d_k)"),
            ((scores / 16).softmax(-1) @ v, "scores are divided by d_k; divide by sqrt(d_k) instead"),
            ((scores / 4).softmax(-2) @ v, "the softmax runs over the queries (dim -2); it must run over the keys (dim -1)"),
            ((scores / 4).softmax(-1), "the weights are returned as the output: multiply them by V"),
        ]
        for wrong, message in diagnoses:
            if _close(output, wrong):
                raise CheckFailed(message)
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise CheckFailed(f"the output differs from softmax(QK^T / sqrt(d_k)) V (got shape {shape}, "
                          f"expected {tuple(expected.shape)})")
    if not _close(weights, expected_weights):
        raise CheckFailed("the output is right but the returned weights are not softmax(QK^T / sqrt(d_k))")
    masked_output, masked_weights = _run("your attention with a mask", lambda: attention(q, k, v, mask=mask))
    if not _close(masked_output, scaled_dot_product_attention(q, k, v, mask)[0]):
        if _close(masked_output, expected):
            raise CheckFailed("the mask is ignored: masked keys still get weight (fill their scores with -inf)")
        raise CheckFailed("with a mask the output is wrong: set masked scores to -inf before the softmax")
    _passed("scaled dot-product attention")


def check_multi_head(module_class: Callable[[int, int], nn.Module]) -> None:
    """Exercise 01b: ``module_class(dim, heads)`` with ``to_qkv`` and ``to_out`` Linear layers."""
    torch.manual_seed(0)
    x = torch.randn(2, 6, 16)
    for heads in (1, 4):
        reference = MultiHeadAttention(16, heads)
        ours = _run("building your module", lambda: module_class(16, heads))
        try:
            ours.load_state_dict(reference.state_dict())
        except RuntimeError as error:
            raise CheckFailed("your module's layers must be named to_qkv = Linear(dim, 3 * dim) and "
                              f"to_out = Linear(dim, dim) ({str(error).splitlines()[0]})") from None
        output = _run("your multi-head attention", lambda: ours(x))
        if not _close(output, reference(x)):
            if heads == 4:
                raise CheckFailed("one head works but four do not: the split into heads is wrong; q, k and v "
                                  "each hold `heads` groups of dim / heads features: 'b n (qkv h d) -> qkv b h n d'")
            raise CheckFailed("even with one head the output is wrong: check attention and the output projection")
    _passed("multi-head attention")


def check_patches(to_patches: Callable[[Tensor, int], Tensor]) -> None:
    """Exercise 02: ``to_patches(images, patch_size)``: (B, C, H, W) -> (B, P, C * p * p)."""
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    expected = PatchEmbedding(patch_size=4, in_chans=3, dim=1).to_patches(images)
    patches = _run("your to_patches", lambda: to_patches(images, 4))
    if not isinstance(patches, Tensor) or patches.shape != expected.shape:
        shape = tuple(patches.shape) if isinstance(patches, Tensor) else type(patches).__name__
        raise CheckFailed(f"patches should be shaped (batch, patches, channels x p x p) = {tuple(expected.shape)}, "
                          f"got {shape}")
    if not torch.equal(patches, expected):
        column_major = rearrange(images, "b c (gh p1) (gw p2) -> b (gw gh) (c p1 p2)", p1=4, p2=4)
        channels_last = rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) (p1 p2 c)", p1=4, p2=4)
        if torch.equal(patches, column_major):
            raise CheckFailed("patches are in column-major order; number them row by row, left to right")
        if torch.equal(patches, channels_last):
            raise CheckFailed("the values inside a patch are ordered (p1 p2 c); use (c p1 p2), as nn.Unfold does")
        if torch.equal(patches.sort(-1).values, expected.sort(-1).values):
            raise CheckFailed("each patch holds the right values in the wrong order: flatten as (c p1 p2)")
        raise CheckFailed("the patches hold the wrong pixels: each must be one p x p square of the image")
    _passed("patches")


def check_pixel_to_patch(pixel_to_patch: Callable[..., Tensor]) -> None:
    """Exercise 03: ``pixel_to_patch(pixels, norm, proj, batch_size)``: (B * P, n, d) ->
    (B, 1 + P + 1, D) with zero rows for the class (first) and distillation (last) tokens."""
    torch.manual_seed(0)
    reference = PixelToPatch(num_pixels=4, pixel_dim=6, patch_dim=10, prefix_tokens=1, suffix_tokens=1)
    nn.init.normal_(reference.norm.weight)
    pixels = torch.randn(2 * 9, 4, 6)
    expected = reference(pixels, batch_size=2)
    result = _run("your pixel_to_patch", lambda: pixel_to_patch(pixels, reference.norm, reference.proj, 2))
    if not isinstance(result, Tensor) or result.shape != expected.shape:
        shape = tuple(result.shape) if isinstance(result, Tensor) else type(result).__name__
        raise CheckFailed(f"expected shape (batch, 1 + patches + 1, patch dim) = {tuple(expected.shape)}, got {shape}")
    if not torch.all(result[:, 0] == 0):
        raise CheckFailed("the class-token row is not zero: pad one zero row in front (the class token has no pixels)")
    if not torch.all(result[:, -1] == 0):
        raise CheckFailed("the distillation-token row is not zero: pad one zero row at the end")
    if not _close(result, expected):
        unnormalised = F.pad(reference.proj(rearrange(pixels, "(b p) n d -> b p (n d)", b=2)), (0, 0, 1, 1))
        if _close(result, unnormalised):
            raise CheckFailed("the pixel tokens are not normalised: apply the LayerNorm before flattening")
        raise CheckFailed("the patch rows differ: normalise each pixel, flatten a patch's pixels, then project")
    _passed("pixel-to-patch")


def check_cutmix(cutmix_fn: Callable[..., tuple]) -> None:
    """Exercise 05: ``cutmix_fn(images, labels, alpha, partner)`` -> (mixed, labels, partner
    labels, lambda drawn, lambda corrected).

    Judged by what CutMix must do, not by one order of random draws or one rounding of the
    box, so any correct CutMix passes: lambda follows Beta(alpha, alpha); one box for the
    whole batch, a rectangle inside the image, anywhere in it, with sides about
    sqrt(1 - lambda) of the image's (less where the border clips it); the partner's pixels
    inside, the image's own outside, the input left as it was; the corrected lambda equal
    to the share of the image that is still its own."""
    height, width = 16, 24  # not square: a height taken for the width shows
    # Six images whose pixels are all different numbers, so every pixel tells where it came from.
    images, labels = torch.randperm(6 * height * width).float().reshape(6, 1, height, width), torch.arange(6)
    partner = torch.roll(torch.arange(6), 1)
    original = images.clone()
    drawn_values, places = [], set()
    for seed in range(64):
        torch.manual_seed(seed)
        result = _run("your cutmix", lambda: cutmix_fn(images, labels, 1.0, partner))
        if not torch.equal(images, original):
            raise CheckFailed("your function changed the input images in place: paste into a copy "
                              "(mixed = images.clone()) so the batch you were given stays as it was")
        if not (isinstance(result, tuple) and len(result) == 5):
            raise CheckFailed("return five things: mixed images, labels, partner labels, lambda drawn, lambda corrected")
        mixed, own, other, drawn, lam = result
        if not isinstance(mixed, Tensor) or mixed.shape != images.shape:
            shape = tuple(mixed.shape) if isinstance(mixed, Tensor) else type(mixed).__name__
            raise CheckFailed(f"the mixed images should have the batch's shape {tuple(images.shape)}, got {shape}")
        if not (torch.equal(torch.as_tensor(own), labels) and torch.equal(torch.as_tensor(other), labels[partner])):
            raise CheckFailed("the labels are wrong: return the images' own labels and their partners' labels")
        try:
            drawn, lam = float(drawn), float(lam)
        except (TypeError, ValueError, RuntimeError):
            raise CheckFailed("return one lambda drawn and one corrected for the whole batch, as numbers "
                              "(CutMix uses one box, so one lambda, per batch)") from None
        if not 0 <= drawn <= 1:
            raise CheckFailed(f"lambda drawn is {drawn:.3f}: a draw from Beta(alpha, alpha) lies between 0 and 1")
        from_partner, from_own = mixed == images[partner], mixed == images
        if not torch.all(from_partner | from_own):
            raise CheckFailed("some pixels come from neither the image nor its partner: paste the partner's pixels "
                              "as they are inside the box (blending whole images is MixUp)")
        box = (from_partner & ~from_own).all(dim=1)  # (B, H, W): True where the partner's pixel was pasted
        if not torch.all(box == box[0]):
            raise CheckFailed("the images got different boxes: CutMix pastes one box, at one place, into every "
                              "image of the batch")
        box = box[0]
        rows, cols = box.any(dim=1), box.any(dim=0)
        if not torch.equal(box, rows[:, None] & cols[None, :]):
            raise CheckFailed("the pasted region is not one rectangle: paste images[partner][..., y1:y2, x1:x2]")
        area = int(box.sum())
        kept = 1 - area / (height * width)
        # The sides before clipping; rounding them moves each by a pixel or two.
        side_h, side_w = math.sqrt(1 - drawn) * height, math.sqrt(1 - drawn) * width
        if abs(lam - kept) > 1e-6 and abs(lam - drawn) < 1e-9 and abs(kept - drawn) > 1e-3:
            raise CheckFailed("lambda is not corrected to the pasted area: after clipping, "
                              "lambda = 1 - box area / image area")
        if area == 0 and (lam < 1 - 1e-6 or min(side_h, side_w) >= 4):  # a box this size always shows
            raise CheckFailed(f"nothing of the partner was pasted, yet lambda drawn is {drawn:.3f}: paste "
                              f"images[partner] inside the box (pasting images[...] from the image itself changes "
                              f"nothing), and clamp the box's start at 0 (a negative start slices nothing)")
        if abs(lam - kept) > 1e-6:
            raise CheckFailed(f"lambda corrected is {lam:.3f}, but {100 * kept:.1f}% of the image is still its own: "
                              f"return 1 - the pasted box's share of the image")
        if area:
            box_h, box_w = int(rows.sum()), int(cols.sum())
            ys, xs = rows.nonzero().flatten(), cols.nonzero().flatten()
            clipped_x = int(xs[0]) == 0 or int(xs[-1]) == width - 1
            clipped_y = int(ys[0]) == 0 or int(ys[-1]) == height - 1
            sides = f"sqrt(1 - lambda) of the image's height and width ({side_h:.1f} x {side_w:.1f} here)"
            if box_h > side_h + 2 or box_w > side_w + 2:
                raise CheckFailed(f"the box ({box_h} x {box_w} pixels) is too large for lambda drawn = {drawn:.3f}: "
                                  f"its sides should be {sides}; on this {height} x {width} batch, check that the "
                                  f"height is not taken for the width")
            if (not clipped_y and box_h < side_h - 2) or (not clipped_x and box_w < side_w - 2):
                raise CheckFailed(f"the box ({box_h} x {box_w} pixels) is too small for lambda drawn = {drawn:.3f}: "
                                  f"its sides should be {sides}, so that its area is (1 - lambda) of the image")
            places.add((int(ys[0]) + int(ys[-1]), int(xs[0]) + int(xs[-1])))
        drawn_values.append(drawn)
    mean = sum(drawn_values) / len(drawn_values)
    # Beta(1, 1) is uniform: 64 draws average 0.5 +- 0.04, and reach below 0.15 and above 0.85
    # (each fails to with a chance of 0.85^64, about 3 in 100,000).
    if not (0.35 <= mean <= 0.65 and min(drawn_values) < 0.15 and max(drawn_values) > 0.85):
        raise CheckFailed(f"with alpha = 1 lambda should be uniform on [0, 1], but 64 draws average {mean:.2f} "
                          f"and range from {min(drawn_values):.2f} to {max(drawn_values):.2f}: draw it from "
                          f"Beta(alpha, alpha) on every call")
    if len(places) < 8:
        raise CheckFailed(f"the box sat in only {len(places)} place(s) over 64 draws: draw its centre uniformly "
                          f"over the image")
    for seed in range(16):
        torch.manual_seed(seed)
        drawn = float(_run("your cutmix", lambda: cutmix_fn(images, labels, 50.0, partner))[3])
        if not 0.25 <= drawn <= 0.75:  # Beta(50, 50): 0.5 +- 0.05
            raise CheckFailed(f"with alpha = 50 lambda should stay near 0.5 (Beta(50, 50)), but one draw was "
                              f"{drawn:.3f}: draw lambda from Beta(alpha, alpha) with the alpha you are given")
    _passed("CutMix")


class _FixedTeacher(nn.Module):
    def __init__(self, logits: Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, images: Tensor) -> Tensor:
        return self.logits


def check_hard_distillation(loss_fn: Callable[..., Tensor]) -> None:
    """Exercise 07: ``loss_fn(class_logits, distill_logits, batch, teacher_logits, alpha)`` (eq. 10)."""
    torch.manual_seed(0)
    class_logits, distill_logits, teacher_logits = torch.randn(3, 8, 5).unbind(0)
    batch = MixedBatch(torch.zeros(8, 1, 4, 4), torch.arange(8) % 5, (torch.arange(8) + 2) % 5, 0.7)
    for alpha in (0.5, 0.3):
        expected = DistillationLoss(_FixedTeacher(teacher_logits), "hard", alpha=alpha)((class_logits, distill_logits), batch)
        loss = _run("your loss", lambda: loss_fn(class_logits, distill_logits, batch, teacher_logits, alpha))
        if _close(loss, expected):
            continue
        cutmix_term = batch.lam * F.cross_entropy(class_logits, batch.labels) + (1 - batch.lam) * F.cross_entropy(
            class_logits, batch.partner_labels)
        hard = F.cross_entropy(distill_logits, teacher_logits.argmax(1))
        soft = F.cross_entropy(distill_logits, teacher_logits.softmax(1))
        diagnoses = [
            ((1 - alpha) * cutmix_term + alpha * hard, "alpha weights the wrong term: alpha * CutMix loss + (1 - alpha) * teacher term"),
            (alpha * cutmix_term + (1 - alpha) * soft, "the teacher term uses the teacher's probabilities; hard distillation uses its argmax label"),
            (alpha * F.cross_entropy(class_logits, batch.labels) + (1 - alpha) * hard,
             "the class head ignores the partner label: use the CutMix loss, lam * CE(l1) + (1 - lam) * CE(l2)"),
            (alpha * cutmix_term + (1 - alpha) * F.cross_entropy(class_logits, teacher_logits.argmax(1)),
             "the teacher's labels train the class head; they belong to the distillation head"),
        ]
        for wrong, message in diagnoses:
            if _close(loss, wrong):
                raise CheckFailed(message)
        raise CheckFailed(f"the loss is {float(loss):.4f} where eq. 10 gives {float(expected):.4f} (alpha = {alpha})")
    _passed("hard distillation loss")


def check_rollout(rollout_fn: Callable[[list[Tensor]], Tensor]) -> None:
    """Exercise 09: ``rollout_fn(layers)``, layers of (B, heads, T, T) -> (B, T, T)."""
    torch.manual_seed(0)
    layers = [torch.randn(2, 3, 5, 5).softmax(-1) for _ in range(3)]
    expected = attention_rollout(layers)
    result = _run("your rollout", lambda: rollout_fn(layers))
    if _close(result, expected):
        _passed("attention rollout")
        return
    identity = torch.eye(5)
    no_residual = layers[2].mean(1) @ layers[1].mean(1) @ layers[0].mean(1)
    reversed_order = [0.5 * w.mean(1) + 0.5 * identity for w in layers]
    wrong_order = reversed_order[0] @ reversed_order[1] @ reversed_order[2]
    first_head = [0.5 * w[:, 0] + 0.5 * identity for w in layers]
    if _close(result, no_residual):
        raise CheckFailed("the residual path is missing: mix each layer's weights with the identity, 0.5 * W + 0.5 * I")
    if _close(result, wrong_order):
        raise CheckFailed("the layers are multiplied in the wrong order: each new layer goes on the left")
    if _close(result, first_head[2] @ first_head[1] @ first_head[0]):
        raise CheckFailed("only the first head is used: average the weights over the heads")
    raise CheckFailed("the rollout differs: average heads, add the identity (half and half), multiply the layers")
