"""The training engine: one loop for students and teachers, the paper's recipe (§4.1, Algorithm 2).

SGD (momentum 0.9, weight decay 1e-4, lr 0.1 at batch 1024), cosine annealing with an
optional linear warm-up, CutMix or MixUp on every batch, and for distilled students the
hard-distillation loss against a CNN teacher. Runs on a CPU, a GPU (AMP, torch.compile)
or several GPUs/processes (``torchrun --nproc_per_node N -m titn_lite train ...``).

The step itself is ``train_step`` (mix, the student's heads, the loss with the teacher's
labels, backward, optimizer and schedule): the step notebook 07 writes by hand.
``train_one_epoch`` runs it over an epoch's batches; ``fit`` wraps the epochs in what a
long run needs (a run folder, checkpoints, exact resume, NaN and SIGTERM stops).

The engine takes a run's settings (``config.ResolvedConfig``) and writes through
``RunWriter``, which ``run_folder.RunFolder`` satisfies: it imports nothing from the run layer
(``titn_lite.train.runs``, which starts, resumes and reuses runs and calls ``fit``). Its batches
come from ``titn_lite.train.pipeline``, its device from ``titn_lite.system.devices``.

Exact resume: each epoch's random streams (data order, augmentation, mixing) are seeded
from (seed, epoch), so a run resumed after epoch k replays epochs k+1... exactly as an
uninterrupted run would (bit for bit on a CPU).
"""

from __future__ import annotations

import contextlib
import functools
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from titn_lite.data.datasets import dataset_info
from titn_lite.data.mixing import BatchMixer, MixedBatch
from titn_lite.models.registry import build_model
from titn_lite.models.students import mean_of_heads
from titn_lite.system.devices import all_reduce, amp_dtype, init_distributed, resolve_device
from titn_lite.system.usage import UsageError
from titn_lite.train.checkpoint import restore_training, training_checkpoint
from titn_lite.train.config import ResolvedConfig
from titn_lite.train.losses import UNLABELLED, DistillationLoss, RememberingTeacher
from titn_lite.train.metrics import ClassificationMetrics, confusion_matrix, metrics_from_counts, topk_hits
from titn_lite.train.pipeline import Batches, epoch_batches, run_test_batches, seed_epoch


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingStopped(RuntimeError):
    """A run stopped by SIGTERM at the end of an epoch, its checkpoint written: it resumes."""


EpochCallback = Callable[[dict[str, float]], None]


class RunWriter(Protocol):
    """Where the engine writes a run (``run_folder.RunFolder`` is one): only rank 0 writes."""

    path: Path

    def write_start(self, config: ResolvedConfig) -> None: ...
    def write_status(self, status: str, epochs_done: int, epochs: int) -> None: ...
    def write_epoch(self, checkpoint: dict[str, Any], history: list[dict[str, float]]) -> None: ...
    def write_history(self, history: list[dict[str, float]]) -> None: ...
    def write_metrics(self, model: str, dataset: str, metrics: ClassificationMetrics) -> None: ...


# Steps between reads of the loss on the host where the step runs on a GPU: each read waits
# for the GPU to finish its queue, so reading every step would keep it idle between steps.
# On a CPU a read costs nothing, and every step is checked.
GPU_READ_EVERY = 25


def steps_between_reads(device: torch.device) -> int:
    """How often a training step's loss is read on the host (checked for NaN, shown in the bar)."""
    return 1 if device.type == "cpu" else GPU_READ_EVERY


