"""The series' paired experiments, as data: what notebooks 08, 10 and 11 train, test and plan.

An experiment is a few settings (its variants) trained with the same seeds, and the pairs of
them it tests as one Holm family. Each is defined here once, so that the notebook that runs
it and ``benchmarks/pilots.py``, which measures its pilot on other seeds
(``titn_lite.results.pilots``), train the same runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from titn_lite.classroom.course import COURSE_TEACHER, STUDENT_PAIRS, Course, FewLabels, top1_by_seed
from titn_lite.models.students import list_models
from titn_lite.results.pilots import PILOT_SEEDS, PairPlan, Pilot, load_pilot
from titn_lite.results.stats import SeedResults
from titn_lite.train.run_folder import RunResult


@dataclass(frozen=True)
class Variant:
    """One setting of an experiment: a model and the ``course.run`` settings besides its seed."""

    model: str
    settings: dict[str, Any] = field(default_factory=dict)
    tag: str | None = None  # the run folder's name (a setting's own, where the model's would clash)


@dataclass(frozen=True)
class Experiment:
    """Variants trained with seeds 0 .. ``seeds`` - 1, ``pairs`` (first, second) tested as one
    family (paired by seed, Holm). ``name`` names its pilot (and its results record)."""

    name: str
    variants: dict[str, Variant]
    pairs: tuple[tuple[str, str], ...]
    seeds: int

    def runs(self, course: Course, seeds: Sequence[int] | None = None) -> dict[str, list[RunResult]]:
        """Every variant's runs at ``seeds`` (default: the experiment's), reused or trained in one
        ``Course.make_runs`` call (on a CPU, side by side where there are cores); the last variant
        first and the last seed first: notebook 08 trains its last variant (the large-patch TITN)
        first, and notebook 10, whose reference those runs are (its first variant), trains its own
        runs before it needs 08's."""
        seeds = list(range(self.seeds) if seeds is None else seeds)
        order = [(label, seed) for label in reversed(self.variants) for seed in reversed(seeds)]
        configs = [course.prepare_run(self.variants[label].model, tag=self.variants[label].tag, seed=seed,
                                      **self.variants[label].settings) for label, seed in order]
        made = dict(zip(order, course.make_runs(configs, label=f"{self.name}: runs"), strict=True))
        return {label: [made[label, seed] for seed in seeds] for label in self.variants}

    def accuracy(self, course: Course, seeds: Sequence[int] | None = None) -> dict[str, SeedResults]:
        """Each variant's test top-1 (percent) at ``seeds``."""
        return top1_by_seed(self.runs(course, seeds))

    def keys(self, course: Course) -> dict[str, str]:
        """Each variant's run identity at seed 0 (every setting but the seed): what a pilot matches."""
        return {label: course.prepare_run(v.model, tag=v.tag, **v.settings).key() for label, v in self.variants.items()}

    def plans(self, course: Course) -> tuple[list[PairPlan], str]:
        """Each pair's plan from the shipped pilot at the course's profile, for the pairs whose
        runs the pilot measured with these very settings, and a sentence saying where the plans
        come from (and, for pairs without one, how to measure it)."""
        measure = (f"measure one with `python benchmarks/pilots.py --profile {course.profile.name} "
                   f"--experiments {self.name}`")
        pilot = load_pilot(self.name, course.profile.name)
        if pilot is None:
            return [], f"no pilot of this experiment ships for the {course.profile.name} profile; {measure}"
        differ = set(pilot.matches(self.keys(course)))
        planned = [(first, second) for first, second in self.pairs if not {first, second} & differ]
        source = (f"from its pilot: the same runs on seeds {pilot.seeds[0]}-{pilot.seeds[-1]}, which the experiment "
                  "never uses")
        if differ:
            source += (f"; the pilot measured no runs like {', '.join(sorted(differ))} as set here, so their "
                       f"comparisons have no plan ({measure})")
        return pilot.plan(planned, self.seeds, len(self.pairs)), source

    def measure_pilot(self, course: Course, seeds: Sequence[int] = PILOT_SEEDS) -> Pilot:
        """Train the pilot: every variant at ``seeds`` (benchmarks/pilots.py)."""
        accuracy = self.accuracy(course, seeds)
        return Pilot(self.name, course.profile.name, tuple(seeds), self.keys(course),
                     {label: result.values for label, result in accuracy.items()})


