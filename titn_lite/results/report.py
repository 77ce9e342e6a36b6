"""Tables of measured runs beside the paper's figures (Tables 2-5 in shape), read from run
folders (each run's checkpoint is loaded to count its parameters and FLOPs), and the
series' results page from the course's records (``Course.results``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from titn_lite.results import paper
from titn_lite.results.flops import count_flops, count_parameters
from titn_lite.results.pilots import (
    OFF_PLAN,
    chance_of_at_least,
    chance_of_ratio,
    chance_off_plan,
    most_extreme_chance,
    off_plan,
)
from titn_lite.results.stats import (
    NOISE_LEVEL,
    Difference,
    compare_pairs,
    format_differences,
    holm,
    seed_results,
    smallest_sign_flip_p,
)
from titn_lite.results.tables import MarkdownTable, markdown_table
from titn_lite.system.usage import UsageError
from titn_lite.train.checkpoint import CheckpointFacts, model_from_checkpoint
from titn_lite.train.run_folder import RunFolder


@dataclass
class RunSummary:
    """One finished run: what was trained on what, how well, at what size and cost."""

    run_dir: Path
    model: str
    dataset: str
    top1: float  # the finished model's test top-1: the run's result (the test images, read once)
    best_val_top1: float  # the highest validation top-1 of any evaluated epoch (NaN: no validation split)
    best_epoch: int | None  # that epoch: where a run with early stopping would have stopped
    top5: float
    precision: float
    recall: float
    f1: float
    params: int
    flops_per_image: float
    images_per_second: float
    seconds: float
    mix: str

    @property
    def paper(self) -> paper.PaperResult | None:
        if self.model == "titn" and self.mix == "mixup" and self.dataset == "cifar100":
            return paper.TITN_MIXUP_CIFAR100
        return paper.RESULTS.get(self.dataset, {}).get(self.model)


def summarize_run(run_dir: str | Path) -> RunSummary:
    """Read a complete run directory; ``ValueError`` if it is not one."""
    folder = RunFolder(run_dir)
    if not folder.is_complete:
        raise UsageError(f"{folder.path} is not a complete titn-lite run (no {RunFolder.METRICS}); finish it with "
                         f"titn-lite train ... --out {folder.path} --resume")
    metrics, history, config = folder.metrics(), folder.history(), folder.config()
    checkpoint = folder.load_checkpoint()
    model = model_from_checkpoint(checkpoint)
    validated = [row for row in history if not math.isnan(row["val_top1"])]
    best = max(validated, key=lambda row: row["val_top1"]) if validated else None
    return RunSummary(
        run_dir=folder.path, model=config["model"], dataset=config["dataset"], top1=metrics.top1,
        best_val_top1=best["val_top1"] if best else math.nan, best_epoch=int(best["epoch"]) if best else None,
        top5=metrics.top5,
        precision=metrics.precision, recall=metrics.recall, f1=metrics.f1,
        params=count_parameters(model),
        flops_per_image=count_flops(model, in_chans=CheckpointFacts.of(checkpoint).in_chans),
        images_per_second=sum(r["images_per_second"] for r in history) / len(history),
        seconds=sum(r["seconds"] for r in history), mix=config["mix"],
    )


def format_report(summaries: list[RunSummary]) -> MarkdownTable:
    """Markdown: one row per run, measured beside the paper's top-1/top-5 (and P/R/F1). Top-1
    is the finished model's on the test images; "best validation" the highest validation top-1
    over the evaluated epochs, and which epoch gave it."""
    def paper_value(summary: RunSummary, field: str, scale: float = 1.0) -> str:
        result = summary.paper
        value = getattr(result, field) if result else None
        return f"{value * scale:.2f}" if value is not None else "-"

    header = ["model", "dataset", "top-1 %", "best validation top-1 % (epoch)", "top-5 %", "precision", "recall", "F1",
              "GFLOPs / 512", "params (M)", "train img/s", "train s", "paper top-1 %", "paper top-5 %",
              "paper P / R / F1"]
    rows = [[f"{s.model}{' (MixUp)' if s.mix == 'mixup' else ''}", s.dataset, f"{100 * s.top1:.2f}",
             f"{100 * s.best_val_top1:.2f} ({s.best_epoch})" if s.best_epoch else "-", f"{100 * s.top5:.2f}",
             f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}",
             f"{s.flops_per_image * paper.GFLOPS_BATCH / 1e9:.2f}", f"{s.params / 1e6:.3f}",
             f"{s.images_per_second:.0f}", f"{s.seconds:.0f}", paper_value(s, "top1"), paper_value(s, "top5"),
             " / ".join(paper_value(s, f) for f in ("precision", "recall", "f1"))] for s in summaries]
    table = markdown_table(header, rows, align="ll" + "r" * 12 + "l")  # labels, figures, the paper's P / R / F1 as text
    note = ("Top-1, top-5, P / R / F1: the finished model on the test images, read once. Best validation: the "
            "highest top-1 on the validation images (training images the run never trains on) over the "
            "evaluated epochs; the paper reports models \"based on their maximum test accuracy\" (§4.2), "
            "which the kit reads as the best epoch by test score, a choice that flatters a run. Paper: "
            "Tables 2-3 (CIFAR-100), 4 (CIFAR-10), 5 (MNIST); '-' where the paper gives no figure.")
    return MarkdownTable(f"{table}\n\n{note}")


def _record_differences(record: dict[str, Any]) -> list[Difference]:
    """The differences a record asks for, tested (paired by seed, or Welch where the record's
    values are not paired by seed) and Holm-adjusted over the record's own table."""
    return compare_pairs(seed_results(record["values"]), [tuple(pair) for pair in record["pairs"]],
                         paired=record["paired"])


