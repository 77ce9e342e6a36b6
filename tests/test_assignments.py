"""Build student versions, then grade a class: right answers (one written another way),
typical wrong ones, a crash, an endless loop, missing files, a file that is not a
notebook, and two ways of cheating (replacing the check from an answer cell, calling the
kit's own implementation). Then the whole workflow through nbgrader's collected layout."""

import csv
import re
import time
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader", reason='nbgrader is the "classroom" extra: pip install -e ".[classroom]"')

from titn_lite.classroom.assignments import build, find_submissions, grade, list_exercises  # noqa: E402
from titn_lite.classroom.series import NOTEBOOK_DIR  # noqa: E402

ONLY = ["01", "03", "05"]

REPLACED_CHECKS = ('import titn_lite.classroom.checks as _c\n_c.check_attention = lambda f: print("✓ scaled '
                   'dot-product attention: correct")\n'
                   '_c.check_multi_head = lambda f: print("✓ multi-head attention: correct")')
CALLS_THE_KIT = ("import titn_lite\n\ndef attention_from_scratch(q, k, v, mask=None):\n"
                 "    return titn_lite.scaled_dot_product_attention(q, k, v, mask)")
ANOTHER_WAY = '''def attention_from_scratch(q, k, v, mask=None):
    scores = torch.einsum("...qd,...kd->...qk", q, k) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(float("-inf")))
    weights = torch.softmax(scores, dim=-1)
    return torch.einsum("...qk,...kd->...qd", weights, v), weights'''


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


def submit(release, student_dir, answers, names=None):
    """Copy the student notebooks, putting ``answers`` (grade_id -> source) into their solution cells."""
    student_dir.mkdir(parents=True)
    for path in sorted(release.glob("*.ipynb")):
        if names and path.name not in names:
            continue
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell.source = answers[grade_id]
        nbformat.write(notebook, student_dir / path.name)


def read_rows(path):
    return {row["student"]: row for row in csv.DictReader(Path(path).open())}


def test_series_has_graded_exercises_in_the_teaching_chapters():
    exercises = list_exercises()
    assert {e.notebook[:2] for e in exercises} >= {f"{n:02d}" for n in range(1, 12)}  # every teaching chapter
    assert all(e.check.startswith("check_") and e.arguments for e in exercises), exercises
    # At least three ask the student to read their own run: the graded cell hands the check its results.
    reading = [e for e in exercises if len(e.arguments) > 1]
    assert len(reading) >= 3, reading
    documented = Path(__file__).resolve().parents[1].joinpath("docs", "teachers.md").read_text()
    assert all(f"`{e.grade_id}`" in documented for e in exercises), "docs/teachers.md's table lacks an exercise"


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


