"""Instant checks for the classroom exercises: each runs a student's function on small
inputs beside the package's, and says in plain words what is wrong.

Every check raises ``CheckFailed`` (an ``AssertionError``) with a diagnosis and prints a
short confirmation when the answer is right. ``CheckFailed.credit`` is the share of the
points still earned where an exercise has parts (attention right but its mask wrong, say).

Every call of the student's code goes through ``_run`` as a *driver* (``call_answer``, or
a function of this module that calls the answer and gathers what the check looks at), so
the same check judges an answer in two places:

- in the notebook, where it watches what the answer calls (``sys.setprofile``): an answer
  that calls the kit's own implementation of the exercise (or torch's, where torch has the
  whole exercise as one call: ``forbidden_calls``) fails with a message that says so;
- in the grader (``titn_lite.classroom.assignments``), where the answer is a ``sandbox.RemoteAnswer``:
  the driver runs in a child process, only plain data comes back, and the comparison runs
  in a process that never ran the student's code.

``hidden`` adds cases the notebook never shows (other shapes, masks, seeds): ``True`` draws
them from a fixed seed, an integer from that seed. The grader passes a seed it draws when it
grades, so no file a student can read holds the hidden cases.
"""

from __future__ import annotations

import copy
import math
import operator
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from titn_lite.classroom.sandbox import AnswerRaised, Refused, RemoteAnswer, call_answer, calls_the_ready_made
from titn_lite.data.mixing import MixedBatch, cutmix
from titn_lite.models.attention import MultiHeadAttention, attention_rollout, scaled_dot_product_attention
from titn_lite.models.blocks import PatchEmbedding, PixelToPatch
from titn_lite.models.students import ClassifierHeads, TokenSequence, mean_of_heads
from titn_lite.train.engine import train_step, warmup_cosine
from titn_lite.train.losses import DistillationLoss, mixed_cross_entropy


class CheckFailed(AssertionError):
    """A student's answer differs from the package's; the message says how. ``credit``: the
    share of the exercise's points its right parts still earn (0 unless a check says)."""

    def __init__(self, message: str, credit: float = 0.0) -> None:
        super().__init__(message)
        self.credit = credit


def _close(a: object, b: Tensor, atol: float = 1e-5) -> bool:
    return isinstance(a, Tensor) and a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=atol)


def _name_the_mistake(got: object, diagnoses: list[tuple[Tensor, str]]) -> None:
    """Fail with the message of the first common mistake (its result, its message) that
    ``got`` equals; return when it equals none of them."""
    for wrong, message in diagnoses:
        if _close(got, wrong):
            raise CheckFailed(message)


def _shape(got: object) -> object:
    """A tensor's shape, or the type of anything else, for a message."""
    return tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__


def forbidden_calls(check: str) -> dict[str, tuple]:
    """What the answer to ``check`` may not call, as ``{label: (callables, ...)}``: the kit's
    own version of the exercise (or torch's, where torch has it as one call)."""
    from titn_lite.data import mixing
    from titn_lite.results import stats

    # torch's one-call versions, public and underscored (the latter: where this torch has them)
    native = tuple(f for f in (getattr(torch, "_native_multi_head_attention", None),) if f is not None)
    torch_attention = {"torch.nn.MultiheadAttention": (nn.MultiheadAttention.forward, F.multi_head_attention_forward,
                                                       *native)}
    math_attention = tuple(f for f in (getattr(torch, "_scaled_dot_product_attention_math", None),) if f is not None)
    kit_attention = {"titn_lite.MultiHeadAttention": (MultiHeadAttention.forward,)}
    return {
        "check_attention": {"titn_lite.scaled_dot_product_attention": (scaled_dot_product_attention,), **kit_attention,
                            "torch.nn.functional.scaled_dot_product_attention": (F.scaled_dot_product_attention,
                                                                                 *math_attention),
                            **torch_attention},
        "check_multi_head": {**kit_attention, **torch_attention},
        "check_patches": {"titn_lite.models.blocks.PatchEmbedding": (PatchEmbedding.__init__, PatchEmbedding.forward)},
        "check_pixel_to_patch": {"titn_lite.models.blocks.PixelToPatch": (PixelToPatch.forward,)},
        "check_cutmix": {"titn_lite.data.mixing.cutmix": (mixing.cutmix, mixing.cutmix_box,
                                                          mixing.BatchMixer.__call__)},
        "check_hard_distillation": {"titn_lite.train.losses.DistillationLoss": (DistillationLoss.forward,)},
        "check_rollout": {"titn_lite.models.attention.attention_rollout": (attention_rollout,)},
        "check_distillation_token": {"titn_lite.models.students.TokenSequence": (TokenSequence.forward,),
                                     "titn_lite.models.students.ClassifierHeads": (ClassifierHeads.forward,),
                                     "titn_lite.models.students.mean_of_heads": (mean_of_heads,)},
        "check_training_step": {"titn_lite.train.engine.train_step": (train_step,),
                                "titn_lite.train.losses.DistillationLoss": (DistillationLoss.forward,),
                                "the check's own reference step": (_engine_step,)},
        "check_paired_difference": {"titn_lite.results.stats": (stats.compare, stats.compare_pairs,
                                                                stats.paired_scatter, stats.holm)},
    }.get(check, {})


# While a check runs in a notebook: what its answer may not call, code object (Python) or
# callable (C) -> how to name it in the message; set by each check through ``_forbid``.
_forbidden: dict[object, str] = {}
_called: list[str] = []


def _forbid(check: str) -> None:
    """What the next student calls may not reach: ``forbidden_calls(check)``."""
    _forbidden.clear()
    for label, targets in forbidden_calls(check).items():
        for target in targets:
            _forbidden[getattr(target, "__code__", target)] = label


def _watch(frame, event, arg) -> None:
    if event == "call":
        label = _forbidden.get(frame.f_code)
    elif event == "c_call":
        try:
            label = _forbidden.get(arg)
        except TypeError:  # an unhashable callable
            label = None
    else:
        return
    if label and label not in _called:
        _called.append(label)


def _run(what: str, answer: Any, *args: Any, driver: Callable[..., Any] = call_answer, **kwargs: Any) -> Any:
    """``driver(answer, *args, **kwargs)``: the student's code, watched (in a notebook) or in
    its sandbox (in the grader); one-line diagnoses of a crash."""
    if isinstance(answer, RemoteAnswer):
        try:
            return answer.drive(driver, *args, **kwargs)
        except NotImplementedError as error:
            raise _crashed(what, "NotImplementedError", error) from None
        except AnswerRaised as error:
            raise _crashed(what, error.kind, error) from None
        except Refused as error:
            raise CheckFailed(str(error)) from None
    _called.clear()
    previous = sys.getprofile()
    failure: CheckFailed | None = None
    result = None
    sys.setprofile(_watch)
    try:
        result = driver(answer, *args, **kwargs)
    except Exception as error:  # the student's code crashed: say where, in one line
        failure = _crashed(what, type(error).__name__, error)
    finally:
        watching = sys.getprofile() is _watch
        sys.setprofile(previous)
    if not watching:
        raise CheckFailed("your answer switched off the check's watch on what it calls (sys.setprofile); "
                          "it scores 0")
    if _called:
        raise CheckFailed(calls_the_ready_made(_called[0]))
    if failure:
        raise failure
    return result


def _crashed(what: str, kind: str, error: object) -> CheckFailed:
    """The one-line diagnosis of student code that raised an exception of type ``kind``."""
    if kind == "NotImplementedError":
        return CheckFailed(f"{what} is not written yet: replace `raise NotImplementedError()` with your code")
    return CheckFailed(f"{what} raised {kind}: {error}")


HIDDEN_SEED = 20240611  # hidden=True: the cases a notebook or a test sees, the same each time


def _draws(hidden: bool | int) -> random.Random:
    """The hidden cases' random draws: from the grader's seed (an integer) or the fixed one."""
    return random.Random(HIDDEN_SEED if hidden is True else int(hidden))


def _generator(draws: random.Random) -> torch.Generator:
    return torch.Generator().manual_seed(draws.randrange(2**31))


def _in_words(n: int) -> str:
    return ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"][n] if n <= 8 else str(n)


def _passed(name: str) -> None:
    print(f"✓ {name}: correct")


