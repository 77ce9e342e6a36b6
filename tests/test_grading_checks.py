"""The checks as the grader runs them: hidden cases beyond the visible ones, partial credit,
and answers that call the kit's own implementation (or torch's one-call version) score 0
with a message that says why. No kernel: fast."""

import math

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

import titn_lite
from titn_lite.classroom import checks
from titn_lite.classroom.checks import CheckFailed


def attention_right(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(-1)
    return weights @ v, weights


def attention_other_way(q, k, v, mask=None):  # einsum, torch.where, a power instead of sqrt
    scores = torch.einsum("...qd,...kd->...qk", q, k) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(float("-inf")))
    weights = torch.softmax(scores, -1)
    return torch.einsum("...qk,...kd->...qd", weights, v), weights


def attention_visible_only(q, k, v, mask=None):  # sqrt(16) hard-coded: right on the visible case only
    scores = q @ k.transpose(-2, -1) / 4
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(-1)
    return weights @ v, weights


def attention_no_mask(q, k, v, mask=None):
    return attention_right(q, k, v)


@pytest.mark.parametrize("answer", [attention_right, attention_other_way])
def test_a_correct_attention_passes_hidden_cases(answer, capsys):
    checks.check_attention(answer, hidden=True)
    assert "✓" in capsys.readouterr().out


def test_an_answer_right_only_on_the_visible_case_fails_the_hidden_one():
    checks.check_attention(attention_visible_only)  # the notebook's own check cannot tell
    with pytest.raises(CheckFailed, match="the output differs from softmax"):
        checks.check_attention(attention_visible_only, hidden=True)


def test_parts_earn_partial_credit():
    with pytest.raises(CheckFailed, match="the mask is ignored") as failed:
        checks.check_attention(attention_no_mask, hidden=True)
    assert failed.value.credit == 0.5
    with pytest.raises(CheckFailed, match="scores are not divided") as failed:
        checks.check_attention(lambda q, k, v, mask=None: attention_right(q * math.sqrt(q.shape[-1]), k, v, mask))
    assert failed.value.credit == 0


@pytest.mark.parametrize("answer, named", [
    (lambda q, k, v, mask=None: titn_lite.scaled_dot_product_attention(q, k, v, mask), "titn_lite.scaled_dot_product"),
    (titn_lite.scaled_dot_product_attention, "titn_lite.scaled_dot_product_attention"),
    (lambda q, k, v, mask=None: (F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                                 attention_right(q, k, v, mask)[1]), "torch.nn.functional.scaled_dot_product"),
])
def test_calling_the_ready_made_attention_scores_zero_and_says_why(answer, named):
    with pytest.raises(CheckFailed, match=f"your answer calls {named}.*write it yourself") as failed:
        checks.check_attention(answer, hidden=True)
    assert failed.value.credit == 0