def test_grading_a_class(release, tmp_path, capfd):
    right = {**solutions("01_attention.ipynb"), **solutions("03_inner_outer.ipynb"), **solutions("05_cutmix.ipynb")}
    wrong = dict(right)
    wrong["attention"] = right["attention"].replace(" / math.sqrt(q.shape[-1])", "")
    wrong["pixel_to_patch"] = right["pixel_to_patch"].replace("(0, 0, 1, 1)", "(0, 0, 0, 2)")
    wrong["cutmix"] = right["cutmix"].replace("return mixed, labels, labels[partner], lam, corrected",
                                              "return mixed, labels, labels[partner], lam, lam")
    crashing = {**right, "attention": "import os\nos._exit(1)"}
    looping = {**right, "cutmix": "def cutmix_from_scratch(images, labels, alpha, partner):\n    while True:\n"
                                  "        pass"}

    submissions = tmp_path / "submissions"
    submit(release, submissions / "alice", right)
    submit(release, submissions / "bob", wrong)
    submit(release, submissions / "carol", crashing)
    submit(release, submissions / "dave", looping)
    submit(release, submissions / "eve", right)
    (submissions / "eve" / "05_cutmix.ipynb").unlink()
    (submissions / "eve" / "03_inner_outer.ipynb").write_text("my homework, in a text file")
    submit(release, submissions / "frank", {**right, "attention": ANOTHER_WAY})
    submit(release, submissions / "mallory", {**right, "attention": REPLACED_CHECKS, "multi_head": "pass"})
    submit(release, submissions / "oscar", {**right, "attention": CALLS_THE_KIT})

    started = time.monotonic()
    grades = grade(submissions, release, tmp_path / "grades.csv", cell_timeout=15, jobs=2)
    elapsed = time.monotonic() - started
    rows = read_rows(tmp_path / "grades.csv")
    print((tmp_path / "grades.csv").read_text())
    print(f"graded 8 students in {elapsed:.0f} s")

    header = next(csv.reader((tmp_path / "grades.csv").open()))
    assert header[:4] == ["student", "submitted", "attention_check", "attention_check reason"]
    assert rows["alice"]["total"] == rows["alice"]["max"] == "8"
    assert all(rows["alice"][c] == "" for c in header if c.endswith(" reason"))
    assert rows["bob"]["attention_check"] == "0" and rows["bob"]["pixel_to_patch_check"] == "0"
    assert rows["bob"]["cutmix_check"] == "1"  # everything right but lambda's correction: half the points
    assert rows["bob"]["attention_check reason"] == "scores are not divided by sqrt(d_k)"
    assert rows["bob"]["pixel_to_patch_check reason"].startswith("the class-token row is not zero")
    assert rows["bob"]["cutmix_check reason"].startswith("lambda is not corrected to the pasted area")
    assert (rows["carol"]["attention_check"], rows["carol"]["multi_head_check"]) == ("0", "0")
    assert "the kernel died" in rows["carol"]["notes"] and rows["carol"]["total"] == "4"
    assert rows["dave"]["cutmix_check"] == "0" and rows["dave"]["total"] == "6"
    assert "stopped after the time limit" in rows["dave"]["cutmix_check reason"]
    assert rows["eve"]["total"] == "4"
    assert "05_cutmix.ipynb: missing" in rows["eve"]["notes"]
    assert "03_inner_outer.ipynb: not a readable notebook" in rows["eve"]["notes"]
    assert rows["frank"]["total"] == "8"  # right, written another way
    # The check replaced from an answer cell: judged elsewhere, it scores 0 and says why.
    assert (rows["mallory"]["attention_check"], rows["mallory"]["multi_head_check"]) == ("0", "0")
    assert ("titn_lite.classroom.checks.check_attention was replaced in your notebook"
            in rows["mallory"]["attention_check reason"])
    assert "does not define" in rows["mallory"]["attention_check reason"]
    assert rows["oscar"]["attention_check"] == "0"
    assert "your answer calls titn_lite.scaled_dot_product_attention" in rows["oscar"]["attention_check reason"]
    assert rows["oscar"]["multi_head_check"] == "2"  # its own multi-head, on the kit's attention: allowed
    assert [g.student for g in grades] == ["alice", "bob", "carol", "dave", "eve", "frank", "mallory", "oscar"]

    feedback = tmp_path / "feedback"
    page = (feedback / "bob.html").read_text()
    assert "Feedback for bob" in page and "scores are not divided by sqrt(d_k)" in page
    # the grades are a Markdown table that nbconvert typesets: one row per exercise, points right-aligned
    assert '<th style="text-align:right">points</th>' in page
    assert '<td style="text-align:left"><code>attention_check</code></td>' in page
    assert (feedback / "bob" / "01_attention.ipynb").is_file()
    assert "titn-lite-grader" not in (feedback / "bob" / "01_attention.ipynb").read_text()
    out, err = capfd.readouterr()
    assert "Kernel is running over TCP" not in out + err and "WARNING" not in err
    assert elapsed < 600


