"""Results a student can trust: one setting trained with several seeds, its mean and spread,
and a test of whether two settings differ by more than the seeds scatter on their own.

A seed changes the initial weights, the data order, the augmentation and the mixing, so two
runs of the *same* model already differ by a point or so after a short run. A difference
between two settings means something only when it is large against that scatter.

- When the two settings were trained with the same seeds (the kit's runs are: seed k of
  every setting sees the same data order, and of one architecture the same initial
  weights), the runs come in pairs and the test is the **paired t-test** on the per-seed
  differences (``scipy.stats.ttest_rel``): what the seed does to both cancels out.
- Otherwise, **Welch's t-test** (``scipy.stats.ttest_ind(..., equal_var=False)``), which
  does not assume the two settings scatter equally.
- A page that tests several differences at p < 0.05 would call at least one "beyond the
  noise" by chance far more often than one time in twenty (five independent tests:
  1 - 0.95^5 = 23%), so
  ``compare_pairs`` adjusts the p-values with **Holm's** step-down correction over every
  difference reported together (a table), and the verdict uses the adjusted p. The series'
  results page does it per table and once more over every difference on the page.

With three seeds a test has little power, so "within the noise" means "not shown", never
"equal"; ``detectable_difference`` says before a run how large a difference a design can see.
Notebook 08 introduces this module; notebooks 10 and 11 and the series' results page
reuse it.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from titn_lite.tables import MarkdownTable

NOISE_LEVEL = 0.05  # a difference "exceeds the noise" when its (Holm-adjusted) two-sided p is below this
POWER = 0.8  # the chance of catching a true effect that designs are usually sized for


@dataclass(frozen=True)
class SeedResults:
    """One setting's measurements, one per seed (e.g. top-1 in percent)."""

    label: str
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"{self.label}: no measurements; train at least one seed")

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (n - 1); NaN for a single seed."""
        return statistics.stdev(self.values) if self.count > 1 else math.nan

    def describe(self, digits: int = 1) -> str:
        """``81.2 ± 0.6`` (mean ± standard deviation), or the single value for one seed."""
        if self.count < 2:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@dataclass(frozen=True)
class Difference:
    """``first`` minus ``second``: the difference of means, its 95% interval, the test's p and,
    once ``holm`` has seen every difference a page reports, the adjusted p the verdict uses."""

    first: str
    second: str
    difference: float
    low: float
    high: float
    p_value: float
    test: str = "Welch"  # "paired" (same seeds on both sides) or "Welch"
    adjusted_p: float | None = None  # Holm's, over the differences reported together; None: not adjusted
    df: float = math.nan  # the t-test's degrees of freedom and the difference's standard error, from which
    standard_error: float = math.nan  # an interval at any confidence level follows

    @property
    def testable(self) -> bool:
        """False with fewer than two seeds a side, or when the seeds leave nothing to test."""
        return not math.isnan(self.p_value)

    @property
    def decisive_p(self) -> float:
        """The p the verdict uses: Holm-adjusted where the difference was reported with others."""
        return self.p_value if self.adjusted_p is None else self.adjusted_p

    @property
    def exceeds_noise(self) -> bool:
        return self.testable and self.decisive_p < NOISE_LEVEL

    @property
    def interval(self) -> tuple[float, float]:
        """The interval that agrees with the verdict: the plain 95% interval when the difference
        was tested alone; after Holm's correction, the interval at the confidence level Holm's
        step used for this difference (1 - 0.05 p / adjusted p), which excludes 0 exactly when
        the adjusted p is below 0.05. (The plain 95% interval, ``low`` to ``high``, can exclude
        0 while the adjusted verdict says "within the noise": it ignores the other tests.)"""
        if self.adjusted_p is None or not self.testable or math.isnan(self.standard_error):
            return self.low, self.high
        from scipy import stats

        share = self.p_value / self.adjusted_p if self.adjusted_p > 0 else 1.0
        half_width = stats.t.ppf(1 - NOISE_LEVEL * share / 2, self.df) * self.standard_error
        return self.difference - half_width, self.difference + half_width

    @property
    def interval_name(self) -> str:
        return "Holm-adjusted interval" if self.adjusted_p is not None else "95% interval"

    def verdict(self) -> str:
        if not self.testable:
            return "cannot tell (needs two or more seeds that differ)"
        return "beyond the noise" if self.exceeds_noise else "within the noise"

    def describe(self, unit: str = "points") -> str:
        """The difference in words, for prose formatted from a run's own numbers."""
        if not self.testable:
            return f"{self.difference:+.1f} {unit}, {self.verdict()}"
        tested = f"{'paired t-test' if self.test == 'paired' else 'Welch'} {_format_p(self.p_value)}"
        if self.adjusted_p is not None:
            tested += f", Holm-adjusted {_format_p(self.adjusted_p)}"
        low, high = self.interval
        return (f"{self.difference:+.1f} {unit} ({self.interval_name} {low:+.1f} to {high:+.1f}), "
                f"{self.verdict()} ({tested})")


