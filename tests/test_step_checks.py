"""The checks of the two exercises that write the paper's own part: 04b (the distillation token
and the two heads) and 07c (one training step of Algorithm 2). Any correct answer passes,
whatever its order of operations; each common mistake fails with a message naming it."""

import pytest
import torch
import torch.nn.functional as F

from titn_lite.classroom import checks
from titn_lite.classroom.checks import CheckFailed

# ---- 04b: the distillation token and the two heads


def add_token(patch_tokens, class_token, distill_token, pos_embedding):
    batch = patch_tokens.shape[0]
    return torch.cat([class_token.expand(batch, -1, -1), patch_tokens,
                      distill_token.expand(batch, -1, -1)], dim=1) + pos_embedding


def add_token_by_padding(patch_tokens, class_token, distill_token, pos_embedding):
    # another correct answer: pad the sequence, then write the two rows
    sequence = F.pad(patch_tokens, (0, 0, 1, 1)).clone()
    sequence[:, 0] = class_token[0, 0]
    sequence[:, -1] = distill_token[0, 0]
    return sequence + pos_embedding


def two_heads(tokens, class_head, distill_head, training):
    class_logits, distill_logits = class_head(tokens[:, 0]), distill_head(tokens[:, -1])
    return (class_logits, distill_logits) if training else (class_logits + distill_logits) / 2


def two_heads_stacked(tokens, class_head, distill_head, training):
    # another correct answer: the last row found by its index, the mean by torch.stack
    last = tokens.shape[1] - 1
    logits = torch.stack([class_head(tokens[:, 0]), distill_head(tokens[:, last])])
    return tuple(logits) if training else logits.mean(dim=0)


@pytest.mark.parametrize("add, heads", [(add_token, two_heads), (add_token_by_padding, two_heads_stacked)])
def test_distillation_token_check_passes_correct_answers_written_differently(add, heads):
    checks.check_distillation_token(add, heads, hidden=True)


def second(patch_tokens, class_token, distill_token, pos_embedding):
    batch = patch_tokens.shape[0]
    return torch.cat([class_token.expand(batch, -1, -1), distill_token.expand(batch, -1, -1), patch_tokens],
                     dim=1) + pos_embedding


def no_positions(patch_tokens, class_token, distill_token, pos_embedding):
    return add_token(patch_tokens, class_token, distill_token, 0 * pos_embedding)


def averaged_in_training(tokens, class_head, distill_head, training):
    return (class_head(tokens[:, 0]) + distill_head(tokens[:, -1])) / 2


def first_patch(tokens, class_head, distill_head, training):
    class_logits, distill_logits = class_head(tokens[:, 0]), distill_head(tokens[:, 1])
    return (class_logits, distill_logits) if training else (class_logits + distill_logits) / 2


def probabilities_at_evaluation(tokens, class_head, distill_head, training):
    class_logits, distill_logits = class_head(tokens[:, 0]), distill_head(tokens[:, -1])
    return (class_logits, distill_logits) if training else (class_logits.softmax(1) + distill_logits.softmax(1)) / 2


def class_head_at_evaluation(tokens, class_head, distill_head, training):
    class_logits, distill_logits = class_head(tokens[:, 0]), distill_head(tokens[:, -1])
    return (class_logits, distill_logits) if training else class_logits


def kits_mean(tokens, class_head, distill_head, training):
    from titn_lite.models.students import mean_of_heads

    pair = (class_head(tokens[:, 0]), distill_head(tokens[:, -1]))
    return pair if training else mean_of_heads(pair)


@pytest.mark.parametrize("add, heads, message, credit", [
    (second, two_heads, r"^the sequence: the distillation token is second, as in DeiT's code", 0.5),
    (no_positions, two_heads, r"the positions are not added", 0.5),
    (add_token, averaged_in_training, r"^the heads: in training the heads are averaged", 0.5),
    (add_token, first_patch, r"reads row 1, the first patch", 0.5),
    (add_token, probabilities_at_evaluation, r"the heads' probabilities are averaged", 0.5),
    (add_token, class_head_at_evaluation, r"only the class head is read", 0.5),
    (second, first_patch, r"^both parts are wrong", 0.0),
    (add_token, kits_mean, r"calls titn_lite\.models\.students\.mean_of_heads, the ready-made version", 0.5),
])
def test_distillation_token_check_names_each_mistake(add, heads, message, credit):
    with pytest.raises(CheckFailed, match=message) as failure:
        checks.check_distillation_token(add, heads)
    assert failure.value.credit == credit


