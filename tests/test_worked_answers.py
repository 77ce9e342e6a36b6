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
