"""Interactive explorers for JupyterLab (ipywidgets). Each returns a widget to display;
its pictures come from ``titn_lite.results.viz``, redrawn into an ``Output`` when a control moves."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from titn_lite.results import viz


def _redrawing(output: widgets.Output, draw: Callable[..., Figure]) -> Callable[..., None]:
    """Wrap ``draw`` so each call replaces the output's picture (or shows its error).

    The picture is set as the Output's display message directly, a PNG, rather than
    through ``display()``: the same in a live kernel, in a browser and in headless tests.
    """
    def redraw(**kwargs: object) -> None:
        try:
            fig = draw(**kwargs)
        except ValueError as error:
            output.outputs = ({"output_type": "stream", "name": "stdout", "text": f"{error}\n"},)
            return
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight", dpi=100)
        plt.close(fig)
        png = base64.b64encode(buffer.getvalue()).decode("ascii")
        output.outputs = ({"output_type": "display_data", "metadata": {},
                           "data": {"image/png": png, "text/plain": viz.describe(fig)}},)
    return redraw


class Explorer(widgets.VBox):
    """Controls above the picture they redraw.

    When displayed, it also offers its current picture as a plain PNG beside the live
    widget: JupyterLab shows the widget; a page without a kernel (the book) shows the PNG.
    """

    def _repr_mimebundle_(self, **kwargs: object) -> dict | tuple[dict, dict]:
        bundle = super()._repr_mimebundle_(**kwargs)
        picture = [o for o in self.children[-1].outputs if "image/png" in o.get("data", {})]
        if not picture:
            return bundle
        bundle["image/png"] = picture[0]["data"]["image/png"]
        # What the picture shows, for the book's alt text (the widget's own text/plain is its repr).
        return bundle, {"image/png": {"alt": picture[0]["data"].get("text/plain", "")}}


def _bind(controls: dict[str, widgets.ValueWidget], draw: Callable[..., Figure]) -> Explorer:
    output = widgets.Output()
    redraw = _redrawing(output, draw)
    for control in controls.values():
        control.observe(lambda _change: redraw(**{k: c.value for k, c in controls.items()}), names="value")
    redraw(**{k: c.value for k, c in controls.items()})
    return Explorer([widgets.HBox(list(controls.values())), output])


def patch_explorer(image: Tensor) -> Explorer:
    """Patch and pixel size sliders over one (C, H, W) image."""
    side = image.shape[-1]
    sizes = [d for d in range(2, side + 1) if side % d == 0]
    controls = {"patch_size": widgets.SelectionSlider(options=sizes, value=8 if 8 in sizes else sizes[0],
                                                      description="patch"),
                "pixel_size": widgets.SelectionSlider(options=[1, 2, 4, 8], value=2, description="pixel")}
    return _bind(controls, lambda patch_size, pixel_size: viz.show_patch_grid(image, patch_size, pixel_size))


def cutmix_explorer(images: Tensor, labels: Tensor, class_names: Sequence[str]) -> Explorer:
    """CutMix with a chosen alpha (and seed): the mixed batch and the distribution lambda is drawn from."""
    from titn_lite.data.mixing import cutmix

    def draw(alpha: float, seed: int) -> Figure:
        torch.manual_seed(seed)
        batch = cutmix(images, labels, alpha=alpha, partner=torch.roll(torch.arange(len(images)), 1))
        fig = viz.plot_mix_gallery(batch, class_names, count=min(8, len(images)))
        fig.suptitle(f"alpha {alpha:.2f}: lambda drawn from Beta({alpha:.2f}, {alpha:.2f}), "
                     f"corrected to the pasted box = {batch.lam:.2f}", fontsize=9, y=1.02)
        return fig

    controls = {"alpha": widgets.FloatSlider(value=1.0, min=0.1, max=3.0, step=0.1, description="alpha"),
                "seed": widgets.IntSlider(value=0, min=0, max=50, description="seed")}
    return _bind(controls, draw)


def attention_explorer(model: nn.Module, images: Tensor, class_names: Sequence[str] | None = None,
                       labels: Sequence[int] | None = None) -> Explorer:
    """Image, layer and head sliders over the class and distillation tokens' attention."""
    from titn_lite.models.students import capture_attention

    model.eval()
    with torch.no_grad():
        _, maps = capture_attention(model, images)
    heads = maps.outer[0].shape[1]

    def draw(image_index: int, layer: int, head: int) -> Figure:
        return viz.plot_token_attention(images, maps, image_index=image_index, layer=layer,
                                        head=None if head < 0 else head, class_names=class_names, labels=labels)

    controls = {
        "image_index": widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="image"),
        "layer": widgets.IntSlider(value=len(maps.outer) - 1, min=0, max=len(maps.outer) - 1, description="layer"),
        "head": widgets.IntSlider(value=-1, min=-1, max=heads - 1, description="head (-1: mean)"),
    }
    return _bind(controls, draw)


class LiveLearningCurve:
    """A training callback that redraws the learning curves after every epoch:

        live = LiveLearningCurve("titn"); display(live.widget)
        train(config, callbacks=[live])
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.history: list[dict[str, float]] = []
        self.widget = widgets.Output()
        self._redraw = _redrawing(self.widget, lambda: viz.plot_learning_curves({self.name: self.history}))

    def __call__(self, row: dict[str, float]) -> None:
        self.history.append(row)
        self._redraw()
