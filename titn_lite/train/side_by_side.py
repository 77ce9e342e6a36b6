"""Several runs at once on a CPU: each in a worker process of its own, on one thread.

A notebook that trains many short runs (08's five students x three seeds, 10's ablations, 11's
three arms x five seeds) hands them to ``train_side_by_side``, through ``Course.make_runs``. Two
reasons for one thread a run:

- a thread count can change a run's numbers: threads split a sum into parts and add them in
  another order, so the last bits of the weights can differ (measured for TITN: its weights after
  ten steps on one thread and on two). At one thread a run's weights are the same bit for bit alone
  in JupyterLab, beside another notebook in a series, or on any number of cores
  (``tests/test_side_by_side.py``);
- these models are small: two one-thread runs side by side train 1.2-1.6 times as many steps a
  second as one run on two threads (``benchmarks/side_by_side.py``; docs/measurements.md).

As many runs go at once as the caller's ``cores()`` says, asked again whenever a run ends (and
every ``POLL_SECONDS``), so a notebook left alone in a side-by-side series takes the core the
others freed. The workers are plain subprocesses (``python -m titn_lite.train.side_by_side``)
that read one run at a time from a pipe: unlike ``multiprocessing``, they never re-run the
caller's script, so a notebook, a script without a ``__main__`` guard and the CLI all work alike.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import selectors
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from tqdm.auto import tqdm

from titn_lite.system.cpu import CORE_SHARE_VARIABLE, available_cores
from titn_lite.system.usage import UsageError
from titn_lite.train.config import TrainConfig

THREADS_PER_RUN = 1
POLL_SECONDS = 2.0


@contextmanager
def threads(count: int = THREADS_PER_RUN) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` for the block, then put back."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def side_by_side_available() -> bool:
    """Whether runs can train side by side here (the workers' pipes are watched with ``selectors``,
    which on Windows cannot watch pipes: runs there train one after another)."""
    return os.name == "posix"


class RunFailed(RuntimeError):
    """A run trained in a worker failed; the message names the run and says why."""


class _Worker:
    """One worker process and the run it is training (None while idle)."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != CORE_SHARE_VARIABLE}
        env.update(OMP_NUM_THREADS=str(THREADS_PER_RUN), MKL_NUM_THREADS=str(THREADS_PER_RUN))
        self.process = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env, text=True)
        self.config: TrainConfig | None = None

    def start(self, config: TrainConfig) -> None:
        self.config = config
        assert self.process.stdin is not None
        self.process.stdin.write(base64.b64encode(pickle.dumps(config)).decode() + "\n")
        self.process.stdin.flush()

    def reply(self) -> dict[str, Any]:
        """The worker's answer for its run: read once its pipe has a line (or has closed)."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        config, self.config = self.config, None
        if not line:
            raise RunFailed(f"the worker training {config.out_dir if config else 'a run'} ended without finishing it "
                            f"(exit code {self.process.wait()}): out of memory, or killed?")
        return json.loads(line)

    def close(self, *, now: bool = False) -> None:
        if now:
            self.process.terminate()
        elif self.process.stdin is not None:
            self.process.stdin.close()  # the worker's loop ends with its input
        self.process.wait()


def train_side_by_side(configs: Sequence[TrainConfig], cores: Callable[[], int], *, progress: bool = True,
                       label: str = "runs") -> None:
    """Train (or finish, or just check) every run of ``configs`` in worker processes, each on
    ``THREADS_PER_RUN`` thread(s), at most ``cores()`` at once, starting them in the given order.
    The first run that fails stops the others (each resumes from its last epoch next time) and
    its error is raised here; so does an interrupt (a notebook's stop button)."""
    pending = list({str(config.out_dir): config for config in configs}.values())  # each run once
    most = max(1, available_cores())
    workers: list[_Worker] = []
    watching = selectors.DefaultSelector()
    bar = tqdm(total=len(pending), desc=label, unit="run", disable=not progress)
    failed = True
    try:
        while pending or any(worker.config is not None for worker in workers):
            at_once = max(1, min(most, cores()))
            busy = sum(worker.config is not None for worker in workers)
            while pending and busy < at_once:
                idle = next((worker for worker in workers if worker.config is None), None)
                if idle is None:
                    idle = _Worker()
                    workers.append(idle)
                    watching.register(idle.process.stdout, selectors.EVENT_READ, idle)
                idle.start(pending.pop(0))
                busy += 1
            bar.set_postfix_str(f"{busy} at once")
            for key, _ in watching.select(timeout=POLL_SECONDS):
                worker = key.data
                config = worker.config
                answer = worker.reply()
                if not answer["ok"]:
                    error = UsageError if answer["usage"] else RunFailed
                    raise error(answer["error"] if answer["usage"] else f"{config.out_dir}: {answer['error']}")
                bar.update()
        failed = False
    finally:
        bar.close()
        watching.close()
        for worker in workers:
            worker.close(now=failed)


def _serve() -> None:
    """A worker's loop: a run per input line (a pickled config), an answer per output line."""
    from titn_lite.train.runs import train_or_load  # here: the parent imports this module without the run layer

    torch.set_num_threads(THREADS_PER_RUN)
    answers, sys.stdout = sys.stdout, sys.stderr  # anything a run prints goes to stderr, not into the answers
    for line in sys.stdin:
        config = pickle.loads(base64.b64decode(line))
        try:
            train_or_load(config, progress=False)
            answer: dict[str, Any] = {"ok": True}
        except Exception as error:  # reported to the parent, which raises it
            usage = isinstance(error, UsageError)  # its message says what to do; anything else, what broke
            answer = {"ok": False, "usage": usage, "error": str(error) if usage else f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    _serve()
