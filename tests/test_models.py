import dataclasses

import pytest
import torch

import titn_lite
from titn_lite.models import students as models
from titn_lite.models.students import MODEL_CONFIGS, capture_attention, create_model, list_models
from titn_lite.results.paper import TABLE1_PARAMS_M

DISTILLED = ["deit", "titn", "titn_large_patch"]


def small(name, **kwargs):
    """A 2-block version of a Table 1 model, for fast behaviour tests."""
    return create_model(name, depth=2, **kwargs)


@pytest.mark.parametrize("name", list_models())
def test_parameter_counts_within_one_percent_of_table_1(name):
    model = create_model(name, num_classes=100)
    params = sum(p.numel() for p in model.parameters())
    assert abs(params / 1e6 / TABLE1_PARAMS_M[name] - 1) < 0.01, params


def test_table_1_is_the_config_table():
    columns = {name: (c.patch_dim, c.pixel_dim, c.patch_size, c.pixel_size, c.depth, c.distilled)
               for name, c in MODEL_CONFIGS.items()}
    assert columns == {
        "vit": (192, None, 8, None, 12, False),
        "deit": (192, None, 8, None, 12, True),
        "tnt": (192, 12, 8, 2, 12, False),
        "titn": (192, 12, 8, 2, 12, True),
        "titn_large_patch": (192, 12, 16, 4, 12, True),
    }


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("in_chans,num_classes", [(3, 100), (1, 10)])
def test_output_shapes_in_train_and_eval(name, in_chans, num_classes):
    model = create_model(name, num_classes=num_classes, in_chans=in_chans)
    images = torch.randn(2, in_chans, 32, 32)
    train_out = model.train()(images)
    eval_out = model.eval()(images)
    if name in DISTILLED:
        assert isinstance(train_out, tuple) and [t.shape for t in train_out] == [(2, num_classes)] * 2
    else:
        assert train_out.shape == (2, num_classes)
    assert eval_out.shape == (2, num_classes)


@pytest.mark.parametrize("name", DISTILLED)
def test_distilled_eval_output_is_mean_of_the_two_heads(name):
    torch.manual_seed(0)
    model = small(name, num_classes=10)
    images = torch.randn(4, 3, 32, 32)
    class_logits, distill_logits = model.train()(images)
    assert not torch.allclose(class_logits, distill_logits)
    torch.testing.assert_close(model.eval()(images), (class_logits + distill_logits) / 2)


@pytest.mark.parametrize("name", list_models())
def test_same_seed_same_weights_and_outputs(name):
    images = torch.randn(2, 3, 32, 32)
    built = []
    for _ in range(2):
        torch.manual_seed(123)
        built.append(small(name, num_classes=10).eval())
    first, second = (m.state_dict() for m in built)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert torch.equal(built[0](images), built[1](images))
    torch.manual_seed(124)
    other = small(name, num_classes=10).state_dict()
    assert not all(torch.equal(first[k], other[k]) for k in first)


@pytest.mark.parametrize("name", list_models())
def test_capture_attention_keeps_outputs_and_returns_every_block(name):
    torch.manual_seed(0)
    model = small(name, num_classes=10).eval()
    images = torch.randn(2, 3, 32, 32)
    plain = model(images)
    captured, maps = capture_attention(model, images)
    torch.testing.assert_close(captured, plain, atol=1e-5, rtol=0)
    config = model.config
    tokens = model.num_patches + 1 + config.distilled
    assert [m.shape for m in maps.outer] == [(2, config.outer_heads, tokens, tokens)] * 2
    if config.family == "tnt":
        pixels = (config.patch_size // config.pixel_size) ** 2
        assert [m.shape for m in maps.inner] == [(2, model.num_patches, config.inner_heads, pixels, pixels)] * 2
    else:
        assert maps.inner == []
    for weights in maps.outer + maps.inner:
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
    # afterwards the model is back on the fused path
    assert not any(m.keep_weights for m in model.modules() if isinstance(m, titn_lite.MultiHeadAttention))


def test_inner_maps_belong_to_their_image_and_patch():
    torch.manual_seed(0)
    model = small("tnt", num_classes=10).eval()
    images = torch.randn(2, 3, 32, 32)
    _, both = capture_attention(model, images)
    _, second_only = capture_attention(model, images[1:])
    torch.testing.assert_close(both.inner[0][1], second_only.inner[0][0], atol=1e-6, rtol=0)


# --- bad input: clear ValueErrors, raised before any model is built or tensor touched ---

@pytest.fixture
def no_building(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was built before the input was validated")
    monkeypatch.setattr(models, "VisionTransformer", refuse)
    monkeypatch.setattr(models, "TransformerInTransformer", refuse)


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="vitt"), r"unknown model 'vitt'; valid models: vit, deit, tnt, titn, titn_large_patch"),
    (dict(name="vit", img_size=30), r"image size 30 is not divisible by patch size 8; "
                                    r"valid patch sizes for 30x30 images: \[1, 2, 3, 5, 6, 10, 15, 30\]"),
    (dict(name="titn", pixel_size=3), r"patch size 8 is not divisible by pixel size 3; "
                                      r"valid pixel sizes for patch size 8: \[1, 2, 4, 8\]"),
    (dict(name="deit", outer_heads=7), r"patch dim 192 is not divisible by outer_heads=7; valid outer_heads"),
    (dict(name="tnt", inner_heads=5), r"pixel dim 12 is not divisible by inner_heads=5; "
                                      r"valid inner_heads for pixel dim 12: \[1, 2, 3, 4, 6, 12\]"),
    (dict(name="tnt", heads=4), r"unknown override\(s\) \['heads'\].*valid overrides: patch_size"),
    (dict(name="vit", pixel_size=2), r"only apply to the TNT family"),
    (dict(name="vit", num_classes=0), r"num_classes must be a positive whole number, got 0"),
])
def test_bad_configs_are_rejected_before_building(no_building, kwargs, message):
    kwargs.setdefault("num_classes", 10)
    with pytest.raises(ValueError, match=message):
        create_model(**kwargs)


@pytest.mark.parametrize("shape,message", [
    ((2, 1, 32, 32), r"images have 1 channel\(s\) but the model was built with in_chans=3; "
                     r"expected \(batch, 3, 32, 32\)"),
    ((2, 3, 28, 28), r"images are 28x28 but the model was built with img_size=32; expected \(batch, 3, 32, 32\)"),
    ((3, 32, 32), r"expected a batch of images shaped \(batch, 3, 32, 32\), got \(3, 32, 32\)"),
])
@pytest.mark.parametrize("name", ["vit", "titn"])
def test_wrong_images_are_rejected_before_any_tensor_work(monkeypatch, name, shape, message):
    model = small(name, num_classes=10)
    embedding = "patch_embedding" if name == "vit" else "pixel_embedding"

    def refuse(*args):
        raise AssertionError("tensor work started before the input was validated")
    monkeypatch.setattr(getattr(model, embedding), "forward", refuse)
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*shape))


def test_overrides_build_a_different_valid_model():
    model = create_model("titn", num_classes=10, img_size=28, in_chans=1, patch_size=7, pixel_size=7, depth=1)
    assert model.num_patches == 16 and dataclasses.asdict(model.config)["depth"] == 1
    assert model.eval()(torch.randn(2, 1, 28, 28)).shape == (2, 10)
