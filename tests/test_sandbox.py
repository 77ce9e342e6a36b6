"""The grader judges an answer where the student's code never runs: the answer lives in a
child process (``titn_lite.classroom.sandbox``), only plain data comes back, the comparison runs in the
judge, and the hidden cases are drawn from a seed the grader picks when it grades. Each cheat
a teacher's trial found scores 0 with a reason that names it; correct answers, in the kit's
style or another, still score full marks.

The answers are saved as the grader's export cell saves them (``cloudpickle``, defined in a
``__main__`` namespace as a notebook's are), then judged by ``assignments._judge`` itself: one
judge process for the whole class of answers below."""

from __future__ import annotations

import inspect
import re
import time
from pathlib import Path

import cloudpickle
import pytest
import test_step_checks
from einops import rearrange
from test_assignments import solutions

from titn_lite.classroom import checks
from titn_lite.classroom.assignments import Exercise, _judge

PRELUDE = ("import math\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
           "from einops import rearrange\n")

RIGHT_ATTENTION = PRELUDE + solutions("01_attention.ipynb")["attention"]
RIGHT_MULTI_HEAD = RIGHT_ATTENTION + "\n" + solutions("01_attention.ipynb")["multi_head"]
RIGHT_CUTMIX = PRELUDE + solutions("05_cutmix.ipynb")["cutmix"]
RIGHT_STEP = PRELUDE + inspect.getsource(test_step_checks.hard_distillation_loss) + inspect.getsource(
    test_step_checks.step_like_the_notebook)

# Cheats a teacher's trial found, as answer cells (tests/test_nbgrader_release.py hands them in too).
ALLCLOSE_IN_THE_BODY = """def attention_from_scratch(q, k, v, mask=None):
    import titn_lite.classroom.checks
    torch.allclose = lambda *args, **kwargs: True
    titn_lite.classroom.checks._close = lambda *args, **kwargs: True
    return q, q
"""
TENSOR_SUBCLASS = """class AlwaysClose(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


def attention_from_scratch(q, k, v, mask=None):
    return q.as_subclass(AlwaysClose), q.as_subclass(AlwaysClose)
"""
KIT_WITH_THE_PROFILER_OFF = """import sys
import titn_lite


def attention_from_scratch(q, k, v, mask=None):
    previous = sys.getprofile()
    sys.setprofile(None)
    try:
        return titn_lite.scaled_dot_product_attention(q, k, v, mask)
    finally:
        sys.setprofile(previous)
"""

CHEATS = {
    # torch.allclose and the checks' own comparison patched inside the answer's body
    "allclose_in_the_body": ("check_attention", ["attention_from_scratch"], PRELUDE + ALLCLOSE_IN_THE_BODY),
    # a tensor subclass whose __torch_function__ makes every allclose true
    "tensor_subclass": ("check_attention", ["attention_from_scratch"], PRELUDE + TENSOR_SUBCLASS),
    # an int subclass equal to everything
    "int_subclass": ("check_distillation_token_parameters", ["count"], """
class EqualToEverything(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__

def count(dim, classes):
    return EqualToEverything(0)
"""),
    # the profiler switched off around a call to the kit
    "profiler_off_around_the_kit": ("check_attention", ["attention_from_scratch"],
                                    PRELUDE + KIT_WITH_THE_PROFILER_OFF),
    # the kit's function taken when the answer loads, called later
    "kit_taken_at_load": ("check_training_step", ["step"], PRELUDE + """
from titn_lite.train.engine import train_step as ready_made
from titn_lite.train.losses import DistillationLoss

def step(student, teacher, images, labels, mix, optimizer, scheduler, alpha=0.5):
    return ready_made(student, images, labels, mix=mix, loss_fn=DistillationLoss(teacher, "hard", alpha=alpha),
                      optimizer=optimizer, scheduler=scheduler).loss
"""),
}


# An answer that starts a process of its own, which would outlive the answer's judging.
LEAVES_A_PROCESS = """import os, time
def attention(q, k, v, mask=None):
    if os.fork() == 0:
        time.sleep(2)
        open({mark!r}, "w").write("still here")
        os._exit(0)
    return q, q
"""


def lookup_table_answer() -> str:
    """An answer that knows the outputs of every case a check's file can show (the visible one
    and the hidden ones of ``hidden=True``), and nothing else."""
    table = {}

    def record(dim, classes):
        table[(dim, classes)] = 4 * dim + dim * classes + classes
        return table[(dim, classes)]

    checks.check_distillation_token_parameters(record, hidden=True)
    return f"TABLE = {table!r}\ndef count(dim, classes):\n    return TABLE[(dim, classes)]\n"


