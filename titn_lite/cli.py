"""The ``titn-lite`` command line (also ``python -m titn_lite``).

Bad input ends with a one-line message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from titn_lite.models import list_models
from titn_lite.teachers import list_teachers


def _profile(args: argparse.Namespace) -> int:
    from titn_lite.profile import format_table, profile_models

    names = args.models.split(",") if args.models else None
    rows = profile_models(names, num_classes=args.num_classes, img_size=args.img_size, in_chans=args.in_chans)
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
        return 0
    print(f"Parameters and forward FLOPs at {args.img_size}x{args.img_size}, {args.in_chans} channel(s), "
          f"{args.num_classes} classes (torch.utils.flop_counter; multiply-add = 2 FLOPs)\n")
    print(format_table(rows))
    print("\nPaper figures: Table 1 (students' params), Table 3 (GFLOPs per 512 images, teacher params).")
    if any(row.name == "vgg16_bn" for row in rows):
        print("The paper's VGG16-BN count, 138.36M, is torchvision's vgg16_bn with its 1000-class ImageNet\n"
              "head kept (138,365,992 parameters); with a 100-class head it has 134.68M.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="titn-lite", description="Vision transformers and knowledge distillation, TITN-style."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    profile = commands.add_parser(
        "profile", help="parameters and FLOPs of the models beside the paper's Tables 1 and 3"
    )
    profile.add_argument("--models", help=f"comma-separated names (default: vgg16_bn and every student); "
                                          f"students: {', '.join(list_models())}; teachers: {', '.join(list_teachers())}")
    profile.add_argument("--num-classes", type=int, default=100)
    profile.add_argument("--img-size", type=int, default=32)
    profile.add_argument("--in-chans", type=int, default=3)
    profile.add_argument("--json", action="store_true", help="print the rows as JSON")
    profile.set_defaults(run=_profile)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:
        print(f"titn-lite {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
