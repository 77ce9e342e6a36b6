"""Worked answers whose numbers a student can check are checked here against the code: the
number the answer states must be the number the package computes."""

import json

from titn_lite import create_model
from titn_lite.classroom.series import NOTEBOOK_DIR


def worked_answers(name: str) -> str:
    cells = json.loads((NOTEBOOK_DIR / name).read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return text[text.index("## Exercises"):]


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_large_patch_answer_of_chapter_04_is_what_the_models_count():
    titn = create_model("titn", num_classes=100)
    large = create_model("titn_large_patch", num_classes=100)
    tokens_and_positions = (titn.patch_tokens.numel() + titn.tokens.pos_embedding.numel()
                            - large.patch_tokens.numel() - large.tokens.pos_embedding.numel())
    pixel_embedding = parameters(large.pixel_embedding) - parameters(titn.pixel_embedding)
    answer = worked_answers("04_titn.ipynb")
    assert f"{tokens_and_positions:,} parameters" in answer  # 2 x 12 x 192
    assert f"gains 36 x 12 = {pixel_embedding:,} weights" in answer
    assert f"{parameters(titn) - parameters(large):,} fewer in all" in answer


def test_the_score_table_answer_of_chapter_04_is_the_sequences_growth():
    tnt_tokens = create_model("tnt", num_classes=10).tokens.pos_embedding.shape[1]
    titn_tokens = create_model("titn", num_classes=10).tokens.pos_embedding.shape[1]
    answer = worked_answers("04_titn.ipynb")
    growth = round(100 * (titn_tokens ** 2 / tnt_tokens ** 2 - 1))
    assert (f"From {tnt_tokens} x {tnt_tokens} = {tnt_tokens ** 2} to "
            f"{titn_tokens} x {titn_tokens} = {titn_tokens ** 2}" in answer)
    assert f"{growth}% more" in answer


def test_chapter_05s_corrected_lambda_is_rarely_below_a_tenth_even_at_a_small_alpha():
    """05's worked answer 1: a lambda drawn near 0 asks for a box nearly the image's size, which the
    border clips, so the share the image keeps (the package's corrected lambda) is rarely below 0.1."""
    import torch

    from titn_lite.data.mixing import cutmix

    images, labels, partner = torch.zeros(2, 1, 32, 32), torch.tensor([0, 1]), torch.tensor([1, 0])
    torch.manual_seed(0)
    drawn = torch.distributions.Beta(0.1, 0.1).sample((2000,))
    kept = torch.tensor([cutmix(images, labels, alpha=0.1, partner=partner).lam for _ in range(2000)])
    assert (drawn < 0.1).float().mean() > 0.3  # the draws do pile up near 0 ...
    assert (kept < 0.1).float().mean() < 0.01  # ... the share kept does not
    assert "is rarely below 0.1 at any alpha" in worked_answers("05_cutmix.ipynb")