def format_record(record: dict[str, Any]) -> str:
    """One notebook's record (``Course.record_results``) as a page section: each setting's
    mean ± spread over seeds, which differences exceed the seeds' scatter, what the chapter
    planned to detect, and the paper's gaps for the same pairs beside this run's intervals."""
    results = seed_results(record["values"])
    rows = [(label, result.describe(), ", ".join(f"{v:.1f}" for v in result.values))
            for label, result in results.items()]
    spread = " (mean ± std)" if any(result.count > 1 for result in results.values()) else ""  # one seed: no spread
    table = markdown_table(["setting", f"top-1 %{spread}", "each seed"], rows, align="lrl")
    section = [f"## {record['title']}", "", record["setting"], "", table]
    if record["pairs"]:
        differences = _record_differences(record)
        test = "the paired t-test over seeds" if record["paired"] else "Welch's t-test"
        adjusted = (f"the p-values are Holm-adjusted over the {len(differences)} differences of this table, and an "
                    "adjusted p < 0.05 counts as beyond the noise" if len(differences) > 1 else
                    "the table tests one difference, which Holm's correction leaves as it is, and p < 0.05 counts "
                    "as beyond the noise")
        section += ["", f"Is each difference larger than the scatter between seeds? ({test}; {adjusted}; the "
                    "page's last section tests every difference on the page together.)", "",
                    format_differences(differences)]
        section += [line for line in (_planned(record), _paper_gaps(record, differences)) if line]
        if record.get("exploratory"):
            section += ["", "These verdicts are exploratory: the setting was chosen by looking at these test "
                        "images, so the 5% error rate of each verdict does not hold for them."]
    return "\n".join(section)


def _planned(record: dict[str, Any]) -> str:
    """What the chapter said, before its runs, the design could detect (its pilot's plan)."""
    planned, hindsight = record.get("detectable") or {}, record.get("hindsight") or {}
    if not planned:
        return ""

    def read(name: str, size: float) -> str:
        if name not in hindsight:
            return f"{name} beyond the noise from {size:.1f} points"
        off = off_plan(size, hindsight[name])
        return (f"{name} beyond the noise from {size:.1f} points ({hindsight[name]:.1f} in hindsight, from this run's "
                f"own scatter{'; ' + off if off else ''})")

    return ("\nPlanned before the runs, from the chapter's pilot: " + "; ".join(read(n, v) for n, v in planned.items())
            + f". A plan more than {OFF_PLAN:g} times off its hindsight figure is marked. \"Within the noise\" means "
            "this run did not show a difference, not that there is none; a difference smaller than its plan was not "
            "expected to show. Where the run scattered less than planned, a verdict or an interval that excludes "
            "more than planned leans on seeds that happened to agree; where it scattered more, the design saw less "
            "than planned and a \"within the noise\" says even less.")


