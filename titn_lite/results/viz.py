"""Pictures for the notebooks. Every function returns its matplotlib Figure, draws into
``ax`` when given one, and saves to ``save_to`` when given a path.

Every picture can be read without colour vision and without sight: sequential maps are
perceptually uniform (viridis family), categorical colours come from the Okabe-Ito
palette, lines of a multi-line plot differ by marker or line style as well as colour, and
each figure carries a one-sentence description of what it shows (``describe(fig)``), which
a notebook shows as the figure's text and the book uses as the image's alt text."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from torch import Tensor

from titn_lite.system.usage import UsageError

# Okabe & Ito's colour-blind-safe palette (https://jfly.uni-koeln.de/color/), its yellow
# last: thin yellow lines are hard to see on white.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
# Markers that tell lines (and point sets) apart where colours cannot.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
SEQUENTIAL = "viridis"  # maps of one quantity: perceptually uniform, readable in grey and by the colour-blind
OVERLAY = "inferno"  # the same family, darker at zero: an attention map over a grey image
DESCRIPTION = "titn_lite_description"  # the attribute a figure's description is kept in


def categorical_colours(count: int) -> list[str]:
    """``count`` colours from the Okabe-Ito palette (repeating after eight)."""
    return [OKABE_ITO[i % len(OKABE_ITO)] for i in range(count)]


def _shorten(items: Sequence[str], most: int = 6) -> str:
    items = [str(item) for item in items]
    return ", ".join(items) if len(items) <= most else ", ".join(items[:most]) + f" and {len(items) - most} more"


def set_description(fig: Figure, text: str) -> Figure:
    """Record what ``fig`` shows, in one sentence (see ``describe``)."""
    setattr(fig, DESCRIPTION, " ".join(text.split()))
    return fig


def describe(fig: Figure) -> str:
    """What ``fig`` shows, in words: the description the drawing function recorded, or one
    read from the figure itself (its titles, axis labels, legend entries and images)."""
    recorded = getattr(fig, DESCRIPTION, None)
    if recorded:
        return recorded
    parts = []
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    for ax in fig.axes:
        if not ax.get_visible() or not (ax.has_data() or ax.texts):
            continue
        title = " ".join(ax.get_title().split())
        xlabel, ylabel = ax.get_xlabel(), ax.get_ylabel()
        what = []
        if ax.images:
            what.append("an image" if len(ax.images) == 1 else f"{len(ax.images)} layered images")
        if ax.lines:
            what.append(f"{ylabel or 'values'} against {xlabel or 'x'}")
        labels = [text.get_text() for text in ax.get_legend().get_texts()] if ax.get_legend() else []
        if labels:
            what.append(f"lines: {_shorten(labels)}")
        parts.append((f"'{title}': " if title else "") + ("; ".join(w for w in what if w) or "a plot"))
    if not parts:
        return " ".join(suptitle.split()) or "An empty figure"
    head = f"{' '.join(suptitle.split())}. " if suptitle else ""
    panels = f"{len(parts)} panels: " if len(parts) > 1 else "Figure: "
    more = f"; and {len(parts) - 8} more panels" if len(parts) > 8 else ""
    return head + panels + "; ".join(parts[:8]) + more


def _pretty_description(fig: Figure, printer, cycle: bool) -> None:
    printer.text(describe(fig))


def _register_description() -> None:
    """In IPython, a figure's plain-text form is its description: the notebook's output
    keeps it beside the picture, and the book makes it the image's alt text.

    matplotlib's inline backend drops every formatter for Figure when it starts (at a
    kernel's first figure), so the formatter is registered again after every cell, before
    the backend shows the cell's figures, and whenever a function here draws."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    formatter = shell.display_formatter.formatters["text/plain"]
    if formatter.type_printers.get(Figure) is not _pretty_description:
        formatter.for_type(Figure, _pretty_description)
    if not getattr(shell, "_titn_lite_describes_figures", False) and hasattr(shell, "events"):
        shell.events.register("post_execute", _register_description)
        shell._titn_lite_describes_figures = True


def _finish(fig: Figure, save_to: str | Path | None, description: str | None = None) -> Figure:
    _register_description()
    if description:
        set_description(fig, description)
    if save_to is not None:
        fig.savefig(save_to, bbox_inches="tight", dpi=120)
    return fig


