"""Notebooks side by side: when one ends and none is left to start, the ones still running take
the freed cores (a notebook training several runs then trains more of them at once)."""

import time
from pathlib import Path

import pytest

from titn_lite.classroom.series import CoreShare, NotebookResult, _execute_all
from titn_lite.system.cpu import CORE_SHARE_VARIABLE, available_cores, cores_share


class _Bar:
    def set_postfix_str(self, *_):
        pass

    def update(self):
        pass


def test_each_running_notebook_gets_its_share_and_the_last_one_every_core(tmp_path):
    share = CoreShare(tmp_path / "threads", jobs=2, notebooks=4, cores=4)
    seen = [share.each]
    for _ in range(4):
        share.notebook_finished()
        seen.append(int(share.path.read_text()))
    assert seen == [2, 2, 2, 4, 4]  # 4, 3 and 2 left: two run; 1 left: it alone
    assert CoreShare(tmp_path / "one", jobs=3, notebooks=3, cores=2).each == 1  # never below one


def test_the_runner_raises_the_share_when_the_last_notebook_runs_alone(tmp_path):
    share = CoreShare(tmp_path / "threads", jobs=2, notebooks=3, cores=2)
    seen = {}

    def execute(notebook: Path) -> NotebookResult:
        if notebook.stem == "long":  # runs on after both short ones: it should end up with both cores
            deadline = time.monotonic() + 20
            while share.path.read_text() != "2" and time.monotonic() < deadline:
                time.sleep(0.01)
        seen[notebook.stem] = share.path.read_text()
        return NotebookResult(notebook.stem, "ok", 0.0)

    notebooks = [tmp_path / "long.ipynb", tmp_path / "a.ipynb", tmp_path / "b.ipynb"]
    results = _execute_all(notebooks, execute, 2, _Bar(), share)
    assert [r.notebook for r in results] == ["long", "a", "b"]
    assert seen["long"] == "2" and seen["a"] == "1"  # "a" ran beside "long": one core each


def test_a_kernel_reads_its_share_and_outside_a_series_every_core(tmp_path, monkeypatch):
    monkeypatch.delenv(CORE_SHARE_VARIABLE, raising=False)
    assert cores_share() == available_cores()
    (tmp_path / "cores").write_text("1")
    monkeypatch.setenv(CORE_SHARE_VARIABLE, str(tmp_path / "cores"))
    assert cores_share() == 1
    (tmp_path / "cores").write_text("3")  # the runner raised it: read again each time
    assert cores_share() == 3
    (tmp_path / "cores").unlink()  # the runner has gone
    assert cores_share() == available_cores()


@pytest.mark.parametrize("jobs", [1, 2])
def test_only_a_side_by_side_series_names_a_share_to_its_kernels(jobs, tmp_path, monkeypatch):
    from titn_lite.classroom import series
    named = []
    real = series.kernel_environment

    def spy(**variables):
        named.append(variables.get(CORE_SHARE_VARIABLE))
        return real(**variables)

    monkeypatch.setattr(series, "kernel_environment", spy)
    monkeypatch.setattr(series, "_execute_all", lambda notebooks, execute, jobs, bar, share: [
        NotebookResult(n.stem, "ok", 0.0) for n in notebooks])
    from titn_lite.classroom.course import Course
    course = Course("smoke", artifacts=tmp_path / "artifacts", progress=False)
    series.run_series(course, only=["00_setup", "01_attention"], out_dir=tmp_path / "out", jobs=jobs)
    assert (named[0] is not None) == (jobs > 1)
