"""Loaders on the embedded data and on tiny files written in the real on-disk formats."""

import gzip
import pickle
import struct
from collections import Counter

import numpy as np
import pytest
import torch
from torchvision.datasets import cifar

from titn_lite.data import datasets as data
from titn_lite.data.datasets import DatasetNotFound, dataset_info, eval_transform, load_dataset, train_transform


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("TITN_LITE_DATA", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def offline(monkeypatch):
    """torchvision's downloads fail at once, as they do without a network."""
    import urllib.error

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr("torchvision.datasets.utils.download_url", refuse)
    monkeypatch.setattr("torchvision.datasets.utils.download_and_extract_archive", refuse)
    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", refuse)
    monkeypatch.setattr("torchvision.datasets.cifar.download_and_extract_archive", refuse)


def write_idx(path, array, compress=False):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)


def write_mnist_files(folder, n_train=6, n_test=4, compress=False):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        write_idx(folder / f"{split}-images-idx3-ubyte", images, compress)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels, compress)
        arrays[split] = (images, labels)
    return arrays


def test_embedded_fashion_mnist_mini_is_balanced_real_data():
    info = dataset_info("fashion-mnist-mini")
    train = load_dataset("fashion-mnist-mini", train=True, transform=eval_transform(info))
    test = load_dataset("fashion-mnist-mini", train=False)
    assert (len(train), len(test)) == (10_000, 2_000)
    assert set(Counter(train.targets.tolist()).values()) == {1000}
    assert set(Counter(test.targets.tolist()).values()) == {200}
    image, label = train[0]
    assert image.shape == (1, 32, 32) and image.dtype == torch.float32 and 0 <= label < 10
    assert train.classes[0] == "T-shirt/top"


def test_embedded_assets_fit_in_five_megabytes():
    assert sum(p.stat().st_size for p in (data.ASSETS_DIR / "fashion-mnist-mini").iterdir()) <= 5_000_000


