"""The teacher labels each image once where a run's views never change: the same numbers,
for a fraction of the teacher's work."""

import pytest
import torch

from titn_lite.models.teachers import create_teacher
from titn_lite.train import engine
from titn_lite.train.config import TrainConfig
from titn_lite.train.losses import RememberingTeacher
from titn_lite.train.runs import train


@pytest.mark.parametrize("channels_last", [False, True])  # the engine gives a CNN teacher channels-last weights
def test_a_teachers_logits_for_an_image_do_not_depend_on_the_rest_of_its_batch(channels_last):
    # What RememberingTeacher stands on: an image labelled in one batch of two or more gets, bit
    # for bit, the logits it would get in any other; a lone image, labelled as a pair, too.
    torch.manual_seed(0)
    teacher = create_teacher("small_cnn", num_classes=10, in_chans=1).eval()
    if channels_last:
        teacher = teacher.to(memory_format=torch.channels_last)
    images = torch.randn(100, 1, 32, 32)
    with torch.no_grad():
        whole = teacher(images)
        for picked in (torch.randperm(100)[:64], torch.arange(7), torch.tensor([98, 99]), torch.arange(100)):
            assert torch.equal(teacher(images[picked]), whole[picked])
        for lone in range(100):
            assert torch.equal(RememberingTeacher(teacher)(images[lone:lone + 1]), whole[lone:lone + 1])


class _Counted(torch.nn.Module):
    def __init__(self, teacher):
        super().__init__()
        self.teacher, self.images = teacher, 0

    def forward(self, images):
        self.images += len(images)
        return self.teacher(images)


def test_it_labels_only_images_it_has_not_seen_and_answers_as_the_teacher_would():
    torch.manual_seed(0)
    counted = _Counted(create_teacher("small_cnn", num_classes=10, in_chans=1).eval())
    remembering = RememberingTeacher(counted)
    images = torch.randn(50, 1, 32, 32)
    with torch.no_grad():
        first = remembering(images[:30])
        again = remembering(images[torch.arange(29, -1, -1)])  # the same 30, another order
        mixed = remembering(images[20:50])  # 10 seen, 20 new
        changed = remembering(images[:5] + 0.01)  # an augmented view is another image
        assert counted.images == 30 + 0 + 20 + 5
        assert torch.equal(first, counted.teacher(images[:30]))
        assert torch.equal(again, first.flip(0))
        assert torch.equal(mixed, counted.teacher(images[20:50]))
        assert torch.equal(changed, counted.teacher(images[:5] + 0.01))


@pytest.mark.parametrize("distill", ["hard", "soft"])
def test_a_distilled_run_with_it_trains_exactly_as_one_that_asks_the_teacher_every_step(tmp_path, monkeypatch,
                                                                                         distill):
    settings = dict(model="deit", profile="smoke", epochs=3, distill=distill, teacher="small_cnn")
    remembered = train(TrainConfig(**settings, out_dir=str(tmp_path / "remembered")), progress=False)

    made = []
    monkeypatch.setattr(engine, "RememberingTeacher", lambda teacher: made.append(teacher) or teacher)
    asked = train(TrainConfig(**settings, out_dir=str(tmp_path / "asked")), progress=False)
    assert made, "the smoke profile neither augments nor mixes: the engine should have remembered"
    for a, b in zip(remembered.history, asked.history):
        assert {k: v for k, v in a.items() if k not in ("seconds", "images_per_second")} == \
               {k: v for k, v in b.items() if k not in ("seconds", "images_per_second")}
    for (name, a), b in zip(remembered.model().state_dict().items(), asked.model().state_dict().values()):
        assert torch.equal(a, b), name


def test_a_run_whose_views_change_asks_the_teacher_every_time(tmp_path, monkeypatch):
    made = []
    monkeypatch.setattr(engine, "RememberingTeacher", lambda teacher: made.append(teacher) or teacher)
    train(TrainConfig("deit", profile="smoke", epochs=1, mix="cutmix", teacher="small_cnn",
                      out_dir=str(tmp_path / "mixed")), progress=False)
    assert not made
