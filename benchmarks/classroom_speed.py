"""Seconds to accuracy at the classroom config: every student of notebook 08, several seeds,
against a baseline classroom run (the runs a `titn-lite notebooks run` left in an artifacts
folder, e.g. made by an older version of the kit on the same machine).

For each student: the baseline's final test top-1 (mean over seeds) and seconds per run;
the runs of the kit as it is now, trained here into a fresh folder; their final top-1, seconds
per run, and the seconds at which their mean curve first reaches the baseline's final top-1
(cumulative seconds of training and evaluation, over epochs). The target of issue 19: every
student reaches the baseline's accuracy in at most 0.6x the baseline's time.

    python benchmarks/classroom_speed.py --baseline OLD/artifacts/classroom [--seeds 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from titn_lite.classroom.course import Course
from titn_lite.models.students import list_models
from titn_lite.train.run_folder import RunFolder


def curve(histories: list[list[dict]]) -> list[tuple[float, float]]:
    """(cumulative seconds, top-1 %) per epoch, averaged over seeds."""
    epochs = min(len(h) for h in histories)
    points, elapsed = [], 0.0
    for epoch in range(epochs):
        elapsed += statistics.mean(h[epoch]["seconds"] for h in histories)
        points.append((elapsed, 100 * statistics.mean(h[epoch]["val_top1"] for h in histories)))
    return points


def seconds_to(points: list[tuple[float, float]], target: float) -> float | None:
    return next((seconds for seconds, top1 in points if top1 >= target - 1e-9), None)


def baseline_runs(folder: Path, model: str, seeds: int) -> list[list[dict]]:
    """The histories of notebook 08's runs of ``model`` in a classroom artifacts folder: the
    untagged folders MODEL-KEY with seeds 0..seeds-1, at the settings most of them share
    (the baseline's own recipe, whatever today's profile says)."""
    found: dict[tuple, dict[int, list[dict]]] = {}
    for run in folder.iterdir():
        if not re.fullmatch(rf"{model}-[0-9a-f]{{8}}", run.name) or not (run / RunFolder.METRICS).is_file():
            continue
        config = json.loads((run / RunFolder.CONFIG).read_text())
        recipe = tuple(config[k] for k in ("epochs", "batch_size", "lr", "augmentation", "train_subset"))
        found.setdefault(recipe, {})[config["seed"]] = RunFolder(run).history()
    complete = [runs for runs in found.values() if set(range(seeds)) <= set(runs)]
    if not complete:
        raise SystemExit(f"{folder} lacks some of the {seeds} seed runs of {model} that notebook 08 makes")
    runs = max(complete, key=len)
    return [runs[s] for s in range(seeds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="ARTIFACTS/classroom of the baseline run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--profile", default="classroom")
    parser.add_argument("--out", type=Path, help="artifacts folder for the new runs (default: a temporary one); "
                        "a series' artifacts folder reuses the runs its notebook 08 made")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="classroom-speed-"))
    course = Course(args.profile, artifacts=out, progress=False)
    started = time.perf_counter()
    teacher = course.teacher()
    print(f"teacher: {100 * teacher.metrics.top1:.1f}% in {sum(r['seconds'] for r in teacher.history):.0f} s")
    rows, ratios = [], []
    for model in list_models():
        before = curve(baseline_runs(args.baseline, model, args.seeds))
        runs = course.seed_runs(model, seeds=args.seeds)
        after = curve([run.history for run in runs])
        target, before_seconds = before[-1][1], before[-1][0]
        reached = seconds_to(after, target)
        ratio = reached / before_seconds if reached is not None else None
        ratios.append(ratio)
        rows.append(f"| {model} | {target:.1f} | {before_seconds:.0f} | {after[-1][1]:.1f} | {after[-1][0]:.0f} | "
                    + (f"{reached:.0f} | {ratio:.2f}x |" if reached is not None else "not reached | - |"))
    print(f"\n{args.profile} config, {args.seeds} seeds per student (mean curves); seconds = training + "
          f"evaluation per run\n")
    print("| student | before top-1 % | before s | now top-1 % | now s | now s to before's top-1 | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    met = all(r is not None and r <= 0.6 for r in ratios)
    print(f"\nevery student at <= 0.6x: {'met' if met else 'NOT met'}; benchmark wall time "
          f"{time.perf_counter() - started:.0f} s; runs in {out}")


if __name__ == "__main__":
    main()
