"""The benchmark scripts' own logic (their runs are measured by running them, not here):
the regimes they search are notebook 11's settings, and bad arguments say what to do."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

from titn_lite.classroom.course import Course

ROOT = Path(__file__).resolve().parents[1]


def benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_the_regime_search_trains_notebook_10s_few_labels_runs(tmp_path):
    regimes = benchmark("distillation_regimes").regimes(Course("classroom", artifacts=tmp_path))
    course = Course("classroom", artifacts=tmp_path)
    trainable = 10_000 - course.profile.val_images  # the embedded training images outside the validation split
    few = course.few_labels(1000, trainable - 1000, warmup_epochs=course.profile.warmup_epochs)
    scarce = regimes["scarce-labels"]  # the regime the search measured, with the profile's warm-up
    assert (scarce.teacher, scarce.distilled, scarce.twin) == (few.teacher, few.distilled, few.twin)
    assert regimes["unlabelled-equal-steps"].twin == {"train_subset": 4000, "epochs": 9, "warmup_epochs": 2.25,
                                                       "evaluate_every": 2}  # 4 epochs x 9,000 images / 4,000
    assert regimes["scarce-labels-longer"].twin["epochs"] == 72 and regimes["mixup"].students["mix"] == "mixup"
    assert "24 epochs instead of 8" in regimes["teacher-longer"].says  # formatted from the profile


def test_benchmarks_refuse_unknown_choices_naming_the_valid_ones(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["distillation_regimes.py", "--regimes", "classroom,nope"])
    with pytest.raises(SystemExit):
        benchmark("distillation_regimes").main()
    assert "unknown nope; valid: classroom, teacher-all" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark("side_by_side").main(["--models", "titn,nope"])
    assert "unknown models nope; valid: vit, deit" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["fashion_mnist.py", "--data-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="apt-get install dataset-fashion-mnist"):
        benchmark("fashion_mnist").main()


def write_idx_files(folder: Path, train: int, test: int) -> None:
    """Fashion-MNIST's four files in their real format (gzipped IDX), with ``train`` and
    ``test`` random 28x28 images whose label is their brightness band (something to learn)."""
    import gzip
    import struct

    import torch

    generator = torch.Generator().manual_seed(0)
    for prefix, count in (("train", train), ("t10k", test)):
        labels = torch.randint(0, 10, (count,), generator=generator, dtype=torch.uint8)
        images = (torch.rand(count, 28, 28, generator=generator) * 100 + labels.view(-1, 1, 1) * 15).to(torch.uint8)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">IIII", 2051, count, 28, 28) + images.numpy().tobytes()))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">II", 2049, count) + labels.numpy().tobytes()))


def test_the_budget_regime_trains_every_student_on_every_image_for_the_epochs_its_calibration_gives(
        tmp_path, monkeypatch):
    """Each student trains, on all the training images (not the classroom's subset), for the
    epochs its own calibration run (through the kit's engine) says fill the budget. Whether the
    runs then take their budget is the benchmark's figure to print (docs/measurements.md), not a
    clock to assert in a test on a shared machine."""
    from titn_lite.train.run_folder import RunFolder

    monkeypatch.setenv("TITN_LITE_DATA", str(tmp_path / "cache"))
    data = tmp_path / "fashion-mnist"
    data.mkdir()
    write_idx_files(data, train=320, test=100)
    module = benchmark("fashion_mnist")
    calibrations = {}
    real_calibrate = module.calibrate

    def recording_calibrate(config, folder, **kwargs):
        calibrations[config.model] = real_calibrate(config, folder, **kwargs)
        return calibrations[config.model]

    monkeypatch.setattr(module, "calibrate", recording_calibrate)
    budget_minutes = 0.15
    args = argparse.Namespace(data_dir=str(data), device="cpu", out=tmp_path / "out", teacher_epochs=1,
                              budget_minutes=budget_minutes, students="vit,titn")
    seconds = module.train_students(args)
    assert set(seconds) == set(calibrations) == {"vit", "titn"}
    for name, took in seconds.items():
        run = RunFolder(tmp_path / "out" / name)
        assert run.config()["epochs"] == calibrations[name].epochs_for(60 * budget_minutes, 320) >= 1
        assert run.config()["train_subset"] == 320 and run.metrics().count == 100
        assert len(run.history()) == run.config()["epochs"] and took > 0
    assert RunFolder(tmp_path / "out" / "titn").config()["teacher"].startswith(str(tmp_path / "out" / "small_cnn"))


def test_the_profile_probes_undo_one_choice_each_and_refuse_unknown_ones(monkeypatch, capsys):
    from titn_lite.train.config import TrainConfig

    probes = benchmark("profile_probes")
    profile = TrainConfig("titn", profile="classroom").resolved()
    for name, settings in probes.VARIANTS.items():
        variant = TrainConfig("titn", profile="classroom", **settings).resolved()
        changed = {k for k in ("model_overrides", "augmentation", "mix", "optimizer", "lr", "weight_decay",
                               "batch_size") if getattr(variant, k) != getattr(profile, k)}
        assert changed == set(settings), name  # the named choice undone, nothing else
    assert not any("," in name for name in probes.VARIANTS)  # --variants is comma-separated
    assert not set(probes.PROBE_SEEDS) & set(range(100, 104))  # never a pilot's seed, nor a chapter's
    assert min(probes.PROBE_SEEDS) > 10
    monkeypatch.setattr(sys, "argv", ["profile_probes.py", "--variants", "depth 4,nope"])
    with pytest.raises(SystemExit):
        probes.main()
    assert "unknown nope; valid: the profile, depth 4" in capsys.readouterr().err
