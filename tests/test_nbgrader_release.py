"""nbgrader's own hand-out, as docs/teachers.md describes it: ``assignments build --nbgrader``
writes the teacher's notebooks (markers kept) into nbgrader's ``source/``, then nbgrader's
real ``generate_assignment`` and ``release_assignment`` run in a course folder of their own.
What a student fetches must keep every exercise's signature and scaffold, and stop at the
first exercise with the check's message about the stub's NotImplementedError, not a
NameError."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader", reason='nbgrader is the "classroom" extra: pip install -e ".[classroom]"')

from titn_lite.classroom.assignments import build  # noqa: E402
from titn_lite.classroom.series import NOTEBOOK_DIR, QUIET_KERNEL, copy_series, ensure_kernel  # noqa: E402
from titn_lite.cli import main  # noqa: E402

ASSIGNMENT = "titn-lite"


def nbgrader(course: Path, *args: str, force: bool = True) -> None:
    """nbgrader's command line in ``course`` (its config there); alembic, which nbgrader starts for
    its gradebook, is found beside this Python."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run([sys.executable, "-m", "nbgrader", *args, ASSIGNMENT, *(["--force"] if force else [])],
                         cwd=course, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """01_attention released through nbgrader's exchange, as a student fetches it."""
    root = tmp_path_factory.mktemp("nbgrader")
    course, exchange = root / "course", root / "exchange"
    course.mkdir()
    exchange.mkdir()
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.course_id = 'titn'\n"
        f"c.Exchange.root = {str(exchange)!r}\n")
    build(root / "titn-release", only=["01"], nbgrader=course / "source" / ASSIGNMENT)
    nbgrader(course, "generate_assignment")
    nbgrader(course, "release_assignment")
    return exchange / "titn" / "outbound" / ASSIGNMENT


def solution_cells(path: Path) -> dict[str, str]:
    notebook = nbformat.read(path, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in notebook.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def test_nbgraders_release_keeps_each_exercises_scaffold(released):
    cells = solution_cells(released / "01_attention.ipynb")
    assert set(cells) == {"attention", "multi_head"}
    attention, multi_head = cells["attention"], cells["multi_head"]
    assert "def attention_from_scratch(q, k, v, mask=None):" in attention
    assert '"""q (..., N_q, d_k)' in attention  # the docstring
    assert "class MultiHeadFromScratch(nn.Module):" in multi_head
    assert "self.to_qkv = nn.Linear(dim, 3 * dim)" in multi_head  # __init__, the layers its check needs
    assert "def forward(self, x):" in multi_head
    for source in cells.values():
        assert "raise NotImplementedError()" in source and "BEGIN SOLUTION" not in source
    teacher = solution_cells(NOTEBOOK_DIR / "01_attention.ipynb")["attention"]
    answer = teacher.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0].strip().splitlines()[0].strip()
    assert answer not in attention  # the answer itself is gone


def test_a_released_notebook_stops_at_the_students_stub(released, tmp_path):
    notebook = nbformat.read(released / "01_attention.ipynb", as_version=4)
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(notebook, kernel_name=ensure_kernel(), timeout=300, extra_arguments=list(QUIET_KERNEL),
                            resources={"metadata": {"path": str(tmp_path)}})
    env = {**os.environ, "TITN_LITE_PROFILE": "smoke", "TITN_LITE_ARTIFACTS": str(tmp_path / "artifacts")}
    with pytest.raises(CellExecutionError) as stopped:
        client.execute(env=env)
    # The check calls the student's function; the stub's NotImplementedError reaches the student as the
    # check's one line (a NameError here would mean nbgrader had cleared the function away).
    assert stopped.value.ename == "CheckFailed", f"{stopped.value.ename}: {stopped.value.evalue}"
    assert "not written yet: replace `raise NotImplementedError()`" in stopped.value.evalue
    failed = next(c for c in notebook.cells if c.cell_type == "code" and
                  any(o.get("output_type") == "error" for o in c.outputs))
    assert failed.metadata["nbgrader"].get("grade_id") == "attention_check"  # the check calls the stub


