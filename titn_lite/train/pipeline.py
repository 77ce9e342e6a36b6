"""The data pipeline: a run's dataset to the batches a training step takes, epoch-seeded.

Two paths, one contract (images (B, C, 32, 32) float32, normalised; labels (B,) int64,
``UNLABELLED`` where a few-labels run hides them):

- the batch path (``data_path="batch"``, the default): the split decoded once into uint8
  tensors, cut and augmented a whole batch at a time on the run's device, each image with
  its own draw (``augment.PaperAugmentation`` for the paper's recipe,
  ``datasets.BatchAugmentation`` for the light and none recipes);
- the loader path (``data_path="loader"``): torchvision's transforms
  (``datasets.train_transform``) on one PIL image at a time, in ``DataLoader`` workers: the
  reference the batch path is tested against.

Each epoch's order, augmentation and mixing draw from streams seeded by (seed, epoch)
(``seed_epoch``), so a resumed run replays its epochs exactly. The pipeline reads a run's
settings (``ResolvedConfig``) and nothing else of the run layer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler

from titn_lite.data.augment import PaperAugmentation
from titn_lite.data.datasets import (
    BatchAugmentation,
    BatchNormalisation,
    TensorSplit,
    dataset_info,
    eval_transform,
    load_dataset,
    load_tensors,
    train_transform,
)
from titn_lite.system.cpu import capped_workers
from titn_lite.system.usage import UsageError
from titn_lite.train.config import ResolvedConfig
from titn_lite.train.losses import UNLABELLED


class Batches:
    """One epoch's training batches (a DataLoader or ``TensorBatches``), in the order
    ``sampler`` (a ``DistributedSampler``, reseeded every epoch) gives, the last partial batch
    dropped. ``image_count``: how many training images there are."""

    def __init__(self, batches: Iterable[tuple[Tensor, Tensor]], sampler: DistributedSampler, image_count: int) -> None:
        self.batches, self.sampler, self.image_count = batches, sampler, image_count

    def __len__(self) -> int:
        return len(self.batches)  # a DataLoader (drop_last) or TensorBatches: whole batches only

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return iter(self.batches)


class TensorBatches:
    """Batches cut from a decoded split and augmented whole (``augment``: uint8 (B, C, 32, 32)
    -> float32 normalised, e.g. ``augment.PaperAugmentation``): images on ``device``; labels
    (B,) int64, on the CPU (the training loop moves them). The split's images move to the
    device once, as uint8 (CIFAR's 50,000 are 154 MB), so a GPU cuts its own batches."""

    def __init__(self, split: TensorSplit, sampler: DistributedSampler, batch_size: int,
                 augment: Callable[[Tensor], Tensor], device: torch.device) -> None:
        self.images, self.labels = split.images.to(device), split.labels
        self.sampler, self.batch_size, self.augment, self.device = sampler, batch_size, augment, device

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size  # the last partial batch is dropped

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = torch.tensor(list(self.sampler))
        order_on_device = order.to(self.device)  # once an epoch, not a copy (and a wait) per batch
        for batch in range(len(self)):
            cut = slice(batch * self.batch_size, (batch + 1) * self.batch_size)
            yield self.augment(self.images[order_on_device[cut]]), self.labels[order[cut]]


class HiddenLabels(Dataset):
    """``dataset`` with the labels of every image from index ``labelled`` on replaced by
    ``UNLABELLED``: images the student sees, labelled only by its teacher."""

    def __init__(self, dataset: Dataset, labelled: int) -> None:
        self.dataset, self.labelled = dataset, labelled

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = self.dataset[index]
        return image, label if index < self.labelled else UNLABELLED


@dataclass(frozen=True)
class TrainingSplit:
    """How a run divides its dataset's training split (positions in it): the images it trains
    on with their labels, the ones it trains on without them (labelled only by a teacher), and
    the validation images it never trains on: the split's last ``val_images``, so a run on the
    first N images keeps the same validation images whatever its N. The dataset's makers
    shuffled the training files, so the last images are a random sample of the classes."""

    labelled: range
    unlabelled: range
    validation: range

    @property
    def trained_on(self) -> range:
        """Every image the run trains on, labelled first."""
        return range(self.labelled.start, self.unlabelled.stop)


def training_split(cfg: ResolvedConfig, available: int) -> TrainingSplit:
    """``cfg``'s division of a training split of ``available`` images (``TrainingSplit``);
    ``UsageError`` saying what to lower when its parts do not fit."""
    trainable = available - cfg.val_images
    if trainable < 1:
        raise UsageError(f"{cfg.dataset} has {available} training images: a validation split of {cfg.val_images} "
                         f"leaves none to train on; lower --val-images")
    labelled = min(cfg.train_subset or trainable, trainable)
    if labelled + cfg.unlabelled > trainable:
        raise UsageError(f"{cfg.dataset} has {available} training images, {cfg.val_images} of them held out for "
                         f"validation: {labelled} labelled and {cfg.unlabelled} unlabelled ones do not fit in the "
                         f"other {trainable}; lower --unlabelled to at most {trainable - labelled} (or --train-subset, "
                         f"or --val-images)")
    return TrainingSplit(range(labelled), range(labelled, labelled + cfg.unlabelled), range(trainable, available))


# Images per forward pass when evaluating: larger batches run faster, up to memory.
EVAL_BATCH = 500


def epoch_batches(cfg: ResolvedConfig, rank: int, world: int, local_batch: int, loader_rng: torch.Generator,
                  device: torch.device) -> tuple[Batches, Iterable[tuple[Tensor, Tensor]]]:
    """This process's training batches (``local_batch`` images each; reseed ``loader_rng`` and
    the sampler every epoch: ``seed_epoch``) and its share of the validation batches (none
    without a validation split). The test split is not read here: ``test_batches`` reads it,
    once a run has finished training."""
    info = dataset_info(cfg.dataset)
    if cfg.data_path == "loader":  # torchvision's transforms on one PIL image at a time, in worker processes
        workers = capped_workers(cfg.num_workers, note=print if rank == 0 else None)
        train_set = load_dataset(cfg.dataset, train=True, data_dir=cfg.data_dir,
                                 transform=train_transform(info, cfg.augmentation))
        parts = training_split(cfg, len(train_set))
        validation_set = Subset(load_dataset(cfg.dataset, train=True, data_dir=cfg.data_dir,
                                             transform=eval_transform(info)), parts.validation)
        train_set = Subset(train_set, parts.trained_on)
        if cfg.unlabelled:
            train_set = HiddenLabels(train_set, len(parts.labelled))
        sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
        loader = DataLoader(train_set, batch_size=local_batch, sampler=sampler, drop_last=True,
                            num_workers=workers, generator=loader_rng, pin_memory=device.type == "cuda")
        return Batches(loader, sampler, len(train_set)), _evaluation_loader(validation_set, rank, world, workers)
    # Decoded once, then cut and augmented a whole batch at a time.
    split = load_tensors(cfg.dataset, train=True, data_dir=cfg.data_dir)
    parts = training_split(cfg, len(split))
    train = split.part(parts.trained_on)
    if cfg.unlabelled:
        train = TensorSplit(train.images, torch.where(torch.arange(len(train)) < len(parts.labelled), train.labels,
                                                      UNLABELLED))
    sampler = DistributedSampler(range(len(train)), num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    augment = PaperAugmentation(info) if cfg.augmentation == "paper" else BatchAugmentation(info, cfg.augmentation)
    batches = TensorBatches(train, sampler, local_batch, augment, device)
    return Batches(batches, sampler, len(train)), _evaluation_batches(split.part(parts.validation), cfg.dataset,
                                                                      rank, world)


def validation_split(cfg: ResolvedConfig) -> TensorSplit:
    """``cfg``'s validation images, decoded (uint8; normalise with ``BatchNormalisation``):
    what its per-epoch figures are measured on and what a choice about the run should read."""
    split = load_tensors(cfg.dataset, train=True, data_dir=cfg.data_dir)
    return split.part(training_split(cfg, len(split)).validation)


def test_batches(dataset: str, *, data_dir: str | None = None, subset: int | None = None, rank: int = 0,
                 world: int = 1) -> list[tuple[Tensor, Tensor]]:
    """This process's share (every ``world``-th image from ``rank``) of the first ``subset``
    test images, normalised, in batches of ``EVAL_BATCH``: images (B, C, 32, 32) float32 and
    labels (B,) int64, on the CPU. What the engine tests a finished run on (once), and
    ``titn-lite evaluate``."""
    test = load_tensors(dataset, train=False, data_dir=data_dir).head(subset)
    return _evaluation_batches(test, dataset, rank, world)


def run_test_batches(cfg: ResolvedConfig, rank: int = 0, world: int = 1) -> Iterable[tuple[Tensor, Tensor]]:
    """``cfg``'s test images on its data path (this process's share): read once per run."""
    if cfg.data_path == "loader":
        info = dataset_info(cfg.dataset)
        test_set = load_dataset(cfg.dataset, train=False, data_dir=cfg.data_dir, transform=eval_transform(info))
        test_set = Subset(test_set, range(min(cfg.test_subset or len(test_set), len(test_set))))
        return _evaluation_loader(test_set, rank, world, capped_workers(cfg.num_workers, note=None))
    return test_batches(cfg.dataset, data_dir=cfg.data_dir, subset=cfg.test_subset, rank=rank, world=world)


def _evaluation_batches(split: TensorSplit, dataset: str, rank: int, world: int) -> list[tuple[Tensor, Tensor]]:
    normalise, mine = BatchNormalisation(dataset_info(dataset)), torch.arange(rank, len(split), world)
    return [(normalise(split.images[chunk]), split.labels[chunk]) for chunk in mine.split(EVAL_BATCH)]


def _evaluation_loader(dataset: Dataset, rank: int, world: int, workers: int) -> DataLoader:
    return DataLoader(Subset(dataset, range(rank, len(dataset), world)), batch_size=EVAL_BATCH, num_workers=workers)


def training_batches(cfg: ResolvedConfig, *, epoch: int = 0, device: torch.device | str = "cpu") -> Batches:
    """``cfg``'s training batches of one ``epoch`` (one process), cut, ordered and augmented
    as the engine does, its random streams seeded as the engine seeds them (so iterate right
    away): images (B, C, 32, 32) normalised, labels (B,) (``UNLABELLED`` where hidden), before
    mixing (the training loop mixes each batch). For measuring what a student trains on."""
    rng = torch.Generator()
    batches = epoch_batches(cfg, 0, 1, cfg.batch_size, rng, torch.device(device))[0]
    seed_epoch(cfg.seed, epoch, rng)
    batches.sampler.set_epoch(epoch)
    return batches


def seed_epoch(seed: int, epoch: int, loader_rng: torch.Generator) -> None:
    """Seed every random stream of one epoch from (seed, epoch)."""
    epoch_seed = seed * 100_003 + epoch
    torch.manual_seed(epoch_seed)
    random.seed(epoch_seed)
    loader_rng.manual_seed(epoch_seed)
