"""The paper's training augmentation (``train_transform(info, "paper")``) on whole batches.

The DataLoader path gives each image its own random draw of the paper's transforms, one
PIL image at a time in worker processes; it stays the reference. This module does the same
recipe to a whole batch of decoded uint8 images (``datasets.TensorSplit``) at once, on the
batch's device, each image still with its own draw:

- CIFAR: AutoAugment's CIFAR-10 policy (a sub-policy drawn per image, each of its two
  operations applied with its probability and, where signed, its own sign), then a random
  crop after 4 pixels of zero padding and a horizontal flip with probability 1/2.
- MNIST-like: a random crop after 2 pixels of padding, a rotation of up to 10 degrees, an
  affine map (translation up to 10% in whole pixels, scale 0.9-1.1) and colour jitter
  (brightness and contrast factors in 0.8-1.2, applied in a random order), each drawn per
  image: one matrix per image and one ``grid_sample`` per batch for each geometric step.

How it matches the reference:

- Every random parameter is drawn by ``draw`` on the CPU from a ``torch.Generator`` (the
  global one when none is given, which the engine's ``seed_epoch`` seeds), with the
  distributions torchvision's transforms draw from; the crop and the flip are
  ``datasets.random_crop_offsets`` and ``datasets.random_flips``, shared with the light
  recipe. So the same seed gives the same draw on any device, and a resumed epoch replays
  its augmentation exactly.
- ``apply`` does the drawn parameters. AutoAugment's operations have a fixed magnitude per
  sub-policy slot, so the images of a batch fall into a few groups (operation, magnitude,
  sign) and each group goes through torchvision's public kernel for that operation
  (``torchvision.transforms.v2.functional``) once: pixel for pixel the reference's output.
  The policy itself is data here (``CIFAR10_POLICY``, ``MAGNITUDE_RANGES``), since
  torchvision keeps its copy private. The MNIST recipe's parameters are continuous; its
  steps are written here on batches with per-image matrices and factors, in the same
  arithmetic as torchvision's kernels (on a CPU: equal images, but for a rare pixel one grey
  level off where the colour jitter's float rounding differs).

torchvision is imported only inside the functions that use it: importing this module does
not load it. ``tests/test_augment.py`` checks the policy against torchvision's, the images
against the reference's for the same parameters, and the parameters' distributions against
torchvision's; ``benchmarks/augment_speed.py`` measures the speed of both paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from titn_lite.data.datasets import (
    IMG_SIZE,
    BatchNormalisation,
    DatasetInfo,
    flip_where,
    pad_and_crop,
    random_crop_offsets,
    random_flips,
    train_transform,
)

if TYPE_CHECKING:  # torchvision takes seconds to import: only when a batch is augmented
    from torchvision.transforms import v2


# --- AutoAugment's CIFAR-10 policy, as data --------------------------------------------
# Cubuk, Zoph, Mané, Vasudevan and Le, "AutoAugment: Learning Augmentation Policies from
# Data", CVPR 2019 (arXiv:1805.09501): the policy its search found on reduced CIFAR-10, 25
# sub-policies of two operations, each (operation, probability, magnitude bin of 10; None
# where the operation has no magnitude), as torchvision's v2.AutoAugment(CIFAR10) applies it.
# torchvision's own table is private; tests/test_augment.py checks this one equals it.

Operation = tuple[str, float, int | None]
CIFAR10_POLICY: tuple[tuple[Operation, Operation], ...] = (
    (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
    (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
    (("Color", 0.9, 9), ("Equalize", 0.6, None)),
    (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, None), ("Invert", 0.1, None)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
)

MAGNITUDE_BINS = 10
# Each operation's magnitude at the first and the last bin (evenly spaced between), and
# whether a draw negates it with probability 1/2: the paper's ranges (shear 0.3, translation
# 150 of 331 pixels, rotation 30 degrees, enhancement factors 1 +- 0.9, 8 to 4 bits, a
# threshold from the top of the range to 0). Translations are fractions of the image's side.
MAGNITUDE_RANGES: dict[str, tuple[float, float, bool]] = {
    "ShearX": (0.0, 0.3, True),
    "ShearY": (0.0, 0.3, True),
    "TranslateX": (0.0, 150.0 / 331.0, True),
    "TranslateY": (0.0, 150.0 / 331.0, True),
    "Rotate": (0.0, 30.0, True),
    "Brightness": (0.0, 0.9, True),
    "Color": (0.0, 0.9, True),
    "Contrast": (0.0, 0.9, True),
    "Sharpness": (0.0, 0.9, True),
    "Posterize": (8.0, 4.0, False),
    "Solarize": (1.0, 0.0, False),
}


def takes_a_sign(name: str) -> bool:
    """Whether AutoAugment negates operation ``name``'s magnitude half of the time."""
    return name in MAGNITUDE_RANGES and MAGNITUDE_RANGES[name][2]


