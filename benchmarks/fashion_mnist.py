"""Full Fashion-MNIST, classroom profile, in one of two regimes.

``--regime budget`` (default): small CNN teacher, then ViT, DeiT, TNT and TITN under the same
wall-clock budget each, every one on all the training images (60,000; the classroom profile's
4,000-image subset does not apply) and tested on all the test images. Prints top-1, top-5, macro
F1 and images/s. The budget is met by choosing each model's epoch count up front (the cosine
schedule needs the run's length in advance) from a short calibration run through the kit's own
training engine (its step, loss, data path and evaluation: ``calibrate``). Target (issue 3):
TITN >= 90% top-1 on the full test set, and TITN >= DeiT >= ViT.

``--regime few-labels``: notebook 11's few-labels regime on the full files
(``Course.few_labels``): the first ``--labelled`` training images keep their labels, the next
``--unlabelled`` come without; a small CNN teacher learns from the labelled ones; the
distilled student (hard and soft) trains on both, its undistilled twin on the labelled ones
for as many optimizer steps. The profile's seeds, paired; tested on all 10,000 test images.
Prints each seed, means ± std, the differences (paired t-test, Holm over them), how often the
teacher's label is wrong on the unlabelled images, and the optimizer steps the distilled
student takes to reach its twin's final top-1.

    apt-get install dataset-fashion-mnist      # the full 70k images, offline
    python benchmarks/fashion_mnist.py [--budget-minutes 10] [--out runs/bench-fashion-mnist]
    python benchmarks/fashion_mnist.py --regime few-labels [--labelled 1000 --unlabelled 9000]
        [--pairs vit:deit,tnt:titn] [--out runs/bench-fashion-mnist-few-labels]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from titn_lite.classroom.course import Course
from titn_lite.data.datasets import BatchNormalisation, dataset_info, load_tensors
from titn_lite.models.students import model_config
from titn_lite.models.teachers import label_disagreement
from titn_lite.results.report import format_report, summarize_run
from titn_lite.results.stats import (
    compare_pairs,
    first_epoch_reaching,
    format_differences,
    format_seed_table,
    seed_results,
)
from titn_lite.system.files import write_atomic
from titn_lite.train.config import TrainConfig
from titn_lite.train.run_folder import RunFolder, RunResult
from titn_lite.train.runs import train_or_load

STUDENTS = ["vit", "deit", "tnt", "titn"]


@dataclass(frozen=True)
class Calibration:
    """What one student's run costs, measured through the kit's own engine (``fit``): training
    images per second, seconds per epoch of evaluation (all test images) and checkpointing, and
    seconds per run outside the epochs (building the model, loading the teacher and the data)."""

    images_per_second: float
    epoch_overhead: float
    run_overhead: float

    def epoch_seconds(self, images: int) -> float:
        return images / self.images_per_second + self.epoch_overhead

    def epochs_for(self, budget_seconds: float, images: int) -> int:
        """The whole number of epochs on ``images`` closest to the budget (at least one)."""
        return max(1, round((budget_seconds - self.run_overhead) / self.epoch_seconds(images)))


def calibrate(config: TrainConfig, folder: Path, *, batches: int = 25) -> Calibration:
    """Train ``config`` for two short epochs of ``batches`` batches each into ``folder`` (same
    model, teacher, loss, data and test images as the real run) and time the second (the first
    pays for warming up)."""
    cfg = config.resolved()
    images = min(batches * cfg.batch_size, cfg.train_subset)
    started = time.perf_counter()
    result = train_or_load(dataclasses.replace(config, out_dir=str(folder), epochs=2, train_subset=images,
                                               warmup_epochs=0), progress=False)
    wall = time.perf_counter() - started
    row = result.history[-1]
    train_seconds = (images // cfg.batch_size) * cfg.batch_size / row["images_per_second"]
    return Calibration(row["images_per_second"], row["seconds"] - train_seconds,
                       max(0.0, wall - sum(r["seconds"] for r in result.history)))


def train_students(args: argparse.Namespace) -> dict[str, float]:
    """The budget regime's teacher and students (see the module's docstring); returns the wall
    seconds each student trained in this call (a finished run in ``--out`` is reused as it is)."""
    train_images = len(load_tensors("fashion-mnist", train=True, data_dir=args.data_dir))
    test_images = len(load_tensors("fashion-mnist", train=False, data_dir=args.data_dir))
    # Every image, not the classroom profile's subset (a subset of N is its first N images), and no
    # validation split: the benchmark chooses nothing from a run, it reports each one's test top-1.
    common = dict(dataset="fashion-mnist", profile="classroom", data_dir=args.data_dir, train_subset=train_images,
                  val_images=0, test_subset=test_images, device=args.device)
    teacher_dir = args.out / "small_cnn"
    started = time.perf_counter()
    # A folder that already holds a finished run is reused as it is (its epochs came from an
    # earlier speed measurement, so asking for today's would be asking for another run).
    if not RunFolder(teacher_dir).is_complete:
        train_or_load(TrainConfig(model="small_cnn", out_dir=str(teacher_dir), epochs=args.teacher_epochs, **common),
                      progress=False)
    print(f"teacher small_cnn: {time.perf_counter() - started:.0f} s", flush=True)
    budget = args.budget_minutes * 60
    wall_seconds = {}
    with tempfile.TemporaryDirectory(prefix="calibration-") as scratch:
        for name in args.students.split(","):
            run_dir = args.out / name
            if RunFolder(run_dir).is_complete:
                continue
            config = TrainConfig(model=name, teacher=str(teacher_dir) if model_config(name).distilled else None,
                                 **common)
            speed = calibrate(config, Path(scratch) / name)
            epochs = speed.epochs_for(budget, train_images)
            print(f"{name}: {speed.images_per_second:.0f} img/s, {speed.epoch_seconds(train_images):.1f} s an epoch of "
                  f"{train_images:,} images -> {epochs} epochs in {args.budget_minutes:g} min", flush=True)
            started = time.perf_counter()
            train_or_load(dataclasses.replace(config, out_dir=str(run_dir), epochs=epochs), progress=False)
            wall_seconds[name] = time.perf_counter() - started
    return wall_seconds


PAIRS = {"vit:deit": ("vit", "deit"), "tnt:titn": ("tnt", "titn")}


def steps_to_reach(distilled: list[RunResult], twin: list[RunResult], steps_per_epoch: tuple[int, int]) -> str:
    """Optimizer steps after which the distilled mean test top-1 first reaches the twin's
    final mean, against the twin's own steps, in words."""
    target = statistics.fmean(r.metrics.top1 for r in twin)
    epoch = first_epoch_reaching([r.history for r in distilled], target)
    if epoch is None:
        return (f"never reaches the twin's final {100 * target:.2f}% (it ends at "
                f"{100 * statistics.fmean(r.metrics.top1 for r in distilled):.2f}%)")
    steps, twin_steps = epoch * steps_per_epoch[0], len(twin[0].history) * steps_per_epoch[1]
    return (f"reaches the twin's final {100 * target:.2f}% after {steps} of its "
            f"{len(distilled[0].history) * steps_per_epoch[0]} optimizer steps ({100 * steps / twin_steps:.0f}% of "
            f"the twin's {twin_steps})")


