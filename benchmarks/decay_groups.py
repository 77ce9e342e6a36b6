"""The classroom TITN with AdamW decaying every parameter (the kit before) against decaying
only weight matrices (DeiT's and timm's rule, the kit now): the same seeds, the same teacher,
test top-1 per seed, mean ± std and the paired t-test.

    python benchmarks/decay_groups.py [--profile classroom] [--seeds 3] [--artifacts DIR]

The runs are the notebooks' shared runs (``Course.seed_runs``): with the default artifacts
folder, a later ``titn-lite notebooks run`` reuses the "weights" ones (they are notebook 08's
TITN runs). Both settings take about a minute and a half per seed on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import time

from titn_lite.classroom.course import ARTIFACTS_DIR, Course
from titn_lite.results.stats import compare, format_differences, format_seed_table, seed_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="classroom")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--artifacts", default=str(ARTIFACTS_DIR))
    args = parser.parse_args()

    started = time.perf_counter()
    course = Course(args.profile, artifacts=args.artifacts, progress=False)
    course.teacher()
    accuracy, seconds = {}, {}
    for decay, label in (("all", "decay on every parameter (before)"),
                         ("weights", "no decay on biases, norms, tokens, positions (now)")):
        runs = course.seed_runs("titn", seeds=args.seeds, decay=decay)
        accuracy[label] = [100 * run.metrics.top1 for run in runs]
        seconds[label] = sum(row["seconds"] for run in runs for row in run.history) / len(runs)
    results = seed_results(accuracy)
    print(f"TITN, {args.profile} profile, {args.seeds} seeds (same seeds and teacher for both):\n")
    print(format_seed_table(results))
    print()
    labels = list(results)
    print(format_differences([compare(results[labels[1]], results[labels[0]], paired=True)]))
    print()
    for label, mean_seconds in seconds.items():
        print(f"{label}: {mean_seconds:.0f} s per run")
    print(f"\nbenchmark wall time (reused runs count as 0): {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