@dataclass
class _Run:
    """What one run's loop holds: its settings, model, optimisation state and batches."""

    cfg: ResolvedConfig
    writer: RunWriter
    device: torch.device
    model: nn.Module
    step_model: nn.Module  # the model as the step calls it: DDP-wrapped, compiled
    criterion: DistillationLoss
    mixer: BatchMixer
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    train_batches: Batches
    validation_batches: Iterable[tuple[Tensor, Tensor]]  # empty without a validation split
    loader_rng: torch.Generator
    rank: int  # this process among the world's (0 of 1 without torchrun)
    world: int
    channels_last: bool  # a CNN teacher: its convolutions run faster on NHWC images (GPU and CPU)
    history: list[dict[str, float]] = field(default_factory=list)
    start_epoch: int = 0

    def checkpoint(self, epoch: int, complete: bool) -> dict[str, Any]:
        return training_checkpoint(self.cfg, epoch=epoch, complete=complete, model=self.model,
                                   optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler,
                                   history=self.history)

    def on_device(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """A batch moved to the run's device (without waiting), channels-last for a CNN."""
        images, labels = images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
        return (images.contiguous(memory_format=torch.channels_last) if self.channels_last else images), labels

    def validate(self) -> ClassificationMetrics | None:
        """The model on the validation images (None without a validation split)."""
        if not self.cfg.val_images:
            return None
        return evaluate(self.model, self.validation_batches, dataset_info(self.cfg.dataset).num_classes,
                        device=self.device, amp=self.cfg.amp)

    @property
    def is_writer(self) -> bool:
        return self.rank == 0  # one process writes the run's files

    def test(self) -> ClassificationMetrics:
        """The finished model on the test images: read once per run, after its last epoch."""
        return evaluate(self.model, run_test_batches(self.cfg, self.rank, self.world),
                        dataset_info(self.cfg.dataset).num_classes, device=self.device, amp=self.cfg.amp)


def fit(
    cfg: ResolvedConfig, writer: RunWriter, *, teacher: nn.Module | None = None,
    checkpoint: dict[str, Any] | None = None, progress: bool = True, callbacks: list[EpochCallback] | None = None,
) -> tuple[list[dict[str, float]], ClassificationMetrics]:
    """Train ``cfg.model`` (from ``checkpoint`` when resuming), writing the run through
    ``writer`` after every epoch; returns the history (one row per epoch; its ``val_``
    figures are the validation images') and the finished model's test metrics, the only
    time a run reads the test images.

    ``teacher``: the trained CNN a distilled student learns from. ``callbacks`` are called
    with each epoch's history row (e.g. a live plot).
    """
    run = _prepare(cfg, writer, teacher, checkpoint)
    with _stop_on_sigterm() as stop:  # a scheduler's SIGTERM: finish the epoch, checkpoint it
        for epoch in range(run.start_epoch, cfg.epochs):
            started = time.perf_counter()
            totals = train_one_epoch(run, epoch, progress)
            train_seconds = time.perf_counter() - started
            evaluated = (epoch + 1) % cfg.evaluate_every == 0 or epoch + 1 == cfg.epochs  # the last always
            metrics = run.validate() if evaluated else None
            row = _history_row(epoch, run.scheduler.get_last_lr()[0], totals, metrics, train_seconds,
                               time.perf_counter() - started)
            run.history.append(row)
            saved = _write_epoch(run, epoch, stop.requested)
            for callback in callbacks or []:
                callback(row)
            if stop.requested and epoch + 1 < cfg.epochs:
                _stop(run, epoch, saved)
    metrics = run.test()
    if run.is_writer:
        writer.write_metrics(cfg.model, cfg.dataset, metrics)
        writer.write_status("complete", cfg.epochs, cfg.epochs)
    return run.history, metrics


def _prepare(cfg: ResolvedConfig, writer: RunWriter, teacher: nn.Module | None,
             checkpoint: dict[str, Any] | None) -> _Run:
    """Set up the run: device, batches, model, loss, optimiser and schedule, restored from
    ``checkpoint`` when resuming; the writer records the start."""
    rank, world = init_distributed()
    device = resolve_device(cfg.device)
    if device.type == "cuda":  # TF32 matmuls and convolutions: fp32 weights at tensor-core speed
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.batch_size % world:
        raise UsageError(f"batch size {cfg.batch_size} must divide evenly over {world} processes")
    info = dataset_info(cfg.dataset)
    loader_rng = torch.Generator()
    train_batches, validation_batches = epoch_batches(cfg, rank, world, cfg.batch_size // world, loader_rng, device)
    if len(train_batches) == 0:
        raise UsageError(f"batch size {cfg.batch_size} is larger than the {train_batches.image_count} training images")

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, info.num_classes, info.in_chans, cfg.model_overrides).to(device)
    # A CNN's convolutions run faster on channels-last (NHWC) weights: on a GPU's tensor cores, and
    # on a CPU too (oneDNN; the earlier 32-64-128 small_cnn, one thread, batch 64: a training step
    # 304 -> 223 ms, a forward pass 90 -> 62 ms; benchmarks/teacher_widths.py). The students'
    # linear layers gain nothing from it.
    channels_last = not cfg.is_student
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if teacher is not None:
        teacher = teacher.to(device, memory_format=torch.channels_last)
        if device.type == "cpu" and cfg.augmentation == "none" and cfg.mix == "none":
            teacher = RememberingTeacher(teacher)  # the same images every epoch: labelled once
    criterion = DistillationLoss(teacher, cfg.distill or "none",
                                 alpha=cfg.distill_alpha, temperature=cfg.temperature, unlabelled=cfg.unlabelled > 0)
    optimizer = make_optimizer(cfg, parameter_groups(model, cfg.weight_decay, cfg.decay))
    steps_per_epoch = len(train_batches)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(cfg.warmup_epochs * steps_per_epoch, cfg.epochs * steps_per_epoch))
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    ddp_model = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    run = _Run(cfg=cfg, writer=writer, device=device, model=model,
               step_model=torch.compile(ddp_model) if cfg.compile else ddp_model, criterion=criterion,
               mixer=BatchMixer(cfg.mix, alpha=cfg.mix_alpha, prob=cfg.mix_prob), optimizer=optimizer,
               scheduler=scheduler, scaler=scaler, train_batches=train_batches, validation_batches=validation_batches,
               loader_rng=loader_rng, rank=rank, world=world, channels_last=channels_last)
    if checkpoint is not None:
        _restore(run, checkpoint)
    if run.is_writer:
        writer.write_start(cfg)
        writer.write_status("running", run.start_epoch, cfg.epochs)
    return run