def _paper_gaps(record: dict[str, Any], differences: list[Difference]) -> str:
    """The paper's gap for each pair with a published figure on both sides, read against this
    run's simultaneous interval: the paper's accuracies are another dataset's (CIFAR-100), its
    gaps are what a run can be compared with."""
    read = []
    for d in differences:
        gap = _paper_gap(record, d)
        if gap is None or not d.testable:
            continue
        low, high = d.interval
        name = f"{d.first} − {d.second}"
        planned, hindsight = (record.get(key, {}).get(name) for key in ("detectable", "hindsight"))
        off = off_plan(planned, hindsight)
        note = f", an interval {off}: {hindsight:.1f} against {planned:.1f} in hindsight" if off else ""
        read.append(f"{name} {gap:+.2f} ({'inside' if low <= gap <= high else 'outside'} "
                    f"this run's {low:+.1f} to {high:+.1f}{note})")
    if not read:
        return ""
    return ("\nThe paper's gaps for the same pairs (its Table 3, on CIFAR-100; its accuracies are another "
            "dataset's and are not set beside these), against this run's simultaneous intervals: "
            + "; ".join(read) + ". A gap outside its interval is ruled out for this setting at the interval's "
            f"coverage (each is a {differences[0].interval.name}), if the noise between seeds is normal; that says "
            "nothing about the paper's own setting.")


def _paper_gap(record: dict[str, Any], difference: Difference) -> float | None:
    first, second = (record["paper_top1"].get(label) for label in (difference.first, difference.second))
    return None if first is None or second is None else first - second


def _claims(record: dict[str, Any], difference: Difference) -> list[tuple[str, float]]:
    """The effects a section reads against ``difference``'s interval: the paper's gap for the pair,
    and what its chapter names (``Course.record_results``' claims)."""
    name = f"{difference.first} − {difference.second}"
    found = [("Table 3's gap", gap)] if (gap := _paper_gap(record, difference)) is not None else []
    return found + ([("the chapter's yardstick", record["claims"][name])] if name in record.get("claims", {}) else [])


def _page_family(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Difference], list[Difference]]:
    """Every tested difference on the page: each one's record, its section's test (Holm over its
    table) and the page's (Holm over every difference on the page), in the page's order."""
    tested = [r for r in records if r["pairs"]]
    owners = [r for r in tested for _ in r["pairs"]]
    section = [d for r in tested for d in _record_differences(r)]
    together = holm([dataclasses.replace(d, first=f"{r['title'].split(' (')[0]}: {d.first}")
                     for r, d in zip(owners, section)])
    return owners, section, together


