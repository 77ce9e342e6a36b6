"""The training engine on the embedded data at the smoke profile."""

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from markdown_tables import alignment, header, row_starting
from torch import nn

from titn_lite.cli import main
from titn_lite.system import devices
from titn_lite.system.usage import UsageError
from titn_lite.train import engine as training
from titn_lite.train import pipeline
from titn_lite.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from titn_lite.train.config import TrainConfig
from titn_lite.train.engine import TrainingDiverged, warmup_cosine
from titn_lite.train.runs import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("TITN_LITE_DATA", str(tmp_path_factory.mktemp("cache")))


def smoke(out, **kwargs):
    kwargs.setdefault("model", "titn")
    return TrainConfig(profile="smoke", out_dir=str(out), **kwargs)


@pytest.fixture(scope="module")
def teacher_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    train(TrainConfig(model="small_cnn", profile="smoke", out_dir=str(out)), progress=False)
    return out / "checkpoint.pt"


def test_smoke_run_writes_a_complete_run(tmp_path, teacher_checkpoint):
    result = train(smoke(tmp_path / "run", teacher=str(teacher_checkpoint), epochs=2), progress=False)
    run = tmp_path / "run"
    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2] and history == result.history
    assert set(history[0]) == {"epoch", "lr", "train_loss", "train_top1", "train_top5", "val_loss", "val_top1",
                               "val_top5", "seconds", "images_per_second"}
    assert (run / "history.csv").read_text().splitlines()[0].startswith("epoch,lr,train_loss")
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["count"] == 128 and 0 <= metrics["top1"] <= metrics["top5"] <= 1
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    assert checkpoint["complete"] and checkpoint["epoch"] == 2 and checkpoint["dataset"] == "fashion-mnist-mini"
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "config"} <= set(checkpoint)
    assert not list(run.glob(".*.tmp"))


def test_named_teacher_is_trained_once_then_reused(tmp_path):
    train(smoke(tmp_path / "a"), progress=False)
    teacher = tmp_path / "a" / "teacher" / "checkpoint.pt"
    assert load_checkpoint(teacher)["model_name"] == "small_cnn"
    before = teacher.stat().st_mtime_ns
    # a second student in the same folder (after the first run is moved away) reuses it
    (tmp_path / "a" / "checkpoint.pt").unlink()
    train(smoke(tmp_path / "a", model="deit"), progress=False)
    assert teacher.stat().st_mtime_ns == before


@pytest.mark.parametrize("augmentation, data_path", [("paper", "loader"), ("paper", "batch"), ("light", "batch")])
def test_resume_after_interruption_is_bit_for_bit(tmp_path, teacher_checkpoint, augmentation, data_path):
    # loader: torchvision's transforms per image in a DataLoader; batch: whole batches (the default)
    config = dict(teacher=str(teacher_checkpoint), epochs=3, mix="cutmix", augmentation=augmentation,
                  data_path=data_path)
    train(smoke(tmp_path / "straight", **config), progress=False)

    def stop_after_first_epoch(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(smoke(tmp_path / "resumed", **config), progress=False, callbacks=[stop_after_first_epoch])
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["epoch"] == 1
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    train(smoke(tmp_path / "resumed", **config), resume=True, progress=False)

    straight = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    assert [r["train_loss"] for r in straight["history"]] == [r["train_loss"] for r in resumed["history"]]


def poison_the_loss(monkeypatch, poisoned_call: Callable[[int], bool]) -> None:
    """Make the training loss NaN on the calls (counted from 1) ``poisoned_call`` picks."""
    real_forward = training.DistillationLoss.forward
    calls = {"n": 0}

    def poisoned(self, outputs, batch):
        calls["n"] += 1
        loss = real_forward(self, outputs, batch)
        return loss * float("nan") if poisoned_call(calls["n"]) else loss
    monkeypatch.setattr(training.DistillationLoss, "forward", poisoned)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, teacher_checkpoint):
    poison_the_loss(monkeypatch, lambda call: call > 8)  # smoke: 8 steps per epoch
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, step 1 .*the last checkpoint is kept"):
        train(smoke(tmp_path / "run", teacher=str(teacher_checkpoint), epochs=3), progress=False)
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["epoch"] == 1
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "diverged"
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_teacher_from_another_dataset_is_refused(tmp_path, teacher_checkpoint):
    checkpoint = load_checkpoint(teacher_checkpoint)
    checkpoint["dataset"] = "mnist"
    save_checkpoint(tmp_path / "mnist_teacher.pt", checkpoint)
    with pytest.raises(ValueError, match=r"trained on mnist \(10 classes, 1 channel\(s\)\) "
                                         r"but the student trains on fashion-mnist-mini"):
        train(smoke(tmp_path / "run", teacher=str(tmp_path / "mnist_teacher.pt")), progress=False)


