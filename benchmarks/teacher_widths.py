"""What small_cnn's widths and weight layout cost, and what its width buys in accuracy.

Prints, on one thread, a training step and a forward pass of ``SmallCNN`` (batch 64, 1x32x32)
for each width and weight layout (NCHW, channels-last); with ``--train``, trains the classroom
teachers (the course's, ``Course.teacher``, and notebook 11's, ``experiments.few_labels_teacher``)
at one set of widths and prints their seconds and validation top-1 (the course's also its test
top-1, which it reads once, after its last epoch).

    python benchmarks/teacher_widths.py
    python benchmarks/teacher_widths.py --train 16,32,64 --artifacts runs/bench-widths-16
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from titn_lite.models import teachers

WIDTHS = ((32, 64, 128), (24, 48, 96), (16, 32, 64))


def milliseconds(step, repeats: int = 10, warm_up: int = 3) -> float:
    for _ in range(warm_up):
        step()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return 1000 * (time.perf_counter() - started) / repeats


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               labels: torch.Tensor) -> None:
    loss = F.cross_entropy(model(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def step_costs() -> None:
    images, labels = torch.randn(64, 1, 32, 32), torch.randint(0, 10, (64,))
    print("| widths | weights | training step (ms) | forward pass (ms) | parameters |\n|---|---|---:|---:|---:|")
    for widths in WIDTHS:
        for channels_last in (False, True):
            torch.manual_seed(0)
            model = teachers.SmallCNN(10, 1, widths)
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            train = milliseconds(lambda model=model, optimizer=optimizer: train_step(model, optimizer, images, labels))
            model.eval()
            with torch.no_grad():
                forward = milliseconds(lambda model=model: model(images))
            print(f"| {'-'.join(map(str, widths))} | {'channels-last' if channels_last else 'NCHW'} | {train:.0f} | "
                  f"{forward:.0f} | {sum(p.numel() for p in model.parameters()):,} |")


def train_teachers(widths: tuple[int, ...], artifacts: Path) -> None:
    from titn_lite.classroom import experiments
    from titn_lite.classroom.course import Course

    built = teachers.SmallCNN.__init__

    def at_widths(self, num_classes: int, in_chans: int = 3, widths_: tuple[int, ...] = widths) -> None:
        built(self, num_classes, in_chans, widths_)

    # The run identity does not hold the widths (the kit has one small_cnn): keep --artifacts apart per width.
    teachers.SmallCNN.__init__ = at_widths
    course = Course("classroom", artifacts=artifacts, progress=False)
    for name, make in (("the course's", lambda: course.teacher()),
                       ("notebook 11's", lambda: experiments.few_labels_teacher(course)[1])):
        started = time.perf_counter()
        run = make()
        validated = [row["val_top1"] for row in run.history if row["val_top1"] == row["val_top1"]]  # not NaN
        print(f"{name} teacher at widths {'-'.join(map(str, widths))}: {time.perf_counter() - started:.0f} s, "
              f"validation top-1 {100 * validated[-1]:.1f}%, test top-1 {100 * run.metrics.top1:.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", help="widths to train the classroom teachers at, e.g. 16,32,64")
    parser.add_argument("--artifacts", default="runs/bench-widths")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.train:
        train_teachers(tuple(int(w) for w in args.train.split(",")), Path(args.artifacts))
    else:
        step_costs()


if __name__ == "__main__":
    main()
