"""The series' kernels are forks of one warm process (titn_lite.classroom.warm_kernels): each must
still behave as a kernel started afresh, and nothing may outlive the series."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from titn_lite.classroom import series
from titn_lite.classroom.course import Course
from titn_lite.classroom.series import run_series
from titn_lite.classroom.warm_kernels import available, interpreter_of

pytestmark = pytest.mark.skipif(not available(), reason="warm kernels fork, on Linux only")

# What a kernel reports of itself; torch is used only after the cell imports it.
REPORT = """import json, os, random, sys
warm = "torch" in sys.modules
import numpy, torch
print(json.dumps({"warm": warm, "torch": torch.rand(3).tolist(), "cwd": os.getcwd(), "random": random.random(),
                  "numpy": float(numpy.random.rand()), "threads": torch.get_num_threads(),
                  "omp": os.environ.get("OMP_NUM_THREADS"), "pids": [os.getpid(), os.getppid()]}))"""


def _series(folder: Path, bodies: dict[str, str]) -> Path:
    folder.mkdir()
    parameters = nbformat.v4.new_code_cell("profile = 'classroom'")
    parameters.metadata["tags"] = ["parameters"]
    for name, body in bodies.items():
        nbformat.write(nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(body)]),
                       folder / f"{name}.ipynb")
    return folder


def _report(notebook: Path) -> dict:
    cell = nbformat.read(notebook, as_version=4).cells[-1]
    return json.loads("".join(output.get("text", "") for output in cell.outputs))


def _fresh_torch_seed() -> int:
    return int(subprocess.run([sys.executable, "-c", "import torch; print(torch.initial_seed())"],
                              capture_output=True, text=True, check=True).stdout)


def _still_running(pids: list[int]) -> list[int]:
    running = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        running.append(pid)
    return running


def test_a_forked_kernel_starts_where_a_new_kernel_would(tmp_path, monkeypatch):
    folder = _series(tmp_path / "series", {"00_first": REPORT, "01_second": REPORT, "02_forgot": "torch.zeros(1)"})
    course = Course("smoke", artifacts=tmp_path / "artifacts", progress=False)
    warm = run_series(course, out_dir=tmp_path / "warm", folder=folder, jobs=2)
    monkeypatch.setattr(series, "warm_kernels_available", lambda: False)
    cold = run_series(course, out_dir=tmp_path / "cold", folder=folder, jobs=2)

    reports = {run: [_report(tmp_path / run / f"{name}.ipynb") for name in ("00_first", "01_second")]
               for run in ("warm", "cold")}
    assert [r["warm"] for r in reports["warm"]] == [True, True]  # torch was loaded before the first cell
    assert [r["warm"] for r in reports["cold"]] == [False, False]
    for report in reports["warm"] + reports["cold"]:
        assert report["cwd"] == str(folder.resolve())  # the notebook's own folder, as papermill asks
        assert report["omp"] == str(report["threads"])  # each kernel's share of the cores
    # every generator seeded afresh in each kernel, as in a new process (torch's too: its initial seed is
    # drawn per process, as a new interpreter shows; CPython reseeds random in a fork by itself)
    for first, second in reports.values():
        assert all(first[generator] != second[generator] for generator in ("torch", "random", "numpy"))
    assert len({_fresh_torch_seed() for _ in range(2)}) == 2
    # a name the notebook never imported is an error, though the module sits loaded in the fork
    for results in (warm, cold):
        assert [(r.status, (r.error or "").split(":")[0]) for r in results][2] == ("failed", "NameError")
    # the kernels and the warm process (the forked ones' parent) ended with the series
    kernels = [report["pids"][0] for run in reports.values() for report in run]
    assert _still_running(kernels + [report["pids"][1] for report in reports["warm"]]) == []
    assert all(report["pids"][1] == os.getpid() for report in reports["cold"])  # launched by the runner


def test_a_single_notebook_runs_alone_in_a_kernel_started_the_usual_way(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    folder = _series(tmp_path / "series", {"00_only": REPORT})
    run_series(Course("smoke", artifacts=tmp_path / "artifacts", progress=False), out_dir=tmp_path / "out",
               folder=folder, jobs=2)
    report = _report(tmp_path / "out" / "00_only.ipynb")
    assert report["warm"] is False
    # two at once asked, one notebook: it runs alone, its kernel with every core (no thread share set)
    assert report["omp"] is None and json.loads((tmp_path / "out" / "summary.json").read_text())["jobs"] == 1


def test_after_the_warm_process_fails_kernels_start_the_usual_way(tmp_path):
    ends_its_parent = REPORT + "\nimport signal\nos.kill(os.getppid(), signal.SIGKILL)"
    folder = _series(tmp_path / "series", {"00_ends_it": ends_its_parent, "01_after": REPORT, "02_last": REPORT})
    results = run_series(Course("smoke", artifacts=tmp_path / "artifacts", progress=False),
                         out_dir=tmp_path / "out", folder=folder, jobs=1)
    assert [r.status for r in results][1:] == ["ok", "ok"]
    reports = [_report(tmp_path / "out" / f"{name}.ipynb") for name in ("01_after", "02_last")]
    assert [r["warm"] for r in reports] == [False, False]
    assert _still_running([pid for report in reports for pid in report["pids"][:1]]) == []


def test_a_kernel_that_dies_fails_its_notebook_and_the_series_goes_on(tmp_path):
    folder = _series(tmp_path / "series", {"00_dies": "import os\nos._exit(3)", "01_after": "print('ok')"})
    results = run_series(Course("smoke", artifacts=tmp_path / "artifacts", progress=False),
                         out_dir=tmp_path / "out", folder=folder, jobs=1)
    assert [r.status for r in results] == ["failed", "ok"]
    assert "DeadKernelError" in results[0].error


def test_only_this_pythons_ipykernel_is_forked():
    python = sys.executable
    assert interpreter_of([python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]) == [python]
    assert interpreter_of([python, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "x"]) == \
        [python, "-Xfrozen_modules=off"]
    assert interpreter_of(["R", "--slave", "-e", "IRkernel::main()", "--args", "x"]) is None
    assert interpreter_of([python, "-m", "other_kernel", "-f", "x"]) is None


def test_a_closed_handle_asks_the_system_and_starts_no_second_warm_process(tmp_path):
    from titn_lite.classroom.warm_kernels import WarmKernels

    warm = WarmKernels([sys.executable], tmp_path)
    warm.start()
    warm.close()
    gone = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no process can have it
    assert warm.poll(gone) == -1 and warm.poll(os.getpid()) is None  # answered from /proc
    assert warm._process is None  # a kernel still polled after the series does not start another one
