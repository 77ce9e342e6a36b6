"""The kit's training path against a bare eager loop over the same model, at the classroom config.

Bare loop: a fixed batch of random images already in memory; forward, the kit's loss,
backward, the optimizer's step; nothing else (no data, no augmentation, no metrics, no
evaluation). The kit: ``titn-lite train`` at the classroom profile (TITN depth 4, the profile's batch,
1x32x32, 10 classes, 4,000 images, AdamW, no teacher), whose history records training
images/s per epoch (evaluation excluded). Rounds alternate (bare, kit, bare, kit, ...) so
drift in the machine's load hits both alike; medians are printed, and the ratio kit / bare
(issue 19: at least 1.0).

    python benchmarks/kit_vs_bare_loop.py [--model titn] [--rounds 3] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from titn_lite.data.datasets import dataset_info
from titn_lite.data.mixing import MixedBatch
from titn_lite.models.registry import build_model
from titn_lite.train.config import TrainConfig
from titn_lite.train.engine import make_optimizer, parameter_groups
from titn_lite.train.losses import DistillationLoss
from titn_lite.train.profiles import get_profile
from titn_lite.train.runs import train


def bare_loop(model_name: str, profile: str, steps: int, compile: bool, fused: bool = False) -> float:
    """Images/s of forward + loss + backward + step on one fixed batch, after 3 warm-up steps;
    PyTorch's default optimizer unless ``fused``."""
    settings = get_profile(profile)
    config = TrainConfig(model=model_name, profile=profile, distill="none", compile=compile).resolved()
    info = dataset_info(config.dataset)
    torch.manual_seed(0)
    model = build_model(model_name, info.num_classes, info.in_chans, config.model_overrides)
    optimizer = make_optimizer(config, parameter_groups(model, config.weight_decay, config.decay), fused=fused)
    step_model = torch.compile(model) if compile else model
    criterion = DistillationLoss(None, "none")
    images = torch.randn(settings.batch_size, info.in_chans, 32, 32)
    labels = torch.randint(0, info.num_classes, (settings.batch_size,))
    batch = MixedBatch(images, labels, labels, 1.0)
    model.train()
    for step in range(steps + 3):
        if step == 3:
            started = time.perf_counter()
        loss = criterion(step_model(images), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * settings.batch_size / (time.perf_counter() - started)


def kit_run(model_name: str, profile: str, folder: Path, compile: bool) -> list[float]:
    """Training images/s of each epoch of a kit run (the first epoch left out: warm-up)."""
    result = train(TrainConfig(model=model_name, profile=profile, distill="none", compile=compile,
                               out_dir=str(folder)), progress=False)
    return [row["images_per_second"] for row in result.history[1:] or result.history]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="titn")
    parser.add_argument("--profile", default="classroom")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="both under torch.compile")
    args = parser.parse_args()
    settings = get_profile(args.profile)
    steps = (settings.train_subset or 4000) // settings.batch_size
    bare, fused, kit = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            bare.append(bare_loop(args.model, args.profile, steps, args.compile))
            fused.append(bare_loop(args.model, args.profile, steps, args.compile, fused=True))
            kit.append(statistics.median(kit_run(args.model, args.profile, Path(tmp) / f"r{round_}", args.compile)))
            print(f"round {round_ + 1}: bare {bare[-1]:.0f} img/s, bare with a fused optimizer {fused[-1]:.0f}, "
                  f"kit {kit[-1]:.0f}", flush=True)
    b, f, k = statistics.median(bare), statistics.median(fused), statistics.median(kit)
    print(f"\n{args.model}, {args.profile} config (batch {settings.batch_size}, {steps} steps per round), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads{', compiled' if args.compile else ''}")
    print(f"bare loop {b:.0f} img/s (PyTorch's default AdamW), {f:.0f} img/s (fused AdamW); kit {k:.0f} img/s: "
          f"kit / bare = {k / b:.2f}, kit / bare fused = {k / f:.2f}")


if __name__ == "__main__":
    main()
