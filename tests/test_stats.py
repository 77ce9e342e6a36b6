"""Seeds, spreads and the noise test (titn_lite.results.stats), and the results page built on them."""

import math

import pytest
from markdown_tables import alignment, header, row_starting, table_rows
from scipy import stats as scipy_stats

from titn_lite.classroom.course import Course
from titn_lite.results.report import results_page_markdown
from titn_lite.results.stats import (
    Difference,
    Interval,
    SeedResults,
    compare,
    compare_pairs,
    detectable_difference,
    first_epoch_reaching,
    format_differences,
    format_seed_table,
    holm,
    mean_history,
    paired_scatter,
    seed_results,
    sign_flip_p,
    smallest_sign_flip_p,
)


def test_mean_and_sample_standard_deviation():
    result = SeedResults("vit", (80.0, 82.0, 84.0))
    assert result.mean == pytest.approx(82.0)
    assert result.std == pytest.approx(2.0)  # n - 1 in the denominator: sqrt(8 / 2)
    assert result.describe() == "82.0 ± 2.0"
    single = SeedResults("deit", (81.5,))
    assert math.isnan(single.std) and single.describe() == "81.5"
    with pytest.raises(ValueError, match="no measurements"):
        SeedResults("tnt", ())


def test_a_gap_far_larger_than_the_scatter_exceeds_the_noise_and_overlapping_seeds_do_not():
    results = seed_results({"a": [85.1, 85.6, 84.9], "b": [80.2, 80.8, 80.5], "c": [80.9, 79.6, 81.4]})
    clear = compare(results["a"], results["b"])
    assert clear.difference == pytest.approx(results["a"].mean - results["b"].mean)
    assert clear.exceeds_noise and clear.low > 0 and clear.verdict() == "beyond the noise"
    overlapping = compare(results["c"], results["b"])
    assert not overlapping.exceeds_noise and overlapping.low < 0 < overlapping.high
    assert overlapping.verdict() == "within the noise"


def test_welch_p_value_matches_the_formula_written_out():
    a, b = (70.4, 66.25, 66.8), (71.4, 68.9, 67.7)
    ra, rb = SeedResults("a", a), SeedResults("b", b)
    va, vb = ra.std ** 2 / 3, rb.std ** 2 / 3
    t = (ra.mean - rb.mean) / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 2)  # Welch-Satterthwaite
    expected = 2 * scipy_stats.t.sf(abs(t), dof)
    assert compare(ra, rb).p_value == pytest.approx(expected)


def test_the_paired_test_is_scipys_ttest_rel_and_needs_the_same_seeds():
    a, b = SeedResults("a", (70.4, 66.25, 66.8)), SeedResults("b", (71.6, 67.5, 67.9))
    paired = compare(a, b, paired=True)
    reference = scipy_stats.ttest_rel(a.values, b.values)
    assert paired.test == "paired" and paired.p_value == pytest.approx(reference.pvalue)
    interval = reference.confidence_interval(0.95)
    assert (paired.low, paired.high) == pytest.approx((interval.low, interval.high))
    # Seed k of both sides shares the data order: the common swings cancel, so a steady gap is
    # found where Welch's test, blind to the pairing, cannot see it.
    assert paired.p_value < 0.05 < compare(a, b).p_value
    with pytest.raises(ValueError, match="same seeds on both sides"):
        compare(a, SeedResults("c", (70.0, 71.0)), paired=True)


