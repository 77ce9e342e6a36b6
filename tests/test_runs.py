"""The run layer: a config resolved once, one identity, a run folder that names its files once,
one way of sharing teachers, and the CLI's train options generated from the config."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from titn_lite.cli import build_parser, main
from titn_lite.course import Course
from titn_lite.runs import ResolvedConfig, RunFolder, TrainConfig, cli_options, train_or_load

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("TITN_LITE_DATA", str(tmp_path_factory.mktemp("cache")))


def test_a_resolved_config_is_filled_frozen_and_resolves_to_itself():
    config = TrainConfig(model="titn", profile="smoke")
    resolved = config.resolved()
    assert isinstance(resolved, ResolvedConfig) and resolved.resolved() is resolved
    assert None not in (resolved.epochs, resolved.batch_size, resolved.lr, resolved.mix, resolved.decay)
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolved.epochs = 3  # type: ignore[misc]
    assert resolved.at("elsewhere").resolved().out_dir == "elsewhere"  # moving it keeps it resolved
    assert isinstance(resolved.at("elsewhere"), ResolvedConfig)


def test_identity_leaves_out_location_and_device_but_not_what_is_learned():
    base = TrainConfig(model="vit", profile="smoke")
    same = [dataclasses.replace(base, out_dir="x", device="cpu"), dataclasses.replace(base, num_workers=3),
            dataclasses.replace(base, data_dir="/data")]
    assert {c.key() for c in same} == {base.key()}
    other = [dataclasses.replace(base, seed=1), dataclasses.replace(base, lr=0.5), dataclasses.replace(base, epochs=2)]
    assert len({c.key() for c in other} | {base.key()}) == 4
    assert re.fullmatch(r"[0-9a-f]{8}", base.key())


def test_a_teacher_is_known_by_its_runs_identity_not_its_path(tmp_path):
    course = Course("smoke", artifacts=tmp_path / "a", progress=False)
    teacher = course.teacher()
    student = TrainConfig(model="titn", profile="smoke", teacher=str(teacher.out_dir))  # a run folder is accepted
    assert student.resolved().teacher == str(teacher.folder.checkpoint_path)
    assert student.identity()["teacher"] == teacher.folder.identity()  # the teacher's own identity, nested
    copy = tmp_path / "copy"
    shutil.copytree(teacher.out_dir, copy)
    assert TrainConfig(model="titn", profile="smoke", teacher=str(copy)).key() == student.key()
    # A bare checkpoint file, away from its folder, still carries its run's config.
    bare = tmp_path / "bare.pt"
    shutil.copy(teacher.folder.checkpoint_path, bare)
    assert TrainConfig(model="titn", profile="smoke", teacher=str(bare)).key() == student.key()
    # Another teacher (one more epoch) is another run.
    other = course.run("small_cnn", tag="longer", epochs=2)
    assert TrainConfig(model="titn", profile="smoke", teacher=str(other.out_dir)).key() != student.key()


def test_a_run_folder_names_its_files_and_reads_them_back(tmp_path):
    run = Course("smoke", artifacts=tmp_path, progress=False).run("vit")
    folder = run.folder
    assert sorted(p.name for p in folder.path.iterdir()) == sorted(
        [RunFolder.CONFIG, RunFolder.IDENTITY, RunFolder.CHECKPOINT, RunFolder.HISTORY, RunFolder.HISTORY_CSV,
         RunFolder.STATUS, RunFolder.METRICS])
    assert folder.is_complete and folder.has_checkpoint
    assert folder.history() == run.history and folder.metrics().top1 == run.metrics.top1
    assert folder.config()["model"] == "vit" and folder.identity() == TrainConfig(**{
        k: v for k, v in folder.config().items()}).identity()
    model = run.model()
    assert not model.training and sum(p.numel() for p in model.parameters()) > 0


def test_a_finished_run_with_other_settings_is_refused_by_name(tmp_path):
    config = TrainConfig(model="vit", profile="smoke", out_dir=str(tmp_path / "run"))
    train_or_load(config, progress=False)
    with pytest.raises(ValueError, match=r"holds a finished run with other settings \(epochs, seed\)"):
        train_or_load(dataclasses.replace(config, seed=3, epochs=2), progress=False)


def test_the_cli_names_a_teachers_run_folder(tmp_path, capsys):
    teacher = tmp_path / "teacher"
    assert main(["train", "--model", "small_cnn", "--profile", "smoke", "--out", str(teacher), "--quiet"]) == 0
    assert main(["train", "--model", "deit", "--profile", "smoke", "--teacher", str(teacher), "--out",
                 str(tmp_path / "deit"), "--quiet"]) == 0
    assert RunFolder(tmp_path / "deit").config()["teacher"] == str((teacher / RunFolder.CHECKPOINT).resolve())
    assert main(["train", "--model", "deit", "--profile", "smoke", "--teacher", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "x")]) == 2
    assert "nor an existing checkpoint file or run folder" in capsys.readouterr().err


def test_the_cli_offers_every_config_setting_with_the_configs_defaults():
    """One place for each setting: the train command is generated from TrainConfig's fields."""
    train = next(a for a in build_parser()._subparsers._group_actions[0].choices.values()
                 if a.prog.endswith(" train"))
    actions = {a.dest: a for a in train._actions}
    for option in cli_options():
        action = actions[option.name]
        assert action.help, f"--{option.name} has no help text"
        if option.name not in ("out_dir", "model_overrides", "model"):
            assert action.default == option.default, option.name
    assert {"--out", "--workers", "--override", "--resume", "--quiet"} <= {s for a in train._actions
                                                                           for s in a.option_strings}
    assert set(actions) - {"help", "resume", "quiet"} == {o.name for o in cli_options()}
    assert "momentum" not in actions  # a config field the CLI does not offer


