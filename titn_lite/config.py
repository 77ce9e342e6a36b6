"""What a run is: its settings (``TrainConfig``), its identity, and its folder's files.

Notebook 02 trains its first run through ``titn_lite.runs``, which starts, resumes and
reuses runs; this module is what that layer and the engine agree on:

- ``TrainConfig`` says everything a run needs; ``resolved()`` fills each ``None`` from the
  profile and validates, once: the result is a ``ResolvedConfig``, which resolves to itself,
  so the resolved settings are carried along instead of being worked out again.
- ``identity()`` says what makes a run the run it is: its settings without where it lives
  and what device runs it (a run made on a GPU box is the same run opened on a laptop, and
  an artifacts folder moved elsewhere holds the same runs), with a teacher named by its own
  run's identity rather than by its path. The folder key, the reuse check and the resume
  check all compare this one thing.
- ``RunFolder`` names a run folder's files once, writes them (the engine calls its
  ``write_*`` methods through ``training.RunWriter``) and reads them back; the checkpoint's
  contents are written (``training_checkpoint``) and read (``model_from_checkpoint``,
  ``teacher_from_checkpoint``) here too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, get_args

import torch
from torch import nn

from titn_lite.checkpoints import CheckpointError, load_checkpoint, save_checkpoint, write_csv, write_json
from titn_lite.data import DEFAULT_DATASET, IMG_SIZE, Augmentation, dataset_info, list_datasets
from titn_lite.devices import DEVICES, check_device
from titn_lite.losses import DistillMode, check_distill_alpha
from titn_lite.metrics import ClassificationMetrics
from titn_lite.mixing import MixMode, check_alpha, check_mix_prob
from titn_lite.models import MODEL_CONFIGS, list_models, model_config, validate_config
from titn_lite.profiles import DEFAULT_PROFILE, get_profile, list_profiles
from titn_lite.teachers import build_model, list_teachers


def option(default: Any = None, help: str | Callable[[], str] | None = None, *, flag: str | None = None,
           choices: tuple[str, ...] | None = None, metavar: str | None = None, cli: bool = True,
           required: bool = False) -> Any:
    """A ``TrainConfig`` field with what the CLI says about it: ``titn-lite train``'s options
    are generated from these (flag ``--field-name`` unless given), so a setting's default,
    choice list and help text are written once. ``help`` may be a function, for a text that
    lists what is registered when the CLI is built."""
    metadata = {"help": help, "flag": flag, "choices": choices, "metavar": metavar, "cli": cli, "required": required}
    if required:
        return field(metadata=metadata)
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs. ``None`` fields take the profile's value (``resolved()``)."""

    model: str = option(required=True, metavar="NAME",
                        help=lambda: f"students: {', '.join(list_models())}; teachers: {', '.join(list_teachers())}")
    _: KW_ONLY  # every other setting by name: TrainConfig("titn", epochs=3)
    dataset: str = option(DEFAULT_DATASET, lambda: f"one of {', '.join(list_datasets())}")
    data_dir: str | None = option(None, "folder holding the dataset's files (default: $TITN_LITE_DATA or "
                                        "~/.cache/titn-lite/data)")
    # A teacher name (its run is trained, or reused, in OUT/teacher), a run folder or a checkpoint.
    teacher: str | None = option(None, "teacher for a distilled student: a teacher name (trained first into "
                                       "OUT/teacher, or reused), a teacher's run folder or its checkpoint (default: "
                                       "the profile's teacher)", metavar="NAME|CKPT")
    profile: str = option(DEFAULT_PROFILE, lambda: f"one of {', '.join(list_profiles())}")
    out_dir: str = option("runs/latest", "run directory (default: runs/MODEL-DATASET-PROFILE)", flag="--out")
    epochs: int | None = option(None, "epochs to train (default: the profile's)")
    batch_size: int | None = option(None, "global batch size (split over torchrun processes)")
    lr: float | None = option(None, "peak learning rate (default: the profile's)")
    warmup_epochs: float | None = option(None, "epochs of linear warm-up before the cosine decay (default: the "
                                                    "profile's)")
    optimizer: str | None = option(None, "sgd (the paper's) or adamw (default: the profile's)",
                                   choices=("sgd", "adamw"))
    momentum: float = option(0.9, cli=False)
    weight_decay: float | None = option(None, "weight decay (default: the profile's)")
    # Which parameters decay: "all", or "weights" (matrices and kernels only: no decay on biases,
    # norms, tokens and position embeddings, DeiT's and timm's rule). Default: weights under AdamW,
    # all under SGD (the paper does not say; PyTorch's SGD decays everything it is given).
    decay: str | None = option(None, "which parameters decay: weights (not biases, norms, tokens, position "
                                     "embeddings; default under adamw) or all (default under sgd)",
                               choices=("all", "weights"))
    mix: str | None = option(None, "cutmix, mixup or none (default: the profile's)", choices=get_args(MixMode))
    mix_alpha: float | None = option(None, "lambda ~ Beta(alpha, alpha) (default: the profile's; the paper's 0.5 "
                                           "at --profile paper)")
    mix_prob: float = option(1.0, "probability of mixing a batch")
    distill: str | None = option(None, "hard, soft or none (default: hard for deit/titn/titn_large_patch)",
                                 choices=get_args(DistillMode))
    distill_alpha: float = option(0.5, "weight of the class-token loss; 1 - alpha weights the teacher term (eq. 10)")
    temperature: float = option(3.0, "soft distillation's temperature")
    augmentation: str | None = option(None, "paper, light or none (default: the profile's)",
                                      choices=get_args(Augmentation))
    # Where training images are augmented. The batch path draws each image's parameters as
    # torchvision's transforms do and applies them on the run's device (titn_lite.augment); the
    # loader path is torchvision itself, one PIL image at a time in worker processes: the
    # reference, which a GPU outruns (an epoch waited on it: issue #32).
    data_path: str = option("batch", "where training images are augmented: batch (whole batches on the run's "
                                     "device; the default) or loader (one image at a time in DataLoader workers, "
                                     "torchvision's transforms: the reference)", choices=("batch", "loader"))
    train_subset: int | None = option(None, "train on the first N training images")
    test_subset: int | None = option(None, "evaluate on the first N test images")
    # Evaluating costs about a third of an epoch's training on 2,000 test images; a run whose
    # learning curve nobody reads (an ablation's seeds) evaluates only its last epoch. 1 (every
    # epoch) leaves a run's identity as before.
    evaluate_every: int = option(1, "evaluate on the test images every N epochs (the last epoch always)")
    # Semi-supervised distillation: images the student sees without their labels, so only the
    # teacher's term learns from them (losses.UNLABELLED). 0 (none) leaves a run's identity as before.
    unlabelled: int = option(0, "also train on the N training images after the labelled ones (--train-subset), "
                                "without their labels: only the teacher labels them (a distilled student)")
    # A student's config fields, e.g. {"depth": 4}; the CLI's --override KEY=INT.
    model_overrides: dict[str, Any] = option({}, "change a student's config field, e.g. --override depth=6",
                                             flag="--override", metavar="KEY=INT")
    num_workers: int | None = option(None, "DataLoader worker processes (--data-path loader; the batch path runs "
                                               "in the main process)", flag="--workers")
    device: str = option("auto", "auto, cpu, cuda or cuda:N", choices=DEVICES)
    # None: bf16 autocast where the paper's recipe runs on CUDA (what a GPU user expects), none elsewhere.
    amp: str | None = option(None, "none, bf16 or fp16 (fp16: CUDA only; default: bf16 for --profile paper on "
                                   "CUDA, else none)", choices=("none", "bf16", "fp16"))
    compile: bool = option(False, "torch.compile the model")
    seed: int = option(0, "seeds the weights, the data order, augmentation and mixing")
    # A paper-profile teacher's checkpoint is about 1 GB: written every epoch of 600 it costs
    # minutes; the last epoch's and one on SIGTERM are always written, so a stopped run resumes.
    checkpoint_every: int = option(1, "write the checkpoint every N epochs (always the last, and on SIGTERM)")

    @property
    def is_student(self) -> bool:
        return self.model in MODEL_CONFIGS

    @property
    def on_cuda(self) -> bool:
        """Whether the run trains on a GPU: asked for, or ``auto`` on a machine that has one."""
        return self.device.startswith("cuda") or (self.device == "auto" and torch.cuda.is_available())

    @property
    def is_distilled(self) -> bool:
        return self.is_student and MODEL_CONFIGS[self.model].distilled

    def resolved(self) -> ResolvedConfig:
        """A copy with every ``None`` filled from the profile; validates everything first."""
        self.validate()
        profile = get_profile(self.profile)
        student = self.is_student
        mixes = dataset_info(self.dataset).recipe not in profile.unmixed_recipes
        optimizer = self.optimizer or (profile.optimizer if student else "sgd")
        distill = self.distill or ("hard" if self.is_distilled else "none")
        teacher = (self.teacher or profile.teacher) if self.is_distilled and self.distill != "none" else self.teacher
        if distill == "none":
            teacher = None
        elif teacher and teacher not in list_teachers():
            # A checkpoint, or a run folder standing for its checkpoint: recorded absolute, so the
            # same teacher reads the same from any folder (a notebook's "../artifacts/..." and
            # the runner's absolute path).
            path = Path(teacher)
            teacher = str((RunFolder(path).checkpoint_path if path.is_dir() else path).resolve())
        filled = ResolvedConfig(**{
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
            "epochs": self.epochs or (profile.epochs if student else profile.teacher_epochs),
            "batch_size": self.batch_size or profile.batch_size,
            "lr": self.lr or (profile.lr if student else profile.teacher_lr),
            "warmup_epochs": self.warmup_epochs if self.warmup_epochs is not None else profile.warmup_epochs,
            "augmentation": self.augmentation or profile.augmentation,
            "mix": self.mix or ((profile.mix if student else profile.teacher_mix) if mixes else "none"),
            "mix_alpha": self.mix_alpha if self.mix_alpha is not None else profile.mix_alpha,
            "optimizer": optimizer,
            "weight_decay": self.weight_decay if self.weight_decay is not None else (
                profile.weight_decay if student else 1e-4),
            "decay": self.decay or ("weights" if optimizer == "adamw" else "all"),
            "train_subset": self.train_subset or profile.train_subset,
            "test_subset": self.test_subset or profile.test_subset,
            "num_workers": self.num_workers if self.num_workers is not None else profile.num_workers,
            "distill": distill,
            "teacher": teacher,
            "model_overrides": {**(profile.model_overrides if student else {}), **self.model_overrides},
            "amp": self.amp or ("bf16" if profile.name == "paper" and self.on_cuda else "none"),
        })
        if filled.unlabelled and filled.mix != "none":
            # A mixed image's class term would learn the labelled half's label for the whole image.
            raise ValueError(f"unlabelled images cannot be mixed (mix {filled.mix!r}: half of a mixed image's label "
                             f"would be unknown); add --mix none")
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
        for option_field in dataclasses.fields(self):
            valid, value = option_field.metadata.get("choices"), getattr(self, option_field.name)
            unset = value is None and option_field.default is None  # None: the profile's
            if option_field.name == "device":
                check_device(value)
            elif valid and not unset and value not in valid:
                raise ValueError(f"unknown {option_field.name} {value!r}; valid: {', '.join(valid)}")
        if self.mix_alpha is not None:
            check_alpha(self.mix_alpha)
        check_mix_prob(self.mix_prob)
        check_distill_alpha(self.distill_alpha)
        for name in ("epochs", "batch_size", "train_subset", "test_subset", "evaluate_every"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.unlabelled, int) or isinstance(self.unlabelled, bool) or self.unlabelled < 0:
            raise ValueError(f"unlabelled must be a whole number of images (0 for none), got {self.unlabelled!r}")
        if self.unlabelled and (not self.is_distilled or self.distill == "none"):
            why = "learns from no teacher" if self.is_distilled else "has no distillation token"
            raise ValueError(f"unlabelled images are labelled only by a teacher: {self.model} {why}; use one of "
                             f"{', '.join(n for n, c in MODEL_CONFIGS.items() if c.distilled)} with distill hard "
                             f"or soft, or unlabelled 0")
        if self.unlabelled and not (self.train_subset or get_profile(self.profile).train_subset):
            raise ValueError("unlabelled images are the ones after the labelled ones, so --unlabelled needs "
                             "--train-subset (how many images keep their labels)")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.distill in ("hard", "soft") and not self.is_distilled:
            raise ValueError(f"{self.model} has no distillation token, so it cannot be distilled; "
                             f"use one of {', '.join(n for n, c in MODEL_CONFIGS.items() if c.distilled)}, "
                             f"or --distill none")
        if self.teacher and not self.is_student:
            raise ValueError(f"{self.model} is a teacher; teachers train without a teacher")
        if self.teacher and self.teacher not in teachers and not (
                Path(self.teacher).is_file() or RunFolder(self.teacher).has_checkpoint):
            raise ValueError(f"teacher {self.teacher!r} is neither a teacher name ({', '.join(teachers)}) "
                             f"nor an existing checkpoint file or run folder")
        if self.model_overrides and not self.is_student:
            raise ValueError(f"model overrides apply to students only, not to the teacher {self.model}")
        cuda_wanted = self.device.startswith("cuda") or self.amp == "fp16"
        if not isinstance(self.checkpoint_every, int) or isinstance(self.checkpoint_every, bool) \
                or self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be a positive whole number of epochs, got {self.checkpoint_every!r}")
        if cuda_wanted and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r}, amp={self.amp!r} need CUDA, which this machine lacks; "
                             f"use --device cpu (and --amp bf16 or none)")

    def identity(self) -> dict[str, Any]:
        """What makes this run the run it is (see the module's docstring)."""
        return settings_identity(dataclasses.asdict(self.resolved()))

    def key(self) -> str:
        """Eight hex digits naming the run's identity: runs with other settings (an older
        profile, say) get other folders instead of clashing or being overwritten. A teacher
        given as a checkpoint is named by its run's identity, which may mean reading that
        checkpoint (a run folder without ``identity.json``)."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:8]

    def at(self, out_dir: str | Path) -> TrainConfig:
        """The same run, placed in ``out_dir`` (still resolved if this config was)."""
        return dataclasses.replace(self, out_dir=str(out_dir))


@dataclass(frozen=True)
class ResolvedConfig(TrainConfig):
    """A ``TrainConfig`` whose every setting is filled in and validated: what a run folder's
    ``config.json`` holds and what the engine trains. Move it with ``at``; to change a setting,
    change the ``TrainConfig`` it came from and resolve again (a ``dataclasses.replace`` of a
    resolved config keeps the values the old settings filled in)."""

    def resolved(self) -> ResolvedConfig:
        return self


# Where a run's files live, how fast its data loads and what device runs it change nothing it learns.
NOT_IDENTITY = ("out_dir", "num_workers", "data_dir", "device", "checkpoint_every")


def settings_identity(settings: dict[str, Any]) -> dict[str, Any]:
    """A resolved config's settings (``dataclasses.asdict``) reduced to the run's identity."""
    identity = {k: v for k, v in settings.items() if k not in NOT_IDENTITY}
    if not identity.get("unlabelled"):  # added later: a run without unlabelled images keeps its old identity
        identity.pop("unlabelled", None)
    if identity.get("evaluate_every", 1) == 1:  # added later: a run evaluated every epoch keeps its old identity
        identity.pop("evaluate_every", None)
    # Added later: a run on the path its recipe had before (the paper's: the loader; the others:
    # the batch) keeps its old identity.
    before = "loader" if identity.get("augmentation") == "paper" else "batch"
    if identity.get("data_path", before) == before:
        identity.pop("data_path", None)
    if identity.get("teacher") and identity["teacher"] not in list_teachers():
        identity["teacher"] = teacher_identity(Path(identity["teacher"]))
    return identity


def teacher_identity(checkpoint: Path) -> dict[str, Any] | str:
    """A teacher checkpoint's identity: that of the run that made it (recorded in its run
    folder, else read from the checkpoint, which carries its run's config); for a checkpoint
    that no longer exists where a legacy run recorded it, its folder's name."""
    folder = RunFolder(checkpoint.parent)
    if checkpoint.name == RunFolder.CHECKPOINT and (folder.has(RunFolder.IDENTITY) or folder.has(RunFolder.CONFIG)):
        return folder.identity()
    if checkpoint.is_file():
        return settings_identity(load_checkpoint(checkpoint)["config"])
    return checkpoint.parent.name


