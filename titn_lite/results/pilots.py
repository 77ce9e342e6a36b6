"""Pilots: a few seeds of an experiment at its own budget, run before it, to plan it.

How large a difference a paired design can call beyond the noise depends on how much each of its
differences scatters from seed to seed (``stats.detectable_difference``), and that scatter belongs
to one pair at one budget: a pair of near-identical settings scatters less than a pair that
differs in its data, a short run more than a long one. So each difference is planned from its own
scatter, measured by a **pilot**: the same runs as the experiment's, at the same settings, on
seeds the experiment never uses (``PILOT_SEEDS``). The pilot plans the experiment; it is not part
of its test.

The kit ships the pilots of the series' experiments (notebooks 10 and 11, at the classroom and
smoke profiles) in ``assets/pilots.json``, measured by ``benchmarks/pilots.py``. A pilot records
which runs it measured by their identity (``TrainConfig.key`` at seed 0: every setting but the
seed), so a chapter plans from it only when its own runs are those runs; with other settings (a
changed parameter, another profile) it says that no pilot matches, and how to measure one.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from titn_lite.results.stats import (
    NOISE_LEVEL,
    POWER,
    Difference,
    Interval,
    SeedResults,
    compare,
    detectable_difference,
    paired_gaps,
    power_at,
)
from titn_lite.system.files import write_json
from titn_lite.system.packaged import assets_folder
from titn_lite.system.usage import UsageError

PILOT_SEEDS = range(100, 108)  # seeds no experiment of the series trains (they use 0, 1, 2, ...)
PILOTS_FILE = "pilots.json"
# A plan is off when its hindsight figure (the same computation from the run's own per-seed
# differences) is more than this many times larger, or smaller, than planned.
OFF_PLAN = 1.5


def off_plan(planned: float | None, hindsight: float | None) -> str:
    """"narrower than planned" or "wider than planned" where a hindsight figure is more than
    ``OFF_PLAN`` times off its plan, else "" (and "" without both figures)."""
    if not planned or hindsight is None:
        return ""
    if hindsight < planned / OFF_PLAN:
        return "narrower than planned"
    return "wider than planned" if hindsight > planned * OFF_PLAN else ""


def chance_of_ratio(ratio: float, seeds: int, pilot_seeds: int) -> float:
    """How often the run's scatter lands at least ``ratio`` times off the pilot's, either way (at
    or beyond ``ratio`` or at or below its inverse), when the two are estimates of one normal
    noise from ``seeds`` - 1 and ``pilot_seeds`` - 1 degrees of freedom: their squared ratio is
    F-distributed. A hindsight figure is the plan's computation at the run's own scatter, so this
    is also how often a right plan's hindsight figure lands that far off it."""
    from scipy import stats

    far = max(ratio, 1 / ratio) if ratio > 0 else math.inf
    f = stats.f(seeds - 1, pilot_seeds - 1)
    return float(min(1.0, f.sf(far ** 2) + f.cdf(far ** -2)))


def chance_off_plan(seeds: int, pilot_seeds: int) -> float:
    """How often a right plan's hindsight figure lands more than ``OFF_PLAN`` times off it
    (``chance_of_ratio`` at ``OFF_PLAN``). With three seeds against a pilot's eight it is about one
    time in two: a few seeds estimate a scatter loosely, and a single plan off says little about
    the pilot."""
    return chance_of_ratio(OFF_PLAN, seeds, pilot_seeds)


def most_extreme_chance(chance: float, family: int) -> float:
    """How often the most extreme of ``family`` independent ratios lands as far off as one that
    lands there ``chance`` of the time alone: a ratio picked for being the farthest off is less
    surprising than one read alone."""
    return 1 - (1 - chance) ** family


def chance_of_at_least(chances: Sequence[float], count: int) -> float:
    """How often at least ``count`` of several events happen, each with its own chance, independently
    (the Poisson-binomial tail): how often chance alone puts ``count`` or more plans off."""
    spread = [1.0]  # spread[k]: the chance that exactly k events happened so far
    for chance in chances:
        spread = [stay * (1 - chance) + step * chance for stay, step in zip(spread + [0.0], [0.0] + spread)]
    return min(1.0, sum(spread[count:]))


