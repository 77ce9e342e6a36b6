"""The paper's published figures, as data, for tables that show ours beside theirs.

Source: the TITN paper, Tables 1-5 (see SPEC.md). GFLOPs in Table 3 are per batch of
512 images with a multiply-add counted as 2 FLOPs (SPEC.md, "GFLOPs in Table 3").
"""

from __future__ import annotations

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
