"""Measure the pilots the series' experiments plan from (``titn_lite.results.pilots``).

For each experiment (``titn_lite.classroom.experiments``: notebook 08's comparison, 10's
ablations, 11's few-labels regime at the notebook's default parameters), trains every variant at
the pilot seeds (100, 101, ...: seeds the experiments never use) at the profile, prints each
pair's scatter and the plan it gives the experiment, and saves the pilot into the kit's
``assets/pilots.json``, which the chapters read.

    python benchmarks/pilots.py [--profile classroom] [--experiments ablations,unlabelled]
        [--seeds 4] [--artifacts runs/bench-pilots] [--out assets/pilots.json]

The runs are shared runs of a course in ``--artifacts`` (a second call reuses them).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from titn_lite.classroom import experiments
from titn_lite.classroom.course import Course
from titn_lite.results.pilots import PILOT_SEEDS, save_pilot

EXPERIMENTS = ("comparison", "ablations", "unlabelled")


def experiment(course: Course, name: str) -> experiments.Experiment:
    if name == "unlabelled":
        few, teacher = experiments.few_labels_teacher(course)
        return experiments.unlabelled(course, few, str(teacher.out_dir))
    return getattr(experiments, name)(course)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="classroom")
    parser.add_argument("--experiments", default="ablations,unlabelled",
                        help=f"comma-separated, of {', '.join(EXPERIMENTS)}")
    parser.add_argument("--seeds", type=int, default=len(PILOT_SEEDS), help="pilot seeds per variant")
    parser.add_argument("--artifacts", default="runs/bench-pilots")
    parser.add_argument("--out", default=None, help="the pilots file (default: the kit's assets/pilots.json)")
    args = parser.parse_args()
    names = args.experiments.split(",")
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}; valid: {', '.join(EXPERIMENTS)}")
    course = Course(args.profile, artifacts=Path(args.artifacts), progress=False)
    seeds = range(PILOT_SEEDS.start, PILOT_SEEDS.start + args.seeds)
    for name in names:
        started = time.perf_counter()
        planned = experiment(course, name)
        pilot = planned.measure_pilot(course, seeds)
        path = save_pilot(pilot, path=Path(args.out) if args.out else None)
        print(f"## {name} at the {args.profile} profile: {len(seeds)} pilot seeds, "
              f"{time.perf_counter() - started:.0f} s; saved to {path}")
        for label, values in pilot.values.items():
            print(f"- {label}: " + ", ".join(f"{v:.2f}" for v in values))
        for plan in pilot.plan(planned.pairs, planned.seeds):
            print(f"- plan for {planned.seeds} seeds, {len(planned.pairs)} comparisons: {plan.describe()}")


if __name__ == "__main__":
    main()
