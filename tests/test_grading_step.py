"""The grader judges the two exercises where the student writes the paper's own part (04's
distillation token and heads, 07's training step of Algorithm 2) as it judges the others:
the teacher's answers score full marks on the hidden cases, and a common mistake scores 0
with the check's own diagnosis as the reason."""

import pytest

pytest.importorskip("nbgrader", reason='nbgrader is the "classroom" extra: pip install -e ".[classroom]"')

from test_assignments import read_rows, solutions, submit  # noqa: E402

from titn_lite.classroom.assignments import build, grade  # noqa: E402


def test_the_grader_judges_the_token_and_the_training_step(tmp_path):
    release = tmp_path / "release"
    build(release, only=["04", "07"])
    right = {**solutions("04_titn.ipynb"), **solutions("07_distillation.ipynb")}
    mistaken = dict(right)
    mistaken["distillation_token"] = right["distillation_token"].replace(
        "    if training:\n        return class_logits, distill_logits\n", "")  # the mean in training too
    mistaken["distillation_step"] = right["distillation_step"].replace(
        "    teacher.eval()  # 3.", "    teacher.train()  # 3.")
    assert mistaken["distillation_token"] != right["distillation_token"]
    assert mistaken["distillation_step"] != right["distillation_step"]
    submissions = tmp_path / "submissions"
    submit(release, submissions / "alice", right)
    submit(release, submissions / "bob", mistaken)

    grade(submissions, release, tmp_path / "grades.csv", cell_timeout=120, jobs=2)
    rows = read_rows(tmp_path / "grades.csv")

    assert rows["alice"]["distillation_token_check"] == "2" and rows["alice"]["distillation_step_check"] == "2"
    assert rows["alice"]["total"] == rows["alice"]["max"], rows["alice"]
    assert rows["bob"]["distillation_token_check"] == "1"  # the sequence is right: half the points
    assert rows["bob"]["distillation_token_check reason"].startswith("the heads: in training the heads are averaged")
    assert rows["bob"]["distillation_step_check"] == "0"
    assert rows["bob"]["distillation_step_check reason"].startswith("the teacher ran in training mode")
