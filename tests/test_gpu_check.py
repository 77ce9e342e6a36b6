"""benchmarks/gpu_check.py: its --quick report names every check, one row each, and a check
that fails or hangs does not stop the others. The heavy checks are stubbed with tiny commands."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
NAMES = ["notebooks", "teacher", "titn", "titn-loader", "titn-compiled", "throughput", "pipeline"]


@pytest.fixture
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_check"]


def test_quick_checks_are_every_check_at_its_smallest_size(gpu_check, tmp_path):
    checks = gpu_check.build_checks("cpu", True, None, tmp_path)
    assert [c.name for c in checks] == NAMES
    commands = {c.name: " ".join(c.command) for c in checks}
    assert "notebooks run --profile smoke" in commands["notebooks"] and "--only 01" in commands["notebooks"]
    assert "--profile paper --epochs 1" in commands["titn"] and "--compile" in commands["titn-compiled"]
    assert "--train-subset 64" in commands["titn"] and "--teacher" in commands["titn"]
    assert "--data-path loader" in commands["titn-loader"] and "--data-path" not in commands["titn"]
    assert "throughput.py" in commands["throughput"] and "--steps 1" in commands["throughput"]
    assert "augment_speed.py" in commands["pipeline"] and "--batches 1" in commands["pipeline"]
    full = {c.name: " ".join(c.command) for c in gpu_check.build_checks("cuda", False, "/data/fmnist", tmp_path)}
    assert "--dataset fashion-mnist --data-dir /data/fmnist" in full["titn"] and "--only" not in full["notebooks"]
    assert "--compile" in full["throughput"]
    mini = {c.name: " ".join(c.command)
            for c in gpu_check.build_checks("cpu", False, "/data/fmnist", tmp_path, mini=True)}
    assert "--dataset fashion-mnist-mini" in mini["titn-loader"] and "--train-subset" not in mini["titn"]


def test_the_report_names_every_check_and_one_failure_stops_none(gpu_check, tmp_path, monkeypatch):
    real = gpu_check.build_checks

    def stubbed(device, quick, data_dir, workdir, **options):
        checks = real(device, quick, data_dir, workdir, **options)
        outputs = {"teacher": "vgg16_bn on fashion-mnist-mini: top-1 10.00%, top-5 50.00%",
                   "titn": "titn on fashion-mnist-mini: top-1 12.50%, top-5 55.00%\nlast epoch: 1234 img/s training",
                   "throughput": "| vit | 0.1000 | 120 | 36.0 | 400 | 40.0 | 120 |",
                   "pipeline": "| cifar | x | 5000 | 1000 | 5.00 | r |"}
        for check in checks:
            text = outputs.get(check.name, "ran")
            check.command = [sys.executable, "-c", f"print({text!r})"]
        checks[0].command = [sys.executable, "-c", "import sys; print('broken'); sys.exit(3)"]  # notebooks fail
        compiled = next(c for c in checks if c.name == "titn-compiled")
        compiled.command = [sys.executable, "-c", "import time; time.sleep(30)"]  # hangs
        compiled.timeout = 1
        return checks

    monkeypatch.setattr(gpu_check, "build_checks", stubbed)
    out = tmp_path / "report.md"
    assert gpu_check.main(["--device", "cpu", "--quick", "--out", str(out)]) == 1
    text = out.read_text()
    summary = text.split("| check |", 1)[1].split("\n\n", 1)[0]  # the table before each check's details
    rows = summary.splitlines()[2:]
    assert [row.split(" | ")[0][2:] for row in rows] == NAMES
    status = {row.split(" | ")[0][2:]: row.split(" | ")[2] for row in rows}
    assert status["notebooks"] == "fail (exit 3)" and status["titn-compiled"] == "fail (over 1 s)"
    assert all(status[name] == "pass" for name in ("teacher", "titn", "titn-loader", "throughput", "pipeline"))
    summary_figures = {row.split(" | ")[0][2:]: row.split(" | ")[3] for row in rows}
    assert summary_figures["titn"] == "top-1 12.50%, 1234 img/s" and summary_figures["teacher"] == "top-1 10.00%"
    assert ("top-1 12.50%, 1234 img/s" in text and "vit 120/400 img/s" in text
            and "cifar batch 5000 vs DataLoader 1000" in text)
    assert "5 of 7 checks passed; failed: notebooks, titn-compiled" in text
    assert "broken" in text  # each check's output tail is in the report


def test_the_pipeline_check_runs_for_real_at_its_quick_size(gpu_check, tmp_path):
    check = next(c for c in gpu_check.build_checks("cpu", True, None, tmp_path) if c.name == "pipeline")
    check.command += ["--recipe", "mnist"]
    gpu_check.run_check(check)
    assert check.status == "pass", check.output
    assert check.result.startswith("mnist batch ")
