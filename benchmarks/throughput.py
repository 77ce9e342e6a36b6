"""Training-step throughput of titn-lite's TITN against timm's TNT at the same config.

Both models: 32x32 RGB, 100 classes, patch 8, pixel 2 (16 pixels per patch), patch dim
192, pixel dim 12, depth 12, 8 outer heads, 4 inner heads; batch 64; SGD step.
TITN does its real step (two heads, two cross-entropies, as in hard distillation with
the teacher's labels given); timm's TNT has one head and one loss.

Run: python benchmarks/throughput.py [--steps 10 --rounds 5 --batch-size 64]
Needs timm (pip install -e ".[bench]"); it is not a dependency of the package.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import titn_lite


def make_timm_tnt(num_classes: int) -> torch.nn.Module:
    try:
        from timm.models.tnt import TNT
    except ImportError as error:
        raise SystemExit('timm is needed for this benchmark: pip install -e ".[bench]"') from error
    # first_stride=2 turns each 8x8 patch into 4x4 = 16 pixels, as pixel size 2 does for TITN.
    return TNT(img_size=32, patch_size=8, in_chans=3, num_classes=num_classes, embed_dim=192,
               inner_dim=12, depth=12, num_heads_outer=8, num_heads_inner=4, qkv_bias=True,
               first_stride=2)


def training_step(model, optimizer, images, labels, teacher_labels) -> None:
    outputs = model(images)
    if isinstance(outputs, tuple):
        class_logits, distill_logits = outputs
        loss = 0.5 * F.cross_entropy(class_logits, labels) + 0.5 * F.cross_entropy(distill_logits, teacher_labels)
    else:
        loss = F.cross_entropy(outputs, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def images_per_second(model, optimizer, batch, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        training_step(model, optimizer, *batch)
    return steps * batch[0].shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="training steps per timed round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per model")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per model first")
    args = parser.parse_args()

    torch.manual_seed(0)
    num_classes = 100
    models = {
        "titn-lite TITN": titn_lite.create_model("titn", num_classes=num_classes),
        "timm TNT": make_timm_tnt(num_classes),
    }
    batch = (torch.randn(args.batch_size, 3, 32, 32),
             torch.randint(0, num_classes, (args.batch_size,)),
             torch.randint(0, num_classes, (args.batch_size,)))
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
                  for name, m in models.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}")
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters())
        print(f"  {name:<15} {params / 1e6:.3f}M parameters")
        model.train()
        images_per_second(model, optimizers[name], batch, args.warmup)

    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):  # interleaved so drift in machine load hits both alike
        for name, model in models.items():
            rates[name].append(images_per_second(model, optimizers[name], batch, args.steps))

    medians = {name: statistics.median(r) for name, r in rates.items()}
    for name, r in rates.items():
        print(f"{name:<15} median {medians[name]:7.1f} img/s  (rounds: {', '.join(f'{x:.0f}' for x in r)})")
    ratio = medians["titn-lite TITN"] / medians["timm TNT"]
    print(f"ratio TITN / timm TNT: {ratio:.2f}")


if __name__ == "__main__":
    main()
