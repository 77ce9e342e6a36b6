"""The training engine: one loop for students and teachers, the paper's recipe (§4.1, Algorithm 2).

SGD (momentum 0.9, weight decay 1e-4, lr 0.1 at batch 1024), cosine annealing with an
optional linear warm-up, CutMix or MixUp on every batch, and for distilled students the
hard-distillation loss against a CNN teacher. Runs on a CPU, a GPU (AMP, torch.compile)
or several GPUs/processes (``torchrun --nproc_per_node N -m titn_lite train ...``).

This module only trains: what a run is (its config, identity and folder), and starting,
resuming or reusing one, is ``titn_lite.runs``, which calls ``fit`` here.

Exact resume: each epoch's random streams (data order, augmentation, mixing) are seeded
from (seed, epoch), so a run resumed after epoch k replays epochs k+1... exactly as an
uninterrupted run would (bit for bit on a CPU).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from titn_lite.data import (BatchAugmentation, BatchNormalisation, DatasetInfo, TensorSplit, capped_workers,
                            dataset_info, eval_transform, load_dataset, load_tensors, train_transform)
from titn_lite.losses import UNLABELLED, DistillationLoss
from titn_lite.metrics import ClassificationMetrics, confusion_matrix, metrics_from_counts, topk_correct
from titn_lite.mixing import BatchMixer
from titn_lite.models import MODEL_CONFIGS, create_model, mean_of_heads
from titn_lite.teachers import create_teacher

if TYPE_CHECKING:  # the run layer sits above the engine and calls it
    from titn_lite.runs import ResolvedConfig, RunFolder


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


EpochCallback = Callable[[dict[str, float]], None]


def fit(
    cfg: ResolvedConfig, folder: RunFolder, *, teacher: nn.Module | None = None,
    checkpoint: dict[str, Any] | None = None, progress: bool = True, callbacks: list[EpochCallback] | None = None,
) -> tuple[list[dict[str, float]], ClassificationMetrics]:
    """Train ``cfg.model`` (from ``checkpoint`` when resuming), writing ``folder`` after every
    epoch; returns the history (one row per epoch) and the final test metrics.

    ``teacher``: the trained CNN a distilled student learns from. ``callbacks`` are called
    with each epoch's history row (e.g. a live plot).
    """
    rank, world = init_distributed()
    device = resolve_device(cfg.device)
    if device.type == "cuda":  # TF32 matmuls and convolutions: fp32 weights, tensor-core speed
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.batch_size % world:
        raise ValueError(f"batch size {cfg.batch_size} must divide evenly over {world} processes")

    info = dataset_info(cfg.dataset)
    local_batch = cfg.batch_size // world
    loader_rng = torch.Generator()
    train_batches, test_batches = _data(cfg, info, rank, world, local_batch, loader_rng, device)
    if len(train_batches) == 0:
        raise ValueError(f"batch size {cfg.batch_size} is larger than the {train_batches.images} training images")

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, info.num_classes, info.in_chans, cfg.model_overrides).to(device)
    cnn = not cfg.is_student
    if cnn and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    criterion = DistillationLoss(teacher.to(device) if teacher else None, cfg.distill or "none",
                                 alpha=cfg.distill_alpha, temperature=cfg.temperature,
                                 unlabelled=cfg.unlabelled > 0)
    mixer = BatchMixer(cfg.mix, alpha=cfg.mix_alpha, prob=cfg.mix_prob)

    optimizer = make_optimizer(cfg, parameter_groups(model, cfg.weight_decay, cfg.decay))
    steps_per_epoch = len(train_batches)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(cfg.warmup_epochs * steps_per_epoch, cfg.epochs * steps_per_epoch))
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    amp_dtype = _amp_dtype(cfg.amp)

    history: list[dict[str, float]] = []
    start_epoch = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        kernels = [{key: group.get(key) for key in ("fused", "foreach")} for group in optimizer.param_groups]
        optimizer.load_state_dict(checkpoint["optimizer"])
        for group, kernel in zip(optimizer.param_groups, kernels):
            group.update(kernel)  # the step kernel this torch chose, not the one of the torch that saved
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        history, start_epoch = checkpoint["history"], checkpoint["epoch"]

    ddp_model = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    step_model = torch.compile(ddp_model) if cfg.compile else ddp_model
    is_writer = rank == 0
    if is_writer:
        folder.write_start(cfg)
        folder.write_status("running", start_epoch, cfg.epochs)

    def checkpoint_of(epoch: int, complete: bool) -> dict[str, Any]:
        return {
            "kind": "student" if cfg.is_student else "teacher", "model_name": cfg.model,
            "model_overrides": cfg.model_overrides, "dataset": cfg.dataset, "num_classes": info.num_classes,
            "in_chans": info.in_chans, "epoch": epoch, "complete": complete, "config": dataclasses.asdict(cfg),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "rng": {"seed": cfg.seed, "next_epoch": epoch}, "history": history,
        }

    metrics = None
    with _stop_on_sigterm() as stop:  # a scheduler's SIGTERM: finish the epoch, checkpoint it
        for epoch in range(start_epoch, cfg.epochs):
            seed_epoch(cfg.seed, epoch, loader_rng)
            train_batches.sampler.set_epoch(epoch)
            started = time.perf_counter()
            step_model.train()
            sums = torch.zeros(5, dtype=torch.float64)  # loss * n, top-1 hits, top-5 hits, labelled n, n
            tested = [row["val_top1"] for row in history if not math.isnan(row["val_top1"])]
            last = f" (test top-1 {100 * tested[-1]:.1f}%)" if tested else ""  # the latest evaluated epoch's
            bar = tqdm(train_batches, desc=f"{cfg.model} epoch {epoch + 1}/{cfg.epochs}{last}",
                       disable=not (progress and is_writer), leave=False, mininterval=_progress_interval())
            for step, (images, labels) in enumerate(bar):
                images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
                if cnn and device.type == "cuda":
                    images = images.contiguous(memory_format=torch.channels_last)
                batch = mixer(images, labels)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    outputs = step_model(batch.images)
                    loss = criterion(outputs, batch)
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    kept = f"the last checkpoint is kept in {folder.path}" if epoch else "no checkpoint was written yet"
                    if is_writer:
                        folder.write_status("diverged", epoch, cfg.epochs)
                    raise TrainingDiverged(
                        f"loss became {loss_value} at epoch {epoch + 1}, step {step + 1} (lr "
                        f"{scheduler.get_last_lr()[0]:.4g}); {kept}. Try a lower --lr, or --amp none.")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                logits = mean_of_heads(outputs).detach().float()
                top1, top5 = topk_correct(logits, batch.dominant_labels)  # an UNLABELLED image is never a hit...
                # Unlabelled images come only in unmixed runs (resolved() refuses mixing), so the batch's labels are its own.
                labelled = len(labels) if not cfg.unlabelled else int((labels != UNLABELLED).sum())
                sums += torch.tensor([loss_value * len(labels), top1, top5, labelled, len(labels)],  # ...nor counted
                                     dtype=torch.float64)
                running_top1 = f"{100 * float(sums[1] / sums[3]):.0f}%" if sums[3] else "-"  # this epoch's, so far
                bar.set_postfix(loss=f"{loss_value:.3f}", top1=running_top1, refresh=False)  # drawn at the bar's own pace
            _all_reduce(sums)
            train_seconds = time.perf_counter() - started
            evaluated = (epoch + 1) % cfg.evaluate_every == 0 or epoch + 1 == cfg.epochs  # the last always
            metrics = evaluate(model, test_batches, info.num_classes, device=device, amp=cfg.amp) if evaluated else None
            seconds = time.perf_counter() - started
            row = {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0],
                   "train_loss": float(sums[0] / sums[4]),  # top-1/5 on labelled images (NaN: an epoch had none)
                   "train_top1": float(sums[1] / sums[3]) if sums[3] else math.nan,
                   "train_top5": float(sums[2] / sums[3]) if sums[3] else math.nan,
                   # NaN: this epoch was not evaluated (evaluate_every)
                   "val_loss": metrics.loss if metrics else math.nan, "val_top1": metrics.top1 if metrics else math.nan,
                   "val_top5": metrics.top5 if metrics else math.nan, "seconds": seconds,
                   "images_per_second": float(sums[4]) / train_seconds}
            history.append(row)
            final = epoch + 1 == cfg.epochs
            saved = final or (epoch + 1) % cfg.checkpoint_every == 0 or stop.requested
            if is_writer:
                if saved:
                    folder.write_epoch(checkpoint_of(epoch + 1, complete=final), history)
                    folder.write_status("running", epoch + 1, cfg.epochs)
                else:
                    folder.write_history(history)  # the checkpoint waits for checkpoint_every
            for callback in callbacks or []:
                callback(row)
            if stop.requested and not final:
                if is_writer:
                    if not saved:  # the signal came during the callbacks
                        folder.write_epoch(checkpoint_of(epoch + 1, complete=False), history)
                    folder.write_status("stopped", epoch + 1, cfg.epochs)
                raise TrainingStopped(f"stopped by SIGTERM after epoch {epoch + 1} of {cfg.epochs}; its checkpoint is "
                                      f"in {folder.path}: train again with the same settings to resume")
    if metrics is None:  # resumed a finished run: nothing left to train
        metrics = evaluate(model, test_batches, info.num_classes, device=device, amp=cfg.amp)
    if is_writer:
        folder.write_metrics(cfg.model, cfg.dataset, metrics)
        folder.write_status("complete", cfg.epochs, cfg.epochs)
    return history, metrics


class TrainingStopped(RuntimeError):
    """A run stopped by SIGTERM at the end of an epoch, its checkpoint written: it resumes."""


class _StopRequest:
    requested = False


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[_StopRequest]:
    """While training, SIGTERM (a cluster's or a hosted kernel's notice) asks the loop to stop after
    the epoch it is in, with that epoch's checkpoint written; the previous handler comes back after.
    Only the main thread can catch signals: elsewhere nothing changes."""
    stop = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request(signum: int, frame: Any) -> None:
        stop.requested = True

    previous = signal.signal(signal.SIGTERM, request)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


class Batches:
    """One epoch's training batches (a DataLoader or ``TensorBatches``), in the order
    ``sampler`` (a ``DistributedSampler``, reseeded every epoch) gives, the last partial batch
    dropped. ``images``: how many training images there are."""

    def __init__(self, batches: Iterable[tuple[Tensor, Tensor]], sampler: DistributedSampler, images: int) -> None:
        self.batches, self.sampler, self.images = batches, sampler, images

    def __len__(self) -> int:
        return len(self.batches)  # a DataLoader (drop_last) or TensorBatches: whole batches only

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return iter(self.batches)


class TensorBatches:
    """Batches cut from a decoded split and augmented whole (``data.BatchAugmentation``):
    images (B, C, 32, 32) float32, normalised, on ``device``; labels (B,) int64, on the CPU
    (the training loop moves them)."""

    def __init__(self, split: TensorSplit, sampler: DistributedSampler, batch_size: int,
                 augment: BatchAugmentation, device: torch.device) -> None:
        self.split, self.sampler, self.batch_size, self.augment, self.device = split, sampler, batch_size, augment, device

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size  # the last partial batch is dropped

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = torch.tensor(list(self.sampler))
        for batch in range(len(self)):
            chosen = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            images = self.split.images[chosen].to(self.device, non_blocking=True)
            yield self.augment(images), self.split.labels[chosen]


class HiddenLabels(Dataset):
    """``dataset`` with the labels of every image from index ``labelled`` on replaced by
    ``UNLABELLED``: images the student sees, labelled only by its teacher."""

    def __init__(self, dataset: Dataset, labelled: int) -> None:
        self.dataset, self.labelled = dataset, labelled

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = self.dataset[index]
        return image, label if index < self.labelled else UNLABELLED


def _labelled_count(cfg: ResolvedConfig, available: int) -> int:
    """How many training images keep their labels; checks the unlabelled ones exist too."""
    labelled = min(cfg.train_subset or available, available)
    if labelled + cfg.unlabelled > available:
        raise ValueError(f"{cfg.dataset} has {available} training images: {labelled} labelled and {cfg.unlabelled} "
                         f"unlabelled ones do not fit; lower --unlabelled to at most {available - labelled} "
                         f"(or --train-subset)")
    return labelled


# Test images per forward pass when evaluating: larger batches run faster, up to memory.
EVAL_BATCH = 500


def _data(cfg: ResolvedConfig, info: DatasetInfo, rank: int, world: int, local_batch: int,
          loader_rng: torch.Generator, device: torch.device) -> tuple[Batches, Iterable[tuple[Tensor, Tensor]]]:
    """This process's training batches and its share of the test batches."""
    if cfg.augmentation == "paper":  # per-image PIL transforms (AutoAugment, ...): a DataLoader, with workers
        workers = capped_workers(cfg.num_workers, note=print if rank == 0 else None)
        train_set = load_dataset(cfg.dataset, train=True, data_dir=cfg.data_dir,
                                 transform=train_transform(info, cfg.augmentation))
        test_set = load_dataset(cfg.dataset, train=False, data_dir=cfg.data_dir, transform=eval_transform(info))
        labelled = _labelled_count(cfg, len(train_set))
        train_set = Subset(train_set, range(labelled + cfg.unlabelled))
        if cfg.unlabelled:
            train_set = HiddenLabels(train_set, labelled)
        test_set = Subset(test_set, range(min(cfg.test_subset or len(test_set), len(test_set))))
        sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
        loader = DataLoader(train_set, batch_size=local_batch, sampler=sampler, drop_last=True,
                            num_workers=workers, generator=loader_rng, pin_memory=device.type == "cuda")
        test_loader = DataLoader(Subset(test_set, range(rank, len(test_set), world)), batch_size=EVAL_BATCH,
                                 num_workers=workers)
        return Batches(loader, sampler, len(train_set)), test_loader
    # Decoded once, then cut and augmented a whole batch at a time.
    train = load_tensors(cfg.dataset, train=True, data_dir=cfg.data_dir)
    labelled = _labelled_count(cfg, len(train))
    train = train.head(labelled + cfg.unlabelled)
    if cfg.unlabelled:
        train = TensorSplit(train.images, torch.where(torch.arange(len(train)) < labelled, train.labels, UNLABELLED))
    test = load_tensors(cfg.dataset, train=False, data_dir=cfg.data_dir).head(cfg.test_subset)
    sampler = DistributedSampler(range(len(train)), num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    batches = TensorBatches(train, sampler, local_batch, BatchAugmentation(info, cfg.augmentation), device)
    normalise, mine = BatchNormalisation(info), torch.arange(rank, len(test), world)
    test_batches = [(normalise(test.images[chunk]), test.labels[chunk]) for chunk in mine.split(EVAL_BATCH)]
    return Batches(batches, sampler, len(train)), test_batches


def training_batches(cfg: ResolvedConfig, *, epoch: int = 0, device: torch.device | str = "cpu") -> Batches:
    """``cfg``'s training batches of one ``epoch`` (one process), cut, ordered and augmented
    as the engine does, its random streams seeded as the engine seeds them (so iterate right
    away): images (B, C, 32, 32) normalised, labels (B,) (``UNLABELLED`` where hidden), before
    mixing (the training loop mixes each batch). For measuring what a student trains on."""
    rng = torch.Generator()
    batches = _data(cfg, dataset_info(cfg.dataset), 0, 1, cfg.batch_size, rng, torch.device(device))[0]
    seed_epoch(cfg.seed, epoch, rng)
    batches.sampler.set_epoch(epoch)
    return batches


def build_model(name: str, num_classes: int, in_chans: int, overrides: dict[str, Any] | None = None) -> nn.Module:
    """A student (``create_model``) or a teacher (``create_teacher``) by name."""
    if name in MODEL_CONFIGS:
        return create_model(name, num_classes=num_classes, in_chans=in_chans, **(overrides or {}))
    return create_teacher(name, num_classes=num_classes, in_chans=in_chans)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], num_classes: int, *, device: torch.device | str = "cpu",
             amp: str = "none") -> ClassificationMetrics:
    """Table 3's metrics on ``loader``'s (images (B, C, H, W), labels (B,)) batches, summed over
    processes when distributed."""
    model.eval()
    device = torch.device(device)
    amp_dtype = _amp_dtype(amp)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    top5 = loss_sum = 0.0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(images).float()
        loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
        top5 += topk_correct(logits, labels)[1]
        confusion += confusion_matrix(logits.argmax(1), labels, num_classes).cpu().double()
    packed = torch.cat([confusion.flatten(), torch.tensor([top5, loss_sum], dtype=torch.float64)])
    _all_reduce(packed)
    confusion = packed[:-2].reshape(num_classes, num_classes).long()
    return metrics_from_counts(confusion, int(packed[-2]), float(packed[-1]))