def test_bad_checkpoints_get_clear_errors(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="is not a readable titn-lite checkpoint"):
        load_checkpoint(tmp_path / "garbage.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="is not a titn-lite checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save(TrainConfig(model="vit"), tmp_path / "pickled_object.pt")
    with pytest.raises(CheckpointError, match="is not a readable titn-lite checkpoint"):
        load_checkpoint(tmp_path / "pickled_object.pt")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_existing_run_is_not_overwritten_and_resume_must_match(tmp_path, teacher_checkpoint):
    train(smoke(tmp_path / "run", teacher=str(teacher_checkpoint)), progress=False)
    with pytest.raises(ValueError, match="already holds a run; pass --resume"):
        train(smoke(tmp_path / "run", teacher=str(teacher_checkpoint)), progress=False)
    with pytest.raises(ValueError, match=r"--resume continues the run .* lr: run has 0.001, asked 0.2"):
        train(smoke(tmp_path / "run", teacher=str(teacher_checkpoint), lr=0.2), resume=True, progress=False)


def test_bf16_autocast_trains_on_cpu(tmp_path, teacher_checkpoint, monkeypatch):
    # The step must really run in bf16: a hook on every linear layer records what its forward
    # returned while training (a run that ignored autocast would record float32 alone).
    seen = set()
    build = training.build_model

    def build_with_hooks(*args, **kwargs):
        model = build(*args, **kwargs)
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.register_forward_hook(lambda m, _, out: seen.add(out.dtype) if m.training else None)
        return model

    monkeypatch.setattr(training, "build_model", build_with_hooks)
    result = train(smoke(tmp_path / "run", teacher=str(teacher_checkpoint), amp="bf16"), progress=False)
    assert seen == {torch.bfloat16}
    assert torch.isfinite(torch.tensor(result.history[0]["train_loss"]))


@pytest.mark.parametrize("requested, expected", [("cuda", "cuda:3"), ("auto", "cuda:3"), ("cuda:1", "cuda:1")])
def test_a_gpu_without_an_index_becomes_the_one_in_use(monkeypatch, requested, expected):
    # torch 2.11 on an H200 refused set_device(torch.device("cuda")): every CUDA run failed
    # there, the first time the kit ran on a GPU. Here set_device refuses the same way.
    chosen = []

    def set_device(device):
        if torch.device(device).index is None:
            raise ValueError("Expected a torch.device with a specified index or an integer, but got:cuda")
        chosen.append(torch.device(device))

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    device = devices.resolve_device(requested)
    assert device == torch.device(expected) and chosen == [device]


def test_warmup_then_cosine():
    factor = warmup_cosine(warmup_steps=10, total_steps=110)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.5) and factor(110) == pytest.approx(0.0)


