"""Pilots and the plans they give: per pair, at the experiment's own runs, refused when the runs differ."""

import json
import statistics
from pathlib import Path

import pytest

from titn_lite.classroom import experiments
from titn_lite.classroom.course import Course
from titn_lite.results import pilots
from titn_lite.results.pilots import Pilot, load_pilot, save_pilot
from titn_lite.results.stats import detectable_difference, seed_results

ROOT = Path(__file__).resolve().parents[1]


def test_each_pair_is_planned_from_its_own_scatter_not_a_pooled_one():
    # "calm" moves with the reference seed for seed; "noisy" swings: pooled, both would get one figure.
    values = {"ref": (70.0, 72.0, 71.0, 73.0), "calm": (71.0, 73.1, 71.9, 74.0), "noisy": (75.0, 69.0, 74.0, 70.0)}
    pilot = Pilot("demo", "smoke", (100, 101, 102, 103), {}, values)
    calm, noisy = pilot.plan([("calm", "ref"), ("noisy", "ref")], seeds=3)
    assert calm.scatter == pytest.approx(statistics.stdev([1.0, 1.1, 0.9, 1.0]))
    assert noisy.scatter == pytest.approx(statistics.stdev([5.0, -3.0, 3.0, -3.0]))
    assert calm.detectable == pytest.approx(detectable_difference(calm.scatter, 3, 2))  # 3 seeds, a family of 2
    assert noisy.detectable > 20 * calm.detectable
    low, high = calm.scatter_range()  # a standard deviation from 4 values: the chi-square interval
    assert low < 1 < high and high == pytest.approx(3.73, abs=0.01)
    # hindsight: the same figure from the experiment's own seeds
    results = seed_results({"ref": [70, 71, 72], "calm": [72, 73, 74], "noisy": [70, 71, 72]})
    assert calm.hindsight(results) == 0.0  # its gaps did not scatter at all
    assert "the pilot's 4 seeds scatter by" in calm.describe()


def test_the_chance_of_a_hindsight_ratio_is_that_of_two_scatters_of_the_same_noise():
    import numpy as np

    plan = pilots.PairPlan("a", "b", scatter=1.0, pilot_seeds=4, seeds=3, comparisons=5)
    rng = np.random.default_rng(0)
    run = np.std(rng.normal(size=(200_000, 3)), axis=1, ddof=1)
    pilot = np.std(rng.normal(size=(200_000, 4)), axis=1, ddof=1)
    for ratio in (0.13, 0.5, 2.55):  # "this far from 1, either way": at or beyond the ratio or its inverse
        far = max(ratio, 1 / ratio)
        simulated = float(np.mean((run / pilot >= far) | (run / pilot <= 1 / far)))
        assert plan.chance_of_ratio(ratio) == pytest.approx(simulated, abs=0.01)
        assert plan.chance_of_ratio(ratio) == plan.chance_of_ratio(1 / ratio)
    results = seed_results({"a": [72.0, 73.0, 71.0], "b": [70.0, 71.5, 70.5]})
    realised = plan.hindsight(results) / plan.detectable
    chance = plan.chance_of_ratio(realised)
    assert f"{realised:.2f} x the plan; a ratio this far from 1, either way, comes {chance:.1%}" in \
        pilots.format_hindsight([plan], results)


def test_a_saved_pilot_reads_back_and_replaces_its_earlier_self(tmp_path):
    path = tmp_path / "pilots.json"
    first = Pilot("ablations", "smoke", (100, 101), {"a": "k1"}, {"a": (1.0, 2.0)})
    save_pilot(first, path=path)
    save_pilot(Pilot("ablations", "classroom", (100, 101), {"a": "k2"}, {"a": (3.0, 4.0)}), path=path)
    save_pilot(Pilot("ablations", "smoke", (100, 101, 102), {"a": "k3"}, {"a": (5.0, 6.0, 7.0)}), path=path)
    assert len(json.loads(path.read_text())) == 2
    assert load_pilot("ablations", "smoke", path=path).values == {"a": (5.0, 6.0, 7.0)}
    assert load_pilot("ablations", "paper", path=path) is None
    with pytest.raises(ValueError, match="two or more seeds and one value per seed"):
        save_pilot(Pilot("x", "smoke", (100, 101), {}, {"a": (1.0,)}), path=path)