def test_the_workflow_through_nbgraders_layout_grades_as_the_kits(tmp_path):
    """Release -> hand out -> collect (both layouts) -> grade -> feedback, for one notebook."""
    release = tmp_path / "release"
    build(release, only=["01"])
    right = solutions("01_attention.ipynb")
    wrong = {**right, "multi_head": right["multi_head"].replace('"b n (qkv h d) -> qkv b h n d"',
                                                                '"b n (h qkv d) -> qkv b h n d"')}
    kit, course = tmp_path / "kit", tmp_path / "course"
    for student, answers in (("s001", right), ("s002", wrong)):
        submit(release, kit / student, answers)
        submit(release, course / "submitted" / student / "titn-lite", answers)
        (course / "submitted" / student / "titn-lite" / "timestamp.txt").write_text("2026-12-01 09:30:00.000000 UTC")
    grade(kit, release, tmp_path / "kit.csv", cell_timeout=60, jobs=2)
    grade(course, release, tmp_path / "nbgrader.csv", cell_timeout=60, jobs=2)  # the course folder above submitted/
    ours, theirs = read_rows(tmp_path / "kit.csv"), read_rows(tmp_path / "nbgrader.csv")
    assert ours.keys() == theirs.keys() == {"s001", "s002"}
    for student in ours:
        assert {k: v for k, v in ours[student].items() if k != "submitted"} == \
               {k: v for k, v in theirs[student].items() if k != "submitted"}
    assert ours["s001"]["total"] == "4" and ours["s002"]["multi_head_check"] in {"0", "1"}
    assert ours["s002"]["multi_head_check reason"].startswith("one head works but four do not")
    assert theirs["s001"]["submitted"] == "2026-12-01 09:30:00.000000 UTC" and ours["s001"]["submitted"] == ""
    assert (tmp_path / "feedback" / "s002.html").is_file()


def test_a_layout_where_every_notebook_is_missing_is_an_error_not_zeros(tmp_path):
    deep = tmp_path / "submitted" / "alice" / "titn-lite" / "extra"
    deep.mkdir(parents=True)
    (deep / "01_attention.ipynb").write_text("{}")
    with pytest.raises(ValueError, match=r"none of the 1 student folders .* STUDENT/ASSIGNMENT/01_attention.ipynb "
                                         r"\(nbgrader's submitted/ folder\); notebooks found: alice/titn-lite/extra"):
        find_submissions(tmp_path, ["01_attention.ipynb"])
    (tmp_path / "submitted" / "alice" / "other").mkdir()
    (tmp_path / "submitted" / "alice" / "other" / "01_attention.ipynb").write_text("{}")
    (tmp_path / "submitted" / "alice" / "titn-lite" / "01_attention.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="several assignments .* --assignment"):
        find_submissions(tmp_path, ["01_attention.ipynb"])
    found = find_submissions(tmp_path, ["01_attention.ipynb"], assignment="titn-lite")
    assert [(s.student, s.folder.name) for s in found] == [("alice", "titn-lite")]


def test_the_cli_says_what_layout_it_expects_in_one_line(release, tmp_path, capsys):
    from titn_lite.cli import main

    (tmp_path / "submitted" / "alice" / "ps1" / "inner").mkdir(parents=True)
    (tmp_path / "submitted" / "alice" / "ps1" / "inner" / "01_attention.ipynb").write_text("{}")
    assert main(["assignments", "grade", str(tmp_path), "--release", str(release), "--out",
                 str(tmp_path / "grades.csv")]) == 2
    err = capsys.readouterr().err
    assert "nbgrader's submitted/ folder" in err and "alice/ps1/inner/01_attention.ipynb" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "grades.csv").exists()
    assert main(["assignments", "grade", str(tmp_path), "--release", str(release), "--jobs", "0"]) == 2
    assert "--jobs takes a whole number" in capsys.readouterr().err
    assert main(["assignments", "grade", str(tmp_path), "--release", str(release), "--hidden-seed", "0"]) == 2
    assert "--hidden-seed takes a whole number of 1 or more" in capsys.readouterr().err


