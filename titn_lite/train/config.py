"""What a run is: every setting it needs (``TrainConfig``), filled in and checked once.

Notebook 02 trains its first run through ``titn_lite.train.runs``, which starts, resumes and
reuses runs; ``TrainConfig`` is what that layer, the engine and the CLI agree on.
``resolved()`` fills each ``None`` from the profile and validates, once: the result is a
``ResolvedConfig``, which resolves to itself, so the resolved settings are carried along
instead of being worked out again. ``identity()`` and ``key()`` say which run it is
(``titn_lite.train.identity``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any, get_args

import torch

from titn_lite.data.datasets import DEFAULT_DATASET, IMG_SIZE, Augmentation, dataset_info, list_datasets
from titn_lite.data.mixing import MixMode, check_alpha, check_mix_prob
from titn_lite.models.students import MODEL_CONFIGS, list_models, model_config, validate_config
from titn_lite.models.teachers import list_teachers
from titn_lite.system.devices import DEVICES, check_device, wants_cuda
from titn_lite.system.usage import UsageError, check_positive_int
from titn_lite.train.identity import identity_key, settings_identity
from titn_lite.train.losses import DistillMode, check_distill_alpha
from titn_lite.train.profiles import DEFAULT_PROFILE, get_profile, list_profiles
from titn_lite.train.run_folder import RunFolder


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
    # torchvision's transforms do and applies them on the run's device (titn_lite.data.augment); the
    # loader path is torchvision itself, one PIL image at a time in worker processes: the
    # reference, which a GPU outruns (an epoch waited on it: issue #32).
    data_path: str = option("batch", "where training images are augmented: batch (whole batches on the run's "
                                     "device; the default) or loader (one image at a time in DataLoader workers, "
                                     "torchvision's transforms: the reference)", choices=("batch", "loader"))
    train_subset: int | None = option(None, "train on the first N training images")
    # The validation split: the training split's last N images, never trained on. The history's
    # val_ columns, the best epoch and any choice about a run read it; the test split is read once,
    # after the last epoch, for the run's result (pipeline.TrainingSplit).
    val_images: int | None = option(None, "hold out the training split's last N images for validation: every "
                                          "per-epoch figure and choice reads them, and the test images are read "
                                          "once, after the last epoch; 0 for none (default: the profile's)")
    test_subset: int | None = option(None, "test on the first N test images")
    # Evaluating costs about a third of an epoch's training on 2,000 images; a run whose learning
    # curve nobody reads (an ablation's seeds) evaluates only its last epoch. 1 (every epoch)
    # leaves a run's identity as before.
    evaluate_every: int = option(1, "evaluate on the validation images every N epochs (the last epoch always)")
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
        return wants_cuda(self.device)

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
            "val_images": self.val_images if self.val_images is not None else profile.val_images,
            "test_subset": self.test_subset or profile.test_subset,
            "num_workers": self.num_workers if self.num_workers is not None else profile.num_workers,
            "distill": distill,
            "teacher": teacher,
            "model_overrides": {**(profile.model_overrides if student else {}), **self.model_overrides},
            "amp": self.amp or ("bf16" if profile.name == "paper" and self.on_cuda else "none"),
        })
        if filled.unlabelled and filled.mix != "none":
            # A mixed image's class term would learn the labelled half's label for the whole image.
            raise UsageError(f"unlabelled images cannot be mixed (mix {filled.mix!r}: half of a mixed image's label "
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
            raise UsageError(f"unknown model {self.model!r}; valid students: {', '.join(students)}; "
                             f"valid teachers: {', '.join(teachers)}")
        dataset_info(self.dataset)
        get_profile(self.profile)
        for option_field in dataclasses.fields(self):
            valid, value = option_field.metadata.get("choices"), getattr(self, option_field.name)
            unset = value is None and option_field.default is None  # None: the profile's
            if option_field.name == "device":
                check_device(value)
            elif valid and not unset and value not in valid:
                raise UsageError(f"unknown {option_field.name} {value!r}; valid: {', '.join(valid)}")
        if self.mix_alpha is not None:
            check_alpha(self.mix_alpha)
        check_mix_prob(self.mix_prob)
        check_distill_alpha(self.distill_alpha)
        for name in ("epochs", "batch_size", "train_subset", "test_subset", "evaluate_every", "checkpoint_every"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        check_positive_int("unlabelled", self.unlabelled, unit="images (0 for none)", minimum=0)
        if self.val_images is not None:
            check_positive_int("val_images", self.val_images, unit="images (0 for no validation split)", minimum=0)
        if self.unlabelled and (not self.is_distilled or self.distill == "none"):
            why = "learns from no teacher" if self.is_distilled else "has no distillation token"
            raise UsageError(f"unlabelled images are labelled only by a teacher: {self.model} {why}; use one of "
                             f"{', '.join(n for n, c in MODEL_CONFIGS.items() if c.distilled)} with distill hard "
                             f"or soft, or unlabelled 0")
        if self.unlabelled and not (self.train_subset or get_profile(self.profile).train_subset):
            raise UsageError("unlabelled images are the ones after the labelled ones, so --unlabelled needs "
                             "--train-subset (how many images keep their labels)")
        if self.lr is not None and not self.lr > 0:
            raise UsageError(f"lr must be positive, got {self.lr}")
        if self.distill in ("hard", "soft") and not self.is_distilled:
            raise UsageError(f"{self.model} has no distillation token, so it cannot be distilled; "
                             f"use one of {', '.join(n for n, c in MODEL_CONFIGS.items() if c.distilled)}, "
                             f"or --distill none")
        if self.teacher and not self.is_student:
            raise UsageError(f"{self.model} is a teacher; teachers train without a teacher")
        if self.teacher and self.teacher not in teachers and not (
                Path(self.teacher).is_file() or RunFolder(self.teacher).has_checkpoint):
            raise UsageError(f"teacher {self.teacher!r} is neither a teacher name ({', '.join(teachers)}) "
                             f"nor an existing checkpoint file or run folder")
        if self.model_overrides and not self.is_student:
            raise UsageError(f"model overrides apply to students only, not to the teacher {self.model}")
        cuda_wanted = self.device.startswith("cuda") or self.amp == "fp16"
        if cuda_wanted and not torch.cuda.is_available():
            raise UsageError(f"device={self.device!r}, amp={self.amp!r} need CUDA, which this machine lacks; "
                             f"use --device cpu (and --amp bf16 or none)")

    def identity(self) -> dict[str, Any]:
        """What makes this run the run it is (``titn_lite.train.identity``)."""
        return settings_identity(dataclasses.asdict(self.resolved()), _defaults())

    def key(self) -> str:
        """Eight hex digits naming the run's identity: runs with other settings (an older
        profile, say) get other folders instead of clashing or being overwritten."""
        return identity_key(self.identity())

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


def _defaults() -> dict[str, Any]:
    """Each setting's default, as a field declares it."""
    return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(TrainConfig)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}


def cli_options() -> list[dataclasses.Field]:
    """The ``TrainConfig`` fields ``titn-lite train`` offers as options, in order."""
    return [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("cli")]
