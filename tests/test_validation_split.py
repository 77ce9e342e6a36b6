"""The validation split: carved from the training images, disjoint from what a run trains on
and from the test images, read for every per-epoch figure; the test images read once."""

import hashlib
import math

import pytest
import torch

from titn_lite.data.datasets import BatchNormalisation, dataset_info, load_tensors
from titn_lite.results.report import summarize_run
from titn_lite.train import engine, pipeline
from titn_lite.train.config import TrainConfig
from titn_lite.train.runs import train


def _digests(images: torch.Tensor) -> set[str]:
    return {hashlib.sha1(image.numpy().tobytes()).hexdigest() for image in images}


def test_the_validation_images_are_the_training_splits_last_and_no_run_trains_or_tests_on_them():
    split = load_tensors("fashion-mnist-mini", train=True)
    test = load_tensors("fashion-mnist-mini", train=False)
    for settings in (dict(profile="classroom"), dict(profile="smoke"), dict(profile="classroom", val_images=500),
                     dict(profile="classroom", train_subset=512, unlabelled=2048, mix="none", model="titn")):
        cfg = TrainConfig(**{"model": "vit", **settings}).resolved()
        parts = pipeline.training_split(cfg, len(split))
        assert parts.validation == range(len(split) - cfg.val_images, len(split))
        assert not set(parts.trained_on) & set(parts.validation)
        assert len(parts.labelled) == cfg.train_subset and len(parts.unlabelled) == cfg.unlabelled
        validation = pipeline.validation_split(cfg)
        assert len(validation) == cfg.val_images
        # by content too: not one validation image among the trained-on or the test images
        assert not _digests(validation.images) & _digests(split.part(parts.trained_on).images)
        assert not _digests(validation.images) & _digests(test.images)
    # a profile that trains on every image it may: all but the validation ones
    whole = TrainConfig("vit", profile="classroom", train_subset=len(split)).resolved()
    assert pipeline.training_split(whole, len(split)).labelled == range(len(split) - whole.val_images)


def test_what_does_not_fit_beside_the_validation_split_is_refused_with_what_to_lower():
    cfg = TrainConfig("titn", profile="classroom", train_subset=6000, unlabelled=3500, mix="none").resolved()
    with pytest.raises(ValueError, match=r"1000 of them held out for validation: 6000 labelled and 3500 unlabelled "
                                         r"ones do not fit in the other 9000; lower --unlabelled to at most 3000"):
        pipeline.training_split(cfg, 10_000)
    with pytest.raises(ValueError, match="leaves none to train on; lower --val-images"):
        pipeline.training_split(TrainConfig("vit", profile="classroom", val_images=10_000).resolved(), 10_000)
    with pytest.raises(ValueError, match="val_images must be a whole number of at least 0"):
        TrainConfig("vit", val_images=-1).resolved()


def test_every_epoch_reads_the_validation_images_and_the_test_images_are_read_once_after_the_last(tmp_path,
                                                                                                monkeypatch):
    events = []
    real_test_batches = engine.run_test_batches

    def counted(*args, **kwargs):
        events.append("test")
        return real_test_batches(*args, **kwargs)

    monkeypatch.setattr(engine, "run_test_batches", counted)
    cfg = TrainConfig("vit", profile="smoke", epochs=3, out_dir=str(tmp_path / "run"))
    result = train(cfg, progress=False, callbacks=[lambda row: events.append(f"epoch {row['epoch']}")])
    assert events == ["epoch 1", "epoch 2", "epoch 3", "test"]  # no epoch, and so no choice, saw the test images

    # Each val_ figure is the model's on the validation images; the result is the test images'.
    resolved = cfg.resolved()
    model = result.model()
    normalise = BatchNormalisation(dataset_info(resolved.dataset))
    validation = pipeline.validation_split(resolved)
    test = load_tensors(resolved.dataset, train=False).head(resolved.test_subset)
    with torch.no_grad():
        model.eval()
        on_validation = (model(normalise(validation.images)).argmax(1) == validation.labels).float().mean().item()
        on_test = (model(normalise(test.images)).argmax(1) == test.labels).float().mean().item()
    assert result.history[-1]["val_top1"] == pytest.approx(on_validation)
    assert result.metrics.top1 == pytest.approx(on_test)
    assert result.metrics.count == resolved.test_subset

    summary = summarize_run(tmp_path / "run")
    best = max(result.history, key=lambda row: row["val_top1"])
    assert (summary.best_val_top1, summary.best_epoch) == (best["val_top1"], best["epoch"])
    assert summary.top1 == result.metrics.top1


def test_without_a_validation_split_a_run_records_no_epoch_figure_and_still_tests_once(tmp_path, monkeypatch):
    tested = []
    real_test_batches = engine.run_test_batches
    monkeypatch.setattr(engine, "run_test_batches", lambda *a, **k: tested.append(1) or real_test_batches(*a, **k))
    result = train(TrainConfig("vit", profile="smoke", epochs=2, val_images=0, out_dir=str(tmp_path / "run")),
                   progress=False)
    assert all(math.isnan(row["val_top1"]) for row in result.history) and tested == [1]
    summary = summarize_run(tmp_path / "run")
    assert summary.best_epoch is None and math.isnan(summary.best_val_top1)
    assert summary.top1 == result.metrics.top1


def test_the_loader_path_validates_on_the_same_images_as_the_batch_path(tmp_path):
    histories = {}
    for path in ("batch", "loader"):
        cfg = TrainConfig("vit", profile="smoke", data_path=path, num_workers=0, out_dir=str(tmp_path / path))
        result = train(cfg, progress=False)
        histories[path] = (result.history[-1]["val_top1"], result.metrics.top1, result.metrics.count)
    assert histories["loader"][2] == histories["batch"][2]
    assert histories["loader"][:2] == pytest.approx(histories["batch"][:2], abs=0.02)
