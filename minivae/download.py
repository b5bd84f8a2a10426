"""Downloading the full data sets into the cache (~/.cache/minivae/<name>/): each file from the
first mirror that serves it, checked against its SHA-256 and renamed into place only once it
matches, so a failed download leaves nothing behind; `download(url, path, sha256)` is one file.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO

from minivae.files import STALE, file_mode, sweep
from minivae.idx import DataError
from minivae.progress import Progress

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

TIMEOUT = 30.0  # seconds without a byte before a download gives up
DEADLINE = 600.0  # seconds for one file in all, however slowly its bytes trickle in
MAX_BYTES = 64 << 20  # the largest file, Fashion-MNIST's training images, is 26 MB


def cache_dir(name: str) -> Path:
    """Where downloads go: ~/.cache/minivae/<name>/ (read at call time, so HOME can change)."""
    return Path.home() / CACHE / name


def _file_in(folder: Path, base: str) -> Path | None:
    """`base` as served (.gz), unpacked, or dotted as some copies are (train-images.idx3-ubyte)."""
    dotted = base.replace("-idx", ".idx")
    for candidate in (base + ".gz", base, dotted + ".gz", dotted):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


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
