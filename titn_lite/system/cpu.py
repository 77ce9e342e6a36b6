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


# Where notebooks run side by side, the series runner names here a file holding how many threads
# each notebook's kernel may use now; it raises the number when a notebook ends and none is left
# to start, so the last ones do not finish on one core while the others sit idle.
THREAD_SHARE_VARIABLE = "TITN_LITE_THREAD_SHARE"


def take_thread_share() -> int | None:
    """Use the threads the series runner now gives this kernel (``THREAD_SHARE_VARIABLE``),
    from the next training run on; the count, or None outside such a series (nothing changes)."""
    path = os.environ.get(THREAD_SHARE_VARIABLE)
    if not path:
        return None
    try:
        threads = int(Path(path).read_text())
    except (OSError, ValueError):  # the runner is gone, or mid-write on a system without atomic renames
        return None
    import torch

    if threads >= 1 and threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads
