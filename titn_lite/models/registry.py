"""Any model the kit trains, by name: one entry point over the students and the teachers."""

from __future__ import annotations

from typing import Any

from torch import nn

from titn_lite.models.students import MODEL_CONFIGS, create_model
from titn_lite.models.teachers import create_teacher
from titn_lite.system.usage import UsageError


def build_model(name: str, num_classes: int, in_chans: int, overrides: dict[str, Any] | None = None) -> nn.Module:
    """Any model the kit trains, by name: a student (``create_model``, with its config
    ``overrides``) or a teacher (``create_teacher``)."""
    if name in MODEL_CONFIGS:
        return create_model(name, num_classes=num_classes, in_chans=in_chans, **(overrides or {}))
    if overrides:
        raise UsageError(f"config overrides apply to students only, not to the teacher {name}")
    return create_teacher(name, num_classes=num_classes, in_chans=in_chans)