def check_attention(attention: Callable[..., tuple[Tensor, Tensor]], *, hidden: bool = False) -> None:
    """Exercise 01a: ``attention(q, k, v, mask=None) -> (output, weights)`` (eq. 1). Two parts:
    without a mask (half the points), with one (the other half)."""
    _forbid("check_attention")
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 3, 5, 16).unbind(0)
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    _check_attention_once(attention, q, k, v, mask)
    if hidden:  # no batch dims, keys outnumber queries, d_v != d_k, a random mask
        draws = _draws(hidden)
        generator = _generator(draws)
        queries, keys, d_k, d_v = draws.randint(2, 6), draws.randint(7, 11), draws.randint(6, 12), draws.randint(2, 5)
        q = torch.randn(queries, d_k, generator=generator)
        k = torch.randn(keys, d_k, generator=generator)
        v = torch.randn(keys, d_v, generator=generator)
        mask = torch.rand(queries, keys, generator=generator) < 0.6
        mask[:, 0] = True  # every query sees at least one key
        _check_attention_once(attention, q, k, v, mask)
    _passed("scaled dot-product attention")


def _check_attention_once(attention, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> None:
    d_k = q.shape[-1]
    result = _run("your attention", attention, q, k, v)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise CheckFailed("attention must return a pair: (output, weights)")
    output, weights = result
    expected, expected_weights = scaled_dot_product_attention(q, k, v)
    if not _close(output, expected):
        scores = q @ k.transpose(-2, -1)
        root = math.sqrt(d_k)
        diagnoses = [
            (scores.softmax(-1) @ v, "scores are not divided by sqrt(d_k)"),
            ((scores / d_k).softmax(-1) @ v, "scores are divided by d_k; divide by sqrt(d_k) instead"),
            ((scores / root).softmax(-2) @ v if scores.shape[-1] == scores.shape[-2] else scores,
             "the softmax runs over the queries (dim -2); it must run over the keys (dim -1)"),
            ((scores / root).softmax(-1), "the weights are returned as the output: multiply them by V"),
        ]
        _name_the_mistake(output, diagnoses)
        shape = _shape(output)
        raise CheckFailed(f"the output differs from softmax(QK^T / sqrt(d_k)) V (got shape {shape}, "
                          f"expected {tuple(expected.shape)})")
    if not _close(weights, expected_weights):
        raise CheckFailed("the output is right but the returned weights are not softmax(QK^T / sqrt(d_k))")
    masked = _run("your attention with a mask", attention, q, k, v, mask=mask)
    masked_output = masked[0] if isinstance(masked, tuple) and masked else masked
    if not _close(masked_output, scaled_dot_product_attention(q, k, v, mask)[0]):
        if _close(masked_output, expected):
            raise CheckFailed("the mask is ignored: masked keys still get weight (fill their scores with -inf)",
                              credit=0.5)
        raise CheckFailed("with a mask the output is wrong: set masked scores to -inf before the softmax", credit=0.5)


def check_multi_head(module_class: Callable[[int, int], nn.Module], *, hidden: bool = False) -> None:
    """Exercise 01b: ``module_class(dim, heads)`` with ``to_qkv`` and ``to_out`` Linear layers.
    One head right but several wrong earns half the points."""
    _forbid("check_multi_head")
    torch.manual_seed(0)
    cases = [(16, 1, 6), (16, 4, 6)]
    if hidden:  # one head, then several, of another width
        draws = _draws(hidden)
        head_dim, tokens = draws.randint(3, 8), draws.randint(3, 9)
        cases += [(head_dim * heads, heads, tokens) for heads in (1, draws.choice([2, 3, 5]), 6)]
    for dim, heads, tokens in cases:
        x = torch.randn(2, tokens, dim)
        reference = MultiHeadAttention(dim, heads)
        result = _run("your multi-head attention", module_class, dim, heads, reference.state_dict(), x,
                      driver=_build_and_apply)
        if not isinstance(result, dict):
            raise CheckFailed("your multi-head attention sent back something the check did not ask for")
        if "load_error" in result:
            raise CheckFailed("your module's layers must be named to_qkv = Linear(dim, 3 * dim) and "
                              f"to_out = Linear(dim, dim) ({result['load_error']})")
        output = result.get("output")
        if not _close(output, reference(x)):
            if heads > 1:
                raise CheckFailed(f"one head works but {_in_words(heads)} do not: the split into heads is wrong; "
                                  "q, k and v each hold `heads` groups of dim / heads features: "
                                  "'b n (qkv h d) -> qkv b h n d'",
                                  credit=0.5)
            raise CheckFailed("even with one head the output is wrong: check attention and the output projection")
    _passed("multi-head attention")


def _build_and_apply(module_class: Callable[[int, int], nn.Module], dim: int, heads: int, state: dict,
                     x: Tensor) -> dict:
    """Driver: build the student's module, give it the reference's weights, apply it to ``x``."""
    module = module_class(dim, heads)
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        return {"load_error": str(error).splitlines()[0]}
    return {"output": module(x)}


def check_patches(to_patches: Callable[[Tensor, int], Tensor], *, hidden: bool = False) -> None:
    """Exercise 02: ``to_patches(images, patch_size)``: (B, C, H, W) -> (B, P, C * p * p)."""
    _forbid("check_patches")
    _check_patches_once(to_patches, torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8), 4)
    if hidden:  # not square, another patch size, another number of channels
        draws = _draws(hidden)
        batch, channels, size = draws.randint(1, 4), draws.choice([1, 2]), draws.choice([2, 3])
        rows = draws.randint(2, 4)
        columns = draws.choice([c for c in range(2, 6) if c != rows])
        shape = (batch, channels, rows * size, columns * size)
        images = torch.randperm(math.prod(shape), generator=_generator(draws)).float().reshape(shape)
        _check_patches_once(to_patches, images, size)
    _passed("patches")


def _check_patches_once(to_patches, images: Tensor, size: int) -> None:
    expected = rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) (c p1 p2)", p1=size, p2=size)
    patches = _run("your to_patches", to_patches, images, size)
    if not isinstance(patches, Tensor) or patches.shape != expected.shape:
        shape = _shape(patches)
        raise CheckFailed(f"patches should be shaped (batch, patches, channels x p x p) = {tuple(expected.shape)}, "
                          f"got {shape}")
    if not torch.equal(patches, expected):
        column_major = rearrange(images, "b c (gh p1) (gw p2) -> b (gw gh) (c p1 p2)", p1=size, p2=size)
        channels_last = rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) (p1 p2 c)", p1=size, p2=size)
        if torch.equal(patches, column_major):
            raise CheckFailed("patches are in column-major order; number them row by row, left to right")
        if torch.equal(patches, channels_last):
            raise CheckFailed("the values inside a patch are ordered (p1 p2 c); use (c p1 p2), as nn.Unfold does")
        if torch.equal(patches.sort(-1).values, expected.sort(-1).values):
            raise CheckFailed("each patch holds the right values in the wrong order: flatten as (c p1 p2)")
        raise CheckFailed("the patches hold the wrong pixels: each must be one p x p square of the image")


def check_pixel_to_patch(pixel_to_patch: Callable[..., Tensor], *, hidden: bool = False) -> None:
    """Exercise 03: ``pixel_to_patch(pixels, norm, proj, batch_size)``: (B * P, n, d) ->
    (B, 1 + P + 1, D) with zero rows for the class (first) and distillation (last) tokens.
    Zero rows right but the patch rows wrong earns half the points."""
    _forbid("check_pixel_to_patch")
    torch.manual_seed(0)
    _check_pixel_to_patch_once(pixel_to_patch, 2, 9, 4, 6, 10)
    if hidden:
        draws = _draws(hidden)
        torch.manual_seed(draws.randrange(2**31))
        _check_pixel_to_patch_once(pixel_to_patch, draws.randint(1, 4), draws.randint(2, 9), draws.randint(2, 9),
                                   draws.randint(2, 6), draws.randint(5, 12))
    _passed("pixel-to-patch")


