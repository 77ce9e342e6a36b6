"""When does the teacher help? A measured search over distillation regimes at the classroom
profile: for each regime, each distilled student against its undistilled twin (DeiT against
ViT, TITN against TNT) with hard and with soft distillation, over the profile's seeds.

Prints, per regime and pair: both means ± std, the difference, the paired t-test's p (seed k
of both sides starts from the same seed; where both train on the same images for as many
epochs, they also see them in the same order) and Holm's p over every difference in the table, the seconds per run, how often the teacher's label differs from the truth on what
the student trains on (its images as the student sees them: augmented, mixed, unlabelled),
and convergence: the first epoch at which the distilled student's mean test accuracy reaches
its twin's final one (the paper's faster-convergence claim, §3.6 and §4.4).

    python benchmarks/distillation_regimes.py [--regimes classroom,unlabelled] [--pairs vit:deit]
        [--artifacts artifacts] [--out runs/bench-distillation-regimes]

Runs are shared runs of the course in ``--artifacts`` (default: the series' own folder, so
the control reuses notebook 08's runs and a second call reuses everything already trained).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from titn_lite.checkpoints import write_atomic
from titn_lite.course import Course
from titn_lite.data import BatchAugmentation, dataset_info, load_tensors
from titn_lite.mixing import BatchMixer
from titn_lite.runs import RunResult
from titn_lite.stats import compare, holm, seed_results
from titn_lite.teachers import label_disagreement

UNLABELLED_IMAGES = 6000  # the embedded set's 10,000 training images less the classroom's 4,000


@dataclass(frozen=True)
class Regime:
    """A way of training the pair: ``teacher`` settings (None: the course's teacher), settings
    for every student, for the distilled one only and for its undistilled twin only."""

    name: str
    says: str
    teacher: dict[str, Any] | None = None
    students: dict[str, Any] = field(default_factory=dict)
    distilled: dict[str, Any] = field(default_factory=dict)
    twin: dict[str, Any] = field(default_factory=dict)


REGIMES = {r.name: r for r in [
    Regime("classroom", "the classroom recipe (the control): teacher and students on the same 4,000 labelled images"),
    Regime("teacher-10k", "a teacher trained on all 10,000 embedded images; students on 4,000",
           teacher={"train_subset": 10_000}),
    Regime("teacher-longer", "a stronger teacher: 24 epochs instead of the profile's", teacher={"epochs": 24}),
    Regime("students-longer", "students train 12 epochs instead of 4 (they start to overfit)",
           students={"epochs": 12}),
    Regime("augmented", "students on random crops and CutMix, labelled by the teacher on the same view",
           students={"augmentation": "light", "mix": "cutmix"}),
    Regime("unlabelled", f"the distilled student also sees the other {UNLABELLED_IMAGES:,} images, without labels: "
           "only the teacher labels them", distilled={"unlabelled": UNLABELLED_IMAGES}),
    # The distilled student above takes 2.5x the optimizer steps of its twin; here the twin
    # takes about as many (10 epochs of 4,000 images, 4 of 10,000), so they differ mainly in
    # where the extra steps' labels come from. (Measured with the twin's warm-up at the profile's
    # 1 epoch; notebook 10 stretches it with the epochs.)
    Regime("unlabelled-equal-steps", "as unlabelled, the undistilled twin trained for as many optimizer steps "
           "(10 epochs of its 4,000 images)", distilled={"unlabelled": UNLABELLED_IMAGES}, twin={"epochs": 10}),
    # Few labels: the undistilled twin can only repeat its 1,000 images (40 epochs, as many steps
    # as the distilled student's 4 epochs of 10,000), a CNN teacher generalises from them better
    # than a transformer does, and its labels on the other 9,000 are the student's only other signal.
    Regime("scarce-labels", "only 1,000 labelled images (teacher: 32 epochs on them); the distilled student also "
           "sees the other 9,000 without labels, its twin trains as many steps (40 epochs)",
           teacher={"train_subset": 1000, "epochs": 32}, students={"train_subset": 1000},
           distilled={"unlabelled": 9000}, twin={"epochs": 40}),
    Regime("scarce-labels-longer", "as scarce-labels, twice the steps: the distilled student 8 epochs, its twin 80",
           teacher={"train_subset": 1000, "epochs": 32}, students={"train_subset": 1000, "epochs": 8},
           distilled={"unlabelled": 9000}, twin={"epochs": 80}),
]}
PAIRS = {"vit:deit": ("vit", "deit"), "tnt:titn": ("tnt", "titn")}


def teacher_differs(course: Course, teacher: RunResult, settings: dict[str, Any]) -> float:
    """Share of the images a student trains on (one epoch, as it sees them: augmented, mixed,
    with unlabelled ones) on which the teacher's label is not the true (dominant) label."""
    config = course.config("deit", **{**settings, "teacher": str(teacher.out_dir)})
    info = dataset_info(config.dataset)
    split = load_tensors(config.dataset, train=True, data_dir=config.data_dir).head(
        config.train_subset + config.unlabelled)
    augment = BatchAugmentation(info, config.augmentation)
    mixer = BatchMixer(config.mix, alpha=config.mix_alpha)
    torch.manual_seed(0)
    views = [mixer(augment(split.images[chunk]), split.labels[chunk])
             for chunk in torch.randperm(len(split)).split(config.batch_size)]
    return label_disagreement(teacher.model(), torch.cat([v.images for v in views]),
                              torch.cat([v.dominant_labels for v in views]))


def converges(distilled: list[RunResult], twin: list[RunResult]) -> str:
    """The first epoch at which the distilled mean test top-1 reaches the twin's final mean,
    with its seconds, or '-' when it never does."""
    target = statistics.fmean(r.metrics.top1 for r in twin)
    for epoch in range(len(distilled[0].history)):
        if statistics.fmean(r.history[epoch]["val_top1"] for r in distilled) >= target:
            seconds = statistics.fmean(sum(row["seconds"] for row in r.history[:epoch + 1]) for r in distilled)
            return f"{epoch + 1} of {len(distilled[0].history)} ({seconds:.0f} s)"
    return "-"


def seconds(runs: list[RunResult]) -> float:
    return statistics.fmean(sum(row["seconds"] for row in r.history) for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regimes", default=",".join(REGIMES), help=f"comma-separated: {', '.join(REGIMES)}")
    parser.add_argument("--pairs", default=",".join(PAIRS), help=f"comma-separated: {', '.join(PAIRS)}")
    parser.add_argument("--modes", default="hard,soft", help="distillation modes: hard, soft or both")
    parser.add_argument("--profile", default="classroom")
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--out", default="runs/bench-distillation-regimes")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    regimes, pairs = args.regimes.split(","), args.pairs.split(",")
    for name, known in ((regimes, REGIMES), (pairs, PAIRS)):
        unknown = sorted(set(name) - set(known))
        if unknown:
            parser.error(f"unknown {', '.join(unknown)}; valid: {', '.join(known)}")
    modes = args.modes.split(",")
    if set(modes) - {"hard", "soft"}:
        parser.error("--modes takes hard, soft or hard,soft")

    course = Course(args.profile, device=args.device, artifacts=Path(args.artifacts), progress=False)
    rows, differences = [], []
    started = time.perf_counter()
    for regime in (REGIMES[r] for r in regimes):
        teacher = course.run("small_cnn", **regime.teacher) if regime.teacher else course.teacher()
        print(f"== {regime.name}: {regime.says}; teacher top-1 {100 * teacher.metrics.top1:.1f}%", flush=True)
        for pair in pairs:
            plain, distilled = PAIRS[pair]
            twin_settings = {**regime.students, **regime.twin}
            # No tags: a run's folder is named by its settings alone, so regimes that share a run share its folder.
            twin = course.seed_runs(plain, **twin_settings)
            for mode in modes:
                settings = {**regime.students, **regime.distilled, "distill": mode}
                if regime.teacher:
                    settings["teacher"] = str(teacher.out_dir)
                runs = course.seed_runs(distilled, **settings)
                values = seed_results({plain: [100 * r.metrics.top1 for r in twin],
                                       f"{distilled} {mode}": [100 * r.metrics.top1 for r in runs]})
                difference = compare(values[f"{distilled} {mode}"], values[plain], paired=True)
                differences.append(difference)
                rows.append({"regime": regime.name, "plain": values[plain], "distilled": values[f"{distilled} {mode}"],
                             "plain_s": seconds(twin), "distilled_s": seconds(runs),
                             "differs": teacher_differs(course, teacher, settings), "converges": converges(runs, twin),
                             "teacher": 100 * teacher.metrics.top1})
                print(f"   {distilled} {mode} − {plain}: {difference.describe()} "
                      f"[{time.perf_counter() - started:.0f} s so far]", flush=True)

    lines = [f"# Distillation regimes ({args.profile} profile, {course.settings.seeds} seeds, paired by seed; "
             f"Holm over the {len(differences)} differences)", "",
             "| regime | teacher top-1 % | undistilled | distilled | difference | p | Holm p | verdict | s per run "
             "(undistilled / distilled) | teacher ≠ truth on what the student sees | distilled reaches the "
             "twin's final top-1 at epoch |",
             "|---|---:|---|---|---:|---:|---:|---|---:|---:|---|"]
    for row, difference in zip(rows, holm(differences)):
        p = f"{difference.p_value:.3f}" if difference.testable else "-"
        adjusted = f"{difference.adjusted_p:.3f}" if difference.adjusted_p is not None else "-"
        lines.append(f"| {row['regime']} | {row['teacher']:.1f} | {row['plain'].label} {row['plain'].describe()} | "
                     f"{row['distilled'].label} {row['distilled'].describe()} | {difference.difference:+.1f} | {p} | "
                     f"{adjusted} | {difference.verdict()} | {row['plain_s']:.0f} / {row['distilled_s']:.0f} | "
                     f"{100 * row['differs']:.1f}% | {row['converges']} |")
    lines += ["", "Regimes:"] + [f"- **{REGIMES[r].name}**: {REGIMES[r].says}" for r in regimes]
    table = "\n".join(lines) + "\n"
    print("\n" + table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "regimes.md", table.encode())
    print(f"written to {out / 'regimes.md'} ({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