def _image_for_display(image: Tensor) -> np.ndarray:
    """(C, H, W) tensor, any range -> (H, W) or (H, W, 3) array in [0, 1]."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise UsageError(f"expected an image shaped (1 or 3, H, W), got {tuple(image.shape)}")
    image = image.detach().float().cpu()
    image = (image - image.min()) / (image.max() - image.min()).clamp(min=1e-8)
    return (image[0] if image.shape[0] == 1 else image.permute(1, 2, 0)).numpy()


def show_images(images: Tensor | Sequence[Tensor], titles: Sequence[str] | None = None, *, columns: int = 8,
                save_to: str | Path | None = None) -> Figure:
    """A grid of (C, H, W) images with optional titles."""
    images = list(images)
    if titles is not None and len(titles) != len(images):
        raise UsageError(f"{len(titles)} titles for {len(images)} images")
    rows = (len(images) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            ax.imshow(_image_for_display(images[index]), cmap="gray")
            if titles is not None:
                ax.set_title(titles[index], fontsize=8)
    fig.tight_layout()
    described = f"{len(images)} image{'s' if len(images) != 1 else ''} in a grid"
    if titles is not None:
        described += ", titled " + _shorten([" ".join(t.split()) for t in titles], 8)
    return _finish(fig, save_to, described)


def plot_learning_curves(histories: dict[str, list[dict[str, float]]], *, metrics: Sequence[str] = ("loss", "top1"),
                         x: str = "epoch", save_to: str | Path | None = None) -> Figure:
    """Train (dashed) and validation (solid) curves, one panel per metric, one colour per run.
    ``histories``: run name -> the rows of its history.json. ``x``: "epoch"; "seconds" (the
    run's own seconds so far, each epoch's evaluation included); or another key every row carries
    (runs whose epochs differ in length compare by optimizer steps, say, with rows that carry a "steps" count)."""
    if not histories:
        raise UsageError("no histories to plot")
    missing = [name for name, rows in histories.items() if x != "seconds" and any(x not in row for row in rows)]
    if missing:
        raise UsageError(f"x={x!r}: the rows of {', '.join(missing)} have no {x!r}; use 'epoch', 'seconds' or a "
                         f"key every row carries")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    titles = {"loss": "loss", "top1": "top-1 accuracy", "top5": "top-5 accuracy"}
    xlabel = {"seconds": "seconds (training and evaluation)", "steps": "optimizer steps"}.get(x, x)
    for ax, metric in zip(axes[0], metrics):
        # Each run: its own colour and its own marker; validation solid, training dashed.
        for colour, marker, (name, rows) in zip(categorical_colours(len(histories)), itertools.cycle(MARKERS),
                                                histories.items()):
            where = (list(itertools.accumulate(row["seconds"] for row in rows)) if x == "seconds"
                     else [row[x] for row in rows])
            tested = [(w, row[f"val_{metric}"]) for w, row in zip(where, rows)
                      if math.isfinite(row[f"val_{metric}"])]  # a run may evaluate only some epochs (evaluate_every)
            ax.plot([w for w, _ in tested], [v for _, v in tested], color=colour, marker=marker, linestyle="-",
                    label=f"{name} val")
            ax.plot(where, [row[f"train_{metric}"] for row in rows], color=colour, marker=marker, linestyle="--",
                    markerfacecolor="white", label=f"{name} train")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.set_title(titles.get(metric, metric))
    axes[0][-1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    shown = " and ".join(titles.get(m, m) for m in metrics)
    return _finish(fig, save_to, f"Learning curves: {shown} per {xlabel} for {_shorten(list(histories))}; "
                                 f"validation solid, training dashed, one colour and marker per run.")


def plot_confusion(confusion: Tensor, class_names: Sequence[str], *, ax: Axes | None = None,
                   save_to: str | Path | None = None) -> Figure:
    """Confusion matrix (rows: true class, columns: predicted), as row percentages."""
    if confusion.shape != (len(class_names), len(class_names)):
        raise UsageError(f"confusion is {tuple(confusion.shape)} for {len(class_names)} class names")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 5))
    rows = confusion.double() / confusion.sum(1, keepdim=True).clamp(min=1)
    import seaborn as sns  # here, not at the top: it imports pandas and scipy (a second per kernel)

    sns.heatmap((100 * rows).numpy(), annot=True, fmt=".0f", cmap=SEQUENTIAL, cbar=False, ax=ax,
                xticklabels=class_names, yticklabels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (% of each true class)")
    diagonal = 100 * rows.diagonal()
    worst = int(diagonal.argmin())
    return _finish(fig, save_to, f"Confusion matrix over {len(class_names)} classes ({_shorten(class_names, 10)}): "
                                 f"the percentage of each true class (rows) predicted as each class (columns); "
                                 f"{float(diagonal.mean()):.0f}% on the diagonal on average, lowest for "
                                 f"{class_names[worst]} ({float(diagonal[worst]):.0f}%).")


def patch_attention_grid(weights: Tensor, grid: int) -> Tensor:
    """Attention over P = grid^2 patches -> a (grid, grid) map, patches in row-major order."""
    if weights.shape[-1] != grid * grid:
        raise UsageError(f"{weights.shape[-1]} attention weights do not form a {grid}x{grid} patch grid")
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
    ax.imshow(upsampled.cpu().numpy(), cmap=OVERLAY, alpha=0.55)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    grid = attention_map.shape[-1]
    return _finish(fig, save_to, f"{title or 'Attention'}: a {grid}x{grid} attention map drawn over the image, "
                                 f"brighter where attention is higher.")


def show_patch_grid(image: Tensor, patch_size: int, pixel_size: int | None = None, *, ax: Axes | None = None,
                    save_to: str | Path | None = None) -> Figure:
    """An image with its patch grid (solid) and, for TNT, the pixel grid inside (dotted)."""
    shown = _image_for_display(image)
    height, width = shown.shape[:2]
    if patch_size < 1 or height % patch_size or width % patch_size:
        raise UsageError(f"patch size {patch_size} does not divide the {height}x{width} image")
    if pixel_size is not None and (pixel_size < 1 or patch_size % pixel_size):
        raise UsageError(f"pixel size {pixel_size} does not divide patch size {patch_size}")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(3.2, 3.2))
    ax.imshow(shown, cmap="gray", extent=(0, width, height, 0))
    if pixel_size:
        for x in range(pixel_size, width, pixel_size):
            ax.axvline(x, color=OKABE_ITO[5], linewidth=0.5, linestyle=":")
        for y in range(pixel_size, height, pixel_size):
            ax.axhline(y, color=OKABE_ITO[5], linewidth=0.5, linestyle=":")
    for x in range(patch_size, width, patch_size):
        ax.axvline(x, color=OKABE_ITO[1], linewidth=1.5)
    for y in range(patch_size, height, patch_size):
        ax.axhline(y, color=OKABE_ITO[1], linewidth=1.5)
    title = f"{(height // patch_size) * (width // patch_size)} patches of {patch_size}x{patch_size}"
    if pixel_size:
        title += f"\n{(patch_size // pixel_size) ** 2} pixels of {pixel_size}x{pixel_size} each"
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    lines = "patch borders as solid lines" + (", pixel borders as dotted lines" if pixel_size else "")
    return _finish(fig, save_to, f"A {height}x{width} image cut into {title.replace(chr(10), ', ')}: {lines}.")


# --- attention pictures ----------------------------------------------------------------

TOKENS = ("class", "distill")


def _check_index(what: str, value: int, size: int) -> int:
    """``value`` as a non-negative index into ``size`` items (negative counts from the end)."""
    if not -size <= value < size:
        raise UsageError(f"{what} {value} does not exist; valid: 0..{size - 1} (or -1 for the last)")
    return value % size


def _check_images(images: Tensor) -> None:
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise UsageError(f"expected images shaped (batch, 1 or 3, H, W), got {tuple(images.shape)}")


def _tokens_of(maps) -> tuple[int, list[str]]:
    """(patch grid side, tokens present) from the outer sequence's length: T = 1 + grid^2
    for ViT/TNT, 2 + grid^2 when a distillation token is last."""
    num_tokens = maps.outer[0].shape[-1]
    for extra, tokens in ((1, ["class"]), (2, list(TOKENS))):
        grid = int(round((num_tokens - extra) ** 0.5))
        if grid * grid == num_tokens - extra:
            return grid, tokens
    raise UsageError(f"{num_tokens} tokens are not a class token, a square patch grid and a distillation token")


def token_attention(maps, *, token: str = "class", layer: int = -1, head: int | None = None) -> Tensor:
    """What the class or distillation token attends to over the patches, as (B, grid, grid).

    ``maps``: ``titn_lite.AttentionMaps``; ``head=None`` averages the heads.
    """
    grid, tokens = _tokens_of(maps)
    if token not in tokens:
        raise UsageError(f"token {token!r} is not in this model; valid: {', '.join(tokens)}")
    weights = maps.outer[_check_index("layer", layer, len(maps.outer))]  # (B, heads, T, T)
    weights = weights.mean(dim=1) if head is None else weights[:, _check_index("head", head, weights.shape[1])]
    row = weights[:, 0] if token == "class" else weights[:, -1]
    return patch_attention_grid(row[:, 1 : 1 + grid * grid], grid)


def plot_token_attention(images: Tensor, maps, *, image_index: int = 0, layer: int = -1, head: int | None = None,
                         class_names: Sequence[str] | None = None, labels: Sequence[int] | None = None,
                         save_to: str | Path | None = None) -> Figure:
    """The image, then the class token's and (if any) the distillation token's attention over
    it, side by side, for one layer and one head (or the heads' mean)."""
    which = "mean of heads" if head is None else f"head {head}"
    return _token_panels(images, maps, image_index=image_index, layer=layer, head=head, class_names=class_names,
                         labels=labels, describe_token=lambda token: f"{token} token, layer {layer}, {which}",
                         save_to=save_to)


def _token_panels(images: Tensor, maps, *, image_index: int, layer: int, head: int | None,
                  class_names: Sequence[str] | None, labels: Sequence[int] | None, describe_token,
                  save_to: str | Path | None) -> Figure:
    _check_images(images)
    index = _check_index("image_index", image_index, images.shape[0])
    _, tokens = _tokens_of(maps)
    fig, axes = plt.subplots(1, 1 + len(tokens), figsize=(3 * (1 + len(tokens)), 3.3))
    axes[0].imshow(_image_for_display(images[index]), cmap="gray")
    axes[0].axis("off")
    if class_names is not None and labels is not None:
        axes[0].set_title(class_names[labels[index]], fontsize=9)
    for ax, token in zip(axes[1:], tokens):
        grid_map = token_attention(maps, token=token, layer=layer, head=head)[index]
        overlay_attention(images[index], grid_map, ax=ax, title=describe_token(token))
    fig.tight_layout()
    shown = f"image {index}" + (f" ({class_names[labels[index]]})" if class_names is not None and labels is not None
                                else "")
    return _finish(fig, save_to, f"{shown}, then where each token attends over its patches: "
                                 f"{'; '.join(describe_token(token) for token in tokens)}; brighter is more attention.")


def plot_attention_by_layer(images: Tensor, maps, *, image_index: int = 0,
                            save_to: str | Path | None = None) -> Figure:
    """One row per token, one column per layer: where each token looks, layer by layer."""
    _check_images(images)
    index = _check_index("image_index", image_index, images.shape[0])
    layers = len(maps.outer)
    _, tokens = _tokens_of(maps)
    fig, axes = plt.subplots(len(tokens), layers, figsize=(2.2 * layers, 2.4 * len(tokens)), squeeze=False)
    for row, token in enumerate(tokens):
        for layer in range(layers):
            overlay_attention(images[index], token_attention(maps, token=token, layer=layer)[index],
                              ax=axes[row, layer], title=f"{token}, layer {layer}")
    fig.tight_layout()
    return _finish(fig, save_to, f"Where the {' and '.join(tokens)} token{'s' if len(tokens) > 1 else ''} attend over "
                                 f"image {index}, one row per token, one column per layer (0 to {layers - 1}); "
                                 f"brighter is more attention.")


def plot_pixel_attention(images: Tensor, maps, *, image_index: int = 0, patch: int = 0, layer: int = -1,
                         head: int | None = None, save_to: str | Path | None = None) -> Figure:
    """Inner (pixel) attention inside one patch: where the patch is, the pixel-to-pixel
    weights, and how much attention each pixel receives, drawn over the patch."""
    _check_images(images)
    if not maps.inner:
        raise UsageError("this model has no inner (pixel) attention; use a TNT-family model (tnt, titn)")
    index = _check_index("image_index", image_index, images.shape[0])
    weights = maps.inner[_check_index("layer", layer, len(maps.inner))]  # (B, P, heads, n, n)
    patch = _check_index("patch", patch, weights.shape[1])
    weights = weights[index, patch]
    weights = weights.mean(dim=0) if head is None else weights[_check_index("head", head, weights.shape[0])]
    grid, pixels_per_side = int(round(maps.inner[0].shape[1] ** 0.5)), int(round(weights.shape[-1] ** 0.5))
    height = images.shape[-1]
    patch_size = height // grid
    row, col = divmod(patch, grid)
    crop = images[index][:, row * patch_size:(row + 1) * patch_size, col * patch_size:(col + 1) * patch_size]

    fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.2))
    axes[0].imshow(_image_for_display(images[index]), cmap="gray")
    axes[0].add_patch(plt.Rectangle((col * patch_size - 0.5, row * patch_size - 0.5), patch_size, patch_size,
                                    fill=False, edgecolor=OKABE_ITO[1], linewidth=2))
    axes[0].set_title(f"patch {patch}", fontsize=9)
    axes[0].axis("off")
    import seaborn as sns

    sns.heatmap(weights.cpu().numpy(), ax=axes[1], cmap=SEQUENTIAL, cbar=False, square=True)
    axes[1].set(xlabel="key pixel", ylabel="query pixel")
    axes[1].set_title(f"pixel attention, layer {layer}", fontsize=9)
    received = weights.mean(dim=0).reshape(pixels_per_side, pixels_per_side)
    overlay_attention(crop, received, ax=axes[2], title="attention each pixel receives")
    fig.tight_layout()
    n = weights.shape[-1]
    return _finish(fig, save_to, f"Inner (pixel) attention in patch {patch} of image {index}, layer {layer}: where "
                                 f"the patch is in the image, the {n}x{n} pixel-to-pixel attention weights "
                                 f"(query rows, key columns), and the attention each of the {n} pixels receives, "
                                 f"drawn over the patch.")