def test_holm_adjusts_every_reported_p_and_leaves_untestable_ones_out():
    differences = [Difference("a", "x", 1.0, 0, 2, 0.01), Difference("b", "x", 1.0, 0, 2, 0.04),
                   Difference("c", "x", 1.0, 0, 2, math.nan), Difference("d", "x", 1.0, 0, 2, 0.03)]
    adjusted = holm(differences)
    # sorted p: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to 0.06 (never below the one before)
    assert [adjusted[i].adjusted_p for i in (0, 1, 3)] == pytest.approx([0.03, 0.06, 0.06])
    assert adjusted[2].adjusted_p is None and {d.family for d in adjusted} == {3}  # the NaN is not counted in m
    assert [d.first for d in adjusted] == ["a", "b", "c", "d"]  # in the order given, not sorted by p
    assert [d.exceeds_noise for d in adjusted] == [True, False, False, False]  # 0.04 and 0.03 alone would pass
    assert [d.exceeds_noise for d in differences] == [True, True, False, True]
    assert "Holm-adjusted p = 0.060" in adjusted[1].describe()


def test_compare_pairs_pairs_by_seed_and_corrects_over_the_page():
    results = seed_results({"a": [85.1, 85.6, 84.9], "b": [80.2, 80.8, 80.5], "c": [80.9, 79.6, 81.4]})
    differences = compare_pairs(results, [("a", "b"), ("c", "b"), ("a", "c")])
    assert all(d.test == "paired" and d.adjusted_p is not None for d in differences)
    assert [d.adjusted_p for d in differences] == pytest.approx(
        [min(1, 3 * differences[0].p_value), differences[1].p_value, max(min(1, 2 * differences[2].p_value),
                                                                          min(1, 3 * differences[0].p_value))])
    table = format_differences(differences)
    assert header(table)[-5:] == ["test", "p", "exact sign-flip p", "Holm p", "verdict"]
    assert alignment(table) == "lrrrlrrrl" and row_starting(table, "a − b")[:2] == ["a − b", "+4.7"]
    with pytest.raises(ValueError, match="pairs name z"):
        compare_pairs(results, [("z", "a")])


def test_one_seed_or_no_scatter_cannot_be_tested():
    results = seed_results({"a": [80.0], "b": [81.0, 82.0], "c": [75.0, 75.0], "d": [75.0, 75.0]})
    for first, second in (("a", "b"), ("c", "d")):
        difference = compare(results[first], results[second])
        assert not difference.testable and not difference.exceeds_noise
        assert "cannot tell" in difference.describe()


def test_tables_show_every_seed_and_every_verdict():
    results = seed_results({"vit": [80.0, 82.0], "titn": [90.0, 91.0]})
    table = format_seed_table(results)
    assert header(table) == ["setting", "mean ± std", "each seed", "seeds"] and alignment(table) == "lrlr"
    assert row_starting(table, "vit") == ["vit", "81.0 ± 1.4", "80.0, 82.0", "2"]
    differences = format_differences([compare(results["titn"], results["vit"])])
    assert row_starting(differences, "titn − vit")[:2] == ["titn − vit", "+9.5"]
    assert table_rows(differences)[-1][-1] in ("beyond the noise", "within the noise")  # every row ends on its verdict


def test_results_page_gathers_the_records_with_their_tests(tmp_path):
    course = Course("smoke", artifacts=tmp_path)
    assert results_page_markdown("smoke", course.results()) == ""  # nothing recorded yet
    course.record_results("comparison", title="The five students",
                          setting="2 epochs", values={"titn": [84.0, 85.0, 84.5], "tnt": [79.0, 80.5, 79.2]},
                          pairs=[("titn", "tnt")], paper_top1={"titn": 74.71, "tnt": 68.47},
                          detectable={"titn − tnt": 2.5}, hindsight={"titn − tnt": 1.5})
    course.record_results("teacher", title="The CNN teacher", setting="one seed", values={"small_cnn": [88.0]})
    page = results_page_markdown("smoke", course.results())
    assert page.index("## The CNN teacher") < page.index("## The five students")  # the series' order, not the records'
    assert row_starting(page, "titn") == ["titn", "84.5 ± 0.5", "84.0, 85.0, 84.5"]  # no CIFAR-100 accuracy beside it
    difference = row_starting(page, "titn − tnt")
    assert difference[1] == "+4.9" and "paired" in difference and "beyond the noise" in page
    assert "titn − tnt beyond the noise from 2.5 points (1.5 in hindsight" in page  # the chapter's plan, and after
    assert "an interval narrower than planned: 1.5 against 2.5 in hindsight" in page  # the gap's reading says so
    low, high = compare(*seed_results({"titn": [84.0, 85.0, 84.5], "tnt": [79.0, 80.5, 79.2]}).values(),
                        paired=True).interval
    assert high < 74.71 - 68.47
    assert f"titn − tnt +6.24 (outside this run's {low:+.1f} to {high:+.1f}, an interval" in page
    assert "exploratory" not in page
    assert page.startswith("# What the `smoke` series measured")
    course.clear_results()  # a new series run starts from no records
    assert course.results() == []