def identity_differences(saved: dict[str, Any], asked: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Settings (name -> (saved, asked)) in which two identities differ."""
    return {k: (saved.get(k), v) for k, v in asked.items() if saved.get(k) != v}


def model_from_checkpoint(checkpoint: dict[str, Any]) -> nn.Module:
    """Rebuild the trained model a checkpoint holds, in eval mode."""
    facts = CheckpointFacts.of(checkpoint)
    model = build_model(facts.model_name, facts.num_classes, facts.in_chans, checkpoint["model_overrides"])
    model.load_state_dict(checkpoint["model"])
    return model.eval()


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
    IDENTITY: ClassVar[str] = "identity.json"
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
        """The identity recorded when the run started (a run from before identities were
        recorded: worked out from its config)."""
        if self.has(self.IDENTITY):
            return self._read(self.IDENTITY)
        return settings_identity(self.config() if self.has(self.CONFIG) else self.load_checkpoint()["config"])

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

@dataclass(frozen=True)
class CheckpointFacts:
    """What a checkpoint says of the model it holds, read without rebuilding the model."""

    model_name: str
    dataset: str
    num_classes: int
    in_chans: int
    complete: bool  # the run's last epoch, not a checkpoint to resume from

    @classmethod
    def of(cls, checkpoint: dict[str, Any]) -> CheckpointFacts:
        return cls(checkpoint["model_name"], checkpoint["dataset"], checkpoint["num_classes"], checkpoint["in_chans"],
                   checkpoint["complete"])


def training_checkpoint(cfg: ResolvedConfig, *, epoch: int, complete: bool, model: nn.Module,
                        optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any,
                        history: list[dict[str, float]]) -> dict[str, Any]:
    """What a run folder's checkpoint holds after ``epoch`` epochs: enough to rebuild the
    model (``model_from_checkpoint``), check it as a teacher (``teacher_from_checkpoint``) and
    resume the run exactly (optimizer, schedule, scaler, history; each epoch's random
    streams are seeded from (seed, epoch))."""
    info = dataset_info(cfg.dataset)
    return {
        "kind": "student" if cfg.is_student else "teacher", "model_name": cfg.model,
        "model_overrides": cfg.model_overrides, "dataset": cfg.dataset, "num_classes": info.num_classes,
        "in_chans": info.in_chans, "epoch": epoch, "complete": complete, "config": dataclasses.asdict(cfg),
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
        "rng": {"seed": cfg.seed, "next_epoch": epoch}, "history": history,
    }


def restore_training(checkpoint: dict[str, Any], *, model: nn.Module, optimizer: torch.optim.Optimizer,
                     scheduler: Any, scaler: Any) -> tuple[list[dict[str, float]], int]:
    """Load what ``training_checkpoint`` saved into a run being resumed; returns its history
    and the number of epochs done."""
    model.load_state_dict(checkpoint["model"])
    kernels = [{key: group.get(key) for key in ("fused", "foreach")} for group in optimizer.param_groups]
    optimizer.load_state_dict(checkpoint["optimizer"])
    for group, kernel in zip(optimizer.param_groups, kernels):
        group.update(kernel)  # the step kernel this torch chose, not the one of the torch that saved
    scheduler.load_state_dict(checkpoint["scheduler"])
    scaler.load_state_dict(checkpoint["scaler"])
    return checkpoint["history"], checkpoint["epoch"]


def teacher_from_checkpoint(student: ResolvedConfig, checkpoint_path: Path) -> nn.Module:
    """The teacher model in ``checkpoint_path``, checked against the student's data."""
    checkpoint = load_checkpoint(checkpoint_path)
    facts = CheckpointFacts.of(checkpoint)
    info = dataset_info(student.dataset)
    found = (facts.dataset, facts.num_classes, facts.in_chans)
    if found != (student.dataset, info.num_classes, info.in_chans):
        raise ValueError(
            f"teacher checkpoint {checkpoint_path} was trained on {found[0]} ({found[1]} classes, {found[2]} "
            f"channel(s)) but the student trains on {student.dataset} ({info.num_classes} classes, "
            f"{info.in_chans} channel(s)); train a teacher on {student.dataset} "
            f"(titn-lite train --model small_cnn --dataset {student.dataset})")
    if not facts.complete:
        raise CheckpointError(f"teacher checkpoint {checkpoint_path} is from an unfinished run; finish it with --resume")
    return model_from_checkpoint(checkpoint)


def cli_options() -> list[dataclasses.Field]:
    """The ``TrainConfig`` fields ``titn-lite train`` offers as options, in order."""
    return [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("cli")]
