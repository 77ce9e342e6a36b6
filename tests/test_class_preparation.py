"""A hub's class: the teacher prepares the shared runs once (``notebooks prepare``) from the
teacher's notebooks; each student's course reads them, read only, from the folder
``TITN_LITE_SHARED_ARTIFACTS`` names, and makes any other run in the student's own folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import titn_lite.classroom.series as notebooks
from titn_lite.classroom.course import SHARED_ENV, Course
from titn_lite.classroom.series import TRAINING_NOTEBOOKS, NotebookResult, copy_series
from titn_lite.cli import main


def _files(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")}


def _read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_prepared_runs_are_read_in_place_and_new_runs_go_to_the_students_folder(tmp_path, monkeypatch):
    shared, own = tmp_path / "shared", tmp_path / "alice" / "artifacts"
    monkeypatch.delenv(SHARED_ENV, raising=False)
    prepared = Course("smoke", artifacts=shared, progress=False).teacher()  # what `notebooks prepare` leaves
    assert prepared.folder.path.is_relative_to(shared)
    _read_only(shared)
    before = _files(shared)
    try:
        monkeypatch.setenv(SHARED_ENV, str(shared))
        student = Course("smoke", artifacts=own, progress=False)  # as a notebook's parameters cell builds it
        teacher = student.teacher()  # loaded where it is: nothing written, nothing trained
        assert teacher.folder.path == prepared.folder.path
        assert teacher.metrics.top1 == prepared.metrics.top1
        vit = student.prepare_run("vit")  # not prepared: made in the student's own folder
        assert Path(vit.out_dir).is_relative_to(own / "smoke")
        deit = student.prepare_run("deit")  # a distilled run: the shared teacher, the student's own folder
        assert Path(deit.out_dir).is_relative_to(own / "smoke") and Path(deit.teacher).is_relative_to(shared)
        assert _files(shared) == before
    finally:
        for path in [shared, *shared.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    monkeypatch.delenv(SHARED_ENV)
    assert Path(Course("smoke", artifacts=own).prepare_run("small_cnn").out_dir).is_relative_to(own)


def test_prepare_runs_the_training_notebooks_of_the_teachers_copies(tmp_path, monkeypatch, capsys):
    asked = {}

    def run_series(course, *, only, out_dir, folder, jobs):
        asked.update(only=only, folder=folder, artifacts=course.artifacts, shared=os.environ.get(SHARED_ENV))
        return [NotebookResult(name, "ok", 1.0) for name in only]

    monkeypatch.setattr(notebooks, "run_series", run_series)
    monkeypatch.setenv(SHARED_ENV, str(tmp_path / "elsewhere"))
    shared = tmp_path / "srv" / "titn-shared"
    code = main(["notebooks", "prepare", "--profile", "smoke", "--artifacts", str(shared), "--jobs", "1",
                 "--out", str(tmp_path / "executed")])
    out = capsys.readouterr().out
    assert code == 0
    assert asked["only"] == list(TRAINING_NOTEBOOKS) and asked["folder"] == notebooks.NOTEBOOK_DIR
    # the teacher's kernels write into the folder being prepared, not into a shared folder the shell names
    assert asked["artifacts"] == shared.resolve() and asked["shared"] == str(shared.resolve())
    assert f"{SHARED_ENV}={shared.resolve()}" in out


def test_prepare_refuses_students_copies_and_answers_beside_the_runs(tmp_path, capsys):
    students = copy_series(tmp_path / "class").folder
    assert main(["notebooks", "prepare", "--artifacts", str(tmp_path / "shared"), "--from", str(students)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds students' copies" in err and "--from path/to/clone/notebooks" in err
    assert main(["notebooks", "prepare", "--artifacts", str(tmp_path / "shared"),
                 "--out", str(tmp_path / "shared" / "executed")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "hold the answers, so write them elsewhere" in err
    assert not (tmp_path / "shared").exists()


def test_running_students_copies_says_why_they_stop(tmp_path, monkeypatch, capsys):
    students = copy_series(tmp_path / "class").folder
    monkeypatch.setattr(notebooks, "run_series", lambda course, **kw: [
        NotebookResult("01_attention", "failed", 1.0, 7, "CheckFailed: your attention is not written yet")])
    assert main(["notebooks", "run", "--profile", "smoke", "--only", "01", "--jobs", "1", "--from", str(students),
                 "--artifacts", str(tmp_path / "a"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "holds students' copies (answers cleared): each stops at its first exercise" in err