def _set_parameters(path, **values):
    """Rewrite the student's parameters cell of a submitted notebook: ``name = value`` lines."""
    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    lines = cell.source.splitlines()
    for name, value in values.items():
        lines = [f"{name} = {value!r}" if line.startswith(f"{name} =") else line for line in lines]
    cell.source = "\n".join(lines)
    nbformat.write(notebook, path)


def test_the_grader_decides_the_settings_not_the_parameters_cell(tmp_path):
    """A right notebook 06 left at a GPU and the classroom profile scores full marks on a CPU grader."""
    release = tmp_path / "titn-release"
    build(release, only=["06"])
    submit(release, tmp_path / "class" / "alice", solutions("06_teacher.ipynb"))
    _set_parameters(tmp_path / "class" / "alice" / "06_teacher.ipynb", device="cuda", profile="classroom")
    grades = grade(tmp_path / "class", release, tmp_path / "grades.csv", cell_timeout=60)
    row = read_rows(tmp_path / "grades.csv")["alice"]
    assert row["most_confused_check"] == "1", row
    assert grades[0].feedback_dir == tmp_path / "feedback"
    ran = (tmp_path / "feedback" / "alice" / "06_teacher.ipynb").read_text()
    assert "Set by the grader" in ran and "device = 'cpu'" in ran and "profile = 'smoke'" in ran


LOCKED = '''import threading

lock = threading.Lock()  # made once, outside the function: it cannot be saved for grading

def attention_from_scratch(q, k, v, mask=None):
    with lock:
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return weights @ v, weights'''


def test_a_failed_cell_is_the_reason_not_a_missing_answer(tmp_path):
    """A cell past the time limit, a cell that needs CUDA, and an answer that cannot be pickled:
    each reason names the real cause and what to change."""
    import torch

    release = tmp_path / "titn-release"
    build(release, only=["01"])
    right = solutions("01_attention.ipynb")
    submit(release, tmp_path / "class" / "slow", {**right, "attention": "import time\ntime.sleep(600)\n"
                                                                          + right["attention"]})
    submit(release, tmp_path / "class" / "gpu", {**right, "attention": 'torch.zeros(1, device="cuda")\n'
                                                                        + right["attention"]})
    submit(release, tmp_path / "class" / "locked", {**right, "attention": LOCKED})
    grade(tmp_path / "class", release, tmp_path / "grades.csv", cell_timeout=20, jobs=2)
    rows = read_rows(tmp_path / "grades.csv")
    slow = rows["slow"]["attention_check reason"]
    assert re.search(r"^cell \d+ ran past the grader's 20 s limit", slow) and "does not define" not in slow, slow
    if not torch.cuda.is_available():
        gpu = rows["gpu"]["attention_check reason"]
        assert re.search(r"^cell \d+ needs a GPU \(CUDA\)", gpu) and "does not define" not in gpu, gpu
    assert rows["locked"]["attention_check reason"] == (
        "your answer holds a _thread.lock object that cannot be saved for grading: create it inside the function "
        "(not in a global or an enclosing function)")
    # Its multi-head class calls that attention, so it carries the lock too.
    assert rows["locked"]["multi_head_check reason"] == rows["locked"]["attention_check reason"]


