"""Datasets and the paper's transforms (§3.3, §3.4, §4.1).

One registry, ``DATASETS``, through torchvision's own dataset classes:

- ``fashion-mnist-mini`` (the default everywhere): 10k train / 2k test real
  Fashion-MNIST images embedded in the package (``assets/`` in the repository), so
  everything runs offline.
- ``mnist``, ``fashion-mnist``: from ``--data-dir`` in torchvision's layout
  (``DIR/MNIST/raw/...``) or as the four IDX files side by side, as shipped (``.gz``)
  or unpacked, e.g. Debian's ``dataset-fashion-mnist`` in
  ``/usr/share/datasets/fashion-mnist``; otherwise torchvision downloads them.
- ``cifar10``, ``cifar100``: torchvision's layout (``DIR/cifar-10-batches-py``), or
  downloaded.

Grey 28x28 images become 32x32, as in the paper's MNIST recipe.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import lzma
import os
import shutil
import tempfile
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from titn_lite.system.downloads import network_timeout
from titn_lite.system.packaged import assets_folder
from titn_lite.system.usage import UsageError

if TYPE_CHECKING:  # torchvision and its model zoo take seconds to import: only where a dataset or transform is built
    from torchvision.transforms import v2

ASSETS_DIR = assets_folder()
IMG_SIZE = 32

Augmentation = Literal["paper", "light", "none"]


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a transform need to know about a dataset."""

    name: str
    torchvision_name: str  # the class in torchvision.datasets
    num_classes: int
    in_chans: int
    recipe: Literal["mnist", "cifar"]  # which of the paper's augmentation recipes
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def torchvision_class(self) -> type[Dataset]:
        import torchvision.datasets
        return getattr(torchvision.datasets, self.torchvision_name)

    @property
    def files(self) -> list[str]:
        """The files torchvision reads, as they are named on disk (IDX unpacked)."""
        cls = self.torchvision_class
        if self.recipe == "mnist":
            return [f"{split}-{kind}-ubyte" for split in ("train", "t10k") for kind in ("images-idx3", "labels-idx1")]
        return [cls.base_folder + "/" + name for name, _ in cls.train_list + cls.test_list] + [
            cls.base_folder + "/" + cls.meta["filename"]
        ]


_MNIST_STATS = dict(num_classes=10, in_chans=1, recipe="mnist")
DATASETS: dict[str, DatasetInfo] = {
    "fashion-mnist-mini": DatasetInfo("fashion-mnist-mini", "FashionMNIST", **_MNIST_STATS, mean=(0.2860,),
                                      std=(0.3530,)),
    "fashion-mnist": DatasetInfo("fashion-mnist", "FashionMNIST", **_MNIST_STATS, mean=(0.2860,), std=(0.3530,)),
    "mnist": DatasetInfo("mnist", "MNIST", **_MNIST_STATS, mean=(0.1307,), std=(0.3081,)),
    "cifar10": DatasetInfo("cifar10", "CIFAR10", 10, 3, "cifar", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": DatasetInfo("cifar100", "CIFAR100", 100, 3, "cifar", (0.5071, 0.4865, 0.4409),
                            (0.2673, 0.2564, 0.2762)),
}
DEFAULT_DATASET = "fashion-mnist-mini"


class DatasetNotFound(UsageError):
    """The dataset's files are not where they were looked for; says where to put them."""