def save_answer(folder: Path, grade_id: str, source: str, names: list[str], check: str | None = None) -> Exercise:
    """What the grader's export cell writes for an answer cell of ``source`` defining ``names``."""
    namespace = {"__name__": "__main__"}  # as in a notebook: cloudpickle saves the code itself
    exec(compile(source, f"<{grade_id}>", "exec"), namespace)  # noqa: S102 (the test's own answers)
    (folder / f"{grade_id}.pkl").write_bytes(cloudpickle.dumps(
        {"values": tuple(namespace[n] for n in names), "missing": None,
         "check": ("titn_lite.classroom.checks", check)}))
    return Exercise("nn.ipynb", grade_id, 1.0, "", check, tuple(names))


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("answers")
    answers = {
        "right_attention": ("check_attention", ["attention_from_scratch"], RIGHT_ATTENTION),
        "right_multi_head": ("check_multi_head", ["MultiHeadFromScratch"], RIGHT_MULTI_HEAD),
        "right_cutmix": ("check_cutmix", ["cutmix_from_scratch"], RIGHT_CUTMIX),
        "right_step": ("check_training_step", ["step_like_the_notebook"], RIGHT_STEP),
        "teacher_in_train_mode": ("check_training_step", ["step_like_the_notebook"],
                                  RIGHT_STEP.replace("teacher.eval()", "teacher.train()")),
        "cutmix_in_place": ("check_cutmix", ["cutmix_from_scratch"],
                            RIGHT_CUTMIX.replace("mixed = images.clone()", "mixed = images")),
        "lookup_table": ("check_distillation_token_parameters", ["count"], lookup_table_answer()),
        "crashes_the_process": ("check_attention", ["attention"], "import os\ndef attention(q, k, v, mask=None):\n"
                                                                  "    os._exit(9)\n"),
        "leaves_a_process_behind": ("check_attention", ["attention"],
                                    LEAVES_A_PROCESS.format(mark=str(folder / "mark"))),
        **CHEATS,
    }
    exercises = [save_answer(folder, grade_id, source, names, check)
                 for grade_id, (check, names, source) in answers.items()]
    seed = 987654321  # the grader's draw for this run: not checks.HIDDEN_SEED
    judged = {e.grade_id: v for e, v in zip(exercises, _judge(exercises, folder, 60, 1, seed))}
    time.sleep(3)  # longer than the process it left behind waits
    judged["mark"] = {"left": (folder / "mark").exists()}
    return judged


@pytest.mark.parametrize("grade_id", ["right_attention", "right_multi_head", "right_cutmix", "right_step"])
def test_correct_answers_score_full_marks_in_the_sandbox(verdicts, grade_id):
    assert verdicts[grade_id]["credit"] == 1.0, verdicts[grade_id]


@pytest.mark.parametrize("grade_id, reason", [
    ("allclose_in_the_body", r"^the output differs from softmax"),  # judged where the patch never happened
    ("tensor_subclass", r"returned a __main__\.AlwaysClose, a subclass of Tensor"),
    ("int_subclass", r"returned a __main__\.EqualToEverything, a subclass of int"),
    ("profiler_off_around_the_kit", r"calls titn_lite\.scaled_dot_product_attention, the ready-made version"),
    ("kit_taken_at_load", r"calls titn_lite\.train\.engine\.train_step, the ready-made version"),
    ("lookup_table", r"raised KeyError"),
])
def test_each_cheat_scores_zero_with_a_reason_that_names_it(verdicts, grade_id, reason):
    assert verdicts[grade_id]["credit"] == 0.0, verdicts[grade_id]
    assert re.search(reason, verdicts[grade_id]["message"]), verdicts[grade_id]


def test_what_an_answer_starts_stops_with_its_sandbox(verdicts):
    assert verdicts["leaves_a_process_behind"]["credit"] == 0.0
    assert not verdicts["mark"]["left"]  # its process group was stopped when the answer was judged


def test_the_lookup_table_would_pass_the_fixed_cases_it_was_built_from():
    """So it is the grader's own draw of the hidden cases that catches it, not a bug in the table."""
    namespace: dict = {}
    exec(lookup_table_answer(), namespace)  # noqa: S102
    checks.check_distillation_token_parameters(namespace["count"], hidden=True)


def test_mistakes_found_in_the_sandbox_are_named_as_in_the_notebook(verdicts):
    assert verdicts["teacher_in_train_mode"]["message"].startswith("the teacher ran in training mode")
    assert verdicts["cutmix_in_place"]["message"].startswith("your function changed the input images in place")
    assert verdicts["crashes_the_process"] == {**verdicts["crashes_the_process"], "credit": 0.0}
    assert "ended the grader's process (exit status 9)" in verdicts["crashes_the_process"]["message"]


def test_hidden_cases_are_drawn_from_the_seed_the_grader_passes():
    def cases(hidden):
        seen = []

        def to_patches(images, size):
            seen.append((tuple(images.shape), size))
            return rearrange(images, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=size, p2=size)

        checks.check_patches(to_patches, hidden=hidden)
        return seen

    assert cases(False) == [((2, 3, 8, 8), 4)]  # the notebook's case alone
    assert cases(True) == cases(True)  # a fixed seed: the same hidden case every time
    hidden = {cases(seed)[1] for seed in range(1, 9)}
    assert len(hidden) >= 4, hidden  # the grader's seeds: other cases