def _p_cell(p_value: float) -> str:
    """A p-value for a table cell: three decimals, or "< 0.001"."""
    return f"{p_value:.3f}" if p_value >= 0.001 else "< 0.001"


def _format_p(p_value: float) -> str:
    """A p-value in prose: "p = 0.012" or "p < 0.001"."""
    return f"p = {_p_cell(p_value)}" if p_value >= 0.001 else f"p {_p_cell(p_value)}"


def seed_results(values: dict[str, Sequence[float]]) -> dict[str, SeedResults]:
    """``{label: per-seed values}`` -> ``{label: SeedResults}``."""
    return {label: SeedResults(label, tuple(float(v) for v in vs)) for label, vs in values.items()}


def compare(first: SeedResults, second: SeedResults, *, paired: bool = False) -> Difference:
    """Test ``first`` against ``second`` (two-sided) with the 95% confidence interval of the
    difference of means: the paired t-test when ``paired`` (value k of each side came from
    seed k), else Welch's. Untestable (NaN p) with one seed on either side, or when the seeds
    leave no scatter to test against."""
    from scipy import stats

    difference = first.mean - second.mean
    if paired:
        if first.count != second.count:
            raise ValueError(f"a paired test needs the same seeds on both sides: {first.label} has {first.count}, "
                             f"{second.label} has {second.count}")
        gaps = [a - b for a, b in zip(first.values, second.values)]
        # Seeds that agree to rounding error (a tiny smoke run), or gaps that do, leave nothing to test against.
        if first.count < 2 or max(first.std, second.std, statistics.pstdev(gaps)) < 1e-9:
            return Difference(first.label, second.label, difference, math.nan, math.nan, math.nan, "paired")
        test = stats.ttest_rel(first.values, second.values)
    else:
        # Seeds that agree to rounding error (a tiny smoke run) leave nothing to test against.
        if first.count < 2 or second.count < 2 or max(first.std, second.std) < 1e-9:
            return Difference(first.label, second.label, difference, math.nan, math.nan, math.nan)
        with warnings.catch_warnings():  # scipy warns when one side's seeds agree exactly; the test still holds
            warnings.simplefilter("ignore", RuntimeWarning)
            test = stats.ttest_ind(first.values, second.values, equal_var=False)
    interval = test.confidence_interval(0.95)
    standard_error = (interval.high - interval.low) / (2 * stats.t.ppf(0.975, test.df))
    return Difference(first.label, second.label, difference, float(interval.low), float(interval.high),
                      float(test.pvalue), "paired" if paired else "Welch", df=float(test.df),
                      standard_error=float(standard_error))


def holm(differences: Sequence[Difference]) -> list[Difference]:
    """The same differences with Holm's adjusted p over the testable ones: sorted by p, the
    k-th smallest is multiplied by (m - k + 1), kept at least as large as the one before it,
    and capped at 1. Controls the chance of any false "beyond the noise" on the page at 5%."""
    testable = sorted((d.p_value, i) for i, d in enumerate(differences) if d.testable)
    adjusted: dict[int, float] = {}
    running = 0.0
    for rank, (p_value, index) in enumerate(testable):
        running = max(running, min(1.0, (len(testable) - rank) * p_value))
        adjusted[index] = running
    return [dataclasses.replace(d, adjusted_p=adjusted.get(i)) for i, d in enumerate(differences)]


def compare_pairs(results: dict[str, SeedResults], pairs: Sequence[tuple[str, str]], *,
                  paired: bool = True) -> list[Difference]:
    """Every ``(first, second)`` pair of ``results`` tested (paired by seed unless told
    otherwise), with Holm's correction over all of them: what a page that reports these
    differences together should show."""
    unknown = sorted({label for pair in pairs for label in pair} - set(results))
    if unknown:
        raise ValueError(f"pairs name {', '.join(unknown)}, which have no results; measured: {', '.join(results)}")
    return holm([compare(results[a], results[b], paired=paired) for a, b in pairs])


def paired_scatter(results: dict[str, SeedResults], pairs: Sequence[tuple[str, str]]) -> float:
    """The standard deviation of per-seed differences, pooled over ``pairs`` (the root of their
    variances' mean): how much a paired difference moves from seed to seed in a finished
    experiment, which is what a next experiment's power depends on."""
    variances = [statistics.variance([a - b for a, b in zip(results[first].values, results[second].values)])
                 for first, second in pairs if results[first].count == results[second].count > 1]
    if not variances:
        raise ValueError("the scatter of paired differences needs two or more seeds on both sides of a pair")
    return math.sqrt(statistics.fmean(variances))


