"""The notebook series: committed clean, parameterised, and run end to end by the CLI."""

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from markdown_tables import alignment, header, row_starting, table_rows

from titn_lite.classroom.course import Course
from titn_lite.classroom.series import (
    CHECKED_MARK,
    check_jobs,
    default_jobs,
    kernel_threads,
    list_notebooks,
    run_series,
    select_notebooks,
    side_by_side_order,
)
from titn_lite.results.pilots import PILOT_SEEDS
from titn_lite.system.cpu import available_cores
from titn_lite.train.profiles import get_profile

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = list_notebooks()


def test_the_series_is_numbered_and_complete():
    assert [p.stem for p in NOTEBOOKS] == [
        "00_setup", "01_attention", "02_vit", "03_inner_outer", "04_titn", "05_cutmix", "06_teacher",
        "07_distillation", "08_comparison", "09_attention_maps", "10_ablations", "11_unlabelled", "12_paper_run"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_or_execution_counts(path):
    notebook = nbformat.read(path, as_version=4)
    assert "widgets" not in notebook.metadata, f"{path.name}: saved widget state committed"
    checked_cells = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        checked = CHECKED_MARK in cell.source
        checked_cells += checked
        expected_count = checked_cells if checked else None
        assert cell.execution_count == expected_count, f"{path.name}: execution count {cell.execution_count} left in"
        for output in cell.outputs:
            assert checked, f"{path.name}: output committed in an unchecked cell: {cell.source[:60]!r}"
            assert output.output_type in ("stream", "execute_result"), f"{path.name}: {output.output_type} output"
            assert "image/png" not in output.get("data", {}), f"{path.name}: image committed"
        assert sum(len("".join(o.get("text", ""))) for o in cell.outputs) < 2000, f"{path.name}: bulky output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_defaults_to_classroom(path):
    notebook = nbformat.read(path, as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    source = tagged[0].source
    assert 'profile = os.environ.get("TITN_LITE_PROFILE", "classroom")' in source
    assert 'device = "auto"' in source
    # the tests point it at a temporary folder (conftest.py); a student's default is ../artifacts
    assert 'artifacts_dir = os.environ.get("TITN_LITE_ARTIFACTS", "../artifacts")' in source
    assert "install = False" in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_define_no_package_functions_they_reuse_later(path):
    """A notebook may write a piece out to teach it, but nothing it defines is imported or
    reused by a later notebook: shared code lives in titn_lite."""
    later = [p for p in NOTEBOOKS if p > path]
    defined = {line.split("(")[0].split()[1] for cell in nbformat.read(path, as_version=4).cells
               if cell.cell_type == "code" for line in cell.source.splitlines()
               if line.startswith(("def ", "class "))}
    for other in later:
        text = "\n".join(c.source for c in nbformat.read(other, as_version=4).cells if c.cell_type == "code")
        reused = {name for name in defined if f"{name}(" in text and f"def {name}" not in text}
        assert not reused, f"{other.name} reuses {reused} defined in {path.name}"


PROSE_WORDS = re.compile(r"[A-Za-z0-9][\w'.-]*")


def _prose(path: Path) -> str:
    return "\n\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_teaches_why_warns_sums_up_and_answers_its_exercises(path):
    prose = _prose(path)
    assert len(PROSE_WORDS.findall(prose)) >= 650, f"{path.name}: a chapter, not lab notes"
    headings = re.findall(r"^## (.+)$", prose, flags=re.MULTILINE)
    for section in ("Common mistakes", "Summary", "Exercises"):
        assert section in headings, f"{path.name} has no '## {section}' section"
    assert headings.index("Summary") < headings.index("Exercises")
    if path.stem != "00_setup":  # the setup chapter's "why" is the series' own
        assert any(h.startswith("Why") for h in headings), f"{path.name} does not say why its idea exists"
    exercises = prose[prose.index("## Exercises"):]
    questions = re.findall(r"^\d\. ", exercises, flags=re.MULTILINE)
    answers = re.findall(r"<details><summary>Worked answer</summary>\n\n.+?\n\s*</details>", exercises, flags=re.DOTALL)
    assert questions and len(answers) == len(questions), f"{path.name}: every exercise has a worked answer to reveal"


def _published_figures() -> list[float]:
    from titn_lite.results import paper

    results = [r for table in paper.RESULTS.values() for r in table.values()] + [paper.TITN_MIXUP_CIFAR100]
    figures = [r.top1 for r in results] + [r.top5 for r in results]
    return figures + [a - b for a in figures for b in figures]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_prose_states_no_measured_accuracy_by_hand(path):
    """Accuracies and gaps in the prose are the paper's (or differences of them); what a run
    measured is printed by its cells, so it stays true when a parameter changes."""
    published = _published_figures()
    for number in re.findall(r"(\d+\.\d+)\s*(?:%|points?\b)", _prose(path)):
        assert any(abs(float(number) - figure) < 0.051 for figure in published), (
            f"{path.name} states {number} in its prose; format measured figures from the run's outputs")


# A percentage, or a factor stated as "N times faster/more/...", typed into prose.
TYPED_SHARE = re.compile(r"(?<![\w.,§])(\d+(?:\.\d+)?)\s*(?:%|percent\b)")
TYPED_FACTOR = re.compile(r"(?<![\w.,§])(\d+(?:\.\d+)?)(?:\s*(?:to|-)\s*\d+(?:\.\d+)?)?\s+times\s+"
                          r"(?:faster|slower|more|fewer|less|larger|smaller|bigger|cheaper|higher|lower)\b")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_prose_types_in_no_measured_share_or_factor(path):
    """A percentage or an "N times faster" in the prose is the paper's (one of its figures, or
    a sentence citing its section), the kit's noise level, confidence or power, or worked out in the same sentence
    (an "=" shows the arithmetic); anything a run measured is printed by a cell instead."""
    from titn_lite.results.stats import NOISE_LEVEL, POWER

    # The conventions a test is stated in (5%, its 95% interval, 80% power) are not measurements.
    published = _published_figures() + [100 * NOISE_LEVEL, 100 * (1 - NOISE_LEVEL), 100 * POWER]
    typed = []
    for sentence in re.split(r"(?<=[.!?])\s+", _prose(path)):
        if "=" in sentence or "§" in sentence:
            continue
        without_quotes = re.sub(r'"[^"]*"', "", sentence)  # a quoted example label ("75% sneaker")
        for number in TYPED_SHARE.findall(without_quotes) + TYPED_FACTOR.findall(without_quotes):
            if not any(abs(float(number) - figure) < 0.051 for figure in published):
                typed.append(f"{number}: {' '.join(sentence.split())[:120]}")
    assert not typed, f"{path.name} types in figures a cell should print: {typed}"


def test_the_typed_figure_check_catches_the_mistakes_it_is_for():
    assert TYPED_SHARE.findall("TNT is slower than its 13% extra FLOPs suggest") == ["13"]
    assert TYPED_FACTOR.findall("Correct, and 16 to 64 times slower: fold the patches") == ["16"]
    assert TYPED_FACTOR.findall("it re-runs the procedure 20,000 times and measures") == []


def test_select_notebooks_names_the_series_on_a_typo():
    assert [p.stem for p in select_notebooks(["01", "05"])] == ["01_attention", "05_cutmix"]
    with pytest.raises(ValueError, match="no notebook starts with 99; the series: 00_setup"):
        select_notebooks(["99"])


def test_runner_keeps_going_past_a_failing_notebook_and_names_the_cell(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    cells = [nbformat.v4.new_code_cell("profile = 'classroom'\nx = 1")]
    cells[0].metadata["tags"] = ["parameters"]
    good = nbformat.v4.new_notebook(cells=cells + [nbformat.v4.new_code_cell("print(x + 1)")])
    bad = nbformat.v4.new_notebook(cells=cells + [nbformat.v4.new_code_cell("1 / 0")])
    nbformat.write(bad, folder / "00_bad.ipynb")
    nbformat.write(good, folder / "01_good.ipynb")
    results = run_series(Course("smoke", artifacts=tmp_path, progress=False), out_dir=tmp_path / "out", folder=folder)
    assert [(r.notebook, r.status) for r in results] == [("00_bad", "failed"), ("01_good", "ok")]
    assert results[0].error.startswith("ZeroDivisionError") and results[0].failed_cell is not None
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["notebooks"][0]["status"] == "failed"
    assert summary["machine"].startswith(("CPU (", "CUDA (")) and summary["finished"] > 0
    table = (tmp_path / "out" / "summary.md").read_text()
    assert header(table) == ["notebook", "status", "seconds", "failing cell", "error"] and alignment(table) == "llrrl"
    failed = row_starting(table, "00_bad")
    assert failed[1] == "failed" and failed[3] == str(results[0].failed_cell)
    assert failed[4].startswith("ZeroDivisionError")
    assert row_starting(table, "**total**")[1] == "1/2 ok"


def test_runner_at_two_jobs_gives_one_jobs_results_in_the_series_order(tmp_path, monkeypatch):
    """Side by side, the notebooks end as they do one after another, listed in the series' order,
    and each kernel gets its share of the cores."""
    folder = tmp_path / "series"
    folder.mkdir()
    parameters = nbformat.v4.new_code_cell("profile = 'classroom'")
    parameters.metadata["tags"] = ["parameters"]
    bodies = {"00_slow": "import time; time.sleep(2)", "01_bad": "1 / 0", "02_threads": "import os\n"
              "print(os.environ.get('OMP_NUM_THREADS'))", "03_good": "print('ok')"}
    for name, body in bodies.items():
        cells = [parameters, nbformat.v4.new_code_cell(body)]
        nbformat.write(nbformat.v4.new_notebook(cells=cells), folder / f"{name}.ipynb")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    course = Course("smoke", artifacts=tmp_path, progress=False)
    one = run_series(course, out_dir=tmp_path / "one", folder=folder, jobs=1)
    two = run_series(course, out_dir=tmp_path / "two", folder=folder, jobs=2)
    assert [(r.notebook, r.status, r.failed_cell) for r in two] == [(r.notebook, r.status, r.failed_cell) for r in one]
    assert [r.status for r in two] == ["ok", "failed", "ok", "ok"]
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert [n["notebook"] for n in summary["notebooks"]] == list(bodies)
    # the wall clock is the series' own, less than the notebooks' seconds added up when they overlap
    assert summary["jobs"] == 2 and 2 <= summary["wall_seconds"] <= summary["total_seconds"]
    assert "Wall clock:" in (tmp_path / "two" / "summary.md").read_text()
    threads = {run: _outputs(tmp_path / run / "02_threads.ipynb").strip() for run in ("one", "two")}
    # one job: the kernel's threads are torch's own choice, as before; two: half the cores each
    assert threads == {"one": "None", "two": str(max(1, available_cores() // 2))}
    assert kernel_threads(1) == {} and kernel_threads(3, cores=8) == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}


def test_notebooks_side_by_side_run_from_relative_folders(tmp_path, monkeypatch):
    # The README's `notebooks run` writes to runs/notebooks, a relative path; papermill changes
    # the process's working directory while a notebook runs, so the notebook beside it once
    # failed to find its own output file (CI's smoke series, 06_teacher).
    monkeypatch.chdir(tmp_path)
    Path("series").mkdir()
    parameters = nbformat.v4.new_code_cell("profile = 'classroom'")
    parameters.metadata["tags"] = ["parameters"]
    for index in range(4):
        cells = [parameters, nbformat.v4.new_code_cell("import time; time.sleep(1.5)"),
                 nbformat.v4.new_code_cell("print('done')")]
        nbformat.write(nbformat.v4.new_notebook(cells=cells), Path("series") / f"0{index}_nap.ipynb")
    course = Course("smoke", artifacts=tmp_path / "artifacts", progress=False)
    results = run_series(course, out_dir="runs/notebooks", folder=Path("series"), jobs=2)
    assert [(r.status, r.error) for r in results] == [("ok", None)] * 4
    assert all("done" in _outputs(tmp_path / "runs" / "notebooks" / f"0{i}_nap.ipynb") for i in range(4))


def test_the_runners_kernels_are_shut_down_without_an_interrupt(monkeypatch):
    """jupyter_client interrupts a kernel (SIGINT) before asking it to shut down; a kernel still
    in a message handler then logs an ERROR line on the series' stderr. The runner only asks."""
    import asyncio

    from titn_lite.classroom.series import _kernel_manager_class

    manager = _kernel_manager_class()()
    signalled = []

    async def signal_kernel(signum):
        signalled.append(signum)

    monkeypatch.setattr(manager, "_async_signal_kernel", signal_kernel)
    manager.shutting_down = True
    asyncio.run(manager._async_interrupt_kernel())
    assert signalled == []


@pytest.mark.parametrize("jobs", ["0", "-1", "two", "1.5"])
def test_notebooks_run_refuses_a_bad_jobs_count_in_one_line(tmp_path, capsys, jobs):
    from titn_lite.cli import main

    assert main(["notebooks", "run", "--profile", "smoke", "--only", "00", "--jobs", jobs, "--out",
                 str(tmp_path / "out"), "--artifacts", str(tmp_path / "artifacts")]) == 2
    said = int(jobs) if jobs.isdigit() else jobs  # a count the command line gave as digits is read as a number
    assert f"jobs must be a positive whole number of notebooks run at once (1: one after another), got {said!r}" \
        in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_the_default_jobs_is_two_on_a_cpu_with_cores_to_spare_and_one_on_a_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert [default_jobs("auto", cores=c) for c in (1, 2, 16)] == [1, 2, 2]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_jobs("auto", cores=16) == 1 and default_jobs("cpu", cores=16) == 2
    assert check_jobs(3) == 3 and check_jobs("2") == 2


def _outputs(path: Path) -> str:
    """Everything an executed notebook's cells show as text."""
    shown = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            shown.append("".join(output.get("text", "")) + "".join(data.get("text/markdown", ""))
                         + "".join(data.get("text/plain", "")))
    return "\n".join(shown)


STATISTICS_CHAPTERS = [p for p in NOTEBOOKS if p.stem in ("08_comparison", "10_ablations", "11_unlabelled")]


@pytest.mark.parametrize("path", STATISTICS_CHAPTERS, ids=lambda p: p.stem)
def test_the_statistics_chapters_code_cells_are_short_enough_to_read(path):
    """The idea in the notebook, the plumbing in the package: no code cell over 15 lines."""
    long = [(i, len(c.source.splitlines())) for i, c in enumerate(nbformat.read(path, as_version=4).cells)
            if c.cell_type == "code" and len(c.source.splitlines()) > 15
            and not c.metadata.get("jupyter", {}).get("source_hidden")]  # the collapsed set-up cell
    assert not long, f"{path.name}: code cells (index, lines) over 15 lines: {long}"


def test_smoke_series_runs_from_the_cli(tmp_path):
    """The README's main job at the smoke profile: every notebook, end to end."""
    result = subprocess.run(
        [sys.executable, "-m", "titn_lite", "notebooks", "run", "--profile", "smoke", "--out", str(tmp_path / "out"),
         "--artifacts", str(tmp_path / "artifacts")],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    failed = [n for n in summary["notebooks"] if n["status"] != "ok"]
    assert result.returncode == 0 and not failed, failed or result.stderr[-2000:]
    assert len(summary["notebooks"]) == len(NOTEBOOKS)
    # What a student reads is the bar and the table: no kernel log line, no notebook-format warning.
    assert "WARNING" not in result.stderr and "Warning" not in result.stderr, result.stderr[-2000:]
    assert "ERROR" not in result.stderr, result.stderr[-2000:]  # e.g. a kernel's KeyboardInterrupt line
    # The series gathers what 06, 08 and 10 measured, every seed of every setting, into one page.
    results = (tmp_path / "out" / "results.md").read_text()
    sections = re.findall(r"^## (.+)$", results, flags=re.MULTILINE)
    assert sections == ["What this run found", "The CNN teacher", "The five students (notebook 08)",
                        "TITN ablations (notebook 10)",
                        "The teacher on images without labels (notebook 11)",
                        "Every difference on this page, tested together"]
    seeds = get_profile("smoke").seeds
    rows = table_rows(results)
    for name in ("vit", "deit", "tnt", "titn", "titn_large_patch", "no teacher", "CutMix (alpha 0.5)"):
        row = next(row for row in rows if row[0] == name)  # setting, mean ± std, each seed
        assert len(row[2].split(",")) == seeds, row  # one value per seed
    compared = {row[0] for row in rows}
    assert {"deit − vit", "no teacher − TITN large patch (reference)"} <= compared
    assert {"DeiT hard − DeiT (twin)", "DeiT soft − DeiT (twin)", "DeiT soft − DeiT hard"} <= compared
    # The statistics chapters print each comparison's plan before their runs and in hindsight after,
    # and no chapter ends a cell on a stray return value (a path, say).
    pilot_source = f"from its pilot: the same runs on seeds {PILOT_SEEDS[0]}-{PILOT_SEEDS[-1]}"
    for name in ("08_comparison", "10_ablations", "11_unlabelled"):
        shown = _outputs(tmp_path / "out" / f"{name}.ipynb")
        assert pilot_source in shown and "in hindsight" in shown, name
    for executed in sorted((tmp_path / "out").glob("[0-9][0-9]_*.ipynb")):
        assert "PosixPath(" not in _outputs(executed), f"{executed.name} shows a stray path"
    assert len(next(row for row in rows if row[0] == "titn")) == 3  # no CIFAR-100 accuracy beside a Fashion-MNIST one
    assert "titn − tnt +6.24 (" in results and "Planned before the runs, from the chapter's pilot" in results
    print(f"smoke series: {summary['total_seconds']:.0f} s")


def test_a_shared_run_is_reused_whether_the_artifacts_folder_is_named_relative_or_absolute(tmp_path, monkeypatch):
    """JupyterLab's notebooks name it "../artifacts"; `titn-lite notebooks run` passes the
    absolute path. Both must find the same distilled run, teacher included."""
    monkeypatch.chdir(tmp_path)
    relative = Course("smoke", artifacts="artifacts", progress=False).run("titn")
    absolute = Course("smoke", artifacts=tmp_path / "artifacts", progress=False).run("titn")
    assert absolute.out_dir.resolve() == relative.out_dir.resolve()
    assert absolute.history == relative.history


def test_without_a_jupyter_kernel_the_runner_says_which_extra_to_install(tmp_path, monkeypatch, capsys):
    """Jupyter is an extra (a hosted image has its own); without ipykernel, one line says what to do."""
    import sys

    from titn_lite.cli import main

    monkeypatch.setitem(sys.modules, "ipykernel.kernelspec", None)  # import fails as if not installed
    assert main(["notebooks", "run", "--profile", "smoke", "--only", "00", "--out", str(tmp_path / "out"),
                 "--artifacts", str(tmp_path / "artifacts")]) == 2
    assert "pip install 'titn-lite[jupyter]'" in capsys.readouterr().err


def test_kernel_environment_sets_variables_for_the_block_and_restores_them(monkeypatch):
    import os

    from titn_lite.classroom.series import kernel_environment

    monkeypatch.setenv("TITN_LITE_PROFILE", "classroom")
    monkeypatch.delenv("PYDEVD_DISABLE_FILE_VALIDATION", raising=False)
    with kernel_environment(TITN_LITE_PROFILE="smoke", PYDEVD_DISABLE_FILE_VALIDATION="1"):
        assert os.environ["TITN_LITE_PROFILE"] == "smoke" and os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] == "1"
    assert os.environ["TITN_LITE_PROFILE"] == "classroom" and "PYDEVD_DISABLE_FILE_VALIDATION" not in os.environ


def test_a_run_made_on_one_device_is_reused_when_asked_with_another(tmp_path):
    """`notebooks run --device cpu`, then the same notebook in JupyterLab (device "auto"), or
    a GPU box's run opened on a laptop: the device is not part of what a run is."""
    made = Course("smoke", device="cpu", artifacts=tmp_path, progress=False).run("vit")
    written = made.folder.checkpoint_path.stat().st_mtime_ns
    again = Course("smoke", device="auto", artifacts=tmp_path, progress=False).run("vit")
    assert again.out_dir == made.out_dir and again.history == made.history
    assert made.folder.checkpoint_path.stat().st_mtime_ns == written  # reused, not trained again


def test_the_runs_of_a_moved_artifacts_folder_are_reused(tmp_path):
    """A distilled student records its teacher's checkpoint path; moved elsewhere, the teacher
    is the same run (known by its own run's identity), so the student is reused, not refused."""
    import shutil

    made = Course("smoke", artifacts=tmp_path / "here", progress=False).run("titn")
    shutil.move(tmp_path / "here", tmp_path / "there")
    folders = sorted(p.name for p in (tmp_path / "there" / "smoke").iterdir())
    moved = Course("smoke", artifacts=tmp_path / "there", progress=False).run("titn")
    assert moved.out_dir == tmp_path / "there" / "smoke" / made.out_dir.name and moved.history == made.history
    assert sorted(p.name for p in (tmp_path / "there" / "smoke").iterdir()) == folders  # nothing trained anew


def test_side_by_side_notebook_11_starts_right_after_06_and_the_rest_keep_their_order():
    names = ["00_setup", "05_cutmix", "06_teacher", "07_distillation", "08_comparison", "09_attention_maps",
             "10_ablations", "11_unlabelled", "12_paper_run"]
    order = [p.stem for p in side_by_side_order([Path(f"{name}.ipynb") for name in names])]
    assert order == ["00_setup", "05_cutmix", "06_teacher", "11_unlabelled", "07_distillation", "08_comparison",
                     "09_attention_maps", "10_ablations", "12_paper_run"]
    assert [p.stem for p in side_by_side_order([Path("07_distillation.ipynb"), Path("11_unlabelled.ipynb")])] == [
        "11_unlabelled", "07_distillation"]
    assert [p.stem for p in side_by_side_order([Path("01_attention.ipynb"), Path("12_paper_run.ipynb")])] == [
        "01_attention", "12_paper_run"]