def _check_pixel_to_patch_once(pixel_to_patch, batch: int, patches: int, num_pixels: int, pixel_dim: int,
                               patch_dim: int) -> None:
    reference = PixelToPatch(num_pixels=num_pixels, pixel_dim=pixel_dim, patch_dim=patch_dim, prefix_tokens=1,
                             suffix_tokens=1)
    nn.init.normal_(reference.norm.weight)
    pixels = torch.randn(batch * patches, num_pixels, pixel_dim)
    expected = reference(pixels, batch_size=batch)
    result = _run("your pixel_to_patch", pixel_to_patch, pixels, reference.norm, reference.proj, batch)
    if not isinstance(result, Tensor) or result.shape != expected.shape:
        shape = _shape(result)
        raise CheckFailed(f"expected shape (batch, 1 + patches + 1, patch dim) = {tuple(expected.shape)}, got {shape}")
    if not torch.all(result[:, 0] == 0):
        raise CheckFailed("the class-token row is not zero: pad one zero row in front (the class token has no pixels)")
    if not torch.all(result[:, -1] == 0):
        raise CheckFailed("the distillation-token row is not zero: pad one zero row at the end")
    if not _close(result, expected):
        unnormalised = F.pad(reference.proj(rearrange(pixels, "(b p) n d -> b p (n d)", b=batch)), (0, 0, 1, 1))
        if _close(result, unnormalised):
            raise CheckFailed("the pixel tokens are not normalised: apply the LayerNorm before flattening", credit=0.5)
        raise CheckFailed("the patch rows differ: normalise each pixel, flatten a patch's pixels, then project",
                          credit=0.5)


def check_cutmix(cutmix_fn: Callable[..., tuple], *, hidden: bool = False) -> None:
    """Exercise 05: ``cutmix_fn(images, labels, alpha, partner)`` -> (mixed, labels, partner
    labels, lambda drawn, lambda corrected).

    Judged by what CutMix must do, not by one order of random draws or one rounding of the
    box, so any correct CutMix passes: lambda follows Beta(alpha, alpha); one box for the
    whole batch, a rectangle inside the image, anywhere in it, with sides about
    sqrt(1 - lambda) of the image's (less where the border clips it); the partner's pixels
    inside, the image's own outside, the input left as it was; the corrected lambda equal
    to the share of the image that is still its own. Everything right but the correction
    earns half the points. Hidden cases: another batch, image size, partner order and seeds."""
    _forbid("check_cutmix")
    _check_cutmix_once(cutmix_fn, 6, 16, 24, torch.roll(torch.arange(6), 1), range(64))
    if hidden:
        draws = _draws(hidden)
        batch, height = draws.randint(3, 7), draws.randint(10, 22)
        width = draws.choice([w for w in range(10, 26) if w != height])
        order = torch.randperm(batch, generator=_generator(draws))
        partner = torch.empty_like(order)
        partner[order] = torch.roll(order, 1)  # one cycle through the batch: nobody is their own partner
        start = draws.randrange(1000, 10**6)
        _check_cutmix_once(cutmix_fn, batch, height, width, partner, range(start, start + 64))
    _passed("CutMix")


def _check_cutmix_once(cutmix_fn, batch: int, height: int, width: int, partner: Tensor, seeds: range) -> None:
    # Images whose pixels are all different numbers, so every pixel tells where it came from
    # (not square: a height taken for the width shows).
    images = torch.randperm(batch * height * width).float().reshape(batch, 1, height, width)
    labels = torch.arange(batch)
    original = images.clone()
    drawn_values, places = [], set()
    for seed in seeds:
        result, images_after = _run("your cutmix", cutmix_fn, seed, images, labels, 1.0, partner, driver=_seeded_call)
        if not torch.equal(images_after, original):
            raise CheckFailed("your function changed the input images in place: paste into a copy "
                              "(mixed = images.clone()) so the batch you were given stays as it was")
        drawn, place = _check_cutmix_result(result, images, labels, partner)
        if place is not None:
            places.add(place)
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
    for seed in seeds[:16]:
        result, _ = _run("your cutmix", cutmix_fn, seed, images, labels, 50.0, partner, driver=_seeded_call)
        drawn = float(result[3])
        if not 0.25 <= drawn <= 0.75:  # Beta(50, 50): 0.5 +- 0.05
            raise CheckFailed(f"with alpha = 50 lambda should stay near 0.5 (Beta(50, 50)), but one draw was "
                              f"{drawn:.3f}: draw lambda from Beta(alpha, alpha) with the alpha you are given")


def _seeded_call(answer: Callable[..., Any], seed: int, images: Tensor, *args: Any) -> tuple[Any, Tensor]:
    """Driver: the answer under ``torch.manual_seed(seed)``; its result and the images it was
    given, as they are afterwards (an answer that pastes in place changes them)."""
    torch.manual_seed(seed)
    return answer(images, *args), images


def _check_cutmix_result(result: Any, images: Tensor, labels: Tensor, partner: Tensor) -> tuple[float, tuple | None]:
    """One call's result: its lambda drawn, and where its box sat (None: no box)."""
    if not (isinstance(result, tuple) and len(result) == 5):
        raise CheckFailed("return five things: mixed images, labels, partner labels, lambda drawn, lambda corrected")
    mixed, own, other, drawn, lam = result
    if not isinstance(mixed, Tensor) or mixed.shape != images.shape:
        shape = _shape(mixed)
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
    return drawn, _check_cutmix_box(box, rows, cols, drawn, lam)


def _check_cutmix_box(box: Tensor, rows: Tensor, cols: Tensor, drawn: float, lam: float) -> tuple[int, int] | None:
    """The pasted box (H, W) against lambda: its area, its sides; returns its centre (x2)."""
    height, width = box.shape
    area = int(box.sum())
    kept = 1 - area / (height * width)
    # The sides before clipping; rounding them moves each by a pixel or two.
    side_h, side_w = math.sqrt(1 - drawn) * height, math.sqrt(1 - drawn) * width
    if abs(lam - kept) > 1e-6 and abs(lam - drawn) < 1e-9 and abs(kept - drawn) > 1e-3:
        raise CheckFailed("lambda is not corrected to the pasted area: after clipping, "
                          "lambda = 1 - box area / image area", credit=0.5)
    if area == 0 and (lam < 1 - 1e-6 or min(side_h, side_w) >= 4):  # a box this size always shows
        raise CheckFailed(f"nothing of the partner was pasted, yet lambda drawn is {drawn:.3f}: paste "
                          f"images[partner] inside the box (pasting images[...] from the image itself changes "
                          f"nothing), and clamp the box's start at 0 (a negative start slices nothing)")
    if abs(lam - kept) > 1e-6:
        raise CheckFailed(f"lambda corrected is {lam:.3f}, but {100 * kept:.1f}% of the image is still its own: "
                          f"return 1 - the pasted box's share of the image", credit=0.5)
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
        return int(ys[0]) + int(ys[-1]), int(xs[0]) + int(xs[-1])
    return None


class _FixedTeacher(nn.Module):
    def __init__(self, logits: Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, images: Tensor) -> Tensor:
        return self.logits


def check_hard_distillation(loss_fn: Callable[..., Tensor], *, hidden: bool = False) -> None:
    """Exercise 07a: ``loss_fn(class_logits, distill_logits, batch, teacher_logits, alpha)`` (eq. 10)."""
    _forbid("check_hard_distillation")
    torch.manual_seed(0)
    _check_hard_distillation_once(loss_fn, 8, 5, 0.7, (0.5, 0.3))
    if hidden:
        draws = _draws(hidden)
        torch.manual_seed(draws.randrange(2**31))
        alphas = (round(draws.uniform(0.55, 0.95), 2), round(draws.uniform(0.05, 0.45), 2))
        _check_hard_distillation_once(loss_fn, draws.randint(4, 10), draws.randint(3, 9),
                                      round(draws.uniform(0.2, 0.8), 2), alphas)
    _passed("hard distillation loss")