def _restore(run: _Run, checkpoint: dict[str, Any]) -> None:
    """Continue from ``checkpoint``: weights, optimiser, schedule, scaler and history."""
    run.history, run.start_epoch = restore_training(checkpoint, model=run.model, optimizer=run.optimizer,
                                                    scheduler=run.scheduler, scaler=run.scaler)


@dataclass
class StepResult:
    """What one training step leaves besides the updated weights: its loss (a scalar), the
    model's outputs on the mixed images (logits (B, classes), or a distilled student's pair)
    and the mixed batch itself; all detached, still on the device."""

    loss: Tensor
    outputs: Tensor | tuple[Tensor, Tensor]
    batch: MixedBatch


def train_step(
    model: nn.Module, images: Tensor, labels: Tensor, *, mix: Callable[[Tensor, Tensor], MixedBatch],
    loss_fn: Callable[[Tensor | tuple[Tensor, Tensor], MixedBatch], Tensor], optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> StepResult:
    """One optimizer step of Algorithm 2 as the kit reads it (notebook 07 writes it by hand).

    images (B, C, H, W) and labels (B,) on the model's device; ``model`` in training mode.
    ``mix``: CutMix (notebook 05; ``BatchMixer``) or no mixing. ``loss_fn``: a
    ``DistillationLoss``, where the teacher, in eval mode and without gradients, labels the
    same mixed images (eq. 9 on the class head, eq. 10's term on the distillation head).
    ``scaler``: fp16's loss scaling (a disabled one changes nothing); ``autocast_dtype``:
    bf16/fp16 autocast, or None for float32.
    """
    batch = mix(images, labels)  # 1. CutMix: mixed images, both labels and lambda
    with torch.autocast(images.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        outputs = model(batch.images)  # 2. the student's heads (class, distillation) on the mixed images
        loss = loss_fn(outputs, batch)  # 3. the teacher labels batch.images (eval mode, no gradients),
        # and the loss is alpha * eq. 9 on the class head + (1 - alpha) * the teacher's term on the other
    optimizer.zero_grad(set_to_none=True)  # 4. this batch's gradients only, then the update
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    scheduler.step()  # 5. the schedule moves every step, not every epoch
    return StepResult(loss.detach(), _detached(outputs), batch)


def _detached(outputs: Tensor | tuple[Tensor, Tensor]) -> Tensor | tuple[Tensor, Tensor]:
    return tuple(o.detach() for o in outputs) if isinstance(outputs, tuple) else outputs.detach()  # type: ignore[return-value]


@dataclass
class EpochTotals:
    """An epoch's sums over its training images, as plain numbers (summed over processes)."""

    loss_sum: float  # each step's loss x its images
    top1_hits: float
    top5_hits: float
    labelled: float  # images with a label (a few-labels run hides some)
    images: float


class RunningTotals:
    """An epoch's running sums, kept on the device (adding them never waits for a GPU); the
    host reads ``loss_sum`` every few steps and everything once, at the epoch's end."""

    def __init__(self, device: torch.device) -> None:
        zero = functools.partial(torch.zeros, (), dtype=torch.float64, device=device)
        self.loss_sum, self.top1_hits, self.top5_hits, self.labelled = zero(), zero(), zero(), zero()
        self.images = 0  # a host integer: no copy to the device per step

    def add(self, step: StepResult, labels: Tensor) -> None:
        """Count one step: its loss, its top-1/5 hits on the label holding the larger share of
        each mixed image, and its labelled images (an ``UNLABELLED`` image is never a hit:
        such runs are never mixed, so the labels are the batch's own)."""
        hits = topk_hits(mean_of_heads(step.outputs).float(), step.batch.dominant_labels)
        self.loss_sum += step.loss.double() * len(labels)
        self.top1_hits += hits[0]
        self.top5_hits += hits[1]
        self.labelled += (labels != UNLABELLED).sum()
        self.images += len(labels)

    def running_top1(self) -> str:
        """This epoch's training top-1 so far, for the progress bar (reads the device)."""
        return f"{100 * float(self.top1_hits / self.labelled):.0f}%" if self.labelled else "-"

    def summed_over_processes(self) -> EpochTotals:
        sums = torch.stack([self.loss_sum, self.top1_hits, self.top5_hits, self.labelled,
                            self.loss_sum.new_tensor(float(self.images))])
        all_reduce(sums)  # on the device: NCCL reduces GPU tensors only
        return EpochTotals(*sums.tolist())


def train_one_epoch(run: _Run, epoch: int, progress: bool) -> EpochTotals:
    """One epoch of ``train_step``s over the run's batches, in the order seeded by (seed,
    epoch); the loss is checked for NaN every ``steps_between_reads`` steps."""
    seed_epoch(run.cfg.seed, epoch, run.loader_rng)
    run.train_batches.sampler.set_epoch(epoch)
    run.step_model.train()
    totals = RunningTotals(run.device)
    read_every, autocast_dtype = steps_between_reads(run.device), amp_dtype(run.cfg.amp)
    bar = _progress_bar(run, epoch, progress)
    for step, (images, labels) in enumerate(bar):
        images, labels = run.on_device(images, labels)
        result = train_step(run.step_model, images, labels, mix=run.mixer, loss_fn=run.criterion,
                            optimizer=run.optimizer, scheduler=run.scheduler, scaler=run.scaler,
                            autocast_dtype=autocast_dtype)
        totals.add(result, labels)
        if (step + 1) % read_every == 0 or step + 1 == len(run.train_batches):
            _check_finite(run, totals.loss_sum, epoch, step)  # the running sum: a NaN in any step since the last read
            bar.set_postfix(loss=f"{float(result.loss):.3f}", top1=totals.running_top1(), refresh=False)
    return totals.summed_over_processes()


def _progress_bar(run: _Run, epoch: int, progress: bool) -> tqdm:
    """The epoch's bar, titled with the latest evaluated epoch's validation top-1, named by its
    epoch: the bar runs before this epoch's own evaluation."""
    validated = [row for row in run.history if not math.isnan(row["val_top1"])]
    last = (f" (validation top-1 after epoch {validated[-1]['epoch']}: {100 * validated[-1]['val_top1']:.1f}%)"
            if validated else "")
    return tqdm(run.train_batches, desc=f"{run.cfg.model} epoch {epoch + 1}/{run.cfg.epochs}{last}",
                disable=not (progress and run.is_writer), leave=False, mininterval=_progress_interval())


def _check_finite(run: _Run, loss: Tensor, epoch: int, step: int) -> None:
    """Stop a run whose loss (``loss``: this epoch's running sum) became NaN or infinite,
    keeping its last checkpoint."""
    value = float(loss)
    if math.isfinite(value):
        return
    kept = f"the last checkpoint is kept in {run.writer.path}" if epoch else "no checkpoint was written yet"
    if run.is_writer:
        run.writer.write_status("diverged", epoch, run.cfg.epochs)
    where = f"step {step + 1}" if steps_between_reads(run.device) == 1 else f"by step {step + 1}"
    raise TrainingDiverged(f"loss became {value} at epoch {epoch + 1}, {where} "
                           f"(lr {run.scheduler.get_last_lr()[0]:.4g}); {kept}. Try a lower --lr, or --amp none.")


def _history_row(epoch: int, lr: float, totals: EpochTotals, metrics: ClassificationMetrics | None,
                 train_seconds: float, seconds: float) -> dict[str, float]:
    """One epoch's row: train loss and top-1/5 on labelled images (NaN: the epoch had none),
    validation metrics (NaN: not evaluated this epoch, ``evaluate_every``, or no validation
    split), ``seconds`` with the evaluation, ``images_per_second`` training alone."""
    labelled = totals.labelled
    return {"epoch": epoch + 1, "lr": lr, "train_loss": totals.loss_sum / totals.images,
            "train_top1": totals.top1_hits / labelled if labelled else math.nan,
            "train_top5": totals.top5_hits / labelled if labelled else math.nan,
            "val_loss": metrics.loss if metrics else math.nan, "val_top1": metrics.top1 if metrics else math.nan,
            "val_top5": metrics.top5 if metrics else math.nan, "seconds": seconds,
            "images_per_second": totals.images / train_seconds}


def _write_epoch(run: _Run, epoch: int, stopping: bool) -> bool:
    """Write the epoch's history, and its checkpoint when due (every ``checkpoint_every``
    epochs, the last, and before a stop); returns whether the checkpoint was written."""
    cfg, done = run.cfg, epoch + 1
    saved = done == cfg.epochs or done % cfg.checkpoint_every == 0 or stopping
    if run.is_writer:
        if saved:
            run.writer.write_epoch(run.checkpoint(done, complete=done == cfg.epochs), run.history)
            run.writer.write_status("running", done, cfg.epochs)
        else:
            run.writer.write_history(run.history)  # the checkpoint waits for checkpoint_every
    return saved


def _stop(run: _Run, epoch: int, saved: bool) -> None:
    """End a run SIGTERM asked to stop, after ``epoch`` and with its checkpoint written."""
    cfg = run.cfg
    if run.is_writer:
        if not saved:  # the signal came during the callbacks
            run.writer.write_epoch(run.checkpoint(epoch + 1, complete=False), run.history)
        run.writer.write_status("stopped", epoch + 1, cfg.epochs)
    raise TrainingStopped(f"stopped by SIGTERM after epoch {epoch + 1} of {cfg.epochs}; its checkpoint is "
                          f"in {run.writer.path}: train again with the same settings and --resume "
                          "(train(..., resume=True)) to go on")


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


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], num_classes: int, *,
             device: torch.device | str = "cpu", amp: str = "none") -> ClassificationMetrics:
    """Table 3's metrics on ``loader``'s (images (B, C, H, W), labels (B,)) batches, summed over
    processes when distributed; counted on the device, read once at the end."""
    model.eval()
    device = torch.device(device)
    dtype = amp_dtype(amp)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.float64, device=device)
    totals = torch.zeros(2, dtype=torch.float64, device=device)  # top-5 hits, loss summed
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(images).float()
        totals += torch.stack([topk_hits(logits, labels)[1].double(),
                               F.cross_entropy(logits, labels, reduction="sum").double()])
        confusion += confusion_matrix(logits.argmax(1), labels, num_classes).double()
    packed = torch.cat([confusion.flatten(), totals])
    all_reduce(packed)  # on the device: NCCL reduces GPU tensors only
    packed = packed.cpu()
    confusion = packed[:-2].reshape(num_classes, num_classes).long()
    return metrics_from_counts(confusion, int(packed[-2]), float(packed[-1]))


def parameter_groups(model: nn.Module, weight_decay: float, decay: str = "weights") -> list[dict[str, Any]]:
    """Optimizer groups: with ``decay="weights"``, matrices and convolution kernels decay and
    biases, norm gains and what the model names in ``no_weight_decay()`` (the students'
    tokens and position embeddings, timm's convention) do not: decaying a scale or a position
    towards zero only biases the model (DeiT, timm and nanoGPT's ``configure_optimizers`` use
    this rule). With ``decay="all"``, everything decays. Empty groups are left out."""
    if decay == "all":
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    model = getattr(model, "_orig_mod", model)  # torch.compile's wrapper
    model = getattr(model, "module", model)  # DistributedDataParallel's
    named_exempt = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    decayed, exempt = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (exempt if parameter.ndim <= 1 or name in named_exempt else decayed).append(parameter)
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


def _progress_interval() -> float:
    """Seconds between progress-bar updates: live in a terminal or notebook, rare in a log
    file, where every update would be another line."""
    interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
    return 0.1 if interactive else 30.0
