"""Classroom assignments on nbgrader's conventions, graded so that a student cannot talk
to the grader.

The source notebooks mark each exercise with nbgrader's markup: the answer sits between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` in a solution cell, and a locked, graded
cell with points runs the exercise's instant check from ``titn_lite.classroom.checks``.

- ``build``: student versions (answers become ``raise NotImplementedError()`` stubs,
  ``titn_lite.classroom.student_copies``; outputs removed), a copy of the checks, and ``assignment.json``
  (every graded cell, its points, the check it calls with what, and a checksum of its
  source, so tampering is caught).
- ``grade``: for each student (several at once with ``jobs``), runs their notebooks from
  clean cells, one after another in one kernel (its namespace cleared between them), with
  a time limit per cell, reading runs prepared for the class where given, at the grader's
  settings: a cell added after the
  student's parameters cell sets the grader's profile and device, whatever the student
  left there (as papermill injects parameters). Just before each graded cell, a cell the
  grader adds saves what that cell checks (the student's function or class, with
  ``cloudpickle``). Then a separate Python process, the judge, which has never run the
  student's notebook, runs the teacher's checks on the saved answers, on the visible
  cases and on hidden ones drawn from a seed picked when grading (other shapes, masks,
  seeds); the student's code runs only in children of the judge (``titn_lite.classroom.sandbox``),
  which send back plain data and cannot reach the kit's own
  implementation. A kernel crash, an endless loop, a missing file or a file that is not
  a notebook costs the exercises it touches, never the run. Writes a CSV (points and
  reason per exercise, student ID, submission time; rewritten as each student is graded,
  before that student's feedback) and, per student, a feedback
  page (the executed notebooks as HTML, the grades on top) and the executed notebooks; a
  page that fails to render is reported, never fatal, and an earlier run's feedback is
  never overwritten without ``force``.

Reads the kit's layout (``SUBMISSIONS/STUDENT/NN_name.ipynb``) and nbgrader's
(``submitted/STUDENT/ASSIGNMENT/NN_name.ipynb`` with ``timestamp.txt``).
"""

from __future__ import annotations

import ast
import atexit
import copy
import csv
import hashlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from titn_lite.classroom.series import NOTEBOOK_DIR, QUIET_KERNEL, ensure_kernel, list_notebooks, select_notebooks
from titn_lite.classroom.student_copies import UnclosedSolution, clear_cells, has_solution
from titn_lite.results.tables import markdown_table
from titn_lite.system.files import write_atomic, write_json
from titn_lite.system.usage import UsageError

if TYPE_CHECKING:  # nbformat itself is imported where it is used
    from nbformat import NotebookNode

MANIFEST = "assignment.json"
GRADER_TAG = "titn-lite-grader"
# papermill's tag for the cell it adds after the parameters cell; this cell stays in the
# feedback, so that a student sees which settings their notebook ran at.
GRADER_PARAMETERS_TAG = "injected-parameters"
# Not "release/": inside an nbgrader course folder that is nbgrader's own release folder.
DEFAULT_RELEASE = "titn-release"


@dataclass(frozen=True)
class Exercise:
    notebook: str
    grade_id: str
    points: float
    checksum: str
    check: str = ""  # the function of titn_lite.classroom.checks the graded cell calls
    arguments: tuple[str, ...] = ()  # what it passes, as written in the cell


def _nbgrader_metadata(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _checksum(source: str) -> str:
    return hashlib.sha256(source.strip().encode()).hexdigest()


def _check_call(source: str) -> tuple[str, tuple[str, ...]]:
    """The ``check_...(arg, ...)`` call a graded cell makes: its name and its arguments."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("check_"):
            return node.func.id, tuple(ast.unparse(a) for a in node.args)
    return "", ()


def exercises_in(path: Path) -> list[Exercise]:
    """The graded cells of one source notebook."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    return [Exercise(path.name, meta["grade_id"], float(meta["points"]), _checksum(cell.source),
                     *_check_call(cell.source))
            for cell in notebook.cells if (meta := _nbgrader_metadata(cell)).get("grade")]


def build(out_dir: str | Path, *, only: list[str] | None = None, folder: Path = NOTEBOOK_DIR,
          nbgrader: str | Path | None = None) -> list[Exercise]:
    """Write the student versions of the notebooks that hold exercises into ``out_dir``; with
    ``nbgrader``, also the teacher's versions (markers kept) into that folder, nbgrader's
    ``source/ASSIGNMENT``, for ``nbgrader generate_assignment`` to clear."""
    import nbformat

    out_dir = Path(out_dir)
    if out_dir.name == "release" and _is_nbgrader_course(out_dir.parent):
        raise UsageError(f"{out_dir} is nbgrader's own release folder in this course: build into "
                         f"{out_dir.with_name(DEFAULT_RELEASE)} instead")
    notebooks = [p for p in select_notebooks(only, folder) if exercises_in(p)]
    if nbgrader is not None:  # first: a students' copy must stop the build before anything is written
        write_nbgrader_source(notebooks, Path(nbgrader))
    if not notebooks:
        raise UsageError(f"no exercises in {', '.join(p.name for p in select_notebooks(only, folder))}")
    exercises: list[Exercise] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        notebook = clear_solutions(nbformat.read(path, as_version=4), path.name)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        write_atomic(out_dir / path.name, nbformat.writes(notebook).encode())
        exercises += exercises_in(path)
    checks = Path(__file__).with_name("checks.py")
    shutil.copy(checks, out_dir / "titn_lite_checks.py")
    write_json(out_dir / MANIFEST, {
        "notebooks": [p.name for p in notebooks],
        "exercises": [{**e.__dict__, "arguments": list(e.arguments)} for e in exercises],
        "note": "Graded cells import titn_lite.classroom.checks; titn_lite_checks.py is a copy for reading.",
    })
    return exercises


