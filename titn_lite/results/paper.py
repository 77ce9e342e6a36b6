"""The paper as data: its published figures, and a ledger of what it states and leaves open.

Source: the TITN paper, Tables 1-6. The paper does not say what its GFLOPs count. The
simplest reading that matches the kit's counts: multiply-adds per batch of 1024 images, the
paper's stated batch size ("The batch size is 1024", §4.1). ``torch.utils.flop_counter``
counts a multiply-add as 2 FLOPs, so the same figure is the kit's FLOPs per 512 images
(``GFLOPS_BATCH``): the "GFLOPs / 512" column the kit prints. Both readings give identical
numbers; notebook 04 shows the match.

``LEDGER`` lists every training and evaluation setting the paper states (with its section,
equation, table or algorithm line), every one it leaves open or states inconsistently, and
what the kit does for each: follows the paper, or chooses (and why). The ``paper`` profile
is checked against the stated settings by a test; notebook 12 and the book's results page
print the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from titn_lite.results.tables import MarkdownTable, markdown_table
from titn_lite.train.profiles import get_profile

# Table 3's GFLOPs read as multiply-adds per 1024 images (§4.1's batch size) are the same
# figures as FLOPs (2 per multiply-add, PyTorch's counter) per this many 32x32 images.
GFLOPS_BATCH = 512

# Table 1: parameter counts (millions) at 32x32, 100 classes.
TABLE1_PARAMS_M: dict[str, float] = {
    "vit": 5.36, "deit": 5.37, "tnt": 5.83, "titn": 5.85, "titn_large_patch": 5.85,
}

# Table 3 (CIFAR-100): GFLOPs (multiply-adds per 1024 images = FLOPs per 512) and parameters
# (millions). Its teacher row is torchvision's vgg16_bn with the 1000-class head.
TABLE3_GFLOPS: dict[str, float] = {
    "vgg16_bn": 448.47, "vit": 93.37, "deit": 98.84, "tnt": 105.93, "titn": 111.40,
    "titn_large_patch": 36.09,
}
TABLE3_PARAMS_M: dict[str, float] = {
    "vgg16_bn": 138.36, "vit": 5.39, "deit": 5.41, "tnt": 5.83, "titn": 5.85, "titn_large_patch": 5.85,
}


# Table 6's teacher row (VGG16-BN -> TITN, the CIFAR-10 pair: 95.98 is Table 4's teacher):
# the same model with a 10-class head.
TABLE6_TEACHER_PARAMS_M = 134.30
TABLE6_TEACHER_GFLOPS = 444.32


def paper_params_m(name: str) -> float | None:
    """Table 1's count for a student, Table 3's for the teacher; None if unpublished."""
    return TABLE1_PARAMS_M.get(name, TABLE3_PARAMS_M.get(name))


@dataclass(frozen=True)
class PaperResult:
    """A published result: top-1/top-5 in percent; macro P/R/F1 where Table 3 gives them."""

    top1: float
    top5: float
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None


# Tables 2 and 3 (CIFAR-100), 4 (CIFAR-10) and 5 (MNIST; every student's top-5 is 100%).
RESULTS: dict[str, dict[str, PaperResult]] = {
    "cifar100": {
        "vgg16_bn": PaperResult(79.80, 94.51, 0.77, 0.80, 0.79),
        "vit": PaperResult(70.79, 89.55, 0.65, 0.71, 0.68),
        "deit": PaperResult(73.91, 91.91, 0.71, 0.74, 0.73),
        "tnt": PaperResult(68.47, 88.44, 0.61, 0.68, 0.64),
        "titn": PaperResult(74.71, 92.28, 0.72, 0.75, 0.74),
        "titn_large_patch": PaperResult(63.63, 85.93, 0.58, 0.64, 0.61),
        "densenet121": PaperResult(69.06, 89.61), "mobilenet_v3": PaperResult(65.50, 88.86),
        "resnet50": PaperResult(65.17, 87.32), "wide_resnet50_2": PaperResult(66.32, 87.91),
        "squeezenet": PaperResult(42.34, 67.13), "vgg16": PaperResult(79.42, 94.72),
        "vgg19": PaperResult(79.46, 94.75),
    },
    "cifar10": {
        "vgg16_bn": PaperResult(95.98, 99.92), "vit": PaperResult(86.33, 99.41),
        "deit": PaperResult(91.64, 99.73), "tnt": PaperResult(86.91, 99.38),
        "titn": PaperResult(92.03, 99.80), "titn_large_patch": PaperResult(85.39, 99.31),
    },
    "mnist": {
        "vgg16_bn": PaperResult(99.75, 100.0), "vit": PaperResult(99.40, 100.0),
        "deit": PaperResult(99.52, 100.0), "tnt": PaperResult(99.46, 100.0), "titn": PaperResult(99.56, 100.0),
    },
}
# Table 3's extra row: TITN trained with MixUp instead of CutMix.
TITN_MIXUP_CIFAR100 = PaperResult(74.40, 92.53, 0.70, 0.74, 0.72)


# --- the fidelity ledger ---------------------------------------------------------------

Status = Literal["stated", "open", "inconsistent"]


@dataclass(frozen=True)
class LedgerEntry:
    """One setting or rule: what the paper says (``status``: it states it, leaves it open, or
    states it in two ways that disagree), where, and what the kit does. ``setting`` and
    ``value`` tie a stated entry to a field of a resolved ``TrainConfig`` under the ``paper``
    profile (for the datasets in ``datasets``), so a test can hold the profile to the paper."""

    topic: str
    paper: str
    where: str
    status: Status
    kit: str
    follows: bool  # True: the kit does what the paper says; False: the kit's own choice (reason in ``kit``)
    setting: str | None = None
    value: object = None
    datasets: tuple[str, ...] = ("cifar10", "cifar100", "mnist")


# The classroom entry states the classroom profile's own settings, so it cannot go stale.
_CLASSROOM = get_profile("classroom")

LEDGER: tuple[LedgerEntry, ...] = (
    LedgerEntry("optimizer", "SGD with momentum 0.9 and weight decay 1e-4", "§4.1", "stated",
                "paper profile: SGD, momentum 0.9, weight decay 1e-4", True, "optimizer", "sgd"),
    LedgerEntry("momentum", "0.9", "§4.1", "stated", "0.9", True, "momentum", 0.9),
    LedgerEntry("weight decay", "1e-4", "§4.1", "stated", "1e-4 (paper profile)", True, "weight_decay", 1e-4),
    LedgerEntry("which parameters decay", "not stated", "§4.1", "open",
                "under SGD (the paper profile) all of them, as PyTorch's SGD does by default; under AdamW (the "
                "classroom profile) DeiT's and timm's rule: no decay on biases, norm gains, tokens and position "
                "embeddings", False, "decay", "all"),
    LedgerEntry("learning rate", "0.1, reduced by cosine annealing", "§4.1", "stated",
                "0.1, cosine annealing to 0 over the run; the kit steps it every batch (how often is not "
                "stated: the kit's choice)", True,
                "lr", 0.1),
    LedgerEntry("warm-up", "none mentioned", "§4.1", "open",
                "paper profile: none; the classroom profile warms up for 1 epoch (short AdamW runs)", True,
                "warmup_epochs", 0),
    LedgerEntry("batch size", "1024, on one 16 GB GPU", "§4.1", "stated", "1024 (paper profile)", True,
                "batch_size", 1024),
    LedgerEntry("epochs", "350 for TITN on MNIST (a result's wording, said of TITN alone); 600 for the CIFAR-100 "
                "teachers (Figure 4); the CIFAR students' epochs are not stated", "§4.2", "open",
                "paper profile: 350 for every student, 600 for every teacher", False),
    LedgerEntry("augmentation, CIFAR", "AutoAugment, CutMix, random crop, random horizontal flip", "§3.4, §4.1",
                "stated", "AutoAugment (CIFAR-10 policy; the policy is not stated), crop 32 with padding 4 "
                "(not stated), flip", True, "augmentation", "paper", ("cifar10", "cifar100")),
    LedgerEntry("augmentation, MNIST", "resize, random crop, random rotation, random affine, colour jitter "
                "(no parameters given)", "§4.1", "stated", "resize to 32, crop with padding 2, rotation 10°, "
                "affine (shift 0.1, scale 0.9-1.1), jitter 0.2: the parameters are the kit's", True,
                "augmentation", "paper", ("mnist",)),
    LedgerEntry("the classroom recipe", "the augmentations above, CutMix on CIFAR, batch 1024", "§3.4, §4.1",
                "stated", f"classroom profile (the kit's choice, for a few CPU epochs): augmentation "
                f"{_CLASSROOM.augmentation!r}, no mixing, batch {_CLASSROOM.batch_size}, {_CLASSROOM.epochs} "
                f"epochs, AdamW lr {_CLASSROOM.lr:g}, Table 1's students cut to {_CLASSROOM.model_overrides['depth']} "
                f"blocks. So short a run underfits; in one-seed probes read on the test images (made before the "
                "kit held out a validation split) a shifted crop and CutMix only cost accuracy (the classroom "
                "profile's comment, benchmarks/classroom_speed.py; notebook 10 re-tests CutMix with seeds); the "
                "depth was chosen on the validation split. The paper profile keeps the paper's recipe", False),
    LedgerEntry("CutMix on CIFAR", "applied", "§4.1", "stated", "CutMix (how often is not stated: the kit "
                "mixes every batch)", True, "mix", "cutmix",
                ("cifar10", "cifar100")),
    LedgerEntry("CutMix on MNIST", "§3.4 lists CutMix for the training data, but §4.1 gives MNIST "
                "\"a different strategy\" whose list of transforms leaves CutMix out", "§3.4, §4.1", "inconsistent",
                "paper profile: no CutMix on MNIST (§4.1, the dataset-specific statement)", True, "mix", "none",
                ("mnist",)),
    LedgerEntry("CutMix alpha", "\"The value of alpha, 0.5 for our case\", to sample lambda from a beta "
                "distribution", "§3.5.2", "stated", "lambda ~ Beta(0.5, 0.5) (the paper profile; the other "
                "profiles 1.0)", True, "mix_alpha", 0.5, ("cifar10", "cifar100")),
    LedgerEntry("CutMix loss", "eq. 9: lambda CE(p, l1) + (1 - lambda) CE(p, l2)", "§3.5.2, eq. 9", "stated",
                "the same (titn_lite.train.losses.mixed_cross_entropy), with lambda corrected to the pasted area",
                True),
    LedgerEntry("loss weight alpha", "eq. 10's alpha is 0.5 (a second use of the letter, not CutMix's)",
                "§3.5.3, eq. 10", "stated", "distill_alpha 0.5", True, "distill_alpha", 0.5),
    LedgerEntry("hard or soft distillation", "eq. 10: the teacher's argmax label (hard); §3.6 and §4.4 speak "
                "of the teacher's \"soft label\"; Algorithm 2 has no argmax and adds L_Base to L_Distill",
                "§3.5.3, §3.6, §4.4, Alg. 2", "inconsistent", "hard distillation as eq. 10 (one loss, no "
                "extra L_Base); soft distillation is a kit option, trained only in notebook 11's few-labels regime, "
                "beside hard", True, "distill", "hard"),
    LedgerEntry("the soft term", "Algorithm 2, line 6: a \"CrossEntropyLoss\" between the student's prediction "
                "and the teacher's output, with no argmax and no temperature, which line 8 combines with the CutMix "
                "loss into L_Base (what lines 9-10 then use); §3.6 speaks of the teacher's \"soft label\". That "
                "line 6 is a soft distillation term is a reading: the paper does not call it one",
                "Alg. 2 lines 6-10, §3.6", "open",
                "the kit's reading: line 6 as a soft distillation term, trained as an ablation (the default is "
                "eq. 10's hard label); the kit's soft variant departs from line 6: "
                "KL(teacher ‖ student) at temperature 3, the KL per image (PyTorch's `batchmean`) times T^2 "
                "(Hinton et al.'s). At T = 1 the KL and line 6's cross-entropy differ by the teacher's entropy, a "
                "constant for the student, so only the temperature and its T^2 depart. DeiT's code divides the KL "
                "by the number of elements instead (C times smaller); the kit keeps the per-image form so the "
                "term's size does not shrink with the number of classes", False),
    LedgerEntry("the teacher's input", "one input x for both models: \"StudentModel(x)\" and \"TeacherModel(x)\" "
                "(lines 2-3), the mixed label built after them (line 5); \"A prediction is made using the input\" "
                "by the teacher (§3.5.3). Whether x is already cut-mixed is not said; §3.4 lists CutMix among "
                "the augmentations of the training data", "Alg. 2 lines 2-5, §3.4, §3.5.3", "open",
                "the teacher labels the same cut-mixed (and augmented) batch the student sees, in eval mode, "
                "without gradients: the kit's reading, and what DeiT's code does. Feeding the teacher the unmixed "
                "images is another reading the text does not rule out", False),
    LedgerEntry("heads and the prediction at test time", "§3.2 projects the sliced class and distillation "
                "tokens with \"a fully connected layer\"; eq. 10 gives each token its own loss; Algorithm 1 "
                "concatenates the two tokens' outputs into one probability", "§3.2, eq. 10, Alg. 1 lines 10-11",
                "inconsistent", "a LayerNorm and a Linear layer per token (the kit's choice; DeiT's code shares "
                "one final LayerNorm and gives each token a Linear head); at evaluation the mean of the two "
                "heads' logits, as DeiT's released code does (the kit's choice)", False),
    LedgerEntry("attention heads", "§3.1.1 says the heads' outputs are \"added\"; eq. 2-3 concatenate them",
                "§3.1.1, eq. 2-3", "inconsistent", "concatenation then a linear layer (eq. 2-3)", True),
    LedgerEntry("number of heads", "not given (Table 1 lists dims, depth, patch and pixel sizes)", "Table 1",
                "open", "8 outer heads of 24 features, 4 inner heads of 3 (the kit's choice)", False),
    LedgerEntry("model sizes", "patch dim 192, pixel dim 12, depth 12, patch 8 (large: 16), pixel 2 "
                "(large: 4), 32x32 images", "Table 1", "stated", "the same (titn_lite.models.students.MODEL_CONFIGS)",
                True),
    LedgerEntry("teacher sizes", "VGG16_bn, \"The teacher model with the highest performance\" (§4.2, Table 2); "
                "Table 3 gives it 138.36M parameters and 448.47 GFLOPs, Table 6 (the CIFAR-10 pair: 95.98 is "
                "Table 4's teacher) 134.30M and 444.32", "§4.2, Tables 2, 3, 4, 6", "stated",
                "not a contradiction, as checked: the two differ by exactly a 1000-class head against a 10-class "
                "one. The kit trains torchvision's vgg16_bn with a head for the dataset's classes (134.68M at "
                "100 classes). Checked "
                "with torchvision (notebook 06): 138,365,992 parameters with 1000 classes (Table 3's 138.36M, "
                "so Table 3's count fits the ImageNet head, not a CIFAR-100 one) and 134,309,962 with 10 (Table 6's "
                "134.30M); the kit's GFLOPs of the two differ by 4.15, as 448.47 and 444.32 do", False),
    LedgerEntry("teacher's training", "SGD, \"plotted against 600 epochs\" on CIFAR-100 (Figure 4); Tables 4 "
                "and 5 report VGG16_bn teachers for CIFAR-10 (95.98 top-1) and MNIST (99.75) but not how they "
                "were trained, nor from what weights (\"pre-trained teacher models\", Figure 4)", "§4.2, Tables 4-5",
                "open", "paper profile: SGD lr 0.1, 600 epochs, CutMix, on the students' dataset, from random "
                "weights (torchvision's architectures)", False),
    LedgerEntry("patch tokens", "\"For these larger patches, there is a distinct, parallel data flow\" and "
                "\"the larger patches are added together with the patch residuals\" (§3.2): the larger patches "
                "are the image's own; Algorithm 1 (line 2) applies one \"LinearProjection\" to the image patches "
                "before the inner blocks. How the larger patches are embedded is not given", "§3.2, Alg. 1",
                "open", "TNT's and TITN's patch tokens start as learned vectors (plus position), the same for "
                "every image: the image reaches them only through each block's pixel-to-patch projection "
                "(the kit's choice; timm's TNT instead derives them from the pixel embeddings by a linear "
                "projection)", False),
    LedgerEntry("reported accuracy", "models compared \"based on their maximum test accuracy\" (the kit reads "
                "it as the maximum over training)", "§4.2, Figure 5", "stated",
                "the finished model's test accuracy, the test images read once, after the last epoch; the "
                "maximum over epochs is taken on the validation split instead (titn-lite report's 'best "
                "validation top-1'), since choosing an epoch by its test score flatters a run", False),
    LedgerEntry("validation split", "none mentioned: the students train on the training split and are scored "
                "on the test split", "§4.1, §4.2", "open",
                f"every profile holds out the training split's last images for validation (paper profile "
                f"{get_profile('paper').val_images:,}, classroom {_CLASSROOM.val_images:,}), which every per-epoch "
                "figure and every choice made since the split was added reads (the classroom profile's older "
                "probes read the test images: notebook 12); --val-images 0 trains on the whole split, as the "
                "paper appears to, with no per-epoch figures", False),
    LedgerEntry("label smoothing, dropout, stochastic depth", "none mentioned", "-", "open", "none", True),
    LedgerEntry("faster convergence with a teacher", "claimed, with no run with and without the teacher "
                "to compare", "§1, §3.6, §4.4, §5", "stated",
                "described, not tested: notebook 08 plots accuracy per epoch and per second "
                "with and without the distillation token; notebook 11 counts the optimizer steps a distilled "
                "student takes to reach its undistilled twin's final accuracy, in its few-labels regime", False),
    LedgerEntry("images without labels", "no run with unlabelled images, though §1 calls the method "
                "\"semi-supervised\"; what the teachers trained on is not given", "§1, §3.4, §4.1", "open",
                "notebook 11 adds a few-labels regime (the kit's own, to show when the "
                "teacher's label carries information): a distilled student also trains on images whose labels it "
                "never sees, labelled only by the teacher (TrainConfig.unlabelled), hard and soft, against an "
                "undistilled twin trained for as many optimizer steps on the labelled ones", False),
)


def paper_profile_settings(dataset: str) -> dict[str, object]:
    """The ``TrainConfig`` fields the ledger fixes for a student on ``dataset`` under the
    ``paper`` profile: the paper's stated values, and none where it is silent on warm-up."""
    return {e.setting: e.value for e in LEDGER if e.setting and dataset in e.datasets}


def format_ledger() -> MarkdownTable:
    """The ledger as a Markdown table: topic, what the paper says and where, what the kit does."""
    rows = []
    for e in LEDGER:
        said = {"stated": e.paper, "open": f"*not stated:* {e.paper}", "inconsistent": f"*inconsistent:* {e.paper}"}
        kit = ("follows: " if e.follows else "chooses: ") + e.kit
        rows.append([cell.replace("\n", " ") for cell in (e.topic, said[e.status], e.where, kit)])  # a row is one line
    return markdown_table(["topic", "the paper says", "where", "the kit does"], rows)