def test_a_chapter_plans_only_the_pairs_whose_runs_the_pilot_measured(tmp_path, monkeypatch):
    course = Course("smoke", artifacts=tmp_path / "artifacts", progress=False)
    experiment = experiments.ablations(course)
    keys = experiment.keys(course)
    path = tmp_path / "pilots.json"
    monkeypatch.setattr(pilots, "pilots_path", lambda: path)
    plans, source = experiment.plans(course)
    assert plans == [] and "python benchmarks/pilots.py --profile smoke --experiments ablations" in source
    values = {label: (50.0 + i, 52.0 + 2 * i) for i, label in enumerate(experiment.variants)}
    save_pilot(Pilot("ablations", "smoke", (100, 101), keys, values), path=path)
    plans, source = experiment.plans(course)
    assert [(p.first, p.second) for p in plans] == list(experiment.pairs) and "seeds 100-101" in source
    # one change set another way: its runs are not the pilot's, so its comparison gets no plan
    changed = experiments.ablations(course, {**experiments.ABLATION_CHANGES, "no teacher": {"distill": "soft"}})
    plans, source = changed.plans(course)
    assert [p.first for p in plans] == ["CutMix (alpha 0.5)"] and "no runs like no teacher" in source
    assert plans[0].comparisons == 2  # still planned for the whole family


def test_the_shipped_smoke_pilots_measured_the_chapters_runs(tmp_path):
    """The pilots file ships with the kit; its smoke entries must match what notebooks 10 and 11 train
    at the smoke profile (a changed profile or experiment makes the chapters say they have no plan)."""
    course = Course("smoke", artifacts=tmp_path, progress=False)
    few, teacher = experiments.few_labels_teacher(course)
    for experiment in (experiments.ablations(course), experiments.unlabelled(course, few, str(teacher.out_dir))):
        plans, source = experiment.plans(course)
        assert len(plans) == len(experiment.pairs), source


def test_notebook_11_starts_from_the_regime_the_pilot_measured():
    parameters = "".join(json.loads((ROOT / "notebooks" / "11_unlabelled.ipynb").read_text())["cells"][1]["source"])
    assert f"few_labels = {experiments.FEW_LABELS} " in parameters
    assert "few_labels_epochs, few_labels_seeds = None, None" in parameters


def test_a_plan_is_off_either_way_beyond_the_same_bound():
    plan = pilots.PairPlan("a", "b", scatter=1.0, pilot_seeds=4, seeds=3, comparisons=1)
    steady = seed_results({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 2.0 - 0.05]})  # gaps scatter 0.03: far narrower
    wild = seed_results({"a": [5.0, 0.0, 4.0], "b": [0.0, 0.0, 0.0]})  # gaps 5, 0, 4: scatter 2.6, wider
    alike = seed_results({"a": [2.0, 1.0, 3.0], "b": [0.0, 0.0, 0.0]})  # scatter 1.0: on plan
    assert plan.off_plan(steady) == "narrower than planned" and plan.hindsight_ratio(steady) < 1 / pilots.OFF_PLAN
    assert plan.off_plan(wild) == "wider than planned" and plan.hindsight_ratio(wild) > pilots.OFF_PLAN
    assert plan.off_plan(alike) == "" and plan.hindsight_ratio(alike) == pytest.approx(1.0)


def test_the_pooled_interval_weighs_the_pilots_scatter_by_its_degrees_of_freedom():
    from scipy import stats

    plan = pilots.PairPlan("a", "b", scatter=3.0, pilot_seeds=4, seeds=3, comparisons=5)
    results = seed_results({"a": [10.0, 10.5, 10.2], "b": [0.0, 0.0, 0.0]})
    gaps = [10.0, 10.5, 10.2]
    pooled_sd = ((2 * statistics.variance(gaps) + 3 * 9.0) / 5) ** 0.5
    half = stats.t.ppf(1 - 0.01 / 2, 5) * pooled_sd / 3 ** 0.5  # simultaneous: 1 - 0.05 / 5 = 99%
    interval = plan.pooled_interval(results)
    assert interval.level == pytest.approx(0.99) and interval.family == 5
    assert interval.low == pytest.approx(statistics.fmean(gaps) - half)
    assert interval.high == pytest.approx(statistics.fmean(gaps) + half)


