"""Pictures for the notebooks. Every function returns its matplotlib Figure, draws into
``ax`` when given one, and saves to ``save_to`` when given a path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor


def _finish(fig: Figure, save_to: str | Path | None) -> Figure:
    if save_to is not None:
        fig.savefig(save_to, bbox_inches="tight", dpi=120)
    return fig


def _image_for_display(image: Tensor) -> Tensor:
    """(C, H, W) tensor, any range -> (H, W) or (H, W, 3) in [0, 1]."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected an image shaped (1 or 3, H, W), got {tuple(image.shape)}")
    image = image.detach().float().cpu()
    image = (image - image.min()) / (image.max() - image.min()).clamp(min=1e-8)
    return image[0] if image.shape[0] == 1 else image.permute(1, 2, 0)


def show_images(images: Tensor | Sequence[Tensor], titles: Sequence[str] | None = None, *, columns: int = 8,
                save_to: str | Path | None = None) -> Figure:
    """A grid of (C, H, W) images with optional titles."""
    images = list(images)
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    rows = (len(images) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            ax.imshow(_image_for_display(images[index]), cmap="gray")
            if titles is not None:
                ax.set_title(titles[index], fontsize=8)
    fig.tight_layout()
    return _finish(fig, save_to)


def plot_learning_curves(histories: dict[str, list[dict[str, float]]], *, metrics: Sequence[str] = ("loss", "top1"),
                         save_to: str | Path | None = None) -> Figure:
    """Train (dashed) and validation (solid) curves per epoch, one panel per metric, one
    colour per run. ``histories``: run name -> the rows of its history.json."""
    if not histories:
        raise ValueError("no histories to plot")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    palette = sns.color_palette(n_colors=len(histories))
    for ax, metric in zip(axes[0], metrics):
        for colour, (name, rows) in zip(palette, histories.items()):
            epochs = [row["epoch"] for row in rows]
            ax.plot(epochs, [row[f"val_{metric}"] for row in rows], color=colour, marker="o", label=f"{name} val")
            ax.plot(epochs, [row[f"train_{metric}"] for row in rows], color=colour, linestyle="--", label=f"{name} train")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title({"loss": "loss", "top1": "top-1 accuracy", "top5": "top-5 accuracy"}.get(metric, metric))
    axes[0][-1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _finish(fig, save_to)


def plot_confusion(confusion: Tensor, class_names: Sequence[str], *, ax: Axes | None = None,
                   save_to: str | Path | None = None) -> Figure:
    """Confusion matrix (rows: true class, columns: predicted), as row percentages."""
    if confusion.shape != (len(class_names), len(class_names)):
        raise ValueError(f"confusion is {tuple(confusion.shape)} for {len(class_names)} class names")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 5))
    rows = confusion.double() / confusion.sum(1, keepdim=True).clamp(min=1)
    sns.heatmap((100 * rows).numpy(), annot=True, fmt=".0f", cmap="Blues", cbar=False, ax=ax,
                xticklabels=class_names, yticklabels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (% of each true class)")
    return _finish(fig, save_to)


def patch_attention_grid(weights: Tensor, grid: int) -> Tensor:
    """Attention over P = grid^2 patches -> a (grid, grid) map, patches in row-major order."""
    if weights.shape[-1] != grid * grid:
        raise ValueError(f"{weights.shape[-1]} attention weights do not form a {grid}x{grid} patch grid")
    return weights.reshape(*weights.shape[:-1], grid, grid)


def overlay_attention(image: Tensor, attention_map: Tensor, *, ax: Axes | None = None, title: str = "",
                      save_to: str | Path | None = None) -> Figure:
    """An image with a (grid, grid) attention map, upsampled to the image, over it."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(3, 3))
    shown = _image_for_display(image)
    height, width = shown.shape[:2]
    upsampled = torch.nn.functional.interpolate(attention_map[None, None].float(), size=(height, width),
                                                mode="nearest")[0, 0]
    ax.imshow(shown, cmap="gray")
    ax.imshow(upsampled.cpu(), cmap="inferno", alpha=0.55)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return _finish(fig, save_to)


def show_patch_grid(image: Tensor, patch_size: int, pixel_size: int | None = None, *, ax: Axes | None = None,
                    save_to: str | Path | None = None) -> Figure:
    """An image with its patch grid (solid) and, for TNT, the pixel grid inside (dotted)."""
    shown = _image_for_display(image)
    height, width = shown.shape[:2]
    for name, size in (("patch size", patch_size), ("pixel size", pixel_size or patch_size)):
        if size < 1 or height % size or width % size:
            raise ValueError(f"{name} {size} does not divide the {height}x{width} image")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(3.2, 3.2))
    ax.imshow(shown, cmap="gray", extent=(0, width, height, 0))
    if pixel_size:
        for x in range(pixel_size, width, pixel_size):
            ax.axvline(x, color="tab:cyan", linewidth=0.5, linestyle=":")
        for y in range(pixel_size, height, pixel_size):
            ax.axhline(y, color="tab:cyan", linewidth=0.5, linestyle=":")
    for x in range(patch_size, width, patch_size):
        ax.axvline(x, color="tab:orange", linewidth=1.5)
    for y in range(patch_size, height, patch_size):
        ax.axhline(y, color="tab:orange", linewidth=1.5)
    title = f"{(height // patch_size) * (width // patch_size)} patches of {patch_size}x{patch_size}"
    if pixel_size:
        title += f"\n{(patch_size // pixel_size) ** 2} pixels of {pixel_size}x{pixel_size} each"
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return _finish(fig, save_to)