def detectable_difference(scatter: float, seeds: int, comparisons: int = 1, *, power: float | None = None) -> float:
    """The smallest paired difference (in ``scatter``'s unit) that a design of ``seeds`` seeds
    and ``comparisons`` Holm-corrected tests can call beyond the noise, if the per-seed
    differences scatter with standard deviation ``scatter``.

    Without ``power``: the threshold itself. Holm tests the smallest p at 0.05 / comparisons,
    so a mean difference must reach t(1 - 0.05 / (2 comparisons), seeds - 1) standard errors
    (scatter / sqrt(seeds)) to be called beyond the noise at all. A true difference of exactly
    that size is called so only about half the time. With ``power`` (0.8, say): the true
    difference the design calls beyond the noise with that probability (noncentral t)."""
    if seeds < 2:
        raise ValueError(f"a paired test needs two or more seeds, got {seeds}")
    if comparisons < 1:
        raise ValueError(f"comparisons must be at least 1, got {comparisons}")
    from scipy import optimize, stats

    df, standard_error = seeds - 1, scatter / math.sqrt(seeds)
    critical = stats.t.ppf(1 - NOISE_LEVEL / (2 * comparisons), df)
    if power is None:
        return float(critical * standard_error)
    if not 0 < power < 1:
        raise ValueError(f"power is a probability between 0 and 1, got {power}")

    def shortfall(effect: float) -> float:  # chance of |t| > critical when the true difference is effect
        shift = effect / standard_error
        wrong_side = stats.nct.cdf(-critical, df, shift)  # negligible, and NaN in scipy far out in the tail
        return stats.nct.sf(critical, df, shift) + (0.0 if math.isnan(wrong_side) else wrong_side) - power

    if scatter <= 0:
        return 0.0
    return float(optimize.brentq(shortfall, 0.0, 4 * critical * standard_error))


def first_epoch_reaching(histories: Sequence[Sequence[dict[str, float]]], target: float, *,
                         key: str = "val_top1") -> int | None:
    """The first epoch (1-based) at which ``key`` averaged over ``histories`` (one per seed,
    a row per epoch) reaches ``target``, or None: how the kit measures the paper's faster
    convergence (§3.6, §4.4), e.g. a distilled student against its twin's final top-1."""
    for epoch, rows in enumerate(zip(*histories), start=1):
        if statistics.fmean(row[key] for row in rows) >= target:
            return epoch
    return None


def mean_history(histories: Sequence[Sequence[dict[str, float]]], steps_per_epoch: int, *,
                 keys: Sequence[str] = ("val_top1", "train_top1")) -> list[dict[str, float]]:
    """Each epoch's ``keys`` averaged over the seeds' histories, with the optimizer steps taken
    by the end of that epoch: a learning curve on the axis that is fair to students whose
    epochs differ in length."""
    return [{"epoch": rows[0]["epoch"], "steps": rows[0]["epoch"] * steps_per_epoch,
             **{key: statistics.fmean(row[key] for row in rows) for key in keys}}
            for rows in zip(*histories)]


def format_seed_table(results: dict[str, SeedResults], *, digits: int = 1) -> MarkdownTable:
    """Markdown: each setting's mean ± std, its seeds' values and the seed count."""
    lines = ["| setting | mean ± std | each seed | seeds |", "|---|---:|---|---:|"]
    for r in results.values():
        each = ", ".join(f"{v:.{digits}f}" for v in r.values)
        lines.append(f"| {r.label} | {r.describe(digits)} | {each} | {r.count} |")
    return MarkdownTable("\n".join(lines))


def format_differences(differences: Sequence[Difference], *, unit: str = "points") -> MarkdownTable:
    """Markdown: one row per tested pair with the difference, the interval that agrees with its
    verdict (``Difference.interval``), the test, its p, Holm's adjusted p (where the differences
    were adjusted together) and the verdict."""
    adjusted = any(d.adjusted_p is not None for d in differences)
    header = "interval (Holm-adjusted: agrees with the verdict)" if adjusted else "95% interval"
    lines = [f"| comparison | difference ({unit}) | {header} | test | p | Holm p | verdict |",
             "|---|---:|---:|---|---:|---:|---|"]
    for d in differences:
        interval = "{:+.1f} to {:+.1f}".format(*d.interval) if d.testable else "-"
        p_value = _p_cell(d.p_value) if d.testable else "-"
        adjusted = _p_cell(d.adjusted_p) if d.testable and d.adjusted_p is not None else "-"
        lines.append(f"| {d.first} − {d.second} | {d.difference:+.1f} | {interval} | {d.test} | {p_value} | "
                     f"{adjusted} | {d.verdict()} |")
    return MarkdownTable("\n".join(lines))