def _check_hard_distillation_once(loss_fn, size: int, classes: int, lam: float, alphas: tuple) -> None:
    class_logits, distill_logits, teacher_logits = torch.randn(3, size, classes).unbind(0)
    batch = MixedBatch(torch.zeros(size, 1, 4, 4), torch.arange(size) % classes, (torch.arange(size) + 2) % classes,
                       lam)
    for alpha in alphas:
        expected = DistillationLoss(_FixedTeacher(teacher_logits), "hard", alpha=alpha)(
            (class_logits, distill_logits), batch)
        loss = _run("your loss", loss_fn, class_logits, distill_logits, batch, teacher_logits, alpha)
        if _close(loss, expected):
            continue
        cutmix_term = batch.lam * F.cross_entropy(class_logits, batch.labels) + (1 - batch.lam) * F.cross_entropy(
            class_logits, batch.partner_labels)
        hard = F.cross_entropy(distill_logits, teacher_logits.argmax(1))
        soft = F.cross_entropy(distill_logits, teacher_logits.softmax(1))
        diagnoses = [
            ((1 - alpha) * cutmix_term + alpha * hard,
             "alpha weights the wrong term: alpha * CutMix loss + (1 - alpha) * teacher term"),
            (alpha * cutmix_term + (1 - alpha) * soft,
             "the teacher term uses the teacher's probabilities; hard distillation uses its argmax label"),
            (alpha * F.cross_entropy(class_logits, batch.labels) + (1 - alpha) * hard,
             "the class head ignores the partner label: use the CutMix loss, lam * CE(l1) + (1 - lam) * CE(l2)"),
            (alpha * cutmix_term + (1 - alpha) * F.cross_entropy(class_logits, teacher_logits.argmax(1)),
             "the teacher's labels train the class head; they belong to the distillation head"),
        ]
        _name_the_mistake(loss, diagnoses)
        shown = f"{float(loss):.4f}" if isinstance(loss, Tensor) and loss.numel() == 1 else repr(loss)[:40]
        raise CheckFailed(f"the loss is {shown} where eq. 10 gives {float(expected):.4f} (alpha = {alpha})")


def check_rollout(rollout_fn: Callable[[list[Tensor]], Tensor], *, hidden: bool = False) -> None:
    """Exercise 09: ``rollout_fn(layers)``, layers of (B, heads, T, T) -> (B, T, T)."""
    _forbid("check_rollout")
    torch.manual_seed(0)
    _check_rollout_once(rollout_fn, [torch.randn(2, 3, 5, 5).softmax(-1) for _ in range(3)])
    if hidden:
        draws = _draws(hidden)
        generator, shape = _generator(draws), (draws.randint(1, 4), draws.randint(2, 4), *[draws.randint(4, 9)] * 2)
        _check_rollout_once(rollout_fn, [torch.randn(shape, generator=generator).softmax(-1)
                                         for _ in range(draws.randint(2, 5))])
    _passed("attention rollout")


def _check_rollout_once(rollout_fn, layers: list[Tensor]) -> None:
    expected = attention_rollout(layers)
    result = _run("your rollout", rollout_fn, layers)
    if _close(result, expected):
        return
    identity = torch.eye(layers[0].shape[-1])
    def product(matrices):
        out = matrices[0]
        for m in matrices[1:]:
            out = m @ out
        return out

    no_residual = product([w.mean(1) for w in layers])
    with_residual = [0.5 * w.mean(1) + 0.5 * identity for w in layers]
    wrong_order = product(with_residual[::-1])
    first_head = [0.5 * w[:, 0] + 0.5 * identity for w in layers]
    if _close(result, no_residual):
        raise CheckFailed("the residual path is missing: mix each layer's weights with the identity, 0.5 * W + 0.5 * I")
    if _close(result, wrong_order):
        raise CheckFailed("the layers are multiplied in the wrong order: each new layer goes on the left")
    if _close(result, product(first_head)):
        raise CheckFailed("only the first head is used: average the weights over the heads")
    raise CheckFailed("the rollout differs: average heads, add the identity (half and half), multiply the layers")


# ------------------------------------------------------------------ counting and reading results
# These exercises ask for a number or a judgement. Each answer is a small function, judged
# on cases of the check's own (so any correct answer passes and each common mistake is
# named), then applied to the student's own run, whose verdict the check prints.


def check_distillation_token_parameters(count_fn: Callable[[int, int], int], *, hidden: bool = False) -> None:
    """Exercise 04a: ``count_fn(dim, num_classes)``: the parameters TITN's distillation token
    adds to TNT: the token, its position, its head's LayerNorm and Linear layer."""
    from titn_lite import create_model

    torch.manual_seed(0)
    titn, tnt = create_model("titn", num_classes=10, in_chans=1), create_model("tnt", num_classes=10, in_chans=1)
    measured = sum(p.numel() for p in titn.parameters()) - sum(p.numel() for p in tnt.parameters())
    # The measured case, then one the notebook never prints (so a number copied from it fails in class
    # too), then the grader's hidden draws.
    cases = [(192, 10, measured), (96, 100, None)]
    if hidden:
        draws = _draws(hidden)
        cases += [(draws.randrange(8, 512, 8), draws.choice([7, 10, 100, 1000]), None) for _ in range(3)]
    _forbid("check_distillation_token_parameters")
    for dim, classes, expected in cases:
        expected = expected if expected is not None else 4 * dim + dim * classes + classes
        got = _run("your count", count_fn, dim, classes)
        try:
            got = _whole_number(got)
        except (TypeError, ValueError):
            raise CheckFailed(f"return the count as a whole number, not {type(got).__name__}") from None
        if got == expected:
            continue
        diagnoses = {
            expected - dim: "one dim short: count the token's position embedding (dim) and the LayerNorm's bias "
                            "(dim) as well as its weight",
            expected - 2 * dim: "the head's LayerNorm is missing: it has a weight and a bias, 2 * dim",
            expected - classes: "the Linear layer's bias is missing: it adds one parameter per class",
            expected - dim * classes - classes: "the head's Linear layer (dim x classes weights + classes biases) "
                                                "is missing",
            2 * expected: "both tokens are counted: TNT already has the class token; count only what TITN adds",
        }
        raise CheckFailed(diagnoses.get(got, f"your count is {got:,} for dim = {dim}, {classes} classes; TITN adds "
                                             f"{expected:,}: the token, its position, and its head (LayerNorm and "
                                             f"Linear)"))
    _passed("the distillation token's parameters")