def _findings(family: tuple[list[dict[str, Any]], list[Difference], list[Difference]]) -> str:
    """What the series found, in a few lines chosen by the verdicts: each section's own, and
    which of them stay beyond the noise when every difference on the page is tested together."""
    owners, section, together = family
    if not section:
        return ""
    lines = []
    for record in dict.fromkeys(map(id, owners)):
        mine = [(alone, both) for owner, alone, both in zip(owners, section, together) if id(owner) == record]
        owner = next(r for r in owners if id(r) == record)
        beyond = [alone for alone, _ in mine if alone.exceeds_noise]
        kept = [(alone, both) for alone, both in mine if both.exceeds_noise]
        alone_list = [alone for alone, _ in mine]
        unconfirmed = _sign_flip_short(alone_list, [_seeds(owner, d) for d in alone_list])
        leans = {id(d): _leans_on(d, owner, i in unconfirmed) for i, d in enumerate(alone_list)}
        shown = ("; beyond the noise there: " + ", ".join(
            f"{d.first} − {d.second} {d.difference:+.1f} points ({d.interval.describe()}{leans[id(d)]})"
            for d in beyond) if beyond else "")
        survivors = ", ".join(f"{alone.first} − {alone.second} (its {both.interval.describe()})"
                              for alone, both in kept) or "none"
        page = f"; over the whole page's family: {survivors}" if beyond and len(together) > len(mine) else ""
        chosen = " Exploratory: its setting was chosen on these test images." if owner.get("exploratory") else ""
        lines.append(f"- {owner['title'].split(' (')[0]}: {len(beyond)} of {len(mine)} differences beyond the noise "
                     f"in its own section{shown}{page}.{chosen}")
    lines += _claims_found(owners, section, together) + _plans_found(list({id(r): r for r in owners}.values()))
    return ("## What this run found\n\nEach line is chosen by the verdicts below: first its section's (Holm over "
            "its table), then, where the page has several sections, the whole page's (Holm over every difference "
            "on the page, the stricter reading, which keeps a false \"beyond the noise\" anywhere on the page at "
            "5%).\n\n" + "\n".join(lines) + "\n\n")


def results_page_markdown(profile: str, records: list[dict[str, Any]]) -> str:
    """The series' ``results.md`` from its records; empty when nothing was recorded. Each
    section tests its own differences (Holm over its table); a last section tests them all
    at once (Holm over every difference on the page), the stricter reading."""
    if not records:
        return ""
    family = _page_family(records)  # tested once: the findings and the last section read the same verdicts
    return (f"# What the `{profile}` series measured\n\n"
            "Top-1 accuracy on the test split, in percent. The paper's figures are CIFAR-100 after its GPU "
            "training: where the paper has figures for a section's pairs, the section compares the paper's gaps, "
            "never its accuracies, with this run's. With n "
            "seeds the exact sign-flip test's p can never go below 2 / 2^n (0.25 with 3 seeds, 0.0625 with 5): "
            "where that floor is above a row's Holm threshold (0.05 divided by the number of differences still "
            "in play), a verdict beyond the noise rests on the t-test's assumption of normal noise between seeds.\n\n"
            + _findings(family)
            + "\n\n".join(format_record(r) for r in records)
            + _whole_page_section(records, family, profile) + "\n")


# Where a profile's own recipe was chosen by runs that read the test images (its comment in
# titn_lite/train/profiles.py): every verdict at that profile leans on it.
RECIPE_READ_TEST = {"classroom": "the classroom profile's recipe (no mixing, no augmentation, AdamW) came partly from "
                                 "early one-seed probes that read the test images (notebook 12)"}


def _whole_page_section(records: list[dict[str, Any]],
                        family: tuple[list[dict[str, Any]], list[Difference], list[Difference]],
                        profile: str = "") -> str:
    """Every difference the page reports, Holm-adjusted over all of them together: a section's
    own correction keeps a false "beyond the noise" at 5% per table, this one for the page.
    Each row names its section (the title up to its parenthesis)."""
    tested = [r for r in records if r["pairs"]]
    owners, section, together = family
    testable = sum(d.testable for d in together)
    if len(tested) < 2 or testable < 2:
        return ""  # one table: its own correction is already the page's
    changed = [f"{both.first} − {both.second} ({'beyond' if alone.exceeds_noise else 'within'} the noise in its "
               f"section, {'beyond' if both.exceeds_noise else 'within'} it here)"
               for alone, both in zip(section, together) if alone.exceeds_noise != both.exceeds_noise]
    rulings = [f"{whose} {effect:+.2f} for {both.first} − {both.second} (ruled out by its section's interval, "
               f"inside this one, {both.interval.low:+.1f} to {both.interval.high:+.1f})"
               for record, alone, both in zip(owners, section, together) if alone.testable
               for whose, effect in _claims(record, alone)
               if alone.interval.excludes(effect) and not both.interval.excludes(effect)]
    exploratory = [r["title"].split(" (")[0] for r in tested if r.get("exploratory")]
    return ("\n\n## Every difference on this page, tested together\n\n"
            f"The sections above each correct for their own table. Here the p-values are Holm-adjusted over all "
            f"{testable} testable differences the page reports, so the chance of any false \"beyond the noise\" "
            "anywhere on the page stays at 5%, if the noise between seeds is normal and every setting was fixed "
            "before its test images were read"
            + (f" (not so for {', '.join(f'“{title}”' for title in exploratory)}: exploratory)" if exploratory else "")
            + (f"; {RECIPE_READ_TEST[profile]}" if profile in RECIPE_READ_TEST else "")
            + "; an adjusted p < 0.05 counts as beyond the noise. The intervals widen with the family, so a "
            "difference a section's interval ruled out may fit this one.\n\n"
            + format_differences(together)
            + ("\n\nVerdicts that change with the family: " + "; ".join(changed) + "." if changed else
               "\n\nEvery verdict is the same here as in its section.")
            + ("\n\nRulings that change with the family: " + "; ".join(rulings) + "." if rulings else
               "\n\nNo effect a section rules out fits this family's wider interval.")
            + _beyond_here(together, owners, section))


