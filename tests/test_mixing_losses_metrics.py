import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import precision_recall_fscore_support
from torchvision.transforms import v2

from titn_lite.data.mixing import BatchMixer, MixedBatch, cutmix, cutmix_box, mixup
from titn_lite.train.losses import DistillationLoss, mixed_cross_entropy
from titn_lite.train.metrics import confusion_matrix, macro_scores, metrics_from_counts, topk_correct


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_cutmix_equals_torchvision_with_the_same_box(seed, alpha):
    images, labels = torch.rand(8, 3, 32, 32), torch.arange(8) % 5
    torch.manual_seed(seed)
    tv_images, tv_labels = v2.CutMix(num_classes=5, alpha=alpha)(images, labels)
    torch.manual_seed(seed)
    ours = cutmix(images, labels, alpha=alpha, partner=torch.roll(torch.arange(8), 1))
    assert torch.equal(ours.images, tv_images)
    torch.testing.assert_close(ours.soft_labels(5), tv_labels)


@pytest.mark.parametrize("seed", range(3))
def test_mixup_equals_torchvision(seed):
    images, labels = torch.rand(8, 3, 32, 32), torch.arange(8) % 5
    torch.manual_seed(seed)
    tv_images, tv_labels = v2.MixUp(num_classes=5, alpha=0.5)(images, labels)
    torch.manual_seed(seed)
    ours = mixup(images, labels, alpha=0.5, partner=torch.roll(torch.arange(8), 1))
    torch.testing.assert_close(ours.images, tv_images)
    torch.testing.assert_close(ours.soft_labels(5), tv_labels)


@pytest.mark.parametrize("seed", range(20))
def test_pasted_area_is_one_minus_corrected_lambda(seed):
    torch.manual_seed(seed)
    images = torch.zeros(4, 1, 32, 32)
    images[1:] = 1.0  # partners of image 1.. differ from image 0 only where pasted
    mixed = cutmix(images, torch.arange(4), alpha=0.5, partner=torch.tensor([1, 0, 3, 2]))
    pasted_fraction = float(mixed.images[0].mean())
    assert pasted_fraction == pytest.approx(1 - mixed.lam)


def test_lambda_is_corrected_when_the_box_is_clipped(monkeypatch):
    # Force the centre into a corner: the box is clipped, so less than 1 - lambda is pasted.
    monkeypatch.setattr(torch, "randint", lambda high, size: torch.zeros(size, dtype=torch.long))
    x1, y1, x2, y2 = cutmix_box(0.5, 32, 32)
    assert (x1, y1) == (0, 0) and (x2 - x1) * (y2 - y1) / 1024 < 0.5


def test_mixer_validates_and_passes_through():
    with pytest.raises(ValueError, match="mixing alpha must be a positive finite number"):
        BatchMixer("cutmix", alpha=0.0)
    with pytest.raises(ValueError, match="mixing probability must be between 0 and 1, got 1.5"):
        BatchMixer("cutmix", prob=1.5)
    with pytest.raises(ValueError, match="unknown mixing 'cutout'; valid: cutmix, mixup, none"):
        BatchMixer("cutout")
    images = torch.rand(4, 1, 8, 8)
    untouched = BatchMixer("cutmix", prob=0.0)(images, torch.arange(4))
    assert untouched.images is images and untouched.lam == 1.0


def test_mixed_cross_entropy_is_equation_9():
    torch.manual_seed(0)
    logits = torch.randn(6, 4)
    batch = MixedBatch(torch.zeros(6, 1, 2, 2), torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([3, 2, 1, 0, 1, 0]), 0.3)
    expected = 0.3 * F.cross_entropy(logits, batch.labels) + 0.7 * F.cross_entropy(logits, batch.partner_labels)
    torch.testing.assert_close(mixed_cross_entropy(logits, batch), expected)
    # and equals cross-entropy against the soft labels
    torch.testing.assert_close(mixed_cross_entropy(logits, batch), F.cross_entropy(logits, batch.soft_labels(4)))


class FixedTeacher(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.seen = None
        self.bn = torch.nn.BatchNorm1d(1)

    def forward(self, images):
        self.seen = images
        assert not self.training and not torch.is_grad_enabled()
        return self.logits


def test_hard_distillation_is_equation_10_on_the_mixed_images():
    torch.manual_seed(0)
    teacher_logits = torch.randn(6, 4)
    teacher = FixedTeacher(teacher_logits)
    loss_fn = DistillationLoss(teacher, "hard", alpha=0.5)
    batch = MixedBatch(torch.randn(6, 1, 2, 2), torch.tensor([0, 1, 2, 3, 0, 1]),
                       torch.tensor([1, 1, 1, 1, 1, 1]), 0.75)
    class_logits, distill_logits = torch.randn(6, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)
    loss_fn.train()  # a parent's .train() must not switch the teacher out of eval mode
    loss = loss_fn((class_logits, distill_logits), batch)
    expected = (0.5 * mixed_cross_entropy(class_logits, batch)
                + 0.5 * F.cross_entropy(distill_logits, teacher_logits.argmax(1)))
    torch.testing.assert_close(loss, expected)
    assert teacher.seen is batch.images
    loss.backward()
    assert distill_logits.grad is not None


def test_soft_distillation_is_deits_kl():
    teacher_logits, distill_logits = torch.randn(5, 3), torch.randn(5, 3)
    batch = MixedBatch(torch.zeros(5, 1, 2, 2), torch.arange(5) % 3, torch.arange(5) % 3, 1.0)
    class_logits = torch.randn(5, 3)
    loss = DistillationLoss(FixedTeacher(teacher_logits), "soft", alpha=0.25, temperature=2.0)(
        (class_logits, distill_logits), batch)
    p_teacher = F.softmax(teacher_logits / 2, 1)
    kl = (p_teacher * (p_teacher.log() - F.log_softmax(distill_logits / 2, 1))).sum(1).mean() * 4
    torch.testing.assert_close(loss, 0.25 * F.cross_entropy(class_logits, batch.labels) + 0.75 * kl)


def test_distillation_loss_rejects_bad_settings():
    with pytest.raises(ValueError, match="hard distillation needs a teacher"):
        DistillationLoss(None, "hard")
    with pytest.raises(ValueError, match="distillation alpha must be between 0 and 1, got 1.5"):
        DistillationLoss(None, "none", alpha=1.5)


def test_topk_counts():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.05], [0.2, 0.3, 0.5]])
    assert topk_correct(logits, torch.tensor([1, 1, 0]), ks=(1, 2)) == [1, 2]


@pytest.mark.parametrize("seed", range(5))
def test_macro_scores_match_scikit_learn(seed):
    torch.manual_seed(seed)
    targets = torch.randint(0, 7, (300,))
    predictions = torch.where(torch.rand(300) < 0.6, targets, torch.randint(0, 7, (300,)))
    predictions[predictions == 6] = 5  # class 6 is never predicted: zero-division case
    confusion = confusion_matrix(predictions, targets, 7)
    precision, recall, f1 = macro_scores(confusion)
    expected = precision_recall_fscore_support(targets, predictions, average="macro", zero_division=0, labels=range(7))
    assert (precision, recall, f1) == pytest.approx(expected[:3])
    metrics = metrics_from_counts(confusion, top5_correct=250, loss_sum=30.0)
    assert metrics.top1 == pytest.approx(float((predictions == targets).float().mean()))
    assert metrics.top5 == pytest.approx(250 / 300) and metrics.loss == pytest.approx(0.1)