@dataclass(frozen=True)
class Pilot:
    """One experiment's pilot at one profile: each setting's top-1 (percent) at the pilot seeds,
    and the identity key (at seed 0) of the runs it measured."""

    experiment: str
    profile: str
    seeds: tuple[int, ...]
    keys: dict[str, str]  # label -> TrainConfig.key() of that setting's run at seed 0
    values: dict[str, tuple[float, ...]]  # label -> top-1 % at each pilot seed

    def scatter(self, first: str, second: str) -> float:
        """The standard deviation of ``first`` − ``second`` over the pilot's seeds (points)."""
        return statistics.stdev(paired_gaps(self.values[first], self.values[second]))

    def matches(self, keys: Mapping[str, str]) -> list[str]:
        """The labels whose runs differ from the pilot's (empty: the pilot measured these runs)."""
        return sorted(label for label in keys if self.keys.get(label) != keys[label])

    def plan(self, pairs: Sequence[tuple[str, str]], seeds: int, comparisons: int | None = None) -> list[PairPlan]:
        """Each pair's detectable difference for a design of ``seeds`` paired seeds that tests
        ``comparisons`` differences (default: ``pairs``) as one Holm family, from that pair's own
        pilot scatter."""
        family = len(pairs) if comparisons is None else comparisons
        return [PairPlan(first, second, self.scatter(first, second), len(self.seeds), seeds, family)
                for first, second in pairs]

    def as_json(self) -> dict:
        return {"experiment": self.experiment, "profile": self.profile, "seeds": list(self.seeds),
                "keys": self.keys, "values": {label: list(v) for label, v in self.values.items()}}


