"""CNN teachers: the paper's Table 2 zoo from torchvision, and a small CPU teacher.

The kit feeds 32x32 images to ImageNet-shaped torchvision models unchanged (their adaptive
pooling makes that work). Table 3's 138.36M parameters for VGG16-BN is the count of that
model with its 1000-class ImageNet head (138,365,992); with a 100-class head it has 134.68M
(and the paper's Table 6 gives 134.30M), so the paper's own figures disagree.
``small_cnn`` is ours: a few conv/BN layers a laptop trains in minutes.
"""

from __future__ import annotations

import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from titn_lite.system.downloads import network_timeout
from titn_lite.system.usage import UsageError, check_positive_int

if TYPE_CHECKING:
    from torchvision.models import WeightsEnum


class SmallCNN(nn.Module):
    """Three stages of two conv-BN-ReLU layers, max-pooled between, then global average
    pooling and a linear classifier.

    images (B, in_chans, H, W) -> logits (B, num_classes); any H, W >= 4.
    """

    # Widths 16-32-64: a quarter of the multiply-adds of 32-64-128 for about a point of accuracy.
    # The classroom teacher (8 epochs, 4,000 images, one thread, channels-last) trained in 47 s
    # against 144 s, at validation top-1 86.6% against 88.1% (test 85.0% against 86.1%); its
    # forward pass, which a student's CutMix run asks for at every step, costs 26 ms a batch of 64
    # against 62 ms (benchmarks/teacher_widths.py; docs/measurements.md).
    def __init__(self, num_classes: int, in_chans: int = 3, widths: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for stage, width in enumerate(widths):
            if stage:
                layers.append(nn.MaxPool2d(2))
            for _ in range(2):
                layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False),
                           nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(images)).flatten(1))


@dataclass(frozen=True)
class TeacherSpec:
    """How to build one teacher: its torchvision name (``torchvision.models.get_model``; None
    for the kit's own), and where its input conv and classifier sit. Torchvision is imported
    only when a torchvision teacher is built: it and its model zoo take seconds to import."""

    torchvision_name: str | None
    first_conv: str
    classifier: str

    def weights(self) -> WeightsEnum:
        """torchvision's ImageNet weights for this teacher (its ``DEFAULT``)."""
        from torchvision.models import get_model_weights
        return get_model_weights(self.torchvision_name).DEFAULT


# Table 2's eight teachers, the VGGs first (the paper chose VGG16-BN, Table 2's best top-1), then the kit's small_cnn.
TEACHERS: dict[str, TeacherSpec] = {
    "vgg16_bn": TeacherSpec("vgg16_bn", "features.0", "classifier.6"),
    "vgg16": TeacherSpec("vgg16", "features.0", "classifier.6"),
    "vgg19": TeacherSpec("vgg19", "features.0", "classifier.6"),
    "resnet50": TeacherSpec("resnet50", "conv1", "fc"),
    "wide_resnet50_2": TeacherSpec("wide_resnet50_2", "conv1", "fc"),
    "densenet121": TeacherSpec("densenet121", "features.conv0", "classifier"),
    "mobilenet_v3": TeacherSpec("mobilenet_v3_large", "features.0.0", "classifier.3"),
    "squeezenet": TeacherSpec("squeezenet1_1", "features.0", "classifier.1"),
    "small_cnn": TeacherSpec(None, "features.0", "classifier"),
}


def label_disagreement(teacher: nn.Module, images: Tensor, labels: Tensor, *, batch_size: int = 500) -> float:
    """Share of ``images`` (N, C, H, W), normalised as the student sees them, on which the
    teacher's label (its argmax) is not ``labels`` (N,): the only images on which hard
    distillation tells the student something its true label does not."""
    if len(images) != len(labels) or not len(labels):
        raise UsageError(f"need as many labels as images, at least one: got {len(images)} images, {len(labels)} labels")
    teacher.eval()
    with torch.no_grad():
        says = torch.cat([teacher(chunk).argmax(1) for chunk in images.split(batch_size)])
    return float((says != labels).float().mean())


def list_teachers() -> list[str]:
    """Names ``create_teacher`` accepts."""
    return list(TEACHERS)


def create_teacher(name: str, *, num_classes: int, in_chans: int = 3, pretrained: bool = False) -> nn.Module:
    """Build a teacher for ``num_classes`` classes and ``in_chans``-channel images.

    ``pretrained=True`` starts from torchvision's ImageNet weights (the classifier is new;
    for ``in_chans != 3`` the input conv's RGB filters are averaged per output channel).
    The weights come from torch's hub cache (``$TORCH_HOME/hub/checkpoints``) or are
    downloaded; offline with no cached file it raises ``RuntimeError`` saying which file
    to put where, after at most a 10 s network timeout.
    """
    if name not in TEACHERS:
        raise UsageError(f"unknown teacher {name!r}; valid teachers: {', '.join(list_teachers())}")
    for field, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        check_positive_int(field, value)
    spec = TEACHERS[name]
    if spec.torchvision_name is None:
        if pretrained:
            raise UsageError("small_cnn has no pretrained weights; train it (titn-lite train --model small_cnn)")
        return SmallCNN(num_classes, in_chans)
    from torchvision.models import get_model
    if not pretrained:
        model = get_model(spec.torchvision_name, weights=None, num_classes=num_classes)
    else:
        model = get_model(spec.torchvision_name, weights=None)
        model.load_state_dict(_imagenet_state_dict(name, spec.weights()))
        _replace(model, spec.classifier, _resized_classifier(_get(model, spec.classifier), num_classes))
    if in_chans != 3:
        _replace(model, spec.first_conv, _adapted_input_conv(_get(model, spec.first_conv), in_chans))
    return model


def weights_cache_path(weights: WeightsEnum) -> Path:
    """Where torch's hub keeps (and looks for) a torchvision weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def _imagenet_state_dict(name: str, weights: WeightsEnum) -> dict[str, Tensor]:
    cached = weights_cache_path(weights)
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    try:
        with network_timeout():
            return weights.get_state_dict(progress=True)
    except (urllib.error.URLError, OSError) as error:
        raise RuntimeError(
            f"could not download the ImageNet weights of {name} ({error}). Offline? Download "
            f"{weights.url} elsewhere and copy it to {cached}, or use pretrained=False."
        ) from None


def _resized_classifier(old: nn.Module, num_classes: int) -> nn.Module:
    if isinstance(old, nn.Linear):
        return nn.Linear(old.in_features, num_classes)
    assert isinstance(old, nn.Conv2d)  # SqueezeNet classifies with a 1x1 conv
    return nn.Conv2d(old.in_channels, num_classes, kernel_size=old.kernel_size)


def _adapted_input_conv(old: nn.Conv2d, in_chans: int) -> nn.Conv2d:
    new = nn.Conv2d(in_chans, old.out_channels, old.kernel_size, old.stride, old.padding,
                    bias=old.bias is not None)
    with torch.no_grad():
        # Averaging the RGB filters keeps each filter's response to a grey image.
        new.weight.copy_(old.weight.mean(dim=1, keepdim=True).expand_as(new.weight))
        if old.bias is not None:
            new.bias.copy_(old.bias)
    return new


def _get(model: nn.Module, path: str) -> nn.Module:
    return model.get_submodule(path)


def _replace(model: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)