def write_nbgrader_source(notebooks: list[Path], dest: Path) -> list[Path]:
    """The teacher's notebooks as nbgrader's source: answers and their ``### BEGIN/END
    SOLUTION`` markers kept, outputs removed. nbgrader's ``generate_assignment`` replaces what
    lies between the markers and keeps the rest of the cell (a signature, a docstring, an
    ``__init__``); a solution cell without markers it clears whole, so a students' copy (its
    markers gone) would reach students as bare stubs: that is refused here."""
    import nbformat

    if not notebooks:
        raise UsageError("no notebooks with exercises to write for nbgrader")
    for path in notebooks:
        bare = [_nbgrader_metadata(c)["grade_id"] for c in nbformat.read(path, as_version=4).cells
                if _nbgrader_metadata(c).get("solution") and not has_solution(c.source)]
        if bare:
            raise UsageError(f"{path} is a students' copy (no BEGIN/END SOLUTION markers in {', '.join(bare)}): "
                             f"give the teacher's notebooks, e.g. --from path/to/clone/notebooks")
    if dest.name == "release" and _is_nbgrader_course(dest.parent):
        raise UsageError(f"{dest} is nbgrader's own release folder: write the source into "
                         f"{dest.parent / 'source' / 'titn-lite'} instead")
    dest.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        write_atomic(dest / path.name, nbformat.writes(notebook).encode())
    return [dest / path.name for path in notebooks]


def _is_nbgrader_course(folder: Path) -> bool:
    """Whether ``folder`` looks like an nbgrader course (its config, its gradebook, or the
    source/ and submitted/ folders nbgrader keeps there)."""
    return (folder / "nbgrader_config.py").is_file() or (folder / "gradebook.db").is_file() or \
        ((folder / "source").is_dir() and (folder / "submitted").is_dir())


def clear_solutions(notebook, name: str):
    """The student view of a notebook node: every ``### BEGIN/END SOLUTION`` region replaced
    by nbgrader's stub (outputs of answer cells removed). Raises if a marker survives."""
    import nbformat

    try:
        clear_cells(notebook.cells)
    except UnclosedSolution as error:
        raise UsageError(f"{name}: {error}; check its markers") from None
    if has_solution(nbformat.writes(notebook)):
        raise RuntimeError(f"{name}: a solution region was not cleared; check its markers")
    return notebook


# ---------------------------------------------------------------------------- grading


@dataclass
class Submission:
    student: str
    folder: Path
    submitted: str = ""  # nbgrader's timestamp.txt, where the layout has one


@dataclass
class StudentGrade:
    student: str
    points: dict[str, float]
    reasons: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # about whole notebooks: missing, crashed, ...
    submitted: str = ""
    feedback: Path | None = None  # the student's page, once written
    feedback_dir: Path | None = None  # where this run's feedback went (or was meant to go)
    feedback_error: str = ""  # why the page could not be written; the grades stand

    @property
    def total(self) -> float:
        return sum(self.points.values())

    @property
    def errors(self) -> list[str]:
        """Every problem met, one line each (notebooks first, then exercises)."""
        return self.notes + [f"{grade_id}: {reason}" for grade_id, reason in self.reasons.items() if reason]


