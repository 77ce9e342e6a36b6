"""When does the teacher help? A measured search over distillation regimes at the classroom
profile: for each regime, each distilled student against its undistilled twin (DeiT against
ViT, TITN against TNT) with hard and with soft distillation, over the profile's seeds.

Prints, per regime and pair: both means ± std, the difference, the paired t-test's p (seed k
of both sides starts from the same seed; where both train on the same images for as many
epochs, they also see them in the same order) and Holm's p over every difference in the table,
the seconds per run, how often the teacher's label differs from the truth on what
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

from titn_lite.classroom.course import EMBEDDED_TRAINING_IMAGES as EMBEDDED_IMAGES
from titn_lite.classroom.course import Course, FewLabels
from titn_lite.data.mixing import BatchMixer
from titn_lite.models.teachers import label_disagreement
from titn_lite.results.stats import compare, first_epoch_reaching, holm, seed_results
from titn_lite.system.files import write_atomic
from titn_lite.train.pipeline import training_batches
from titn_lite.train.run_folder import RunResult


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

    @classmethod
    def few_labels(cls, name: str, says: str, few: FewLabels) -> Regime:
        """A few-labels regime (``Course.few_labels``: notebook 11's settings for its three runs)."""
        return cls(name, says, teacher=few.teacher, distilled=few.distilled, twin=few.twin)


def regimes(course: Course) -> dict[str, Regime]:
    """The regimes searched, at the course's profile (its training subset, epochs, teacher)."""
    profile = course.profile
    trainable = EMBEDDED_IMAGES - profile.val_images  # the last ones are the validation split
    images = profile.train_subset or trainable
    others = trainable - images  # the embedded images the profile's students never see (nor validate on)
    # The profile's own warm-up, as when the search's tables were measured (notebook 11 shortens it).
    warmup = profile.warmup_epochs
    equal_steps = course.few_labels(images, others, warmup_epochs=warmup)
    scarce = course.few_labels(1000, trainable - 1000, warmup_epochs=warmup)
    scarce_longer = course.few_labels(1000, trainable - 1000, epochs=2 * profile.epochs, warmup_epochs=warmup)
    return {r.name: r for r in [
        Regime("classroom", f"the profile's recipe (the control): teacher and students on the same {images:,} "
               "labelled images"),
        Regime("teacher-all", f"a teacher trained on all {trainable:,} embedded training images outside the "
               f"validation split; students on {images:,}", teacher={"train_subset": trainable}),
        Regime("teacher-longer", f"a stronger teacher: {3 * profile.teacher_epochs} epochs instead of "
               f"{profile.teacher_epochs}", teacher={"epochs": 3 * profile.teacher_epochs}),
        Regime("students-longer", f"students train {3 * profile.epochs} epochs instead of {profile.epochs} (they "
               "start to overfit)", students={"epochs": 3 * profile.epochs}),
        Regime("crops", "students on random crops (2 pixels of padding), labelled by the teacher on the same view",
               students={"augmentation": "light"}),
        Regime("augmented", "students on random crops and CutMix, labelled by the teacher on the same view",
               students={"augmentation": "light", "mix": "cutmix"}),
        Regime("mixup", "students on random crops and MixUp, labelled by the teacher on the same view",
               students={"augmentation": "light", "mix": "mixup"}),
        Regime("unlabelled", f"the distilled student also sees the other {others:,} images, without labels: only "
               "the teacher labels them", distilled={"unlabelled": others}),
        # The distilled student above takes more optimizer steps than its twin; here the twin
        # takes about as many (more epochs, its warm-up stretched alike), so the two differ
        # mainly in where the extra steps' labels come from.
        Regime.few_labels("unlabelled-equal-steps", f"as unlabelled, the undistilled twin trained for as many "
                          f"optimizer steps ({equal_steps.twin['epochs']} epochs of its {images:,} images)",
                          equal_steps),
        # Few labels: the undistilled twin can only repeat its 1,000 images, a CNN teacher
        # generalises from them better than a transformer does, and its labels on the other
        # images are the student's only other signal.
        Regime.few_labels("scarce-labels", f"only 1,000 labelled images (teacher: {scarce.teacher['epochs']} epochs "
                          f"on them); the distilled student also sees the other {scarce.unlabelled:,} without labels, "
                          f"its twin trains as many steps ({scarce.twin['epochs']} epochs)", scarce),
        Regime.few_labels("scarce-labels-longer", f"as scarce-labels, twice the steps: the distilled student "
                          f"{scarce_longer.epochs} epochs, its twin {scarce_longer.twin['epochs']}", scarce_longer),
    ]}


PAIRS = {"vit:deit": ("vit", "deit"), "tnt:titn": ("tnt", "titn")}


def teacher_differs(course: Course, teacher: RunResult, settings: dict[str, Any]) -> float:
    """Share of the images a student trains on (one epoch, as it sees them: augmented, mixed,
    with unlabelled ones) on which the teacher's label is not the true (dominant) label."""
    config = course.prepare_run("deit", **{**settings, "teacher": str(teacher.out_dir)})
    # The same images with every label shown (the truth of the unlabelled ones), cut and
    # augmented by the engine itself, then mixed as the training loop mixes them.
    seen = course.prepare_run("deit", **{**settings, "teacher": str(teacher.out_dir), "unlabelled": 0,
                                    "train_subset": config.train_subset + config.unlabelled})
    mixer = BatchMixer(config.mix, alpha=config.mix_alpha, prob=config.mix_prob)
    torch.manual_seed(0)
    views = [mixer(images, labels) for images, labels in training_batches(seen)]
    return label_disagreement(teacher.model(), torch.cat([v.images for v in views]),
                              torch.cat([v.dominant_labels for v in views]))


def converges(distilled: list[RunResult], twin: list[RunResult]) -> str:
    """The first epoch at which the distilled mean test top-1 reaches the twin's final mean,
    with its seconds, or '-' when it never does."""
    epoch = first_epoch_reaching([r.history for r in distilled], statistics.fmean(r.metrics.top1 for r in twin))
    if epoch is None:
        return "-"
    seconds = statistics.fmean(sum(row["seconds"] for row in r.history[:epoch]) for r in distilled)
    return f"{epoch} of {len(distilled[0].history)} ({seconds:.0f} s)"


def seconds(runs: list[RunResult]) -> float:
    return statistics.fmean(sum(row["seconds"] for row in r.history) for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regimes", default=None, help="comma-separated (default: all): "
                        + ", ".join(regimes(Course("classroom", artifacts=Path("unused")))))
    parser.add_argument("--pairs", default=",".join(PAIRS), help=f"comma-separated: {', '.join(PAIRS)}")
    parser.add_argument("--modes", default="hard,soft", help="distillation modes: hard, soft or both")
    parser.add_argument("--profile", default="classroom")
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--out", default="runs/bench-distillation-regimes")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    course = Course(args.profile, device=args.device, artifacts=Path(args.artifacts), progress=False)
    known_regimes = regimes(course)
    chosen, pairs = (args.regimes.split(",") if args.regimes else list(known_regimes)), args.pairs.split(",")
    for name, known in ((chosen, known_regimes), (pairs, PAIRS)):
        unknown = sorted(set(name) - set(known))
        if unknown:
            parser.error(f"unknown {', '.join(unknown)}; valid: {', '.join(known)}")
    modes = args.modes.split(",")
    if set(modes) - {"hard", "soft"}:
        parser.error("--modes takes hard, soft or hard,soft")

    rows, differences = [], []
    started = time.perf_counter()
    for regime in (known_regimes[r] for r in chosen):
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

    lines = [f"# Distillation regimes ({args.profile} profile, {course.profile.seeds} seeds, paired by seed; "
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
    lines += ["", "Regimes:"] + [f"- **{r}**: {known_regimes[r].says}" for r in chosen]
    table = "\n".join(lines) + "\n"
    print("\n" + table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "regimes.md", table.encode())
    print(f"written to {out / 'regimes.md'} ({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