def test_a_record_must_name_a_known_section_and_measured_pairs(tmp_path):
    course = Course("smoke", artifacts=tmp_path)
    with pytest.raises(ValueError, match="unknown results record"):
        course.record_results("tables", title="", setting="", values={"a": [1.0]})
    with pytest.raises(ValueError, match="pairs name deit"):
        course.record_results("comparison", title="", setting="", values={"vit": [1.0]}, pairs=[("deit", "vit")])


def test_tables_print_their_markdown_and_display_as_tables():
    """print() and the CLI show the Markdown source; Jupyter typesets it (no monospace block)."""
    from IPython.core.formatters import DisplayFormatter

    table = format_seed_table(seed_results({"vit": [70.0, 72.0], "deit": [71.0, 73.5]}))
    assert header(str(table)) == ["setting", "mean ± std", "each seed", "seeds"]
    shown, _ = DisplayFormatter().format(table)
    assert shown["text/markdown"] == str(table) == shown["text/plain"]
    differences = format_differences([compare(*seed_results({"a": [1.0, 2.0], "b": [3.0, 4.5]}).values())])
    assert header(DisplayFormatter().format(differences)[0]["text/markdown"])[0] == "comparison"


def test_first_epoch_reaching_averages_the_seeds_curves():
    histories = [[{"val_top1": v} for v in (0.5, 0.7, 0.8)], [{"val_top1": v} for v in (0.6, 0.7, 0.9)]]
    assert first_epoch_reaching(histories, 0.7) == 2  # the mean (0.70) reaches it, not one seed's 0.6 at epoch 1
    assert first_epoch_reaching(histories, 0.56) == 2  # 0.55 at epoch 1 falls short of it
    assert first_epoch_reaching(histories, 0.85) == 3
    assert first_epoch_reaching(histories, 0.9) is None


def test_the_results_page_also_tests_every_difference_together(tmp_path):
    """Each section corrects over its own table; the last section over the whole page, so a
    difference beyond the noise in a table of two can fall within it among all of the page's."""
    course = Course("smoke", artifacts=tmp_path)
    students = {"deit": [80.0, 81.0, 80.4], "vit": [79.1, 80.4, 79.5], "tnt": [78.0, 81.0, 79.0]}
    course.record_results("comparison", title="The students", setting="-", values=students,
                          pairs=[("deit", "vit"), ("tnt", "vit")])
    regimes = {"soft": [80.05, 80.0, 80.05], "twin": [76.05, 77.6, 76.4], "hard": [75.65, 76.55, 76.55]}
    course.record_results("regimes", title="Few labels", setting="-", values=regimes,
                          pairs=[("hard", "twin"), ("soft", "twin")], exploratory=True)
    page = results_page_markdown("smoke", course.results())
    whole = page[page.index("## Every difference on this page"):]
    assert "over all 4 testable differences" in whole and row_starting(whole, "Few labels: soft − twin")
    assert "These verdicts are exploratory" in page and "(not so for “Few labels”: exploratory)" in whole
    raw = [compare(seed_results(students)[a], seed_results(students)[b], paired=True) for a, b in
           [("deit", "vit"), ("tnt", "vit")]] + [compare(seed_results(regimes)[a], seed_results(regimes)[b],
                                                         paired=True) for a, b in [("hard", "twin"), ("soft", "twin")]]
    table, _, reconciled = whole.partition("\n\nVerdicts that change with the family: ")
    assert table.count(" − ") == 4  # one row per difference
    soft = holm(raw)[3]
    assert (f"{soft.adjusted_p:.3f}" in whole
            and soft.adjusted_p > holm(raw[2:])[1].adjusted_p)  # stricter than its table's
    assert holm(raw[2:])[1].exceeds_noise and not soft.exceeds_noise  # so the page says its verdict changed
    assert "Few labels: soft − twin (beyond the noise in its section, within it here)" in reconciled
    one = Course("smoke", artifacts=tmp_path / "one")
    one.record_results("regimes", title="Few labels", setting="-", values=regimes,
                       pairs=[("hard", "twin"), ("soft", "twin")])
    assert "Every difference" not in results_page_markdown("smoke", one.results())  # one table: nothing to add