def find_submissions(root: str | Path, notebooks: list[str], assignment: str | None = None) -> list[Submission]:
    """One submission per student folder under ``root``: the kit's layout (the notebooks in
    the student's folder) or nbgrader's (``root`` is the course or its ``submitted/``; the
    notebooks in ``STUDENT/ASSIGNMENT/``, beside nbgrader's ``timestamp.txt``)."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"no submissions folder at {root}")
    if (root / "submitted").is_dir() and not any((root / "submitted" / n).exists() for n in notebooks):
        root = root / "submitted"  # an nbgrader course folder
    students = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    # One student's folder in nbgrader's layout (submitted/STUDENT) holds assignment folders
    # with the notebooks and nbgrader's timestamp.txt: graded as it is, the assignment would
    # pass for a student.
    holding = [p for p in students if any((p / n).exists() for n in notebooks)]
    assignment_folders = [p for p in holding if (p / "timestamp.txt").is_file()]
    if assignment_folders or (holding and root.parent.name == "submitted"):
        inner = (assignment_folders or holding)[0].name
        raise UsageError(f"{root} is one student's folder in nbgrader's layout ({inner}/ is an assignment, not a "
                         f"student): pass the submitted/ folder above it, {root.parent}")
    if not students:
        raise UsageError(f"{root} holds no student folders: expected {root}/STUDENT/{notebooks[0]} (titn-lite's "
                         f"layout) or {root}/STUDENT/ASSIGNMENT/{notebooks[0]} (nbgrader's submitted/ folder)")
    submissions = []
    for student in students:
        folder = student
        if not any((student / n).exists() for n in notebooks):
            inner = [d for d in sorted(student.iterdir()) if d.is_dir() and any((d / n).exists() for n in notebooks)]
            if assignment:
                inner = [d for d in inner if d.name == assignment]
            if len(inner) > 1:
                raise UsageError(f"{student.name} has several assignments holding these notebooks "
                                 f"({', '.join(d.name for d in inner)}): choose one with --assignment NAME")
            if inner:
                folder = inner[0]
        stamp = folder / "timestamp.txt"
        submitted = stamp.read_text(errors="replace").strip().splitlines()[0] if stamp.is_file() and \
            stamp.read_text(errors="replace").strip() else ""
        submissions.append(Submission(student.name, folder, submitted))
    if not any((s.folder / n).exists() for s in submissions for n in notebooks):
        found = sorted({str(p.relative_to(root)) for p in root.rglob("*.ipynb")})[:3]
        raise UsageError(
            f"none of the {len(submissions)} student folders in {root} holds any of {', '.join(notebooks)}: "
            f"expected STUDENT/{notebooks[0]} (titn-lite's layout) or STUDENT/ASSIGNMENT/{notebooks[0]} "
            f"(nbgrader's submitted/ folder)" + (f"; notebooks found: {', '.join(found)}" if found else
                                                  "; no notebooks found at all"))
    return submissions


def grade(submissions_dir: str | Path, release_dir: str | Path, out_csv: str | Path, *,
          cell_timeout: float = 120, profile: str = "smoke", device: str = "cpu", jobs: int = 1,
          feedback_dir: str | Path | None = None, assignment: str | None = None,
          force: bool = False, hidden_seed: int | None = None,
          shared_runs: str | Path | None = None) -> list[StudentGrade]:
    """Grade every student folder in ``submissions_dir`` against the release built into
    ``release_dir``, every notebook at ``profile`` on ``device`` whatever its parameters
    cell says; write ``out_csv``, then the feedback (default: ``feedback/`` beside the
    CSV; a folder that holds an earlier run's feedback is replaced only with ``force``,
    otherwise this run's goes to ``feedback-2/``, ...); return the grades. The hidden cases
    are drawn from ``hidden_seed``, by default a seed drawn now (so no file of the release
    holds them); every student of one run meets the same cases. ``shared_runs``: a folder of
    runs prepared for the class at ``profile`` (``notebooks prepare``), read by every
    student's notebooks instead of training the same runs again (06's teacher, ...)."""
    if hidden_seed is not None and hidden_seed < 1:
        raise UsageError(f"--hidden-seed takes a whole number of 1 or more, got {hidden_seed}")
    manifest, exercises = _read_release(Path(release_dir))
    if jobs < 1:
        raise UsageError(f"--jobs takes a whole number of students graded at once, 1 or more; got {jobs}")
    submissions = find_submissions(submissions_dir, manifest["notebooks"], assignment)
    feedback_dir = _fresh_folder(Path(feedback_dir) if feedback_dir else Path(out_csv).parent / "feedback", force)
    kernel = ensure_kernel()
    _check_torch_for_grading()
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    hidden_seed = hidden_seed or secrets.randbits(31) | 1  # 0 would mean "no hidden cases"
    _JudgeServer.start(jobs, threads)  # before any student's notebook runs
    graded: dict[int, StudentGrade] = {}
    sheet = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="titn-lite-grading-") as workdir:
        def one(numbered: tuple[int, Submission]) -> None:
            number, submission = numbered
            try:
                result, executed = _grade_student(submission, manifest["notebooks"], exercises,
                                                  Path(workdir) / submission.student, kernel=kernel,
                                                  cell_timeout=cell_timeout, profile=profile, device=device,
                                                  threads=threads, hidden_seed=hidden_seed, shared_runs=shared_runs)
            except Exception as error:  # noqa: BLE001 (one submission must not stop the class's run)
                result, executed = StudentGrade(submission.student, {e.grade_id: 0.0 for e in exercises},
                                                {e.grade_id: "not graded: the grader failed on this submission"
                                                 for e in exercises}, submitted=submission.submitted), []
                result.notes.append(f"the grader failed on this submission ({type(error).__name__}: "
                                    f"{str(error)[:200]}); grade it again, or tell the kit's maintainers")
            with sheet:  # the sheet before the page: it is what the run is for, and no page can cost it
                graded[number] = result
                _write_grades(out_csv, [graded[n] for n in sorted(graded)], exercises)
            # The page now, while the other jobs' kernels run: one student's pages take seconds.
            result.feedback_dir = feedback_dir
            try:
                result.feedback = _write_feedback(feedback_dir, result, exercises, executed)
            except Exception as error:  # noqa: BLE001 (nbconvert on a student's outputs: anything)
                result.feedback_error = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}"

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(one, enumerate(submissions)))
    return [graded[n] for n in sorted(graded)]


def _read_release(release_dir: Path) -> tuple[dict, list[Exercise]]:
    """The release's manifest and its exercises; a clear error where there is none."""
    manifest_path = release_dir / MANIFEST
    if not manifest_path.is_file():
        suggested = release_dir.with_name(DEFAULT_RELEASE) if release_dir.name == "release" else release_dir
        why = (f" ({release_dir.name}/ is where nbgrader keeps its own releases in a course folder)"
               if release_dir.name == "release" else "")
        raise UsageError(f"{release_dir} has no {MANIFEST}; build the assignment first with "
                         f"titn-lite assignments build --out {suggested}, then grade with --release {suggested}{why}")
    manifest = json.loads(manifest_path.read_text())
    exercises = [Exercise(**{**e, "arguments": tuple(e.get("arguments", ()))}) for e in manifest["exercises"]]
    if not all(e.check for e in exercises):
        raise UsageError(f"{manifest_path} was written by an older titn-lite; build the assignment again")
    return manifest, exercises