# Parameters that set a scale or a position rather than a feature detector: decaying them
# towards zero only biases the model (DeiT and timm exempt them; so does nanoGPT's
# configure_optimizers, by the same rule of "1-D or an embedding").
NO_DECAY_SUFFIXES = ("token", "tokens", "pos_embedding")


def parameter_groups(model: nn.Module, weight_decay: float, decay: str = "weights") -> list[dict[str, Any]]:
    """Optimizer groups: with ``decay="weights"``, matrices and convolution kernels decay and
    biases, norm gains, tokens and position embeddings (1-D, or named as such) do not; with
    ``decay="all"``, everything decays. Empty groups are left out."""
    if decay == "all":
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    decayed, exempt = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (exempt if parameter.ndim <= 1 or name.endswith(NO_DECAY_SUFFIXES) else decayed).append(parameter)
    groups = [{"params": decayed, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def make_optimizer(cfg: ResolvedConfig, groups: list[dict[str, Any]], *, fused: bool = True) -> torch.optim.Optimizer:
    """The config's optimizer (SGD with momentum, or AdamW) over ``groups``.

    ``fused``: one kernel updates every parameter, where this torch has it for the
    parameters' device (CPU from torch 2.4). Unfused, PyTorch's CPU optimizers loop over the
    parameters one small op at a time, which at the classroom's sizes is a sizeable share of
    a training step (``benchmarks/kit_vs_bare_loop.py`` measures it)."""
    kind, settings = ((torch.optim.SGD, {"lr": cfg.lr, "momentum": cfg.momentum}) if cfg.optimizer == "sgd"
                      else (torch.optim.AdamW, {"lr": cfg.lr}))
    device = next((p.device for group in groups for p in group["params"]), torch.device("cpu"))
    if fused and _has_fused_step(kind, tuple(settings.items()), device.type):
        return kind(groups, fused=True, **settings)
    return kind(groups, **settings)


@functools.cache
def _has_fused_step(kind: type[torch.optim.Optimizer], settings: tuple[tuple[str, Any], ...], device_type: str) -> bool:
    """Whether this torch can take a fused ``kind(**dict(settings))`` step on ``device_type``:
    tried on one small parameter, since some versions accept ``fused=True`` for a device they
    cannot step on (torch 2.3 on a CPU fails only at the first step)."""
    try:
        parameter = torch.nn.Parameter(torch.zeros(2, device=device_type))
        parameter.grad = torch.ones_like(parameter)
        kind([parameter], fused=True, **dict(settings)).step()
        return True
    except (RuntimeError, ValueError, NotImplementedError):
        return False


def warmup_cosine(warmup_steps: float, total_steps: int) -> Callable[[int], float]:
    """LR factor: linear warm-up to 1 over ``warmup_steps``, then cosine annealing to 0."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1.0, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return factor


def seed_epoch(seed: int, epoch: int, loader_rng: torch.Generator) -> None:
    """Seed every random stream of one epoch from (seed, epoch)."""
    epoch_seed = seed * 100_003 + epoch
    torch.manual_seed(epoch_seed)
    random.seed(epoch_seed)
    loader_rng.manual_seed(epoch_seed)


def _progress_interval() -> float:
    """Seconds between progress-bar updates: live in a terminal or notebook, rare in a log
    file, where every update would be another line."""
    import sys

    interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
    return 0.1 if interactive else 30.0


def _amp_dtype(amp: str) -> torch.dtype | None:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)


def init_distributed() -> tuple[int, int]:
    """(rank, world size); joins the process group torchrun describes, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def _all_reduce(tensor: Tensor) -> None:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)


def resolve_device(requested: str = "auto") -> torch.device:
    """``auto``: CUDA if there is a GPU, else the CPU; under torchrun, this process's GPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and dist.is_initialized():
        requested = f"cuda:{int(os.environ.get('LOCAL_RANK', dist.get_rank()))}"
    device = torch.device(requested)
    if device.type == "cuda":
        if device.index is None:  # newer torch refuses set_device("cuda"): name the GPU in use
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device