def operation_magnitude(name: str, magnitude_bin: int | None, height: int, width: int) -> float:
    """The unsigned magnitude of AutoAugment operation ``name`` at ``magnitude_bin`` for
    height x width images (0.0 for the operations without one), computed as torchvision does:
    float32 ``linspace`` over the bins, bits of Posterize rounded to whole ones."""
    if name not in MAGNITUDE_RANGES:
        return 0.0
    first, last, _ = MAGNITUDE_RANGES[name]
    side = {"TranslateX": width, "TranslateY": height}.get(name)
    values = torch.linspace(first, last if side is None else last * side, MAGNITUDE_BINS)
    if name == "Posterize":
        values = values.round()  # whole bits
    return float(values[magnitude_bin])


def autoaugment_operation(images: Tensor, name: str, magnitude: float) -> Tensor:
    """AutoAugment operation ``name`` at ``magnitude`` (signed) on every image of ``images``
    (B, C, H, W) uint8 -> (B, C, H, W) uint8, as v2.AutoAugment applies it to one image:
    torchvision's public kernels, nearest-neighbour resampling, zeros where a geometric step
    uncovers the image."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF
    nearest = InterpolationMode.NEAREST
    if name in ("ShearX", "ShearY"):
        # torchvision shears by the angle whose tangent is the magnitude, about the top-left corner
        degrees = math.degrees(math.atan(magnitude))
        shear = [degrees, 0.0] if name == "ShearX" else [0.0, degrees]
        return TF.affine(images, angle=0.0, translate=[0, 0], scale=1.0, shear=shear, interpolation=nearest,
                         center=[0, 0])
    if name in ("TranslateX", "TranslateY"):
        shift = int(magnitude)  # whole pixels, rounded towards zero
        translate = [shift, 0] if name == "TranslateX" else [0, shift]
        return TF.affine(images, angle=0.0, translate=translate, scale=1.0, shear=[0.0, 0.0], interpolation=nearest)
    if name == "Rotate":
        return TF.rotate(images, angle=magnitude, interpolation=nearest)
    enhancements = {"Brightness": TF.adjust_brightness, "Color": TF.adjust_saturation,
                    "Contrast": TF.adjust_contrast, "Sharpness": TF.adjust_sharpness}
    if name in enhancements:
        return enhancements[name](images, 1.0 + magnitude)
    if name == "Posterize":
        return TF.posterize(images, bits=int(magnitude))
    if name == "Solarize":
        return TF.solarize(images, threshold=torch.iinfo(images.dtype).max * magnitude)
    unmagnituded = {"AutoContrast": TF.autocontrast, "Equalize": TF.equalize, "Invert": TF.invert}
    if name in unmagnituded:
        return unmagnituded[name](images)
    raise ValueError(f"no AutoAugment operation {name!r}")


# --- what is drawn ---------------------------------------------------------------------

@dataclass(frozen=True)
class CifarDraw:
    """One batch's random parameters of the CIFAR recipe, one row per image (CPU tensors).

    policy: (B,) index of the AutoAugment sub-policy; applied, negated: (B, 2) bool, whether
    each of its two operations is applied, and with its magnitude negated; top, left: (B,)
    crop offsets in the padded image (0 to 2 * padding); flip: (B,) bool."""

    policy: Tensor
    applied: Tensor
    negated: Tensor
    top: Tensor
    left: Tensor
    flip: Tensor


@dataclass(frozen=True)
class MnistDraw:
    """One batch's random parameters of the MNIST recipe, one row per image (CPU tensors).

    top, left: (B,) crop offsets (0 to 2 * padding); angle: (B,) rotation in degrees
    (float64); translate: (B, 2) whole pixels (x, y); scale: (B,) float64; brightness,
    contrast: (B,) factors (float64); brightness_first: (B,) bool, the jitter's order."""

    top: Tensor
    left: Tensor
    angle: Tensor
    translate: Tensor
    scale: Tensor
    brightness: Tensor
    contrast: Tensor
    brightness_first: Tensor


