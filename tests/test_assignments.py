"""Build student versions, then grade a class: right answers, typical wrong ones, a crash,
an endless loop, missing files and a file that is not a notebook."""

import csv
import time
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader", reason='nbgrader is the "classroom" extra: pip install -e ".[classroom]"')

from titn_lite.assignments import build, list_exercises  # noqa: E402
from titn_lite.notebooks import NOTEBOOK_DIR  # noqa: E402

ONLY = ["01", "03", "05"]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    build(out, only=ONLY)
    return out


def solutions(name):
    """grade_id -> the teacher's answer cell source, from the source notebook."""
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in notebook.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def submit(release, student_dir, answers):
    """Copy the student notebooks, putting ``answers`` (grade_id -> source) into their solution cells."""
    student_dir.mkdir(parents=True)
    for path in sorted(release.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell.source = answers[grade_id]
        nbformat.write(notebook, student_dir / path.name)


def test_series_has_at_least_six_graded_exercises():
    exercises = list_exercises()
    assert len(exercises) >= 6
    assert {e.notebook for e in exercises} >= {"01_attention.ipynb", "03_inner_outer.ipynb", "05_cutmix.ipynb"}


def test_student_versions_hold_no_solutions(release):
    names = sorted(p.name for p in release.glob("*.ipynb"))
    assert names == ["01_attention.ipynb", "03_inner_outer.ipynb", "05_cutmix.ipynb"]
    for name in names:
        student = nbformat.read(release / name, as_version=4)
        text = "\n".join(c.source for c in student.cells)
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        for grade_id, answer in solutions(name).items():
            body = answer.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            for line in (line.strip() for line in body.splitlines()):
                assert not line or line.startswith("#") or line not in text, f"{name} leaks {line!r}"
            stub = next(c for c in student.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
            assert "raise NotImplementedError()" in stub.source
        assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
    assert (release / "titn_lite_checks.py").is_file() and (release / "assignment.json").is_file()


def test_grading_a_class(release, tmp_path):
    from titn_lite.assignments import grade

    right = {**solutions("01_attention.ipynb"), **solutions("03_inner_outer.ipynb"), **solutions("05_cutmix.ipynb")}
    wrong = dict(right)
    wrong["attention"] = right["attention"].replace(" / math.sqrt(q.shape[-1])", "")
    wrong["pixel_to_patch"] = right["pixel_to_patch"].replace("(0, 0, 1, 1)", "(0, 0, 0, 2)")
    wrong["cutmix"] = right["cutmix"].replace("return mixed, labels, labels[partner], lam, corrected",
                                              "return mixed, labels, labels[partner], lam, lam")
    crashing = {**right, "attention": "import os\nos._exit(1)"}
    looping = {**right, "cutmix": "def cutmix_from_scratch(images, labels, alpha, partner):\n    while True:\n        pass"}

    submissions = tmp_path / "submissions"
    submit(release, submissions / "alice", right)
    submit(release, submissions / "bob", wrong)
    submit(release, submissions / "carol", crashing)
    submit(release, submissions / "dave", looping)
    submit(release, submissions / "eve", right)
    (submissions / "eve" / "05_cutmix.ipynb").unlink()
    (submissions / "eve" / "03_inner_outer.ipynb").write_text("my homework, in a text file")

    started = time.monotonic()
    grades = grade(submissions, release, tmp_path / "grades.csv", cell_timeout=15)
    elapsed = time.monotonic() - started
    rows = {row["student"]: row for row in csv.DictReader((tmp_path / "grades.csv").open())}
    print(Path(tmp_path / "grades.csv").read_text())
    print(f"graded 5 students in {elapsed:.0f} s")

    assert rows["alice"]["total"] == rows["alice"]["max"] == "8" and rows["alice"]["errors"] == ""
    assert rows["bob"]["attention_check"] == "0" and rows["bob"]["pixel_to_patch_check"] == "0"
    assert rows["bob"]["cutmix_check"] == "0"
    assert "attention_check: CheckFailed: scores are not divided by sqrt(d_k)" in rows["bob"]["errors"]
    assert "pixel_to_patch_check: CheckFailed: the class-token row is not zero" in rows["bob"]["errors"]
    assert "cutmix_check: CheckFailed: lambda is not corrected to the pasted area" in rows["bob"]["errors"]
    assert (rows["carol"]["attention_check"], rows["carol"]["multi_head_check"]) == ("0", "0")
    assert "the kernel died" in rows["carol"]["errors"] and rows["carol"]["total"] == "4"
    assert rows["dave"]["cutmix_check"] == "0" and rows["dave"]["total"] == "6"
    assert "cutmix_check: stopped after the time limit" in rows["dave"]["errors"]
    assert rows["eve"]["total"] == "4"
    assert "05_cutmix.ipynb: missing" in rows["eve"]["errors"]
    assert "03_inner_outer.ipynb: not a readable notebook" in rows["eve"]["errors"]
    assert [g.student for g in grades] == ["alice", "bob", "carol", "dave", "eve"]
    assert elapsed < 600