def _claims_found(owners: list[dict[str, Any]], section: list[Difference], together: list[Difference]) -> list[str]:
    """One line on the effects the sections read against their intervals (Table 3's gaps, the
    chapters' claims): which this setting rules out, in its section and over the whole page."""
    read = {"out in its section and over the whole page": [], "out in its section only": [], "still possible": []}
    for record, alone, both in zip(owners, section, together):
        for whose, effect in _claims(record, alone) if alone.testable else []:
            where = ("out in its section and over the whole page" if both.interval.excludes(effect) else
                     "out in its section only") if alone.interval.excludes(effect) else "still possible"
            notes = [_plan_caveat(record, alone)] if where != "still possible" else []
            ruling = both.interval if where.endswith("whole page") else alone.interval  # the widest that rules
            margin = min(abs(effect - ruling.low), abs(effect - ruling.high))
            notes += [f"outside by only {margin:.2g} points, a knife edge"] if where != "still possible" and \
                margin < KNIFE_EDGE else []
            notes = [note for note in notes if note]
            read[where].append(f"{whose} {effect:+.2f} for {alone.first} − {alone.second}"
                               + (f" ({'; '.join(notes)})" if notes else ""))
    if not any(read.values()):
        return []
    return ["- Effects read against this setting's simultaneous intervals (Table 3's gaps, from CIFAR-100, and the "
            "chapters' own; a ruling is about this setting, not the paper's): "
            + "; ".join(f"ruled {where}: {', '.join(found)}" if where != "still possible" else
                        f"{where}: {', '.join(found)}" for where, found in read.items() if found) + "."]


# A ruling closer to its interval's end than this (points) turns on the last decimals of a few runs.
KNIFE_EDGE = 0.1


def _plan_caveat(record: dict[str, Any], difference: Difference) -> str:
    """Where a difference's seeds scattered more than ``OFF_PLAN`` times off its plan: by how much,
    and (with the pilot's seeds recorded) how often chance alone puts it that far either way."""
    name = f"{difference.first} − {difference.second}"
    planned, hindsight = (record.get(key, {}).get(name) for key in ("detectable", "hindsight"))
    off = off_plan(planned, hindsight)
    if not off:
        return ""
    pilot = record.get("pilot_seeds")
    chance = (f", which chance gives {chance_of_ratio(hindsight / planned, _seeds(record, difference), pilot):.1%} "
              "of the time under normal noise" if pilot else "")
    return f"{off}: its seeds scattered {hindsight / planned:.2f} x as planned{chance}"


