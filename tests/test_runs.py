"""The run layer: a config resolved once, one identity, a run folder that names its files once,
one way of sharing teachers, and the CLI's train options generated from the config."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from titn_lite.classroom.course import Course
from titn_lite.cli import build_parser, main
from titn_lite.train import runs
from titn_lite.train.config import ResolvedConfig, TrainConfig, cli_options
from titn_lite.train.run_folder import RunFolder
from titn_lite.train.runs import run_lock, train_or_load

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
    assert hits == 1 and package == [ROOT / "titn_lite" / "train" / "run_folder.py"], package
    notebooks = [p.name for p in (ROOT / "notebooks").glob("*.ipynb") if "checkpoint.pt" in p.read_text()]
    assert notebooks == []


def test_a_few_labels_regime_gives_its_twin_as_many_steps_and_a_warm_up_stretched_alike(tmp_path):
    course = Course("classroom", artifacts=tmp_path)
    few = course.few_labels(1000, 9000)
    # an eighth of the distilled student's 4 epochs (the profile's 1 would be a quarter), stretched alike
    assert few.distilled == {"train_subset": 1000, "unlabelled": 9000, "epochs": 4, "warmup_epochs": 0.5}
    # tested every 10 of its 40 short epochs: where the distilled student's 4 epochs end
    assert few.twin == {"train_subset": 1000, "epochs": 40, "warmup_epochs": 5, "evaluate_every": 10}
    # 5.0 and 5 are one run: an identity writes a whole number one way
    assert TrainConfig(model="vit", profile="classroom", warmup_epochs=5.0).key() == \
        TrainConfig(model="vit", profile="classroom", warmup_epochs=5).key()
    # the course teacher's 8 epochs x 63 steps, about, and tested as often (8 times)
    assert few.teacher == {"train_subset": 1000, "epochs": 32, "evaluate_every": 4}
    assert course.few_labels(4000, 6000).twin["warmup_epochs"] == 1.25
    assert course.few_labels(4000, 6000, warmup_epochs=1).twin["warmup_epochs"] == 2.5  # as asked
    # the profile's own images: the course's teacher itself, one run folder
    assert (course.prepare_run("small_cnn", **course.few_labels(4000, 6000).teacher).out_dir
            == course.prepare_run("small_cnn").out_dir)
    with pytest.raises(ValueError, match="labelled >= 1"):
        course.few_labels(0, 10)


def test_the_few_labels_regime_takes_the_profiles_bare_images_per_label_up_to_the_embedded_split(tmp_path):
    course = Course("classroom", artifacts=tmp_path)
    assert course.profile.unlabelled_per_label == 8
    assert (course.few_labels(512).labelled, course.few_labels(512).unlabelled) == (512, 4096)
    # no more bare images than the split holds beside its validation images
    assert course.few_labels(1000).unlabelled == 10_000 - course.profile.val_images - 1000
    assert course.few_labels(9000).labelled == 4000  # at most the profile's training images
    few = course.few_labels(512)
    assert few.steps_per_epoch(64, distilled=True) == 4608 // 64 and few.steps_per_epoch(64, distilled=False) == 8


# Asks for one smoke teacher run, then says whether it trained it (an epoch callback fired) and what it got.
ASK_FOR_ONE_RUN = """
import sys
from titn_lite.train.config import TrainConfig
from titn_lite.train.runs import train_or_load
trained = []
result = train_or_load(TrainConfig(model="small_cnn", profile="smoke", out_dir=sys.argv[1]), progress=False,
                       callbacks=[trained.append])
print("trained" if trained else "loaded", result.history[0]["train_loss"])
"""


def test_two_processes_asking_for_one_run_at_once_train_it_once(tmp_path):
    """Notebooks side by side (notebooks run --jobs 2) share runs: the second asker waits for
    the first to finish the run, then loads it."""
    from titn_lite.data.datasets import DEFAULT_DATASET, load_tensors

    load_tensors(DEFAULT_DATASET, train=True)  # the embedded data unpacked once, before the two start
    out = tmp_path / "teacher"
    askers = [subprocess.Popen([sys.executable, "-c", ASK_FOR_ONE_RUN, str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    said = [asker.communicate(timeout=300) for asker in askers]
    assert all(asker.returncode == 0 for asker in askers), [err[-1500:] for _, err in said]
    words = sorted(out.split() for out, _ in said)
    assert [w[0] for w in words] == ["loaded", "trained"], words
    assert words[0][1] == words[1][1]  # the same run: the loader read what the trainer wrote
    assert RunFolder(out).is_complete and (tmp_path / ".teacher.lock").is_file()


def test_a_second_asker_waits_for_the_run_being_made_then_loads_it(tmp_path, monkeypatch):
    """The lock alone, with a trainer that takes a while: two threads (each opens the lock file
    itself, as two processes do) ask at once; one trains, the other waits and loads."""
    made = Course("smoke", artifacts=tmp_path / "made", progress=False).run("small_cnn")
    config = TrainConfig(model="small_cnn", profile="smoke", out_dir=str(tmp_path / "shared"))
    calls = []

    def slow_train(cfg, **_):
        calls.append(cfg.out_dir)
        time.sleep(1)  # the other asker arrives meanwhile
        shutil.copytree(made.out_dir, cfg.out_dir)
        return RunFolder(cfg.out_dir).result()

    monkeypatch.setattr(runs, "train", slow_train)
    got = []
    askers = [threading.Thread(target=lambda: got.append(train_or_load(config, progress=False))) for _ in range(2)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(30)
    assert calls == [str(tmp_path / "shared")] and len(got) == 2 and got[0].history == got[1].history == made.history


def test_the_run_lock_is_not_taken_under_torchrun(tmp_path, monkeypatch):
    """torchrun's processes make one run together (rank 0 writes): a lock would make them wait for each other."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    with run_lock(RunFolder(tmp_path / "run")):
        pass
    assert not list(tmp_path.iterdir())


def test_a_named_teacher_trains_on_its_students_data_path(tmp_path):
    from titn_lite.train.runs import teacher_run_config
    student = TrainConfig(model="titn", profile="paper", dataset="cifar100", device="cpu", data_path="loader",
                          out_dir=str(tmp_path)).resolved()
    teacher = teacher_run_config(student, RunFolder(tmp_path / "teacher"))
    assert teacher.data_path == "loader" and teacher.identity()["data_path"] == "loader"


def test_resume_after_a_stop_while_the_teacher_trained_starts_the_student(tmp_path):
    # SIGTERM while `titn-lite train --model titn` trained OUT/teacher leaves no student
    # checkpoint: the same command with --resume goes on (the teacher's run resumes or is reused).
    from titn_lite.train.runs import teacher_run_config, train, train_teacher
    student = TrainConfig(model="titn", profile="smoke", out_dir=str(tmp_path / "out"), train_subset=64,
                          test_subset=32)
    teacher_folder = RunFolder(tmp_path / "out" / "teacher")
    train_teacher(teacher_run_config(student.resolved(), teacher_folder), teacher_folder, progress=False)
    result = train(student, resume=True, progress=False)
    assert result.folder.is_complete and len(result.history) == student.resolved().epochs
    with pytest.raises(ValueError, match="no checkpoint at"):  # without a teacher's run, --resume still needs one
        train(TrainConfig(model="vit", profile="smoke", out_dir=str(tmp_path / "empty")), resume=True, progress=False)
