"""Images per second of the Table 1 students and timm's TNT, training and inference, in
one interleaved run, each beside its FLOPs (achieved GFLOP/s).

Every model: 32x32 RGB, 100 classes (the paper's CIFAR-100 setting), patch 8, patch dim
192, depth 12, 8 outer heads; the TNT family adds pixel size 2 (16 pixels per patch),
pixel dim 12 and 4 inner heads. timm's TNT gets the same sizes (``first_stride=2`` makes
its 16 pixels per patch). A training step is forward, loss, backward and an AdamW step;
DeiT and TITN do their real step (two heads, two cross-entropies, as in hard
distillation with the teacher's labels given). Inference is a forward pass under
``torch.inference_mode`` in eval mode.

Achieved GFLOP/s = images/s x FLOPs per image, where FLOPs come from
``torch.utils.flop_counter`` (forward only; a training step is counted as 3x the forward,
the usual forward + backward estimate). On a GPU the models run in bfloat16 autocast and,
with ``--compile``, under ``torch.compile``; the card's dense bf16 peak (``--peak-tflops``)
turns achieved FLOP/s into a fraction of the peak.

``--config classroom``: the classroom profile's models instead (depth 4, 1x32x32, 10
classes, the profile's batch), each in three modes: eager; compiled, with the seconds its
compilation took and the training images after which that is paid back; and the profile's
seeds trained as one batched model (``torch.func.stack_module_state`` + ``vmap``: one step
updates every seed, each on its own batch), counted in images of all seeds per second.

Run: python benchmarks/throughput.py [--device cpu|cuda] [--compile] [--rounds 5]
     python benchmarks/throughput.py --config classroom [--rounds 5]
Needs timm for the reference TNT (pip install -e ".[bench]"); without it, that row is left out.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import titn_lite
from titn_lite.results.flops import count_flops

NUM_CLASSES = 100
STUDENTS = ["vit", "deit", "tnt", "titn"]


def make_timm_tnt(*, num_classes: int = NUM_CLASSES, in_chans: int = 3, depth: int = 12) -> torch.nn.Module | None:
    try:
        from timm.models.tnt import TNT
    except ImportError:
        print('timm is not installed (pip install -e ".[bench]"): its TNT is left out')
        return None
    return TNT(img_size=32, patch_size=8, in_chans=in_chans, num_classes=num_classes, embed_dim=192,
               inner_dim=12, depth=depth, num_heads_outer=8, num_heads_inner=4, qkv_bias=True, first_stride=2)


def loss_of(outputs, labels: torch.Tensor, teacher_labels: torch.Tensor) -> torch.Tensor:
    if isinstance(outputs, tuple):
        class_logits, distill_logits = outputs
        return 0.5 * F.cross_entropy(class_logits, labels) + 0.5 * F.cross_entropy(distill_logits, teacher_labels)
    return F.cross_entropy(outputs, labels)


class Runner:
    """One model's training step and inference pass on a fixed batch."""

    def __init__(self, model: torch.nn.Module, batch: tuple[torch.Tensor, ...], *, autocast, compile: bool):
        self.model = model
        self.batch = batch
        self.autocast = autocast
        self.forward = torch.compile(model) if compile else model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def train_step(self) -> None:
        self.model.train()
        images, labels, teacher_labels = self.batch
        with self.autocast():
            loss = loss_of(self.forward(images), labels, teacher_labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def infer(self) -> None:
        self.model.eval()
        with torch.inference_mode(), self.autocast():
            self.forward(self.batch[0])


def images_per_second(step: Callable[[], None], steps: int, batch_size: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


class BatchedSeeds:
    """``seeds`` copies of one model (its seeds' initial weights) trained as one: the
    parameters stacked along a new first dimension, the step vmapped over it; each copy gets
    its own copy of the benchmark's batch (images (S, B, C, H, W)), as a throughput measure
    needs. AdamW is elementwise, so one AdamW over the stacked tensors is each seed's own
    AdamW (here PyTorch's defaults on every parameter, like the eager column's)."""

    def __init__(self, make: Callable[[], torch.nn.Module], seeds: int, batch: tuple[torch.Tensor, ...]):
        from torch.func import functional_call, grad, stack_module_state, vmap

        models = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            models.append(make().to(batch[0].device).train())
        params, buffers = stack_module_state(models)
        self.params = {name: p.detach().requires_grad_(False) for name, p in params.items()}
        self.buffers = buffers
        template = copy.deepcopy(models[0]).to("meta")

        def loss(p, b, images, labels, teacher_labels):
            return loss_of(functional_call(template, (p, b), (images,)), labels, teacher_labels)

        self.grads = vmap(grad(loss), in_dims=(0, 0, 0, 0, 0), randomness="different")
        self.optimizer = torch.optim.AdamW(list(self.params.values()), lr=1e-3)
        self.batch = tuple(t.unsqueeze(0).expand(seeds, *t.shape).contiguous() for t in batch)

    def train_step(self) -> None:
        grads = self.grads(self.params, self.buffers, *self.batch)
        for name, tensor in self.params.items():
            tensor.grad = grads[name]
        self.optimizer.step()


def classroom(args: argparse.Namespace, device: torch.device) -> None:
    """The classroom table: eager, compiled (with its warm-up) and batched seeds per model."""
    from titn_lite.data.datasets import dataset_info
    from titn_lite.train.profiles import get_profile

    settings = get_profile("classroom")
    info = dataset_info("fashion-mnist-mini")
    depth = settings.model_overrides["depth"]
    batch_size = args.batch_size or settings.batch_size
    torch.manual_seed(0)
    batch = (torch.randn(batch_size, info.in_chans, 32, 32, device=device),
             torch.randint(0, info.num_classes, (batch_size,), device=device),
             torch.randint(0, info.num_classes, (batch_size,), device=device))

    def maker(name: str) -> Callable[[], torch.nn.Module | None]:
        if name == "timm_tnt":
            return lambda: make_timm_tnt(num_classes=info.num_classes, in_chans=info.in_chans, depth=depth)
        return lambda: titn_lite.create_model(name, num_classes=info.num_classes, in_chans=info.in_chans,
                                              **settings.model_overrides)

    names = [n for n in args.models.split(",") if n == "timm_tnt" or n in titn_lite.list_models()]
    runners: dict[tuple[str, str], Callable[[], None]] = {}
    compile_seconds: dict[str, float] = {}
    for name in names:
        if maker(name)() is None:
            continue
        for mode in ("eager", "compiled"):
            torch.manual_seed(0)
            runner = Runner(maker(name)().to(device), batch, autocast=contextlib.nullcontext,
                            compile=mode == "compiled")
            started = time.perf_counter()
            for _ in range(args.warmup):
                runner.train_step()
            if mode == "compiled":
                compile_seconds[name] = time.perf_counter() - started
            runners[name, mode] = runner.train_step
        if name != "timm_tnt":
            try:
                seeds = BatchedSeeds(maker(name), settings.seeds, batch)
                for _ in range(args.warmup):
                    seeds.train_step()
                runners[name, "batched"] = seeds.train_step
            except Exception as error:  # a model vmap cannot batch: say so rather than stop the table
                print(f"{name}: batched seeds failed ({type(error).__name__}: {error})")

    images = {"eager": batch_size, "compiled": batch_size, "batched": batch_size * settings.seeds}
    rates: dict[tuple[str, str], list[float]] = {key: [] for key in runners}
    for _ in range(args.rounds):  # interleaved, so drift in the machine's load hits every mode alike
        for (name, mode), step in runners.items():
            rates[name, mode].append(images_per_second(step, args.steps, images[mode], device))
    median = {key: statistics.median(values) for key, values in rates.items()}

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\nclassroom config: depth {depth}, {info.in_chans}x32x32, {info.num_classes} classes, batch "
          f"{batch_size}, float32; torch {torch.__version__}, {where}; medians of {args.rounds} rounds of "
          f"{args.steps} training steps\n")
    print("| model | eager img/s | compiled img/s | compile warm-up s | compile pays back after (images) | "
          f"{settings.seeds} seeds batched img/s | batched / eager |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in dict.fromkeys(n for n, _ in runners):
        eager, compiled = median[name, "eager"], median[name, "compiled"]
        # Compilation pays back once the seconds saved per image, times the images, exceed the
        # warm-up's extra seconds (its steps would have taken warmup * batch / eager eagerly).
        extra = compile_seconds[name] - args.warmup * batch_size / eager
        saved = 1 / eager - 1 / compiled
        payback = f"{extra / saved:,.0f}" if saved > 0 else "never"
        batched = median.get((name, "batched"))
        print(f"| {name} | {eager:.0f} | {compiled:.0f} | {compile_seconds[name]:.0f} | {payback} | "
              + (f"{batched:.0f} | {batched / eager:.2f} |" if batched else "- | - |"))
    for mode in ("eager", "compiled"):
        if ("titn", mode) in median and ("timm_tnt", mode) in median:
            print(f"TITN / timm TNT, {mode}: {median['titn', mode] / median['timm_tnt', mode]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--batch-size", type=int, help="default: 64 on the CPU, 1024 on a GPU (the paper's)")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per model and mode")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per model and mode first")
    parser.add_argument("--compile", action="store_true", help="torch.compile every model (GPU: worth it)")
    parser.add_argument("--models", default=",".join(STUDENTS + ["timm_tnt"]),
                        help="comma-separated: vit, deit, tnt, titn, titn_large_patch, timm_tnt")
    parser.add_argument("--config", choices=("table1", "classroom"), default="table1",
                        help="table1: the paper's sizes; classroom: the classroom profile's "
                             "(eager, compiled, batched seeds)")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="the GPU's dense bf16 peak, for the fraction column (H100 SXM: 989)")
    args = parser.parse_args()

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    if args.config == "classroom":
        return classroom(args, device)
    batch_size = args.batch_size or (1024 if device.type == "cuda" else 64)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" \
        else contextlib.nullcontext
    torch.manual_seed(0)
    batch = (torch.randn(batch_size, 3, 32, 32, device=device),
             torch.randint(0, NUM_CLASSES, (batch_size,), device=device),
             torch.randint(0, NUM_CLASSES, (batch_size,), device=device))
    runners: dict[str, Runner] = {}
    flops: dict[str, float] = {}
    for name in args.models.split(","):
        model = make_timm_tnt() if name == "timm_tnt" else titn_lite.create_model(name, num_classes=NUM_CLASSES)
        if model is None:
            continue
        flops[name] = count_flops(model)
        runners[name] = Runner(model.to(device), batch, autocast=autocast, compile=args.compile)

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, batch {batch_size}"
          + (", bf16 autocast" if device.type == "cuda" else ", float32") + (", compiled" if args.compile else ""))
    warmup_started = time.perf_counter()
    for runner in runners.values():
        for _ in range(args.warmup):
            runner.train_step()
            runner.infer()
    print(f"warm-up (incl. compilation): {time.perf_counter() - warmup_started:.0f} s")

    rates: dict[tuple[str, str], list[float]] = {(n, m): [] for n in runners for m in ("train", "infer")}
    for _ in range(args.rounds):  # interleaved, so drift in the machine's load hits every model alike
        for name, runner in runners.items():
            rates[name, "train"].append(images_per_second(runner.train_step, args.steps, batch_size, device))
            rates[name, "infer"].append(images_per_second(runner.infer, args.steps, batch_size, device))
    median = {key: statistics.median(values) for key, values in rates.items()}

    peak = args.peak_tflops * 1e12 if device.type == "cuda" else None
    print("\n| model | GFLOPs / image | train img/s | train GFLOP/s | infer img/s | infer GFLOP/s |"
          + (" train % of peak | infer % of peak |" if peak else "") + " train rounds |")
    print("|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if peak else "") + "---|")
    for name in runners:
        train, infer = median[name, "train"], median[name, "infer"]
        train_flops, infer_flops = 3 * flops[name] * train, flops[name] * infer
        row = (f"| {name} | {flops[name] / 1e9:.4f} | {train:.0f} | {train_flops / 1e9:.1f} | {infer:.0f} | "
               f"{infer_flops / 1e9:.1f} |")
        if peak:
            row += f" {100 * train_flops / peak:.1f} | {100 * infer_flops / peak:.1f} |"
        print(row + " " + ", ".join(f"{r:.0f}" for r in rates[name, "train"]) + " |")

    def ratio(a: str, b: str, mode: str) -> str:
        return f"{median[a, mode] / median[b, mode]:.2f}" if a in runners and b in runners else "-"

    print(f"\nTITN / timm TNT: train {ratio('titn', 'timm_tnt', 'train')}, infer {ratio('titn', 'timm_tnt', 'infer')}")
    print(f"TITN / ViT:      train {ratio('titn', 'vit', 'train')}, infer {ratio('titn', 'vit', 'infer')}"
          + (f"  (FLOP ratio ViT / TITN: {flops['vit'] / flops['titn']:.2f})" if {'vit', 'titn'} <= set(flops) else ""))


if __name__ == "__main__":
    main()