def _plans_found(records: list[dict[str, Any]]) -> list[str]:
    """One line on the plans: how many landed more than ``OFF_PLAN`` times off their hindsight
    figures, and how often chance alone puts that many off when every plan is right (each
    comparison's chance from its seeds and its pilot's, ``pilots.chance_off_plan``)."""
    off, chances, farthest = [], [], []
    for record in records:
        if not record.get("pilot_seeds"):
            continue
        for name, planned in (record.get("detectable") or {}).items():
            hindsight = (record.get("hindsight") or {}).get(name)
            if not planned or hindsight is None:
                continue
            seeds = len(record["values"][name.split(" − ")[-1]])
            chances.append(chance_off_plan(seeds, record["pilot_seeds"]))
            if off_plan(planned, hindsight):
                off.append(f"{name} ({hindsight / planned:.2f} x)")
                farthest.append((chance_of_ratio(hindsight / planned, seeds, record["pilot_seeds"]), name,
                                 hindsight / planned))
    if not chances:
        return []
    extreme = ""
    if farthest:
        alone, name, ratio = min(farthest)
        extreme = (f" The farthest off, {name} at {ratio:.2f} x, comes {alone:.1%} of the time alone and "
                   f"{most_extreme_chance(alone, len(chances)):.0%} as the most extreme of the {len(chances)}: a ratio "
                   "picked for being the farthest off is less surprising than one read alone.")
    return [f"- The plans: {len(off)} of {len(chances)} hindsight figures landed more than {OFF_PLAN:g} times off "
            f"their plans{': ' + ', '.join(off) if off else ''}. Were every plan right, chance alone would put "
            f"{len(off)} or more that far off in {chance_of_at_least(chances, len(off)):.0%} of runs like this one "
            f"(a few seeds estimate a scatter loosely: each comparison lands that far off "
            f"{min(chances):.0%} to {max(chances):.0%} of the time; the comparisons are counted as independent, "
            "which those sharing a setting are not quite)." + extreme]


def _sign_flip_short(differences: list[Difference], seeds: list[int]) -> set[int]:
    """The positions in ``differences`` (one Holm family; ``seeds``: each one's seed count) of the
    verdicts beyond the noise whose exact sign-flip p could never reach their Holm threshold: they
    rest on normal noise."""
    ranked = sorted((i for i, d in enumerate(differences) if d.testable), key=lambda i: differences[i].p_value)
    return {i for rank, i in enumerate(ranked) if differences[i].exceeds_noise
            and smallest_sign_flip_p(seeds[i]) >= NOISE_LEVEL / (len(ranked) - rank)}


def _seeds(record: dict[str, Any], difference: Difference) -> int:
    return len(record["values"][difference.second])


def _leans_on(difference: Difference, record: dict[str, Any], unconfirmed: bool) -> str:
    """What a verdict beyond the noise leans on: a difference smaller than its plan, a sign-flip
    test that cannot confirm it."""
    plan = (record.get("detectable") or {}).get(f"{difference.first} − {difference.second}")
    notes = [f"smaller than its planned {plan:.1f}, so it leans on small scatter"] if plan and abs(
        difference.difference) < plan else []
    notes += ["the exact sign-flip test cannot confirm it"] if unconfirmed else []
    notes += [caveat] if (caveat := _plan_caveat(record, difference)) else []
    return "".join(f"; {note}" for note in notes)


def _beyond_here(together: list[Difference], owners: list[dict[str, Any]], section: list[Difference]) -> str:
    """What stands behind each difference still beyond the noise over the whole page (``section``:
    the same differences as their sections name them)."""
    seeds = [_seeds(record, d) for d, record in zip(together, owners)]
    unconfirmed = _sign_flip_short(together, seeds)
    notes = []
    for i, (d, record) in enumerate(zip(together, owners)):
        if not d.exceeds_noise:
            continue
        caveats = (["exploratory"] if record.get("exploratory") else []) + (
            [f"with {seeds[i]} seeds the exact sign-flip test cannot go below {smallest_sign_flip_p(seeds[i]):.4g}, "
             "above its Holm threshold, so the verdict rests on normal noise"] if i in unconfirmed else []) + (
            [caveat] if (caveat := _plan_caveat(record, section[i])) else [])
        notes.append(f"{d.first} − {d.second}: " + ("; ".join(caveats) if caveats else "no caveat beyond the page's"))
    return ("\n\nBeyond the noise over the whole page: " + "; ".join(notes) + ".") if notes else ""
