"""CutMix (Yun et al. 2019) and MixUp (Zhang et al. 2018) on a batch (paper §3.4).

CutMix, written out (the lesson of notebook 05):

1. draw lambda ~ Beta(alpha, alpha);
2. draw a box covering a fraction (1 - lambda) of the image, centred uniformly at random
   and clipped at the border;
3. paste that box from a partner image (another image of the batch);
4. correct lambda to the area really kept, since clipping can shrink the box.

Random numbers are drawn in torchvision's order (lambda, then the box centre's x and y),
so with the same seed and partner ``torchvision.transforms.v2.CutMix`` makes the same
images and soft labels; the tests check it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from titn_lite.system.usage import UsageError

MixMode = Literal["cutmix", "mixup", "none"]


@dataclass
class MixedBatch:
    """A mixed batch: each image is ``lam`` of its own and ``1 - lam`` of its partner's.

    images: (B, C, H, W); labels, partner_labels: (B,) class indices.
    """

    images: Tensor
    labels: Tensor
    partner_labels: Tensor
    lam: float

    def soft_labels(self, num_classes: int) -> Tensor:
        """(B, num_classes): lam * one_hot(labels) + (1 - lam) * one_hot(partner_labels)."""
        own = F.one_hot(self.labels, num_classes).float()
        partner = F.one_hot(self.partner_labels, num_classes).float()
        return self.lam * own + (1 - self.lam) * partner

    @property
    def dominant_labels(self) -> Tensor:
        """The label holding the larger share of each image, for accuracy on mixed batches."""
        return self.labels if self.lam >= 0.5 else self.partner_labels


def check_alpha(alpha: float) -> None:
    if not alpha > 0 or math.isinf(alpha):
        raise UsageError(f"mixing alpha must be a positive finite number (Beta(alpha, alpha)), got {alpha}")


def check_mix_prob(prob: float) -> None:
    if not 0.0 <= prob <= 1.0:
        raise UsageError(f"mixing probability must be between 0 and 1, got {prob}")


def sample_lambda(alpha: float) -> float:
    """lambda ~ Beta(alpha, alpha); alpha < 1 favours lambdas near 0 and 1."""
    check_alpha(alpha)
    beta = torch.distributions.Beta(torch.tensor([alpha]), torch.tensor([alpha]))
    return float(beta.sample(()))


def cutmix_box(lam: float, height: int, width: int) -> tuple[int, int, int, int]:
    """A box (x1, y1, x2, y2) of about (1 - lam) of the image, clipped to it.

    Its sides are sqrt(1 - lam) of the image's, so its area before clipping is (1 - lam).
    """
    centre_x = torch.randint(width, size=(1,))
    centre_y = torch.randint(height, size=(1,))
    half_side = 0.5 * math.sqrt(1.0 - lam)
    half_w, half_h = int(half_side * width), int(half_side * height)
    x1 = int(torch.clamp(centre_x - half_w, min=0))
    y1 = int(torch.clamp(centre_y - half_h, min=0))
    x2 = int(torch.clamp(centre_x + half_w, max=width))
    y2 = int(torch.clamp(centre_y + half_h, max=height))
    return x1, y1, x2, y2


def cutmix(images: Tensor, labels: Tensor, *, alpha: float = 1.0, partner: Tensor | None = None) -> MixedBatch:
    """Paste a random box of each image's partner into it (images (B, C, H, W)).

    ``partner``: index of each image's partner, (B,); a random permutation if None
    (``torch.roll(torch.arange(B), 1)`` is torchvision's choice).
    """
    lam = sample_lambda(alpha)
    height, width = images.shape[-2:]
    x1, y1, x2, y2 = cutmix_box(lam, height, width)
    partner = partner if partner is not None else torch.randperm(images.shape[0])
    mixed = images.clone()
    mixed[..., y1:y2, x1:x2] = images[partner][..., y1:y2, x1:x2]
    kept = 1.0 - (x2 - x1) * (y2 - y1) / (width * height)  # lambda, corrected to the box really pasted
    return MixedBatch(mixed, labels, labels[partner], kept)


def mixup(images: Tensor, labels: Tensor, *, alpha: float = 1.0, partner: Tensor | None = None) -> MixedBatch:
    """Blend each image with its partner: lam * x + (1 - lam) * x_partner."""
    lam = sample_lambda(alpha)
    partner = partner if partner is not None else torch.randperm(images.shape[0])
    return MixedBatch(lam * images + (1 - lam) * images[partner], labels, labels[partner], lam)


class BatchMixer:
    """Mix a training batch with probability ``prob`` (else pass it through unmixed)."""

    def __init__(self, mode: MixMode = "cutmix", *, alpha: float = 1.0, prob: float = 1.0) -> None:
        if mode not in get_args(MixMode):
            raise UsageError(f"unknown mixing {mode!r}; valid: {', '.join(get_args(MixMode))}")
        check_alpha(alpha)
        check_mix_prob(prob)
        self.mode, self.alpha, self.prob = mode, alpha, prob

    def __call__(self, images: Tensor, labels: Tensor) -> MixedBatch:
        if self.mode == "none" or (self.prob < 1.0 and float(torch.rand(())) >= self.prob):
            return MixedBatch(images, labels, labels, 1.0)
        mix = cutmix if self.mode == "cutmix" else mixup
        return mix(images, labels, alpha=self.alpha)
