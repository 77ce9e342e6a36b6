import urllib.error

import pytest
import torch
from torch import nn
from torchvision import models as tv

from titn_lite.models import teachers
from titn_lite.models.teachers import create_teacher, list_teachers, weights_cache_path


@pytest.mark.parametrize("name", list_teachers())
def test_every_teacher_classifies_grey_32x32_images(name):
    torch.manual_seed(0)
    model = create_teacher(name, num_classes=10, in_chans=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_table_2_zoo_is_there():
    assert list_teachers() == ["vgg16_bn", "vgg16", "vgg19", "resnet50", "wide_resnet50_2",
                               "densenet121", "mobilenet_v3", "squeezenet", "small_cnn"]


def test_unknown_teacher_lists_the_valid_ones():
    with pytest.raises(ValueError,
                       match=r"unknown teacher 'vgg17'; valid teachers: vgg16_bn, vgg16, vgg19, .*small_cnn"):
        create_teacher("vgg17", num_classes=10)


def test_offline_pretrained_fails_at_once_saying_where_the_file_goes(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    expected_path = tmp_path / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    with pytest.raises(RuntimeError, match="could not download the ImageNet weights of squeezenet") as info:
        create_teacher("squeezenet", num_classes=10, pretrained=True)
    assert str(expected_path) in str(info.value) and "pretrained=False" in str(info.value)


def test_pretrained_uses_cached_weights_with_new_head_and_grey_input(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    imagenet = tv.squeezenet1_1(weights=None)
    cache = weights_cache_path(tv.SqueezeNet1_1_Weights.DEFAULT)
    cache.parent.mkdir(parents=True)
    torch.save(imagenet.state_dict(), cache)

    model = create_teacher("squeezenet", num_classes=10, in_chans=1, pretrained=True)
    rgb_filters = imagenet.features[0].weight
    torch.testing.assert_close(model.features[0].weight, rgb_filters.mean(dim=1, keepdim=True))
    torch.testing.assert_close(model.features[3].squeeze.weight, imagenet.features[3].squeeze.weight)
    assert model.classifier[1].out_channels == 10


def test_small_cnn_has_no_pretrained_weights():
    with pytest.raises(ValueError, match="small_cnn has no pretrained weights"):
        create_teacher("small_cnn", num_classes=10, pretrained=True)


def test_small_cnn_is_small_and_any_size():
    model = teachers.SmallCNN(num_classes=10, in_chans=1).eval()
    assert sum(p.numel() for p in model.parameters()) < 500_000
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_label_disagreement_is_the_share_of_images_the_teacher_labels_otherwise():
    from titn_lite.models.teachers import label_disagreement

    class Says(nn.Module):  # labels every image with the class written in its first pixel
        def forward(self, images):
            return nn.functional.one_hot(images[:, 0, 0, 0].long(), 10).float()

    images = torch.zeros(1200, 1, 4, 4)
    images[:, 0, 0, 0] = torch.arange(1200) % 10
    truth = images[:, 0, 0, 0].long()
    truth[:300] = (truth[:300] + 1) % 10  # the teacher is wrong on the first quarter
    assert label_disagreement(Says(), images, truth) == pytest.approx(0.25)
    assert label_disagreement(Says(), images, images[:, 0, 0, 0].long(), batch_size=7) == 0.0
    with pytest.raises(ValueError, match="as many labels as images"):
        label_disagreement(Says(), images, truth[:10])
