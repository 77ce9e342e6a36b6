"""Parameters and FLOPs of the students and teachers, beside the paper's Tables 1 and 3
(what `titn-lite flops` prints; the run presets are `titn_lite.train.profiles`).

FLOPs come from ``torch.utils.flop_counter`` (a multiply-add counts as 2 FLOPs, PyTorch's
convention); nothing here hand-derives a formula. The paper does not say what its GFLOPs
count: they match ours as multiply-adds per batch of 1024 (its stated batch size), which is
the same figure as our FLOPs per 512 images, the "GFLOPs / 512" column printed here
(``titn_lite.results.paper.GFLOPS_BATCH``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from titn_lite.models.students import create_model, list_models
from titn_lite.models.teachers import create_teacher, list_teachers
from titn_lite.results import paper
from titn_lite.results.tables import MarkdownTable, markdown_table
from titn_lite.system.usage import UsageError


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, *, img_size: int = 32, in_chans: int = 3, batch_size: int = 2) -> float:
    """Forward FLOPs per image (eval mode, so a distilled model runs both heads).

    The CPU's fused attention kernel has no FLOP formula in ``torch.utils.flop_counter``
    and would count as zero, so attention runs on SDPA's MATH backend here: the same
    matrix products, as ops the counter sees. A model built on the ``meta`` device (shapes,
    no numbers) is counted there: the counter needs only each op's shapes.
    """
    was_training = model.training
    model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device
    images = torch.zeros(batch_size, in_chans, img_size, img_size, device=device)
    counter = FlopCounterMode(display=False)
    try:
        # No torch.no_grad(): the counter's module tracker hooks the autograd graph.
        with sdpa_kernel(SDPBackend.MATH), counter:
            model(images)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / batch_size


@dataclass
class ModelCost:
    """One model's size and cost, with the paper's figures where it gives them."""

    name: str
    params: int
    flops_per_image: float
    paper_params_m: float | None
    paper_gflops_per_512: float | None

    @property
    def gflops_per_512(self) -> float:
        """GFLOPs per 512 images: the same figure as giga multiply-adds per 1024, Table 3's reading."""
        return self.flops_per_image * paper.GFLOPS_BATCH / 1e9


def measure_models(
    names: list[str] | None = None, *, num_classes: int = 100, img_size: int = 32, in_chans: int = 3,
) -> list[ModelCost]:
    """Count the parameters and FLOPs of students and/or teachers by name (default: Table 3's models)."""
    names = names if names is not None else ["vgg16_bn", *list_models()]
    unknown = [name for name in names if name not in list_models() + list_teachers()]
    if unknown:
        raise UsageError(
            f"unknown model or teacher {', '.join(map(repr, unknown))}; valid: "
            f"{', '.join(list_models() + list_teachers())}"
        )
    rows = []
    for name in names:
        if name in list_models():
            model = create_model(name, num_classes=num_classes, img_size=img_size, in_chans=in_chans)
        else:  # on the meta device: a teacher's random initialisation (seconds for VGG) counts nothing
            with torch.device("meta"):
                model = create_teacher(name, num_classes=num_classes, in_chans=in_chans)
        # The paper's figures are for its own setting only: 32x32 RGB, 100 classes.
        paper_setting = (num_classes, img_size, in_chans) == (100, 32, 3)
        rows.append(ModelCost(
            name=name,
            params=count_parameters(model),
            flops_per_image=count_flops(model, img_size=img_size, in_chans=in_chans),
            paper_params_m=paper.paper_params_m(name) if paper_setting else None,
            paper_gflops_per_512=paper.TABLE3_GFLOPS.get(name) if paper_setting else None,
        ))
    return rows


def format_table(rows: list[ModelCost]) -> MarkdownTable:
    """Markdown table: ours beside the paper's, with the ratio ours / paper."""
    def ratio(ours: float, theirs: float | None) -> str:
        return f"{ours / theirs:.3f}" if theirs else "-"

    def figure(value: float | None, fmt: str) -> str:
        return format(value, fmt) if value is not None else "-"

    cells = [[row.name, f"{row.params / 1e6:.3f}", figure(row.paper_params_m, ".2f"),
              ratio(row.params / 1e6, row.paper_params_m), f"{row.flops_per_image / 1e9:.4f}",
              f"{row.gflops_per_512:.2f}", figure(row.paper_gflops_per_512, ".2f"),
              ratio(row.gflops_per_512, row.paper_gflops_per_512)] for row in rows]
    return markdown_table(["model", "params (M)", "paper (M)", "ratio", "GFLOPs / image", "GFLOPs / 512",
                           "paper / 512", "ratio"], cells, align="lrrrrrrr")