# ---- 07c: one training step of Algorithm 2


def hard_distillation_loss(class_logits, distill_logits, batch, teacher_logits, alpha=0.5):
    cutmix_term = batch.lam * F.cross_entropy(class_logits, batch.labels) + (1 - batch.lam) * F.cross_entropy(
        class_logits, batch.partner_labels)
    return alpha * cutmix_term + (1 - alpha) * F.cross_entropy(distill_logits, teacher_logits.argmax(dim=1))


def step_like_the_notebook(student, teacher, images, labels, mix, optimizer, scheduler, alpha=0.5):
    batch = mix(images, labels)
    class_logits, distill_logits = student(batch.images)
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(batch.images)
    loss = hard_distillation_loss(class_logits, distill_logits, batch, teacher_logits, alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.item()


def step_teacher_first(student, teacher, images, labels, mix, optimizer, scheduler, alpha=0.5):
    # another correct order: gradients cleared first, the teacher's labels before the student runs,
    # a frozen teacher instead of no_grad, soft-label cross-entropy written with log_softmax
    optimizer.zero_grad(set_to_none=True)
    batch = mix(images, labels)
    teacher.train(False).requires_grad_(False)
    teacher_labels = teacher(batch.images).argmax(1)
    class_logits, distill_logits = student(batch.images)
    log_p = class_logits.log_softmax(1)
    eq9 = -(batch.lam * log_p.gather(1, batch.labels[:, None]) +
            (1 - batch.lam) * log_p.gather(1, batch.partner_labels[:, None])).mean()
    loss = alpha * eq9 + (1 - alpha) * F.nll_loss(distill_logits.log_softmax(1), teacher_labels)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss


def step_with_soft_labels(student, teacher, images, labels, mix, optimizer, scheduler, alpha=0.5):
    # a third: eq. 9 through the mixed batch's soft labels, the teacher's logits detached
    batch = mix(images, labels)
    with torch.no_grad():
        hard = teacher.eval()(batch.images).detach().argmax(dim=1)
    outputs = student(batch.images)
    targets = batch.soft_labels(outputs[0].shape[1])
    loss = alpha * F.cross_entropy(outputs[0], targets) + (1 - alpha) * F.cross_entropy(outputs[1], hard)
    for parameter in student.parameters():
        parameter.grad = None
    loss.backward()
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


@pytest.mark.parametrize("step", [step_like_the_notebook, step_teacher_first, step_with_soft_labels])
def test_training_step_check_passes_correct_steps_written_differently(step):
    checks.check_training_step(step, hidden=True)


def mistaken_step(**mistake):
    """The notebook's step with one common mistake made on purpose."""
    def step(student, teacher, images, labels, mix, optimizer, scheduler, alpha=0.5):
        batch = mix(images, labels)
        seen = images if mistake.get("student") == "unmixed" else batch.images
        class_logits, distill_logits = student(seen)
        if mistake.get("heads") == "averaged":
            class_logits = distill_logits = (class_logits + distill_logits) / 2
        if mistake.get("teacher") != "train":
            teacher.eval()
        teacher_input = images if mistake.get("teacher") == "unmixed" else batch.images
        if mistake.get("teacher") == "graph":
            teacher_logits = teacher(teacher_input)
        else:
            with torch.no_grad():
                teacher_logits = teacher(teacher_input)
        if mistake.get("labels") == "unmixed":
            class_term = F.cross_entropy(class_logits, batch.labels)
            loss = alpha * class_term + (1 - alpha) * F.cross_entropy(distill_logits, teacher_logits.argmax(1))
        else:
            loss = hard_distillation_loss(class_logits, distill_logits, batch, teacher_logits, alpha)
        if mistake.get("zero_grad") != "missing":
            optimizer.zero_grad()
        loss.backward()
        if mistake.get("schedule") == "first":
            scheduler.step()
        optimizer.step()
        if mistake.get("schedule") not in ("first", "per epoch"):
            scheduler.step()
        return loss.item()
    return step


@pytest.mark.parametrize("mistake, message", [
    ({"teacher": "train"}, r"^the teacher ran in training mode: its BatchNorm"),
    ({"teacher": "graph"}, r"^gradients flow into the teacher"),
    ({"student": "unmixed"}, r"^the labels are mixed but the images are not"),
    ({"labels": "unmixed"}, r"^the images are mixed but the class head learns each image's own label only"),
    ({"teacher": "unmixed"}, r"^the teacher labels the unmixed images\. That is another reading of Algorithm 2"),
    ({"zero_grad": "missing"}, r"^the gradients of the step before were added to this step's"),
    ({"heads": "averaged"}, r"^the heads are averaged in training"),
    ({"schedule": "per epoch"}, r"^the learning-rate schedule did not step: .*per step, not per epoch"),
    ({"schedule": "first"}, r"^the schedule stepped before the optimizer"),
])
def test_training_step_check_names_each_mistake(mistake, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_training_step(mistaken_step(**mistake))


def test_training_step_check_refuses_the_engines_step_and_the_kits_loss():
    from titn_lite.train.engine import train_step
    from titn_lite.train.losses import DistillationLoss

    def engine(student, teacher, images, labels, mix, optimizer, scheduler, alpha=0.5):
        return train_step(student, images, labels, mix=mix, loss_fn=DistillationLoss(teacher, "hard", alpha=alpha),
                          optimizer=optimizer, scheduler=scheduler).loss

    with pytest.raises(CheckFailed, match=r"calls titn_lite\.train\.engine\.train_step, the ready-made version"):
        checks.check_training_step(engine)

    def kits_loss(student, teacher, images, labels, mix, optimizer, scheduler, alpha=0.5):
        batch = mix(images, labels)
        loss = DistillationLoss(teacher, "hard", alpha=alpha)(student(batch.images), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss

    with pytest.raises(CheckFailed, match=r"calls titn_lite\.train\.losses\.DistillationLoss"):
        checks.check_training_step(kits_loss)


def test_training_step_check_names_a_step_that_changes_nothing_or_returns_no_loss():
    def no_update(student, teacher, images, labels, mix, optimizer, scheduler, alpha=0.5):
        step_like_the_notebook(student, teacher, images, labels, mix, torch.optim.SGD(student.parameters(), lr=0.0),
                               scheduler, alpha)
    with pytest.raises(CheckFailed, match=r"^the weights did not change"):
        checks.check_training_step(no_update)

    def returns_nothing(*args):
        step_like_the_notebook(*args)
    with pytest.raises(CheckFailed, match=r"the weights are right, but the step returns NoneType"):
        checks.check_training_step(returns_nothing)
    with pytest.raises(CheckFailed, match=r"is not written yet"):
        checks.check_training_step(lambda *args: (_ for _ in ()).throw(NotImplementedError()))


def test_the_engines_step_is_the_one_the_check_compares_with():
    # The check's reference is titn_lite.train.engine.train_step itself: a step that differs from it
    # only in what the engine would do differently fails, so the check follows the engine.
    case = checks._step_case(0, 8, 5, "sgd", 0.5)
    loss, weights = checks._engine_step(case)
    student, teacher, optimizer, scheduler = case.fresh()
    step_like_the_notebook(student, teacher, case.images, case.labels, checks._SeededCutMix(case.mix_seed, 1.0),
                           optimizer, scheduler, 0.5)
    assert checks._same_step(checks._weights(student), weights, checks._weights(case.fresh()[0]))
    assert not torch.allclose(checks._weights(case.fresh()[0]), weights)  # the step changed them
