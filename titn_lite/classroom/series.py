"""Run the numbered notebook series with papermill, in order, and summarise the results.

``titn-lite notebooks run [--profile P] [--only 01,05] [--out DIR]`` is the kit's main
job. It registers a Jupyter kernel for the Python it runs in (inside that environment,
so nothing needs setting up by hand), runs every notebook with the profile injected
into its ``parameters`` cell, keeps going past a failing notebook, and writes the
executed notebooks plus ``summary.json`` and ``summary.md`` to ``DIR``; after the whole
series, also ``results.md``, what notebooks 06, 08, 10 and 11 measured (``titn_lite.results.report``).
On Linux its kernels are forks of one process that imported torch once (``warm_kernels``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from titn_lite.classroom.course import SHARED_ENV, Course
from titn_lite.classroom.student_copies import is_students_copy, student_copy
from titn_lite.classroom.warm_kernels import WarmKernels, interpreter_of
from titn_lite.classroom.warm_kernels import available as warm_kernels_available
from titn_lite.results.report import results_page_markdown
from titn_lite.results.tables import markdown_table
from titn_lite.system.cpu import CORE_SHARE_VARIABLE, available_cores
from titn_lite.system.files import write_atomic, write_json
from titn_lite.system.packaged import series_folder
from titn_lite.system.usage import UsageError, check_positive_int

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
        raise UsageError("running the notebooks needs a Jupyter kernel (ipykernel) in this Python: pip install "
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
        raise UsageError(f"no notebook starts with {', '.join(unmatched)}; the series: "
                         f"{', '.join(p.stem for p in notebooks)}")
    return chosen


def default_jobs(device: str = "auto", cores: int | None = None) -> int:
    """Notebooks run side by side by default: two where the machine has two cores or more (a
    kernel spends seconds starting and importing, which another kernel's training fills), one
    on a GPU (the kernels would share it, and its memory) or a single core."""
    import torch

    on_gpu = device != "cpu" and torch.cuda.is_available()
    return 1 if on_gpu else max(1, min(2, cores or available_cores()))


def _kernel_manager_class(warm: WarmKernels | None = None) -> type:
    """The kernel manager the runner's kernels run under: jupyter_client's, except that its
    kernels are forks of ``warm`` where one is given, and shutting a kernel down does not
    interrupt it first.

    jupyter_client sends SIGINT before its shutdown request. An idle kernel ignores it, but a
    kernel still inside a message handler when it lands (its last reply just sent, on a busy
    machine; the runner's kernels are done with their cells by then) logs ``[IPKernelApp] ERROR
    | KeyboardInterrupt caught in kernel.`` on the series' stderr. The shutdown request alone
    ends a kernel (ipykernel answers it on its control thread even while busy), and one that
    has not ended when jupyter_client stops waiting is terminated and killed as before."""
    import uuid

    from jupyter_client.manager import AsyncKernelManager

    provisioner = warm.provisioner_class() if warm is not None else None

    class FinishedKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            if provisioner is not None and self.provisioner is None:  # jupyter_client keeps one it is given
                self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
                self.provisioner = provisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
            return await super()._async_pre_start_kernel(**kw)

        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

    return FinishedKernelManager


@contextmanager
def warm_kernels(kernel: str, notebooks: list[Path]) -> Iterator[WarmKernels | None]:
    """A warm process (``titn_lite.classroom.warm_kernels``) for the kernelspec ``kernel``, in the
    notebooks' folder, started now and ended with the block; None where its kernels cannot be
    forked, or for a single notebook (its imports would cost what one kernel saves): kernels
    then start the usual way."""
    from jupyter_client.kernelspec import KernelSpecManager

    interpreter = interpreter_of(KernelSpecManager().get_kernel_spec(kernel).argv)
    if not warm_kernels_available() or interpreter is None or len(notebooks) < 2:
        yield None
        return
    warm = WarmKernels(interpreter, notebooks[0].parent)
    warm.start()
    try:
        yield warm
    finally:
        warm.close()


def check_jobs(jobs: object) -> int:
    """``jobs`` as a positive whole number, else ``UsageError`` saying what is valid."""
    count = int(jobs) if isinstance(jobs, str) and jobs.strip().isdigit() else jobs
    return check_positive_int("jobs", count, unit="notebooks run at once (1: one after another)")


def threads_each(kernels: int, cores: int | None = None) -> int:
    """Each of ``kernels`` kernels' share of the cores (at least one thread)."""
    return max(1, (cores or available_cores()) // max(1, kernels))


def kernel_threads(jobs: int, cores: int | None = None) -> dict[str, str]:
    """The environment that gives each of ``jobs`` kernels its share of the cores (torch's
    intra-op threads follow ``OMP_NUM_THREADS``); none for one job (a kernel takes every core)."""
    if jobs == 1:
        return {}
    threads = str(threads_each(jobs, cores))
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


class CoreShare:
    """The file a series run names to its kernels (``CORE_SHARE_VARIABLE``): how many cores
    each running notebook may use. Notebooks start with ``cores // jobs`` each; when one ends
    and none is left to start, the rest share the freed cores: a notebook training several runs
    then trains more of them at once (``Course.make_runs``), instead of finishing on one core
    beside an idle one."""

    def __init__(self, path: Path, jobs: int, notebooks: int, cores: int | None = None) -> None:
        self.path, self.jobs, self.notebooks = path, jobs, notebooks
        self.cores, self.finished = cores or available_cores(), 0
        self._write()

    @property
    def each(self) -> int:
        return threads_each(min(self.jobs, self.notebooks - self.finished), self.cores)

    def notebook_finished(self) -> None:
        self.finished += 1
        self._write()

    def _write(self) -> None:
        write_atomic(self.path, str(self.each).encode())


def run_series(course: Course, *, only: list[str] | None = None, out_dir: str | Path = "runs/notebooks",
               folder: Path = NOTEBOOK_DIR, jobs: int = 1) -> list[NotebookResult]:
    """Execute the series for ``course`` (its profile, device and artifacts folder reach each
    notebook's parameters cell); returns one result per notebook, in the series' order (never
    raises for a failing one).

    ``jobs``: notebooks run at once, each kernel with ``cores // jobs`` threads. They share
    runs through the course (a run asked for twice at once is made once: ``runs.run_lock``),
    and a notebook that reads another's runs makes or waits for them; 1 runs them in order."""
    jobs = check_jobs(jobs)
    # Absolute paths: papermill changes the process's working directory while a notebook runs
    # (and keeps its own for reads and writes), so beside another notebook a relative path
    # would be read against the wrong folder (CI's smoke series failed so, once).
    notebooks = [path.resolve() for path in select_notebooks(only, folder)]
    jobs = min(jobs, max(1, len(notebooks)))  # one notebook runs alone, its kernel with every core
    series_started = time.perf_counter()
    # Older ipykernels (6.2x, as hosted images ship) load debugpy, which prints a four-line
    # warning per kernel on Python 3.11+ unless this is set while the kernels start.
    share_folder = tempfile.TemporaryDirectory(prefix="titn-lite-cores-")
    share = CoreShare(Path(share_folder.name) / "cores", jobs, len(notebooks)) if jobs > 1 else None
    shared_cores = {CORE_SHARE_VARIABLE: str(share.path)} if share else {}
    with share_folder, kernel_environment(PYDEVD_DISABLE_FILE_VALIDATION="1", **kernel_threads(jobs), **shared_cores), \
            warm_kernels(kernel := ensure_kernel(), notebooks) as warm:
        import papermill  # noqa: F401 (before anything is cleared: a missing papermill stops the run here)

        kernel_manager = _kernel_manager_class(warm)
        out_dir = Path(out_dir).resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        parameters = {"profile": course.profile.name, "device": course.device, "artifacts_dir": str(course.artifacts)}
        if not only:
            course.clear_results()  # notebooks 06, 08, 10 and 11 record this run's afresh

        execute = functools.partial(_execute_notebook, out_dir=out_dir, parameters=parameters, kernel=kernel,
                                    kernel_manager=kernel_manager, report_failures=course.progress)
        desc = f"notebooks ({course.profile.name}{f', {jobs} at once' if jobs > 1 else ''})"
        bar = tqdm(total=len(notebooks), desc=desc, disable=not course.progress, unit="nb")
        results = _execute_all(notebooks, execute, jobs, bar, share)
        bar.close()
    SeriesSummary(course.profile.name, results, time.time(), describe_machine(course.device),
                  wall_seconds=time.perf_counter() - series_started, jobs=jobs).write(out_dir)
    if not only:  # the whole series ran, so its records are this run's own
        page = results_page_markdown(course.profile.name, course.results())
        if page:
            write_atomic(out_dir / "results.md", page.encode())
    return results


# The notebooks that train the runs the series shares (the timing table's "prepare before class",
# and 02, whose ViT 08 reuses): run once by the teacher, they leave every run the other notebooks
# load. 09 and 12 only load 07's TITN.
TRAINING_NOTEBOOKS = ("02_vit", "06_teacher", "07_distillation", "08_comparison", "10_ablations",
                      "11_unlabelled")


def check_teachers_copies(notebooks: list[Path]) -> None:
    """Refuse students' copies (answers cleared: each stops at its first exercise, before the
    runs after it are trained), in one line that says where the teacher's are."""
    cleared = [p.name for p in notebooks if is_students_copy(p.read_text(encoding="utf-8"))]
    if cleared:
        raise UsageError(f"{notebooks[0].parent} holds students' copies (answers cleared: {', '.join(cleared)}), "
                         f"which stop at their first exercise; give the teacher's notebooks, a clone's or the "
                         f"sdist's notebooks/ folder: --from path/to/clone/notebooks")


def prepare_class(course: Course, *, folder: Path = NOTEBOOK_DIR, out_dir: str | Path = "runs/prepare",
                  jobs: int = 1) -> list[NotebookResult]:
    """Train the runs the series shares into ``course.artifacts`` by running the teacher's
    ``TRAINING_NOTEBOOKS`` from ``folder`` (their answers in); the executed notebooks, which hold
    the answers, go to ``out_dir``, never beside the runs students read."""
    only = [name for name in TRAINING_NOTEBOOKS if (Path(folder) / f"{name}.ipynb").is_file()]
    if not only:
        raise UsageError(f"none of the notebooks that train ({', '.join(TRAINING_NOTEBOOKS)}) is in {folder}")
    check_teachers_copies([Path(folder) / f"{name}.ipynb" for name in only])
    out_dir = Path(out_dir).resolve()
    if out_dir.is_relative_to(course.artifacts):
        raise UsageError(f"--out {out_dir} is inside --artifacts {course.artifacts}, which students read: the "
                         f"executed notebooks hold the answers, so write them elsewhere")
    # The teacher's kernels write into the folder they prepare, whatever shared folder this shell names.
    with kernel_environment(**{SHARED_ENV: str(course.artifacts)}):
        return run_series(course, only=only, out_dir=out_dir, folder=folder, jobs=jobs)


def _execute_notebook(notebook: Path, *, out_dir: Path, parameters: dict[str, Any], kernel: str, kernel_manager: Any,
                      report_failures: bool) -> NotebookResult:
    """Run one notebook with papermill into ``out_dir``; a failure is a result, never raised."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    started = time.perf_counter()
    try:
        # The kernel's folder is named to nbclient (resources' path), not left to the process's working
        # folder at launch: papermill's chdir is per process, so another notebook's thread can move it.
        papermill.execute_notebook(str(notebook), str(out_dir / notebook.name), parameters=parameters,
                                   kernel_name=kernel, language="python", cwd=str(notebook.parent),
                                   progress_bar=False, extra_arguments=QUIET_KERNEL,
                                   kernel_manager_class=kernel_manager,
                                   resources={"metadata": {"path": str(notebook.parent)}})
        result = NotebookResult(notebook.stem, "ok", time.perf_counter() - started)
    except PapermillExecutionError as error:
        result = NotebookResult(notebook.stem, "failed", time.perf_counter() - started,
                                failed_cell=error.exec_count, error=f"{error.ename}: {error.evalue}")
    except Exception as error:  # the kernel died, the file is unreadable, ...
        result = NotebookResult(notebook.stem, "failed", time.perf_counter() - started,
                                error=f"{type(error).__name__}: {error}")
    if report_failures and result.status == "failed":
        tqdm.write(f"{notebook.stem} failed at cell {result.failed_cell}: {result.error}")
    return result


def _execute_all(notebooks: list[Path], execute: Callable[[Path], NotebookResult], jobs: int,
                 bar: Any, share: CoreShare | None = None) -> list[NotebookResult]:
    """``execute`` each notebook, ``jobs`` at once; results in the series' order. ``share``
    hears of each notebook that ends, so the last ones get the freed cores."""
    if jobs == 1:
        results = []
        for notebook in notebooks:
            bar.set_postfix_str(notebook.stem)
            results.append(execute(notebook))
            bar.update()
        return results
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from titn_lite.data.datasets import DEFAULT_DATASET, load_dataset

    # The kernels' first use of the embedded images unpacks them into the cache; done once
    # here, before they start, two kernels never unpack them at the same time.
    load_dataset(DEFAULT_DATASET, train=False)

    # Each thread drives one kernel (a process of its own), started in side_by_side_order.
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="notebook") as pool:
        futures = {pool.submit(execute, notebook): notebook for notebook in side_by_side_order(notebooks)}
        finished = {}
        for future in as_completed(futures):
            finished[futures[future]] = future.result()
            if share is not None:
                share.notebook_finished()
            bar.set_postfix_str(futures[future].stem)
            bar.update()
    return [finished[notebook] for notebook in notebooks]


# Where notebooks run side by side, 11 starts beside 06. It trains its own teacher and reads no
# other notebook's runs, while 07, next in the series, needs 06's teacher and would only wait for
# it (in the classroom series of 80cd759 on 2 cores, 07 waited about 150 s with its core idle).
# `notebooks run` prints the wall clock for this order.
STARTS_EARLY = ("11_unlabelled",)
AFTER = "06"  # STARTS_EARLY start right after this notebook


def side_by_side_order(notebooks: list[Path]) -> list[Path]:
    """The order in which notebooks start when several run at once: the series' order, with
    ``STARTS_EARLY`` moved up to just after notebook ``AFTER`` (the results are still reported
    in the series' order)."""
    early = [n for n in notebooks if n.stem in STARTS_EARLY]
    rest = [n for n in notebooks if n.stem not in STARTS_EARLY]
    cut = sum(n.stem[:2] <= AFTER for n in rest)  # the notebooks up to AFTER
    return rest[:cut] + early + rest[cut:]


@dataclass
class SeriesSummary:
    """What a series run wrote to ``summary.json`` (and, as a table, ``summary.md``): the
    profile, each notebook's result, when it finished and on what machine. The book reads it."""

    profile: str
    notebooks: list[NotebookResult]
    finished: float  # seconds since the epoch
    machine: str
    wall_seconds: float | None = None  # the whole series, start to end (notebooks side by side overlap)
    jobs: int = 1  # notebooks run at once

    FILE = "summary.json"

    @property
    def total_seconds(self) -> float:
        return sum(r.seconds for r in self.notebooks)

    @classmethod
    def read(cls, folder: Path) -> SeriesSummary | None:
        """The summary in ``folder``; None when there is none."""
        path = Path(folder) / cls.FILE
        if not path.is_file():
            return None
        saved = json.loads(path.read_text())
        return cls(saved["profile"], [NotebookResult(**n) for n in saved["notebooks"]], saved["finished"],
                   saved["machine"], saved["wall_seconds"], saved["jobs"])

    def write(self, out_dir: Path) -> None:
        write_json(out_dir / self.FILE, {"profile": self.profile, "total_seconds": self.total_seconds,
                                         "wall_seconds": self.wall_seconds, "jobs": self.jobs,
                                         "finished": self.finished, "machine": self.machine,
                                         "notebooks": [asdict(r) for r in self.notebooks]})
        # An error is one table cell: its own "|" would end the cell and a line break the row.
        rows = [(r.notebook, r.status, f"{r.seconds:.1f}", r.failed_cell or "",
                 (r.error or "").replace("|", "\\|").replace("\n", " ")[:200]) for r in self.notebooks]
        ok = sum(r.status == "ok" for r in self.notebooks)
        rows.append(("**total**", f"{ok}/{len(self.notebooks)} ok", f"{self.total_seconds:.1f}", "", ""))
        lines = [f"# Notebook series, profile `{self.profile}`", "",
                 markdown_table(["notebook", "status", "seconds", "failing cell", "error"], rows, align="llrrl")]
        if self.wall_seconds is not None:
            lines += ["", f"Wall clock: {self.wall_seconds:.1f} s with {self.jobs} notebook(s) at once "
                          f"(each notebook's seconds above overlap when more than one ran at once).",
                      "", f"Machine: {self.machine}."]
        write_atomic(out_dir / "summary.md", ("\n".join(lines) + "\n").encode())


@dataclass
class CopyReport:
    folder: Path  # where the notebooks are now
    copied: list[str]  # new, or replaced with --force
    unchanged: list[str]  # already there, identical to the packaged version
    kept: list[str]  # there and edited: left as they are


def copy_series(dest: str | Path, *, force: bool = False, source: Path = NOTEBOOK_DIR,
                solutions: bool = False) -> CopyReport:
    """Put the series into ``DEST/notebooks``, ready to open in JupyterLab.

    The copies are the students': every exercise's answer is cleared to nbgrader's stub
    (``titn_lite.classroom.student_copies``), unless ``solutions`` (the teacher's, where ``source`` has them).

    The notebooks keep their shared runs in ``DEST/artifacts`` (their ``artifacts_dir``
    is ``../artifacts``), so ``DEST`` looks like a clone of the repository. A notebook that
    is already there and differs from the packaged one (a student's work) is kept unless
    ``force``; each file is written atomically.
    """
    folder = Path(dest) / "notebooks"
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file; choose another destination folder")
    folder.mkdir(parents=True, exist_ok=True)
    report = CopyReport(folder, [], [], [])
    for notebook in list_notebooks(source):
        packaged = notebook.read_bytes() if solutions else student_copy(notebook.read_bytes(), notebook.name)
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
    the file changed.

    nbformat reads and writes the notebook (its own canonical JSON, as Jupyter saves it). The
    rule for checked cells is the kit's: nbstripout keeps a cell's outputs by tag or metadata,
    whole and unnumbered, where nbval needs them filtered to text and numbered."""
    import nbformat

    original = path.read_text(encoding="utf-8")
    notebook = nbformat.reads(original, as_version=4)
    checked_cells = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)  # timings a kernel recorded
        cell.metadata.pop("papermill", None)
        if CHECKED_MARK in cell.source:
            checked_cells += 1
            _keep_checked_outputs(cell, checked_cells)
        else:
            cell.outputs = []
            cell.execution_count = None
    notebook.metadata.pop("papermill", None)
    notebook.metadata.pop("widgets", None)  # saved state of every progress bar: bulky, never needed
    stripped = nbformat.writes(notebook) + "\n"
    if stripped != original:
        path.write_text(stripped, encoding="utf-8")
    return stripped != original


NBVAL_OUTPUT_TYPES = ("stream", "execute_result")
NBVAL_MEDIA_TYPES = {"text/plain", "text/markdown"}


def _keep_checked_outputs(cell: Any, number: int) -> None:
    """Leave a checked cell only the text outputs nbval compares, numbered ``number``: nbval
    refuses a reference cell with outputs but no execution count, and 1, 2, ... stay the same
    from one recording to the next, unlike the kernel's own counts."""
    cell.execution_count = number
    cell.outputs = [output for output in cell.outputs if output.output_type in NBVAL_OUTPUT_TYPES
                    and set(output.get("data", {})) <= NBVAL_MEDIA_TYPES]
    for output in cell.outputs:
        if "execution_count" in output:
            output.execution_count = number
