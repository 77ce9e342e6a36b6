"""The course: what every notebook of one series run shares.

A notebook builds its ``Course`` once, from its parameters cell, and asks it for runs::

    course = Course(profile, device=device, artifacts=artifacts_dir)
    vit = course.run("vit")                  # trained once, reused by every later notebook
    seeds = course.seed_runs("titn")         # the profile's seeds, 0 .. n-1
    teacher = course.teacher()               # the small CNN every distilled student learns from
    course.record_results("comparison", ...) # for the series' results page

Runs live in ``ARTIFACTS/PROFILE/NAME-KEY`` (NAME: a tag or the model; KEY: the run's
identity, ``TrainConfig.key``), so a run is made once whichever notebook asks first, on
whatever device, and runs with other settings sit beside it. The series runner
(``titn_lite.classroom.series.run_series``) and the book take the same object.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from titn_lite.results.stats import SeedResults, seed_results
from titn_lite.system.cpu import cores_share
from titn_lite.system.devices import check_device, wants_cuda
from titn_lite.system.files import write_json
from titn_lite.system.usage import UsageError, check_positive_int
from titn_lite.train.config import TrainConfig
from titn_lite.train.engine import EpochCallback
from titn_lite.train.profiles import DEFAULT_PROFILE, Profile, get_profile, list_profiles
from titn_lite.train.run_folder import RunFolder, RunResult
from titn_lite.train.runs import train_or_load, train_teacher
from titn_lite.train.side_by_side import side_by_side_available, threads, train_side_by_side

# Relative to where the kit is run: in a clone, its root (the notebooks' "../artifacts");
# in a folder made by ``notebooks copy``, that folder.
ARTIFACTS_DIR = Path("artifacts")
# A folder of runs prepared for a class (``titn-lite notebooks prepare``), read where it is and
# never written: set for students' servers by a hub's admin, while each student's own runs go to
# their own artifacts folder. A course reads it from the environment, because the notebooks build
# their course from their parameters cell, which a hub cannot edit in every student's copy.
SHARED_ENV = "TITN_LITE_SHARED_ARTIFACTS"


def shared_from_environment() -> Path | None:
    """The prepared runs' folder that ``SHARED_ENV`` names, if any."""
    value = os.environ.get(SHARED_ENV, "").strip()
    return Path(value) if value else None


# The notebooks' teacher at every profile: notebook 06 builds and trains it. (The paper
# profile's own teacher, VGG16-BN, is what ``titn-lite train`` uses by default.)
COURSE_TEACHER = "small_cnn"
# The series' results page gathers what notebooks 06, 08, 10 and 11 measured (per seed).
RESULT_RECORDS = ("teacher", "comparison", "ablations", "regimes")
EMBEDDED_TRAINING_IMAGES = 10_000
# Notebook 08's five differences, the pairs behind Table 3's claims: what the distillation token
# adds (twice), what the inner transformer adds, and what the large patches cost.
STUDENT_PAIRS = (("deit", "vit"), ("titn", "tnt"), ("tnt", "vit"), ("titn", "deit"), ("titn", "titn_large_patch"))
# The runs of notebooks 10 and 11 warm up over at most this share of their epochs (the classroom
# profile's one epoch in four is a quarter), so most of a short run trains at its peak rate.
WARMUP_SHARE = 1 / 8


def short_warmup(profile: Profile, epochs: float) -> float:
    """Warm-up epochs for a run of ``epochs``: the profile's, or ``WARMUP_SHARE`` of the run if shorter."""
    return min(profile.warmup_epochs, epochs * WARMUP_SHARE)


def top1_by_seed(runs: dict[str, Sequence[RunResult]]) -> dict[str, SeedResults]:
    """``{label: seed runs}`` -> ``{label: SeedResults}`` of their test top-1 in percent."""
    return seed_results({label: [100 * run.metrics.top1 for run in seed_runs] for label, seed_runs in runs.items()})