def test_constant_paired_gaps_are_untestable_whatever_each_sides_spread():
    """Equal per-seed differences leave the paired test nothing to weigh the mean gap against:
    no p-value, and the verdict says why, though each side scatters from seed to seed."""
    a, b = SeedResults("a", (80.0, 81.0, 82.5)), SeedResults("b", (79.5, 80.5, 82.0))
    assert a.std > 1 and b.std > 1  # each side moves by more than a point
    constant = compare(a, b, paired=True)
    assert constant.difference == pytest.approx(0.5)
    assert not constant.testable and math.isnan(constant.p_value) and not constant.exceeds_noise
    assert "cannot tell" in constant.describe() and "all equal" in constant.verdict()
    assert "p = 0.000" not in constant.describe() and "beyond the noise" not in constant.describe()
    assert format_differences([constant]).count("cannot tell") == 1
    # Gaps equal only to rounding error count as equal; gaps that differ a little are tested.
    rounded = compare(SeedResults("a", (80.1, 81.3, 82.7)), SeedResults("b", (79.6, 80.8, 82.2)), paired=True)
    assert not rounded.testable
    varied = compare(a, SeedResults("b", (79.5, 80.4, 82.0)), paired=True)
    assert varied.testable and varied.p_value > 0


def test_every_interval_carries_its_coverage_and_the_simultaneous_one_agrees_with_bonferroni():
    """Beside a family's verdicts the interval is Bonferroni's simultaneous one, at 1 - 0.05/m:
    it excludes 0 exactly when m p < 0.05, and then Holm (never stricter) agrees; the plain 95%
    interval stays available under its own name."""
    results = seed_results({"a": [81.0, 82.1, 83.4], "b": [80.2, 80.9, 81.5], "c": [80.6, 81.2, 82.1],
                            "d": [84.0, 85.2, 86.1], "e": [80.9, 81.9, 82.3]})
    differences = compare_pairs(results, [("a", "b"), ("c", "b"), ("d", "b"), ("e", "b")])
    assert any(d.plain_interval.excludes(0) and not d.interval.excludes(0) for d in differences), "the case it is for"
    assert any(d.interval.excludes(0) for d in differences)
    for d in differences:
        assert d.family == 4 and d.level == 0.95
        plain, joint = d.plain_interval, d.interval
        assert isinstance(joint, Interval) and joint.level == pytest.approx(1 - 0.05 / 4)
        assert joint.name == "simultaneous 98.8% interval (Bonferroni, m = 4)" and plain.name == "95% interval"
        assert joint.excludes(0) == (d.bonferroni_p < 0.05) and d.bonferroni_p == pytest.approx(min(1, 4 * d.p_value))
        assert not joint.excludes(0) or d.exceeds_noise  # Holm's adjusted p is never above Bonferroni's
        reference = scipy_stats.ttest_rel(results[d.first].values, results[d.second].values)
        assert tuple(joint) == pytest.approx(tuple(reference.confidence_interval(1 - 0.05 / 4)))
        assert tuple(plain) == pytest.approx(tuple(reference.confidence_interval(0.95))) == (d.low, d.high)
        assert joint.low < plain.low and joint.high > plain.high
        assert joint.name in d.describe() and "95% interval" in d.describe()
    alone = compare(results["a"], results["b"], paired=True)
    assert alone.interval == (alone.low, alone.high) and alone.interval.level == 0.95
    assert alone.interval_name == "95% interval" and "simultaneous" not in alone.describe()
    table = format_differences(differences)
    assert header(table)[2:4] == ["95% interval", "simultaneous 98.8% interval (Bonferroni, m = 4)"]
    assert "{:+.1f} to {:+.1f}".format(*differences[0].interval) in table
    low, high = differences[2].interval  # unpacks like a pair
    assert (low, high) == (differences[2].interval.low, differences[2].interval.high)
    with pytest.raises(ValueError, match="between 0 and 1"):
        Interval(0.0, 1.0, 95)