def test_checkpoint_file_name_is_spelled_once_in_the_package_and_never_in_the_notebooks():
    package = [p for p in (ROOT / "titn_lite").rglob("*.py") if "checkpoint.pt" in p.read_text()]
    hits = sum(p.read_text().count("checkpoint.pt") for p in package)
    assert hits == 1 and package == [ROOT / "titn_lite" / "runs.py"], package
    notebooks = [p.name for p in (ROOT / "notebooks").glob("*.ipynb") if "checkpoint.pt" in p.read_text()]
    assert notebooks == []


def test_a_few_labels_regime_gives_its_twin_as_many_steps_and_a_warm_up_stretched_alike(tmp_path):
    course = Course("classroom", artifacts=tmp_path)
    few = course.few_labels(1000, 9000)
    assert few.distilled == {"train_subset": 1000, "unlabelled": 9000, "epochs": 4}
    assert few.twin == {"train_subset": 1000, "epochs": 40, "warmup_epochs": 10}  # an int: 10.0 is another identity
    assert isinstance(few.twin["warmup_epochs"], int)
    assert few.teacher == {"train_subset": 1000, "epochs": 32}  # the course teacher's 8 epochs x 63 steps, about
    assert course.few_labels(4000, 6000).twin["warmup_epochs"] == 2.5
    # the profile's own images: the course's teacher itself, one run folder
    assert course.config("small_cnn", **course.few_labels(4000, 6000).teacher).out_dir == course.config("small_cnn").out_dir
    with pytest.raises(ValueError, match="labelled >= 1"):
        course.few_labels(0, 10)


def test_the_few_labels_regime_takes_nine_bare_images_per_label_up_to_the_embedded_split(tmp_path):
    course = Course("classroom", artifacts=tmp_path)
    assert (course.few_labels(1000).labelled, course.few_labels(1000).unlabelled) == (1000, 9000)
    assert course.few_labels(2000).unlabelled == 8000  # no more bare images than the split holds
    assert course.few_labels(9000).labelled == 4000  # at most the profile's training images
    few = course.few_labels(1000)
    assert few.steps_per_epoch(64, distilled=True) == 10000 // 64 and few.steps_per_epoch(64, distilled=False) == 15