def plot_rollout(images: Tensor, maps, *, image_index: int = 0, class_names: Sequence[str] | None = None,
                 labels: Sequence[int] | None = None, save_to: str | Path | None = None) -> Figure:
    """Attention rollout through all layers, for the class and (if any) distillation token."""
    from titn_lite.models.attention import attention_rollout
    from titn_lite.models.students import AttentionMaps

    _check_images(images)
    rolled = attention_rollout(maps.outer)[:, None]  # a one-layer, one-head stand-in: (B, 1, T, T)
    layers = len(maps.outer)
    return _token_panels(images, AttentionMaps(outer=[rolled], inner=[]), image_index=image_index, layer=-1,
                         head=None, class_names=class_names, labels=labels,
                         describe_token=lambda token: f"{token} token, rollout of {layers} layers", save_to=save_to)


# --- runs, mixing, mistakes ---------------------------------------------------------------

def plot_model_comparison(summaries, *, save_to: str | Path | None = None) -> Figure:
    """Accuracy against parameters and against GFLOPs, one labelled point per run
    (``summaries``: ``titn_lite.results.report.RunSummary`` list)."""
    if not summaries:
        raise UsageError("no runs to compare")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (label, value) in zip(axes, (("parameters (M)", lambda s: s.params / 1e6),
                                         ("GFLOPs per 512 images", lambda s: s.flops_per_image * 512 / 1e9))):
        for summary, colour, marker in zip(summaries, categorical_colours(len(summaries)), itertools.cycle(MARKERS)):
            ax.scatter(value(summary), 100 * summary.top1, s=40, color=colour, marker=marker)
            ax.annotate(summary.model, (value(summary), 100 * summary.top1), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
        ax.set(xlabel=label, ylabel="top-1 %", title=f"accuracy against {label.split(' ')[0]}")
    fig.tight_layout()
    points = _shorten([f"{s.model} {100 * s.top1:.1f}%" for s in summaries], 8)
    return _finish(fig, save_to, f"Test top-1 against parameters and against GFLOPs, one labelled point per run: "
                                 f"{points}.")


def plot_seed_comparison(results, *, title: str = "", xlabel: str = "top-1 %", ax: Axes | None = None,
                         save_to: str | Path | None = None) -> Figure:
    """One row per setting: each seed's value as a dot, the mean as a bar's end and the
    standard deviation over seeds as an error bar (``results``: ``{label: stats.SeedResults}``).
    Dots that overlap between two rows are the picture of "within the noise"."""
    if not results:
        raise UsageError("no results to compare")
    rows = list(results.values())
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 0.45 * len(rows) + 1.4))
    for y, (row, colour) in enumerate(zip(rows, categorical_colours(len(rows)))):
        spread = 0.0 if row.count < 2 else row.std
        ax.errorbar(row.mean, y, xerr=spread, fmt="|", markersize=16, capsize=5, color=colour, linewidth=1.5)
        jitter = np.linspace(-0.15, 0.15, row.count) if row.count > 1 else np.zeros(1)
        ax.scatter(row.values, y + jitter, s=22, color=colour, alpha=0.8, zorder=3)
    ax.set_yticks(range(len(rows)), [row.label for row in rows])
    ax.invert_yaxis()
    seeds = sorted({row.count for row in rows})
    ax.set(xlabel=f"{xlabel} (dots: seeds, {'/'.join(map(str, seeds))} per row; bar: mean ± std)",
           title=title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    means = _shorten([f"{row.label} {row.mean:.1f}" for row in rows], 8)
    return _finish(fig, save_to, f"{title + ': ' if title else ''}{xlabel} per setting, each seed a dot, the mean "
                                 f"± standard deviation over {'/'.join(map(str, seeds))} seeds as a bar; means: "
                                 f"{means}.")


def plot_paired_differences(results, differences, *, detectable: float | None = None, title: str = "",
                            unit: str = "points", save_to: str | Path | None = None) -> Figure:
    """One row per tested pair: each seed's own difference (first minus second, the same seed
    on both sides) as a dot, the mean as a bar, and its interval with the coverage named in the
    legend (``Difference.interval``: the simultaneous Bonferroni interval of a family tested
    together, the plain 95% interval of a difference tested alone). ``results``:
    ``{label: stats.SeedResults}``; ``differences``: ``stats.Difference`` of those labels.
    ``detectable``: the smallest difference the design could call beyond the noise, shaded
    around 0. An interval that crosses the 0 line is the picture of "within the noise"."""
    if not differences:
        raise UsageError("no differences to plot")
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(differences) + 1.6))
    if detectable:
        ax.axvspan(-detectable, detectable, color="0.9", zorder=0,
                   label=f"smaller than the design can detect (±{detectable:.1f})")
    ax.axvline(0, color="0.3", linewidth=1)
    names = sorted({d.interval_name for d in differences if d.testable})  # each states its coverage
    coverage = " or ".join(names) if names else "interval (none: untestable)"
    for y, d in enumerate(differences):
        gaps = [a - b for a, b in zip(results[d.first].values, results[d.second].values)]
        jitter = np.linspace(-0.15, 0.15, len(gaps)) if len(gaps) > 1 else np.zeros(1)
        ax.scatter(gaps, y + jitter, s=22, color=OKABE_ITO[0], alpha=0.8, zorder=3, marker="o",
                   label="each seed's difference" if y == 0 else None)
        low, high = d.interval if d.testable else (d.difference, d.difference)
        ax.errorbar(d.difference, y, xerr=[[d.difference - low], [high - d.difference]], fmt="D", color="black",
                    capsize=5, markersize=6, label=f"mean and {coverage}" if y == 0 else None)
    ax.set_yticks(range(len(differences)), [f"{d.first} − {d.second}" for d in differences])
    ax.invert_yaxis()
    ax.set(xlabel=f"difference in top-1 ({unit})", title=title)
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    pairs = _shorten([f"{d.first} − {d.second} {d.difference:+.1f}" for d in differences], 8)
    band = " and the band the design cannot detect" if detectable else ""
    return _finish(fig, save_to, f"{title + ': ' if title else ''}difference in top-1 ({unit}) for each tested pair, "
                                 f"each seed's own difference a dot, the mean with its {coverage} as a diamond "
                                 f"and bar, beside the zero line{band}; {pairs}.")