def _check_torch_for_grading() -> None:
    """Grading reads what a student's code sends back with ``torch.load(weights_only=True)``,
    which is safe against crafted bytes from torch 2.6 on (CVE-2025-32434 before)."""
    import torch

    version = tuple(int(part) for part in re.findall(r"\d+", torch.__version__)[:2])
    if version < (2, 6):
        raise UsageError(f"grading needs torch 2.6 or later (this is {torch.__version__}): earlier versions can run "
                         f"code hidden in what a student's answer sends back. pip install 'torch>=2.6'")


def _fresh_folder(folder: Path, force: bool) -> Path:
    """``folder``, unless it holds an earlier run's files and ``force`` is off: then the
    first free ``folder-2``, ``folder-3``, ... (a second run must not overwrite the first's
    feedback unasked)."""
    if force or not folder.exists() or not any(folder.iterdir()):
        return folder
    number = 2
    while (candidate := folder.with_name(f"{folder.name}-{number}")).exists():
        number += 1
    return candidate


def _kernel_env(workdir: Path, profile: str, threads: int, shared_runs: str | Path | None = None) -> dict[str, str]:
    from titn_lite.classroom.course import SHARED_ENV

    env = {k: v for k, v in os.environ.items() if k != SHARED_ENV}
    env.update(TITN_LITE_PROFILE=profile, TITN_LITE_ARTIFACTS=str(workdir / "artifacts"),
               PYDEVD_DISABLE_FILE_VALIDATION="1", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if shared_runs:
        env[SHARED_ENV] = str(Path(shared_runs).resolve())
    return env


def _grader_parameters_cell(profile: str, device: str, artifacts: Path):
    """The cell the grader adds after the student's parameters cell: the grader's settings
    win over whatever the student left there (a GPU, the classroom profile, their own
    artifacts folder), so every submission runs as the grader can run it."""
    import nbformat

    source = "\n".join([
        "# Set by the grader (titn-lite assignments grade), not by you: every submission runs at the grader's",
        "# settings, whatever the parameters cell above says.",
        f"profile = {profile!r}",
        f"device = {device!r}",
        f"artifacts_dir = {str(artifacts)!r}",
        "install = False",
    ])
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [GRADER_PARAMETERS_TAG]
    return cell


def _with_grader_parameters(cells: list, parameters_cell) -> list:
    """``cells`` with ``parameters_cell`` right after the cell tagged ``parameters`` (before
    the first code cell where a student deleted that tag)."""
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
    at = tagged[0] + 1 if tagged else (code[0] if code else len(cells))
    return cells[:at] + [parameters_cell] + cells[at:]


def _export_cell(exercise: Exercise, answer: Path):
    """The grader's cell, run just before a graded cell: saves what that cell checks."""
    import nbformat

    values = "(" + "".join(f"{a}, " for a in exercise.arguments) + ")"
    source = "\n".join([
        "# Added by titn-lite's grader: saves your answer for a separate process to judge.",
        "import sys as _titn_sys, cloudpickle as _titn_cp",
        f"_titn_check = getattr(_titn_sys.modules.get('titn_lite.classroom.checks'), {exercise.check!r}, None)",
        "try:",
        f"    _titn_values, _titn_missing = {values}, None",
        "except NameError as _titn_error:",
        "    _titn_values, _titn_missing = None, str(_titn_error)",
        # Pickled whole before the file opens: an answer that cannot be saved leaves no half-written file.
        "_titn_saved = _titn_cp.dumps({'values': _titn_values, 'missing': _titn_missing, 'check': "
        "(getattr(_titn_check, '__module__', None), getattr(_titn_check, '__qualname__', None))})",
        f"with open({str(answer)!r}, 'wb') as _titn_file:",
        "    _titn_file.write(_titn_saved)",
    ])
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [GRADER_TAG]
    return cell


def _grade_student(submission: Submission, notebooks: list[str], exercises: list[Exercise], workdir: Path, *,
                   kernel: str, cell_timeout: float, profile: str, device: str, threads: int, hidden_seed: int,
                   shared_runs: str | Path | None = None) -> tuple[StudentGrade, list[tuple[str, Path]]]:
    """Run one student's notebooks and judge their answers: the grades, and the executed
    notebooks (saved in ``workdir``) for the feedback."""
    result = StudentGrade(submission.student, {e.grade_id: 0.0 for e in exercises},
                          {e.grade_id: "" for e in exercises}, submitted=submission.submitted)
    answers = workdir / "answers"
    answers.mkdir(parents=True, exist_ok=True)
    to_judge: list[Exercise] = []
    causes: dict[str, str] = {}  # grade_id -> what failed before its graded cell, in case its answer is missing
    ready: list[tuple[str, dict[str, Exercise], NotebookNode]] = []
    for name in notebooks:
        expected = {e.grade_id: e for e in exercises if e.notebook == name}
        notebook = _read_submitted_notebook(submission.folder / name, name, expected, result)
        if notebook is not None:
            notebook.cells = _with_export_cells(notebook.cells, expected, answers, result, to_judge)
            notebook.cells = _with_grader_parameters(notebook.cells,
                                                     _grader_parameters_cell(profile, device, workdir / "artifacts"))
            ready.append((name, expected, notebook))
    problems = _execute([notebook for _, _, notebook in ready], workdir / "notebooks", kernel, cell_timeout,
                        _kernel_env(workdir, profile, threads, shared_runs))
    executed: list[tuple[str, Path]] = []
    for (name, expected, notebook), problem in zip(ready, problems):
        if problem:
            result.notes.append(f"{name}: {problem}")
        _record_unsaved_answers(notebook.cells, expected, to_judge, problem, cell_timeout, result, causes)
        executed.append((name, _save_executed_notebook(notebook, workdir / "executed" / name)))
    _judge_saved_answers(to_judge, answers, causes, cell_timeout, threads, hidden_seed, result)
    return result, executed


def _read_submitted_notebook(path: Path, name: str, expected: dict[str, Exercise],
                             result: StudentGrade) -> NotebookNode | None:
    """The student's notebook ``name``, or None (with its exercises' reasons) if missing or unreadable."""
    import nbformat

    if not path.is_file():
        result.notes.append(f"{name}: missing")
        for grade_id in expected:
            result.reasons[grade_id] = f"{name} is missing"
        return None
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # not JSON, not a notebook, unreadable
        result.notes.append(f"{name}: not a readable notebook ({type(error).__name__})")
        for grade_id in expected:
            result.reasons[grade_id] = f"{name} is not a readable notebook"
        return None


def _with_export_cells(cells: list[NotebookNode], expected: dict[str, Exercise], answers: Path, result: StudentGrade,
                       to_judge: list[Exercise]) -> list[NotebookNode]:
    """``cells`` with an export cell before each intact graded cell; changed or deleted ones score 0."""
    out, seen = [], set()
    for cell in cells:
        tags = cell.metadata.get("tags", [])  # the grader's own tags, which a student's cell may not carry
        if GRADER_TAG in tags or GRADER_PARAMETERS_TAG in tags:
            cell.metadata["tags"] = [t for t in tags if t not in (GRADER_TAG, GRADER_PARAMETERS_TAG)]
        meta = _nbgrader_metadata(cell)
        grade_id = meta.get("grade_id")
        if cell.cell_type == "code" and meta.get("grade") and grade_id in expected and grade_id not in seen:
            seen.add(grade_id)
            if _checksum(cell.source) != expected[grade_id].checksum:
                result.reasons[grade_id] = "the graded cell was changed; it is scored 0"
            else:
                out.append(_export_cell(expected[grade_id], answers / f"{grade_id}.pkl"))
                to_judge.append(expected[grade_id])
        out.append(cell)
    for grade_id in sorted(set(expected) - seen):
        result.reasons[grade_id] = "the graded cell was deleted; it is scored 0"
    return out


def _record_unsaved_answers(cells: list[NotebookNode], expected: dict[str, Exercise], to_judge: list[Exercise],
                            problem: str | None, cell_timeout: float, result: StudentGrade,
                            causes: dict[str, str]) -> None:
    """After a run, note each export cell that did not run or failed, and the failed cells that may explain it."""
    failures: list[tuple[object, str]] = []  # (cell, what went wrong), the student's own cells, in order
    for cell in cells:
        tags = cell.metadata.get("tags", [])
        if GRADER_TAG in tags:
            grade_id = next(e.grade_id for e in to_judge if f"{e.grade_id}.pkl" in cell.source)
            if cell.get("execution_count") is None:
                result.reasons[grade_id] = (problem if problem and problem.startswith("cell ")  # a cell timed out
                                            else f"not run ({problem or 'the notebook stopped earlier'})")
            elif error := _cell_error(cell):
                result.reasons[grade_id] = _unsaved_answer(error)
            elif failures:
                causes[grade_id] = _likely_cause(failures, expected[grade_id])
        elif cell.cell_type == "code" and not _nbgrader_metadata(cell).get("grade") and \
                (failure := _cell_failure(cell, cell_timeout)):
            failures.append((cell, failure))


def _save_executed_notebook(notebook: NotebookNode, path: Path) -> Path:
    """Write the executed ``notebook``, without the grader's export cells, to ``path``; return ``path``."""
    import nbformat

    notebook.cells = [c for c in notebook.cells if GRADER_TAG not in c.metadata.get("tags", [])]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, nbformat.writes(notebook).encode())
    return path


