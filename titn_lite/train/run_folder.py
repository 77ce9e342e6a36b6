"""A run's folder: each of its files named once, written atomically and read back.

The engine writes a run's files through ``RunFolder``'s ``write_*`` methods; the run layer
(``titn_lite.train.runs``), the reports and the notebooks read them with its other methods.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from titn_lite.system.files import write_csv, write_json
from titn_lite.system.usage import UsageError
from titn_lite.train.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from titn_lite.train.identity import FILE as IDENTITY_FILE
from titn_lite.train.identity import check_scheme
from titn_lite.train.metrics import ClassificationMetrics

if TYPE_CHECKING:
    from titn_lite.train.config import ResolvedConfig


@dataclass(frozen=True)
class RunFolder:
    """A run's folder and its files, each named here once (the class attributes below) and
    written atomically: the resolved config and the run's identity (JSON); the checkpoint
    (weights, optimizer, schedule and history every ``checkpoint_every`` epochs, the last and
    before a SIGTERM stop); the history, one row per epoch as JSON and CSV (``seconds``
    includes evaluation, ``images_per_second`` is training alone); the status (running,
    diverged, stopped, complete; epochs done); and, once the run is
    complete, the final test metrics.
    """

    path: Path
    CONFIG: ClassVar[str] = "config.json"
    IDENTITY: ClassVar[str] = IDENTITY_FILE
    CHECKPOINT: ClassVar[str] = "checkpoint.pt"
    HISTORY: ClassVar[str] = "history.json"
    HISTORY_CSV: ClassVar[str] = "history.csv"
    STATUS: ClassVar[str] = "run.json"
    METRICS: ClassVar[str] = "metrics.json"

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    @property
    def checkpoint_path(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def has_checkpoint(self) -> bool:
        return self.has(self.CHECKPOINT)

    @property
    def is_complete(self) -> bool:
        return self.has(self.METRICS)

    def _read(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    def config(self) -> dict[str, Any]:
        return self._read(self.CONFIG)

    def history(self) -> list[dict[str, float]]:
        return self._read(self.HISTORY)

    def metrics(self) -> ClassificationMetrics:
        saved = self._read(self.METRICS)
        saved["confusion"] = torch.tensor(saved["confusion"])
        return ClassificationMetrics(**{k: saved[k] for k in ClassificationMetrics.__dataclass_fields__})

    def identity(self) -> dict[str, Any]:
        """The identity recorded when the run started; ``UsageError`` for a folder another
        version of titn-lite made."""
        if not self.has(self.IDENTITY):
            raise UsageError(f"{self.path} holds no {self.IDENTITY}: it is not a run folder of this version of "
                             f"titn-lite; train its run again (delete the folder or choose another --out)")
        return check_scheme(self._read(self.IDENTITY), str(self.path))

    def load_checkpoint(self) -> dict[str, Any]:
        return load_checkpoint(self.checkpoint_path)

    def load_model(self) -> nn.Module:
        """The trained model, in eval mode, on the CPU."""
        return model_from_checkpoint(self.load_checkpoint())

    def result(self) -> RunResult:
        """A complete run's history and final metrics, from its JSON files (the checkpoint is
        left for whoever needs the model)."""
        return RunResult(self, self.history(), self.metrics())

    # What the training engine writes.
    def write_start(self, config: ResolvedConfig) -> None:
        write_json(self.path / self.CONFIG, dataclasses.asdict(config))
        write_json(self.path / self.IDENTITY, config.identity())

    def write_status(self, status: str, epochs_done: int, epochs: int) -> None:
        write_json(self.path / self.STATUS, {"status": status, "epochs_done": epochs_done, "epochs": epochs})

    def write_epoch(self, checkpoint: dict[str, Any], history: list[dict[str, float]]) -> None:
        save_checkpoint(self.checkpoint_path, checkpoint)
        write_json(self.path / self.HISTORY, history)
        write_csv(self.path / self.HISTORY_CSV, history)

    def write_history(self, history: list[dict[str, float]]) -> None:
        """The history alone, for an epoch without a checkpoint (``checkpoint_every``)."""
        write_json(self.path / self.HISTORY, history)
        write_csv(self.path / self.HISTORY_CSV, history)

    def write_metrics(self, model: str, dataset: str, metrics: ClassificationMetrics) -> None:
        write_json(self.path / self.METRICS, {"model": model, "dataset": dataset, **metrics.as_dict()})


@dataclass
class RunResult:
    """A finished run: its folder, one history row per epoch, and its final test metrics."""

    folder: RunFolder
    history: list[dict[str, float]]
    metrics: ClassificationMetrics

    @property
    def out_dir(self) -> Path:
        return self.folder.path

    def model(self) -> nn.Module:
        """The trained model, in eval mode."""
        return self.folder.load_model()