@dataclass(frozen=True)
class Course:
    """One profile, one device, one artifacts folder: the runs a series shares."""

    # One of the registered profiles, or its name (looked up once, here): the runs are trained by
    # the name, so a changed copy of a profile is refused. Not hashed: a profile holds a dict.
    profile: Profile = field(default=DEFAULT_PROFILE, hash=False)
    device: str = "auto"
    artifacts: Path = field(default=ARTIFACTS_DIR)
    progress: bool = True
    shared: Path | None = field(default_factory=shared_from_environment)  # prepared runs, read only

    def __post_init__(self) -> None:
        if not isinstance(self.profile, Profile):  # an unknown name fails here, naming the valid ones
            object.__setattr__(self, "profile", get_profile(self.profile))
        elif self.profile != get_profile(self.profile.name):
            raise UsageError(f"a course trains with a registered profile ({', '.join(list_profiles())}), by its "
                             f"name; this {self.profile.name!r} was changed: name the profile instead")
        check_device(self.device)
        # Absolute, so a notebook's "../artifacts" and the runner's absolute path are one folder.
        object.__setattr__(self, "artifacts", Path(self.artifacts).resolve())
        if self.shared is not None:
            object.__setattr__(self, "shared", Path(self.shared).resolve())

    @property
    def runs_folder(self) -> Path:
        return self.artifacts / self.profile.name

    def prepare_run(self, model: str, *, tag: str | None = None, progress: bool | None = None,
                    **settings: Any) -> TrainConfig:
        """Get the shared run ``course.run(model, tag=tag, **settings)`` ready to train or load:
        trains a distilled student's teacher first if it is not there yet, then returns the run's
        resolved config, placed in the course's folder."""
        config = TrainConfig(model=model, profile=self.profile.name, device=self.device, **settings)
        if config.is_distilled and config.distill != "none" and "teacher" not in settings:
            teacher = self.teacher(progress=progress).folder.checkpoint_path
            config = dataclasses.replace(config, teacher=str(teacher))
        resolved = config.resolved()
        return resolved.at(self.run_folder(f"{tag or model}-{resolved.key()}"))

    def run_folder(self, name: str) -> Path:
        """Where the run ``name`` (``NAME-KEY``) lives: the shared folder's finished run, loaded
        there and never written (a finished run is only read), else the course's own folder,
        where it is made. Same key, same run: the folder a run sits in is not part of it."""
        if self.shared is not None and self.shared != self.artifacts:
            prepared = self.shared / self.profile.name / name
            if RunFolder(prepared).is_complete:
                return prepared
        return self.runs_folder / name

    @property
    def on_cpu(self) -> bool:
        return not wants_cuda(self.device)

    def _run_threads(self) -> AbstractContextManager[None]:
        """On a CPU, a course's run trains on one thread (``titn_lite.train.side_by_side``): its
        numbers then do not depend on the machine's cores or on what else the series runs."""
        return threads() if self.on_cpu else nullcontext()

    def run(self, model: str, *, tag: str | None = None, progress: bool | None = None,
            callbacks: list[EpochCallback] | None = None, **settings: Any) -> RunResult:
        """The shared run of ``model`` with ``settings`` (any ``TrainConfig`` field; the
        profile fills the rest): reused when it exists, trained (or finished) otherwise."""
        progress = self.progress if progress is None else progress
        config = self.prepare_run(model, tag=tag, progress=progress, **settings)
        with self._run_threads():
            return train_or_load(config, callbacks=callbacks, progress=progress)

    def make_runs(self, configs: Sequence[TrainConfig], *, progress: bool | None = None,
                  label: str = "runs") -> list[RunResult]:
        """The runs of ``configs`` (each from ``prepare_run``), reused or trained. On a CPU the
        missing ones train side by side, one thread each, as many at once as this kernel has
        cores (beside other notebooks of a series, its share: ``cores_share``); on a GPU one
        after another. Results in the order of ``configs``."""
        progress = self.progress if progress is None else progress
        missing = [config for config in configs if not RunFolder(config.out_dir).is_complete]
        if len(missing) > 1 and self.on_cpu and side_by_side_available():
            train_side_by_side(missing, cores_share, progress=progress, label=label)
        with self._run_threads():
            return [train_or_load(config, progress=progress) for config in configs]

    def seed_runs(self, model: str, *, seeds: int | None = None, tag: str | None = None,
                  progress: bool | None = None, **settings: Any) -> list[RunResult]:
        """``run`` with seeds 0 .. seeds-1 (default: the profile's ``seeds``): the same setting
        trained several times, so a difference can be weighed against the seeds' own scatter
        (``titn_lite.results.stats``). Seed 0 is the run the other notebooks share."""
        seeds = self.profile.seeds if seeds is None else seeds
        check_positive_int("seeds", seeds)
        configs = [self.prepare_run(model, tag=tag, progress=progress, seed=seed, **settings) for seed in range(seeds)]
        return self.make_runs(configs, progress=progress, label=f"{tag or model} x {seeds} seeds")

    def few_labels(self, labelled: int, unlabelled: int | None = None, epochs: int | None = None,
                   warmup_epochs: float | None = None) -> FewLabels:
        """The settings of a few-labels regime at this profile (notebook 11): ``labelled`` images
        with labels (at most the profile's training images), the next ``unlabelled`` without
        (default: the profile's ``unlabelled_per_label`` per labelled image, as many as the embedded
        training split holds beside its validation images), the distilled student trained ``epochs``
        (default: the profile's) over both, warming up over ``warmup_epochs`` (default: ``short_warmup``)."""
        labelled = min(labelled, self.profile.train_subset or labelled)
        if unlabelled is None:
            trainable = EMBEDDED_TRAINING_IMAGES - self.profile.val_images  # the rest are the validation split
            unlabelled = max(0, min(trainable - labelled, self.profile.unlabelled_per_label * labelled))
        epochs = self.profile.epochs if epochs is None else epochs
        warmup_epochs = short_warmup(self.profile, epochs) if warmup_epochs is None else warmup_epochs
        return FewLabels.at(self.profile, labelled, unlabelled, epochs, warmup_epochs)

    def teacher(self, *, progress: bool | None = None) -> RunResult:
        """The course's teacher run (``COURSE_TEACHER`` at this profile), made once."""
        config = self.prepare_run(COURSE_TEACHER)  # a shared run like any other, placed where course.run puts it
        progress = self.progress if progress is None else progress
        with self._run_threads():
            return train_teacher(config, RunFolder(config.out_dir), progress=progress).result()

    # The results page's records: ARTIFACTS/PROFILE/results/NAME.json, beside the runs they summarize.
    def record_path(self, name: str) -> Path:
        return self.runs_folder / "results" / f"{name}.json"

    def record_results(self, name: str, *, title: str, setting: str, values: dict[str, list[float]],
                       pairs: Sequence[tuple[str, str]] = (), paper_top1: dict[str, float | None] | None = None,
                       paired: bool = True, detectable: dict[str, float] | None = None,
                       hindsight: dict[str, float] | None = None, exploratory: bool = False,
                       claims: dict[str, float] | None = None, pilot_seeds: int | None = None) -> Path:
        """Save one notebook's measured top-1 (percent, one value per seed) for the results page.

        ``setting`` says in words what was trained (epochs, images, seeds); ``pairs`` are the
        (first, second) labels whose difference the page tests; ``paper_top1`` the published
        figure of a label, where the paper has one (the page sets the paper's gaps, not its
        accuracies, beside the run's); ``paired``: value k of every label came from seed k (the
        kit's seed runs), so the page tests each pair with the paired t-test; ``detectable``:
        "first − second" -> the difference the chapter planned to detect, from its pilot, and
        ``hindsight`` the same figure from the run's own scatter; ``exploratory``: the setting was
        chosen by looking at these test images; ``claims``: "first − second" -> an effect the chapter
        reads against that pair's interval (the page says whether its own, wider family still rules
        it out); ``pilot_seeds``: how many seeds the plans' pilot had (the page weighs plans that
        landed off against chance)."""
        if name not in RESULT_RECORDS:
            raise UsageError(f"unknown results record {name!r}; valid: {', '.join(RESULT_RECORDS)}")
        unknown = sorted({label for pair in pairs for label in pair} - set(values))
        if unknown:
            raise UsageError(f"pairs name {', '.join(unknown)}, which have no values; measured: {', '.join(values)}")
        path = self.record_path(name)
        write_json(path, {"title": title, "setting": setting, "values": values, "pairs": [list(p) for p in pairs],
                          "paper_top1": paper_top1 or {}, "paired": paired, "detectable": detectable or {},
                          "hindsight": hindsight or {}, "exploratory": exploratory, "claims": claims or {},
                          "pilot_seeds": pilot_seeds})
        return path

    def clear_results(self) -> None:
        """Forget earlier records, so that a page gathered after a run shows that run alone."""
        for name in RESULT_RECORDS:
            self.record_path(name).unlink(missing_ok=True)

    def results(self) -> list[dict[str, Any]]:
        """The records written so far, in the page's order."""
        return [json.loads(self.record_path(name).read_text()) for name in RESULT_RECORDS
                if self.record_path(name).is_file()]


