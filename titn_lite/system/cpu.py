"""How many CPU cores this process may use, and DataLoader workers capped to them."""

from __future__ import annotations

import os


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