def _judge_saved_answers(to_judge: list[Exercise], answers: Path, causes: dict[str, str], cell_timeout: float,
                         threads: int, hidden_seed: int, result: StudentGrade) -> None:
    """Judge every saved answer with no reason against it yet, and record its points and reason in ``result``."""
    ready = [e for e in to_judge if not result.reasons[e.grade_id] and (answers / f"{e.grade_id}.pkl").is_file()]
    for exercise, verdict in zip(ready, _judge(ready, answers, cell_timeout, threads, hidden_seed)):
        result.points[exercise.grade_id] = round(exercise.points * verdict["credit"], 2)
        result.reasons[exercise.grade_id] = verdict["message"]
        if verdict.get("missing") and exercise.grade_id in causes:
            # The graded cell lacked a name because an earlier cell failed: that failure is the reason.
            result.reasons[exercise.grade_id] = f"{causes[exercise.grade_id]}; so the graded cell could not run " \
                                                f"({verdict['missing']})"


def _cell_failure(cell, cell_timeout: float) -> str | None:
    """What went wrong in one of the student's cells, in the words a student can act on."""
    error = _cell_error(cell)
    if not error:
        return None
    where = f"cell {cell.get('execution_count')}"
    if error == TIME_LIMIT:
        return f"{where} ran past the grader's {cell_timeout:g} s limit"
    if re.search(r"cuda|nvidia|gpu", error, re.IGNORECASE):
        return f"{where} needs a GPU (CUDA), which the grader does not use ({error})"
    return f"{where} failed ({error})"


