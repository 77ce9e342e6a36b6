"""The course's shared settings for notebooks 10 and 11: the short warm-up and notebook 08's scatter."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from titn_lite.classroom.course import STUDENT_PAIRS, WARMUP_SHARE, Course, short_warmup
from titn_lite.train.profiles import get_profile


def test_the_short_warm_up_is_at_most_an_eighth_of_the_run_and_never_longer_than_the_profiles():
    classroom = get_profile("classroom")
    assert short_warmup(classroom, 4) == 0.5 == 4 * WARMUP_SHARE < classroom.warmup_epochs
    assert short_warmup(classroom, 40) == classroom.warmup_epochs  # a long run keeps the profile's one epoch
    assert short_warmup(get_profile("smoke"), 4) == 0  # the smoke profile warms up not at all


def test_an_experiment_asks_for_each_seed_run_once_last_to_first(tmp_path, monkeypatch):
    from titn_lite.classroom.experiments import comparison

    top1 = {"vit": [0.70, 0.72, 0.71], "deit": [0.73, 0.72, 0.74], "tnt": [0.75, 0.74, 0.77],
            "titn": [0.76, 0.78, 0.77], "titn_large_patch": [0.60, 0.61, 0.63]}
    asked = []

    def make_runs(self, configs, **kwargs):  # one call for every run: they can train side by side
        asked.extend((config.model, config.seed) for config in configs)
        return [SimpleNamespace(metrics=SimpleNamespace(top1=top1[config.model][config.seed])) for config in configs]

    monkeypatch.setattr(Course, "make_runs", make_runs)
    course = Course("classroom", artifacts=tmp_path)
    accuracy = comparison(course).accuracy(course)
    assert {m: list(r.values) for m, r in accuracy.items()} == {m: [100 * v for v in vs] for m, vs in top1.items()}
    assert sorted(asked) == sorted((m, seed) for m in top1 for seed in range(3))  # each seed run asked for once
    # last to first: notebook 10's reference (08's TITN runs, its first variant) comes last
    assert asked[0] == ("titn_large_patch", 2) and asked[-1] == ("vit", 0)
    assert comparison(course).pairs == STUDENT_PAIRS


def test_a_course_names_a_registered_profile_and_refuses_a_changed_copy(tmp_path):
    import dataclasses

    assert Course("smoke", artifacts=tmp_path).profile == get_profile("smoke")
    assert Course(get_profile("smoke"), artifacts=tmp_path).profile.name == "smoke"
    with pytest.raises(ValueError, match="was changed: name the profile instead"):
        Course(dataclasses.replace(get_profile("smoke"), epochs=7), artifacts=tmp_path)
