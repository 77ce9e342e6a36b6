"""Run the numbered notebook series with papermill, in order, and summarise the results.

``titn-lite notebooks run [--profile P] [--only 01,05] [--out DIR]`` is the kit's main
job. It registers a Jupyter kernel for the Python it runs in (inside that environment,
so nothing needs setting up by hand), runs every notebook with the profile injected
into its ``parameters`` cell, keeps going past a failing notebook, and writes the
executed notebooks plus ``summary.json`` and ``summary.md`` to ``DIR``; after the whole
series, also ``results.md``, what notebooks 06, 08, 10 and 11 measured (``titn_lite.report``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from titn_lite.checkpoints import write_atomic, write_json
from titn_lite.course import Course
from titn_lite.packaged import series_folder
from titn_lite.report import results_page_markdown

NOTEBOOK_DIR = series_folder()
KERNEL_NAME = "titn-lite"
# A batch run reads its kernels' outputs from the executed notebooks; their log lines (a
# transport warning per kernel, say) would only bury the progress bar and the table.
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR"]
CHECKED_MARK = "# NBVAL_CHECK_OUTPUT"


def list_notebooks(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The series, in order: ``NN_name.ipynb`` files."""
    return sorted(p for p in folder.glob("*.ipynb") if re.match(r"\d\d_", p.name))


@dataclass
class NotebookResult:
    notebook: str
    status: str  # ok | failed
    seconds: float
    failed_cell: int | None = None
    error: str | None = None


def ensure_kernel() -> str:
    """A kernelspec named ``titn-lite`` that starts this very Python; installed into this
    environment's own ``share/jupyter/kernels`` when missing or pointing elsewhere."""
    try:
        from ipykernel.kernelspec import install
    except ImportError:  # Jupyter is the `jupyter` extra: a hosted image has its own kernel
        raise ValueError("running the notebooks needs a Jupyter kernel (ipykernel) in this Python: pip install "
                         "ipykernel, or the kit's jupyter extra (pip install 'titn-lite[jupyter]'; in a clone, "
                         "pip install -e '.[jupyter]')") from None
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if spec.argv and Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return KERNEL_NAME
    except NoSuchKernel:
        pass
    install(kernel_name=KERNEL_NAME, display_name="Python (titn-lite)", prefix=sys.prefix)
    return KERNEL_NAME


def select_notebooks(only: list[str] | None, folder: Path = NOTEBOOK_DIR) -> list[Path]:
    notebooks = list_notebooks(folder)
    if not only:
        return notebooks
    chosen = [p for p in notebooks if any(p.name.startswith(prefix) for prefix in only)]
    unmatched = [prefix for prefix in only if not any(p.name.startswith(prefix) for p in notebooks)]
    if unmatched:
        raise ValueError(f"no notebook starts with {', '.join(unmatched)}; the series: "
                         f"{', '.join(p.stem for p in notebooks)}")
    return chosen


def run_series(course: Course, *, only: list[str] | None = None, out_dir: str | Path = "runs/notebooks",
               folder: Path = NOTEBOOK_DIR) -> list[NotebookResult]:
    """Execute the series for ``course`` (its profile, device and artifacts folder reach each
    notebook's parameters cell); returns one result per notebook (never raises for a failing one)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebooks = select_notebooks(only, folder)
    # Older ipykernels (6.2x, as hosted images ship) load debugpy, which prints a four-line
    # warning per kernel on Python 3.11+ unless this is set while the kernels start.
    with kernel_environment(PYDEVD_DISABLE_FILE_VALIDATION="1"):
        kernel = ensure_kernel()
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        parameters = {"profile": course.profile, "device": course.device, "artifacts_dir": str(course.artifacts)}
        results: list[NotebookResult] = []
        if not only:
            course.clear_results()  # notebooks 06, 08, 10 and 11 record this run's afresh
        bar = tqdm(notebooks, desc=f"notebooks ({course.profile})", disable=not course.progress, unit="nb")
        for notebook in bar:
            bar.set_postfix_str(notebook.stem)
            started = time.perf_counter()
            try:
                papermill.execute_notebook(str(notebook), str(out_dir / notebook.name), parameters=parameters,
                                           kernel_name=kernel, language="python", cwd=str(notebook.parent),
                                           progress_bar=False, extra_arguments=QUIET_KERNEL)
                results.append(NotebookResult(notebook.stem, "ok", time.perf_counter() - started))
            except PapermillExecutionError as error:
                results.append(NotebookResult(notebook.stem, "failed", time.perf_counter() - started,
                                              failed_cell=error.exec_count, error=f"{error.ename}: {error.evalue}"))
            except Exception as error:  # the kernel died, the file is unreadable, ...
                results.append(NotebookResult(notebook.stem, "failed", time.perf_counter() - started,
                                              error=f"{type(error).__name__}: {error}"))
            if course.progress and results[-1].status == "failed":
                tqdm.write(f"{notebook.stem} failed at cell {results[-1].failed_cell}: {results[-1].error}")
    SeriesSummary(course.profile, results, time.time(), describe_machine(course.device)).write(out_dir)
    if not only:  # the whole series ran, so its records are this run's own
        page = results_page_markdown(course.profile, course.results())
        if page:
            write_atomic(out_dir / "results.md", page.encode())
    return results


@dataclass
class SeriesSummary:
    """What a series run wrote to ``summary.json`` (and, as a table, ``summary.md``): the
    profile, each notebook's result, when it finished and on what machine. The book reads it."""

    profile: str
    notebooks: list[NotebookResult]
    finished: float  # seconds since the epoch
    machine: str

    FILE = "summary.json"

    @property
    def total_seconds(self) -> float:
        return sum(r.seconds for r in self.notebooks)

    @classmethod
    def read(cls, folder: Path) -> SeriesSummary | None:
        """The summary in ``folder``; None when there is none, or one written before runs
        recorded where they ran (a page could not say)."""
        path = Path(folder) / cls.FILE
        if not path.is_file():
            return None
        saved = json.loads(path.read_text())
        if "machine" not in saved:
            return None
        return cls(saved["profile"], [NotebookResult(**n) for n in saved["notebooks"]], saved["finished"],
                   saved["machine"])

    def write(self, out_dir: Path) -> None:
        write_json(out_dir / self.FILE, {"profile": self.profile, "total_seconds": self.total_seconds,
                                         "finished": self.finished, "machine": self.machine,
                                         "notebooks": [asdict(r) for r in self.notebooks]})
        lines = [f"# Notebook series, profile `{self.profile}`", "",
                 "| notebook | status | seconds | failing cell | error |", "|---|---|---:|---:|---|"]
        for r in self.notebooks:
            error = (r.error or "").replace("|", "\\|").replace("\n", " ")[:200]
            lines.append(f"| {r.notebook} | {r.status} | {r.seconds:.1f} | {r.failed_cell or ''} | {error} |")
        ok = sum(r.status == "ok" for r in self.notebooks)
        lines.append(f"| **total** | {ok}/{len(self.notebooks)} ok | {self.total_seconds:.1f} | | |")
        write_atomic(out_dir / "summary.md", ("\n".join(lines) + "\n").encode())


