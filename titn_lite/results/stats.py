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

Every interval states its coverage (``Interval.level``): the plain **95% interval** of one
difference alone, and, beside a family's Holm verdicts, the **simultaneous** interval at
1 - 0.05/m (Bonferroni over the m differences), which covers all m true differences at once
with at least 95% probability. It excludes 0 exactly when the Bonferroni-adjusted p (m p) is
below 0.05; Holm's adjusted p is never larger, so such a difference is also beyond the noise by
Holm (the converse can fail: Holm's later steps are less strict than Bonferroni's). An effect
outside an interval is "ruled out" only at that interval's stated coverage.

Beside the paired t-test, the **exact sign-flip test** (``sign_flip_p``): if the two settings
were equally good, each per-seed difference would be as likely positive as negative, so all
2^n sign patterns of the n differences are equally likely; p is the share of them whose mean is
at least as far from 0 as the observed one. It assumes no normality, but with n seeds it can
never go below 2 / 2^n (0.25 for n = 3): a lesson in what few seeds can show.

With three seeds a test has little power, so "within the noise" means "not shown", never
"equal"; ``detectable_difference`` says before a run how large a difference a design can see.
Notebook 08 introduces this module; notebooks 10 and 11 and the series' results page
reuse it.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from titn_lite.results.tables import MarkdownTable, markdown_table
from titn_lite.system.usage import UsageError

NOISE_LEVEL = 0.05  # a difference "exceeds the noise" when its (Holm-adjusted) two-sided p is below this
POWER = 0.8  # the chance of catching a true effect that designs are usually sized for
SIGN_FLIP_MAX_SEEDS = 16  # the exact sign-flip test enumerates 2^n sign patterns: up to 65,536


@dataclass(frozen=True)
class SeedResults:
    """One setting's measurements, one per seed (e.g. top-1 in percent)."""

    label: str
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise UsageError(f"{self.label}: no measurements; train at least one seed")

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


def _percent(level: float) -> str:
    """A coverage as a percentage: 0.95 -> "95%", 1 - 0.05/3 -> "98.3%"."""
    return f"{100 * level:.1f}".rstrip("0").rstrip(".") + "%"


class Interval(tuple):
    """A confidence interval that carries its coverage: unpacks, indexes and compares like the
    pair ``(low, high)``; ``level`` is its coverage (0.95: a 95% interval), ``family`` the number
    of differences it covers at once (1: this difference alone) and ``method`` how the level
    was set for a family ("Bonferroni"). ``name`` says all of it in words."""

    level: float
    method: str
    family: int

    def __new__(cls, low: float, high: float, level: float, method: str = "", family: int = 1) -> Interval:
        if not 0 < level < 1:
            raise UsageError(f"an interval's level is a probability between 0 and 1, got {level}")
        self = super().__new__(cls, (float(low), float(high)))
        self.level, self.method, self.family = float(level), method, int(family)
        return self

    def __reduce__(self):
        return Interval, (self[0], self[1], self.level, self.method, self.family)

    def __repr__(self) -> str:
        return f"Interval({self[0]!r}, {self[1]!r}, level={self.level!r}, method={self.method!r}, family={self.family})"

    @property
    def low(self) -> float:
        return self[0]

    @property
    def high(self) -> float:
        return self[1]

    @property
    def name(self) -> str:
        """ "95% interval", or "simultaneous 98.3% interval (Bonferroni, m = 3)"."""
        if self.family > 1:
            return f"simultaneous {_percent(self.level)} interval ({self.method}, m = {self.family})"
        return f"{_percent(self.level)} interval"

    def excludes(self, value: float = 0.0) -> bool:
        """Whether ``value`` lies outside the interval: ruled out, at this interval's coverage."""
        return not self[0] <= value <= self[1]

    def describe(self, digits: int = 1) -> str:
        return f"{self.name} {self[0]:+.{digits}f} to {self[1]:+.{digits}f}"