def _whole_number(value: object) -> int:
    """``value`` as a plain int if it is a whole number (a one-element tensor, a float with
    nothing after the point, or anything ``operator.index`` reads, numpy's integers included)."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return int(operator.index(value))


def check_distillation_token(add_token: Callable[..., Tensor], two_heads: Callable[..., Any], *,
                              hidden: bool = False) -> None:
    """Exercise 04b, two parts of half the points each:

    - ``add_token(patch_tokens, class_token, distill_token, pos_embedding)``: patch tokens
      (B, P, D), the two learned tokens (1, 1, D), positions (1, P + 2, D) -> the outer
      sequence (B, P + 2, D), class token first, distillation token last, positions added;
    - ``two_heads(tokens, class_head, distill_head, training)``: tokens (B, T, D) after the
      blocks -> ``(class_logits, distill_logits)`` in training, their mean at evaluation.
    """
    _forbid("check_distillation_token")
    cases, generator = [(2, 4, 8, 5)], torch.Generator().manual_seed(404)
    if hidden:
        draws = _draws(hidden)
        cases += [(draws.randint(1, 4), draws.randint(3, 16), draws.randint(4, 12), draws.randint(2, 9))
                  for _ in range(2)]
        generator = _generator(draws)
    sequence_failure = heads_failure = None
    for batch, patches, dim, classes in cases:
        try:
            _check_token_sequence_once(add_token, batch, patches, dim, generator)
        except CheckFailed as failure:
            sequence_failure = sequence_failure or failure
        try:
            _check_two_heads_once(two_heads, batch, patches + 2, dim, classes, generator)
        except CheckFailed as failure:
            heads_failure = heads_failure or failure
    if sequence_failure and heads_failure:
        raise CheckFailed(f"both parts are wrong. The sequence: {sequence_failure} The heads: {heads_failure}")
    if sequence_failure or heads_failure:
        part = "the sequence" if sequence_failure else "the heads"
        raise CheckFailed(f"{part}: {sequence_failure or heads_failure} (the other part is right: half the points)",
                          credit=0.5)
    _passed("the distillation token and the two heads")


def _check_token_sequence_once(add_token, batch: int, patches: int, dim: int, generator: torch.Generator) -> None:
    patch_tokens = torch.randn(batch, patches, dim, generator=generator)
    class_token, distill_token = torch.randn(2, 1, 1, dim, generator=generator).unbind(0)
    positions = torch.randn(1, patches + 2, dim, generator=generator)
    got = _run("your add_distillation_token", add_token, patch_tokens, class_token, distill_token, positions)
    first, last = class_token.expand(batch, -1, -1), distill_token.expand(batch, -1, -1)
    expected = torch.cat([first, patch_tokens, last], dim=1) + positions
    if _close(got, expected):
        return
    diagnoses = [
        (torch.cat([first, last, patch_tokens], dim=1) + positions,
         "the distillation token is second, as in DeiT's code; TITN puts it last (§3.2: \"The first and last rows, "
         "for the class token and distillation token, respectively\"), where pixel-to-patch leaves a zero row for it"),
        (torch.cat([last, patch_tokens, first], dim=1) + positions,
         "the class and distillation tokens are swapped: the class token comes first, the distillation token last"),
        (torch.cat([first, patch_tokens, last], dim=1),
         "the positions are not added: add pos_embedding to the whole sequence"),
        (torch.cat([first, patch_tokens + positions[:, 1:-1], last], dim=1),
         "positions are added to the patches only: the two tokens have positions of their own (rows 0 and -1)"),
    ]
    _name_the_mistake(got, diagnoses)
    shape = _shape(got)
    raise CheckFailed(f"the sequence differs from [class token, patches, distillation token] + positions (got "
                      f"{shape}, expected {tuple(expected.shape)})")


def _check_two_heads_once(two_heads, batch: int, tokens_count: int, dim: int, classes: int,
                          generator: torch.Generator) -> None:
    tokens = torch.randn(batch, tokens_count, dim, generator=generator)
    class_head, distill_head = (nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, classes)) for _ in range(2))
    for head in (class_head, distill_head):
        nn.init.normal_(head[1].weight, generator=generator)
    with torch.no_grad():
        class_logits, distill_logits = class_head(tokens[:, 0]), distill_head(tokens[:, -1])
        mean = (class_logits + distill_logits) / 2
        trained = _run("your two_heads in training", two_heads, tokens, class_head, distill_head, True)
        if not (isinstance(trained, tuple) and len(trained) == 2 and _close(trained[0], class_logits)
                and _close(trained[1], distill_logits)):
            _diagnose_training_heads(trained, tokens, class_head, distill_head, class_logits, distill_logits, mean)
        evaluated = _run("your two_heads at evaluation", two_heads, tokens, class_head, distill_head, False)
    if _close(evaluated, mean):
        return
    diagnoses = [
        (class_logits, "at evaluation only the class head is read: the kit predicts the mean of both heads' logits"),
        ((class_logits.softmax(1) + distill_logits.softmax(1)) / 2,
         "the heads' probabilities are averaged (DeiT's paper adds softmax outputs); the kit averages their logits, "
         "as DeiT's released code does: (class_logits + distill_logits) / 2"),
        (class_logits + distill_logits, "the logits are summed: the prediction is their mean, divided by 2"),
        (torch.cat([class_logits, distill_logits], dim=1),
         "the heads are concatenated (Algorithm 1's Concat needs one head over both tokens); the kit averages its "
         "two heads' logits"),
    ]
    _name_the_mistake(evaluated, diagnoses)
    if isinstance(evaluated, tuple):
        raise CheckFailed("at evaluation return one prediction, the mean of the two heads' logits, not a pair")
    raise CheckFailed("at evaluation the prediction differs from the mean of the two heads' logits")


def _diagnose_training_heads(trained: object, tokens: Tensor, class_head: nn.Module, distill_head: nn.Module,
                             class_logits: Tensor, distill_logits: Tensor, mean: Tensor) -> None:
    if _close(trained, mean):
        raise CheckFailed("in training the heads are averaged: return the pair (class_logits, distill_logits), "
                          "since each head has its own loss (eq. 10); the mean is for evaluation")
    if not (isinstance(trained, tuple) and len(trained) == 2):
        raise CheckFailed("in training return a pair: (class_logits, distill_logits)")
    first, second = trained
    diagnoses = [
        (_close(first, distill_logits) and _close(second, class_logits),
         "the pair is (distillation, class): return (class_logits, distill_logits)"),
        (_close(second, distill_head(tokens[:, 1])),
         "the distillation head reads row 1, the first patch: the distillation token is the last row, tokens[:, -1]"),
        (_close(second, distill_head(tokens[:, 0])),
         "the distillation head reads the class token (row 0): it reads the distillation token, tokens[:, -1]"),
        (_close(first, class_head(tokens.mean(dim=1))),
         "the class head reads the mean of all tokens: it reads the class token, tokens[:, 0]"),
        (_close(second, class_head(tokens[:, -1])),
         "the distillation token goes through the class head: it has a head of its own, distill_head"),
    ]
    for wrong, message in diagnoses:
        if wrong:
            raise CheckFailed(message)
    raise CheckFailed("in training the pair differs from (class_head(tokens[:, 0]), distill_head(tokens[:, -1]))")


class _BatchNormTeacher(nn.Module):
    """A tiny CNN with BatchNorm, as the kit's teachers have: in training mode its labels
    depend on the batch and its running statistics move, so a teacher left there shows."""

    def __init__(self, in_chans: int, classes: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(in_chans, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                                    nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, classes))

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)


class _SeededCutMix:
    """The check's ``mix``: notebook 05's CutMix under a fixed seed, so every call (the
    student's step, the engine's, the check's own) mixes the batch the same way."""

    def __init__(self, seed: int, alpha: float) -> None:
        self.seed, self.alpha, self.calls = seed, alpha, 0

    def __call__(self, images: Tensor, labels: Tensor) -> MixedBatch:
        self.calls += 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return cutmix(images, labels, alpha=self.alpha)


@dataclass(frozen=True)
class _StepCase:
    """One case of the training-step check: a tiny TITN after one step (so its optimizer has
    state and its parameters still hold that step's gradients), a teacher, a batch."""

    student: nn.Module
    teacher: nn.Module
    optimizer_kind: str
    optimizer_state: dict
    scheduler_state: dict
    gradients: list[Tensor]
    images: Tensor
    labels: Tensor
    mix_seed: int
    alpha: float

    def fresh(self) -> tuple[nn.Module, nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        """New copies of everything a step changes, in the case's state."""
        student, teacher = copy.deepcopy(self.student).train(), copy.deepcopy(self.teacher).train()
        optimizer, scheduler = _step_optimizer(student, self.optimizer_kind)
        optimizer.load_state_dict(copy.deepcopy(self.optimizer_state))
        scheduler.load_state_dict(self.scheduler_state)
        for parameter, gradient in zip(student.parameters(), self.gradients):
            parameter.grad = gradient.clone()
        return student, teacher, optimizer, scheduler

    def mixed(self) -> MixedBatch:
        return _SeededCutMix(self.mix_seed, 1.0)(self.images, self.labels)


def _step_optimizer(model: nn.Module, kind: str) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    optimizer = (torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9) if kind == "sgd"
                 else torch.optim.AdamW(model.parameters(), lr=0.02))
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(3, 10))  # lr moves every step


def _step_case(seed: int, batch: int, classes: int, optimizer_kind: str, alpha: float) -> _StepCase:
    from titn_lite.models.students import create_model

    torch.manual_seed(seed)
    student = create_model("titn", num_classes=classes, in_chans=1, img_size=16, depth=1, patch_size=8,
                           patch_dim=16, outer_heads=2, pixel_size=4, pixel_dim=4, inner_heads=1)
    teacher = _BatchNormTeacher(1, classes)
    with torch.no_grad():
        teacher(torch.randn(64, 1, 16, 16) * 2 + 0.5)  # running statistics unlike any one batch's
    images, labels = torch.randn(batch, 1, 16, 16), torch.randint(classes, (batch,))
    optimizer, scheduler = _step_optimizer(student, optimizer_kind)
    train_step(student.train(), images.flip(0), labels.flip(0), mix=_no_mixing,
               loss_fn=DistillationLoss(None, "none"), optimizer=optimizer, scheduler=scheduler)  # the step before
    mix_seed = next(s for s in range(seed, seed + 100)  # a box that mixes a fair share, not none or all
                    if 0.3 < _SeededCutMix(s, 1.0)(images, labels).lam < 0.8)
    return _StepCase(student, teacher, optimizer_kind, copy.deepcopy(optimizer.state_dict()),
                     scheduler.state_dict(), [p.grad.clone() for p in student.parameters()], images, labels,
                     mix_seed, alpha)


def _no_mixing(images: Tensor, labels: Tensor) -> MixedBatch:
    return MixedBatch(images, labels, labels, 1.0)


