"""Tables of measured runs beside the paper's figures (Tables 2-5 in shape)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from titn_lite import paper
from titn_lite.checkpoints import load_checkpoint, write_atomic, write_json
from titn_lite.profile import count_flops, count_parameters
from titn_lite.stats import compare_pairs, format_differences, seed_results
from titn_lite.tables import MarkdownTable
from titn_lite.training import model_from_checkpoint


@dataclass
class RunSummary:
    """One finished run: what was trained on what, how well, at what size and cost."""

    run_dir: Path
    model: str
    dataset: str
    top1: float  # the last epoch's test top-1: the run's result
    best_top1: float  # the highest test top-1 of any epoch: what the paper reports (§4.2)
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
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise ValueError(f"{run_dir} is not a complete titn-lite run (no metrics.json); finish it with "
                         f"titn-lite train ... --out {run_dir} --resume")
    metrics = json.loads(metrics_path.read_text())
    history = json.loads((run_dir / "history.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    model = model_from_checkpoint(checkpoint)
    return RunSummary(
        run_dir=run_dir, model=metrics["model"], dataset=metrics["dataset"], top1=metrics["top1"],
        best_top1=max(row["val_top1"] for row in history), top5=metrics["top5"], precision=metrics["precision"],
        recall=metrics["recall"], f1=metrics["f1"],
        params=count_parameters(model), flops_per_image=count_flops(model, in_chans=checkpoint["in_chans"]),
        images_per_second=sum(r["images_per_second"] for r in history) / len(history),
        seconds=sum(r["seconds"] for r in history), mix=config["mix"],
    )


def format_report(summaries: list[RunSummary]) -> MarkdownTable:
    """Markdown: one row per run, measured beside the paper's top-1/top-5 (and P/R/F1). Top-1
    is the last epoch's; "best" the highest over epochs, which is what the paper reports."""
    def paper_value(summary: RunSummary, field: str, scale: float = 1.0) -> str:
        result = summary.paper
        value = getattr(result, field) if result else None
        return f"{value * scale:.2f}" if value is not None else "-"

    lines = [
        "| model | dataset | top-1 % | best top-1 % | top-5 % | precision | recall | F1 | GFLOPs / 512 "
        "| params (M) | train img/s | train s | paper top-1 % | paper top-5 % | paper P / R / F1 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        prf = " / ".join(paper_value(s, f) for f in ("precision", "recall", "f1"))
        lines.append(
            f"| {s.model}{' (MixUp)' if s.mix == 'mixup' else ''} | {s.dataset} | {100 * s.top1:.2f} | "
            f"{100 * s.best_top1:.2f} | {100 * s.top5:.2f} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | "
            f"{s.flops_per_image * paper.GFLOPS_BATCH / 1e9:.2f} | {s.params / 1e6:.3f} | "
            f"{s.images_per_second:.0f} | {s.seconds:.0f} | {paper_value(s, 'top1')} | {paper_value(s, 'top5')} | {prf} |"
        )
    lines.append("\nTop-1: the last epoch's; best: the highest over epochs, the paper's measure (§4.2), which "
                 "picks an epoch by its test score and so flatters a run. Paper: Tables 2-3 (CIFAR-100), "
                 "4 (CIFAR-10), 5 (MNIST); '-' where the paper gives no figure.")
    return MarkdownTable("\n".join(lines))


# The series' results page: notebooks 06, 08 and 10 record what they measured (per seed),
# and ``titn-lite notebooks run`` gathers the records into ``results.md`` once the series
# has run. Records live beside the runs they summarize: ARTIFACTS/PROFILE/results/NAME.json.
RESULT_RECORDS = ("teacher", "comparison", "ablations")


def _record_path(artifacts_dir: str | Path, profile: str, name: str) -> Path:
    return Path(artifacts_dir) / profile / "results" / f"{name}.json"


def record_results(name: str, *, artifacts_dir: str | Path, profile: str, title: str, setting: str,
                   values: dict[str, list[float]], pairs: Sequence[tuple[str, str]] = (),
                   paper_top1: dict[str, float | None] | None = None, paired: bool = True) -> Path:
    """Save one notebook's measured top-1 (percent, one value per seed) for the results page.

    ``setting`` says in words what was trained (epochs, images, seeds); ``pairs`` are the
    (first, second) labels whose difference the page tests; ``paper_top1`` the published
    figure beside a label, where the paper has one; ``paired``: value k of every label came
    from seed k (the kit's seed runs), so the page tests each pair with the paired t-test."""
    if name not in RESULT_RECORDS:
        raise ValueError(f"unknown results record {name!r}; valid: {', '.join(RESULT_RECORDS)}")
    unknown = sorted({label for pair in pairs for label in pair} - set(values))
    if unknown:
        raise ValueError(f"pairs name {', '.join(unknown)}, which have no values; measured: {', '.join(values)}")
    path = _record_path(artifacts_dir, profile, name)
    write_json(path, {"title": title, "setting": setting, "values": values, "pairs": [list(p) for p in pairs],
                      "paper_top1": paper_top1 or {}, "paired": paired})
    return path


def clear_results(artifacts_dir: str | Path, profile: str) -> None:
    """Forget earlier records, so that a page gathered after a run shows that run alone."""
    for name in RESULT_RECORDS:
        _record_path(artifacts_dir, profile, name).unlink(missing_ok=True)


def results_markdown(artifacts_dir: str | Path, profile: str) -> str:
    """The records of a series run as Markdown sections (empty when nothing was recorded):
    each setting's mean ± spread over seeds beside the paper, and which differences
    exceed the seeds' scatter."""
    sections = []
    for name in RESULT_RECORDS:
        path = _record_path(artifacts_dir, profile, name)
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        results = seed_results(record["values"])
        rows = ["| setting | top-1 % (mean ± std) | each seed | paper top-1 % |", "|---|---:|---|---:|"]
        for label, result in results.items():
            published = record["paper_top1"].get(label)
            each = ", ".join(f"{v:.1f}" for v in result.values)
            rows.append(f"| {label} | {result.describe()} | {each} | {published if published is not None else '-'} |")
        section = [f"## {record['title']}", "", record["setting"], "", *rows]
        if record["pairs"]:
            paired = record.get("paired", False)  # records written before runs were paired by seed: Welch
            differences = compare_pairs(results, [tuple(pair) for pair in record["pairs"]], paired=paired)
            test = "the paired t-test over seeds" if paired else "Welch's t-test"
            section += ["", f"Is each difference larger than the scatter between seeds? ({test}; the p-values "
                        f"are Holm-adjusted over the {len(differences)} differences of this table, and an adjusted "
                        "p < 0.05 counts as beyond the noise.)", "", format_differences(differences)]
        sections.append("\n".join(section))
    return "\n\n".join(sections)


def write_results_page(out_dir: str | Path, artifacts_dir: str | Path, profile: str) -> Path | None:
    """``OUT/results.md`` from the series' records; None (and nothing written) without any."""
    body = results_markdown(artifacts_dir, profile)
    if not body:
        return None
    path = Path(out_dir) / "results.md"
    page = (f"# What the `{profile}` series measured\n\n"
            "Top-1 accuracy on the test split, in percent. The paper's figures are CIFAR-100 after "
            "hundreds of GPU epochs (its Table 3): compare the ranking and the size of the gaps, "
            "not the accuracies.\n\n" + body + "\n")
    write_atomic(path, page.encode())
    return path