def test_grades_come_first_a_broken_page_is_reported_and_feedback_is_never_overwritten(tmp_path, monkeypatch,
                                                                                        capsys):
    from nbconvert import HTMLExporter

    from titn_lite.cli import main

    release = tmp_path / "titn-release"
    build(release, only=["01"])
    (tmp_path / "class" / "mallory").mkdir(parents=True)  # a notebook that is not one: graded without a kernel
    (tmp_path / "class" / "mallory" / "01_attention.ipynb").write_text("not a notebook")
    out = tmp_path / "grades.csv"
    grade(tmp_path / "class", release, out)
    first_page = (tmp_path / "feedback" / "mallory.html").read_text()

    sheet_there = []

    def broken(self, notebook, **kwargs):
        sheet_there.append(out.is_file())
        raise RuntimeError("nbconvert broke")

    out.unlink()
    monkeypatch.setattr(HTMLExporter, "from_notebook_node", broken)
    assert main(["assignments", "grade", str(tmp_path / "class"), "--release", str(release), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert sheet_there == [True] and read_rows(out)["mallory"]["total"] == "0"
    assert "feedback page for mallory could not be written (RuntimeError: nbconvert broke)" in captured.err
    # The second run went to a folder of its own, and said so; the first run's page is untouched.
    assert f"{tmp_path / 'feedback'} holds an earlier run's feedback, so this run's went to " \
           f"{tmp_path / 'feedback-2'}" in captured.out
    assert (tmp_path / "feedback" / "mallory.html").read_text() == first_page
    monkeypatch.undo()
    grades = grade(tmp_path / "class", release, out, force=True)
    assert grades[0].feedback == tmp_path / "feedback" / "mallory.html" and not (tmp_path / "feedback-3").exists()


def test_one_students_nbgrader_folder_is_not_graded_as_a_class(tmp_path):
    alice = tmp_path / "course" / "submitted" / "alice"
    (alice / "titn-lite").mkdir(parents=True)
    (alice / "titn-lite" / "01_attention.ipynb").write_text("{}")
    with pytest.raises(ValueError, match=r"one student's folder in nbgrader's layout \(titn-lite/ is an assignment, "
                                         r"not a student\): pass the submitted/ folder above it"):
        find_submissions(alice, ["01_attention.ipynb"])
    copied = tmp_path / "alice-copy" / "titn-lite"  # elsewhere: nbgrader's timestamp.txt gives it away
    copied.mkdir(parents=True)
    (copied / "01_attention.ipynb").write_text("{}")
    (copied / "timestamp.txt").write_text("2026-12-01 09:30:00.000000 UTC")
    with pytest.raises(ValueError, match="pass the submitted/ folder"):
        find_submissions(copied.parent, ["01_attention.ipynb"])
    assert [s.student for s in find_submissions(tmp_path / "course", ["01_attention.ipynb"])] == ["alice"]


def test_the_release_folder_does_not_collide_with_nbgraders(tmp_path):
    from titn_lite.cli import build_parser

    course = tmp_path / "course"
    (course / "release" / "ps1").mkdir(parents=True)  # nbgrader's own release folder
    (course / "nbgrader_config.py").write_text("c = get_config()")
    with pytest.raises(ValueError) as error:
        grade(course, course / "release", tmp_path / "grades.csv")
    message = str(error.value)
    assert f"--out {course / 'titn-release'}" in message and "nbgrader keeps its own releases" in message
    assert f"--out {course / 'release'}" not in message
    with pytest.raises(ValueError, match="nbgrader's own release folder in this course: build into .*titn-release"):
        build(course / "release", only=["01"])
    assert not (course / "release" / "01_attention.ipynb").exists()
    parser = build_parser()
    assert parser.parse_args(["assignments", "build"]).out == Path("titn-release")
    assert parser.parse_args(["assignments", "grade", "class"]).release == Path("titn-release")


def test_the_teachers_grading_files_are_git_ignored():
    gitignore = Path(__file__).resolve().parents[1] / ".gitignore"
    if not gitignore.is_file():
        pytest.skip("not a clone: no .gitignore")
    lines = set(gitignore.read_text().splitlines())
    assert {"titn-release/", "release/", "grades.csv", "feedback/", ".venv/"} <= lines


def test_build_prints_the_exercises_it_wrote(tmp_path, capsys):
    from titn_lite.cli import main

    assert main(["assignments", "build", "--out", str(tmp_path / "titn-release"), "--only", "01,05"]) == 0
    printed = capsys.readouterr().out
    for exercise in build(tmp_path / "again", only=["01", "05"]):
        assert re.search(rf"^{exercise.notebook}\s+{exercise.grade_id}\s+{exercise.points:g}$", printed,
                         re.MULTILINE), printed
    assert "3 exercises (6 points) in 2 student notebooks" in printed
