"""Save and load parameters, and whole training states, as .npz (plain arrays, never pickle).

Writes are atomic (minivae/files.py): arrays go to a temporary file in the same folder, flushed to
disk and renamed over the target only when complete, so an interrupted save never leaves a
half-written checkpoint. A training checkpoint holds the model's parameters under 'model/', the
optimiser's step count and buffers under 'optimizer/', and a JSON string (history,
random-generator state, the run's settings) under 'state.json'.

Loading checks before it inflates: the names in the zip's directory first, then every array's
header (a plain numeric dtype, the shape the model expects, a size that fits the entry), and only
then the bytes; a file that fails any check raises CheckpointError naming the file, and the model
and optimiser are left as they were.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from collections.abc import Mapping
from typing import Protocol

import numpy as np

from minivae.files import atomic_write, strict_json
from minivae.nn import Module


class Stateful(Protocol):
    """What saves and loads: a Module, or PCA's fitted arrays."""

    def state_dict(self) -> Mapping[str, np.ndarray]: ...

    def load_state_dict(self, state: dict) -> None: ...

NOT_A_CHECKPOINT = "not a minivae checkpoint (corrupt or truncated)"


class CheckpointError(ValueError):
    """A file is not a minivae checkpoint, or does not fit what it is loaded into; the message
    names the file."""


def _atomic_savez(path: str | os.PathLike, arrays: Mapping) -> None:
    with atomic_write(path) as f:
        np.savez(f, **arrays)


# ---------------------------------------------------------------- reading, checks first


def _read_npz(path: str | os.PathLike, expected: Mapping[str, tuple | None], what: str,
              only: str = "") -> dict:
    """The arrays of an .npz written by np.savez, keyed by name, after checking, in this order:
    the names against `expected` (name -> shape, None for any), every header, then the bytes.
    With `only`, the arrays whose names start with it, the others left unread."""
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {info.filename[:-4]: info for info in archive.infolist()}
            if not all(info.filename.endswith(".npy") for info in entries.values()):
                raise CheckpointError(f"{path}: {NOT_A_CHECKPOINT}: it holds files other than "
                                      f"arrays")
            entries = {name: info for name, info in entries.items() if name.startswith(only)}
            _check_names(path, set(entries), expected, what)
            headers = {name: _header(path, archive, info, expected[name])
                       for name, info in entries.items()}
            return {name: _array(archive, entries[name], *header)
                    for name, header in headers.items()}
    except (FileNotFoundError, IsADirectoryError, PermissionError, CheckpointError):
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError) as e:  # NotImplementedError: a compression zipfile lacks
        raise CheckpointError(f"{path}: {NOT_A_CHECKPOINT}: {e}") from None


def _check_names(path: str, names: set, expected: Mapping, what: str) -> None:
    missing, unexpected = sorted(set(expected) - names), sorted(names - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit {what}: missing {missing}, unexpected "
                              f"{unexpected}")


def _header(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, shape: tuple | None):
    """(shape, fortran_order, dtype, offset) from the .npy header, read without the data."""
    name = info.filename[:-4]
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            stored, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            stored, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise CheckpointError(f"{path}: {NOT_A_CHECKPOINT}: {name!r} has .npy format "
                                  f"version {version}")
        offset = f.tell()
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biufU":
        raise CheckpointError(f"{path}: {NOT_A_CHECKPOINT}: {name!r} holds {dtype} values "
                              f"(minivae writes plain numbers only, and never loads pickles)")
    if shape is not None and tuple(stored) != tuple(shape):
        raise CheckpointError(f"{path} does not fit: {name!r} has shape {tuple(stored)}, "
                              f"expected {tuple(shape)}")
    if info.file_size != offset + math.prod(stored) * dtype.itemsize:
        raise CheckpointError(f"{path}: {NOT_A_CHECKPOINT}: {name!r} should take "
                              f"{offset + math.prod(stored) * dtype.itemsize} bytes, its entry "
                              f"holds {info.file_size}")
    return tuple(stored), fortran, dtype, offset


def _array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, shape, fortran, dtype, offset):
    with archive.open(info) as f:
        f.read(offset)
        raw = f.read(math.prod(shape) * dtype.itemsize)
        if f.read(1) or len(raw) != math.prod(shape) * dtype.itemsize:  # to the end: CRC checked
            raise ValueError(f"{info.filename!r} is cut short")
    return np.frombuffer(raw, dtype).reshape(shape, order="F" if fortran else "C").copy()


# ---------------------------------------------------------------- parameters


def save(module: Stateful, path: str | os.PathLike) -> None:
    _atomic_savez(path, module.state_dict())