def plot_mix_gallery(batch, class_names: Sequence[str], *, count: int = 8,
                     save_to: str | Path | None = None) -> Figure:
    """Mixed images with both labels and their shares (``batch``: a ``MixedBatch``)."""
    count = min(count, batch.images.shape[0])
    titles = [f"{batch.lam:.2f} {class_names[a][:8]}\n{1 - batch.lam:.2f} {class_names[b][:8]}"
              for a, b in zip(batch.labels[:count].tolist(), batch.partner_labels[:count].tolist())]
    fig = show_images(batch.images[:count], titles, columns=min(count, 8))
    pairs = _shorten([f"{class_names[a]} with {class_names[b]}" for a, b in
                      zip(batch.labels[:count].tolist(), batch.partner_labels[:count].tolist())], 4)
    return _finish(fig, save_to, f"{count} mixed images, each labelled with its two classes and their shares "
                                 f"({batch.lam:.2f} and {1 - batch.lam:.2f}): {pairs}.")


def plot_top_mistakes(images: Tensor, logits: Tensor, labels: Tensor, class_names: Sequence[str], *,
                      count: int = 8, save_to: str | Path | None = None) -> Figure:
    """The misclassified images the model was most confident about, with what it said."""
    _check_images(images)
    probabilities = logits.softmax(dim=1)
    confidence, predicted = probabilities.max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    if len(wrong) == 0:
        raise UsageError("the model made no mistakes on these images")
    worst = wrong[confidence[wrong].argsort(descending=True)][:count]
    titles = [f"said {class_names[predicted[i]][:9]} {100 * confidence[i]:.0f}%\nis {class_names[labels[i]][:9]}"
              for i in worst.tolist()]
    fig = show_images(images[worst], titles, columns=min(len(worst), 8))
    said = _shorten([f"{class_names[labels[i]]} taken for {class_names[predicted[i]]} "
                     f"({100 * confidence[i]:.0f}%)" for i in worst.tolist()], 4)
    return _finish(fig, save_to, f"The {len(worst)} misclassified images the model was most confident about, each "
                                 f"titled with what it said and what it is: {said}.")