def check_training_step(step_fn: Callable[..., object], *, hidden: bool = False) -> None:
    """Exercise 07b: ``step_fn(student, teacher, images, labels, mix, optimizer, scheduler,
    alpha)``, one optimizer step of Algorithm 2 as the kit reads it. From the same weights,
    optimizer state and batch, it must leave the weights the engine's
    ``titn_lite.train.engine.train_step`` leaves, step the schedule once, and return the loss;
    any order of operations that does so passes."""
    _forbid("check_training_step")
    cases = [(0, 8, 5, "sgd", 0.5)]
    if hidden:
        draws = _draws(hidden)
        cases += [(draws.randrange(1, 10**6), draws.randint(4, 10), draws.randint(3, 7), kind,
                   round(draws.uniform(0.1, 0.9), 2)) for kind in ("adamw", "sgd")]
    for seed, batch, classes, optimizer_kind, alpha in cases:
        _check_training_step_once(step_fn, _step_case(seed, batch, classes, optimizer_kind, alpha))
    _passed("one training step of Algorithm 2")


def _weights(model: nn.Module) -> Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _same_step(after: Tensor, expected: Tensor, before: Tensor) -> bool:
    """Whether two steps from ``before`` moved the weights alike, to float rounding: judged on
    the updates, relative to the largest (AdamW's update of a parameter whose gradient is
    near zero is a ratio of two tiny numbers, so its rounding is larger than the weights')."""
    update = expected - before
    return torch.allclose(after - before, update, rtol=1e-3, atol=1e-3 * float(update.abs().max()) + 1e-9)


def _drive_step(step_fn: Callable[..., object], case: _StepCase) -> dict:
    """Driver: the student's step from the case's state, watched; what the check looks at."""
    student, teacher, optimizer, scheduler = case.fresh()
    schedule_before, mix = scheduler.last_epoch, _SeededCutMix(case.mix_seed, 1.0)
    teacher_calls: list[tuple[bool, Tensor, bool]] = []  # (in training mode, input, built a graph)
    student_inputs: list[Tensor] = []
    teacher.register_forward_hook(lambda module, inputs, output: teacher_calls.append(
        (module.training, inputs[0].detach().clone(), isinstance(output, Tensor) and output.requires_grad)))
    student.register_forward_pre_hook(lambda module, inputs: student_inputs.append(inputs[0].detach().clone()))
    returned = step_fn(student, teacher, case.images, case.labels, mix, optimizer, scheduler, case.alpha)
    return {"returned": returned, "weights": _weights(student),
            "schedule_steps": scheduler.last_epoch - schedule_before,
            "teacher_calls": teacher_calls, "student_inputs": student_inputs, "mix_calls": mix.calls,
            "teacher_gradients": any(p.grad is not None for p in teacher.parameters())}


def _check_training_step_once(step_fn, case: _StepCase) -> None:
    before = _weights(case.student)
    seen = _run("your step", step_fn, case, driver=_drive_step)
    if not isinstance(seen, dict):
        raise CheckFailed("your step sent back something the check did not ask for")
    batch = case.mixed()
    _check_step_calls(seen, batch, case)
    steps = seen["schedule_steps"]
    if steps != 1:
        raise CheckFailed("the learning-rate schedule did not step: the kit's schedule moves after every optimizer "
                          "step (per step, not per epoch), so call scheduler.step() in the step" if steps == 0 else
                          f"the schedule stepped {steps} times: once per step, after optimizer.step()")
    expected_loss, expected = _engine_step(case)
    after, returned = seen["weights"], seen["returned"]
    if not (type(after) is Tensor and after.shape == before.shape):
        raise CheckFailed("your step sent back something the check did not ask for")
    if not _same_step(after, expected, before):
        _diagnose_step(case, before, after)
    try:
        loss = float(returned.detach() if isinstance(returned, Tensor) else returned) \
            if isinstance(returned, (Tensor, float, int)) else float("nan")
    except (TypeError, ValueError, RuntimeError):
        loss = float("nan")
    if math.isnan(loss):
        raise CheckFailed(f"the weights are right, but the step returns {type(returned).__name__}: return the "
                          "loss (a number or a 0-d tensor), which the epoch loop draws")
    if not math.isclose(loss, expected_loss, rel_tol=1e-4, abs_tol=1e-6):
        raise CheckFailed(f"the weights are right, but the step returns {loss:.4f} where the loss was "
                          f"{expected_loss:.4f}: return the loss the step took its gradients from")


def _check_step_calls(seen: dict, batch: MixedBatch, case: _StepCase) -> None:
    """What the step's calls show before any weight is compared: the mixing, the teacher's
    mode, gradients and input, and the student's input."""
    teacher_calls, student_inputs = seen["teacher_calls"], seen["student_inputs"]
    if seen["mix_calls"] == 0:
        raise CheckFailed("the step never mixes the batch: call mix(images, labels) first (notebook 05's CutMix)")
    if not teacher_calls:
        raise CheckFailed("the step never asks the teacher: its argmax labels train the distillation head (eq. 10)")
    if any(training for training, _, _ in teacher_calls):
        raise CheckFailed("the teacher ran in training mode: its BatchNorm then normalises with this batch's "
                          "statistics and updates its running ones; call teacher.eval() before it labels the batch")
    if any(graph for _, _, graph in teacher_calls) or seen["teacher_gradients"]:
        raise CheckFailed("gradients flow into the teacher: its forward built an autograd graph (memory and time "
                          "for nothing, and a soft loss would train the teacher); label under torch.no_grad()")
    if not any(torch.equal(images, batch.images) for _, images, _ in teacher_calls):
        if any(torch.equal(images, case.images) for _, images, _ in teacher_calls):
            raise CheckFailed("the teacher labels the unmixed images. That is another reading of Algorithm 2, which "
                              "does not say whether its x is mixed; the kit reads it as DeiT's code does: the teacher "
                              "labels the mixed images the student sees (batch.images)")
        raise CheckFailed("the teacher never sees the mixed images: give it batch.images, what the student sees")
    if not any(torch.equal(images, batch.images) for images in student_inputs):
        if any(torch.equal(images, case.images) for images in student_inputs):
            raise CheckFailed("the labels are mixed but the images are not: the student must see the mixed images, "
                              "batch.images, for the mixed labels to describe them")
        raise CheckFailed("the student never sees the mixed images (batch.images)")


def _engine_step(case: _StepCase, **mistake: str) -> tuple[float, Tensor]:
    """The engine's step from the case's state (``train_step``), or with ``mistake`` one of
    the common mistakes made on purpose; returns the loss and the weights after."""
    student, teacher, optimizer, scheduler = case.fresh()
    if not mistake:
        result = train_step(student, case.images, case.labels, mix=_SeededCutMix(case.mix_seed, 1.0),
                            loss_fn=DistillationLoss(teacher, "hard", alpha=case.alpha), optimizer=optimizer,
                            scheduler=scheduler)
        return float(result.loss), _weights(student)
    batch = case.mixed()
    class_logits, distill_logits = student(batch.images)
    if mistake.get("heads") == "averaged":
        class_logits = distill_logits = (class_logits + distill_logits) / 2
    with torch.no_grad():
        teacher_labels = teacher.eval()(batch.images).argmax(dim=1)
    own_label_only = mistake.get("labels") == "unmixed"
    class_term = (F.cross_entropy(class_logits, batch.labels) if own_label_only
                  else mixed_cross_entropy(class_logits, batch))
    alpha = 1 - case.alpha if mistake.get("alpha") == "swapped" else case.alpha
    loss = alpha * class_term + (1 - alpha) * F.cross_entropy(distill_logits, teacher_labels)
    if mistake.get("zero_grad") != "missing":
        optimizer.zero_grad()
    loss.backward()
    if mistake.get("schedule") == "first":
        scheduler.step()
    optimizer.step()
    if mistake.get("schedule") != "first":
        scheduler.step()
    return loss.item(), _weights(student)


_STEP_MISTAKES = [
    ({"zero_grad": "missing"}, "the gradients of the step before were added to this step's: call "
                               "optimizer.zero_grad() before backward(), since backward() accumulates"),
    ({"labels": "unmixed"}, "the images are mixed but the class head learns each image's own label only: use eq. 9 "
                            "(lam * CE(labels) + (1 - lam) * CE(partner labels))"),
    ({"heads": "averaged"}, "the heads are averaged in training: each head has its own loss (eq. 10), the class head "
                            "on the labels, the distillation head on the teacher's"),
    ({"schedule": "first"}, "the schedule stepped before the optimizer: the step used the next step's learning rate; "
                            "call optimizer.step(), then scheduler.step()"),
    ({"alpha": "swapped"}, "alpha weights the teacher's term: in eq. 10 alpha weights the class head's CutMix loss "
                           "and 1 - alpha the teacher's"),
]