def list_datasets() -> list[str]:
    return list(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; valid datasets: {', '.join(list_datasets())}")
    return DATASETS[name]


def default_data_dir() -> Path:
    """``$TITN_LITE_DATA``, else ``~/.cache/titn-lite/data``."""
    return Path(os.environ.get("TITN_LITE_DATA", Path.home() / ".cache" / "titn-lite" / "data"))


def load_dataset(
    name: str, *, train: bool, data_dir: str | Path | None = None,
    transform: v2.Transform | None = None, download: bool = True,
) -> Dataset:
    """The torchvision dataset for ``name``'s train or test split.

    Items are ``(transform(PIL image), label)``. Raises ``DatasetNotFound`` (a
    ``ValueError``) saying which files to put where when they are missing and cannot be
    downloaded.
    """
    info = dataset_info(name)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if name == "fashion-mnist-mini":
        root = _stage_idx_files(ASSETS_DIR / name, info, verify=True)
    elif info.recipe == "mnist":
        root = _find_idx_root(info, data_dir, download)
    else:
        root = _find_cifar_root(info, data_dir, download)
    try:
        return info.torchvision_class(str(root), train=train, transform=transform, download=False)
    except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
        raise DatasetNotFound(f"{name} in {root} is incomplete or corrupted ({error}); expected "
                              f"{', '.join(info.files)}") from None


# --- finding files ---------------------------------------------------------------------

def _find_idx_root(info: DatasetInfo, data_dir: Path, download: bool) -> Path:
    folder = info.torchvision_class.__name__
    if all((data_dir / folder / "raw" / f).is_file() for f in info.files):
        return data_dir
    if all(_compressed_or_plain(data_dir / f) for f in info.files):
        return _stage_idx_files(data_dir, info)
    hint = (f"put the four IDX files ({', '.join(f + '.gz' for f in info.files)}; .gz or unpacked) in "
            f"{data_dir} or {data_dir / folder / 'raw'}, or point --data-dir at them")
    if info.name == "fashion-mnist":
        hint += " (apt-get install dataset-fashion-mnist puts them in /usr/share/datasets/fashion-mnist)"
    _download(info, data_dir, download, hint)
    return data_dir


def _find_cifar_root(info: DatasetInfo, data_dir: Path, download: bool) -> Path:
    if all((data_dir / f).is_file() for f in info.files):
        return data_dir
    hint = (f"unpack {info.torchvision_class.filename} into {data_dir} (it makes "
            f"{data_dir / info.torchvision_class.base_folder}), or point --data-dir at the folder holding it")
    _download(info, data_dir, download, hint)
    return data_dir


def _download(info: DatasetInfo, data_dir: Path, download: bool, hint: str) -> None:
    if not download:
        raise DatasetNotFound(f"{info.name} not found in {data_dir}: {hint}")
    try:
        with network_timeout():
            for train in (True, False):
                info.torchvision_class(str(data_dir), train=train, download=True)
    except (urllib.error.URLError, OSError, RuntimeError) as error:
        reason = " ".join(str(error).split())  # torchvision's message spans several lines
        raise DatasetNotFound(f"{info.name} not found in {data_dir} and the download failed ({reason}): "
                              f"{hint}") from None


def _compressed_or_plain(path: Path) -> Path | None:
    for candidate in (path, path.with_name(path.name + ".gz"), path.with_name(path.name + ".xz")):
        if candidate.is_file():
            return candidate
    return None


def _stage_idx_files(source: Path, info: DatasetInfo, verify: bool = False) -> Path:
    """Unpack IDX files into torchvision's layout in the cache, once; return its root."""
    folder = info.torchvision_class.__name__
    key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    root = default_data_dir() / "staged" / f"{info.name}-{key}"
    if all((root / folder / "raw" / f).is_file() for f in info.files):
        return root
    expected = json.loads((source / "MANIFEST.json").read_text())["files"] if verify else {}
    root.parent.mkdir(parents=True, exist_ok=True)
    # Unpack into a temporary folder, then rename: a crash never leaves half a dataset.
    with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
        raw = Path(tmp) / folder / "raw"
        raw.mkdir(parents=True)
        for name in info.files:
            packed = _compressed_or_plain(source / name)
            if packed is None:
                raise DatasetNotFound(f"{info.name}: {source / name} (or .gz/.xz) is missing")
            data = packed.read_bytes()
            if packed.name in expected and hashlib.sha256(data).hexdigest() != expected[packed.name]:
                raise DatasetNotFound(f"{packed} does not match its SHA256 in MANIFEST.json; restore it "
                                      f"with git checkout, or rebuild with assets/build_fashion_mnist_mini.py")
            if packed.suffix == ".gz":
                data = gzip.decompress(data)
            elif packed.suffix == ".xz":
                data = lzma.decompress(data)
            (raw / name).write_bytes(data)
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
        os.mkdir(tmp)  # TemporaryDirectory's cleanup expects its folder back
    return root


# --- transforms ------------------------------------------------------------------------

def train_transform(info: DatasetInfo, augmentation: Augmentation = "paper") -> v2.Compose:
    """The paper's training transforms for ``info`` (``"light"``: crop and flip only).

    CIFAR: AutoAugment (CIFAR10 policy), RandomCrop(32, padding=4), horizontal flip.
    MNIST-like: resize to 32, random crop, rotation, affine, colour jitter.
    """
    from torchvision.transforms import v2
    if augmentation not in get_args(Augmentation):
        raise UsageError(f"unknown augmentation {augmentation!r}; valid: {', '.join(get_args(Augmentation))}")
    steps: list[v2.Transform] = [v2.ToImage(), v2.Resize(IMG_SIZE, antialias=True)]
    if info.recipe == "cifar":
        if augmentation == "paper":
            steps.append(v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10))
        if augmentation != "none":
            steps += [v2.RandomCrop(IMG_SIZE, padding=4), v2.RandomHorizontalFlip()]
    else:
        if augmentation != "none":
            steps.append(v2.RandomCrop(IMG_SIZE, padding=2))
        if augmentation == "paper":
            steps += [v2.RandomRotation(10), v2.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(0.9, 1.1)),
                      v2.ColorJitter(brightness=0.2, contrast=0.2)]
    return v2.Compose(steps + _to_normalised_tensor(info))