@dataclass(frozen=True)
class Difference:
    """``first`` minus ``second``: the difference of means, its interval at ``level`` (95%),
    the t-test's p, the exact sign-flip p (paired comparisons) and, once ``holm`` has seen every
    difference a page reports together, Holm's adjusted p (the verdict's) and the family's size
    (for the simultaneous interval)."""

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
    level: float = 1 - NOISE_LEVEL  # the coverage of low..high
    family: int = 1  # how many testable differences were adjusted together (set by holm)
    sign_flip_p: float | None = None  # the exact sign-flip test's two-sided p (paired); None: not computed
    note: str = ""  # why the t-test cannot test this difference, where it cannot

    @property
    def testable(self) -> bool:
        """False with fewer than two seeds a side, or when the seeds leave nothing to test."""
        return not math.isnan(self.p_value)

    @property
    def decisive_p(self) -> float:
        """The p the verdict uses: Holm-adjusted where the difference was reported with others."""
        return self.p_value if self.adjusted_p is None else self.adjusted_p

    @property
    def bonferroni_p(self) -> float:
        """m p, capped at 1: below 0.05 exactly when the simultaneous interval excludes 0."""
        return min(1.0, self.family * self.p_value) if self.testable else math.nan

    @property
    def exceeds_noise(self) -> bool:
        return self.testable and self.decisive_p < NOISE_LEVEL

    @property
    def plain_interval(self) -> Interval:
        """``low`` to ``high``: this difference's interval at ``level`` (95%), taken alone."""
        return Interval(self.low, self.high, self.level)

    def interval_at(self, level: float) -> Interval:
        """The t-test's interval at another coverage (from its standard error and degrees of freedom)."""
        if not self.testable or math.isnan(self.standard_error) or math.isnan(self.df):
            raise UsageError(f"{self.first} − {self.second}: no standard error to draw an interval at {level}")
        from scipy import stats

        half_width = float(stats.t.ppf(1 - (1 - level) / 2, self.df)) * self.standard_error
        return Interval(self.difference - half_width, self.difference + half_width, level)

    @property
    def simultaneous_interval(self) -> Interval:
        """Bonferroni's simultaneous interval over the family: coverage 1 - 0.05/m for each, so
        all m intervals hold their true differences together with at least 95% probability. It
        excludes 0 exactly when ``bonferroni_p`` < 0.05. A difference tested alone (m = 1), or
        one without a standard error, gets its plain interval, labelled with its own level."""
        if self.family <= 1 or not self.testable or math.isnan(self.standard_error) or math.isnan(self.df):
            return self.plain_interval
        level = 1 - NOISE_LEVEL / self.family
        low, high = self.interval_at(level)
        return Interval(low, high, level, "Bonferroni", self.family)

    @property
    def interval(self) -> Interval:
        """The interval to read beside the verdict, with its coverage stated: the simultaneous
        (Bonferroni) interval of the family it was tested in, the plain 95% interval when tested
        alone. Where it excludes 0, the Holm verdict is beyond the noise too."""
        return self.simultaneous_interval

    @property
    def interval_name(self) -> str:
        return self.interval.name

    def verdict(self) -> str:
        if not self.testable:
            return f"cannot tell ({self.note or 'needs two or more seeds that differ'})"
        return "beyond the noise" if self.exceeds_noise else "within the noise"

    def describe(self, unit: str = "points") -> str:
        """The difference in words, every interval with its coverage, for prose formatted from a
        run's own numbers."""
        sign_flip = f"exact sign-flip {_format_p(self.sign_flip_p)}" if self.sign_flip_p is not None else ""
        if not self.testable:
            return f"{self.difference:+.1f} {unit}, {self.verdict()}" + (f"; {sign_flip}" if sign_flip else "")
        tested = f"{'paired t-test' if self.test == 'paired' else 'Welch'} {_format_p(self.p_value)}"
        tested += f", {sign_flip}" if sign_flip else ""
        if self.adjusted_p is not None:
            tested += f", Holm-adjusted {_format_p(self.adjusted_p)}"
        intervals = self.plain_interval.describe()
        if self.interval.family > 1:
            intervals += f"; {self.interval.describe()}"
        return f"{self.difference:+.1f} {unit} ({intervals}), {self.verdict()} ({tested})"


