"""Classification metrics: top-k accuracy and, from a confusion matrix, the macro
precision, recall and F1 of the paper's Table 3.

Everything is counts (sums), so partial results from several processes add up exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def topk_hits(logits: Tensor, targets: Tensor, ks: tuple[int, ...] = (1, 5)) -> Tensor:
    """(len(ks),) int64 on ``logits``' device: how many targets are among the k highest
    logits, for each k (k capped at the classes). Stays on the device: no wait for a GPU."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top == targets.unsqueeze(1)
    return torch.stack([hits[:, :k].any(dim=1).sum() for k in ks])


def topk_correct(logits: Tensor, targets: Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """``topk_hits`` as Python integers."""
    return topk_hits(logits, targets, ks).tolist()


def confusion_matrix(predictions: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """(num_classes, num_classes) counts; rows are true classes, columns predictions."""
    flat = targets.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


@dataclass
class ClassificationMetrics:
    """Table 3's columns for one model on one test set (fractions, not percent)."""

    top1: float
    top5: float
    precision: float
    recall: float
    f1: float
    loss: float
    count: int
    confusion: Tensor

    def as_dict(self) -> dict[str, float | int | list[list[int]]]:
        return {"top1": self.top1, "top5": self.top5, "precision": self.precision, "recall": self.recall,
                "f1": self.f1, "loss": self.loss, "count": self.count, "confusion": self.confusion.tolist()}


def macro_scores(confusion: Tensor) -> tuple[float, float, float]:
    """Macro-averaged precision, recall and F1 (scikit-learn's definitions, zero_division=0):
    per-class scores, then their unweighted mean; F1 is the mean of per-class F1s."""
    confusion = confusion.double()
    true_positives = confusion.diag()
    predicted, actual = confusion.sum(0), confusion.sum(1)
    precision = torch.where(predicted > 0, true_positives / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, true_positives / actual.clamp(min=1), 0.0)
    denominator = precision + recall
    f1 = torch.where(denominator > 0, 2 * precision * recall / denominator.clamp(min=1e-12), 0.0)
    return float(precision.mean()), float(recall.mean()), float(f1.mean())


def metrics_from_counts(confusion: Tensor, top5_correct: int, loss_sum: float) -> ClassificationMetrics:
    count = int(confusion.sum())
    precision, recall, f1 = macro_scores(confusion)
    return ClassificationMetrics(
        top1=float(confusion.diag().sum()) / count, top5=top5_correct / count,
        precision=precision, recall=recall, f1=f1, loss=loss_sum / count, count=count, confusion=confusion,
    )