@pytest.mark.parametrize("argv,message", [
    (["--model", "titm"], "unknown model 'titm'; valid students: vit, deit, tnt, titn, titn_large_patch; "
                          "valid teachers: vgg16_bn"),
    (["--model", "titn", "--dataset", "svhn"], "unknown dataset 'svhn'; valid datasets: fashion-mnist-mini"),
    (["--model", "titn", "--profile", "huge"], "unknown profile 'huge'; valid profiles: smoke, classroom, paper"),
    (["--model", "titn", "--teacher", "vgg17"], "teacher 'vgg17' is neither a teacher name (vgg16_bn"),
    (["--model", "titn", "--mix-alpha", "-1"], "mixing alpha must be a positive finite number"),
    (["--model", "titn", "--mix-prob", "2"], "mixing probability must be between 0 and 1, got 2.0"),
    (["--model", "titn", "--distill-alpha", "1.5"], "distillation alpha must be between 0 and 1, got 1.5"),
    (["--model", "titn", "--batch-size", "0"], "batch_size must be a positive whole number, got 0"),
    (["--model", "vit", "--distill", "hard"], "vit has no distillation token"),
    (["--model", "titn", "--amp", "fp16"], "need CUDA, which this machine lacks"),
    (["--model", "titn", "--dataset", "cifar10", "--data-dir", "{tmp}/nothing"], "cifar10 not found in"),
    (["--model", "titn", "--resume"], "no checkpoint at"),
    (["--model", "titn", "--override", "depth"], "--override takes KEY=INTEGER"),
    (["--model", "titn", "--override", "pixel_size=3"], "patch size 8 is not divisible by pixel size 3"),
])
def test_cli_train_bad_input_exits_2_and_leaves_nothing(tmp_path, capsys, monkeypatch, argv, message):
    import urllib.error

    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")
    monkeypatch.setattr("torchvision.datasets.cifar.download_and_extract_archive", offline)
    out = tmp_path / "run"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["train", "--profile", "smoke", "--out", str(out), *argv] if "--profile" not in argv
                else ["train", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_cli_train_evaluate_report(tmp_path, capsys, teacher_checkpoint):
    out = tmp_path / "run"
    assert main(["train", "--model", "titn", "--profile", "smoke", "--teacher", str(teacher_checkpoint),
                 "--out", str(out), "--quiet"]) == 0
    assert "titn on fashion-mnist-mini: top-1" in capsys.readouterr().out
    assert main(["evaluate", str(out / "checkpoint.pt"), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test_images"] == 2000 and evaluated["model"] == "titn"
    assert main(["evaluate", str(out / "checkpoint.pt")]) == 0
    printed = capsys.readouterr().out
    assert header(printed)[:3] == ["model", "dataset", "top-1 %"] and alignment(printed) == "llrrrrrrr"
    assert row_starting(printed, "titn")[:3] == ["titn", "fashion-mnist-mini", f"{100 * evaluated['top1']:.2f}"]
    assert main(["report", str(out), str(teacher_checkpoint.parent), "--out", str(tmp_path / "report.md")]) == 0
    report = (tmp_path / "report.md").read_text()
    assert row_starting(report, "titn")[1] == row_starting(report, "small_cnn")[1] == "fashion-mnist-mini"
    history = json.loads((out / "history.json").read_text())
    best = max(history, key=lambda row: row["val_top1"])  # chosen on the validation images, never the test ones
    assert header(report)[2:4] == ["top-1 %", "best validation top-1 % (epoch)"]
    assert alignment(report) == "ll" + "r" * 12 + "l"
    assert row_starting(report, "titn")[3] == f"{100 * best['val_top1']:.2f} ({best['epoch']})"
    assert row_starting(report, "titn")[2] == f"{100 * json.loads((out / 'metrics.json').read_text())['top1']:.2f}"
    assert "\"based on their maximum test accuracy\" (§4.2)" in report  # the note under the table
    assert main(["evaluate", str(out / "checkpoint.pt"), "--dataset", "cifar10"]) == 2
    assert ("classifies 10 classes of 1-channel images; cifar10 has 10 classes of 3-channel images"
            in capsys.readouterr().err)


def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    # SGD (the paper's): Adam divides by sqrt of tiny second moments, which magnifies float
    # rounding differences between 1 and 2 processes far past any sensible tolerance.
    common = ["--model", "vit", "--profile", "smoke", "--optimizer", "sgd", "--lr", "0.05", "--mix", "none",
              "--batch-size", "32", "--train-subset", "128", "--epochs", "2", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "titn_lite", "train", *common, "--out", str(tmp_path / "one")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    double = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_port", "29517", "-m", "titn_lite", "train", *common,
                             "--out", str(tmp_path / "two")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert double.returncode == 0, double.stderr[-3000:]
    one = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    two = load_checkpoint(tmp_path / "two" / "checkpoint.pt")
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, atol=1e-5, rtol=1e-4)
    for a, b in zip(one["history"], two["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_top1"] == pytest.approx(b["val_top1"])
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


def test_adamw_leaves_biases_norms_tokens_and_positions_undecayed():
    """DeiT's and timm's rule: matrices decay; biases, norm gains, tokens and position
    embeddings (1-D, or named as such) do not. One AdamW step with zero gradients shows it."""
    from titn_lite import create_model
    from titn_lite.train.engine import parameter_groups

    model = create_model("titn", num_classes=10, in_chans=1, depth=1)
    for parameter in model.parameters():
        nn.init.normal_(parameter)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(parameter_groups(model, weight_decay=0.5), lr=0.1)
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    exempt = {name for name, p in model.named_parameters() if torch.equal(p, before[name])}
    decayed = {name for name, p in model.named_parameters() if torch.allclose(p, before[name] * (1 - 0.1 * 0.5))}
    assert exempt | decayed == set(before) and not exempt & decayed
    assert {"tokens.class_token", "tokens.distill_token", "patch_tokens", "tokens.pos_embedding",
            "pixel_embedding.pos_embedding"} <= exempt
    assert all(name.endswith("weight") and before[name].ndim >= 2 for name in decayed)
    assert all(before[name].ndim <= 1 or name.endswith(("token", "tokens", "pos_embedding")) for name in exempt)
    everything = parameter_groups(model, weight_decay=0.5, decay="all")
    assert len(everything) == 1 and len(everything[0]["params"]) == len(before)
    assert TrainConfig(model="titn", profile="classroom").resolved().decay == "weights"  # AdamW
    assert TrainConfig(model="titn", profile="paper").resolved().decay == "all"  # SGD, as PyTorch's default


def test_the_model_names_its_undecayed_parameters_and_a_wrapper_changes_nothing():
    from titn_lite import create_model, create_teacher
    from titn_lite.train.engine import parameter_groups

    def exempt(model):
        return {id(p) for group in parameter_groups(model, weight_decay=0.5) if group["weight_decay"] == 0
                for p in group["params"]}
    model = create_model("deit", num_classes=10, in_chans=1, depth=1)
    assert model.no_weight_decay() == {"tokens.class_token", "tokens.distill_token", "tokens.pos_embedding"}
    # torch.compile's wrapper renames every parameter (_orig_mod.); DataParallel's and DDP's (module.)
    assert exempt(torch.compile(model)) == exempt(nn.DataParallel(model)) == exempt(model)
    teacher = create_teacher("small_cnn", num_classes=10, in_chans=1)  # no tokens: its 1-D parameters only
    assert exempt(teacher) == {id(p) for p in teacher.parameters() if p.ndim <= 1}


@pytest.mark.parametrize("fails_at", ["construction", "step"])  # torch 2.3 on a CPU fails only at the step
def test_fused_optimizer_falls_back_where_torch_lacks_it(monkeypatch, fails_at):
    class NoFusedAdamW(torch.optim.AdamW):
        def __init__(self, params, **settings):
            if settings.get("fused") and fails_at == "construction":
                raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of "
                                   "supported devices")
            super().__init__(params, **settings)

        def step(self, closure=None):
            if self.defaults.get("fused") and fails_at == "step":
                raise NotImplementedError("Could not run 'aten::_fused_adamw_' with arguments from the 'CPU' backend")
            return super().step(closure)
    monkeypatch.setattr(torch.optim, "AdamW", NoFusedAdamW)
    config = TrainConfig(model="vit", profile="smoke").resolved()
    parameter = nn.Parameter(torch.zeros(3))
    optimizer = training.make_optimizer(config, [{"params": [parameter]}])
    assert isinstance(optimizer, NoFusedAdamW) and not optimizer.param_groups[0]["fused"]
    parameter.grad = torch.ones(3)
    optimizer.step()  # and it steps
    assert parameter.abs().sum() > 0


def test_resume_steps_with_this_torchs_kernel_not_the_savers(tmp_path, monkeypatch):
    """A checkpoint saved by an unfused optimizer (an older torch) resumes with the kernel
    make_optimizer chooses here, rather than the saved group's flag."""
    real = training.make_optimizer
    monkeypatch.setattr(training, "make_optimizer", lambda cfg, groups: real(cfg, groups, fused=False))

    def stop_after_first_epoch(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(smoke(tmp_path / "run", epochs=2), progress=False, callbacks=[stop_after_first_epoch])
    saved = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["optimizer"]["param_groups"]
    assert not any(group["fused"] for group in saved)
    monkeypatch.setattr(training, "make_optimizer", real)
    train(smoke(tmp_path / "run", epochs=2), resume=True, progress=False)
    resumed = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["optimizer"]["param_groups"]
    fresh = real(TrainConfig(model="vit", profile="smoke").resolved(), [{"params": [nn.Parameter(torch.zeros(3))]}])
    assert all(group["fused"] == fresh.param_groups[0]["fused"] for group in resumed)


# --- unlabelled images: seen by the student, labelled only by its teacher -------------------------

@pytest.mark.parametrize("augmentation, data_path", [("paper", "loader"), ("paper", "batch"), ("none", "batch")])
def test_unlabelled_images_follow_the_labelled_ones_with_their_labels_hidden(augmentation, data_path):
    from titn_lite.data.datasets import load_dataset
    from titn_lite.train.losses import UNLABELLED
    cfg = smoke("unused", model="deit", unlabelled=41, augmentation=augmentation, batch_size=8,
                data_path=data_path).resolved()
    batches = pipeline.training_batches(cfg)  # what the engine trains on, as it cuts it
    assert batches.image_count == 256 + 41 and len(batches) == 37 == len(list(batches))  # 297 images: 1 left over
    labels = torch.cat([labels for _, labels in batches])
    assert len(labels) == 296 and int((labels == UNLABELLED).sum()) in range(41 - 1, 42)  # one image dropped
    truth = torch.as_tensor(load_dataset("fashion-mnist-mini", train=True).targets)[:256]
    order = torch.tensor(list(batches.sampler))[:len(labels)]
    assert torch.equal(labels[order < 256], truth[order[order < 256]])
    assert bool((labels[order >= 256] == UNLABELLED).all())


def test_class_loss_skips_unlabelled_images_and_the_teacher_term_uses_them():
    from titn_lite.data.mixing import MixedBatch
    from titn_lite.train.losses import UNLABELLED, DistillationLoss, mixed_cross_entropy
    torch.manual_seed(0)
    images, logits = torch.randn(6, 1, 32, 32), torch.randn(6, 10, requires_grad=True)
    labels = torch.tensor([3, 1, UNLABELLED, 4, UNLABELLED, 9])
    batch = MixedBatch(images, labels, labels, 1.0)
    known = labels != UNLABELLED
    assert torch.allclose(mixed_cross_entropy(logits, batch, unlabelled=True),
                          nn.functional.cross_entropy(logits[known], labels[known]))
    nothing = torch.full((6,), UNLABELLED)
    loss = mixed_cross_entropy(logits, MixedBatch(images, nothing, nothing, 1.0), unlabelled=True)
    loss.backward()  # a batch without labels teaches the class head nothing, and is not NaN
    assert float(loss.detach()) == 0.0 and not logits.grad.any()
    with pytest.raises(ValueError, match="cannot be mixed"):  # half of a mixed image's label would be unknown
        mixed_cross_entropy(logits, MixedBatch(images, labels, labels.flip(0), 0.7), unlabelled=True)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 10))
    distill_logits = torch.randn(6, 10)
    loss = DistillationLoss(teacher, "hard", alpha=0.5, unlabelled=True)((logits, distill_logits), batch)
    expected = 0.5 * nn.functional.cross_entropy(logits[known], labels[known]) + 0.5 * nn.functional.cross_entropy(
        distill_logits, teacher(images).argmax(1))
    assert torch.allclose(loss, expected)


def test_unlabelled_run_trains_and_counts_training_accuracy_on_labelled_images(tmp_path, teacher_checkpoint):
    result = train(smoke(tmp_path / "run", model="deit", teacher=str(teacher_checkpoint), unlabelled=64),
                   progress=False)
    row = result.history[0]
    assert 0.0 <= row["train_top1"] <= 1.0 and row["train_loss"] > 0
    plain = smoke(tmp_path / "plain", model="deit", teacher=str(teacher_checkpoint))
    assert "unlabelled" not in plain.identity()  # a setting at its default is not in the identity
    assert json.loads((tmp_path / "run" / "config.json").read_text())["unlabelled"] == 64
    assert smoke(tmp_path / "run", model="deit", teacher=str(teacher_checkpoint), unlabelled=64).key() != plain.key()


@pytest.mark.parametrize("settings,message", [
    ({"model": "vit", "unlabelled": 10}, "vit has no distillation token"),
    ({"model": "deit", "distill": "none", "unlabelled": 10}, "deit learns from no teacher"),
    ({"model": "deit", "unlabelled": -1}, "unlabelled must be a whole number"),
    ({"model": "deit", "unlabelled": 10, "mix": "cutmix"}, "unlabelled images cannot be mixed"),
])
def test_unlabelled_needs_a_teacher_a_count_and_unmixed_images(settings, message):
    with pytest.raises(ValueError, match=message):
        smoke("unused", **settings).resolved()
    with pytest.raises(ValueError, match="--unlabelled needs --train-subset"):  # the paper profile trains on all
        TrainConfig(model="deit", profile="paper", unlabelled=10).resolved()


def test_more_unlabelled_images_than_the_dataset_holds_says_how_many_fit(tmp_path):
    with pytest.raises(ValueError, match="lower --unlabelled to at most 9616"):
        train(smoke(tmp_path / "run", model="deit", unlabelled=10_000), progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_evaluating_every_few_epochs_trains_the_same_weights_and_tests_the_last_epoch(tmp_path):
    every = train(smoke(tmp_path / "every", model="vit", epochs=3), progress=False)
    sparse = train(smoke(tmp_path / "sparse", model="vit", epochs=3, evaluate_every=2), progress=False)
    # evaluating draws nothing from the training's random streams: the same steps, the same final test
    assert [row["train_loss"] for row in sparse.history] == [row["train_loss"] for row in every.history]
    assert sparse.metrics.top1 == every.metrics.top1 and sparse.metrics.loss == every.metrics.loss
    tested = [row["epoch"] for row in sparse.history if row["val_top1"] == row["val_top1"]]  # NaN: not evaluated
    assert tested == [2, 3]  # every second epoch, and the last always
    assert math.isnan(json.loads((tmp_path / "sparse" / "history.json").read_text())[0]["val_top1"])  # saved as such
    plain = smoke(tmp_path / "every", model="vit", epochs=3)
    assert "evaluate_every" not in plain.identity()  # a setting at its default is not in the identity
    assert smoke(tmp_path / "x", model="vit", epochs=3, evaluate_every=1).key() == plain.key()
    assert smoke(tmp_path / "x", model="vit", epochs=3, evaluate_every=2).key() != plain.key()
    with pytest.raises(ValueError, match="evaluate_every must be a positive whole number"):
        smoke(tmp_path / "x", evaluate_every=0).resolved()


def test_the_paper_profile_trains_in_bf16_on_cuda_unless_told_otherwise(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert TrainConfig(model="titn", profile="paper").resolved().amp == "bf16"  # what config.json then records
    assert TrainConfig(model="titn", profile="paper", amp="none").resolved().amp == "none"  # as asked
    assert TrainConfig(model="titn", profile="paper", device="cpu").resolved().amp == "none"
    assert TrainConfig(model="titn", profile="classroom").resolved().amp == "none"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    plain = TrainConfig(model="titn", profile="paper")
    assert plain.resolved().amp == "none" and plain.identity()["amp"] == "none"  # a CPU run keeps its identity


def test_checkpoints_every_few_epochs_and_on_sigterm_and_the_stopped_run_resumes_exactly(tmp_path, monkeypatch):
    import signal

    from titn_lite.train.run_folder import RunFolder
    from titn_lite.train.runs import train_or_load

    written = []
    write_epoch = RunFolder.write_epoch
    monkeypatch.setattr(RunFolder, "write_epoch", lambda self, checkpoint, history: (
        written.append(checkpoint["epoch"]), write_epoch(self, checkpoint, history)))
    whole = train(smoke(tmp_path / "whole", model="vit", epochs=4, checkpoint_every=3), progress=False)
    assert written == [3, 4]  # every third epoch, and the last always
    assert len(json.loads((tmp_path / "whole" / "history.json").read_text())) == 4  # the history every epoch

    def terminate_after_the_first(row):
        if row["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    written.clear()
    handler = signal.getsignal(signal.SIGTERM)
    stopped = smoke(tmp_path / "stopped", model="vit", epochs=4, checkpoint_every=3)
    with pytest.raises(training.TrainingStopped, match="after epoch 1 of 4"):
        train(stopped, progress=False, callbacks=[terminate_after_the_first])
    assert written == [1] and json.loads((tmp_path / "stopped" / "run.json").read_text())["status"] == "stopped"
    assert signal.getsignal(signal.SIGTERM) is handler  # the kernel's own handler is back
    resumed = train_or_load(stopped, progress=False)
    assert [row["train_loss"] for row in resumed.history] == [row["train_loss"] for row in whole.history]
    assert resumed.metrics.top1 == whole.metrics.top1
    assert stopped.key() == smoke(tmp_path / "x", model="vit", epochs=4).key()  # the cadence is not the run's identity


def test_the_paper_recipe_is_augmented_on_whole_batches_from_the_epochs_seeded_stream():
    # The default path for --augmentation paper: PaperAugmentation on the decoded images, each
    # batch drawn from the global stream seed_epoch seeds, so a batch can be rebuilt by hand.
    from titn_lite.data.augment import PaperAugmentation
    from titn_lite.data.datasets import dataset_info, load_tensors
    cfg = smoke("unused", augmentation="paper", batch_size=16).resolved()
    assert cfg.data_path == "batch"
    images, _ = next(iter(pipeline.training_batches(cfg, epoch=3)))
    order = torch.tensor(list(pipeline.training_batches(cfg, epoch=3).sampler))[:16]
    pipeline.seed_epoch(cfg.seed, 3, torch.Generator())
    expected = PaperAugmentation(dataset_info(cfg.dataset))(load_tensors(cfg.dataset, train=True).images[order])
    assert torch.equal(images, expected)
    plain = PaperAugmentation(dataset_info(cfg.dataset)).normalise(load_tensors(cfg.dataset, train=True).images[order])
    assert not torch.equal(images, plain)  # augmented, not just normalised


def test_an_identity_leaves_out_settings_at_their_default_and_carries_its_scheme():
    from titn_lite.train.identity import SCHEME
    plain = TrainConfig(model="vit", profile="classroom").identity()
    assert plain["scheme"] == SCHEME and "data_path" not in plain and "mix_prob" not in plain
    assert TrainConfig(model="vit", profile="classroom", data_path="loader").identity()["data_path"] == "loader"
    assert TrainConfig(model="vit", profile="classroom", lr=1.0).identity()["lr"] == 1  # 1.0 and 1: one run
    # a setting another leaves unused is not the run's: the temperature of a run without soft distillation
    plain = dict(model="vit", profile="smoke")
    assert TrainConfig(**plain, temperature=5.0).key() == TrainConfig(**plain).key()
    soft = dict(model="deit", profile="smoke", distill="soft")
    assert TrainConfig(**soft, temperature=5.0).key() != TrainConfig(**soft).key()


def test_a_run_folder_or_checkpoint_of_another_version_is_refused_with_what_to_do(tmp_path):
    from titn_lite.train.checkpoint import CheckpointError, load_checkpoint
    from titn_lite.train.identity import SCHEME
    from titn_lite.train.run_folder import RunFolder
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "identity.json").write_text(json.dumps({"model": "vit"}))  # scheme 1 wrote no scheme
    with pytest.raises(ValueError, match=rf"another version of titn-lite \(run identity scheme 1, this one writes "
                                         rf"{SCHEME}\): train it again"):
        RunFolder(folder).identity()
    torch.save({"format": "titn-lite-checkpoint", "version": 1}, folder / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="another version of titn-lite .checkpoint version 1, this one reads 2.: "
                                              "train its run again"):
        load_checkpoint(folder / "checkpoint.pt")

def test_reading_the_loss_every_few_steps_as_on_a_gpu_changes_no_number(tmp_path, teacher_checkpoint, monkeypatch):
    # On a GPU the loop reads the loss on the host every GPU_READ_EVERY steps (a read waits for
    # the GPU); the epoch's sums stay on the device, so the history is the same as reading every step.
    config = dict(teacher=str(teacher_checkpoint), epochs=2, mix="cutmix")
    every_step = train(smoke(tmp_path / "every", **config), progress=False).history
    monkeypatch.setattr(training, "steps_between_reads", lambda device: 3)
    every_third = train(smoke(tmp_path / "third", **config), progress=False).history
    measured = ("train_loss", "train_top1", "train_top5", "val_loss", "val_top1", "lr")
    assert [[row[k] for k in measured] for row in every_third] == [[row[k] for k in measured] for row in every_step]


def test_a_nan_between_reads_is_caught_at_the_next_read(tmp_path, teacher_checkpoint, monkeypatch):
    poison_the_loss(monkeypatch, lambda call: call == 2)
    monkeypatch.setattr(training, "steps_between_reads", lambda device: 3)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 1, by step 3 "):
        train(smoke(tmp_path / "run", teacher=str(teacher_checkpoint)), progress=False)


def test_the_cli_says_a_usage_error_in_one_line_but_lets_a_bug_keep_its_traceback(monkeypatch, capsys):
    from titn_lite import cli
    assert cli.main(["train", "--model", "vit", "--epochs", "0"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    def buggy(args):
        raise ValueError("a bug, not a bad input")
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(run=buggy)
    for action in parser._subparsers._group_actions[0].choices.values():
        action.set_defaults(run=buggy)
    with pytest.raises(ValueError, match="a bug, not a bad input"):
        cli.main(["flops"])


def test_sigterm_stops_the_cli_after_the_saved_epoch_with_one_line(tmp_path):
    import signal
    import time
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "titn_lite", "train", "--model", "vit", "--profile", "smoke",
                                "--epochs", "40", "--out", str(out), "--device", "cpu"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (out / "history.json").is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=240)
    assert process.returncode == 143, err
    said = [line for line in err.splitlines() if line.startswith("titn-lite")]  # the rest is tqdm's bars
    assert "Traceback" not in err and len(said) == 1 and "stopped by SIGTERM after epoch" in said[0], err
    assert "--resume" in said[0]
    assert (out / "checkpoint.pt").is_file()


def test_a_device_this_machine_lacks_is_a_usage_error(monkeypatch):
    with pytest.raises(ValueError, match="unknown device 'cuda:x'"):
        devices.resolve_device("cuda:x")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="needs CUDA, which this machine lacks"):
        devices.resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(UsageError, match="has 2 GPU"):
        devices.resolve_device("cuda:5")