def plot_architecture(model: torch.nn.Module, *, save_to: str | Path | None = None) -> Figure:
    """The token flow of a built student, labelled with its own sizes (B = batch).

    ViT/DeiT: image -> patches -> patch embedding -> [class, patches, (distill)] + positions
    -> blocks -> heads. TNT/TITN: a pixel stream (pixels inside each patch, inner blocks)
    beside the token stream (learned patch tokens, outer blocks), joined in every block
    by pixel-to-patch, whose zero rows leave the class and distillation tokens alone.
    """
    from titn_lite.models.students import TransformerInTransformer, VisionTransformer

    if not isinstance(model, (VisionTransformer, TransformerInTransformer)):
        raise UsageError(f"plot_architecture draws titn-lite's students (create_model(...)), not "
                         f"{type(model).__name__}")
    c, P, D = model.config, model.num_patches, model.config.patch_dim
    T = P + 1 + int(c.distilled)
    tokens = "[class] + " + f"{P} patches" + (" + [distill]" if c.distilled else "")
    sequence = f"outer sequence: {tokens}\n+ learned positions → (B, T = {T}, {D})"
    hidden = int(D * c.mlp_ratio)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    image = f"image (B, {model.in_chans}, {model.img_size}, {model.img_size})"
    heads = ("class head and distillation head: LN + Linear " f"{D} → {model.num_classes}\n"
             "training: both logits; evaluation: their mean") if c.distilled else \
        f"class head: LN + Linear {D} → {model.num_classes} on the class token"

    fig, ax = plt.subplots(figsize=(11, 7.2))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.axis("off")
    labels = _ArchitectureLabels(image, sequence, heads, hidden)
    (_draw_vit if isinstance(model, VisionTransformer) else _draw_tnt)(_Diagram(ax), model, labels)
    family = ("DeiT" if c.distilled else "ViT") if isinstance(model, VisionTransformer) else \
        ("TITN" if c.distilled else "TNT")
    ax.set_title(f"{family}: {params:.2f}M parameters, "
                 f"{c.depth} blocks, {T} tokens of {D} features", fontsize=10)
    flow = ("image, patches, patch embedding, the token sequence with positions, the blocks, the heads"
            if isinstance(model, VisionTransformer) else
            "image; a pixel stream (pixels inside each patch, inner blocks) beside the token stream (patch tokens, "
            "outer blocks), joined in every block by pixel-to-patch; the heads")
    return _finish(fig, save_to, f"Diagram of {family}: {params:.2f}M parameters, {c.depth} blocks, {T} tokens of "
                                 f"{D} features; boxes from top to bottom: {flow}.")


