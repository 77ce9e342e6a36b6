"""Loaders on the embedded data and on tiny files written in the real on-disk formats."""

import gzip
import pickle
import struct
from collections import Counter

import numpy as np
import pytest
import torch
from torchvision.datasets import cifar

from titn_lite import data
from titn_lite.data import DatasetNotFound, dataset_info, eval_transform, load_dataset, train_transform


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
    with pytest.raises(DatasetNotFound, match=r"fashion-mnist not found in .*put the four IDX files \(train-images-idx3-ubyte.gz.*apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", train=True, data_dir=tmp_path)
    with pytest.raises(DatasetNotFound, match=r"cifar100 not found in .*unpack cifar-100-python.tar.gz into"):
        load_dataset("cifar100", train=True, data_dir=tmp_path)
    with pytest.raises(DatasetNotFound, match="mnist not found"):
        load_dataset("mnist", train=True, data_dir=tmp_path, download=False)


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'; valid datasets: fashion-mnist-mini, fashion-mnist, mnist, cifar10, cifar100"):
        load_dataset("svhn", train=True)


def test_paper_transforms_are_the_papers():
    cifar_steps = [type(t).__name__ for t in train_transform(dataset_info("cifar10"), "paper").transforms]
    assert cifar_steps == ["ToImage", "Resize", "AutoAugment", "RandomCrop", "RandomHorizontalFlip", "ToDtype", "Normalize"]
    mnist_steps = [type(t).__name__ for t in train_transform(dataset_info("mnist"), "paper").transforms]
    assert mnist_steps == ["ToImage", "Resize", "RandomCrop", "RandomRotation", "RandomAffine", "ColorJitter", "ToDtype", "Normalize"]
    with pytest.raises(ValueError, match="unknown augmentation 'heavy'"):
        train_transform(dataset_info("mnist"), "heavy")


@pytest.mark.skipif(not (data.Path("/usr/share/datasets/fashion-mnist") / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_loads_from_its_folder():
    test = load_dataset("fashion-mnist", train=False, data_dir="/usr/share/datasets/fashion-mnist")
    assert len(test) == 10_000
