"""What makes a run the run it is: its identity, and the eight hex digits that name it.

A run's identity is its resolved settings without where it lives and what device runs it (a
run made on a GPU box is the same run opened on a laptop, and an artifacts folder moved
elsewhere holds the same runs), with a teacher named by its own run's identity rather than
by its path. The folder key, the reuse check and the resume check all compare this one thing.

A setting at its default is left out and numbers are written one way (``10.0`` as ``10``), so
a setting added later with a default that keeps the old behaviour leaves every earlier run
as it was. ``SCHEME`` is in every identity: when what identifies a run changes in any other
way, it goes up, and runs written under another scheme are refused with what to do.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from titn_lite.models.teachers import list_teachers
from titn_lite.system.usage import UsageError
from titn_lite.train.checkpoint import load_checkpoint

SCHEME = 4  # 4: small_cnn at widths 16-32-64 (3: 32-64-128); 3: the val_ figures are the validation split's
FILE = "identity.json"  # a run folder's record of its identity, beside its checkpoint

# Where a run's files live, how fast its data loads and what device runs it change nothing it learns.
NOT_IDENTITY = ("out_dir", "num_workers", "data_dir", "device", "checkpoint_every")
# Settings another one leaves unused: (setting, values under which it is unused). Left out then, so
# a temperature given to a hard-distilled run does not make it another run.
UNUSED_WHEN = {"temperature": ("distill", ("none", "hard")), "mix_alpha": ("mix", ("none",)),
               "mix_prob": ("mix", ("none",))}


def _normalised(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _normalised(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    return value


def settings_identity(settings: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Resolved settings (``dataclasses.asdict`` of a resolved config) reduced to the run's
    identity: ``defaults`` (setting -> default) says which are left out; a teacher that is not
    a teacher's name is a checkpoint, named by its run's identity."""
    identity: dict[str, Any] = {"scheme": SCHEME}
    for name, value in settings.items():
        unused = name in UNUSED_WHEN and settings.get(UNUSED_WHEN[name][0]) in UNUSED_WHEN[name][1]
        if unused or name in NOT_IDENTITY or (name in defaults and _normalised(value) == _normalised(defaults[name])):
            continue
        identity[name] = _normalised(value)
    if identity.get("teacher") and identity["teacher"] not in list_teachers():
        identity["teacher"] = teacher_identity(Path(identity["teacher"]))
    return identity


def identity_key(identity: Mapping[str, Any]) -> str:
    """Eight hex digits naming an identity (a run folder's suffix)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]


def teacher_identity(checkpoint: Path) -> dict[str, Any]:
    """A teacher checkpoint's identity: that of the run that made it, as its run folder
    records it beside the checkpoint, else as the checkpoint carries it (a copy away from its
    folder is the same teacher). The folder's small file first: a paper teacher's checkpoint
    is about a gigabyte, and a student works out its identity at every checkpoint."""
    recorded = checkpoint.with_name(FILE)
    if checkpoint.is_file() and recorded.is_file():
        return check_scheme(json.loads(recorded.read_text()), str(checkpoint.parent))
    return check_scheme(load_checkpoint(checkpoint)["identity"], str(checkpoint))


def check_scheme(identity: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``identity`` if this titn-lite wrote it, else ``UsageError`` saying what to do."""
    if identity.get("scheme") != SCHEME:
        raise UsageError(f"{where} was made by another version of titn-lite (run identity scheme "
                         f"{identity.get('scheme', 1)}, this one writes {SCHEME}): train it again "
                         f"(delete the folder or choose another --out)")
    return dict(identity)


def identity_differences(saved: Mapping[str, Any], asked: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Settings (name -> (saved, asked)) in which two identities differ (``None``: at its default)."""
    return {k: (saved.get(k), asked.get(k)) for k in sorted({*saved, *asked}) if saved.get(k) != asked.get(k)}