def few_labels(args: argparse.Namespace) -> None:
    """The few-labels regime on the full files (see the module's docstring)."""
    course = Course("classroom", device=args.device, artifacts=args.out, progress=False)
    few = course.few_labels(args.labelled, args.unlabelled, epochs=args.epochs)
    data = {"dataset": "fashion-mnist", "data_dir": args.data_dir}
    started = time.perf_counter()
    teacher = course.run("small_cnn", **data, **few.teacher)
    train = load_tensors("fashion-mnist", train=True, data_dir=args.data_dir)
    bare = train.head(few.labelled + few.unlabelled)  # the unlabelled images with their true labels
    normalise = BatchNormalisation(dataset_info("fashion-mnist"))
    wrong = label_disagreement(teacher.model(), normalise(bare.images[few.labelled:]), bare.labels[few.labelled:])
    print(f"teacher small_cnn on {few.labelled} labelled images of {len(train)}: {100 * teacher.metrics.top1:.1f}% on "
          f"the 10,000 test images; wrong on {100 * wrong:.1f}% of the {few.unlabelled} unlabelled images "
          f"[{time.perf_counter() - started:.0f} s]", flush=True)
    batch = course.profile.batch_size
    steps_per_epoch = ((few.labelled + few.unlabelled) // batch, few.labelled // batch)
    values, pairs, reached = {}, [], []
    for pair in args.pairs.split(","):
        plain, distilled = PAIRS[pair]
        twin = course.seed_runs(plain, **data, **few.twin)
        values[plain] = [100 * r.metrics.top1 for r in twin]
        for mode in ("hard", "soft"):
            runs = course.seed_runs(distilled, **data, **few.distilled, distill=mode, teacher=str(teacher.out_dir))
            values[f"{distilled} {mode}"] = [100 * r.metrics.top1 for r in runs]
            pairs.append((f"{distilled} {mode}", plain))
            reached.append(f"- {distilled} {mode} against {plain}: {steps_to_reach(runs, twin, steps_per_epoch)}")
            print(f"{distilled} {mode}: {statistics.fmean(values[pairs[-1][0]]):.2f}% against {plain} "
                  f"{statistics.fmean(values[plain]):.2f}% [{time.perf_counter() - started:.0f} s so far]", flush=True)
    results = seed_results(values)
    table = "\n".join([
        f"# Fashion-MNIST, few labels ({few.labelled:,} labelled + {few.unlabelled:,} unlabelled of the 60,000 "
        f"training images; 10,000 test images; classroom profile, {course.profile.seeds} seeds, paired)", "",
        f"Teacher: small_cnn, {few.teacher['epochs']} epochs on the labelled images, "
        f"{100 * teacher.metrics.top1:.1f}% top-1; its label is wrong on {100 * wrong:.1f}% of the unlabelled "
        f"images. Twins: {few.twin['epochs']} epochs on the labelled images (warm-up {few.twin['warmup_epochs']} "
        f"epochs); distilled: {few.epochs} epochs on both.", "",
        format_seed_table(results, digits=2), "", f"Holm over the {len(pairs)} differences:", "",
        format_differences(compare_pairs(results, pairs)), "", *reached]) + "\n"
    print("\n" + table)
    write_atomic(args.out / "few-labels.md", table.encode())
    print(f"written to {args.out / 'few-labels.md'} ({time.perf_counter() - started:.0f} s in all)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--regime", choices=("budget", "few-labels"), default="budget")
    parser.add_argument("--budget-minutes", type=float, default=10.0, help="budget: wall clock per student")
    parser.add_argument("--teacher-epochs", type=int, default=None, help="budget: default the classroom profile's")
    parser.add_argument("--students", default=",".join(STUDENTS), help="budget: comma-separated, of "
                        f"{', '.join(STUDENTS)}")
    parser.add_argument("--labelled", type=int, default=1000, help="few-labels: training images with labels")
    parser.add_argument("--unlabelled", type=int, default=9000, help="few-labels: the next ones, without labels")
    parser.add_argument("--epochs", type=int, default=None, help="few-labels: the distilled student's (default: "
                        "the profile's; its twin trains as many optimizer steps)")
    parser.add_argument("--pairs", default="vit:deit", help=f"few-labels: comma-separated, of {', '.join(PAIRS)}")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None,
                        help="default runs/bench-fashion-mnist (budget), runs/bench-fashion-mnist-few-labels")
    args = parser.parse_args(argv)
    if not (Path(args.data_dir) / "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"no Fashion-MNIST files in {args.data_dir}: apt-get install dataset-fashion-mnist, "
                         f"or pass --data-dir")
    if args.regime == "few-labels":
        unknown = sorted(set(args.pairs.split(",")) - set(PAIRS))
        if unknown:
            parser.error(f"unknown pairs {', '.join(unknown)}; valid: {', '.join(PAIRS)}")
        args.out = args.out or Path("runs/bench-fashion-mnist-few-labels")
        return few_labels(args)
    args.out = args.out or Path("runs/bench-fashion-mnist")
    unknown = sorted(set(args.students.split(",")) - set(STUDENTS))
    if unknown:
        parser.error(f"unknown students {', '.join(unknown)}; valid: {', '.join(STUDENTS)}")
    wall_seconds = train_students(args)
    run_dirs = [args.out / name for name in ["small_cnn", *args.students.split(",")]]
    summaries = [summarize_run(d) for d in run_dirs]
    print()
    for name, seconds in wall_seconds.items():
        print(f"{name}: trained in {seconds / 60:.1f} min (budget {args.budget_minutes:g})")
    print(format_report(summaries))
    by_name = {s.model: s for s in summaries}
    if not {"titn", "deit", "vit"} <= set(by_name):
        return
    titn, deit, vit = by_name["titn"].top1, by_name["deit"].top1, by_name["vit"].top1
    print(f"\nTITN top-1 {100 * titn:.2f}% (target >= 90%: {'met' if titn >= 0.90 else 'NOT met'}); "
          f"TITN >= DeiT >= ViT: {'met' if titn >= deit >= vit else 'NOT met'} "
          f"({100 * titn:.2f} / {100 * deit:.2f} / {100 * vit:.2f})")


if __name__ == "__main__":
    main()
