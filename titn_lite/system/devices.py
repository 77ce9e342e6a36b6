"""Where a run trains: the device, torchrun's processes, and mixed precision.

Notebook 02 asks for ``device="auto"``: the GPU where there is one, else the CPU. The
engine (``titn_lite.train.engine``) and the pipeline (``titn_lite.train.pipeline``) call these;
checking a device's name is here too, so the CLI, a run's settings and a course refuse a
bad one with the same words.
"""

from __future__ import annotations

import os
import re

import torch
import torch.distributed as dist
from torch import Tensor

from titn_lite.system.usage import UsageError

DEVICES = ("auto", "cpu", "cuda")


def check_device(requested: str) -> None:
    """Raise ``UsageError`` unless ``requested`` is auto, cpu, cuda or cuda:N."""
    if requested not in DEVICES and not re.fullmatch(r"cuda:\d+", str(requested)):
        raise UsageError(f"unknown device {requested!r}; valid: auto, cpu, cuda (or cuda:N)")


def wants_cuda(requested: str) -> bool:
    """Whether ``requested`` trains on a GPU: named, or ``auto`` on a machine that has one."""
    return requested.startswith("cuda") or (requested == "auto" and torch.cuda.is_available())


def resolve_device(requested: str = "auto") -> torch.device:
    """``auto``: CUDA if there is a GPU, else the CPU; under torchrun, this process's GPU."""
    check_device(requested)
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and dist.is_initialized():
        requested = f"cuda:{int(os.environ.get('LOCAL_RANK', dist.get_rank()))}"
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {requested!r} needs CUDA, which this machine lacks; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"device {requested!r}: this machine has {torch.cuda.device_count()} GPU(s), "
                         f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if device.type == "cuda":
        if device.index is None:  # newer torch refuses set_device("cuda"): name the GPU in use
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device


def init_distributed() -> tuple[int, int]:
    """(rank, world size); joins the process group torchrun describes, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def all_reduce(tensor: Tensor) -> None:
    """Sum ``tensor`` over torchrun's processes, in place (nothing to do in one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)


def amp_dtype(amp: str) -> torch.dtype | None:
    """The autocast dtype of an ``amp`` setting (none, bf16, fp16); ``None``: no autocast."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
