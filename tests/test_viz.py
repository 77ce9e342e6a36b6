"""Every picture, headless (Agg): the right axes and titles, and the maps drawn are the model's."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from titn_lite import capture_attention, create_model  # noqa: E402
from titn_lite.data.mixing import cutmix  # noqa: E402
from titn_lite.models.attention import attention_rollout  # noqa: E402
from titn_lite.results import viz, widgets
from titn_lite.system.usage import UsageError  # noqa: E402

NAMES = [f"class{i}" for i in range(10)]


def _images_and_maps(name, batch):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=1, depth=2).eval()
    images = torch.randn(batch, 1, 32, 32)
    with torch.no_grad():
        _, maps = capture_attention(model, images)
    return images, maps


@pytest.fixture(scope="module")
def titn_maps():
    return _images_and_maps("titn", 3)


@pytest.fixture(scope="module")
def vit_maps():
    return _images_and_maps("vit", 2)


def test_patch_grid_draws_patches_and_pixels(tmp_path):
    fig = viz.show_patch_grid(torch.rand(1, 32, 32), patch_size=8, pixel_size=2, save_to=tmp_path / "grid.png")
    ax = fig.axes[0]
    assert ax.get_title() == "16 patches of 8x8\n16 pixels of 2x2 each"
    assert len(ax.lines) == 2 * 3 + 2 * 15  # 3 patch lines and 15 pixel lines per direction
    assert (tmp_path / "grid.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="patch size 5 does not divide the 32x32 image"):
        viz.show_patch_grid(torch.rand(1, 32, 32), patch_size=5)


def test_token_attention_is_the_models_weights(titn_maps):
    images, maps = titn_maps
    last = maps.outer[-1].mean(dim=1)
    torch.testing.assert_close(viz.token_attention(maps, token="class"), last[:, 0, 1:-1].reshape(3, 4, 4))
    torch.testing.assert_close(viz.token_attention(maps, token="distill", layer=0, head=2),
                               maps.outer[0][:, 2, -1, 1:-1].reshape(3, 4, 4))
    for weights in maps.outer:  # every attention row the pictures draw from sums to 1
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


def test_token_comparison_shows_both_tokens_side_by_side(titn_maps):
    images, maps = titn_maps
    fig = viz.plot_token_attention(images, maps, image_index=1, layer=1, head=0, class_names=NAMES, labels=[0, 3, 5])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["class3", "class token, layer 1, head 0", "distill token, layer 1, head 0"]
    drawn = fig.axes[1].images[1].get_array()  # the overlay: the map upsampled to the image
    expected = F.interpolate(viz.token_attention(maps, layer=1, head=0)[1][None, None], size=(32, 32))[0, 0]
    torch.testing.assert_close(torch.as_tensor(drawn.data), expected)


def test_vit_has_only_the_class_token(vit_maps):
    images, maps = vit_maps
    assert len(viz.plot_token_attention(images, maps).axes) == 2
    with pytest.raises(ValueError, match="token 'distill' is not in this model; valid: class"):
        viz.token_attention(maps, token="distill")
    with pytest.raises(ValueError, match="no inner \\(pixel\\) attention"):
        viz.plot_pixel_attention(images, maps)


@pytest.mark.parametrize("kwargs,message", [
    (dict(layer=2), r"layer 2 does not exist; valid: 0..1 \(or -1 for the last\)"),
    (dict(head=8), r"head 8 does not exist; valid: 0..7"),
    (dict(image_index=3), r"image_index 3 does not exist; valid: 0..2"),
])
def test_out_of_range_choices_name_the_valid_range(titn_maps, kwargs, message):
    images, maps = titn_maps
    with pytest.raises(ValueError, match=message):
        viz.plot_token_attention(images, maps, **kwargs)


def test_wrong_image_shape_is_refused(titn_maps):
    _, maps = titn_maps
    with pytest.raises(ValueError, match=r"expected images shaped \(batch, 1 or 3, H, W\), got \(1, 32, 32\)"):
        viz.plot_token_attention(torch.rand(1, 32, 32), maps)


def test_pixel_attention_inside_a_patch(titn_maps):
    images, maps = titn_maps
    fig = viz.plot_pixel_attention(images, maps, image_index=2, patch=5, layer=0)
    assert [ax.get_title() for ax in fig.axes] == ["patch 5", "pixel attention, layer 0",
                                                   "attention each pixel receives"]
    heat = fig.axes[1].collections[0].get_array().reshape(16, 16)
    torch.testing.assert_close(torch.as_tensor(heat.data), maps.inner[0][2, 5].mean(0))
    with pytest.raises(ValueError, match=r"patch 16 does not exist; valid: 0..15"):
        viz.plot_pixel_attention(images, maps, patch=16)


def test_rollout_of_one_layer_is_its_attention_with_the_residual(titn_maps):
    images, maps = titn_maps
    one_layer = maps.outer[:1]
    expected = 0.5 * one_layer[0].mean(dim=1) + 0.5 * torch.eye(18)
    torch.testing.assert_close(attention_rollout(one_layer), expected)
    rolled = attention_rollout(maps.outer)
    torch.testing.assert_close(rolled.sum(-1), torch.ones(3, 18))
    fig = viz.plot_rollout(images, maps, image_index=0)
    assert [ax.get_title() for ax in fig.axes[1:]] == [f"{t} token, rollout of {len(maps.outer)} layers"
                                                       for t in ("class", "distill")]
    drawn = torch.as_tensor(fig.axes[1].images[1].get_array().data)
    expected_map = F.interpolate(rolled[0, 0, 1:-1].reshape(1, 1, 4, 4), size=(32, 32))[0, 0]
    torch.testing.assert_close(drawn, expected_map)


def test_attention_by_layer_grid(titn_maps):
    images, maps = titn_maps
    fig = viz.plot_attention_by_layer(images, maps)
    assert len(fig.axes) == 2 * 2 and fig.axes[3].get_title() == "distill, layer 1"


def test_learning_curves(tmp_path):
    rows = [{"epoch": e, "train_loss": 2 - e / 4, "val_loss": 1.8 - e / 5, "train_top1": e / 5, "val_top1": e / 4}
            for e in (1, 2, 3)]
    fig = viz.plot_learning_curves({"vit": rows, "titn": rows}, save_to=tmp_path / "curves.png")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "top-1 accuracy"]
    assert len(fig.axes[0].lines) == 4 and list(fig.axes[1].lines[0].get_ydata()) == [0.25, 0.5, 0.75]
    with pytest.raises(ValueError, match="no histories to plot"):
        viz.plot_learning_curves({})
    timed = [{**row, "seconds": 10.0 * row["epoch"]} for row in rows]  # 10, 20, 30 s: 10, 30, 60 s so far
    fig = viz.plot_learning_curves({"vit": timed}, metrics=("top1",), x="seconds")
    assert list(fig.axes[0].lines[0].get_xdata()) == [10.0, 30.0, 60.0]
    assert fig.axes[0].get_xlabel() == "seconds (training and evaluation)"
    stepped = [{**row, "steps": 50 * row["epoch"]} for row in rows]
    fig = viz.plot_learning_curves({"vit": stepped}, metrics=("top1",), x="steps")
    assert list(fig.axes[0].lines[0].get_xdata()) == [50, 100, 150] and fig.axes[0].get_xlabel() == "optimizer steps"
    with pytest.raises(ValueError, match="the rows of vit have no 'steps'"):
        viz.plot_learning_curves({"vit": rows}, x="steps")
    sparse = [{**row, "val_top1": float("nan")} if row["epoch"] == 1 else row for row in rows]  # evaluate_every=2
    fig = viz.plot_learning_curves({"vit": sparse}, metrics=("top1",))
    validation, training = fig.axes[0].lines
    assert list(validation.get_xdata()) == [2, 3] and list(training.get_xdata()) == [1, 2, 3]


def test_confusion_and_comparison_and_gallery_and_mistakes():
    confusion = torch.tensor([[8, 2], [1, 9]])
    fig = viz.plot_confusion(confusion, ["a", "b"])
    assert [t.get_text() for t in fig.axes[0].texts] == ["80", "20", "10", "90"]
    runs = [SimpleNamespace(model="vit", params=5.4e6, flops_per_image=1.8e8, top1=0.8),
            SimpleNamespace(model="titn", params=5.85e6, flops_per_image=2.2e8, top1=0.85)]
    fig = viz.plot_model_comparison(runs)
    assert [ax.get_xlabel() for ax in fig.axes] == ["parameters (M)", "GFLOPs per 512 images"]
    assert [t.get_text() for t in fig.axes[0].texts] == ["vit", "titn"]
    torch.manual_seed(0)
    batch = cutmix(torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 2, 3]), partner=torch.tensor([1, 2, 3, 0]))
    fig = viz.plot_mix_gallery(batch, NAMES, count=4)
    assert fig.axes[0].get_title() == f"{batch.lam:.2f} class0\n{1 - batch.lam:.2f} class1"
    logits = torch.tensor([[5.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    fig = viz.plot_top_mistakes(torch.rand(3, 1, 8, 8), logits, torch.tensor([1, 1, 0]), ["a", "b"], count=2)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["said a 99%\nis b", "said b 95%\nis a"]
    with pytest.raises(ValueError, match="no mistakes"):
        viz.plot_top_mistakes(torch.rand(1, 1, 8, 8), torch.tensor([[0.0, 1.0]]), torch.tensor([1]), ["a", "b"])


def _shown_pngs(output):
    return [o["data"]["image/png"] for o in output.outputs if "image/png" in o.get("data", {})]


def test_attention_explorer_redraws_when_a_slider_moves():
    torch.manual_seed(0)
    model = create_model("titn", num_classes=10, in_chans=1, depth=2)
    explorer = widgets.attention_explorer(model, torch.randn(3, 1, 32, 32), NAMES, [0, 1, 2])
    sliders = {s.description: s for s in explorer.children[0].children}
    output = explorer.children[1]
    before = _shown_pngs(output)
    sliders["layer"].value = 0
    after = _shown_pngs(output)
    assert len(before) == len(after) == 1 and before != after
    sliders["head (-1: mean)"].value = 7
    assert _shown_pngs(output) != after


def test_patch_and_cutmix_explorers_and_live_curve():
    explorer = widgets.patch_explorer(torch.rand(1, 32, 32))
    output = explorer.children[1]
    first = _shown_pngs(output)
    explorer.children[0].children[0].value = 16
    assert _shown_pngs(output) != first
    explorer.children[0].children[1].value = 8  # pixel 8 on patch 16: still valid
    assert len(_shown_pngs(output)) == 1
    assert "4 patches of 16x16, 4 pixels of 8x8" in output.outputs[0]["data"]["text/plain"]
    # Patch 4 cannot hold 8x8 pixels: show_patch_grid refuses it (a UsageError, so a ValueError),
    # and the explorer shows that message in place of a picture, not a crash and not a drawing.
    with pytest.raises(UsageError, match=r"^pixel size 8 does not divide patch size 4$"):
        viz.show_patch_grid(torch.rand(1, 32, 32), 4, 8)
    assert issubclass(UsageError, ValueError)
    explorer.children[0].children[0].value = 4
    assert not _shown_pngs(output)
    assert [o.get("text") for o in output.outputs] == ["pixel size 8 does not divide patch size 4\n"]
    explorer.children[0].children[0].value = 8  # a valid patch size draws again, and the message goes
    assert len(_shown_pngs(output)) == 1 and len(output.outputs) == 1
    assert "16 patches of 8x8" in output.outputs[0]["data"]["text/plain"]
    cut = widgets.cutmix_explorer(torch.rand(4, 1, 32, 32), torch.arange(4), NAMES)
    assert len(_shown_pngs(cut.children[1])) == 1
    live = widgets.LiveLearningCurve("titn")
    live({"epoch": 1, "train_loss": 2.0, "val_loss": 1.5, "train_top1": 0.3, "val_top1": 0.4})
    assert len(_shown_pngs(live.widget)) == 1 and len(live.history) == 1


def _figure_text(fig) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts) + "\n" + fig.axes[0].get_title()


@pytest.mark.parametrize("name, expected, absent", [
    ("titn", ["(B·16, 16, 12)", "4 heads × 3 features", "8 heads × 24 features", "T = 18",
              "zero rows for [class] and [distill]", "repeated × 12", "Linear 4 → 12", "TITN:"], []),
    ("tnt", ["zero row for [class]", "T = 17", "TNT:"], ["[distill]"]),
    ("deit", ["Linear 64 → 192", "T = 18", "class head and distillation head", "DeiT:"], ["pixel"]),
    ("vit", ["T = 17", "12 × pre-norm block", "ViT:"], ["[distill]", "pixel"]),
])
def test_architecture_picture_carries_the_built_models_sizes(name, expected, absent):
    from titn_lite import create_model
    from titn_lite.results.viz import plot_architecture

    fig = plot_architecture(create_model(name, num_classes=10, in_chans=1))
    text = _figure_text(fig)
    for piece in expected:
        assert piece in text, f"{name}: {piece!r} not drawn"
    for piece in absent:
        assert piece not in text, f"{name}: {piece!r} drawn"
    matplotlib.pyplot.close(fig)


def test_architecture_picture_follows_overrides_and_refuses_other_modules():
    from titn_lite import create_model
    from titn_lite.results.viz import plot_architecture

    fig = plot_architecture(create_model("titn", num_classes=10, in_chans=3, depth=2, pixel_size=4))
    text = _figure_text(fig)
    assert "n = 4 pixels of 4x4" in text and "repeated × 2" in text and "Linear 48 → 12" in text
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="draws titn-lite's students"):
        plot_architecture(torch.nn.Linear(2, 2))


def test_seed_comparison_draws_each_seed_and_the_mean_with_its_spread(tmp_path):
    from titn_lite.results.stats import seed_results

    results = seed_results({"vit": [70.4, 66.2, 66.8], "deit": [71.4, 68.9, 67.7], "one seed": [69.0]})
    fig = viz.plot_seed_comparison(results, title="t", save_to=tmp_path / "seeds.png")
    ax = fig.axes[0]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["vit", "deit", "one seed"]
    dots = [collection for collection in ax.collections if collection.get_offsets().shape[0] in (1, 3)
            and type(collection).__name__ == "PathCollection"]
    assert sorted(len(c.get_offsets()) for c in dots) == [1, 3, 3]
    assert sorted(float(x) for x in dots[0].get_offsets()[:, 0]) == pytest.approx(sorted(results["vit"].values))
    bars = [container.lines[2][0].get_segments()[0] for container in ax.containers]  # each row's error bar
    assert [round(float(segment[1][0] - segment[0][0]), 3) for segment in bars] == [
        round(2 * results["vit"].std, 3), round(2 * results["deit"].std, 3), 0.0]
    assert [float(segment.mean(0)[0]) for segment in bars] == pytest.approx([r.mean for r in results.values()])
    assert (tmp_path / "seeds.png").stat().st_size > 0
    with pytest.raises(ValueError, match="no results"):
        viz.plot_seed_comparison({})


def test_paired_differences_draw_each_seeds_gap_and_the_interval_that_agrees_with_the_verdict(tmp_path):
    from titn_lite.results.stats import compare_pairs, seed_results

    results = seed_results({"ref": [80.0, 81.0, 82.0, 80.5], "a": [81.1, 82.3, 83.0, 81.4],
                            "b": [79.0, 81.5, 81.0, 81.0]})
    differences = compare_pairs(results, [("a", "ref"), ("b", "ref")])
    fig = viz.plot_paired_differences(results, differences, detectable=1.5, save_to=tmp_path / "gaps.png")
    ax = fig.axes[0]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["a − ref", "b − ref"]
    dots = [c for c in ax.collections if type(c).__name__ == "PathCollection"]
    gaps = sorted(float(x) for x in dots[0].get_offsets()[:, 0])
    assert gaps == pytest.approx(sorted(a - r for a, r in zip(results["a"].values, results["ref"].values)))
    bars = [container.lines[2][0].get_segments()[0] for container in ax.containers]
    assert [(float(s[0][0]), float(s[1][0])) for s in bars] == [pytest.approx(d.interval) for d in differences]
    assert any("±1.5" in text.get_text() for text in ax.get_legend().get_texts())
    assert (tmp_path / "gaps.png").stat().st_size > 0
    with pytest.raises(ValueError, match="no differences"):
        viz.plot_paired_differences(results, [])


# --- pictures readable without colour vision, and without sight ---------------------------

def _every_picture(titn_maps):
    """(name, figure) for each drawing function, on small inputs."""
    from titn_lite.results.stats import compare_pairs, seed_results

    matplotlib.pyplot.close("all")  # the earlier tests' figures
    images, maps = titn_maps
    rows = [{"epoch": e, "train_loss": 2 - e / 4, "val_loss": 1.8 - e / 5, "train_top1": e / 5, "val_top1": e / 4}
            for e in (1, 2, 3)]
    runs = [SimpleNamespace(model=m, params=5.4e6 + i, flops_per_image=1.8e8 + i, top1=0.8 + i / 100)
            for i, m in enumerate(("vit", "deit", "tnt", "titn"))]
    results = seed_results({"ref": [80.0, 81.0, 82.0], "a": [81.1, 82.3, 83.0], "b": [79.0, 81.5, 81.0]})
    torch.manual_seed(0)
    batch = cutmix(torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 2, 3]), partner=torch.tensor([1, 2, 3, 0]))
    return [
        ("show_images", viz.show_images(torch.rand(3, 1, 8, 8), ["a", "b", "c"], columns=3)),
        ("plot_learning_curves", viz.plot_learning_curves({"vit": rows, "deit": rows, "tnt": rows, "titn": rows})),
        ("plot_confusion", viz.plot_confusion(torch.tensor([[8, 2], [1, 9]]), ["a", "b"])),
        ("show_patch_grid", viz.show_patch_grid(torch.rand(1, 32, 32), 8, 2)),
        ("plot_token_attention", viz.plot_token_attention(images, maps, class_names=NAMES, labels=[0, 3, 5])),
        ("plot_attention_by_layer", viz.plot_attention_by_layer(images, maps)),
        ("plot_pixel_attention", viz.plot_pixel_attention(images, maps, patch=5)),
        ("plot_rollout", viz.plot_rollout(images, maps)),
        ("plot_model_comparison", viz.plot_model_comparison(runs)),
        ("plot_seed_comparison", viz.plot_seed_comparison(results, title="three seeds each")),
        ("plot_paired_differences", viz.plot_paired_differences(
            results, compare_pairs(results, [("a", "ref"), ("b", "ref")]), detectable=1.0, title="gaps")),
        ("plot_mix_gallery", viz.plot_mix_gallery(batch, NAMES, count=4)),
        ("plot_top_mistakes", viz.plot_top_mistakes(torch.rand(3, 1, 8, 8), torch.tensor([[5.0, 0.0], [0.0, 1.0],
                                                    [0.0, 3.0]]), torch.tensor([1, 1, 0]), ["a", "b"], count=2)),
        ("plot_architecture", viz.plot_architecture(create_model("titn", num_classes=10, in_chans=1, depth=2))),
    ]


PERCEPTUALLY_UNIFORM = {"viridis", "cividis", "inferno", "magma", "plasma"}


def test_every_picture_uses_colour_blind_safe_colours_and_uniform_maps(titn_maps):
    from matplotlib.colors import to_hex

    safe = {to_hex(c) for c in viz.OKABE_ITO} | {"#000000", "#ffffff"}
    for name, fig in _every_picture(titn_maps):
        for ax in fig.axes:
            for mappable in [*ax.images, *(c for c in ax.collections if c.get_array() is not None
                                           and type(c).__name__ == "QuadMesh")]:
                if mappable.get_array().ndim == 2 and not (name in ("show_images", "plot_mix_gallery",
                                                                    "plot_top_mistakes") or
                                                           mappable.get_cmap().name == "gray"):
                    assert mappable.get_cmap().name in PERCEPTUALLY_UNIFORM, f"{name}: {mappable.get_cmap().name}"
            for line in ax.lines:
                colour = to_hex(line.get_color())
                grey = len({colour[1:3], colour[3:5], colour[5:7]}) == 1
                assert colour in safe or grey, f"{name}: line colour {colour} is not from the Okabe-Ito palette"
            for collection in ax.collections:
                if type(collection).__name__ == "PathCollection":
                    for colour in collection.get_facecolors():
                        assert to_hex(colour[:3]) in safe, f"{name}: point colour {to_hex(colour[:3])}"
        matplotlib.pyplot.close(fig)


def test_multi_line_plots_tell_lines_apart_without_colour(titn_maps):
    rows = [{"epoch": e, "train_loss": 2 - e / 4, "val_loss": 1.8 - e / 5, "train_top1": e / 5, "val_top1": e / 4}
            for e in (1, 2, 3)]
    fig = viz.plot_learning_curves({"vit": rows, "deit": rows, "tnt": rows, "titn": rows})
    for ax in fig.axes:
        styles = [(line.get_marker(), line.get_linestyle()) for line in ax.lines]
        assert len(set(styles)) == len(styles) == 8, f"lines alike but for colour: {styles}"
    runs = [SimpleNamespace(model=m, params=5.4e6 + i, flops_per_image=1.8e8 + i, top1=0.8) for i, m in
            enumerate(("vit", "deit", "tnt"))]
    fig = viz.plot_model_comparison(runs)
    markers = [tuple(c.get_paths()[0].vertices.round(3).flatten()) for c in fig.axes[0].collections]
    assert len(set(markers)) == 3, "each run's point needs its own marker"
    matplotlib.pyplot.close("all")


def test_every_picture_describes_what_it_shows(titn_maps):
    for name, fig in _every_picture(titn_maps):
        text = viz.describe(fig)
        assert len(text) > 20 and "<Figure" not in text and ".png" not in text, f"{name}: {text!r}"
        matplotlib.pyplot.close(fig)
    rows = [{"epoch": 1, "train_loss": 2.0, "val_loss": 1.8, "train_top1": 0.2, "val_top1": 0.25}]
    text = viz.describe(viz.plot_learning_curves({"ViT": rows, "DeiT": rows, "TNT": rows, "TITN": rows},
                                                 metrics=("top1",)))
    assert text.startswith("Learning curves: top-1 accuracy per epoch for ViT, DeiT, TNT, TITN"), text
    # A figure drawn by hand is described from its own titles and labels.
    fig, ax = matplotlib.pyplot.subplots()
    ax.plot([1, 2], [3, 4], label="first")
    ax.set(title="by hand", xlabel="step", ylabel="loss")
    ax.legend()
    assert viz.describe(fig) == "Figure: 'by hand': loss against step; lines: first"
    matplotlib.pyplot.close("all")


def test_in_ipython_a_figures_text_is_its_description():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        viz._register_description()
        fig = viz.show_patch_grid(torch.rand(1, 32, 32), 8)
        data, _ = shell.display_formatter.format(fig)
        assert data["text/plain"] == viz.describe(fig) and "16 patches of 8x8" in data["text/plain"]
    finally:
        InteractiveShell.clear_instance()
        matplotlib.pyplot.close("all")


def test_an_explorer_offers_its_picture_and_its_description():
    explorer = widgets.patch_explorer(torch.rand(1, 32, 32))
    data, metadata = explorer._repr_mimebundle_()
    assert data["image/png"] and "patches of 8x8" in metadata["image/png"]["alt"]