def test_the_bonferroni_interval_matches_its_adjusted_p_on_random_data():
    rng = __import__("numpy").random.default_rng(1)
    agreed = {True: 0, False: 0}
    for trial in range(200):
        seeds, m = int(rng.integers(3, 6)), int(rng.integers(2, 6))
        base = rng.normal(80, 1, seeds)
        results = {"ref": SeedResults("ref", tuple(base))}
        for k in range(m):
            results[f"v{k}"] = SeedResults(f"v{k}", tuple(base + rng.normal(rng.normal(0, 1.5), 0.7, seeds)))
        for d in compare_pairs(results, [(f"v{k}", "ref") for k in range(m)]):
            assert d.interval.excludes(0) == (d.bonferroni_p < 0.05), (trial, d)
            agreed[d.interval.excludes(0)] += 1
    assert min(agreed.values()) > 20  # both outcomes were exercised


def test_the_sign_flip_test_of_three_seeds_cannot_go_below_a_quarter():
    assert sign_flip_p([0.4, 1.1, 2.0]) == 0.25  # all positive: only it and its mirror image are as extreme
    assert sign_flip_p([-0.4, -1.1, -2.0]) == 0.25 and sign_flip_p([0.5, 0.5, 0.5]) == 0.25
    assert smallest_sign_flip_p(3) == 0.25 and smallest_sign_flip_p(5) == 0.0625
    # 3, -1, 1 sums to 3; the 8 patterns sum to ±1 (two), ±3 (four) and ±5 (two): 6 are as far from 0
    assert sign_flip_p([3.0, -1.0, 1.0]) == 0.75
    assert sign_flip_p([0.0, 0.0, 0.0]) == 1.0
    # The comparison reports it beside the t-test, whose p can be far smaller with the same three seeds.
    a, b = SeedResults("a", (84.0, 85.2, 86.1)), SeedResults("b", (80.2, 80.9, 81.5))
    paired = compare(a, b, paired=True)
    assert paired.sign_flip_p == 0.25 and paired.p_value < 0.01
    assert "exact sign-flip p = 0.250" in paired.describe()
    table = format_differences([paired])
    assert row_starting(table, "a − b")[header(table).index("exact sign-flip p")] == "0.250"
    assert compare(a, b).sign_flip_p is None  # Welch's test: no pairs to flip
    with pytest.raises(ValueError, match="at least one"):
        sign_flip_p([])


