"""Classroom assignments on nbgrader's conventions.

The source notebooks mark each exercise with nbgrader's markup: the answer sits between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` in a solution cell, and a locked, graded
cell with points runs the exercise's instant check from ``titn_lite.checks``.

- ``build``: student versions through nbgrader's own ``ClearSolutions`` and
  ``ClearOutput`` preprocessors (answers become ``raise NotImplementedError()`` stubs),
  a copy of the checks, and ``assignment.json`` (every graded cell, its points and a
  checksum of its source, so tampering is caught).
- ``grade``: runs each student's notebooks with a time limit per cell, errors allowed,
  scores every graded cell (full points if it ran without an error), and writes one row
  per student. A crashing kernel, an endless loop, a missing file or a file that is not
  a notebook costs the exercises it touches, never the run.

nbgrader is an optional extra: ``pip install -e ".[classroom]"``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from titn_lite.checkpoints import write_atomic, write_json
from titn_lite.notebooks import NOTEBOOK_DIR, ensure_kernel, list_notebooks, profile_for_kernels, select_notebooks

MANIFEST = "assignment.json"


@dataclass(frozen=True)
class Exercise:
    notebook: str
    grade_id: str
    points: float
    checksum: str


def _nbgrader_metadata(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _checksum(source: str) -> str:
    return hashlib.sha256(source.strip().encode()).hexdigest()


def exercises_in(path: Path) -> list[Exercise]:
    """The graded cells of one source notebook."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    return [Exercise(path.name, meta["grade_id"], float(meta["points"]), _checksum(cell.source))
            for cell in notebook.cells if (meta := _nbgrader_metadata(cell)).get("grade")]


def build(out_dir: str | Path, *, only: list[str] | None = None, folder: Path = NOTEBOOK_DIR) -> list[Exercise]:
    """Write the student versions of the notebooks that hold exercises into ``out_dir``."""
    try:
        import nbformat
        from nbgrader.preprocessors import ClearOutput
    except ImportError:
        raise ValueError('building assignments needs nbgrader: pip install -e ".[classroom]"') from None
    out_dir = Path(out_dir)
    notebooks = [p for p in select_notebooks(only, folder) if exercises_in(p)]
    if not notebooks:
        raise ValueError(f"no exercises in {', '.join(p.name for p in select_notebooks(only, folder))}")
    exercises: list[Exercise] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        notebook = clear_solutions(nbformat.read(path, as_version=4), path.name)
        notebook, _ = ClearOutput().preprocess(notebook, {})
        write_atomic(out_dir / path.name, nbformat.writes(notebook).encode())
        exercises += exercises_in(path)
    checks = Path(__file__).with_name("checks.py")
    shutil.copy(checks, out_dir / "titn_lite_checks.py")
    write_json(out_dir / MANIFEST, {
        "notebooks": [p.name for p in notebooks],
        "exercises": [e.__dict__ for e in exercises],
        "note": "Graded cells import titn_lite.checks; titn_lite_checks.py is a copy for reading.",
    })
    return exercises


def clear_solutions(notebook, name: str):
    """The student view of a notebook node: every ``### BEGIN/END SOLUTION`` region replaced
    by nbgrader's stub (outputs are left as they are). Raises if a marker survives."""
    try:
        import nbformat
        from nbgrader.preprocessors import ClearSolutions
    except ImportError:
        raise ValueError('student versions need nbgrader: pip install -e ".[classroom]"') from None
    notebook, _ = ClearSolutions().preprocess(notebook, {})
    text = nbformat.writes(notebook)
    if "BEGIN SOLUTION" in text or "END SOLUTION" in text:
        raise RuntimeError(f"{name}: a solution region was not cleared; check its markers")
    return notebook


@dataclass
class StudentGrade:
    student: str
    points: dict[str, float]
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.points.values())