def test_a_ruling_from_seeds_that_scattered_little_is_checked_with_the_pilot_pooled_in():
    from titn_lite.results.stats import compare

    results = seed_results({"a": [10.0, 10.5, 10.2], "b": [0.0, 0.0, 0.0]})
    difference = compare(results["a"], results["b"], paired=True)  # a 95% interval of about 9.6 to 11
    noisy = pilots.PairPlan("a", "b", scatter=4.0, pilot_seeds=4, seeds=3, comparisons=1)
    text = pilots.read_effect(6.0, difference, noisy, results)
    assert text.startswith("outside this run's 95% interval") and "pooled in" in text
    assert "holds it: the ruling leans on these seeds' luck" in text  # at the pilot's scatter 6 fits
    calm = pilots.PairPlan("a", "b", scatter=0.3, pilot_seeds=4, seeds=3, comparisons=1)
    assert "pooled in" not in pilots.read_effect(6.0, difference, calm, results)  # on plan: nothing to check
    assert pilots.read_effect(10.3, difference, noisy, results).startswith("inside this run's")


def test_the_power_at_the_plan_is_what_the_plan_says():
    plan = pilots.PairPlan("a", "b", scatter=1.0, pilot_seeds=4, seeds=3, comparisons=2)
    assert plan.power_at(plan.caught_at_power) == pytest.approx(0.8, abs=1e-6)  # the 80% size, by its own definition
    assert 0.5 < plan.power_at(plan.detectable) < 0.8  # a little over half, with two degrees of freedom
    assert plan.power_at(0.0) < 0.05 and plan.power_at(-plan.caught_at_power) == pytest.approx(0.8, abs=1e-6)


def test_the_chance_a_right_plan_lands_off_is_that_of_two_scatters_of_the_same_noise():
    import numpy as np

    rng = np.random.default_rng(1)
    run = np.std(rng.normal(size=(200_000, 3)), axis=1, ddof=1)
    pilot = np.std(rng.normal(size=(200_000, 8)), axis=1, ddof=1)
    ratio = run / pilot
    simulated = float(np.mean((ratio > pilots.OFF_PLAN) | (ratio < 1 / pilots.OFF_PLAN)))
    assert pilots.chance_off_plan(3, 8) == pytest.approx(simulated, abs=0.01)
    assert pilots.chance_off_plan(5, 8) < pilots.chance_off_plan(3, 8)  # more seeds, a tighter estimate
    # at least k of several events: the binomial where the chances agree, and by hand where they do not
    assert pilots.chance_of_at_least([0.5] * 4, 3) == pytest.approx(5 / 16)
    assert pilots.chance_of_at_least([0.2, 0.5], 1) == pytest.approx(1 - 0.8 * 0.5)
    assert pilots.chance_of_at_least([0.2, 0.5], 0) == pytest.approx(1.0)
    assert pilots.chance_of_at_least([0.2, 0.5], 3) == 0.0


def test_the_results_page_weighs_the_plans_that_landed_off_against_chance(tmp_path):
    from titn_lite.results.report import results_page_markdown

    course = Course("smoke", artifacts=tmp_path)
    values = {"a": [80.0, 81.0, 82.5], "b": [79.0, 80.9, 80.0], "c": [78.0, 80.0, 79.1]}
    course.record_results("comparison", title="Students", setting="-", values=values, pairs=[("a", "b"), ("c", "b")],
                          detectable={"a − b": 2.0, "c − b": 2.0}, hindsight={"a − b": 3.5, "c − b": 2.2},
                          pilot_seeds=8)
    page = results_page_markdown("smoke", course.results())
    chance = pilots.chance_of_at_least([pilots.chance_off_plan(3, 8)] * 2, 1)
    assert "The plans: 1 of 2 hindsight figures landed more than 1.5 times off their plans: a − b (1.75 x)" in page
    assert f"chance alone would put 1 or more that far off in {chance:.0%} of runs" in page
    alone = pilots.chance_of_ratio(1.75, 3, 8)  # the farthest off, read alone and as the most extreme of the two
    extreme = 1 - (1 - alone) ** 2
    assert f"The farthest off, a − b at 1.75 x, comes {alone:.1%} of the time alone and {extreme:.0%}" in page
    course.record_results("comparison", title="Students", setting="-", values=values, pairs=[("a", "b")],
                          detectable={"a − b": 2.0}, hindsight={"a − b": 3.5})  # no pilot said: no line
    assert "The plans:" not in results_page_markdown("smoke", course.results())