def test_the_sign_flip_p_is_a_brute_force_count_of_the_sign_patterns():
    import itertools

    rng = __import__("numpy").random.default_rng(2)
    for _ in range(60):
        n = int(rng.integers(2, 9))
        gaps = [float(g) for g in rng.normal(0.3, 1.0, n)]
        observed = abs(sum(gaps)) / n
        as_extreme = sum(abs(sum(s * g for s, g in zip(signs, gaps))) / n >= observed - 1e-12
                         for signs in itertools.product((1, -1), repeat=n))
        expected = as_extreme / 2 ** n
        assert sign_flip_p(gaps) == pytest.approx(expected), gaps
        assert sign_flip_p(gaps) >= smallest_sign_flip_p(n)
        values = [80.0 + g for g in gaps]
        assert compare(SeedResults("a", tuple(values)), SeedResults("b", (80.0,) * n),
                       paired=True).sign_flip_p == pytest.approx(expected)


def test_welchs_unpaired_test_matches_scipy_and_its_interval_the_hand_formula():
    """The unpaired option, for settings whose seeds share no randomness: Welch's t-test."""
    a, b = SeedResults("a", (70.4, 66.25, 66.8, 69.0)), SeedResults("b", (71.4, 68.9, 67.7))
    welch = compare(a, b)
    reference = scipy_stats.ttest_ind(a.values, b.values, equal_var=False)
    assert welch.test == "Welch" and welch.p_value == pytest.approx(reference.pvalue)
    assert welch.df == pytest.approx(reference.df)
    va, vb = a.std ** 2 / a.count, b.std ** 2 / b.count
    dof = (va + vb) ** 2 / (va ** 2 / (a.count - 1) + vb ** 2 / (b.count - 1))
    half = scipy_stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    assert (welch.low, welch.high) == pytest.approx((a.mean - b.mean - half, a.mean - b.mean + half))
    assert welch.interval.level == 0.95 and welch.sign_flip_p is None
    unpaired = compare_pairs({"a": a, "b": b, "c": SeedResults("c", (60.0, 61.5, 60.2))}, [("a", "b"), ("a", "c")],
                             paired=False)
    assert [d.test for d in unpaired] == ["Welch", "Welch"] and unpaired[0].p_value == pytest.approx(reference.pvalue)
    assert unpaired[0].interval.name == "simultaneous 97.5% interval (Bonferroni, m = 2)"
    assert "exact sign-flip" not in format_differences(unpaired)


def test_the_detectable_difference_is_the_t_threshold_holm_sets_and_grows_with_the_family():
    # 3 seeds, one test: t(0.975, 2) = 4.303 standard errors of s / sqrt(3)
    assert detectable_difference(1.0, 3, 1) == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)
    # Holm tests the smallest of 6 p-values at 0.05 / 6: the threshold the issue quotes (|t| > 10.9)
    assert detectable_difference(1.0, 3, 6) * math.sqrt(3) == pytest.approx(scipy_stats.t.ppf(1 - 0.05 / 12, 2))
    assert detectable_difference(0.8, 5, 2) < detectable_difference(0.8, 3, 2) < detectable_difference(0.8, 3, 7)
    # With power: the effect a simulated design catches that often, by the noncentral t.
    effect = detectable_difference(1.0, 4, 2, power=0.8)
    critical = scipy_stats.t.ppf(1 - 0.05 / 4, 3)
    shift = effect / (1.0 / 2)
    caught = scipy_stats.nct.sf(critical, 3, shift) + scipy_stats.nct.cdf(-critical, 3, shift)
    assert caught == pytest.approx(0.8, abs=1e-6) and effect > detectable_difference(1.0, 4, 2)
    with pytest.raises(ValueError, match="two or more seeds"):
        detectable_difference(1.0, 1)
    with pytest.raises(ValueError, match="probability"):
        detectable_difference(1.0, 3, power=1.5)


