"""Build ``assets/fashion-mnist-mini``: a balanced real-image subset of Fashion-MNIST.

1000 training and 200 test images per class (10k / 2k), drawn without replacement with
a fixed seed from the full Fashion-MNIST files, written in the original IDX format and
compressed with xz (gzip would not fit in 5 MB). MANIFEST.json records the SHA256 of the
source files and of every output, which the loader checks.

    python assets/build_fashion_mnist_mini.py --source /usr/share/datasets/fashion-mnist

(``apt-get install dataset-fashion-mnist`` puts the full files there.)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import lzma
import struct
from pathlib import Path

import numpy as np

PER_CLASS = {"train": 1000, "t10k": 200}
SEED = 0


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX format: 0x0000, dtype 0x08 (uint8), number of dims, big-endian sizes, data."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def read_idx(raw: bytes) -> np.ndarray:
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "fashion-mnist-mini")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    manifest: dict = {"source": {}, "files": {}, "per_class": PER_CLASS, "seed": SEED}
    for split, per_class in PER_CLASS.items():
        sources = {kind: args.source / f"{split}-{kind}-ubyte.gz" for kind in ("images-idx3", "labels-idx1")}
        raw = {kind: gzip.decompress(path.read_bytes()) for kind, path in sources.items()}
        for _kind, path in sources.items():
            manifest["source"][path.name] = sha256(path.read_bytes())
        images, labels = read_idx(raw["images-idx3"]), read_idx(raw["labels-idx1"])
        chosen = np.sort(np.concatenate(
            [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
        ))
        for kind, array in (("images-idx3", images[chosen]), ("labels-idx1", labels[chosen])):
            name = f"{split}-{kind}-ubyte.xz"
            data = lzma.compress(idx_bytes(array), preset=9 | lzma.PRESET_EXTREME)
            (args.out / name).write_bytes(data)
            manifest["files"][name] = sha256(data)
        print(f"{split}: {len(chosen)} images, {per_class} per class")
    (args.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum((args.out / name).stat().st_size for name in manifest["files"])
    print(f"wrote {args.out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
