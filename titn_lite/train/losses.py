"""Losses of the paper's Algorithm 2: CutMix loss (eq. 9) and hard distillation (eq. 10).

Convention for ``alpha`` (the paper's, eq. 10): it weights the class-token term,

    L = alpha * L_CM(class_logits) + (1 - alpha) * CE(distill_logits, teacher_labels).

DeiT's reference code weights the teacher term with alpha instead; at the paper's
alpha = 0.5 the two are the same loss.
"""

from __future__ import annotations

import hashlib
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from titn_lite.data.mixing import MixedBatch
from titn_lite.system.usage import UsageError

DistillMode = Literal["hard", "soft", "none"]

# The label of a training image the student may not see (``TrainConfig.unlabelled``): PyTorch's
# cross-entropy skips it (its default ``ignore_index``), so only the teacher's term learns from it.
UNLABELLED = -100


def check_distill_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"distillation alpha must be between 0 and 1, got {alpha}")


def mixed_cross_entropy(logits: Tensor, batch: MixedBatch, *, unlabelled: bool = False) -> Tensor:
    """Eq. 9: lam * CE(p, l1) + (1 - lam) * CE(p, l2). logits (B, classes) -> scalar.

    ``unlabelled``: the run has ``UNLABELLED`` images (``TrainConfig.unlabelled``, decided once
    per run, so a run without them pays for no check): the loss is the mean over the labelled
    images of the batch, and 0 (not 0/0) when it has none. Such batches are never mixed."""
    if unlabelled:
        if batch.lam != 1.0:
            raise UsageError("unlabelled images cannot be mixed: half of a mixed image's label would be unknown")
        if bool((batch.labels == UNLABELLED).all()):  # nothing to learn from the class head here
            return logits.sum() * 0.0
        return F.cross_entropy(logits, batch.labels)  # ignore_index: UNLABELLED
    own = F.cross_entropy(logits, batch.labels)
    if batch.lam == 1.0:
        return own
    return batch.lam * own + (1 - batch.lam) * F.cross_entropy(logits, batch.partner_labels)


class RememberingTeacher(nn.Module):
    """A teacher that labels each distinct image once.

    In eval mode and without gradients a teacher's logits for an image depend on the image
    alone, not on the rest of its batch, for batches of two images or more (checked bit for bit
    by the tests): a CPU convolution takes another path for a batch of one, whose last bits can
    differ, so a lone new image is labelled as a pair with itself. Where a run's views
    never change (no augmentation, no mixing), every epoch would show it the same images again,
    so the first answer is kept, keyed by the image's bytes, and returned at every later
    sighting: the same numbers for a quarter of the teacher's work in a 4-epoch run. A changed
    view (an augmented or mixed image) has other bytes, so it is labelled afresh.

    images (B, C, H, W) on the CPU -> logits (B, classes).
    """

    def __init__(self, teacher: nn.Module) -> None:
        super().__init__()
        self.teacher = teacher
        self.remembered: dict[bytes, Tensor] = {}

    def forward(self, images: Tensor) -> Tensor:
        keys = [hashlib.blake2b(image.numpy().tobytes(), digest_size=16).digest() for image in images]
        unseen = [i for i, key in enumerate(keys) if key not in self.remembered]
        if unseen:
            new = images[unseen]
            answers = self.teacher(new.repeat(2, 1, 1, 1))[:1] if len(new) == 1 else self.teacher(new)
            for i, logits in zip(unseen, answers):
                self.remembered[keys[i]] = logits
        return torch.stack([self.remembered[key] for key in keys])


class DistillationLoss(nn.Module):
    """The student's loss, with or without a teacher.

    - student returns one tensor: eq. 9 on it;
    - ``hard`` (eq. 10): the teacher, in eval mode and without gradients, labels the same
      mixed images with its argmax; the distillation head learns those labels;
    - ``soft`` (DeiT): KL between the teacher's and the distillation head's
      temperature-softened distributions, times T^2;
    - ``none`` with a distilled student: both heads learn the (mixed) true labels.

    ``unlabelled``: the run has images labelled only by the teacher (``UNLABELLED``); the
    class head's term is then the mean over the labelled ones (``mixed_cross_entropy``).
    """

    def __init__(
        self, teacher: nn.Module | None = None, mode: DistillMode = "hard",
        alpha: float = 0.5, temperature: float = 3.0, unlabelled: bool = False,
    ) -> None:
        super().__init__()
        if mode not in get_args(DistillMode):
            raise UsageError(f"unknown distillation {mode!r}; valid: {', '.join(get_args(DistillMode))}")
        check_distill_alpha(alpha)
        if temperature <= 0:
            raise UsageError(f"distillation temperature must be positive, got {temperature}")
        if mode != "none" and teacher is None:
            raise UsageError(f"{mode} distillation needs a teacher; pass one, or use mode='none'")
        self.teacher = teacher.eval().requires_grad_(False) if teacher is not None and mode != "none" else None
        self.mode, self.alpha, self.temperature, self.unlabelled = mode, alpha, temperature, unlabelled

    def forward(self, outputs: Tensor | tuple[Tensor, Tensor], batch: MixedBatch) -> Tensor:
        if isinstance(outputs, Tensor):
            return mixed_cross_entropy(outputs, batch, unlabelled=self.unlabelled)
        class_logits, distill_logits = outputs
        base = mixed_cross_entropy(class_logits, batch, unlabelled=self.unlabelled)
        if self.teacher is None:
            return self.alpha * base + (1 - self.alpha) * mixed_cross_entropy(distill_logits, batch,
                                                                              unlabelled=self.unlabelled)
        with torch.no_grad():
            self.teacher.eval()  # a parent's .train() must not put BatchNorm back in training mode
            teacher_logits = self.teacher(batch.images)
        if self.mode == "hard":
            distill = F.cross_entropy(distill_logits, teacher_logits.argmax(dim=1))
        else:
            t = self.temperature
            distill = F.kl_div(F.log_softmax(distill_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                               reduction="batchmean", log_target=True) * t * t
        return self.alpha * base + (1 - self.alpha) * distill