def test_a_simulated_design_calls_its_detectable_difference_beyond_the_noise_about_half_the_time():
    rng = __import__("numpy").random.default_rng(0)
    scatter, seeds, threshold = 1.0, 4, detectable_difference(1.0, 4, 1)
    calls = [compare(SeedResults("a", tuple(gaps)), SeedResults("b", (0.0,) * seeds), paired=True).exceeds_noise
             for gaps in rng.normal(threshold, scatter, size=(2000, seeds))]
    assert 0.40 < sum(calls) / len(calls) < 0.60


def test_paired_scatter_pools_the_per_seed_differences_of_the_pairs():
    results = seed_results({"a": [1.0, 2.0, 3.0], "b": [0.0, 0.0, 0.0], "c": [1.0, 1.0, 1.0]})
    # a - b: 1, 2, 3 (variance 1); c - b: 1, 1, 1 (variance 0); pooled sqrt(0.5)
    assert paired_scatter(results, [("a", "b"), ("c", "b")]) == pytest.approx(math.sqrt(0.5))
    with pytest.raises(ValueError, match="two or more seeds"):
        paired_scatter(seed_results({"a": [1.0], "b": [2.0]}), [("a", "b")])


def test_mean_history_averages_the_seeds_epoch_by_epoch_at_their_steps():
    histories = [[{"epoch": 1, "val_top1": 0.5, "train_top1": 0.4}, {"epoch": 2, "val_top1": 0.7, "train_top1": 0.8}],
                 [{"epoch": 1, "val_top1": 0.3, "train_top1": 0.2}, {"epoch": 2, "val_top1": 0.5, "train_top1": 0.6}]]
    curve = mean_history(histories, steps_per_epoch=31)
    assert curve == [pytest.approx({"epoch": 1, "steps": 31, "val_top1": 0.4, "train_top1": 0.3}),
                     pytest.approx({"epoch": 2, "steps": 62, "val_top1": 0.6, "train_top1": 0.7})]


def test_the_page_says_what_it_found_and_which_rulings_the_wider_family_undoes(tmp_path):
    course = Course("smoke", artifacts=tmp_path)
    course.record_results("teacher", title="The CNN teacher", setting="one seed", values={"small_cnn": [88.0]})
    students = {"deit": [80.0, 81.0, 80.4], "vit": [79.1, 80.4, 79.5]}
    course.record_results("comparison", title="The students", setting="-", values=students, pairs=[("deit", "vit")])
    ablations = {"none": [79.0, 79.4, 79.1], "ref": [79.2, 79.5, 79.4]}
    course.record_results("ablations", title="Ablations", setting="-", values=ablations, pairs=[("none", "ref")],
                          claims={"none − ref": -0.55})
    regimes = {"soft": [80.05, 80.0, 80.05], "twin": [76.05, 77.6, 76.4]}
    course.record_results("regimes", title="Few labels", setting="-", values=regimes, pairs=[("soft", "twin")],
                          exploratory=True)
    page = results_page_markdown("smoke", course.results())
    assert header(page)[:2] == ["setting", "top-1 %"]  # the teacher's one seed: no "mean ± std"
    found = page[page.index("## What this run found"):page.index("## The CNN teacher")]
    section = {title: compare(*seed_results(values).values(), paired=True) for title, values in
               (("The students", students), ("Ablations", ablations), ("Few labels", regimes))}
    for title, difference in section.items():  # each line follows its section's verdict
        assert f"{title}: {int(difference.exceeds_noise)} of 1 differences beyond the noise" in found
    assert "Exploratory:" in found.split("Few labels")[1]
    if section["Few labels"].exceeds_noise:  # 3 seeds: the sign-flip floor, 0.25, is above 0.05
        assert "the exact sign-flip test cannot confirm it" in found.split("Few labels")[1]
    alone = section["Ablations"].interval
    together = holm([section["The students"], section["Ablations"], section["Few labels"]])[1].interval
    assert alone.excludes(-0.55) and not together.excludes(-0.55)  # the section rules it out, the page does not
    assert "Rulings that change with the family: the chapter's yardstick -0.55 for Ablations: none − ref" in page