class MultiHeadRight(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.to_qkv, self.to_out = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        q, k, v = rearrange(self.to_qkv(x), "b n (qkv h d) -> qkv b h n d", qkv=3, h=self.heads)
        return self.to_out(rearrange(attention_right(q, k, v)[0], "b h n d -> b n (h d)"))


class MultiHeadKit(titn_lite.MultiHeadAttention):
    pass


def test_multi_head_hidden_cases_and_the_kit_subclass():
    checks.check_multi_head(MultiHeadRight, hidden=True)
    with pytest.raises(CheckFailed, match="your answer calls titn_lite.MultiHeadAttention"):
        checks.check_multi_head(MultiHeadKit, hidden=True)


def test_switching_off_the_watch_scores_zero():
    import sys

    def sneaky(q, k, v, mask=None):
        sys.setprofile(None)
        return titn_lite.scaled_dot_product_attention(q, k, v, mask)

    with pytest.raises(CheckFailed, match="switched off the check's watch"):
        checks.check_attention(sneaky)


def test_other_checks_pass_a_correct_answer_on_hidden_cases():
    checks.check_patches(lambda images, p: rearrange(images, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p, p2=p),
                         hidden=True)
    checks.check_pixel_to_patch(lambda pixels, norm, proj, b: F.pad(
        proj(rearrange(norm(pixels), "(b p) n d -> b p (n d)", b=b)), (0, 0, 1, 1)), hidden=True)
    checks.check_rollout(_rollout, hidden=True)
    with pytest.raises(CheckFailed, match="your answer calls titn_lite.models.attention.attention_rollout"):
        checks.check_rollout(titn_lite.models.attention.attention_rollout, hidden=True)


def _rollout(layers):
    result = torch.eye(layers[0].shape[-1]).expand(layers[0].shape[0], -1, -1)
    for weights in layers:
        result = (0.5 * weights.mean(1) + 0.5 * torch.eye(weights.shape[-1])) @ result
    return result


def test_a_hard_coded_patch_answer_fails_the_hidden_case():
    visible = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    stored = rearrange(visible, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=4, p2=4)
    checks.check_patches(lambda images, p: stored)
    with pytest.raises(CheckFailed):
        checks.check_patches(lambda images, p: stored, hidden=True)


# ------------------------------------------------------------ counting and reading results

def _fails(check, answer, match, **kwargs):
    with pytest.raises(CheckFailed, match=match) as failed:
        check(answer, hidden=True, **kwargs)
    return failed.value


def test_distillation_token_count():
    checks.check_distillation_token_parameters(lambda d, c: 2 * d + 2 * d + d * c + c, hidden=True)
    _fails(checks.check_distillation_token_parameters, lambda d, c: 2 * d + d * c + c, "LayerNorm is missing")
    _fails(checks.check_distillation_token_parameters, lambda d, c: 4 * d + d * c, "Linear layer's bias")
    _fails(checks.check_distillation_token_parameters, lambda d, c: 3 * d + d * c + c, "position embedding")
    _fails(checks.check_distillation_token_parameters, lambda d, c: 2698, "your count is 2,698")  # the visible answer
    with pytest.raises(CheckFailed, match="your count is 2,698 for dim = 96, 100 classes"):
        checks.check_distillation_token_parameters(lambda d, c: 2698)  # in class too, not only when graded


def _most_confused(confusion):
    off = confusion.clone()
    off.fill_diagonal_(-1)
    return divmod(int(off.argmax()), off.shape[1])


def test_most_confused_reads_the_students_own_matrix(capsys):
    def by_loops(m):  # another way: plain loops over the cells
        cells = [(int(m[i, j]), i, j) for i in range(len(m)) for j in range(len(m)) if i != j]
        return max(cells)[1:]

    checks.check_most_confused(by_loops, torch.tensor([[9, 1], [4, 7]]), ["shirt", "coat"], hidden=True)
    checks.check_most_confused(_most_confused, hidden=True)
    assert "coat taken for shirt (4 test images)" in capsys.readouterr().out
    _fails(checks.check_most_confused, lambda m: divmod(int(m.argmax()), m.shape[1]), "on the diagonal")
    _fails(checks.check_most_confused, lambda m: _most_confused(m)[::-1], "wrong way round")
    _fails(checks.check_most_confused, lambda m: (2, 1), None)  # the visible answer, hard-coded


def test_head_to_trust():
    rows = {"class head": 60.0, "distillation head": 58.0, "mean (what TITN predicts)": 59.0}
    checks.check_head_to_trust(lambda top1, agreement: max(top1, key=top1.get), rows, rows, hidden=True)
    _fails(checks.check_head_to_trust, lambda t, a: min(t, key=t.get), "lowest top-1")
    failed = _fails(checks.check_head_to_trust, lambda t, a: max(a, key=a.get), "agrees most with the teacher")
    assert "not accuracy" in str(failed)
    _fails(checks.check_head_to_trust, lambda t, a: "mean (what TITN predicts)", None)  # the visible answer


def test_paired_difference_with_partial_credit():
    import statistics

    def right(a, b):
        d = [x - y for x, y in zip(a, b)]
        return statistics.mean(d), statistics.stdev(d) / math.sqrt(len(d))

    checks.check_paired_difference(right, hidden=True)
    assert _fails(checks.check_paired_difference, lambda a, b: (-right(a, b)[0], right(a, b)[1]),
                  "wrong sign").credit == 0
    unpaired = _fails(checks.check_paired_difference, lambda a, b: (
        right(a, b)[0], math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))), "unpaired")
    assert unpaired.credit == 0.5
    _fails(checks.check_paired_difference, lambda a, b: (right(a, b)[0], right(a, b)[1] * math.sqrt(len(a))),
           "divide it by sqrt")
    from titn_lite.results.stats import compare, seed_results

    def kit(a, b):
        d = compare(*seed_results({"a": a, "b": b}).values(), paired=True)
        return d.difference, d.standard_error

    _fails(checks.check_paired_difference, kit, "your answer calls titn_lite.results.stats")


def test_interval_verdict_and_what_an_interval_rules_out():
    checks.check_interval_verdict(lambda low, high: 1 if low > 0 else -1 if high < 0 else 0, hidden=True)
    _fails(checks.check_interval_verdict, lambda low, high: 1 if low + high > 0 else -1, "holds 0")
    _fails(checks.check_interval_verdict, lambda low, high: -1 if low > 0 else 1 if high < 0 else 0, "reversed")
    checks.check_ruled_out(lambda low, high, effect: not low <= effect <= high, hidden=True)
    _fails(checks.check_ruled_out, lambda low, high, effect: not low <= 0 <= high, "excludes 0")
    _fails(checks.check_ruled_out, lambda low, high, effect: effect > high, "only the upper end")
    _fails(checks.check_ruled_out, lambda low, high, effect: abs(effect) > max(abs(low), abs(high)),
           "without their signs")