@dataclass(frozen=True)
class PairPlan:
    """One difference's plan: its pilot scatter, and what a design of ``seeds`` seeds and
    ``comparisons`` Holm-corrected tests can call beyond the noise from it."""

    first: str
    second: str
    scatter: float  # the pilot's standard deviation of per-seed differences (points)
    pilot_seeds: int
    seeds: int
    comparisons: int

    @property
    def detectable(self) -> float:
        """The smallest mean difference the design calls beyond the noise, at the pilot's scatter."""
        return detectable_difference(self.scatter, self.seeds, self.comparisons)

    @property
    def caught_at_power(self) -> float:
        """The true difference the design calls beyond the noise ``POWER`` of the time."""
        return detectable_difference(self.scatter, self.seeds, self.comparisons, power=POWER)

    def power_at(self, effect: float) -> float:
        """How often the design calls a true difference of ``effect`` beyond the noise (Holm's first
        step), at the pilot's scatter (``stats.power_at``)."""
        return power_at(effect, self.scatter, self.seeds, self.comparisons)

    def scatter_range(self, coverage: float = 0.95) -> tuple[float, float]:
        """Where the true scatter lies, as a multiple of the pilot's estimate, at ``coverage``
        (the chi-square interval of a standard deviation from ``pilot_seeds`` values)."""
        from scipy import stats

        df = self.pilot_seeds - 1
        tail = (1 - coverage) / 2
        return (math.sqrt(df / stats.chi2.ppf(1 - tail, df)), math.sqrt(df / stats.chi2.ppf(tail, df)))

    def gaps(self, results: Mapping[str, SeedResults]) -> list[float]:
        """The experiment's own per-seed differences, first − second."""
        return paired_gaps(results[self.first].values, results[self.second].values)

    def hindsight(self, results: Mapping[str, SeedResults]) -> float:
        """The same figure from the experiment's own per-seed differences (after its runs)."""
        return detectable_difference(statistics.stdev(self.gaps(results)), self.seeds, self.comparisons)

    def hindsight_ratio(self, results: Mapping[str, SeedResults]) -> float:
        """The hindsight figure as a multiple of the plan (NaN where the pilot did not scatter)."""
        return self.hindsight(results) / self.detectable if self.detectable > 0 else math.nan

    def off_plan(self, results: Mapping[str, SeedResults]) -> str:
        """"narrower than planned" or "wider than planned" where the hindsight figure is more than
        ``OFF_PLAN`` times off the plan, else "": a narrower run's intervals exclude more than planned,
        by luck of its seeds as much as by the data."""
        return off_plan(self.detectable, self.hindsight(results))

    def pooled_interval(self, results: Mapping[str, SeedResults], level: float | None = None) -> Interval:
        """The interval of the run's mean difference with the pilot's scatter pooled into the run's
        (the same runs on other seeds: one scatter, estimated from both), at ``level`` (default: the
        simultaneous level of the experiment's family, 1 − 0.05 / comparisons). It checks an interval
        drawn from a few seeds that happened to agree: it rests on more degrees of freedom."""
        from scipy import stats

        level = 1 - NOISE_LEVEL / self.comparisons if level is None else level
        gaps = self.gaps(results)
        df_run, df_pilot = len(gaps) - 1, self.pilot_seeds - 1
        pooled = math.sqrt((df_run * statistics.variance(gaps) + df_pilot * self.scatter ** 2) / (df_run + df_pilot))
        half = stats.t.ppf(1 - (1 - level) / 2, df_run + df_pilot) * pooled / math.sqrt(len(gaps))
        mean = statistics.fmean(gaps)
        family = self.comparisons if level == 1 - NOISE_LEVEL / self.comparisons else 1
        return Interval(mean - half, mean + half, level, "Bonferroni, pilot pooled" if family > 1 else "", family)

    def chance_of_ratio(self, ratio: float) -> float:
        """How often chance alone puts the hindsight figure ``ratio`` times off the plan or further,
        either way, if the run's seeds and the pilot's scatter alike (``pilots.chance_of_ratio``)."""
        return chance_of_ratio(ratio, self.seeds, self.pilot_seeds)

    def read_off_plan(self, results: Mapping[str, SeedResults], family: int = 1) -> str:
        """Where the hindsight figure is more than ``OFF_PLAN`` times off the plan (else ""): how the
        run's differences lay (wider: which seed lies farthest out, and the difference without it),
        how far the pilot itself may miss, and whether chance explains a ratio that far off when the
        run's noise is the pilot's, for one comparison and for the most extreme of ``family``
        comparisons read together (``most_extreme_chance``). A ratio still rare then points at
        noise with heavier tails than normal, which a t-test's interval does not allow for."""
        off = self.off_plan(results)
        if not off:
            return ""
        gaps, (low, high) = self.gaps(results), self.scatter_range()
        mean, chance = statistics.fmean(gaps), self.chance_of_ratio(self.hindsight_ratio(results))
        if off == "wider than planned":
            far = max(range(len(gaps)), key=lambda k: abs(gaps[k] - mean))
            first, second = (SeedResults(label, tuple(v for k, v in enumerate(results[label].values) if k != far))
                             for label in (self.first, self.second))
            without = compare(first, second, paired=True)  # the same paired t-test, on the other seeds
            test = without.p_value if without.testable else math.nan
            lay = (f"seed {far}'s difference ({gaps[far]:+.1f}) lies farthest from their mean ({mean:+.1f}); "
                   f"without it the mean is {statistics.fmean(gaps[:far] + gaps[far + 1:]):+.1f} (paired t-test p "
                   f"{test:.3f}, unadjusted)")
        else:
            lay = f"the seeds' differences lie close together ({min(gaps):+.1f} to {max(gaps):+.1f})"
        extreme = most_extreme_chance(chance, family)
        among = f", {extreme:.1%} for the most extreme of {family} read together" if family > 1 else ""
        return (f"{lay}; the pilot's {self.pilot_seeds} seeds put the true scatter at {low:.2f} to {high:.1f} times "
                f"their {self.scatter:.2f} points (95%); a ratio that far off comes {chance:.1%} of the time for one "
                f"comparison{among}: " + ("common enough to be the seeds' luck" if extreme >= NOISE_LEVEL else
                                          "rare, so this pair's differences may scatter with heavier tails than "
                                          "normal noise (a seed far out), which the t-test's interval does not allow "
                                          "for"))

    def describe(self) -> str:
        low, high = self.scatter_range()
        return (f"{self.first} − {self.second}: the pilot's {self.pilot_seeds} seeds scatter by {self.scatter:.2f} "
                f"points (the true scatter lies between {low:.2f} and {high:.1f} times that, 95%); beyond the noise "
                f"from {self.detectable:.1f} points (a true difference that size is caught "
                f"{self.power_at(self.detectable):.0%} of the time), caught {POWER:.0%} of the time from "
                f"{self.caught_at_power:.1f}")


def pilots_path() -> Path:
    return assets_folder() / PILOTS_FILE


def load_pilot(experiment: str, profile: str, *, path: Path | None = None) -> Pilot | None:
    """The shipped pilot of ``experiment`` at ``profile``, or None."""
    path = pilots_path() if path is None else Path(path)
    if not path.is_file():
        return None
    for entry in json.loads(path.read_text()):
        if entry["experiment"] == experiment and entry["profile"] == profile:
            return Pilot(entry["experiment"], entry["profile"], tuple(entry["seeds"]), dict(entry["keys"]),
                         {label: tuple(values) for label, values in entry["values"].items()})
    return None


