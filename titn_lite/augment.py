"""The paper's training augmentation (``train_transform(info, "paper")``) on whole batches.

The DataLoader path gives each image its own random draw of the paper's transforms, one
PIL image at a time in worker processes; it stays the reference. This module does the same
recipe to a whole batch of decoded uint8 images (``data.TensorSplit``) at once, on the
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
  distributions torchvision's transforms draw from. So the same seed gives the same draw on
  any device, and a resumed epoch replays its augmentation exactly.
- ``apply`` does the drawn parameters. AutoAugment's operations have a fixed magnitude per
  sub-policy slot, so the images of a batch fall into a few groups (operation, magnitude,
  sign) and each group goes through torchvision's own AutoAugment kernel once: pixel for
  pixel the reference's output. The MNIST recipe's parameters are continuous; its steps are
  written here on batches with per-image matrices and factors, in the same arithmetic as
  torchvision's kernels (on a CPU: equal images, but for a rare pixel one grey level off
  where the colour jitter's float rounding differs).

``tests/test_augment.py`` checks both: fed the parameters torchvision drew, the batch path
gives the reference's images; over many draws, its parameters follow torchvision's
distributions. ``benchmarks/augment_speed.py`` measures the speed of both paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from titn_lite.data import IMG_SIZE, BatchNormalisation, DatasetInfo, train_transform


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


# --- the batch path --------------------------------------------------------------------

class PaperAugmentation:
    """``train_transform(info, "paper")`` on a whole batch: (B, C, 32, 32) uint8 on any device
    -> (B, C, 32, 32) float32, normalised, each image with its own random draw.

    ``augment(images, generator)`` draws and applies (``generator``: a CPU ``torch.Generator``;
    None uses the global one, as the rest of the engine's epoch does); ``draw`` and ``apply``
    do the two halves, to replay or inspect a draw. Drop-in for ``data.BatchAugmentation``:
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
            raise NotImplementedError(f"PaperAugmentation pads evenly with zeros, not {crop.padding} ({crop.padding_mode})")
        if self.recipe == "cifar":
            # torchvision's own policy table, magnitudes and kernels: the reference's recipe.
            self.autoaugment = steps["AutoAugment"]
            self.policies = self.autoaugment._policies
            self.flip_probability = steps["RandomHorizontalFlip"].p
            return
        rotation, affine, jitter = steps["RandomRotation"], steps["RandomAffine"], steps["ColorJitter"]
        if (rotation.expand or rotation.center is not None or list(affine.degrees) != [0.0, 0.0]
                or affine.shear is not None or affine.center is not None or jitter.saturation or jitter.hue
                or {getattr(mode, "value", mode) for mode in (rotation.interpolation, affine.interpolation)} != {"nearest"}):
            raise NotImplementedError("PaperAugmentation does a centred nearest-neighbour rotation, a translation "
                                      "and scale without rotation or shear, and brightness and contrast jitter")
        self.degrees = tuple(rotation.degrees)
        self.translate = tuple(affine.translate)
        self.scale = tuple(affine.scale)
        self.brightness = tuple(jitter.brightness)
        self.contrast = tuple(jitter.contrast)

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.normalise(self.augment(images, generator))

    def augment(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``images`` augmented, still uint8."""
        return self.apply(images, self.draw(len(images), generator))

    # drawing --------------------------------------------------------------------------

    def draw(self, batch_size: int, generator: torch.Generator | None = None) -> Draw:
        """Every random parameter of ``batch_size`` images, on the CPU."""
        g = generator
        span = 2 * self.padding + 1
        top = torch.randint(0, span, (batch_size,), generator=g)
        left = torch.randint(0, span, (batch_size,), generator=g)
        if self.recipe == "cifar":
            policy = torch.randint(len(self.policies), (batch_size,), generator=g)
            probability = torch.tensor([[p for _, p, _ in sub] for sub in self.policies])[policy]
            applied = torch.rand(batch_size, 2, generator=g, dtype=torch.float32) <= probability
            negated = torch.rand(batch_size, 2, generator=g) <= 0.5
            flip = torch.rand(batch_size, generator=g) < self.flip_probability
            return CifarDraw(policy, applied, negated & self._signed()[policy], top, left, flip)
        angle = _uniform(batch_size, *self.degrees, g)
        # RandomAffine: int(round(U(-max_d, max_d))) whole pixels on each axis, max_d a fraction of the side
        shifts = [_uniform(batch_size, -fraction * side, fraction * side, g).round().long()
                  for fraction, side in zip(self.translate, (IMG_SIZE, IMG_SIZE))]
        translate = torch.stack(shifts, dim=1)
        scale = _uniform(batch_size, *self.scale, g)
        brightness = _uniform(batch_size, *self.brightness, g)
        contrast = _uniform(batch_size, *self.contrast, g)
        # ColorJitter applies its operations in the order of randperm(4); of brightness (0)
        # and contrast (1), each comes first in half of the permutations.
        brightness_first = torch.rand(batch_size, generator=g) < 0.5
        return MnistDraw(top, left, angle, translate, scale, brightness, contrast, brightness_first)

    def _signed(self) -> Tensor:
        """(policies, 2) bool: whether each slot's operation takes a sign."""
        space = self.autoaugment._AUGMENTATION_SPACE
        return torch.tensor([[space[name][1] for name, _, _ in sub] for sub in self.policies])

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
            images = crop_at(images, self.padding, draw.top, draw.left)
            return flip_where(images, draw.flip)
        assert isinstance(draw, MnistDraw)
        images = crop_at(images, self.padding, draw.top, draw.left)
        # RandomRotation: rotate_image's matrix (the angle taken mod 360, then negated).
        images = warp(images, inverse_affine_matrices(-(draw.angle % 360), torch.zeros(len(draw.angle), 2),
                                                      torch.ones_like(draw.angle)))
        # RandomAffine(degrees=0, translate, scale): affine_image's matrix.
        images = warp(images, inverse_affine_matrices(torch.zeros_like(draw.angle), draw.translate.double(),
                                                      draw.scale))
        return colour_jitter(images, draw.brightness, draw.contrast, draw.brightness_first)

    def _autoaugment_slot(self, images: Tensor, draw: CifarDraw, slot: int) -> Tensor:
        """One of the two operations of each image's sub-policy, where applied: the images
        sorted into groups of one (operation, magnitude, sign), each group through
        torchvision's AutoAugment kernel at once."""
        space = self.autoaugment._AUGMENTATION_SPACE
        size = images.shape[-2:]
        # A group key per image: its operation in this slot (sub-policies whose slot holds the
        # same operation and magnitude share one) and its sign; -1: left as it is.
        canonical = {}
        for index, sub in enumerate(self.policies):
            name, _, magnitude_index = sub[slot]
            canonical.setdefault((name, magnitude_index), index)
        merge = torch.tensor([canonical[(sub[slot][0], sub[slot][2])] for sub in self.policies])
        key = torch.where(draw.applied[:, slot], merge[draw.policy] * 2 + draw.negated[:, slot].long(), -1)
        keys, counts = torch.unique(key, return_counts=True)
        if keys.tolist() == [-1]:
            return images
        order = torch.argsort(key, stable=True)
        order_device = order.to(images.device, non_blocking=True)
        grouped = images[order_device]
        start = 0
        for group_key, count in zip(keys.tolist(), counts.tolist()):
            if group_key >= 0:
                name, _, magnitude_index = self.policies[group_key // 2][slot]
                magnitudes, signed = space[name]
                values = magnitudes(10, *size)
                magnitude = 0.0 if values is None else float(values[magnitude_index])
                if signed and group_key % 2:
                    magnitude *= -1
                part = grouped[start:start + count]
                grouped[start:start + count] = self.autoaugment._apply_image_or_video_transform(
                    part, name, magnitude, interpolation=self.autoaugment.interpolation, fill=self.autoaugment._fill)
            start += count
        output = torch.empty_like(images)
        output[order_device] = grouped
        return output


# --- the steps, on batches -------------------------------------------------------------

def crop_at(images: Tensor, padding: int, top: Tensor, left: Tensor) -> Tensor:
    """Each image of (B, C, H, W) zero-padded by ``padding`` on every side and cropped back to
    H x W with its top-left corner at (``top``, ``left``) of the padded image, as
    ``v2.RandomCrop(H, padding=padding)`` crops at the offsets it draws."""
    b, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding,) * 4)
    width = w + 2 * padding
    top, left = top.to(device).view(b, 1, 1), left.to(device).view(b, 1, 1)
    rows = top + torch.arange(h, device=device).view(1, h, 1)
    cols = left + torch.arange(w, device=device).view(1, 1, w)
    index = (rows * width + cols).view(b, 1, h * w).expand(b, c, h * w)  # each kept pixel, in the flat padded image
    return padded.flatten(2).gather(2, index).view(b, c, h, w)


def flip_where(images: Tensor, flip: Tensor) -> Tensor:
    """Images mirrored left-right where ``flip`` (B,) is true."""
    return torch.where(flip.to(images.device).view(-1, 1, 1, 1), images.flip(-1), images)


def inverse_affine_matrices(angle: Tensor, translate: Tensor, scale: Tensor) -> Tensor:
    """(B, 2, 3) float64: torchvision's ``_get_inverse_affine_matrix`` for each image (centre
    of the image, no shear), in the same arithmetic: the map from output pixels back to input
    pixels, in pixel units from the image centre. angle: (B,) degrees; translate: (B, 2)
    pixels; scale: (B,)."""
    rot = angle.double() * (math.pi / 180.0)  # math.radians
    tx, ty = translate.double().unbind(1)
    scale = scale.double()
    # shear 0: cos_sy = 1, tan_sx = 0, rot_minus_sy = rot
    a = torch.cos(rot)
    b = -(a * 0.0 + torch.sin(rot))
    c = torch.sin(rot)
    d = torch.cos(rot) - c * 0.0
    m0, m1, m3, m4 = d / scale, -b / scale, -c / scale, a / scale
    m2 = 0.0 - m0 * tx - m1 * ty  # cx - m0 * (cx + tx) - m1 * (cy + ty), centre cx = cy = 0
    m5 = 0.0 - m3 * tx - m4 * ty
    zero = torch.zeros_like(m0)
    return torch.stack([m0, m1, zero + m2, m3, m4, zero + m5], dim=1).view(-1, 2, 3)


def warp(images: Tensor, matrices: Tensor) -> Tensor:
    """Each image of (B, C, H, W) uint8 resampled through its own inverse affine matrix
    ((B, 2, 3), as ``inverse_affine_matrices`` gives), nearest neighbour, zeros outside: one
    ``grid_sample`` for the batch, its grid built as torchvision's ``_affine_grid`` builds
    one image's."""
    b, _, h, w = images.shape
    device = images.device
    theta = matrices.to(device=device, dtype=torch.float32)
    x = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=device).view(1, 1, w)
    y = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=device).view(1, h, 1)
    rescaled = theta.transpose(1, 2).div_(torch.tensor([0.5 * w, 0.5 * h], dtype=torch.float32, device=device))
    # base_grid (x, y, 1) @ rescaled_theta, written out: cheaper than a batched matmul of width 2.
    t = rescaled.view(b, 3, 2, 1, 1)
    grid = torch.stack([x * t[:, 0, 0] + y * t[:, 1, 0] + t[:, 2, 0], x * t[:, 0, 1] + y * t[:, 1, 1] + t[:, 2, 1]], dim=-1)
    warped = F.grid_sample(images.to(torch.float32), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return warped.round_().to(torch.uint8)


def colour_jitter(images: Tensor, brightness: Tensor, contrast: Tensor, brightness_first: Tensor) -> Tensor:
    """``v2.ColorJitter(brightness, contrast)`` on a batch of uint8 images with per-image
    factors ((B,) each) and order (``brightness_first``): torchvision's
    ``adjust_brightness`` and ``adjust_contrast`` kernels with a factor per image."""
    device = images.device
    shape = (-1, 1, 1, 1)
    brightness = brightness.to(device=device, dtype=torch.float32).view(shape)
    contrast_complement = (1.0 - contrast).to(device=device, dtype=torch.float32).view(shape)
    contrast = contrast.to(device=device, dtype=torch.float32).view(shape)
    first = brightness_first.to(device).view(shape)

    def adjust_brightness(x: Tensor) -> Tensor:
        return x.mul(brightness).clamp_(0, 255).to(torch.uint8)

    def adjust_contrast(x: Tensor) -> Tensor:
        if x.shape[1] == 3:
            r, g, b = x.unbind(dim=1)
            grey = r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).floor_().unsqueeze(1)
        else:
            grey = x.to(torch.float32)
        mean = grey.mean(dim=(-3, -2, -1), keepdim=True)
        return x.mul(contrast).add_(mean * contrast_complement).clamp_(0, 255).to(torch.uint8)

    once = torch.where(first, adjust_brightness(images), adjust_contrast(images))
    return torch.where(first, adjust_contrast(once), adjust_brightness(once))
