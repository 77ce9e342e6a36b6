"""A run's checkpoint: its format, and what a run saves in it and reads back.

A checkpoint is a ``torch.save`` dict tagged ``format: titn-lite-checkpoint``, written
atomically; loading uses ``weights_only=True`` (no arbitrary pickles), and a missing, corrupt,
foreign or older file gets a ``CheckpointError`` that says so, never a pickle traceback. It
holds enough to rebuild the model (``model_from_checkpoint``), check it as a teacher
(``teacher_from_checkpoint``) and resume its run exactly (``restore_training``).
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from titn_lite.data.datasets import dataset_info
from titn_lite.models.registry import build_model
from titn_lite.system.files import write_atomic
from titn_lite.system.usage import UsageError

if TYPE_CHECKING:
    from titn_lite.train.config import ResolvedConfig

FORMAT = "titn-lite-checkpoint"
VERSION = 2  # 2: the checkpoint carries its run's identity


class CheckpointError(UsageError):
    """A checkpoint is missing, unreadable, or not a titn-lite checkpoint."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **payload}, buffer)
    write_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a titn-lite checkpoint onto the CPU, or raise ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt zip, truncated file, foreign pickle, ...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is not a readable titn-lite checkpoint ({reason[:200]})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a titn-lite checkpoint (it is a torch file of another kind)")
    if checkpoint.get("version") != VERSION:
        raise CheckpointError(f"{path} was written by another version of titn-lite (checkpoint version "
                              f"{checkpoint.get('version')}, this one reads {VERSION}): train its run again")
    return checkpoint


@dataclass(frozen=True)
class CheckpointFacts:
    """What a checkpoint says of the model it holds, read without rebuilding the model."""

    model_name: str
    dataset: str
    num_classes: int
    in_chans: int
    complete: bool  # the run's last epoch, not a checkpoint to resume from

    @classmethod
    def of(cls, checkpoint: dict[str, Any]) -> CheckpointFacts:
        return cls(checkpoint["model_name"], checkpoint["dataset"], checkpoint["num_classes"], checkpoint["in_chans"],
                   checkpoint["complete"])


def training_checkpoint(cfg: ResolvedConfig, *, epoch: int, complete: bool, model: nn.Module,
                        optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any,
                        history: list[dict[str, float]]) -> dict[str, Any]:
    """What a run folder's checkpoint holds after ``epoch`` epochs: enough to rebuild the
    model (``model_from_checkpoint``), check it as a teacher (``teacher_from_checkpoint``) and
    resume the run exactly (optimizer, schedule, scaler, history; each epoch's random
    streams are seeded from (seed, epoch))."""
    info = dataset_info(cfg.dataset)
    return {
        "kind": "student" if cfg.is_student else "teacher", "model_name": cfg.model,
        "model_overrides": cfg.model_overrides, "dataset": cfg.dataset, "num_classes": info.num_classes,
        "in_chans": info.in_chans, "epoch": epoch, "complete": complete, "config": dataclasses.asdict(cfg),
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
        "rng": {"seed": cfg.seed, "next_epoch": epoch}, "history": history, "identity": cfg.identity(),
    }


def restore_training(checkpoint: dict[str, Any], *, model: nn.Module, optimizer: torch.optim.Optimizer,
                     scheduler: Any, scaler: Any) -> tuple[list[dict[str, float]], int]:
    """Load what ``training_checkpoint`` saved into a run being resumed; returns its history
    and the number of epochs done."""
    model.load_state_dict(checkpoint["model"])
    kernels = [{key: group.get(key) for key in ("fused", "foreach")} for group in optimizer.param_groups]
    optimizer.load_state_dict(checkpoint["optimizer"])
    for group, kernel in zip(optimizer.param_groups, kernels):
        group.update(kernel)  # the step kernel this torch chose, not the one of the torch that saved
    scheduler.load_state_dict(checkpoint["scheduler"])
    scaler.load_state_dict(checkpoint["scaler"])
    return checkpoint["history"], checkpoint["epoch"]


def teacher_from_checkpoint(student: ResolvedConfig, checkpoint_path: Path) -> nn.Module:
    """The teacher model in ``checkpoint_path``, checked against the student's data."""
    checkpoint = load_checkpoint(checkpoint_path)
    facts = CheckpointFacts.of(checkpoint)
    info = dataset_info(student.dataset)
    found = (facts.dataset, facts.num_classes, facts.in_chans)
    if found != (student.dataset, info.num_classes, info.in_chans):
        raise UsageError(
            f"teacher checkpoint {checkpoint_path} was trained on {found[0]} ({found[1]} classes, {found[2]} "
            f"channel(s)) but the student trains on {student.dataset} ({info.num_classes} classes, "
            f"{info.in_chans} channel(s)); train a teacher on {student.dataset} "
            f"(titn-lite train --model small_cnn --dataset {student.dataset})")
    if not facts.complete:
        raise CheckpointError(f"teacher checkpoint {checkpoint_path} is from an unfinished run; "
                              "finish it with --resume")
    return model_from_checkpoint(checkpoint)


def model_from_checkpoint(checkpoint: dict[str, Any]) -> nn.Module:
    """Rebuild the trained model a checkpoint holds, in eval mode."""
    facts = CheckpointFacts.of(checkpoint)
    model = build_model(facts.model_name, facts.num_classes, facts.in_chans, checkpoint["model_overrides"])
    model.load_state_dict(checkpoint["model"])
    return model.eval()