def _likely_cause(failures: list[tuple[object, str]], exercise: Exercise) -> str:
    """Of the failed cells before a graded cell, the one that should have defined what the
    graded cell checks; else the last to fail."""
    for cell, failure in failures:
        if any(_defines(cell.source, argument) for argument in exercise.arguments):
            return failure
    return failures[-1][1]


def _defines(source: str, expression: str) -> bool:
    """Whether ``source`` binds the first name of ``expression`` (``teacher`` for
    ``teacher.metrics.confusion``)."""
    name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", expression.strip())
    if not name:
        return False
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics: a plain look for an assignment will do
        return re.search(rf"^\s*{name[0]}\s*=", source, re.MULTILINE) is not None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id == name[0]:
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name[0]:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and \
                any((a.asname or a.name.split(".")[0]) == name[0] for a in node.names):
            return True
    return False


def _unsaved_answer(error: str) -> str:
    """The reason for an answer the grader's cell could not pickle: what holds the
    unpicklable object, and what to change."""
    held = re.search(r"(?:cannot|can't) pickle '?([\w.]+)'? object", error)
    if held:
        return (f"your answer holds a {held[1]} object that cannot be saved for grading: create it inside the "
                f"function (not in a global or an enclosing function)")
    if "pickl" in error.lower():
        return (f"your answer holds something that cannot be saved for grading ({error}): create such objects "
                f"inside the function (not in a global or an enclosing function)")
    return f"your answer could not be saved for grading ({error})"


# Run before each notebook in a student's kernel: the notebook before's names and figures go
# (its modules stay imported, which is what one kernel per student is for), and the process
# state a notebook may change comes back to what a new kernel has.
_CLEAR_NAMESPACE = """%reset -f
import os as _os, sys as _sys
_os.chdir({folder!r})
if 'torch' in _sys.modules:
    _sys.modules['torch'].set_grad_enabled(True)
    _sys.modules['torch'].set_default_dtype(_sys.modules['torch'].float32)
if 'matplotlib.pyplot' in _sys.modules:
    _sys.modules['matplotlib.pyplot'].close('all')
del _os, _sys"""


class _CellTimedOut(Exception):
    """A cell ran past the time limit: the kernel may still be busy with it, so the notebook
    stops there and the next one gets a new kernel."""


def _execute(notebooks: list, workdir: Path, kernel: str, cell_timeout: float, env: dict[str, str]) -> list[str | None]:
    """Run one student's notebooks in ``workdir``, from clean cells, one after another in one
    kernel (at the grading profile most of a notebook's time is starting a kernel and
    importing torch), its namespace cleared between them; after a kernel that dies or a
    cell that runs past the limit, the next notebook gets a new kernel. Per notebook, what
    stopped it, if anything. A code cell that ran has an execution count afterwards."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    for notebook in notebooks:  # a submission's own outputs must not count as a run
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.execution_count, cell.outputs = None, []
    workdir.mkdir(parents=True, exist_ok=True)
    problems: list[str | None] = []
    while len(problems) < len(notebooks):
        client = NotebookClient(notebooks[len(problems)], kernel_name=kernel, timeout=cell_timeout,
                                allow_errors=True, interrupt_on_timeout=True, extra_arguments=list(QUIET_KERNEL),
                                error_on_timeout={"ename": "TimeoutError", "evalue": TIME_LIMIT},
                                resources={"metadata": {"path": str(workdir)}})
        try:
            with client.setup_kernel(env=env):
                while len(problems) < len(notebooks):
                    _run_cells(client, notebooks[len(problems)], workdir, cell_timeout)
                    problems.append(None)
        except _CellTimedOut as error:
            problems.append(str(error))
        except DeadKernelError:
            problems.append("the kernel died (a crash, or memory ran out)")
        except Exception as error:  # noqa: BLE001 (nbclient or the kernel failed: that notebook stops)
            problems.append(f"execution stopped: {type(error).__name__}")
    return problems[:len(notebooks)]


def _run_cells(client, notebook, workdir: Path, cell_timeout: float) -> None:
    """Every cell of ``notebook`` in ``client``'s running kernel, after clearing its namespace."""
    client.nb = notebook
    client.reset_execution_trackers()
    client.wait_for_reply(client.kc.execute(_CLEAR_NAMESPACE.format(folder=str(workdir)), silent=True,
                                            store_history=False))
    for index, cell in enumerate(notebook.cells):
        started = time.monotonic()
        client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
        if cell.cell_type == "code" and time.monotonic() - started >= cell_timeout:
            raise _CellTimedOut(f"cell {cell.get('execution_count')} ran past the grader's {cell_timeout:g} s "
                                f"limit; the cells after it did not run")
    client.set_widgets_metadata()


def _judge(exercises: list[Exercise], answers: Path, timeout: float, threads: int, hidden_seed: int) -> list[dict]:
    """Judge the saved answers in a process that never ran the student's notebook and never
    runs their code (``_judge_in_child``), forked by a judge server that has imported torch
    and the checks once (``_JudgeServer``). The verdicts come back on the server's pipe, which
    no process the student's code runs in holds."""
    if not exercises:
        return []
    nonce = secrets.token_hex(16)
    request = {"nonce": nonce, "timeout": timeout, "hidden_seed": hidden_seed, "threads": threads,
               "folder": str(answers), "deadline": 60 + timeout * len(exercises),
               "jobs": [{"check": e.check, "answer": str(answers / f"{e.grade_id}.pkl"), "arguments": list(e.arguments)}
                        for e in exercises]}
    server = _JudgeServer.borrow(threads)
    try:
        lines = server.judge(request)
    finally:
        _JudgeServer.give_back(server)
    verdicts = {}
    for line in lines:
        try:
            verdict = json.loads(line[len(nonce):])
            index = int(verdict["index"])
            verdicts[index] = {"credit": min(1.0, max(0.0, float(verdict["credit"]))),
                               "message": str(verdict["message"])[:600], "missing": str(verdict.get("missing", ""))}
        except (ValueError, KeyError, TypeError):
            continue
    return [verdicts.get(i, {"credit": 0.0, "message": "the grader could not judge this answer"})
            for i in range(len(exercises))]