def _p_cell(p_value: float) -> str:
    """A p-value for a table cell: three decimals, or "< 0.001"."""
    return f"{p_value:.3f}" if p_value >= 0.001 else "< 0.001"


def _format_p(p_value: float) -> str:
    """A p-value in prose: "p = 0.012" or "p < 0.001"."""
    return f"p = {_p_cell(p_value)}" if p_value >= 0.001 else f"p {_p_cell(p_value)}"


def seed_results(values: dict[str, Sequence[float]]) -> dict[str, SeedResults]:
    """``{label: per-seed values}`` -> ``{label: SeedResults}``."""
    return {label: SeedResults(label, tuple(float(v) for v in vs)) for label, vs in values.items()}


def sign_flip_p(gaps: Sequence[float]) -> float:
    """The exact sign-flip (paired permutation) test's two-sided p for per-seed differences
    ``gaps``: if the two settings were equally good, each gap would be as likely positive as
    negative, so all 2^n sign patterns are equally likely; p is the share of them whose sum is at
    least as far from 0 as the observed sum (ties to rounding error count). No normality
    assumed, but never below ``smallest_sign_flip_p(n)`` = 2 / 2^n."""
    gaps = [float(g) for g in gaps]
    if not gaps:
        raise UsageError("the sign-flip test needs at least one per-seed difference")
    if len(gaps) > SIGN_FLIP_MAX_SEEDS:
        raise UsageError(f"the exact sign-flip test enumerates 2^n sign patterns; {len(gaps)} seeds are more than "
                         f"the {SIGN_FLIP_MAX_SEEDS} it enumerates")
    observed = abs(math.fsum(gaps))
    tolerance = 1e-9 * max(1.0, math.fsum(abs(g) for g in gaps))
    extreme = sum(abs(math.fsum(sign * g for sign, g in zip(signs, gaps))) >= observed - tolerance
                  for signs in itertools.product((1.0, -1.0), repeat=len(gaps)))
    return extreme / 2 ** len(gaps)


def smallest_sign_flip_p(seeds: int) -> float:
    """The smallest two-sided p the exact sign-flip test can give with ``seeds`` paired seeds:
    2 / 2^n (every gap on one side; only the pattern and its mirror image are as extreme)."""
    if seeds < 1:
        raise UsageError(f"the sign-flip test needs at least one seed, got {seeds}")
    return min(1.0, 2 / 2 ** seeds)


def _flat(values: Sequence[float], scale: float) -> bool:
    """No spread beyond rounding error (relative to the size of the numbers involved)."""
    return statistics.pstdev(values) <= 1e-9 * max(1.0, scale)


