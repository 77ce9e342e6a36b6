"""One training loop for students and teachers: the paper's recipe (§4.1, Algorithm 2).

SGD (momentum 0.9, weight decay 1e-4, lr 0.1 at batch 1024), cosine annealing with an
optional linear warm-up, CutMix or MixUp on every batch, and for distilled students the
hard-distillation loss against a CNN teacher. Runs on a CPU, a GPU (AMP, torch.compile)
or several GPUs/processes (``torchrun --nproc_per_node N -m titn_lite train ...``).

A run directory holds ``config.json``, ``checkpoint.pt`` (after every epoch),
``history.json``/``history.csv`` (one row per epoch; ``seconds`` includes evaluation,
``images_per_second`` is training alone), ``run.json`` (status) and, once
the run is complete, ``metrics.json``. Every file is replaced atomically.

Exact resume: each epoch's random streams (data order, augmentation, mixing) are seeded
from (seed, epoch), so a run resumed after epoch k replays epochs k+1... exactly as an
uninterrupted run would (bit for bit on a CPU).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from titn_lite.checkpoints import CheckpointError, load_checkpoint, save_checkpoint, write_csv, write_json
from titn_lite.data import (DEFAULT_DATASET, IMG_SIZE, Augmentation, dataset_info, eval_transform, load_dataset,
                            train_transform)
from titn_lite.losses import DistillationLoss, DistillMode, check_distill_alpha
from titn_lite.metrics import ClassificationMetrics, confusion_matrix, metrics_from_counts, topk_correct
from titn_lite.mixing import BatchMixer, MixMode, check_alpha, check_mix_prob
from titn_lite.models import MODEL_CONFIGS, create_model, list_models, model_config, validate_config
from titn_lite.profiles import get_profile
from titn_lite.teachers import create_teacher, list_teachers


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """Everything a run needs. ``None`` fields take the profile's value."""

    model: str
    dataset: str = DEFAULT_DATASET
    profile: str = "classroom"
    out_dir: str = "runs/latest"
    data_dir: str | None = None
    teacher: str | None = None  # a teacher name (trained or reused in OUT/teacher) or a checkpoint path
    distill: str | None = None  # hard | soft | none; default: hard for distilled students
    distill_alpha: float = 0.5
    temperature: float = 3.0
    mix: str | None = None  # cutmix | mixup | none; default: the profile's
    mix_alpha: float | None = None  # default: the profile's (the paper's 0.5 at the paper profile)
    mix_prob: float = 1.0
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    warmup_epochs: float | None = None
    optimizer: str | None = None  # sgd (the paper's) | adamw; default: the profile's
    momentum: float = 0.9
    weight_decay: float | None = None
    # Which parameters decay: "all", or "weights" (matrices and kernels only: no decay on biases,
    # norms, tokens and position embeddings, DeiT's and timm's rule). Default: weights under AdamW,
    # all under SGD (the paper does not say; PyTorch's SGD decays everything it is given).
    decay: str | None = None
    augmentation: str | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    num_workers: int | None = None
    device: str = "auto"
    amp: str = "none"
    compile: bool = False
    seed: int = 0
    model_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def is_student(self) -> bool:
        return self.model in MODEL_CONFIGS

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` filled from the profile; validates everything first."""
        self.validate()
        profile = get_profile(self.profile)
        student = self.is_student
        distilled = student and MODEL_CONFIGS[self.model].distilled
        mixes = dataset_info(self.dataset).recipe not in profile.unmixed_recipes
        optimizer = self.optimizer or (profile.optimizer if student else "sgd")
        filled = dataclasses.replace(
            self,
            epochs=self.epochs or (profile.epochs if student else profile.teacher_epochs),
            batch_size=self.batch_size or profile.batch_size,
            lr=self.lr or (profile.lr if student else profile.teacher_lr),
            warmup_epochs=self.warmup_epochs if self.warmup_epochs is not None else profile.warmup_epochs,
            augmentation=self.augmentation or profile.augmentation,
            mix=self.mix or ((profile.mix if student else profile.teacher_mix) if mixes else "none"),
            mix_alpha=self.mix_alpha if self.mix_alpha is not None else profile.mix_alpha,
            optimizer=optimizer,
            weight_decay=self.weight_decay if self.weight_decay is not None else (
                profile.weight_decay if student else 1e-4),
            decay=self.decay or ("weights" if optimizer == "adamw" else "all"),
            train_subset=self.train_subset or profile.train_subset,
            test_subset=self.test_subset or profile.test_subset,
            num_workers=self.num_workers if self.num_workers is not None else profile.num_workers,
            distill=self.distill or ("hard" if distilled else "none"),
            teacher=(self.teacher or profile.teacher) if distilled and self.distill != "none" else self.teacher,
            model_overrides={**(profile.model_overrides if student else {}), **self.model_overrides},
        )
        if filled.distill == "none":
            filled.teacher = None
        elif filled.teacher and filled.teacher not in list_teachers():
            # A checkpoint path: recorded absolute, so the same teacher reads the same from any
            # folder (a notebook's "../artifacts/..." and the runner's absolute path).
            filled.teacher = str(Path(filled.teacher).resolve())
        if student:
            info = dataset_info(self.dataset)
            validate_config(model_config(self.model, **filled.model_overrides), num_classes=info.num_classes,
                            img_size=IMG_SIZE, in_chans=info.in_chans)
        return filled

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad value and the valid ones, before any work."""
        students, teachers = list_models(), list_teachers()
        if self.model not in students + teachers:
            raise ValueError(f"unknown model {self.model!r}; valid students: {', '.join(students)}; "
                             f"valid teachers: {', '.join(teachers)}")
        dataset_info(self.dataset)
        get_profile(self.profile)
        choices = {"distill": (*get_args(DistillMode), None), "mix": (*get_args(MixMode), None),
                   "amp": ("none", "bf16", "fp16"), "device": ("auto", "cpu", "cuda"),
                   "optimizer": ("sgd", "adamw", None), "decay": ("all", "weights", None),
                   "augmentation": (*get_args(Augmentation), None)}
        for name, valid in choices.items():
            value = getattr(self, name)
            if value not in valid and not (name == "device" and str(value).startswith("cuda:")):
                raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(v for v in valid if v)}")
        if self.mix_alpha is not None:
            check_alpha(self.mix_alpha)
        check_mix_prob(self.mix_prob)
        check_distill_alpha(self.distill_alpha)
        for name in ("epochs", "batch_size", "train_subset", "test_subset"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        distilled = self.is_student and MODEL_CONFIGS[self.model].distilled
        if self.distill in ("hard", "soft") and not distilled:
            raise ValueError(f"{self.model} has no distillation token, so it cannot be distilled; "
                             f"use one of {', '.join(n for n, c in MODEL_CONFIGS.items() if c.distilled)}, "
                             f"or --distill none")
        if self.teacher and not self.is_student:
            raise ValueError(f"{self.model} is a teacher; teachers train without a teacher")
        if self.teacher and self.teacher not in teachers and not Path(self.teacher).is_file():
            raise ValueError(f"teacher {self.teacher!r} is neither a teacher name ({', '.join(teachers)}) "
                             f"nor an existing checkpoint file")
        if self.model_overrides and not self.is_student:
            raise ValueError(f"model overrides apply to students only, not to the teacher {self.model}")
        cuda_wanted = self.device.startswith("cuda") or self.amp == "fp16"
        if cuda_wanted and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r}, amp={self.amp!r} need CUDA, which this machine lacks; "
                             f"use --device cpu (and --amp bf16 or none)")


@dataclass
class RunResult:
    out_dir: Path
    history: list[dict[str, float]]
    metrics: ClassificationMetrics


EpochCallback = Callable[[dict[str, float]], None]


def train(
    config: TrainConfig, *, resume: bool = False, progress: bool = True,
    callbacks: list[EpochCallback] | None = None,
) -> RunResult:
    """Train ``config.model`` and return its history and final test metrics.

    ``resume=True`` continues the run in ``config.out_dir`` from its last checkpoint.
    ``callbacks`` are called with each epoch's history row (e.g. a live plot).
    """
    cfg = config.resolved()
    out_dir = Path(cfg.out_dir)
    checkpoint = _resume_checkpoint(cfg, out_dir) if resume else None
    if not resume and (out_dir / "checkpoint.pt").exists():
        raise ValueError(f"{out_dir} already holds a run; pass --resume to continue it, or choose another --out")
    rank, world = _init_distributed()
    device = resolve_device(cfg.device)
    if cfg.batch_size % world:
        raise ValueError(f"batch size {cfg.batch_size} must divide evenly over {world} processes")

    info = dataset_info(cfg.dataset)
    train_set = load_dataset(cfg.dataset, train=True, data_dir=cfg.data_dir,
                             transform=train_transform(info, cfg.augmentation))
    test_set = load_dataset(cfg.dataset, train=False, data_dir=cfg.data_dir, transform=eval_transform(info))
    if cfg.train_subset:
        train_set = Subset(train_set, range(min(cfg.train_subset, len(train_set))))
    if cfg.test_subset:
        test_set = Subset(test_set, range(min(cfg.test_subset, len(test_set))))
    teacher = _prepare_teacher(cfg, info.num_classes, info.in_chans, progress) if cfg.teacher else None

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, info.num_classes, info.in_chans, cfg.model_overrides).to(device)
    cnn = not cfg.is_student
    if cnn and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    criterion = DistillationLoss(teacher.to(device) if teacher else None, cfg.distill or "none",
                                 alpha=cfg.distill_alpha, temperature=cfg.temperature)
    mixer = BatchMixer(cfg.mix, alpha=cfg.mix_alpha, prob=cfg.mix_prob)

    local_batch = cfg.batch_size // world
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    loader_rng = torch.Generator()
    train_loader = DataLoader(train_set, batch_size=local_batch, sampler=sampler, drop_last=True,
                              num_workers=cfg.num_workers, generator=loader_rng, pin_memory=device.type == "cuda")
    if len(train_loader) == 0:
        raise ValueError(f"batch size {cfg.batch_size} is larger than the {len(train_set)} training images")
    test_loader = DataLoader(Subset(test_set, range(rank, len(test_set), world)), batch_size=256,
                             num_workers=cfg.num_workers)

    groups = parameter_groups(model, cfg.weight_decay, cfg.decay)
    if cfg.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    else:
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    steps_per_epoch = len(train_loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(cfg.warmup_epochs * steps_per_epoch, cfg.epochs * steps_per_epoch))
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    amp_dtype = _amp_dtype(cfg.amp)

    history: list[dict[str, float]] = []
    start_epoch = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        history, start_epoch = checkpoint["history"], checkpoint["epoch"]

    ddp_model = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    step_model = torch.compile(ddp_model) if cfg.compile else ddp_model
    is_writer = rank == 0
    if is_writer:
        write_json(out_dir / "config.json", dataclasses.asdict(cfg))
        _write_status(out_dir, "running", start_epoch, cfg.epochs)

    def save(epoch: int, complete: bool) -> None:
        save_checkpoint(out_dir / "checkpoint.pt", {
            "kind": "student" if cfg.is_student else "teacher", "model_name": cfg.model,
            "model_overrides": cfg.model_overrides, "dataset": cfg.dataset, "num_classes": info.num_classes,
            "in_chans": info.in_chans, "epoch": epoch, "complete": complete, "config": dataclasses.asdict(cfg),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "rng": {"seed": cfg.seed, "next_epoch": epoch}, "history": history,
        })

    metrics = None
    for epoch in range(start_epoch, cfg.epochs):
        seed_epoch(cfg.seed, epoch, loader_rng)
        sampler.set_epoch(epoch)
        started = time.perf_counter()
        step_model.train()
        sums = torch.zeros(4, dtype=torch.float64)  # loss * n, top-1 hits, top-5 hits, n
        bar = tqdm(train_loader, desc=f"{cfg.model} epoch {epoch + 1}/{cfg.epochs}",
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
                kept = f"the checkpoint of epoch {epoch} is kept in {out_dir}" if epoch else "no checkpoint was written yet"
                if is_writer:
                    _write_status(out_dir, "diverged", epoch, cfg.epochs)
                raise TrainingDiverged(
                    f"loss became {loss_value} at epoch {epoch + 1}, step {step + 1} (lr "
                    f"{scheduler.get_last_lr()[0]:.4g}); {kept}. Try a lower --lr, or --amp none.")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            logits = _mean_logits(outputs).detach().float()
            top1, top5 = topk_correct(logits, batch.dominant_labels)
            sums += torch.tensor([loss_value * len(labels), top1, top5, len(labels)], dtype=torch.float64)
            bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)  # drawn at the bar's own pace
        _all_reduce(sums)
        train_seconds = time.perf_counter() - started
        metrics = evaluate(model, test_loader, info.num_classes, device=device, amp=cfg.amp)
        seconds = time.perf_counter() - started
        row = {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0],
               "train_loss": float(sums[0] / sums[3]), "train_top1": float(sums[1] / sums[3]),
               "train_top5": float(sums[2] / sums[3]), "val_loss": metrics.loss, "val_top1": metrics.top1,
               "val_top5": metrics.top5, "seconds": seconds, "images_per_second": float(sums[3]) / train_seconds}
        history.append(row)
        if is_writer:
            save(epoch + 1, complete=epoch + 1 == cfg.epochs)
            write_json(out_dir / "history.json", history)
            write_csv(out_dir / "history.csv", history)
            _write_status(out_dir, "running", epoch + 1, cfg.epochs)
        for callback in callbacks or []:
            callback(row)
    if metrics is None:  # resumed a finished run: nothing left to train
        metrics = evaluate(model, test_loader, info.num_classes, device=device, amp=cfg.amp)
    if is_writer:
        write_json(out_dir / "metrics.json", {"model": cfg.model, "dataset": cfg.dataset, **metrics.as_dict()})
        _write_status(out_dir, "complete", cfg.epochs, cfg.epochs)
    return RunResult(out_dir, history, metrics)


def build_model(name: str, num_classes: int, in_chans: int, overrides: dict[str, Any] | None = None) -> nn.Module:
    """A student (``create_model``) or a teacher (``create_teacher``) by name."""
    if name in MODEL_CONFIGS:
        return create_model(name, num_classes=num_classes, in_chans=in_chans, **(overrides or {}))
    return create_teacher(name, num_classes=num_classes, in_chans=in_chans)


def model_from_checkpoint(checkpoint: dict[str, Any]) -> nn.Module:
    """Rebuild the trained model a checkpoint holds, in eval mode."""
    model = build_model(checkpoint["model_name"], checkpoint["num_classes"], checkpoint["in_chans"],
                        checkpoint["model_overrides"])
    model.load_state_dict(checkpoint["model"])
    return model.eval()


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, num_classes: int, *, device: torch.device | str = "cpu",
             amp: str = "none") -> ClassificationMetrics:
    """Table 3's metrics on ``loader`` (summed over processes when distributed)."""
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


def _mean_logits(outputs: Tensor | tuple[Tensor, Tensor]) -> Tensor:
    return (outputs[0] + outputs[1]) / 2 if isinstance(outputs, tuple) else outputs


def _amp_dtype(amp: str) -> torch.dtype | None:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)


def _write_status(out_dir: Path, status: str, epochs_done: int, epochs: int) -> None:
    write_json(out_dir / "run.json", {"status": status, "epochs_done": epochs_done, "epochs": epochs})


# Where a run's files live and how fast its data loads change nothing it learns.
# Where a run lives and what runs it are not what it is: a run made on a GPU box is the same run
# opened on a laptop, and an artifacts folder moved elsewhere holds the same runs.
NOT_IDENTITY = ("out_dir", "num_workers", "data_dir", "device")


def run_identity(settings: dict[str, Any]) -> dict[str, Any]:
    """What makes a run the run it is: a resolved config's settings without location and
    device, with a teacher checkpoint named by its run's folder (whose name carries that
    run's own identity) rather than by its path. Reuse, resume and the notebooks' run
    folders (``notebooks.settings_key``) all compare this."""
    identity = {k: v for k, v in settings.items() if k not in NOT_IDENTITY}
    if identity.get("teacher") and identity["teacher"] not in list_teachers():
        identity["teacher"] = Path(identity["teacher"]).parent.name
    return identity


def _config_differences(saved: dict[str, Any], cfg: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """Settings (name -> (saved, asked)) in which a resolved config differs from a saved run's."""
    saved_identity, asked = run_identity(saved), run_identity(dataclasses.asdict(cfg))
    return {k: (saved_identity.get(k), v) for k, v in asked.items() if saved_identity.get(k) != v}


def _resume_checkpoint(cfg: TrainConfig, out_dir: Path) -> dict[str, Any]:
    checkpoint = load_checkpoint(out_dir / "checkpoint.pt")
    differences = _config_differences(checkpoint["config"], cfg)
    if differences:
        listed = "; ".join(f"{k}: run has {old!r}, asked {new!r}" for k, (old, new) in differences.items())
        raise ValueError(f"--resume continues the run in {out_dir} as it was configured, but {listed}")
    return checkpoint


def _prepare_teacher(cfg: TrainConfig, num_classes: int, in_chans: int, progress: bool) -> nn.Module:
    """Load the teacher checkpoint, or train the named teacher once into OUT/teacher."""
    assert cfg.teacher is not None
    if cfg.teacher in list_teachers():
        teacher_dir = Path(cfg.out_dir) / "teacher"
        path = teacher_dir / "checkpoint.pt"
        checkpoint = load_checkpoint(path) if path.is_file() else None
        if checkpoint is None or not checkpoint["complete"]:
            teacher_config = TrainConfig(
                model=cfg.teacher, dataset=cfg.dataset, profile=cfg.profile, out_dir=str(teacher_dir),
                data_dir=cfg.data_dir, augmentation=cfg.augmentation, train_subset=cfg.train_subset, test_subset=cfg.test_subset,
                num_workers=cfg.num_workers, device=cfg.device, amp=cfg.amp, seed=cfg.seed)
            train(teacher_config, resume=path.is_file(), progress=progress)
            if dist.is_initialized():
                dist.barrier()  # rank 0 writes the teacher's checkpoint; the others read it next
            checkpoint = load_checkpoint(path)
    else:
        path = Path(cfg.teacher)
        checkpoint = load_checkpoint(path)
    found = (checkpoint["dataset"], checkpoint["num_classes"], checkpoint["in_chans"])
    if found != (cfg.dataset, num_classes, in_chans):
        raise ValueError(
            f"teacher checkpoint {path} was trained on {found[0]} ({found[1]} classes, {found[2]} channel(s)) "
            f"but the student trains on {cfg.dataset} ({num_classes} classes, {in_chans} channel(s)); "
            f"train a teacher on {cfg.dataset} (titn-lite train --model small_cnn --dataset {cfg.dataset})")
    if not checkpoint["complete"]:
        raise CheckpointError(f"teacher checkpoint {path} is from an unfinished run; finish it with --resume")
    return model_from_checkpoint(checkpoint)


def _init_distributed() -> tuple[int, int]:
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
        torch.cuda.set_device(device)
    return device


def train_or_load(config: TrainConfig, *, progress: bool = True,
                  callbacks: list[EpochCallback] | None = None) -> RunResult:
    """The finished run in ``config.out_dir`` if there is one, else train it (resuming a
    partial run). Notebooks share runs this way: a later notebook reuses an earlier
    notebook's teacher, or makes a quick one itself when run alone."""
    out_dir = Path(config.out_dir)
    if (out_dir / "metrics.json").is_file():
        # The run's JSON files say all this; the checkpoint (weights, optimizer) is left for
        # whoever needs the model.
        saved_config = json.loads((out_dir / "config.json").read_text())
        differences = sorted(_config_differences(saved_config, config.resolved()))
        if differences:
            raise ValueError(f"{out_dir} holds a finished run with other settings ({', '.join(differences)}); "
                             f"delete it or choose another out_dir")
        return RunResult(out_dir, json.loads((out_dir / "history.json").read_text()), _saved_metrics(out_dir))
    return train(config, resume=(out_dir / "checkpoint.pt").is_file(), progress=progress, callbacks=callbacks)


def _saved_metrics(out_dir: Path) -> ClassificationMetrics:
    saved = json.loads((out_dir / "metrics.json").read_text())
    saved["confusion"] = torch.tensor(saved["confusion"])
    return ClassificationMetrics(**{k: saved[k] for k in ClassificationMetrics.__dataclass_fields__})
