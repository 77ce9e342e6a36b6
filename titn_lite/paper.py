"""The paper's published figures, as data, for tables that show ours beside theirs.

Source: the TITN paper, Tables 1-5 (see SPEC.md). GFLOPs in Table 3 are per batch of
512 images with a multiply-add counted as 2 FLOPs (SPEC.md, "GFLOPs in Table 3").
"""

from __future__ import annotations

from dataclasses import dataclass

GFLOPS_BATCH = 512  # Table 3's GFLOPs are per this many 32x32 images

# Table 1: parameter counts (millions) at 32x32, 100 classes.
TABLE1_PARAMS_M: dict[str, float] = {
    "vit": 5.36, "deit": 5.37, "tnt": 5.83, "titn": 5.85, "titn_large_patch": 5.85,
}

# Table 3 (CIFAR-100): GFLOPs per 512 images and parameters (millions).
TABLE3_GFLOPS: dict[str, float] = {
    "vgg16_bn": 448.47, "vit": 93.37, "deit": 98.84, "tnt": 105.93, "titn": 111.40,
    "titn_large_patch": 36.09,
}
TABLE3_PARAMS_M: dict[str, float] = {
    "vgg16_bn": 138.36, "vit": 5.39, "deit": 5.41, "tnt": 5.83, "titn": 5.85, "titn_large_patch": 5.85,
}


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
