"""The benchmark scripts' own logic (their runs are measured by running them, not here):
the regimes they search are notebook 11's settings, and bad arguments say what to do."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from titn_lite.course import Course

ROOT = Path(__file__).resolve().parents[1]


def benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_the_regime_search_trains_notebook_10s_few_labels_runs(tmp_path):
    regimes = benchmark("distillation_regimes").regimes(Course("classroom", artifacts=tmp_path))
    few = Course("classroom", artifacts=tmp_path).few_labels(1000, 9000)
    scarce = regimes["scarce-labels"]  # the same runs as the notebook's section, so the search reuses them
    assert (scarce.teacher, scarce.distilled, scarce.twin) == (few.teacher, few.distilled, few.twin)
    assert regimes["unlabelled-equal-steps"].twin == {"train_subset": 4000, "epochs": 10, "warmup_epochs": 2.5}
    assert regimes["scarce-labels-longer"].twin["epochs"] == 80 and regimes["mixup"].students["mix"] == "mixup"
    assert "24 epochs instead of 8" in regimes["teacher-longer"].says  # formatted from the profile


def test_benchmarks_refuse_unknown_choices_naming_the_valid_ones(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["distillation_regimes.py", "--regimes", "classroom,nope"])
    with pytest.raises(SystemExit):
        benchmark("distillation_regimes").main()
    assert "unknown nope; valid: classroom, teacher-10k" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["fashion_mnist.py", "--data-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="apt-get install dataset-fashion-mnist"):
        benchmark("fashion_mnist").main()