def _diagnose_step(case: _StepCase, before: Tensor, after: Tensor) -> None:
    if torch.equal(after, before):
        raise CheckFailed("the weights did not change: the step must call loss.backward() and optimizer.step()")
    for mistake, message in _STEP_MISTAKES:
        if _same_step(after, _engine_step(case, **mistake)[1], before):
            raise CheckFailed(message)
    gap = float((after - _engine_step(case)[1]).abs().max())
    raise CheckFailed(f"after your step the weights differ from the engine's train_step by up to {gap:.2g}: compare "
                      "each part with the list under the exercise (mixing, the two heads, the teacher's labels, "
                      "eq. 9 and 10, zero_grad, backward, optimizer and schedule)")


def check_most_confused(most_confused: Callable[[Tensor], tuple], confusion: Tensor | None = None,
                        class_names: list[str] | None = None, *, hidden: bool = False) -> None:
    """Exercise 06: ``most_confused(confusion) -> (true class, predicted class)``: the
    largest off-diagonal cell of a confusion matrix whose rows are the true classes.
    Then applied to the student's own teacher, whose answer it prints."""
    _forbid("check_most_confused")
    cases = [torch.tensor([[50, 2, 9], [1, 40, 0], [3, 12, 45]])]
    if hidden:  # matrices of other sizes, the largest mix-up in a random cell, one of them above a diagonal entry
        draws = _draws(hidden)
        for size in (draws.randint(4, 7), draws.randint(3, 5)):
            matrix = torch.randint(0, 30, (size, size), generator=_generator(draws)) + 200 * torch.eye(size,
                                                                                                    dtype=torch.long)
            true, predicted = draws.sample(range(size), 2)
            matrix[true, predicted] = 31 + draws.randrange(300)  # the one largest: any correct answer names it
            cases.append(matrix)
    for matrix in cases:
        off = matrix.clone()
        off.fill_diagonal_(-1)
        best = int(off.max())
        answer = _run("your most_confused", most_confused, matrix.clone())
        try:
            true, predicted = (int(x) for x in answer)
        except (TypeError, ValueError):
            raise CheckFailed("return a pair (true class, predicted class), e.g. (3, 1), not "
                              f"{type(answer).__name__}") from None
        n = matrix.shape[0]
        if not (0 <= true < n and 0 <= predicted < n):
            raise CheckFailed(f"({true}, {predicted}) is not a cell of this {n} x {n} matrix")
        if true == predicted:
            raise CheckFailed("you picked a cell on the diagonal: those count the right answers; skip the diagonal")
        if int(off[true, predicted]) == best:
            continue
        if int(off[predicted, true]) == best:
            raise CheckFailed("the pair is the wrong way round: rows are the true class, columns the prediction, "
                              "so return (row, column)")
        if int(matrix[true, predicted]) == int(off.min()) or int(off[true, predicted]) < int(off.median()):
            raise CheckFailed("you picked a small cell: the mix-up to report is the largest off-diagonal count")
        raise CheckFailed(f"cell ({true}, {predicted}) holds {int(matrix[true, predicted])}, but another "
                          f"off-diagonal cell holds {best}: find the largest count off the diagonal")
    if confusion is not None:
        confusion = torch.as_tensor(confusion)
        true, predicted = (int(x) for x in _run("your most_confused", most_confused, confusion.clone()))
        names = class_names or [str(i) for i in range(confusion.shape[0])]
        print(f"your teacher's most frequent mistake: {names[true]} taken for {names[predicted]} "
              f"({int(confusion[true, predicted])} test images)")
    _passed("the most confused pair")


def _best_keys(table: dict[str, float]) -> set[str]:
    top = max(table.values())
    return {k for k, v in table.items() if v == top}


def check_head_to_trust(head_to_trust: Callable[[dict, dict], str], top1: dict | None = None,
                        agreement: dict | None = None, *, hidden: bool = False) -> None:
    """Exercise 07c: ``head_to_trust(top1, agreement) -> row name``: the row of the
    two-head table (class head, distillation head, their mean) to trust for predicting the
    labels, from each row's top-1 and its agreement with the teacher. Then applied to the
    student's own run."""
    rows = ("class head", "distillation head", "mean (what TITN predicts)")
    _forbid("check_head_to_trust")
    cases = [((61.0, 62.5, 63.0), (70.0, 88.0, 80.0))]
    if hidden:  # each row the best once, in random order; agreement highest somewhere else
        draws = _draws(hidden)
        for best in draws.sample(range(3), 3):
            accuracy = [round(draws.uniform(40, 80), 1) for _ in range(3)]
            accuracy[best] = max(accuracy) + round(draws.uniform(0.5, 3), 1)
            agree = [round(draws.uniform(40, 95), 1) for _ in range(3)]
            agree[(best + 1) % 3] = max(agree) + 1.0
            cases.append((tuple(accuracy), tuple(agree)))
    for accuracy, agree in cases:
        top1_case, agree_case = dict(zip(rows, accuracy)), dict(zip(rows, agree))
        answer = _run("your head_to_trust", head_to_trust, dict(top1_case), dict(agree_case))
        if answer not in rows:
            raise CheckFailed(f"return one of the table's row names ({', '.join(rows)}), not {answer!r}")
        if answer in _best_keys(top1_case):
            continue
        if answer == min(top1_case, key=top1_case.get):
            raise CheckFailed("you picked the lowest top-1: trust the highest")
        best_head = max(rows[:2], key=top1_case.get)
        if answer in _best_keys(agree_case) and answer == best_head and _best_keys(top1_case) == {rows[2]}:
            raise CheckFailed(f"you picked the {answer}, which agrees most with the teacher and is the better head, "
                              f"but the mean of the heads scores higher: agreement with the teacher is not accuracy, "
                              f"and the mean (what TITN predicts) is a row too")
        if answer in _best_keys(agree_case):
            raise CheckFailed("you picked the row that agrees most with the teacher: agreement with the teacher is "
                              "not accuracy (the teacher is wrong too); trust the highest top-1")
        if _best_keys(top1_case) == {rows[2]}:
            raise CheckFailed("the mean of the two heads is a row too (it is what TITN predicts): here it scores "
                              "highest, so trust it")
        raise CheckFailed(f"{answer!r} does not have the highest top-1 in {top1_case}")
    if top1 is not None:
        answer = _run("your head_to_trust", head_to_trust, dict(top1), dict(agreement or {}))
        if answer not in _best_keys(top1):
            raise CheckFailed(f"on your run you chose {answer!r}, but {sorted(_best_keys(top1))} scored higher")
        print(f"on your run, trust: {answer} (top-1 {top1[answer]:.1f}% on the validation images, one seed; "
              f"heads a few images apart are within the noise, and no chapter tests which head wins over seeds)")
    _passed("which head to trust")


def _as_numbers(answer: object, count: int, what: str) -> tuple[float, ...]:
    try:
        numbers = tuple(float(x) for x in (answer if isinstance(answer, (tuple, list)) else (answer,)))
    except (TypeError, ValueError):
        raise CheckFailed(f"return {what}, as numbers; got {type(answer).__name__}") from None
    if len(numbers) != count:
        raise CheckFailed(f"return {what}: {count} number(s), got {len(numbers)}")
    return numbers


