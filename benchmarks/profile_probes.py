"""The classroom profile's choices, probed again on the validation split.

The classroom recipe (``titn_lite/train/profiles.py``) was chosen in one-seed probes that read
the test images, before the kit held out a validation split. This script trains the profile
as it is and, beside it, the profile with one choice undone at a time, on seeds that no chapter
trains (``PROBE_SEEDS``), and prints each variant's validation top-1 after the last epoch (mean
over the seeds) and its CPU seconds. It reads no test image: a probe that chooses a recipe
must not.

    python benchmarks/profile_probes.py [--models titn,vit] [--seeds 2] [--variants ...] [--artifacts DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from titn_lite.classroom.course import Course

PROBE_SEEDS = range(200, 210)  # no chapter (0, 1, ...) and no pilot (100, ...) trains these

# Each variant undoes one choice of the classroom profile (the settings a TrainConfig takes).
VARIANTS: dict[str, dict] = {
    "the profile": {},
    "depth 4": {"model_overrides": {"depth": 4}},
    "random crops": {"augmentation": "light"},
    "CutMix (alpha 1)": {"mix": "cutmix"},
    "SGD at lr 0.1 (the paper's)": {"optimizer": "sgd", "lr": 0.1, "weight_decay": 1e-4},
    "batch 128": {"batch_size": 128},
    "lr 2e-3": {"lr": 2e-3},
}


def validation_top1(course: Course, model: str, settings: dict, seeds: range) -> tuple[float, float]:
    """(mean validation top-1 % after the last epoch, mean seconds per run) over ``seeds``."""
    top1, seconds = [], []
    for seed in seeds:
        started = time.perf_counter()
        run = course.run(model, tag=f"probe-{model}", seed=seed, **settings)
        seconds.append(time.perf_counter() - started)
        top1.append(100 * run.history[-1]["val_top1"])
    return statistics.fmean(top1), statistics.fmean(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="titn,vit")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--artifacts", default="runs/bench-probes")
    args = parser.parse_args()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}; valid: {', '.join(VARIANTS)}")
    if not 1 <= args.seeds <= len(PROBE_SEEDS):
        parser.error(f"--seeds must be between 1 and {len(PROBE_SEEDS)}")
    course = Course("classroom", artifacts=Path(args.artifacts), progress=False)
    seeds = range(PROBE_SEEDS.start, PROBE_SEEDS.start + args.seeds)
    print(f"classroom profile, seeds {seeds.start}-{seeds.stop - 1}: validation top-1 after the last epoch "
          f"(mean over the seeds), seconds per run (training and validation)\n")
    print("| model | variant | validation top-1 % | seconds per run |\n|---|---|---:|---:|")
    for model in args.models.split(","):
        for name in names:
            top1, seconds = validation_top1(course, model, VARIANTS[name], seeds)
            print(f"| {model} | {name} | {top1:.1f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
