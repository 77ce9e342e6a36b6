"""Runs: starting, resuming, reusing and sharing them.

Notebook 02 trains its first run through this layer, and so do the CLI, the course object
the notebooks share (``titn_lite.classroom.course``) and the benchmarks. What a run is lives
below: its settings (``config.TrainConfig``), its identity (``identity``), its folder
(``run_folder.RunFolder``) and checkpoint (``checkpoint``); training one is the engine
(``engine``). Here:

- ``train`` / ``train_or_load`` start, resume or reuse a run, and a teacher *name* in a
  student's settings stands for a teacher run made once by ``train_or_load`` in a folder the
  caller chooses (the CLI: ``OUT/teacher``; a course: its shared runs);
- ``run_lock``: one process at a time makes a run, so notebooks side by side share it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch.distributed as dist

from titn_lite.models.teachers import list_teachers
from titn_lite.system.devices import init_distributed
from titn_lite.system.usage import UsageError
from titn_lite.train.checkpoint import teacher_from_checkpoint
from titn_lite.train.config import ResolvedConfig, TrainConfig
from titn_lite.train.engine import EpochCallback, fit
from titn_lite.train.identity import identity_differences
from titn_lite.train.run_folder import RunFolder, RunResult


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True,
          callbacks: list[EpochCallback] | None = None) -> RunResult:
    """Train ``config.model`` into ``config.out_dir`` and return its history and final test metrics.

    ``resume=True`` continues the run in ``config.out_dir`` from its last checkpoint (it must
    be the same run: same identity). ``callbacks`` get each epoch's history row (a live plot).
    A teacher *name* is trained first into ``OUT/teacher``, or reused from there.
    """
    cfg = config.resolved()
    folder = RunFolder(cfg.out_dir)
    checkpoint = None
    if resume and not folder.has_checkpoint and RunFolder(folder.path / "teacher").has_checkpoint:
        resume = False  # stopped while its teacher trained: the student starts, and train_teacher resumes the teacher
    if resume:
        checkpoint = folder.load_checkpoint()
        differences = identity_differences(folder.identity(), cfg.identity())
        if differences:
            listed = "; ".join(f"{k}: run has {_said(old)}, asked {_said(new)}"
                               for k, (old, new) in differences.items())
            raise UsageError(f"--resume continues the run in {folder.path} as it was configured, but {listed}")
    elif folder.has_checkpoint:
        raise UsageError(f"{folder.path} already holds a run; pass --resume to continue it, or choose another --out")
    _, world = init_distributed()  # before a teacher trains: its run is shared by every process
    if cfg.unlabelled and world > 1:
        # Each process would average the class term over its own labelled images, so the loss
        # would change with the number of processes.
        raise UsageError(f"unlabelled images train in one process for now ({world} were started); run without "
                         f"torchrun, or with --unlabelled 0")
    teacher = None
    if cfg.teacher:
        named = cfg.teacher in list_teachers()
        teacher_folder = RunFolder(folder.path / "teacher")
        checkpoint_path = (train_teacher(teacher_run_config(cfg, teacher_folder), teacher_folder,
                                         progress=progress).checkpoint_path if named else Path(cfg.teacher))
        teacher = teacher_from_checkpoint(cfg, checkpoint_path)
    history, metrics = fit(cfg, folder, teacher=teacher, checkpoint=checkpoint, progress=progress,
                           callbacks=callbacks)
    return RunResult(folder, history, metrics)


def train_or_load(config: TrainConfig, *, progress: bool = True,
                  callbacks: list[EpochCallback] | None = None) -> RunResult:
    """The finished run in ``config.out_dir`` if there is one (it must be this run: same
    identity), else train it, resuming a partial run."""
    cfg = config.resolved()
    folder = RunFolder(cfg.out_dir)
    if not folder.is_complete:
        # Notebooks run side by side (``notebooks run --jobs N``) may ask for one run at once: the
        # first trains it, the others wait here and then load what it made (or resume what it left).
        with run_lock(folder):
            if not folder.is_complete:
                return train(cfg, resume=folder.has_checkpoint, progress=progress, callbacks=callbacks)
    differences = sorted(identity_differences(folder.identity(), cfg.identity()))
    if differences:
        raise UsageError(f"{folder.path} holds a finished run with other settings ({', '.join(differences)}); "
                         f"delete it or choose another out_dir")
    return folder.result()



def _said(value: object) -> str:
    return "the default" if value is None else repr(value)  # a setting at its default is not in an identity


@contextmanager
def run_lock(folder: RunFolder) -> Iterator[None]:
    """Hold the run folder's inter-process lock for the block (``fcntl.flock`` on
    ``.NAME.lock`` beside the folder, so the folder holds only the run's files): one process
    at a time makes a run. Released when the block ends or the process dies. Not taken under
    torchrun, whose processes make one run together; nor where there is no ``fcntl`` (Windows)."""
    try:
        import fcntl
    except ImportError:  # Windows: runs side by side are not offered there
        yield
        return
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        yield
        return
    path = folder.path.parent / f".{folder.path.name}.lock"
    created, missing = [], path.parent  # the folders this lock creates, deepest first
    while not missing.exists():
        created.append(missing)
        missing = missing.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # waits while another process holds it
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        if not folder.path.exists():  # the run failed before writing anything: leave no trace of it
            path.unlink(missing_ok=True)
            for made in created:
                try:
                    made.rmdir()
                except OSError:  # not empty: something else lives there now
                    break


def teacher_run_config(student: ResolvedConfig, folder: RunFolder) -> TrainConfig:
    """The run a teacher name in ``student`` stands for on the command line: that teacher on
    the student's data (same images, augmentation, seed), at the student's profile."""
    return TrainConfig(model=student.teacher, dataset=student.dataset, profile=student.profile,
                       out_dir=str(folder.path), data_dir=student.data_dir, augmentation=student.augmentation,
                       train_subset=student.train_subset, val_images=student.val_images,
                       test_subset=student.test_subset,
                       num_workers=student.num_workers, device=student.device, amp=student.amp, seed=student.seed,
                       data_path=student.data_path)


def train_teacher(teacher: TrainConfig, folder: RunFolder, *, progress: bool = True) -> RunFolder:
    """Make a teacher once: ``train_or_load`` of the ``teacher`` run in ``folder``, so every
    later student with the same teacher reuses it. This is the one way teachers are shared:
    the CLI puts a named teacher's run in ``OUT/teacher`` (``teacher_run_config``), a course
    among its shared runs."""
    train_or_load(teacher.at(folder.path), progress=progress)
    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # rank 0 wrote the teacher's checkpoint; the others read it next
    return folder