def test_a_plan_far_off_names_the_seed_that_moved_it_and_how_rare_that_is():
    plan = pilots.PairPlan("soft", "hard", scatter=0.44, pilot_seeds=8, seeds=5, comparisons=3)
    far_out = seed_results({"soft": [75.2, 76.3, 75.9, 76.1, 76.0], "hard": [73.1, 70.2, 72.7, 72.0, 72.0]})
    reading = plan.read_off_plan(far_out)
    assert reading.startswith("seed 1's difference (+6.1) lies farthest from their mean (+3.9)")
    assert "rare, so this pair's differences may scatter with heavier tails" in reading
    shown = pilots.format_hindsight([plan], far_out)  # the hindsight line carries the reading
    assert shown.splitlines()[0].startswith("with 5 seeds against the pilot's 8, a right plan's hindsight figure")
    assert "3.3" in shown and f"wider than planned (more than 1.5 x off): {reading}" in shown
    lucky = pilots.PairPlan("soft", "hard", scatter=0.9, pilot_seeds=8, seeds=5, comparisons=3)
    assert plan.chance_of_ratio(plan.hindsight_ratio(far_out)) < 0.05 <= lucky.chance_of_ratio(
        lucky.hindsight_ratio(far_out))
    assert "common enough to be the seeds' luck" in lucky.read_off_plan(far_out)
    on_plan = pilots.PairPlan("soft", "hard", scatter=1.47, pilot_seeds=8, seeds=5, comparisons=3)
    assert on_plan.read_off_plan(far_out) == ""
    assert "without it the mean is +3.4 (paired t-test p 0.005, unadjusted)" in reading  # the verdict without seed 1
    among = plan.read_off_plan(far_out, family=3)  # the farthest off of three is less surprising than one alone
    extreme = 1 - (1 - plan.chance_of_ratio(plan.hindsight_ratio(far_out))) ** 3
    assert f"{extreme:.1%} for the most extreme of 3" in among
    calm = seed_results({"soft": [75.0, 76.0, 75.5], "hard": [73.0, 74.1, 73.4]})
    narrow = pilots.PairPlan("soft", "hard", scatter=1.5, pilot_seeds=8, seeds=3, comparisons=3).read_off_plan(calm)
    assert narrow.startswith("the seeds' differences lie close together (+1.9 to +2.1)") and "seed" not in narrow[30:60]


def test_the_results_page_flags_a_knife_edge_ruling_and_a_verdict_whose_seeds_scattered_off_plan(tmp_path):
    from titn_lite.results.report import results_page_markdown
    from titn_lite.results.stats import compare

    course = Course("smoke", artifacts=tmp_path)
    values = {"soft": [75.2, 76.3, 75.9, 76.1, 76.0], "hard": [73.1, 70.2, 72.7, 72.0, 72.0]}
    low = compare(*seed_results(values).values(), paired=True).interval.low  # one comparison: its 95% interval
    course.record_results("regimes", title="Regimes", setting="-", values=values, pairs=[("soft", "hard")],
                          detectable={"soft − hard": 0.78}, hindsight={"soft − hard": 2.56}, pilot_seeds=8,
                          claims={"soft − hard": low - 0.02})
    page = results_page_markdown("smoke", course.results())
    chance = pilots.chance_of_ratio(2.56 / 0.78, 5, 8)
    caveat = (f"wider than planned: its seeds scattered 3.28 x as planned, which chance gives {chance:.1%} of the time "
              "under normal noise")
    assert caveat in page.split("## Regimes")[0]  # the findings carry it beside the verdict
    assert "outside by only 0.02 points, a knife edge" in page
    course.record_results("regimes", title="Regimes", setting="-", values=values, pairs=[("soft", "hard")],
                          detectable={"soft − hard": 2.5}, hindsight={"soft − hard": 2.56}, pilot_seeds=8,
                          claims={"soft − hard": low - 1.0})
    page = results_page_markdown("smoke", course.results())
    assert "knife edge" not in page and "scattered" not in page.split("## Regimes")[0]