def eval_transform(info: DatasetInfo) -> v2.Compose:
    """Resize to 32x32 and normalise; no randomness."""
    from torchvision.transforms import v2
    return v2.Compose([v2.ToImage(), v2.Resize(IMG_SIZE, antialias=True), *_to_normalised_tensor(info)])


def _to_normalised_tensor(info: DatasetInfo) -> list[v2.Transform]:
    from torchvision.transforms import v2
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(info.mean, info.std)]


# --- whole splits as tensors, augmented a batch at a time ------------------------------
# The classroom trains on a few thousand small images for a few epochs: decoding and
# transforming them one PIL image at a time, every epoch, costs more than the model's own
# step does at that size. Decoded once into one tensor, a split is cut into batches by
# indexing, and the random part of the ``light`` and ``none`` recipes (a crop, a flip) is
# drawn per image but applied to the whole batch at once. The ``paper`` recipe (AutoAugment,
# rotation, affine, colour jitter) does the same in ``titn_lite.data.augment``; ``train_transform``
# on one PIL image at a time, in DataLoader workers, stays the reference (``data_path="loader"``).

@dataclass(frozen=True)
class TensorSplit:
    """A split decoded once. images: (N, C, 32, 32) uint8, resized exactly as
    ``eval_transform`` resizes; labels: (N,) int64."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, count: int | None) -> TensorSplit:
        """The first ``count`` images (all of them for None), as ``Subset(range(count))``."""
        return self if count is None else TensorSplit(self.images[:count], self.labels[:count])

    def part(self, positions: range) -> TensorSplit:
        """The images at ``positions`` (a range: a view, not a copy)."""
        cut = slice(positions.start, positions.stop)
        return TensorSplit(self.images[cut], self.labels[cut])


def load_tensors(name: str, *, train: bool, data_dir: str | Path | None = None) -> TensorSplit:
    """``name``'s train or test split as tensors; decoded once per process and kept (the
    notebooks train many runs on the same images)."""
    return _load_tensors(name, train, str(Path(data_dir if data_dir is not None else default_data_dir()).resolve()))


@functools.lru_cache(maxsize=4)
def _load_tensors(name: str, train: bool, data_dir: str) -> TensorSplit:
    from torchvision.transforms import v2
    dataset = load_dataset(name, train=train, data_dir=data_dir)
    images = torch.as_tensor(dataset.data)  # MNIST-like: (N, 28, 28); CIFAR: (N, 32, 32, 3), both uint8
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    # The same antialiased resize as v2.Resize(IMG_SIZE) on one image, on all of them at once.
    images = v2.functional.resize(images.contiguous(), [IMG_SIZE, IMG_SIZE], antialias=True)
    return TensorSplit(images, torch.as_tensor(dataset.targets, dtype=torch.int64))


class BatchAugmentation:
    """The ``light`` or ``none`` training transforms of ``train_transform`` on a whole batch:
    (B, C, 32, 32) uint8 -> (B, C, 32, 32) float32, normalised. With ``light``, each image
    gets its own random crop after zero padding (2 pixels for MNIST-like images, 4 for CIFAR)
    and, for CIFAR, its own coin for a horizontal flip, as ``v2.RandomCrop`` and
    ``v2.RandomHorizontalFlip`` give each image of a DataLoader. The crop and the flip are the
    ones the paper recipe's batch path uses (``random_crop_offsets``, ``pad_and_crop``,
    ``random_flips``, ``flip_where``), with the same random-number contract."""

    def __init__(self, info: DatasetInfo, augmentation: Augmentation) -> None:
        if augmentation not in ("light", "none"):
            raise UsageError(f"BatchAugmentation does the light and none recipes, not {augmentation!r}")
        light = augmentation == "light"
        self.padding = (2 if info.recipe == "mnist" else 4) if light else 0
        self.flip = light and info.recipe == "cifar"
        self.normalise = BatchNormalisation(info)

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``images`` (B, C, H, W) uint8 on any device -> (B, C, H, W) float32, normalised;
        the random parameters drawn on the CPU from ``generator`` (None: the global one)."""
        if self.padding:
            top, left = random_crop_offsets(len(images), self.padding, generator)
            images = pad_and_crop(images, self.padding, top, left)
        if self.flip:
            images = flip_where(images, random_flips(len(images), 0.5, generator))
        return self.normalise(images)