def save_pilot(pilot: Pilot, *, path: Path | None = None) -> Path:
    """Add ``pilot`` to the pilots file, replacing an earlier one of the same experiment and profile."""
    if len(pilot.seeds) < 2 or any(len(v) != len(pilot.seeds) for v in pilot.values.values()):
        raise UsageError(f"a pilot needs two or more seeds and one value per seed for every setting; got seeds "
                         f"{list(pilot.seeds)} and {({k: len(v) for k, v in pilot.values.items()})} values")
    path = pilots_path() if path is None else Path(path)
    entries = json.loads(path.read_text()) if path.is_file() else []
    entries = [e for e in entries if (e["experiment"], e["profile"]) != (pilot.experiment, pilot.profile)]
    write_json(path, sorted(entries + [pilot.as_json()], key=lambda e: (e["experiment"], e["profile"])))
    return path


def format_plans(plans: Sequence[PairPlan], source: str, *, seeds: int, comparisons: int) -> str:
    """The plans in words, one line a comparison, under a line naming the design and the plans' source."""
    head = f"plan for {seeds} seeds and {comparisons} comparison{'s' if comparisons != 1 else ''} tested as one family"
    if not plans:
        return f"{head}: none, {source}"
    return "\n".join([f"{head}, {source}:"] + [f"- {plan.describe()}" for plan in plans])


def format_hindsight(plans: Sequence[PairPlan], results: Mapping[str, SeedResults]) -> str:
    """Each planned comparison's detectable difference beside the same figure from the
    experiment's own per-seed differences, their ratio and how often chance alone puts a
    ratio that far from 1 either way (``PairPlan.chance_of_ratio``); for a ratio more than
    ``OFF_PLAN`` times off, what moved it (``PairPlan.read_off_plan``). A first line says how often a
    right plan lands that far off by chance alone at this design."""
    lines = [f"with {seeds} seeds against the pilot's {pilot}, a right plan's hindsight figure lands more than "
             f"{OFF_PLAN:g} x off it {chance_off_plan(seeds, pilot):.0%} of the time by chance alone"
             for seeds, pilot in dict.fromkeys((plan.seeds, plan.pilot_seeds) for plan in plans)]
    for plan in plans:
        realised = plan.hindsight(results)
        if plan.detectable > 0:
            times = realised / plan.detectable
            ratio = (f" ({times:.2f} x the plan; a ratio this far from 1, either way, comes "
                     f"{plan.chance_of_ratio(times):.1%} of the time by chance alone, when the run's seeds scatter as "
                     "the pilot's)")
        else:
            ratio = " (the pilot's did not scatter)"
        off = plan.off_plan(results) if plan.detectable > 0 else ""
        lines.append(f"{plan.first} − {plan.second}: detectable difference {plan.detectable:.1f} points as planned "
                     f"from the pilot, {realised:.1f} in hindsight from this run's own differences{ratio}"
                     + (f"; {off} (more than {OFF_PLAN:g} x off): {plan.read_off_plan(results, len(plans))}"
                        if off else ""))
    return "\n".join(lines)


def read_effect(effect: float, difference: Difference, plan: PairPlan | None,
                results: Mapping[str, SeedResults]) -> str:
    """Whether a claimed ``effect`` (a paper's gap, say) is still possible by the run's interval of
    ``difference`` or ruled out by it, at the interval's coverage; and where the run's seeds
    scattered less than its ``plan`` (``PairPlan.off_plan``), whether the same interval with the
    pilot's scatter pooled in (``PairPlan.pooled_interval``) still rules it out."""
    if not difference.testable:
        return "this design cannot tell"
    interval = difference.interval
    if not interval.excludes(effect):
        return f"inside this run's {interval.describe()}: still possible"
    text = (f"outside this run's {interval.describe()}: ruled out in this run's setting at that coverage, if the "
            "noise between seeds is normal (it says nothing about the paper's own setting)")
    if plan is not None and plan.off_plan(results) == "narrower than planned":
        pooled = plan.pooled_interval(results, interval.level)
        text += (f"; but these seeds scattered less than planned ({plan.hindsight_ratio(results):.2f} x), and with "
                 f"the pilot's {plan.pilot_seeds} seeds pooled in the interval is {pooled.low:+.1f} to "
                 f"{pooled.high:+.1f}, which " + ("still rules it out" if pooled.excludes(effect) else
                                                   "holds it: the ruling leans on these seeds' luck"))
    return text
