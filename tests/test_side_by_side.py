"""A course's runs on a CPU train on one thread each, several at once in worker processes: the
same numbers as one after another, no more at once than the cores it is given, and a failing run
stops the rest with its own message."""

import pytest
import torch

from titn_lite.classroom.course import Course
from titn_lite.system.usage import UsageError
from titn_lite.train import side_by_side
from titn_lite.train.run_folder import RunFolder


def _measured(run):  # a run's history without its timings
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_second")} for row in run.history]


def _weights(run):
    return torch.load(run.folder.checkpoint_path, map_location="cpu", weights_only=False)["model"]


def test_runs_side_by_side_equal_the_same_runs_one_after_another_on_one_thread(tmp_path):
    together = Course("smoke", artifacts=tmp_path / "together", progress=False).seed_runs("deit", seeds=2)
    alone = Course("smoke", artifacts=tmp_path / "alone", progress=False)
    threads_before = torch.get_num_threads()
    one_by_one = [alone.run("deit", seed=seed) for seed in range(2)]  # in this process, on one thread
    assert torch.get_num_threads() == threads_before  # put back after the run
    for a, b in zip(together, one_by_one, strict=True):
        assert a.metrics.top1 == b.metrics.top1 and _measured(a) == _measured(b)
        wa, wb = _weights(a), _weights(b)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 2)])
def test_no_more_runs_at_once_than_the_cores_given(cores, workers, tmp_path, monkeypatch):
    started = []
    real = side_by_side._Worker.__init__

    def counting(self):
        started.append(self)
        real(self)

    monkeypatch.setattr(side_by_side._Worker, "__init__", counting)
    monkeypatch.setattr(side_by_side, "available_cores", lambda: 4)
    course = Course("smoke", artifacts=tmp_path / "a", progress=False)
    configs = [course.prepare_run("vit", seed=seed) for seed in range(3)]
    side_by_side.train_side_by_side(configs, lambda: cores, progress=False)
    assert len(started) == workers  # one worker process per run at once, each reused for the next run
    assert all(RunFolder(config.out_dir).is_complete for config in configs)


def test_a_failing_run_stops_the_others_and_its_message_comes_through(tmp_path):
    course = Course("smoke", artifacts=tmp_path / "a", progress=False)
    configs = [course.prepare_run("vit", seed=seed) for seed in range(2)]
    broken = RunFolder(configs[0].out_dir)
    broken.path.mkdir(parents=True)
    broken.checkpoint_path.write_bytes(b"not a checkpoint")  # a run stopped mid-write: resuming it fails in the worker
    with pytest.raises(UsageError, match="not a readable titn-lite checkpoint"):
        side_by_side.train_side_by_side(configs, lambda: 2, progress=False)
    assert not broken.is_complete