def test_tampered_asset_is_refused(tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "assets"
    shutil.copytree(data.ASSETS_DIR, copy)
    labels = copy / "fashion-mnist-mini" / "t10k-labels-idx1-ubyte.xz"
    labels.write_bytes(labels.read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(data, "ASSETS_DIR", copy)
    with pytest.raises(DatasetNotFound, match="does not match its SHA256"):
        load_dataset("fashion-mnist-mini", train=False)


@pytest.mark.parametrize("compress", [False, True])
def test_flat_idx_files_load_gzipped_or_not(tmp_path, compress):
    arrays = write_mnist_files(tmp_path / "flat", compress=compress)
    for name in ("mnist", "fashion-mnist"):
        test = load_dataset(name, train=False, data_dir=tmp_path / "flat")
        assert len(test) == 4
        np.testing.assert_array_equal(np.asarray(test[1][0]), arrays["t10k"][0][1])
        assert test[1][1] == 1


def test_torchvision_layout_loads(tmp_path):
    write_mnist_files(tmp_path / "MNIST" / "raw")
    train = load_dataset("mnist", train=True, data_dir=tmp_path, transform=eval_transform(dataset_info("mnist")))
    assert len(train) == 6 and train[0][0].shape == (1, 32, 32)


def write_cifar_files(root, base_folder, train_names, test_name, label_key, meta_name, meta_key, classes):
    folder = root / base_folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, name in enumerate(train_names + [test_name]):
        batch = {"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), label_key: [i % classes, 1, 2]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / meta_name).write_bytes(pickle.dumps({meta_key: [f"class{i}" for i in range(classes)]}))


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_pickles_load(tmp_path, monkeypatch, name):
    info = dataset_info(name)
    cls = info.torchvision_class
    write_cifar_files(tmp_path, cls.base_folder, [n for n, _ in cls.train_list], cls.test_list[0][0],
                      "labels" if name == "cifar10" else "fine_labels", cls.meta["filename"], cls.meta["key"],
                      info.num_classes)
    # Tiny files cannot match torchvision's md5 sums of the real ones; the format is what we test.
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: True)
    train = load_dataset(name, train=True, data_dir=tmp_path, transform=train_transform(info, "paper"))
    test = load_dataset(name, train=False, data_dir=tmp_path, transform=eval_transform(info))
    assert len(train) == 3 * len(cls.train_list) and len(test) == 3
    assert train[0][0].shape == (3, 32, 32) and test[1][1] == 1
    assert len(train.classes) == info.num_classes


def test_missing_files_say_where_to_put_them(tmp_path, offline):
    with pytest.raises(DatasetNotFound, match=r"fashion-mnist not found in .*put the four IDX files "
                                              r"\(train-images-idx3-ubyte.gz.*apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", train=True, data_dir=tmp_path)
    with pytest.raises(DatasetNotFound, match=r"cifar100 not found in .*unpack cifar-100-python.tar.gz into"):
        load_dataset("cifar100", train=True, data_dir=tmp_path)
    with pytest.raises(DatasetNotFound, match="mnist not found"):
        load_dataset("mnist", train=True, data_dir=tmp_path, download=False)


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'; valid datasets: fashion-mnist-mini, "
                                         "fashion-mnist, mnist, cifar10, cifar100"):
        load_dataset("svhn", train=True)


def test_paper_transforms_are_the_papers():
    cifar_steps = [type(t).__name__ for t in train_transform(dataset_info("cifar10"), "paper").transforms]
    assert cifar_steps == ["ToImage", "Resize", "AutoAugment", "RandomCrop", "RandomHorizontalFlip", "ToDtype",
                           "Normalize"]
    mnist_steps = [type(t).__name__ for t in train_transform(dataset_info("mnist"), "paper").transforms]
    assert mnist_steps == ["ToImage", "Resize", "RandomCrop", "RandomRotation", "RandomAffine", "ColorJitter",
                           "ToDtype", "Normalize"]
    with pytest.raises(ValueError, match="unknown augmentation 'heavy'"):
        train_transform(dataset_info("mnist"), "heavy")


@pytest.mark.skipif(not (data.Path("/usr/share/datasets/fashion-mnist") / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_loads_from_its_folder():
    test = load_dataset("fashion-mnist", train=False, data_dir="/usr/share/datasets/fashion-mnist")
    assert len(test) == 10_000


# --- whole splits as tensors, augmented a batch at a time --------------------------------

@pytest.mark.parametrize("train", [True, False])
def test_a_split_decoded_once_equals_the_per_image_eval_transform(train):
    """The batch path resizes exactly as v2.Resize does one PIL image at a time, and its
    normalisation is eval_transform's: the test inputs are the same tensors either way."""
    info = dataset_info("fashion-mnist-mini")
    split = data.load_tensors("fashion-mnist-mini", train=train)
    per_image = load_dataset("fashion-mnist-mini", train=train, transform=eval_transform(info))
    assert split.images.shape == (len(per_image), 1, 32, 32) and split.images.dtype == torch.uint8
    chosen = [0, 1, 7, len(per_image) - 1]
    expected = torch.stack([per_image[i][0] for i in chosen])
    assert torch.allclose(data.BatchNormalisation(info)(split.images[chosen]), expected, atol=1e-6)
    assert split.labels[chosen].tolist() == [per_image[i][1] for i in chosen]
    assert data.load_tensors("fashion-mnist-mini", train=train) is split  # decoded once per process


def test_cifar_tensors_keep_their_channels(tmp_path, monkeypatch):
    cls = dataset_info("cifar10").torchvision_class
    write_cifar_files(tmp_path, cls.base_folder, [n for n, _ in cls.train_list], cls.test_list[0][0], "labels",
                      cls.meta["filename"], cls.meta["key"], 10)
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: True)
    split = data.load_tensors("cifar10", train=True, data_dir=tmp_path)
    per_image = load_dataset("cifar10", train=True, data_dir=tmp_path,
                             transform=eval_transform(dataset_info("cifar10")))
    assert split.images.shape[1:] == (3, 32, 32)
    assert torch.allclose(data.BatchNormalisation(dataset_info("cifar10"))(split.images[:2]),
                          torch.stack([per_image[i][0] for i in range(2)]), atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_each_image_of_a_batch_gets_its_own_crop_of_its_own_padded_self(channels):
    torch.manual_seed(0)
    images = torch.randint(1, 256, (64, channels, 6, 7), dtype=torch.uint8)  # no zeros: padding shows as 0
    top, left = data.random_crop_offsets(64, padding=2)
    crops = data.pad_and_crop(images, 2, top, left)
    assert crops.shape == images.shape and crops.dtype == images.dtype
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for image_top, image_left, crop, source in zip(top.tolist(), left.tolist(), crops, padded, strict=True):
        assert torch.equal(source[:, image_top:image_top + 6, image_left:image_left + 7], crop)
    assert set(top.tolist()) == set(left.tolist()) == set(range(5))  # each image its own offsets, all of them used


def test_the_light_recipe_draws_on_the_cpu_from_the_generator_it_is_given():
    """One contract with the paper recipe's batch path: the crop's tops, then its lefts, then
    the flips' coins, drawn on the CPU from the generator (the global one when none is given)."""
    images = torch.randint(0, 256, (50, 3, 32, 32), dtype=torch.uint8)
    light = data.BatchAugmentation(dataset_info("cifar10"), "light")
    stream = torch.Generator().manual_seed(5)
    top, left = data.random_crop_offsets(50, 4, stream)
    flipped = data.random_flips(50, 0.5, stream)
    expected = light.normalise(data.flip_where(data.pad_and_crop(images, 4, top, left), flipped))
    assert torch.equal(light(images, torch.Generator().manual_seed(5)), expected)
    torch.manual_seed(5)
    assert torch.equal(light(images), expected)


def test_light_batch_augmentation_flips_cifar_per_image_and_never_mnist():
    torch.manual_seed(0)
    image = torch.arange(32 * 32 * 3, dtype=torch.float32).reshape(1, 3, 32, 32).remainder(251).to(torch.uint8)
    batch = image.repeat(200, 1, 1, 1)
    cifar_aug = data.BatchAugmentation(dataset_info("cifar10"), "light")
    cifar_aug.padding = 0  # the flip alone
    out = cifar_aug(batch)
    plain, mirrored = cifar_aug.normalise(image), cifar_aug.normalise(image.flip(-1))
    flipped = [torch.equal(o, mirrored[0]) for o in out]
    assert all(f or torch.equal(o, plain[0]) for f, o in zip(flipped, out, strict=True))
    assert 60 < sum(flipped) < 140  # about half, each image its own coin
    mnist = data.BatchAugmentation(dataset_info("fashion-mnist-mini"), "light")
    assert mnist.padding == 2 and not mnist.flip
    none = data.BatchAugmentation(dataset_info("fashion-mnist-mini"), "none")
    grey = batch[:4, :1]
    assert torch.equal(none(grey), none.normalise(grey))
    with pytest.raises(ValueError, match="light and none"):
        data.BatchAugmentation(dataset_info("cifar10"), "paper")
