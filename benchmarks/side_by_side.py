"""Two runs on one thread each, side by side, against one run on two threads: steps per second.

``Course.make_runs`` trains a notebook's runs one thread each, several at once
(``titn_lite.train.side_by_side``). This script measures what that buys on this machine: for each
student at the classroom profile's shape (depth 2, batch 64, 1x32x32 images, AdamW), the training
steps per second of

- one process on one thread (the figure each run has beside another notebook in a series),
- one process on two threads (a run alone on two cores, before),
- two processes on one thread each, side by side (a run alone on two cores, now: both their steps).

Each figure is steps per second over ``--seconds`` of training after a few warm-up steps; run it
on an otherwise idle machine with two or more cores.

    python benchmarks/side_by_side.py
    python benchmarks/side_by_side.py --models titn --seconds 30
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from titn_lite.models.students import list_models

WORKER = """
import sys, time, torch
import torch.nn.functional as F
from titn_lite import create_model
torch.set_num_threads(int(sys.argv[2]))
torch.manual_seed(0)
model = create_model(sys.argv[1], num_classes=10, in_chans=1, img_size=32, depth=2)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
images, labels = torch.randn(64, 1, 32, 32), torch.randint(0, 10, (64,))
def step():
    outputs = model(images)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    loss = sum(F.cross_entropy(out, labels) for out in outputs)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
for _ in range(3):
    step()
started, steps = time.perf_counter(), 0
while time.perf_counter() - started < float(sys.argv[3]):
    step()
    steps += 1
print(steps / (time.perf_counter() - started))
"""


def steps_per_second(model: str, threads: int, processes: int, seconds: float) -> float:
    """The summed steps per second of ``processes`` processes training ``model`` at once."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    running = [subprocess.Popen([sys.executable, "-c", WORKER, model, str(threads), str(seconds)],
                                stdout=subprocess.PIPE, text=True, env=env) for _ in range(processes)]
    return sum(float(process.communicate()[0]) for process in running)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(list_models()), help="comma-separated students")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of training per figure")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(list_models()))
    if unknown:
        parser.error(f"unknown models {', '.join(unknown)}; valid: {', '.join(list_models())}")
    print(f"steps per second, batch 64, depth 2, {args.seconds:g} s each ({os.cpu_count()} CPUs)")
    print(f"{'model':<18} {'1 run, 1 thread':>16} {'1 run, 2 threads':>17} {'2 runs, 1 thread each':>22} {'gain':>6}")
    for model in models:
        one = steps_per_second(model, 1, 1, args.seconds)
        two_threads = steps_per_second(model, 2, 1, args.seconds)
        side_by_side = steps_per_second(model, 1, 2, args.seconds)
        gain = side_by_side / two_threads
        print(f"{model:<18} {one:>16.2f} {two_threads:>17.2f} {side_by_side:>22.2f} {gain:>5.2f}x")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