def load(module: Stateful, path: str | os.PathLike) -> Stateful:
    """Load parameters saved by `save`, or the model's part of a training checkpoint (an
    example's checkpoint.npz); every name and shape is checked before any is written."""
    prefix = "model/" if "state.json" in _names(path) else ""
    expected = {prefix + name: value.shape for name, value in module.state_dict().items()}
    arrays = _read_npz(path, expected, "this model", only=prefix)
    module.load_state_dict({name[len(prefix):]: value for name, value in arrays.items()})
    return module


def save_model(path, module: Stateful, state: dict) -> None:
    """A finished run without its optimiser: the model's parameters under 'model/' and `state`
    (the run's settings, its history) in 'state.json', as in a training checkpoint. `load` and
    runs.load_run read it; it cannot be resumed. The shipped pretrained models are such files."""
    arrays = {f"model/{k}": v for k, v in module.state_dict().items()}
    arrays["state.json"] = _state_array(state)
    _atomic_savez(path, arrays)


def read_state(path) -> dict:
    """The 'state.json' of a training checkpoint (or save_model's file): the run's settings,
    history and more, without reading the arrays."""
    path = os.fspath(path)
    if not any(name == "state.json" or name.startswith("model/") for name in _names(path)):
        raise CheckpointError(f"{path} is not a training checkpoint (it holds no 'state.json'; "
                              f"parameters saved by minivae.save load with minivae.load)")
    arrays = _read_npz(path, {"state.json": ()}, "a run's checkpoint", only="state.json")
    return _parse_state(path, arrays["state.json"])


def _state_array(state: dict) -> np.ndarray:
    return np.array(json.dumps(strict_json(state)[0], allow_nan=False))


def _parse_state(path: str, raw: np.ndarray) -> dict:
    try:
        state = json.loads(str(raw))
    except ValueError as e:
        raise CheckpointError(f"{path}: {NOT_A_CHECKPOINT}: state.json is not JSON ({e})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: {NOT_A_CHECKPOINT}: state.json holds a "
                              f"{type(state).__name__}, not an object")
    return state


# ---------------------------------------------------------------- training states


def save_training(path, model: Module, optimizer, state: dict) -> None:
    """One file for everything a resumed run needs; `state` must be JSON-serialisable (NaN and
    infinities are written as null: state.json is strict JSON)."""
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optimizer/{k}": v for k, v in optimizer.state_dict().items()})
    arrays["state.json"] = _state_array(state)
    _atomic_savez(path, arrays)


def load_training(path, model: Module, optimizer, rng: np.random.Generator | None = None,
                  check=None) -> dict:
    """Restore model, optimiser and (given `rng`) the generator, in place, and return the saved
    `state`. All or nothing: the file, every name and shape, the JSON and the generator's kind
    are checked, and `check(state)` (which may raise to refuse the checkpoint) is called, before
    anything is written; should a write still fail, everything is rolled back."""
    path = os.fspath(path)
    expected = {f"model/{k}": v.shape for k, v in model.state_dict().items()}
    expected.update({f"optimizer/{k}": np.shape(v) for k, v in optimizer.state_dict().items()})
    expected["state.json"] = ()
    try:
        arrays = _read_npz(path, expected, "this model and optimiser")
    except CheckpointError as e:
        if "does not fit" in str(e) and not any(k.startswith("model/") for k in _names(path)):
            raise CheckpointError(f"{path} is not a training checkpoint (it holds no 'model/' "
                                  f"arrays; parameters saved by minivae.save load with "
                                  f"minivae.load)") from None
        raise
    state = _parse_state(path, arrays.pop("state.json"))
    if rng is not None:
        _check_rng_state(path, rng, state.get("rng"))
    if check is not None:
        check(state)

    part = lambda prefix: {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    model_before, optimizer_before = model.state_dict(), optimizer.state_dict()
    rng_before = None if rng is None else rng.bit_generator.state
    try:
        model.load_state_dict(part("model/"))
        optimizer.load_state_dict(part("optimizer/"))
        if rng is not None:
            rng.bit_generator.state = state["rng"]
    except BaseException:
        model.load_state_dict(model_before)
        optimizer.load_state_dict(optimizer_before)
        if rng is not None and rng_before is not None:
            rng.bit_generator.state = rng_before
        raise
    return state


def _names(path) -> list[str]:
    """The arrays' names in an .npz (CheckpointError for a file that is no zip)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return [name[:-4] for name in archive.namelist()]
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        if isinstance(e, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise
        raise CheckpointError(f"{os.fspath(path)}: {NOT_A_CHECKPOINT}: {e}") from None


def _check_rng_state(path: str, rng: np.random.Generator, saved) -> None:
    """The saved generator state must fit this run's generator: try it on a fresh one."""
    kind = type(rng.bit_generator).__name__
    saved_kind = saved.get("bit_generator") if isinstance(saved, dict) else None
    try:
        type(rng.bit_generator)().state = saved
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: its random-generator state does not fit this run's "
                              f"{kind} generator (the file's is {saved_kind or 'missing'}: "
                              f"{e})") from None