@dataclass
class _ArchitectureLabels:
    """The texts both diagrams share: the image, the token sequence, the heads; the MLP width."""

    image: str
    sequence: str
    heads: str
    hidden: int


class _Diagram:
    """Boxes and arrows on an axis running 0-10 both ways."""

    PALETTE = dict(data="#e8eef7", pixel="#fde7c8", token="#d9f0e3", head="#efe3f7")

    def __init__(self, ax: Axes) -> None:
        self.ax = ax

    def box(self, x: float, y: float, text: str, kind: str) -> None:
        self.ax.text(x, y, text, ha="center", va="center", fontsize=8.5,
                     bbox=dict(boxstyle="round,pad=0.45", fc=self.PALETTE[kind], ec="#555555"))

    def arrow(self, start: tuple[float, float], end: tuple[float, float], label: str = "") -> None:
        self.ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color="#333333", lw=1.2))
        if label:
            self.ax.text((start[0] + end[0]) / 2 + 0.1, (start[1] + end[1]) / 2, label, fontsize=7.5, color="#333333")


def _draw_vit(draw: _Diagram, model: torch.nn.Module, labels: _ArchitectureLabels) -> None:
    """ViT/DeiT: one column, image to heads."""
    c, P, D = model.config, model.num_patches, model.config.patch_dim
    image, sequence, heads, hidden = labels.image, labels.sequence, labels.heads, labels.hidden
    x = 5
    draw.box(x, 9.4, image, "data")
    draw.box(x, 8.1, f"cut into P = {P} patches of {c.patch_size}x{c.patch_size}, flattened\n"
             f"(B, {P}, {model.in_chans * c.patch_size ** 2})", "data")
    draw.box(x, 6.8, f"patch embedding: one Linear {model.in_chans * c.patch_size ** 2} → {D}, shared by all patches\n"
             f"(B, {P}, {D})", "token")
    draw.box(x, 5.5, sequence, "token")
    draw.box(x, 3.8, f"{c.depth} × pre-norm block over the T tokens\n"
             f"x + MHSA(LN x): {c.outer_heads} heads × {D // c.outer_heads} features\n"
             f"x + MLP(LN x): {D} → {hidden} → {D}", "token")
    draw.box(x, 2.0, heads, "head")
    draw.ax.add_patch(FancyBboxPatch((2.0, 3.0), 6.0, 1.6, boxstyle="round,pad=0.05", fill=False, ls="--",
                      ec="#8a4b00"))
    for top, bottom in ((9.1, 8.45), (7.75, 7.15), (6.45, 5.9), (5.1, 4.45), (3.15, 2.45)):
        draw.arrow((x, top), (x, bottom))