class BatchNormalisation:
    """uint8 images (B, C, H, W) -> float32 in [0, 1], normalised with the dataset's mean and
    std: ``eval_transform``'s last two steps, on a batch."""

    def __init__(self, info: DatasetInfo) -> None:
        self.mean = torch.tensor(info.mean).view(1, -1, 1, 1)
        self.std = torch.tensor(info.std).view(1, -1, 1, 1)

    def __call__(self, images: Tensor) -> Tensor:
        # In place on one fresh float copy: the same operations, in the same order, as three
        # out-of-place ones, without allocating (and first touching) a new batch-sized buffer
        # for each, which cost more than the arithmetic did (10.7 ms against 0.75 ms for
        # 1024 RGB images on 2 CPU cores).
        normalised = images.to(torch.float32, copy=True).div_(255)
        return normalised.sub_(self.mean.to(images.device)).div_(self.std.to(images.device))


# One crop and one flip for both batch recipes (``BatchAugmentation`` here, the paper's in
# ``titn_lite.data.augment``), with one random-number contract: every parameter is drawn on
# the CPU from a ``torch.Generator`` (None: the global one, which ``torch.manual_seed`` and the
# engine's ``seed_epoch`` seed), one draw per image, and only then applied on the images'
# device. So a seed gives the same images on any device, and a resumed epoch replays them.

def random_crop_offsets(batch_size: int, padding: int,
                        generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The top and left offsets ((B,) int64 each, on the CPU, uniform in 0 to 2 * padding) of
    ``batch_size`` crops of images padded by ``padding``: what ``v2.RandomCrop`` draws per image.
    Tops are drawn before lefts."""
    choices = 2 * padding + 1
    top = torch.randint(0, choices, (batch_size,), generator=generator)
    left = torch.randint(0, choices, (batch_size,), generator=generator)
    return top, left


def pad_and_crop(images: Tensor, padding: int, top: Tensor, left: Tensor) -> Tensor:
    """Each image of ``images`` (B, C, H, W) padded with zeros by ``padding`` on every side, then
    cropped back to H x W with its top-left corner at (``top``, ``left``) ((B,) each) of the
    padded image, as ``v2.RandomCrop(H, padding=padding)`` crops at the offsets it drew.
    Returns a new (B, C, H, W) tensor of the same dtype."""
    b, c, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)
    choices = 2 * padding + 1
    # Every crop of every image, as a view (B, top, left, C, H, W) of the padded batch: picking
    # one window per image then copies only the pixels kept, with no index per pixel.
    image_stride, channel_stride, row_stride, column_stride = padded.stride()
    windows = padded.as_strided((b, choices, choices, c, h, w),
                                (image_stride, row_stride, column_stride, channel_stride, row_stride, column_stride))
    device = images.device
    return windows[torch.arange(b, device=device), top.to(device), left.to(device)]


def random_flips(batch_size: int, probability: float, generator: torch.Generator | None = None) -> Tensor:
    """(B,) bool on the CPU: which of ``batch_size`` images to mirror, each with ``probability``
    (``v2.RandomHorizontalFlip(probability)``'s coin, one per image)."""
    return torch.rand(batch_size, generator=generator) < probability


def flip_where(images: Tensor, flipped: Tensor) -> Tensor:
    """``images`` (B, C, H, W) with those where ``flipped`` ((B,) bool) is true mirrored left
    to right; a new tensor. Only the flipped images are read twice, not the whole batch."""
    chosen = flipped.nonzero().squeeze(1).to(images.device)
    return images.index_copy(0, chosen, images.index_select(0, chosen).flip(-1))
