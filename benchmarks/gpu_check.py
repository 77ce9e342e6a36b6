"""Every GPU check of the kit, in one command, written up as one Markdown report.

On ``--device`` (default: cuda if there is one, else cpu) it runs, each in its own process,
with its own time limit, so that one failing or hanging never stops the others:

- ``notebooks``: the smoke notebook series (``titn-lite notebooks run --profile smoke``) in
  a temporary folder;
- ``teacher``, ``titn``, ``titn-loader``, ``titn-compiled``: one paper-profile epoch of
  VGG16-BN, then of TITN distilled from it, eager (the batch path, then the DataLoader path)
  and with ``--compile``, on Fashion-MNIST (Debian's files in
  ``/usr/share/datasets/fashion-mnist``, or ``--data-dir``);
- ``throughput``: ``benchmarks/throughput.py``'s table (ViT, DeiT, TNT, TITN, timm's TNT when
  timm is installed): train and inference images/s, and the fraction of the card's dense
  bf16 peak where the card is known;
- ``pipeline``: the paper augmentation's images/s on the batch path and on the DataLoader
  path (``benchmarks/augment_speed.py``).

The report has one row per check (status, its figure, seconds), then each check's command
and the tail of its output. ``--quick`` runs every check at its smallest size (one
notebook, a tiny subset for one step, one small throughput round): on ``--device cpu`` it
takes a few minutes at most, for CI.

Run: python benchmarks/gpu_check.py [--device cuda] [--quick] [--out gpu_check.md]
     [--data-dir DIR] [--only notebooks,throughput] [--mini]
On a 2-core CPU, the data paths' comparison (issue #32):
     python benchmarks/gpu_check.py --device cpu --mini --only teacher,titn,titn-loader,pipeline
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# Dense bf16 peaks (TFLOP/s, without sparsity) of cards whose name contains the key.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L4": 121.0,
                    "A10G": 125.0, "RTX 4090": 165.0}


@dataclass
class Check:
    name: str
    what: str
    command: list[str]
    timeout: float
    figure: callable = field(default=lambda output: "")  # the headline number from the output
    cwd: str | None = None  # where it runs (the temporary folder)
    status: str = "not run"
    seconds: float = 0.0
    result: str = ""
    output: str = ""


def peak_tflops(device: str) -> float | None:
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def last_match(pattern: str, text: str, template: str) -> str:
    matches = re.findall(pattern, text, flags=re.MULTILINE)
    if not matches:
        return ""
    groups = matches[-1] if isinstance(matches[-1], tuple) else (matches[-1],)  # one group: findall gives strings
    return template.format(*groups)


def train_figure(output: str) -> str:
    speed = last_match(r"last epoch: (\d+) img/s", output, ", {} img/s")
    return last_match(r"top-1 ([\d.]+)%", output, "top-1 {}%") + speed


def throughput_figure(output: str) -> str:
    rows = re.findall(r"^\| (\w+) \| [\d.]+ \| (\d+) \| [\d.]+ \| (\d+) \|(?: [\d.]+ \| [\d.]+ \|)?", output,
                      flags=re.MULTILINE)
    return "; ".join(f"{name} {train}/{infer}" for name, train, infer in rows) + (" img/s train/infer" if rows else "")


def pipeline_figure(output: str) -> str:
    rows = re.findall(r"^\| (\w+) \| [^|]+ \| (\d+) \| (\d+) \| ([\d.]+) \|", output, flags=re.MULTILINE)
    return "; ".join(f"{recipe} batch {b} vs DataLoader {d} img/s ({r}x)" for recipe, b, d, r in rows)


def build_checks(device: str, quick: bool, data_dir: str | None, workdir: Path, *, mini: bool = False) -> list[Check]:
    python, cli = sys.executable, [sys.executable, "-m", "titn_lite"]
    if data_dir is None and (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        data_dir = str(DEBIAN_FASHION_MNIST)
    # Quick, asked for, or without Fashion-MNIST's files: the embedded mini set (10,000 images) stands in.
    dataset = ["--dataset", "fashion-mnist", "--data-dir", data_dir] if data_dir and not (quick or mini) else \
        ["--dataset", "fashion-mnist-mini"]
    size = ["--train-subset", "64", "--test-subset", "32", "--batch-size", "32", "--workers", "0",
            "--override", "depth=1"] if quick else []
    train = [*cli, "train", "--profile", "paper", "--epochs", "1", "--device", device, "--quiet", *dataset]
    teacher_dir = workdir / "teacher"
    teacher_size = [s for s in size if s not in ("--override", "depth=1")]  # VGG16-BN has no depth
    peak = peak_tflops(device)
    throughput = [python, str(HERE / "throughput.py"), "--device", device.split(":")[0]]
    throughput += (["--batch-size", "8", "--steps", "1", "--rounds", "1", "--warmup", "1"] if quick else ["--compile"])
    if peak:
        throughput += ["--peak-tflops", str(peak)]
    pipeline = [python, str(HERE / "augment_speed.py"), "--device", device]
    pipeline += ["--batch-size", "64", "--batches", "1", "--rounds", "1"] if quick else []
    notebooks = [*cli, "notebooks", "run", "--profile", "smoke", "--device", device,
                 "--out", str(workdir / "notebooks"), "--artifacts", str(workdir / "artifacts")]
    notebooks += ["--only", "01"] if quick else []
    limit = 170 if quick else 1800
    return [
        Check("notebooks", "smoke notebook series" + (" (01 only)" if quick else ""), notebooks, limit,
              lambda out: last_match(r"(\d+) notebooks?", out, "{} notebooks")),
        Check("teacher", "VGG16-BN, one paper-profile epoch", [*train, "--model", "vgg16_bn", *teacher_size,
                                                                "--out", str(teacher_dir)], limit, train_figure),
        Check("titn", "TITN distilled from it, one epoch, eager",
              [*train, "--model", "titn", "--teacher", str(teacher_dir), *size, "--out", str(workdir / "titn")],
              limit, train_figure),
        Check("titn-loader", "the same on the DataLoader path (--data-path loader, the reference)",
              [*train, "--model", "titn", "--teacher", str(teacher_dir), *size, "--data-path", "loader",
               "--out", str(workdir / "titn-loader")], limit, train_figure),
        Check("titn-compiled", "the same with --compile",
              [*train, "--model", "titn", "--teacher", str(teacher_dir), *size, "--compile",
               "--out", str(workdir / "titn-compiled")], limit, train_figure),
        Check("throughput", "ViT, DeiT, TNT, TITN, timm TNT: train/infer img/s"
              + (f" (peak {peak:g} TFLOP/s bf16)" if peak else ""), throughput, limit, throughput_figure),
        Check("pipeline", "paper augmentation: batch path vs DataLoader (2 workers)", pipeline, limit, pipeline_figure),
    ]


def run_check(check: Check) -> None:
    started = time.perf_counter()
    try:
        done = subprocess.run(check.command, capture_output=True, text=True, timeout=check.timeout, cwd=check.cwd,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        check.output = done.stdout + done.stderr
        check.status = "pass" if done.returncode == 0 else f"fail (exit {done.returncode})"
    except subprocess.TimeoutExpired as error:
        check.output = ((error.stdout or b"").decode(errors="replace") if isinstance(error.stdout, bytes)
                        else (error.stdout or ""))
        check.status = f"fail (over {check.timeout:.0f} s)"
    except OSError as error:
        check.output, check.status = str(error), "fail (did not start)"
    check.seconds = time.perf_counter() - started
    try:
        check.result = check.figure(check.output) if check.status == "pass" else ""
    except Exception as error:  # a figure that cannot be read is no reason to lose the row
        check.result = f"(figure unreadable: {error})"


def report(checks: list[Check], device: str, quick: bool) -> str:
    where = (torch.cuda.get_device_name(torch.device(device))
             if device.startswith("cuda") and torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores")
    lines = [f"# GPU check{' (quick)' if quick else ''}", "",
             f"device {device} ({where}); torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", "",
             "| check | what | status | figure | seconds |", "|---|---|---|---|---:|"]
    lines += [f"| {c.name} | {c.what} | {c.status} | {c.result} | {c.seconds:.0f} |" for c in checks]
    failed = [c.name for c in checks if c.status != "pass"]
    lines += ["", f"{len(checks) - len(failed)} of {len(checks)} checks passed"
              + (f"; failed: {', '.join(failed)}" if failed else "")]
    for check in checks:
        tail = "\n".join(check.output.strip().splitlines()[-25:])
        lines += ["", f"## {check.name}", "", "`" + " ".join(check.command) + "`", "", "```", tail, "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="every check at its smallest size (CI, on a CPU)")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.md"), help="the Markdown report")
    parser.add_argument("--data-dir", help=f"Fashion-MNIST's IDX files (default: {DEBIAN_FASHION_MNIST} if there)")
    parser.add_argument("--only", help="comma-separated check names (default: all)")
    parser.add_argument("--mini", action="store_true", help="train on the embedded fashion-mnist-mini (10,000 "
                                                            "images) even where the full files are there: a CPU's size")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="titn-gpu-check-") as workdir:
        checks = build_checks(args.device, args.quick, args.data_dir, Path(workdir), mini=args.mini)
        for check in checks:
            check.cwd = workdir
        if args.only:
            wanted = args.only.split(",")
            unknown = set(wanted) - {c.name for c in checks}
            if unknown:
                parser.error(f"unknown checks {sorted(unknown)}; valid: {', '.join(c.name for c in checks)}")
            checks = [c for c in checks if c.name in wanted]
        for check in checks:
            print(f"{check.name}: {check.what} ...", flush=True)
            run_check(check)
            print(f"  {check.status} in {check.seconds:.0f} s  {check.result}", flush=True)
    text = report(checks, args.device, args.quick)
    args.out.write_text(text)
    print(f"\nreport: {args.out}")
    return 0 if all(c.status == "pass" for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
