"""Results a student can trust: one setting trained with several seeds, its mean and spread,
and a test of whether two settings differ by more than the seeds scatter on their own.

A seed changes the initial weights, the data order, the augmentation and the mixing, so two
runs of the *same* model already differ by a point or so after a short run. A difference
between two models means something only when it is large against that scatter. Welch's
t-test (``scipy.stats.ttest_ind(..., equal_var=False)``) asks exactly this of the per-seed
accuracies without assuming the two settings scatter equally; with three seeds each it has
little power, so "not beyond the noise" means "not shown", never "equal".

Notebook 08 introduces this module; notebook 10 and the series' results page reuse it.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from titn_lite.tables import MarkdownTable

NOISE_LEVEL = 0.05  # a difference "exceeds the noise" when Welch's two-sided p is below this


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
    """``first`` minus ``second``: the difference of means, its 95% interval and Welch's p."""

    first: str
    second: str
    difference: float
    low: float
    high: float
    p_value: float

    @property
    def testable(self) -> bool:
        """False with fewer than two seeds a side, or when neither side scatters at all."""
        return not math.isnan(self.p_value)

    @property
    def exceeds_noise(self) -> bool:
        return self.testable and self.p_value < NOISE_LEVEL

    def verdict(self) -> str:
        if not self.testable:
            return "cannot tell (needs two or more seeds that differ)"
        return "beyond the noise" if self.exceeds_noise else "within the noise"

    def describe(self, unit: str = "points") -> str:
        """The difference in words, for prose formatted from a run's own numbers."""
        if not self.testable:
            return f"{self.difference:+.1f} {unit}, {self.verdict()}"
        p_value = f"p = {self.p_value:.3f}" if self.p_value >= 0.001 else "p < 0.001"
        return (f"{self.difference:+.1f} {unit} (95% interval {self.low:+.1f} to {self.high:+.1f}), "
                f"{self.verdict()} (Welch {p_value})")


def seed_results(values: dict[str, Sequence[float]]) -> dict[str, SeedResults]:
    """``{label: per-seed values}`` -> ``{label: SeedResults}``."""
    return {label: SeedResults(label, tuple(float(v) for v in vs)) for label, vs in values.items()}


def compare(first: SeedResults, second: SeedResults) -> Difference:
    """Welch's t-test of ``first`` against ``second`` (two-sided), with the 95% confidence
    interval of the difference of means. Untestable (NaN p) with one seed on either side."""
    from scipy import stats

    difference = first.mean - second.mean
    # Seeds that agree to rounding error (a tiny smoke run) leave nothing to test against.
    if first.count < 2 or second.count < 2 or max(first.std, second.std) < 1e-9:
        return Difference(first.label, second.label, difference, math.nan, math.nan, math.nan)
    with warnings.catch_warnings():  # scipy warns when one side's seeds agree exactly; the test still holds
        warnings.simplefilter("ignore", RuntimeWarning)
        test = stats.ttest_ind(first.values, second.values, equal_var=False)
        interval = test.confidence_interval(0.95)
    return Difference(first.label, second.label, difference, float(interval.low), float(interval.high),
                      float(test.pvalue))


def format_seed_table(results: dict[str, SeedResults], *, digits: int = 1) -> MarkdownTable:
    """Markdown: each setting's mean ± std, its seeds' values and the seed count."""
    lines = ["| setting | mean ± std | each seed | seeds |", "|---|---:|---|---:|"]
    for r in results.values():
        each = ", ".join(f"{v:.{digits}f}" for v in r.values)
        lines.append(f"| {r.label} | {r.describe(digits)} | {each} | {r.count} |")
    return MarkdownTable("\n".join(lines))


def format_differences(differences: Sequence[Difference], *, unit: str = "points") -> MarkdownTable:
    """Markdown: one row per tested pair with the difference, its interval, p and the verdict."""
    lines = [f"| comparison | difference ({unit}) | 95% interval | Welch p | verdict |", "|---|---:|---:|---:|---|"]
    for d in differences:
        interval = f"{d.low:+.1f} to {d.high:+.1f}" if d.testable else "-"
        p_value = ("< 0.001" if d.p_value < 0.001 else f"{d.p_value:.3f}") if d.testable else "-"
        lines.append(f"| {d.first} − {d.second} | {d.difference:+.1f} | {interval} | {p_value} | {d.verdict()} |")
    return MarkdownTable("\n".join(lines))