@dataclass(frozen=True)
class FewLabels:
    """A regime with few labels: the first ``labelled`` training images keep their labels,
    the next ``unlabelled`` come without. Its runs' settings (``course.run`` keywords):

    - ``teacher``: a CNN trained on the labelled images only, for about as many optimizer
      steps as the profile's teacher takes on the profile's images (its epochs times the whole
      number of times the labelled images fit in the profile's; the profile's epochs when the
      profile trains on every image);
    - ``distilled``: a distilled student, ``epochs`` over labelled and unlabelled images (the
      teacher is the only one to label the unlabelled ones), warming up over ``warmup_epochs``;
    - ``twin``: its undistilled twin, on the labelled images only, for about as many optimizer
      steps (more epochs), its warm-up stretched alike so both warm up over as many steps.

    The teacher and the twin evaluate on the validation images every few of their short epochs only
    (``evaluate_every``; evaluating each would cost about as much as training): the teacher as
    often as the profile's teacher, the twin about where the distilled student's epochs end, so
    the two learning curves share their steps."""

    labelled: int
    unlabelled: int
    epochs: int
    teacher: dict[str, Any]
    distilled: dict[str, Any]
    twin: dict[str, Any]

    def steps_per_epoch(self, batch_size: int, *, distilled: bool) -> int:
        """Optimizer steps in one epoch of the distilled student (labelled and unlabelled images)
        or of its twin (labelled only); each epoch drops its last partial batch."""
        return (self.labelled + self.unlabelled * distilled) // batch_size

    @classmethod
    def at(cls, profile: Profile, labelled: int, unlabelled: int, epochs: int, warmup_epochs: float) -> FewLabels:
        if labelled < 1 or unlabelled < 0 or epochs < 1:
            raise UsageError(f"a few-labels regime needs labelled >= 1, unlabelled >= 0 and epochs >= 1; got "
                             f"{labelled}, {unlabelled} and {epochs}")
        fits = max(1, (profile.train_subset or labelled) // labelled)  # times the labelled images fit in the profile's
        teacher_epochs = profile.teacher_epochs * fits
        twin_epochs = epochs * (labelled + unlabelled) // labelled
        twin_warmup = warmup_epochs * twin_epochs / epochs
        return cls(labelled, unlabelled, epochs,
                   teacher={"train_subset": labelled, "epochs": teacher_epochs, "evaluate_every": fits},
                   distilled={"train_subset": labelled, "unlabelled": unlabelled, "epochs": epochs,
                              "warmup_epochs": warmup_epochs},
                   twin={"train_subset": labelled, "epochs": twin_epochs, "warmup_epochs": twin_warmup,
                         "evaluate_every": max(1, round(twin_epochs / epochs))})