def compare(first: SeedResults, second: SeedResults, *, paired: bool = False) -> Difference:
    """Test ``first`` against ``second`` (two-sided) with the 95% confidence interval of the
    difference of means: the paired t-test when ``paired`` (value k of each side came from
    seed k; also the exact sign-flip p, up to ``SIGN_FLIP_MAX_SEEDS`` seeds), else Welch's
    (the unpaired option, for settings whose seeds share no randomness). Untestable (NaN p,
    with a note saying why) with one seed on either side, when the per-seed differences are all
    equal (paired: no scatter to test them against, whatever each side's own spread), or when
    neither side's seeds differ (Welch)."""
    from scipy import stats

    difference = first.mean - second.mean
    scale = max(abs(v) for v in first.values + second.values)
    if paired:
        if first.count != second.count:
            raise UsageError(f"a paired test needs the same seeds on both sides: {first.label} has {first.count}, "
                             f"{second.label} has {second.count}")
        gaps = [a - b for a, b in zip(first.values, second.values)]
        flips = sign_flip_p(gaps) if 2 <= len(gaps) <= SIGN_FLIP_MAX_SEEDS else None
        # The paired test weighs the mean gap against the gaps' own scatter: equal gaps (to rounding
        # error) leave nothing to weigh it against, however much each side moves from seed to seed.
        if first.count < 2 or _flat(gaps, scale):
            note = ("needs two or more seeds that differ" if first.count < 2 else
                    "the per-seed differences are all equal: no scatter to test them against")
            return Difference(first.label, second.label, difference, math.nan, math.nan, math.nan, "paired",
                              sign_flip_p=flips, note=note)
        test = stats.ttest_rel(first.values, second.values)
    else:
        flips = None
        # Seeds that agree to rounding error on both sides (a tiny smoke run) leave nothing to test against.
        if first.count < 2 or second.count < 2 or (_flat(first.values, scale) and _flat(second.values, scale)):
            return Difference(first.label, second.label, difference, math.nan, math.nan, math.nan,
                              note="needs two or more seeds a side, and seeds that differ")
        with warnings.catch_warnings():  # scipy warns when one side's seeds agree exactly; the test still holds
            warnings.simplefilter("ignore", RuntimeWarning)
            test = stats.ttest_ind(first.values, second.values, equal_var=False)
    interval = test.confidence_interval(1 - NOISE_LEVEL)
    standard_error = (interval.high - interval.low) / (2 * stats.t.ppf(1 - NOISE_LEVEL / 2, test.df))
    return Difference(first.label, second.label, difference, float(interval.low), float(interval.high),
                      float(test.pvalue), "paired" if paired else "Welch", df=float(test.df),
                      standard_error=float(standard_error), level=1 - NOISE_LEVEL, sign_flip_p=flips)


def holm(differences: Sequence[Difference]) -> list[Difference]:
    """The same differences with Holm's adjusted p over the testable ones: sorted by p, the
    k-th smallest is multiplied by (m - k + 1), kept at least as large as the one before it,
    and capped at 1. Controls the chance of any false "beyond the noise" on the page at 5%.
    Each difference also learns the family's size m, which sets its simultaneous interval."""
    testable = sorted((d.p_value, i) for i, d in enumerate(differences) if d.testable)
    adjusted: dict[int, float] = {}
    running = 0.0
    for rank, (p_value, index) in enumerate(testable):
        running = max(running, min(1.0, (len(testable) - rank) * p_value))
        adjusted[index] = running
    return [dataclasses.replace(d, adjusted_p=adjusted.get(i), family=max(1, len(testable)))
            for i, d in enumerate(differences)]


def compare_pairs(results: dict[str, SeedResults], pairs: Sequence[tuple[str, str]], *,
                  paired: bool = True) -> list[Difference]:
    """Every ``(first, second)`` pair of ``results`` tested (paired by seed unless told
    otherwise), with Holm's correction over all of them: what a page that reports these
    differences together should show."""
    unknown = sorted({label for pair in pairs for label in pair} - set(results))
    if unknown:
        raise UsageError(f"pairs name {', '.join(unknown)}, which have no results; measured: {', '.join(results)}")
    return holm([compare(results[a], results[b], paired=paired) for a, b in pairs])


def paired_gaps(first: Sequence[float], second: Sequence[float]) -> list[float]:
    """Seed k's ``first`` minus seed k's ``second``: a paired design's per-seed differences."""
    if len(first) != len(second):
        raise UsageError(f"paired values need one per seed on both sides; got {len(first)} and {len(second)}")
    return [a - b for a, b in zip(first, second)]


def paired_scatter(results: dict[str, SeedResults], pairs: Sequence[tuple[str, str]]) -> float:
    """The standard deviation of per-seed differences, pooled over ``pairs`` (the root of their
    variances' mean): how much a paired difference moves from seed to seed in a finished
    experiment, which is what a next experiment's power depends on."""
    variances = [statistics.variance(paired_gaps(results[first].values, results[second].values))
                 for first, second in pairs if results[first].count == results[second].count > 1]
    if not variances:
        raise UsageError("the scatter of paired differences needs two or more seeds on both sides of a pair")
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
        raise UsageError(f"a paired test needs two or more seeds, got {seeds}")
    if comparisons < 1:
        raise UsageError(f"comparisons must be at least 1, got {comparisons}")
    from scipy import optimize, stats

    df, standard_error = seeds - 1, scatter / math.sqrt(seeds)
    critical = stats.t.ppf(1 - NOISE_LEVEL / (2 * comparisons), df)
    if power is None:
        return float(critical * standard_error)
    if not 0 < power < 1:
        raise UsageError(f"power is a probability between 0 and 1, got {power}")

    def shortfall(effect: float) -> float:
        return power_at(effect, scatter, seeds, comparisons) - power

    if scatter <= 0:
        return 0.0
    return float(optimize.brentq(shortfall, 0.0, 4 * critical * standard_error))