@dataclass
class CopyReport:
    folder: Path  # where the notebooks are now
    copied: list[str]  # new, or replaced with --force
    unchanged: list[str]  # already there, identical to the packaged version
    kept: list[str]  # there and edited: left as they are


def copy_series(dest: str | Path, *, force: bool = False, source: Path = NOTEBOOK_DIR) -> CopyReport:
    """Put the series into ``DEST/notebooks``, ready to open in JupyterLab.

    The notebooks keep their shared runs in ``DEST/artifacts`` (their ``artifacts_dir``
    is ``../artifacts``), so ``DEST`` looks like a clone of the repository. A notebook that
    is already there and differs from the packaged one (a student's work) is kept unless
    ``force``; each file is written atomically.
    """
    folder = Path(dest) / "notebooks"
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file; choose another destination folder")
    folder.mkdir(parents=True, exist_ok=True)
    report = CopyReport(folder, [], [], [])
    for notebook in list_notebooks(source):
        packaged = notebook.read_bytes()
        target = folder / notebook.name
        if target.exists() and target.read_bytes() == packaged:
            report.unchanged.append(notebook.name)
        elif target.exists() and not force:
            report.kept.append(notebook.name)
        else:
            write_atomic(target, packaged)
            report.copied.append(notebook.name)
    return report


def describe_machine(device: str = "auto") -> str:
    """Where a run ran, in words: the device the notebooks asked for, torch and Python.
    Only describes (a summary must be written even when the run failed for want of a GPU)."""
    import platform

    import torch

    on_gpu = device != "cpu" and torch.cuda.is_available()
    name = f"CUDA ({torch.cuda.get_device_name()})" if on_gpu else f"CPU ({torch.get_num_threads()} threads)"
    return f"{name}, torch {torch.__version__}, Python {platform.python_version()}"


def execute_in_place(path: Path, profile: str = "smoke") -> None:
    """Run a notebook top to bottom in its own folder and save it with its outputs (so that
    ``strip_outputs`` can keep the nbval checks' outputs)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    with profile_for_kernels(profile):
        NotebookClient(notebook, kernel_name=ensure_kernel(), resources={"metadata": {"path": str(path.parent)}},
                       timeout=600).execute()
    nbformat.write(notebook, path)


@contextmanager
def kernel_environment(**variables: str) -> Iterator[None]:
    """Set environment variables for the block: kernels started inside inherit them. The
    previous values come back afterwards."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def profile_for_kernels(profile: str):
    """``TITN_LITE_PROFILE`` for the block: every notebook's parameters cell reads it."""
    return kernel_environment(TITN_LITE_PROFILE=profile)


def strip_outputs(path: Path) -> bool:
    """Clear outputs and execution counts, keeping the small text outputs of cells marked
    ``# NBVAL_CHECK_OUTPUT`` (what nbval compares, numbered 1, 2, ... in order). Returns whether
    the file changed."""
    original = path.read_text()
    notebook = json.loads(original)
    checked_cells = 0
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
        cell.get("metadata", {}).pop("papermill", None)
        if CHECKED_MARK in "".join(cell["source"]):
            # nbval refuses a reference cell with outputs but no execution count, so checked cells
            # are numbered 1, 2, ... (stable across re-recordings, unlike the kernel's own counts).
            checked_cells += 1
            cell["execution_count"] = checked_cells
            cell["outputs"] = [{**o, "execution_count": checked_cells} if "execution_count" in o else o
                               for o in cell["outputs"] if o.get("output_type") in ("stream", "execute_result")
                               and set(o.get("data", {"text/plain": 0})) <= {"text/plain", "text/markdown"}]
        else:
            cell["outputs"] = []
    notebook.get("metadata", {}).pop("papermill", None)
    notebook.get("metadata", {}).pop("widgets", None)  # saved state of every progress bar: bulky, never needed
    text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    if text != original:
        path.write_text(text)
    return text != original
