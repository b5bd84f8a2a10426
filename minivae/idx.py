"""The IDX file format of MNIST and Fashion-MNIST, read safely.

    magic = 0, 0, type code, number of dimensions; then each dimension as a big-endian uint32;
    then the values, big-endian, C order.

`read_idx(path, expect_magic)` reads a file gzipped or raw; DataError names a corrupt or
truncated file, an unexpected magic number, or a payload that does not fill its header's shape.

Reference: LeCun, Bottou, Bengio, Haffner (1998); the IDX format: http://yann.lecun.com/exdb/mnist/
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801  # uint8 3-d, uint8 1-d


class DataError(ValueError):
    """A data file is corrupt, truncated, of the wrong kind, or fails its checksum."""


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