Draw = CifarDraw | MnistDraw


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    """``n`` draws of U(low, high) as torchvision makes one (float32 ``uniform_``), in float64."""
    return torch.empty(n).uniform_(low, high, generator=generator).double()


def _step_name(value: object) -> str:
    """An interpolation mode as a string, whether given as the enum or as its value."""
    return str(getattr(value, "value", value))


# --- the batch path --------------------------------------------------------------------

class PaperAugmentation:
    """``train_transform(info, "paper")`` on a whole batch: (B, C, 32, 32) uint8 on any device
    -> (B, C, 32, 32) float32, normalised, each image with its own random draw.

    ``augment(images, generator)`` draws and applies (``generator``: a CPU ``torch.Generator``;
    None uses the global one, as the rest of the engine's epoch does); ``draw`` and ``apply``
    do the two halves, to replay or inspect a draw. Drop-in for ``datasets.BatchAugmentation``:
    called with the images alone, it returns them augmented and normalised."""

    def __init__(self, info: DatasetInfo) -> None:
        self.info = info
        self.recipe = info.recipe
        self.normalise = BatchNormalisation(info)
        # The settings are read from the reference's own transforms, so the two cannot drift
        # apart; a change this class does not do is refused rather than ignored.
        steps = {type(step).__name__: step for step in train_transform(info, "paper").transforms}
        expected = (["ToImage", "Resize", "AutoAugment", "RandomCrop", "RandomHorizontalFlip"] if self.recipe == "cifar"
                    else ["ToImage", "Resize", "RandomCrop", "RandomRotation", "RandomAffine", "ColorJitter"])
        if list(steps) != expected + ["ToDtype", "Normalize"]:
            raise NotImplementedError(f"PaperAugmentation does {expected}, not {list(steps)}")
        crop = steps["RandomCrop"]
        self.padding = crop.padding[0]
        if crop.padding != [self.padding] * 4 or crop.padding_mode != "constant" or crop.fill not in (0, None):
            raise NotImplementedError(f"PaperAugmentation pads evenly with zeros, not {crop.padding} "
                                      f"({crop.padding_mode})")
        if self.recipe == "cifar":
            self._read_cifar_settings(steps["AutoAugment"], steps["RandomHorizontalFlip"])
        else:
            self._read_mnist_settings(steps["RandomRotation"], steps["RandomAffine"], steps["ColorJitter"])

    def _read_cifar_settings(self, autoaugment: v2.AutoAugment, flip: v2.RandomHorizontalFlip) -> None:
        from torchvision.transforms.v2 import AutoAugmentPolicy
        if (autoaugment.policy != AutoAugmentPolicy.CIFAR10 or _step_name(autoaugment.interpolation) != "nearest"
                or autoaugment.fill not in (None, 0)):
            raise NotImplementedError("PaperAugmentation does AutoAugment's CIFAR-10 policy with nearest-neighbour "
                                      "resampling and zero fill")
        self.policies = CIFAR10_POLICY
        self.flip_probability = flip.p
        self.probabilities = torch.tensor([[p for _, p, _ in sub] for sub in self.policies], dtype=torch.float32)
        self.signed = torch.tensor([[takes_a_sign(name) for name, _, _ in sub] for sub in self.policies])
        # Per slot, its distinct (operation, magnitude bin)s and each sub-policy's among them:
        # sub-policies whose slot holds the same operation share one group when applied.
        self.slot_operations: list[list[tuple[str, int | None]]] = []
        self.slot_operation_of_policy: list[Tensor] = []
        for slot in (0, 1):
            operations = list(dict.fromkeys((sub[slot][0], sub[slot][2]) for sub in self.policies))
            self.slot_operations.append(operations)
            self.slot_operation_of_policy.append(
                torch.tensor([operations.index((sub[slot][0], sub[slot][2])) for sub in self.policies]))

    def _read_mnist_settings(self, rotation: v2.RandomRotation, affine: v2.RandomAffine,
                             jitter: v2.ColorJitter) -> None:
        if (rotation.expand or rotation.center is not None or list(affine.degrees) != [0.0, 0.0]
                or affine.shear is not None or affine.center is not None or jitter.saturation or jitter.hue
                or {_step_name(mode) for mode in (rotation.interpolation, affine.interpolation)} != {"nearest"}):
            raise NotImplementedError("PaperAugmentation does a centred nearest-neighbour rotation, a translation "
                                      "and scale without rotation or shear, and brightness and contrast jitter")
        self.degrees = tuple(rotation.degrees)
        self.translate = tuple(affine.translate)
        self.scale = tuple(affine.scale)
        self.brightness = tuple(jitter.brightness)
        self.contrast = tuple(jitter.contrast)

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``images`` (B, C, 32, 32) uint8 -> (B, C, 32, 32) float32, augmented and normalised."""
        return self.normalise(self.augment(images, generator))

    def augment(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``images`` (B, C, 32, 32) uint8 augmented, still uint8."""
        return self.apply(images, self.draw(len(images), generator))

    # drawing --------------------------------------------------------------------------

    def draw(self, batch_size: int, generator: torch.Generator | None = None) -> Draw:
        """Every random parameter of ``batch_size`` images, on the CPU: the crop's first, then
        the recipe's own in the order the fields are listed."""
        g = generator
        top, left = random_crop_offsets(batch_size, self.padding, g)
        if self.recipe == "cifar":
            policy = torch.randint(len(self.policies), (batch_size,), generator=g)
            applied = torch.rand(batch_size, 2, generator=g, dtype=torch.float32) <= self.probabilities[policy]
            negated = torch.rand(batch_size, 2, generator=g) <= 0.5
            flip = random_flips(batch_size, self.flip_probability, g)
            return CifarDraw(policy, applied, negated & self.signed[policy], top, left, flip)
        angle = _uniform(batch_size, *self.degrees, g)
        # RandomAffine: int(round(U(-max_d, max_d))) whole pixels on each axis, max_d a fraction of the side
        shifts = [_uniform(batch_size, -fraction * side, fraction * side, g).round().long()
                  for fraction, side in zip(self.translate, (IMG_SIZE, IMG_SIZE), strict=True)]
        translate = torch.stack(shifts, dim=1)
        scale = _uniform(batch_size, *self.scale, g)
        brightness = _uniform(batch_size, *self.brightness, g)
        contrast = _uniform(batch_size, *self.contrast, g)
        # ColorJitter applies its operations in the order of randperm(4); of brightness (0)
        # and contrast (1), each comes first in half of the permutations.
        brightness_first = torch.rand(batch_size, generator=g) < 0.5
        return MnistDraw(top, left, angle, translate, scale, brightness, contrast, brightness_first)

    # applying -------------------------------------------------------------------------

    @torch.no_grad()
    def apply(self, images: Tensor, draw: Draw) -> Tensor:
        """``images`` (B, C, 32, 32) uint8 with ``draw``'s parameters, still uint8."""
        if images.dtype != torch.uint8:
            raise TypeError(f"PaperAugmentation takes uint8 images, not {images.dtype}")
        if self.recipe == "cifar":
            assert isinstance(draw, CifarDraw)
            for slot in (0, 1):
                images = self._autoaugment_slot(images, draw, slot)
            images = pad_and_crop(images, self.padding, draw.top, draw.left)
            return flip_where(images, draw.flip)
        assert isinstance(draw, MnistDraw)
        images = pad_and_crop(images, self.padding, draw.top, draw.left)
        # RandomRotation turns by the angle (taken mod 360) counter-clockwise: the inverse map turns back.
        images = warp(images, inverse_affine_matrices(-(draw.angle % 360), torch.zeros(len(draw.angle), 2),
                                                      torch.ones_like(draw.angle)))
        # RandomAffine(degrees=0, translate, scale): a shift and a scale about the centre.
        images = warp(images, inverse_affine_matrices(torch.zeros_like(draw.angle), draw.translate.double(),
                                                      draw.scale))
        return colour_jitter(images, draw.brightness, draw.contrast, draw.brightness_first)

    def _autoaugment_slot(self, images: Tensor, draw: CifarDraw, slot: int) -> Tensor:
        """One of the two operations of each image's sub-policy, where applied: the images
        sorted into groups of one (operation, magnitude bin, sign), each group through the
        operation's kernel at once. images: (B, C, H, W) uint8 -> the same."""
        operations = self.slot_operations[slot]
        # A group per image: its operation's index among this slot's, times two, plus its
        # sign; -1 for the images left as they are.
        group = self.slot_operation_of_policy[slot][draw.policy] * 2 + draw.negated[:, slot].long()
        group = torch.where(draw.applied[:, slot], group, -1)
        keys, counts = torch.unique(group, return_counts=True)
        if keys.tolist() == [-1]:
            return images
        # The changed images copied out once, sorted so that each group is one run of them:
        # each operation then reads and writes a slice, with no index per group.
        untouched = int(counts[0]) if keys[0] == -1 else 0
        changed = torch.argsort(group, stable=True)[untouched:].to(images.device)
        grouped = images.index_select(0, changed)
        height, width = images.shape[-2:]
        start = 0
        for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
            if key < 0:
                continue
            name, magnitude_bin = operations[key // 2]
            magnitude = operation_magnitude(name, magnitude_bin, height, width) * (-1.0 if key % 2 else 1.0)
            run = grouped[start:start + count]
            run.copy_(autoaugment_operation(run, name, magnitude))
            start += count
        output = images.clone()
        output[changed] = grouped
        return output


# --- the MNIST recipe's steps, on batches ------------------------------------------------

def inverse_affine_matrices(angle: Tensor, translate: Tensor, scale: Tensor) -> Tensor:
    """(B, 2, 3) float64: for each image, the map from output pixels back to input pixels (in
    pixel units from the image's centre, no shear) that torchvision's affine and rotate kernels
    build, in the same arithmetic. angle: (B,) degrees; translate: (B, 2) pixels; scale: (B,)."""
    radians = angle.double() * (math.pi / 180.0)  # as math.radians
    shift_x, shift_y = translate.double().unbind(1)
    scale = scale.double()
    cos, sin = torch.cos(radians), torch.sin(radians)
    # The forward map turns and scales about the centre, then shifts; its inverse undoes them
    # in turn. The same float64 operations as torchvision's, so the matrices agree bit for bit.
    m0, m1, m3, m4 = cos / scale, sin / scale, -sin / scale, cos / scale
    m2 = 0.0 - m0 * shift_x - m1 * shift_y
    m5 = 0.0 - m3 * shift_x - m4 * shift_y
    zero = torch.zeros_like(m0)
    return torch.stack([m0, m1, zero + m2, m3, m4, zero + m5], dim=1).view(-1, 2, 3)


def warp(images: Tensor, matrices: Tensor) -> Tensor:
    """Each image of ``images`` (B, C, H, W) uint8 resampled through its own inverse affine
    matrix (``matrices``: (B, 2, 3), as ``inverse_affine_matrices`` gives), nearest neighbour,
    zeros outside; (B, C, H, W) uint8. One ``grid_sample`` for the batch, its grid built as
    torchvision's affine kernel builds one image's (pixel centres, then normalised to -1..1)."""
    b, _, h, w = images.shape
    device = images.device
    theta = matrices.to(device=device, dtype=torch.float32)
    x = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=device).view(1, 1, w)
    y = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=device).view(1, h, 1)
    rescaled = theta.transpose(1, 2).div(torch.tensor([0.5 * w, 0.5 * h], dtype=torch.float32, device=device))
    t = rescaled.contiguous().view(b, 3, 2, 1, 1)
    # Each pixel's (x, y, 1) times the rescaled matrix, written out (cheaper than a batched
    # matmul of width 2) into one plane per coordinate: no batch-sized temporaries to allocate.
    planes = torch.empty(2, b, h, w, device=device)
    for axis in (0, 1):
        torch.add(x * t[:, 0, axis], y * t[:, 1, axis], out=planes[axis]).add_(t[:, 2, axis])
    grid = planes.permute(1, 2, 3, 0)  # (B, H, W, 2), as grid_sample takes it
    warped = F.grid_sample(images.to(torch.float32), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return warped.round_().to(torch.uint8)


def colour_jitter(images: Tensor, brightness: Tensor, contrast: Tensor, brightness_first: Tensor) -> Tensor:
    """``v2.ColorJitter(brightness, contrast)`` on ``images`` (B, C, H, W) uint8 with a factor
    per image (``brightness``, ``contrast``: (B,)) and an order per image (``brightness_first``:
    (B,) bool); (B, C, H, W) uint8. The arithmetic of torchvision's ``adjust_brightness`` and
    ``adjust_contrast`` on uint8 images, with the factor a tensor."""
    device = images.device
    output = torch.empty_like(images)
    # The images in two groups by their order, each step done once on its group's images.
    for brightness_goes_first in (True, False):
        chosen = (brightness_first.cpu() == brightness_goes_first).nonzero().squeeze(1)
        if len(chosen) == 0:
            continue
        # the complement in float64, then rounded, as torchvision's blend computes 1 - ratio
        factor_of_brightness, factor_of_contrast, complement = (
            factor[chosen].to(device=device, dtype=torch.float32).view(-1, 1, 1, 1)
            for factor in (brightness, contrast, 1.0 - contrast))
        on_device = chosen.to(device)
        part = images.index_select(0, on_device)
        if brightness_goes_first:
            part = _adjust_contrast(_adjust_brightness(part, factor_of_brightness), factor_of_contrast, complement)
        else:
            part = _adjust_brightness(_adjust_contrast(part, factor_of_contrast, complement), factor_of_brightness)
        output.index_copy_(0, on_device, part)
    return output


def _adjust_brightness(images: Tensor, factor: Tensor) -> Tensor:
    """(B, C, H, W) uint8 scaled by ``factor`` ((B, 1, 1, 1) float32), clamped, truncated to uint8."""
    return images.mul(factor).clamp_(0, 255).to(torch.uint8)


def _adjust_contrast(images: Tensor, factor: Tensor, complement: Tensor) -> Tensor:
    """(B, C, H, W) uint8 blended with the mean of its grey image (ITU-R 601 weights, floored
    as a uint8 grey image is): ``factor`` of the image, ``complement`` (1 - factor) of the mean."""
    if images.shape[1] == 3:
        r, g, b = images.unbind(dim=1)
        grey = r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).floor_().unsqueeze(1)
    else:
        grey = images.to(torch.float32)
    mean = grey.mean(dim=(-3, -2, -1), keepdim=True)
    return images.mul(factor).add_(mean * complement).clamp_(0, 255).to(torch.uint8)