def check_paired_difference(paired_difference: Callable[[list, list], tuple], accuracy: dict | None = None,
                            pairs: list | None = None, *, hidden: bool = False) -> None:
    """Exercise 08: ``paired_difference(first, second) -> (mean difference, standard error)``:
    two models' per-seed top-1 (seed k of one beside seed k of the other); the mean of the
    per-seed differences first - second and its standard error (sample standard deviation
    of the differences / sqrt(seeds)). The mean alone right earns half the points. Then
    applied to the student's own seed table."""
    _forbid("check_paired_difference")
    cases = [([71.0, 68.5, 70.0, 72.5], [69.0, 67.0, 69.5, 70.0])]
    if hidden:  # 3 to 6 seeds, the differences of either sign
        draws = _draws(hidden)
        for seeds in (3, draws.randint(4, 6)):
            first = [round(draws.uniform(50, 85), 1) for _ in range(seeds)]
            cases.append((first, [round(a - draws.uniform(-3, 3), 1) for a in first]))
    for first, second in cases:
        diffs = torch.tensor(first, dtype=torch.float64) - torch.tensor(second, dtype=torch.float64)
        n = len(first)
        mean, se = float(diffs.mean()), float(diffs.std() / math.sqrt(n))
        got_mean, got_se = _as_numbers(_run("your paired_difference", paired_difference, list(first), list(second)),
                                       2, "a pair (mean difference, standard error)")
        if abs(got_mean + mean) < 1e-6 and abs(mean) > 1e-6:
            raise CheckFailed("the difference has the wrong sign: first minus second, seed by seed")
        if abs(got_mean - mean) > 1e-6:
            raise CheckFailed(f"the mean difference is {got_mean:.3f}; the per-seed differences first - second "
                              f"average {mean:.3f}")
        if abs(got_se - se) < 1e-6:
            continue
        a, b = torch.tensor(first, dtype=torch.float64), torch.tensor(second, dtype=torch.float64)
        diagnoses = [
            (float(torch.sqrt(a.var() / n + b.var() / n)), "the standard error is the unpaired one (each model's "
             "spread on its own): pair the seeds, take the differences, and use their spread"),
            (float(diffs.std()), "that is the standard deviation of the differences: divide it by sqrt(seeds) "
             "for the standard error of their mean"),
            (float(diffs.std(unbiased=False) / math.sqrt(n)), "the spread is divided by n: the sample standard "
             "deviation divides by n - 1"),
            (float(diffs.var() / n), "that is a variance: take its square root"),
        ]
        for wrong, message in diagnoses:
            if abs(got_se - wrong) < 1e-6:
                raise CheckFailed(message, credit=0.5)
        raise CheckFailed(f"the standard error is {got_se:.3f}; the differences' sample standard deviation over "
                          f"sqrt(seeds) is {se:.3f}", credit=0.5)
    if accuracy is not None and pairs:
        first_name, second_name = pairs[0]
        first, second = list(accuracy[first_name].values), list(accuracy[second_name].values)
        if len(first) < 2:
            print(f"your run has {len(first)} seed per model: no spread to take a standard error of")
        else:
            got_mean, got_se = _as_numbers(_run("your paired_difference", paired_difference, first, second),
                                           2, "a pair (mean difference, standard error)")
            print(f"your run, {first_name} - {second_name}: {got_mean:+.2f} ± {got_se:.2f} points over "
                  f"{len(first)} seeds (the table above: the same mean)")
    _passed("the paired difference")


def check_interval_verdict(verdict: Callable[[float, float], int], intervals: list | None = None, *,
                           hidden: bool = False) -> None:
    """Exercise 10: ``verdict(low, high) -> +1, -1 or 0``: the interval of a difference
    (change minus reference, in points): +1 where it shows the change helps (the whole
    interval above 0), -1 where it hurts (below 0), 0 where it cannot tell (0 inside).
    Then applied to the student's own intervals (``stats.Interval``), each printed with its
    stated coverage."""
    _forbid("check_interval_verdict")
    cases = [(0.4, 2.1, 1), (-3.0, -0.2, -1), (-0.5, 2.5, 0), (-2.5, 0.5, 0)]
    if hidden:  # near 0 on either side, and wide ones
        draws = _draws(hidden)
        for _ in range(6):
            low = draws.choice([draws.uniform(1e-3, 0.05), draws.uniform(-6, 6)])
            high = low + draws.uniform(0.01, 9)
            cases.append((low, high, 1 if low > 0 else -1 if high < 0 else 0))
            cases.append((-high, -low, 1 if -high > 0 else -1 if -low < 0 else 0))
    for low, high, right in cases:
        got = _run("your verdict", verdict, low, high)
        if got not in (1, 0, -1) or isinstance(got, bool):
            raise CheckFailed(f"return +1, -1 or 0, not {got!r}")
        if got == right:
            continue
        if right == 0 and got == (1 if (low + high) > 0 else -1):
            raise CheckFailed(f"the interval {low:+.1f} to {high:+.1f} holds 0: no difference is still possible, "
                              "so it cannot tell, whatever side its middle is on (return 0)")
        if right == 0:
            raise CheckFailed(f"the interval {low:+.1f} to {high:+.1f} holds 0: it cannot tell (return 0)")
        if got == -right:
            raise CheckFailed("the sign is reversed: an interval above 0 means the change scored higher (+1)")
        raise CheckFailed(f"the interval {low:+.1f} to {high:+.1f} lies entirely on one side of 0: it shows a "
                          f"difference (return {right:+d})")
    for interval in intervals or []:
        low, high = interval
        name = getattr(interval, "name", "interval (coverage not stated)")
        said = _run('your verdict', verdict, low, high)
        print(f"your run: {name} {low:+.1f} to {high:+.1f} -> {said:+d}" if said else
              f"your run: {name} {low:+.1f} to {high:+.1f} -> 0 (cannot tell)")
    _passed("the verdict from an interval")


def check_ruled_out(ruled_out: Callable[[float, float, float], bool], intervals: list | None = None,
                    effect: float | None = None, *, hidden: bool = False) -> None:
    """Exercise 11: ``ruled_out(low, high, effect) -> bool``: whether an interval of a
    difference rules out an effect of that size (the effect lies outside the interval).
    Then applied to the student's own intervals and the design's detectable difference: an
    interval rules out only at its stated coverage (``stats.Interval.name``), so one without a
    stated coverage is not read."""
    _forbid("check_ruled_out")
    cases = [(-1.0, 3.0, 4.0, True), (-1.0, 3.0, 2.0, False), (-1.0, 3.0, -2.0, True), (0.5, 6.0, 0.0, True),
             (-3.0, 1.0, 2.0, True)]
    if hidden:  # an effect inside, below and above intervals on either side of 0
        draws = _draws(hidden)
        for _ in range(3):
            low = round(draws.uniform(-6, 3), 1)
            high = round(low + draws.uniform(0.5, 5), 1)
            for size in (round(draws.uniform(low + 0.1, high - 0.1), 2), low - 1.5, high + 1.5):
                cases.append((low, high, size, not low <= size <= high))
    answers = []
    for low, high, size, _ in cases:
        got = _run("your ruled_out", ruled_out, low, high, size)
        if not isinstance(got, (bool, int)) or got not in (True, False):
            raise CheckFailed(f"return True or False, not {got!r}")
        answers.append(bool(got))
    right = [r for *_, r in cases]
    if answers != right:
        mistakes = [
            ([not (low <= 0 <= high) for low, high, _, _ in cases],
             "you answered whether the interval excludes 0 (whether there is a difference at all), not whether it "
             "excludes this effect: an interval that holds 0 can still rule out a large effect"),
            ([low <= size <= high for low, high, size, _ in cases],
             "reversed: an effect inside the interval is still possible; outside it, ruled out"),
            ([size > high for low, high, size, _ in cases],
             "only the upper end is checked: an effect below the interval's lower end is ruled out too"),
            ([abs(size) > max(abs(low), abs(high)) for low, high, size, _ in cases],
             "the sizes are compared without their signs: an effect of -2 is ruled out by an interval from -1 to 3"),
        ]
        for wrong, message in mistakes:
            if answers == wrong:
                raise CheckFailed(message)
        low, high, size, expected = next(c for c, a in zip(cases, answers) if c[3] != a)
        raise CheckFailed(f"an effect is ruled out exactly when it lies outside the interval: {size:+.1f} against "
                          f"{low:+.1f} to {high:+.1f} is {'ruled out' if expected else 'still possible'}")
    for interval in intervals or []:
        low, high = interval
        name = getattr(interval, "name", None)
        if effect is not None and name is None:
            print(f"your run: the interval {low:+.1f} to {high:+.1f} states no coverage, so it rules out nothing")
        elif effect is not None:
            gain, loss = (_run("your ruled_out", ruled_out, low, high, size) for size in (abs(effect), -abs(effect)))
            print(f"your run: the {name} {low:+.1f} to {high:+.1f} rules out, at that coverage, a gain of "
                  f"{abs(effect):.1f} points: {'yes' if gain else 'no'}; a loss as large: {'yes' if loss else 'no'}")
    _passed("what an interval rules out")