def grade(submissions_dir: str | Path, release_dir: str | Path, out_csv: str | Path, *,
          cell_timeout: float = 120, profile: str = "smoke") -> list[StudentGrade]:
    """Grade every student folder in ``submissions_dir`` (``STUDENT/NN_name.ipynb``) against
    the release built into ``release_dir``; write ``out_csv``; return the grades."""
    submissions_dir, release_dir = Path(submissions_dir), Path(release_dir)
    manifest_path = release_dir / MANIFEST
    if not manifest_path.is_file():
        raise ValueError(f"{release_dir} has no {MANIFEST}; build the assignment first "
                         f"(titn-lite assignments build --out {release_dir})")
    if not submissions_dir.is_dir():
        raise ValueError(f"no submissions folder at {submissions_dir}")
    manifest = json.loads(manifest_path.read_text())
    exercises = [Exercise(**e) for e in manifest["exercises"]]
    students = sorted(p for p in submissions_dir.iterdir() if p.is_dir())
    grades = []
    with tempfile.TemporaryDirectory(prefix="titn-lite-grading-") as workdir:
        for student in students:
            grades.append(_grade_student(student, manifest["notebooks"], exercises, Path(workdir), cell_timeout, profile))
    _write_grades(out_csv, grades, exercises)
    return grades


def _grade_student(student: Path, notebooks: list[str], exercises: list[Exercise], workdir: Path,
                   cell_timeout: float, profile: str) -> StudentGrade:
    result = StudentGrade(student.name, {e.grade_id: 0.0 for e in exercises})
    for name in notebooks:
        expected = {e.grade_id: e for e in exercises if e.notebook == name}
        path = student / name
        if not path.is_file():
            result.errors.append(f"{name}: missing")
            continue
        try:
            import nbformat

            notebook = nbformat.read(path, as_version=4)
        except Exception as error:  # not JSON, not a notebook, unreadable
            result.errors.append(f"{name}: not a readable notebook ({type(error).__name__})")
            continue
        problem = _execute(notebook, workdir / student.name, cell_timeout, profile)
        if problem:
            result.errors.append(f"{name}: {problem}")
        seen = set()
        for cell in notebook.cells:
            grade_id = _nbgrader_metadata(cell).get("grade_id")
            if grade_id not in expected or not _nbgrader_metadata(cell).get("grade"):
                continue
            seen.add(grade_id)
            exercise = expected[grade_id]
            if _checksum(cell.source) != exercise.checksum:
                result.errors.append(f"{grade_id}: the graded cell was changed; it is scored 0")
            elif cell.get("execution_count") is None:
                result.errors.append(f"{grade_id}: not run ({problem or 'stopped earlier'})")
            elif error := _cell_error(cell):
                result.errors.append(f"{grade_id}: {error}")
            else:
                result.points[grade_id] = exercise.points
        for grade_id in sorted(set(expected) - seen):
            result.errors.append(f"{grade_id}: the graded cell was deleted")
    return result


def _execute(notebook, workdir: Path, cell_timeout: float, profile: str) -> str | None:
    """Run the notebook in ``workdir``, from clean cells; say what stopped it, if anything.
    A code cell that ran has an execution count afterwards."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    for cell in notebook.cells:  # a submission's own outputs must not count as a run
        if cell.cell_type == "code":
            cell.execution_count, cell.outputs = None, []
    workdir.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(notebook, kernel_name=ensure_kernel(), timeout=cell_timeout, allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(workdir)}})
    try:
        with profile_for_kernels(profile):
            client.execute()
        return None
    except DeadKernelError:
        return "the kernel died (a crash, or memory ran out)"
    except Exception as error:
        return f"execution stopped: {type(error).__name__}"


def _cell_error(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            message = f"{output.get('ename')}: {output.get('evalue')}".strip()
            if output.get("ename") == "KeyboardInterrupt":
                return "stopped after the time limit (an endless loop?)"
            return message.splitlines()[0][:300]
    return None


def _write_grades(out_csv: str | Path, grades: list[StudentGrade], exercises: list[Exercise]) -> None:
    columns = [e.grade_id for e in exercises]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", *columns, "total", "max", "errors"])
    max_points = sum(e.points for e in exercises)
    for g in grades:
        writer.writerow([g.student, *(f"{g.points[c]:g}" for c in columns), f"{g.total:g}", f"{max_points:g}",
                         " | ".join(g.errors)])
    write_atomic(out_csv, buffer.getvalue().encode())


def list_exercises(folder: Path = NOTEBOOK_DIR) -> list[Exercise]:
    """Every exercise of the series, in order."""
    return [e for path in list_notebooks(folder) for e in exercises_in(path)]