def _draw_tnt(draw: _Diagram, model: torch.nn.Module, labels: _ArchitectureLabels) -> None:
    """TNT/TITN: the pixel stream on the left, the token stream on the right."""
    c, P, D = model.config, model.num_patches, model.config.patch_dim
    image, sequence, heads, hidden = labels.image, labels.sequence, labels.heads, labels.hidden
    n = (c.patch_size // c.pixel_size) ** 2
    d = c.pixel_dim
    left, right = 2.6, 7.4
    draw.box(5, 9.4, image, "data")
    draw.box(left, 8.0, f"pixels: each {c.patch_size}x{c.patch_size} patch → n = {n} pixels of "
             f"{c.pixel_size}x{c.pixel_size}\nLinear {model.in_chans * c.pixel_size ** 2} → {d} "
             f"+ pixel positions\n(B·{P}, {n}, {d})", "pixel")
    draw.box(right, 8.0, f"patch tokens: {P} learned vectors\n(the image reaches them only through\n"
             f"pixel-to-patch) → (B, {P}, {D})", "token")
    draw.box(right, 6.5, sequence, "token")
    draw.box(left, 5.0, f"inner block over the {n} pixels of every patch\n{c.inner_heads} heads × "
             f"{d // c.inner_heads} features, MLP {d} → {int(d * c.mlp_ratio)} → {d}\n"
             f"(B·{P}, {n}, {d}): all patches as one batch", "pixel")
    draw.box(5, 3.55, f"pixel-to-patch: LN, flatten {n} × {d} = {n * d}, Linear {n * d} → {D},\n"
             f"zero row{'s' if c.distilled else ''} for [class]{' and [distill]' if c.distilled else ''} "
             f"→ (B, T, {D}), added to the tokens", "token")
    draw.box(right, 2.2, f"outer block over the T tokens\n{c.outer_heads} heads × {D // c.outer_heads} features, "
             f"MLP {D} → {hidden} → {D}", "token")
    draw.box(left, 0.6, heads, "head")
    draw.arrow((4.4, 9.15), (left, 8.75))
    draw.arrow((left, 7.25), (left, 5.75))
    draw.arrow((right, 7.45), (right, 6.95))
    draw.arrow((left, 4.25), (4.2, 3.95))
    draw.arrow((right, 6.05), (right, 3.95), "tokens")
    draw.arrow((6.2, 3.15), (right, 2.65))
    draw.arrow((right - 1.6, 1.8), (left + 1.4, 0.95))
    draw.ax.text(right - 1.2, 1.05, "after the last block", fontsize=7.5, color="#333333")
    draw.ax.add_patch(FancyBboxPatch((0.15, 1.55), 9.7, 4.25, boxstyle="round,pad=0.05", fill=False,
                      ls="--", ec="#8a4b00"))
    draw.ax.text(0.3, 5.55, f"repeated × {c.depth}", fontsize=9, style="italic", color="#8a4b00")


_register_description()