def comparison(course: Course) -> Experiment:
    """Notebook 08: the five students at the profile, the five pairs behind Table 3's claims."""
    paired = {model for pair in STUDENT_PAIRS for model in pair}
    return Experiment("comparison", {model: Variant(model) for model in list_models() if model in paired},
                      STUDENT_PAIRS, course.profile.seeds)


# Notebook 10 ablates the large-patch TITN (Table 1's "TITN (Large Patch)", 16-pixel patches): the
# same inner/outer blocks, class and distillation tokens as TITN, at about a third of TITN's CPU time
# per run at the classroom profile (four patches of a 32x32 image instead of sixteen), so that the
# series fits a lesson; notebook 10 prints both models' measured seconds.
ABLATION_MODEL = "titn_large_patch"
ABLATION_REFERENCE = "TITN large patch (reference)"
# Notebook 10's changes, each against the reference: no teacher (both heads learn the true labels),
# and CutMix at the paper's alpha (§3.5.2), which the classroom profile leaves out.
ABLATION_CHANGES: dict[str, dict[str, Any]] = {"no teacher": {"distill": "none"},
                                               "CutMix (alpha 0.5)": {"mix": "cutmix", "mix_alpha": 0.5}}


def ablations(course: Course, changes: dict[str, dict[str, Any]] | None = None,
              seeds: int | None = None) -> Experiment:
    """Notebook 10: the large-patch TITN (``ABLATION_MODEL``) as notebook 08 trains it (the very same
    runs) and one change at a time (``changes``: label -> settings; default ``ABLATION_CHANGES``),
    each against the reference, with ``seeds`` seeds (default: the profile's)."""
    changes = ABLATION_CHANGES if changes is None else changes
    variants = {ABLATION_REFERENCE: Variant(ABLATION_MODEL)}
    variants.update({label: Variant(ABLATION_MODEL, dict(settings),
                                    "ablation-" + re.sub(r"\W+", "-", label).strip("-"))
                     for label, settings in changes.items()})
    return Experiment("ablations", variants, tuple((label, ABLATION_REFERENCE) for label in changes),
                      seeds or course.profile.seeds)


TWIN = "DeiT (twin)"


def unlabelled(course: Course, few: FewLabels, teacher: str, seeds: int | None = None) -> Experiment:
    """Notebook 11: DeiT distilled hard and soft from ``teacher`` (a run folder) on ``few``'s
    labelled and unlabelled images, and its twin: the same DeiT, on the labelled images alone,
    without a teacher, for about as many optimizer steps. Tested as one family: each distilled
    student against the twin, and soft against hard; ``seeds`` seeds (default: the profile's
    ``few_labels_seeds``)."""
    variants = {TWIN: Variant("deit", {"distill": "none", **few.twin}, "twin")}
    for mode in ("hard", "soft"):  # the teacher's argmax (eq. 10), or its whole softened distribution
        variants[f"DeiT {mode}"] = Variant("deit", {"distill": mode, "teacher": teacher, **few.distilled})
    seeds = seeds or course.profile.few_labels_seeds or course.profile.seeds
    return Experiment("unlabelled", variants, (("DeiT hard", TWIN), ("DeiT soft", TWIN), ("DeiT soft", "DeiT hard")),
                      seeds)


# Notebook 11's parameters cell starts from these (a test holds the two together).
FEW_LABELS = 512


def few_labels_teacher(course: Course, labelled: int = FEW_LABELS,
                       epochs: int | None = None) -> tuple[FewLabels, RunResult]:
    """Notebook 11's regime at the course's profile (``Course.few_labels``) and its teacher, a
    small CNN trained on the labelled images alone (made once, then reused)."""
    few = course.few_labels(labelled, epochs=epochs)
    return few, course.run(COURSE_TEACHER, **few.teacher, progress=False)