class _JudgeServer:
    """A Python process that imports torch and the checks once (seconds) and then, for each
    student, forks a judge (``_judge_in_child``). It computes nothing itself, so the judges
    it forks may fork sandboxes. One per grading thread, kept until this process ends; it
    starts in a folder of its own, so no file a notebook leaves in the grader's folder is
    imported in its place."""

    _idle: list[_JudgeServer] = []
    _all: list[_JudgeServer] = []
    _lock = threading.Lock()

    def __init__(self, threads: int) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        self.folder = tempfile.mkdtemp(prefix="titn-lite-judge-")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from titn_lite.classroom.assignments import _judge_server; _judge_server()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=self.folder,
            start_new_session=True)
        with self._lock:
            self._all.append(self)

    @classmethod
    def start(cls, count: int, threads: int) -> None:
        """Start ``count`` servers now, before any student's notebook runs."""
        with cls._lock:
            missing = count - sum(s.process.poll() is None for s in cls._idle)
        for _ in range(max(0, missing)):
            cls.give_back(cls(threads))

    @classmethod
    def borrow(cls, threads: int) -> _JudgeServer:
        with cls._lock:
            while cls._idle:
                server = cls._idle.pop()
                if server.process.poll() is None:
                    return server
        return cls(threads)

    @classmethod
    def give_back(cls, server: _JudgeServer) -> None:
        if server.process.poll() is None:
            with cls._lock:
                cls._idle.append(server)

    @classmethod
    def stop_all(cls) -> None:
        with cls._lock:
            servers, cls._all, cls._idle = list(cls._all), [], []
        for server in servers:
            server.stop()

    def judge(self, request: dict) -> list[str]:
        """One student's verdict lines (those that start with the request's nonce). The server
        stops its judge at the request's deadline; a server that does not answer by then (and
        a margin) is stopped and not used again."""
        import select

        deadline = time.monotonic() + float(request["deadline"]) + 30
        lines, buffer = [], bytearray()
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
            out = self.process.stdout.fileno()
            while (left := deadline - time.monotonic()) > 0 and select.select([out], [], [], left)[0]:
                chunk = os.read(out, 1 << 16)
                if not chunk:
                    break
                buffer += chunk
                *complete, rest = bytes(buffer).split(b"\n")
                buffer = bytearray(rest)
                for line in (c.decode(errors="replace") for c in complete):
                    if line == request["nonce"] + "done":
                        return lines
                    if line.startswith(request["nonce"]):
                        lines.append(line)
        except OSError:
            pass
        self.stop()
        return lines

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


atexit.register(_JudgeServer.stop_all)


def _judge_server() -> None:
    """The judge server's loop: a request per line on stdin; for each, fork a judge, stop it
    and whatever it started at the request's deadline, answer "NONCEdone"."""
    import torch  # noqa: F401 (imported once here, for every judge forked below)

    import titn_lite.classroom.checks  # noqa: F401
    import titn_lite.classroom.sandbox  # noqa: F401

    answers = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            exit_now = os._exit
            try:
                _judge_in_child(request, answers)
            finally:
                exit_now(0)
        deadline = time.monotonic() + float(request["deadline"])
        while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            os.killpg(pid, signal.SIGKILL)  # the judge, if it ran out of time, and anything still in its group
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        answers.write(request["nonce"] + "done\n")
        answers.flush()


def _judge_in_child(request: dict, answers) -> None:
    """The judge: forks one sandbox per saved answer before it computes anything
    (``titn_lite.classroom.sandbox``: the only processes where the student's code runs; they keep no
    descriptor but their own channel), then runs each check here, hidden cases drawn from
    the request's seed, and writes each verdict to ``answers`` as it comes."""
    os.setpgid(0, 0)  # a group of its own, which the server stops whole
    os.chdir(request["folder"])  # what an answer writes stays in the student's folder
    devnull = os.open(os.devnull, os.O_RDWR)  # the checks print what a notebook shows; nothing reads stdin
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    import torch

    import titn_lite.classroom.checks as checks
    from titn_lite.classroom.sandbox import Sandbox

    timeout, seed, nonce = float(request["timeout"]), int(request["hidden_seed"]), request["nonce"]
    sandboxes = [Sandbox(job["answer"], checks.forbidden_calls(job["check"]), timeout) for job in request["jobs"]]
    torch.set_num_threads(int(request.get("threads", 1)))
    for index, (job, sandbox) in enumerate(zip(request["jobs"], sandboxes)):
        with sandbox:
            verdict = _judge_one(checks, sandbox, job, seed)
        answers.write(nonce + json.dumps({"index": index, "credit": float(verdict["credit"]),
                                          "message": str(verdict["message"]),
                                          "missing": str(verdict.get("missing") or "")}) + "\n")
        answers.flush()


