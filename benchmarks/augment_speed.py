"""Images per second of the paper recipe's training augmentation: the batch path
(``titn_lite.data.augment.PaperAugmentation`` on a decoded uint8 split, a whole batch at a time,
on ``--device``) against the DataLoader path (``train_transform(info, "paper")`` on one PIL
image at a time, in ``--workers`` worker processes, as the engine's DataLoader runs it).

Augmentation alone: no model. Both paths start from the same decoded 32x32 images and end
with the same normalised float32 batches (the DataLoader path also pays for collating them,
as it does in training). The paths run in interleaved rounds, so drift in the machine's load
hits both alike; the table gives each path's median. The DataLoader's epoch is exactly the
timed batches, so its workers are idle when the batch path's round starts (until 2026-12-07
they went on prefetching the rest of the epoch, taking the CPU from the batch path's round).

Images: the MNIST recipe runs on fashion-mnist-mini (embedded); the CIFAR recipe on CIFAR-10
from ``--data-dir`` when it is there, else on fashion-mnist-mini's images made RGB (each
channel scaled by its own random factor per image), which costs the same to augment.

Run: python benchmarks/augment_speed.py [--recipe cifar,mnist] [--batch-size 1024]
     [--workers 2] [--batches 4] [--rounds 3] [--device cpu]
The target (issue #32): the batch path at least 2x the DataLoader path with 2 workers on a
2-core CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler

from titn_lite.data.augment import PaperAugmentation
from titn_lite.data.datasets import DatasetNotFound, TensorSplit, dataset_info, load_tensors, train_transform

TARGET = 2.0


class PilImages(Dataset):
    """A decoded split served as torchvision's datasets serve it: a PIL image per item, put
    through ``transform``."""

    def __init__(self, split: TensorSplit, transform: Callable) -> None:
        images = split.images.permute(0, 2, 3, 1).numpy()
        self.images = images[..., 0] if images.shape[-1] == 1 else images
        self.labels = split.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def images_of(recipe: str, data_dir: str | None) -> tuple[TensorSplit, str]:
    """The recipe's training images and where they came from."""
    if recipe == "cifar":
        try:
            return load_tensors("cifar10", train=True, data_dir=data_dir), "cifar10"
        except (DatasetNotFound, OSError):
            pass
        split = load_tensors("fashion-mnist-mini", train=True)
        tint = torch.empty(len(split), 3, 1, 1).uniform_(0.5, 1.0, generator=torch.Generator().manual_seed(0))
        rgb = (split.images.float() * tint).round().to(torch.uint8)
        return TensorSplit(rgb, split.labels), "fashion-mnist-mini made RGB"
    return load_tensors("fashion-mnist-mini", train=True), "fashion-mnist-mini"


def batch_path(split: TensorSplit, recipe: str, batch_size: int, batches: int,
               device: torch.device) -> Callable[[], float]:
    augment = PaperAugmentation(dataset_info("cifar10" if recipe == "cifar" else "fashion-mnist-mini"))
    images = split.images.to(device)
    generator = torch.Generator().manual_seed(0)

    def run() -> float:
        order = torch.randperm(len(split), generator=generator)
        sync(device)
        started = time.perf_counter()
        for batch in range(batches):
            chosen = order[batch * batch_size:(batch + 1) * batch_size].to(device)
            augment(images[chosen], generator)
        sync(device)
        return batches * batch_size / (time.perf_counter() - started)
    return run


def loader_path(split: TensorSplit, recipe: str, batch_size: int, batches: int, workers: int) -> Callable[[], float]:
    info = dataset_info("cifar10" if recipe == "cifar" else "fashion-mnist-mini")
    images = PilImages(split, train_transform(info, "paper"))
    # An epoch of exactly the timed batches (a fresh random subset each round): the workers
    # prefetch ahead of the batch asked for, and with images left in the epoch they would go
    # on augmenting batches nobody times while the batch path's round runs, taking its cores.
    sampler = RandomSampler(images, num_samples=batches * batch_size, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(images, batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=workers,
                        persistent_workers=workers > 0)

    def run() -> float:
        # Persistent workers, started by the warm-up round: timed from asking for the epoch's
        # first batch to receiving its last, so the workers' prefetching is inside the clock.
        started = time.perf_counter()
        for _ in loader:
            pass
        seconds = time.perf_counter() - started
        return batches * batch_size / seconds
    return run


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(recipes: list[str], *, batch_size: int, batches: int, rounds: int, workers: int,
            device: torch.device, data_dir: str | None = None) -> list[dict]:
    """One row per recipe: median images/s of each path and their ratio."""
    rows = []
    for recipe in recipes:
        split, source = images_of(recipe, data_dir)
        needed = (batches + 1) * batch_size
        if len(split) < needed:
            split = TensorSplit(split.images.repeat((needed + len(split) - 1) // len(split), 1, 1, 1),
                                split.labels.repeat((needed + len(split) - 1) // len(split)))
        paths = {"batch": batch_path(split, recipe, batch_size, batches, device),
                 "loader": loader_path(split, recipe, batch_size, batches, workers)}
        for run in paths.values():  # warm-up: the workers start, the batch path's kernels load
            run()
        rates: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(rounds):
            for name, run in paths.items():
                rates[name].append(run())
        batch, loader = statistics.median(rates["batch"]), statistics.median(rates["loader"])
        rows.append({"recipe": recipe, "images": source, "batch": batch, "loader": loader, "ratio": batch / loader,
                     "batch_rounds": rates["batch"], "loader_rounds": rates["loader"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="cifar,mnist", help="comma-separated: cifar, mnist")
    parser.add_argument("--batch-size", type=int, default=1024, help="default: the paper profile's, 1024")
    parser.add_argument("--batches", type=int, default=4, help="batches per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per path")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--device", default="cpu", help="where the batch path runs (cpu, cuda)")
    parser.add_argument("--data-dir", help="where to look for CIFAR-10")
    parser.add_argument("--threads", type=int, help="torch threads of the batch path (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = measure(args.recipe.split(","), batch_size=args.batch_size, batches=args.batches, rounds=args.rounds,
                   workers=args.workers, device=device, data_dir=args.data_dir)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}; batch path on {where}; DataLoader with {args.workers} workers; batch "
          f"{args.batch_size}; medians of {args.rounds} rounds of {args.batches} batches\n")
    print("| recipe | images | batch path img/s | DataLoader img/s | batch / DataLoader | rounds (batch; DataLoader) |")
    print("|---|---|---:|---:|---:|---|")
    for row in rows:
        rounds = (", ".join(f"{r:.0f}" for r in row["batch_rounds"]) + "; "
                  + ", ".join(f"{r:.0f}" for r in row["loader_rounds"]))
        print(f"| {row['recipe']} | {row['images']} | {row['batch']:.0f} | {row['loader']:.0f} | "
              f"{row['ratio']:.2f} | {rounds} |")
    slow = [row["recipe"] for row in rows if row["ratio"] < TARGET]
    verdict = "met" if not slow else f"NOT met for {', '.join(slow)}"
    print(f"\ntarget: batch path >= {TARGET:g}x the DataLoader path: {verdict}")


if __name__ == "__main__":
    main()