def test_the_nbgrader_source_refuses_a_students_copy(tmp_path, capsys):
    students = copy_series(tmp_path / "class").folder
    code = main(["assignments", "build", "--out", str(tmp_path / "rel"), "--only", "01", "--from", str(students),
                 "--nbgrader", str(tmp_path / "source" / ASSIGNMENT)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "is a students' copy" in err and "--from path/to/clone/notebooks" in err
    assert not (tmp_path / "source").exists() and not (tmp_path / "rel").exists()


def test_the_cli_writes_the_teachers_source_beside_the_release(tmp_path, capsys):
    assert main(["assignments", "build", "--out", str(tmp_path / "rel"), "--only", "01",
                 "--nbgrader", str(tmp_path / "source" / ASSIGNMENT)]) == 0
    source = json.loads((tmp_path / "source" / ASSIGNMENT / "01_attention.ipynb").read_text())
    text = json.dumps(source)
    assert "### BEGIN SOLUTION" in text and "### END SOLUTION" in text
    assert all(not c.get("outputs") for c in source["cells"] if c["cell_type"] == "code")
    assert "BEGIN SOLUTION" not in (tmp_path / "rel" / "01_attention.ipynb").read_text()
    assert "nbgrader generate_assignment" in capsys.readouterr().out


# ---- a class through nbgrader's whole route: fetch, submit, collect, then the kit's grader

def test_a_class_through_nbgraders_route_is_graded_by_behaviour(released, tmp_path):
    from test_assignments import ANOTHER_WAY, read_rows
    from test_sandbox import ALLCLOSE_IN_THE_BODY, KIT_WITH_THE_PROFILER_OFF, TENSOR_SUBCLASS

    from titn_lite.classroom.assignments import grade

    course = released.parents[2].parent / "course"
    teacher = solution_cells(NOTEBOOK_DIR / "01_attention.ipynb")
    answers = {
        "alice": teacher,  # the teacher's answers
        "bob": {**teacher, "attention": ANOTHER_WAY},  # right, in another style
        "carol": {},  # blank: hands in what was fetched
        "dave": {**teacher, "attention": TENSOR_SUBCLASS},
        "erin": {**teacher, "attention": ALLCLOSE_IN_THE_BODY},
        "frank": {**teacher, "attention": KIT_WITH_THE_PROFILER_OFF},
    }
    for student, cells in answers.items():
        home = tmp_path / student
        home.mkdir()
        (home / "nbgrader_config.py").write_text(  # on a hub, nbgrader takes the ID from the login
            f"c = get_config()\nc.CourseDirectory.course_id = 'titn'\nc.CourseDirectory.student_id = {student!r}\n"
            f"c.Exchange.root = {str(released.parents[2])!r}\n")
        nbgrader(home, "fetch_assignment", force=False)
        path = home / ASSIGNMENT / "01_attention.ipynb"
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in cells:
                cell.source = cells[grade_id]
        nbformat.write(notebook, path)
        nbgrader(home, "submit", force=False)
    nbgrader(course, "collect", force=False)

    grade(course / "submitted", released.parents[2].parent / "titn-release", tmp_path / "grades.csv", jobs=2,
          cell_timeout=60)
    rows = read_rows(tmp_path / "grades.csv")
    assert set(rows) == set(answers)
    assert rows["alice"]["total"] == rows["alice"]["max"] == rows["bob"]["total"] == "4", (rows["alice"], rows["bob"])
    assert rows["carol"]["total"] == "0" and "not written yet" in rows["carol"]["attention_check reason"]
    assert rows["dave"]["attention_check"] == "0"
    assert "returned a __main__.AlwaysClose, a subclass of Tensor" in rows["dave"]["attention_check reason"]
    assert rows["erin"]["attention_check"] == "0"
    assert rows["erin"]["attention_check reason"].startswith("the output differs from softmax")
    assert rows["frank"]["attention_check"] == "0"
    assert "calls titn_lite.scaled_dot_product_attention" in rows["frank"]["attention_check reason"]
    assert all(rows[s]["submitted"] for s in answers)  # nbgrader's timestamps came through