def _judge_one(checks, sandbox, job: dict, seed: int) -> dict:
    """One exercise: what the saved file holds, then the check, here, on the sandboxed answer."""
    from titn_lite.classroom.sandbox import Refused, RemoteAnswer

    name = job["check"]
    try:
        saved = sandbox.manifest()
    except Refused as error:
        return {"credit": 0.0, "message": f"your answer could not be loaded for grading ({error})"}
    if saved["error"]:
        return {"credit": 0.0, "message": f"your answer could not be loaded for grading ({saved['error']})"}
    recorded = saved["check"]
    replaced = recorded is not None and tuple(recorded) != ("titn_lite.classroom.checks", name)
    note = (f"titn_lite.classroom.checks.{name} was replaced in your notebook; your answer was judged by the teacher's "
            f"check in a separate process: ") if replaced else ""
    if saved.get("missing"):
        missing = str(saved["missing"])
        answer = re.match(r"\s*([A-Za-z_]\w*)", (job.get("arguments") or [""])[0])
        if answer and f"'{answer[1]}'" not in missing:  # the answer is there; something else the check reads is not
            return {"credit": 0.0, "message": note + f"the graded cell could not run: {missing}; keep the "
                                                     f"notebook's cells that define it above the graded cell",
                    "missing": missing}
        return {"credit": 0.0, "message": note + f"your answer does not define what the graded cell checks "
                                                 f"({missing})", "missing": missing}
    values = [RemoteAnswer(sandbox, index, what) if kind == "answer" else what
              for index, (kind, what) in enumerate(saved["values"])]
    try:
        getattr(checks, name)(*values, hidden=seed)
    except checks.CheckFailed as error:
        return {"credit": error.credit, "message": note + str(error)}
    except Refused as error:
        return {"credit": 0.0, "message": note + str(error)}
    except Exception as error:  # noqa: BLE001 (the check met data it could not read)
        return {"credit": 0.0, "message": note + f"{type(error).__name__}: {str(error)[:200]}"}
    return {"credit": 1.0, "message": note.rstrip(": ") if note else ""}


TIME_LIMIT = "stopped after the time limit (an endless loop?)"


def _cell_error(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            message = f"{output.get('ename')}: {output.get('evalue')}".strip()
            if output.get("ename") == "KeyboardInterrupt":  # nbclient interrupts a cell at the time limit
                return TIME_LIMIT
            return message.splitlines()[0][:300]
    return None


def _write_feedback(feedback_dir: Path, result: StudentGrade, exercises: list[Exercise],
                    executed_paths: list[tuple[str, Path]]) -> Path:
    """``FEEDBACK/STUDENT.html``: the grades, then every executed notebook; the executed
    notebooks themselves in ``FEEDBACK/STUDENT/``."""
    import nbformat
    from nbconvert import HTMLExporter

    folder = feedback_dir / result.student
    folder.mkdir(parents=True, exist_ok=True)
    executed = []
    for name, path in executed_paths:
        write_atomic(folder / name, path.read_bytes())
        executed.append((name, nbformat.read(path, as_version=4)))
    # A reason is one table cell: its own "|" would end the cell and a line break the row.
    findings = [(f"`{e.grade_id}`", e.notebook, f"{result.points[e.grade_id]:g}", f"{e.points:g}",
                 (result.reasons[e.grade_id] or "correct").replace("|", "\\|").replace("\n", " "))
                for e in exercises]
    grades_table = markdown_table(["exercise", "notebook", "points", "of", "what the grader found"], findings,
                                  align="llrrl")
    head = [f"# Feedback for {result.student}", "",
            f"**{result.total:g} of {sum(e.points for e in exercises):g} points**"
            + (f"; submitted {result.submitted}" if result.submitted else ""), "", grades_table]
    if result.notes:
        head += ["", "Notebooks: " + "; ".join(result.notes)]
    combined = nbformat.v4.new_notebook()
    combined.cells.append(nbformat.v4.new_markdown_cell("\n".join(head)))
    for name, notebook in executed:
        combined.cells.append(nbformat.v4.new_markdown_cell(f"---\n# {name}"))
        for index, cell in enumerate(notebook.cells):  # ids unique across the notebooks put together
            combined.cells.append(nbformat.from_dict({**copy.deepcopy(cell), "id": f"{Path(name).stem}-{index}"}))
    combined.metadata = executed[0][1].metadata if executed else combined.metadata
    exporter = HTMLExporter()
    exporter.log.setLevel(logging.ERROR)  # its notes on pictures without alt text say nothing to a teacher
    body, _ = exporter.from_notebook_node(combined)
    path = feedback_dir / f"{result.student}.html"
    write_atomic(path, body.encode())
    return path


def _write_grades(out_csv: str | Path, grades: list[StudentGrade], exercises: list[Exercise]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "submitted", *(c for e in exercises for c in (e.grade_id, f"{e.grade_id} reason")),
                     "total", "max", "notes"])
    max_points = sum(e.points for e in exercises)
    for g in grades:
        writer.writerow([g.student, g.submitted,
                         *(c for e in exercises for c in (f"{g.points[e.grade_id]:g}", g.reasons[e.grade_id])),
                         f"{g.total:g}", f"{max_points:g}", " | ".join(g.notes)])
    write_atomic(out_csv, buffer.getvalue().encode())


def list_exercises(folder: Path = NOTEBOOK_DIR) -> list[Exercise]:
    """Every exercise of the series, in order."""
    return [e for path in list_notebooks(folder) for e in exercises_in(path)]