def power_at(effect: float, scatter: float, seeds: int, comparisons: int = 1) -> float:
    """How often a design of ``seeds`` paired seeds and ``comparisons`` Holm-corrected tests calls a
    true difference of ``effect`` beyond the noise at Holm's first step, if the per-seed differences
    scatter by ``scatter``: the chance that |t| passes t(1 - 0.05 / (2 comparisons), seeds - 1), from
    the noncentral t."""
    from scipy import stats

    df = seeds - 1
    critical = stats.t.ppf(1 - NOISE_LEVEL / (2 * comparisons), df)
    if scatter <= 0:
        return 1.0 if effect else 0.0
    shift = abs(effect) / (scatter / math.sqrt(seeds))
    wrong_side = stats.nct.cdf(-critical, df, shift)  # negligible, and NaN in scipy far out in the tail
    return float(stats.nct.sf(critical, df, shift) + (0.0 if math.isnan(wrong_side) else wrong_side))


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
    rows = [(r.label, r.describe(digits), ", ".join(f"{v:.{digits}f}" for v in r.values), r.count)
            for r in results.values()]
    return markdown_table(["setting", "mean ± std", "each seed", "seeds"], rows, align="lrlr")


def _interval_header(intervals: Sequence[Interval], fallback: str) -> tuple[str, bool]:
    """A column's header naming the coverage its intervals share, and whether each cell must
    name its own (when they differ)."""
    names = {i.name for i in intervals}
    return (names.pop(), False) if len(names) == 1 else (fallback, True)


def format_differences(differences: Sequence[Difference], *, unit: str = "points") -> MarkdownTable:
    """Markdown: one row per tested pair with the difference, its 95% interval, the simultaneous
    interval of its family where several were tested together (Bonferroni, each header stating
    its coverage), the test, its p, the exact sign-flip p (paired tests), Holm's adjusted p
    (where the differences were adjusted together) and the verdict."""
    testable = [d for d in differences if d.testable]
    plain, plain_each = _interval_header([d.plain_interval for d in testable], "interval (each alone)")
    family = [d for d in testable if d.interval.family > 1]
    joint, joint_each = _interval_header([d.interval for d in family], "simultaneous interval (Bonferroni)")
    flips = any(d.sign_flip_p is not None for d in differences)
    columns = ["comparison", f"difference ({unit})", plain] + ([joint] if family else []) + ["test", "p"]
    columns += (["exact sign-flip p"] if flips else []) + ["Holm p", "verdict"]
    align = "lrr" + ("r" if family else "") + "lr" + ("r" if flips else "") + "rl"  # one letter per column above

    def cell(interval: Interval, each: bool) -> str:
        return "{:+.1f} to {:+.1f}".format(*interval) + (f" ({interval.name})" if each else "")

    rows = []
    for d in differences:
        row = [f"{d.first} − {d.second}", f"{d.difference:+.1f}",
               cell(d.plain_interval, plain_each) if d.testable else "-"]
        row += [cell(d.interval, joint_each) if d.testable and d.interval.family > 1 else "-"] if family else []
        row += [d.test, _p_cell(d.p_value) if d.testable else "-"]
        row += [_p_cell(d.sign_flip_p) if d.sign_flip_p is not None else "-"] if flips else []
        row += [_p_cell(d.adjusted_p) if d.testable and d.adjusted_p is not None else "-", d.verdict()]
        rows.append(row)
    return markdown_table(columns, rows, align=align)
