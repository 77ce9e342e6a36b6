"""How many CPU cores this process may use, and DataLoader workers capped to them."""

from __future__ import annotations

import os
from pathlib import Path


def available_cores() -> int:
    """CPU cores this process may run on (its affinity, where the system says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def capped_workers(requested: int, *, cores: int | None = None, note=print) -> int:
    """DataLoader worker processes: ``requested``, but no more than the machine's cores
    (more only queue for the same cores, and PyTorch warns about each). When it lowers the
    count, says so in one line through ``note``."""
    cores = available_cores() if cores is None else cores
    if requested <= cores:
        return requested
    if note is not None:
        note(f"DataLoader workers: {requested} asked, {cores} used (this machine has {cores} CPU "
             f"core{'s' if cores != 1 else ''})")
    return cores


# Where notebooks run side by side, the series runner names here a file holding how many cores
# each notebook's kernel may use now; it raises the number when a notebook ends and none is left
# to start, so the last ones do not finish on one core while the others sit idle.
CORE_SHARE_VARIABLE = "TITN_LITE_CORE_SHARE"


def cores_share() -> int:
    """The cores this process may use now: the series runner's share (``CORE_SHARE_VARIABLE``)
    where it names one, else every core it may run on."""
    path = os.environ.get(CORE_SHARE_VARIABLE)
    if path:
        try:
            return max(1, int(Path(path).read_text()))
        except (OSError, ValueError):  # the runner is gone, or mid-write on a system without atomic renames
            pass
    return available_cores()
