"""Save and load parameters, and whole training states, as .npz (plain arrays, never pickle).

Writes are atomic: arrays go to a temporary file in the same folder, which is renamed over the
target only when complete, so an interrupted save never leaves a half-written checkpoint.
A training checkpoint holds the model's parameters under 'model/', the optimiser's step count and
buffers under 'optimizer/', and a JSON string (epoch, history, random-generator state) under
'state.json'.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import IO, Iterator

import numpy as np

from minivae.nn import Module


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path`; rename it over `path` only when the block completes,
    and remove it if the block fails."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _atomic_savez(path: str | os.PathLike, arrays: dict) -> None:
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def _read_npz(path: str | os.PathLike) -> dict:
    with np.load(os.fspath(path), allow_pickle=False) as f:
        return {name: f[name] for name in f.files}


def save(module: Module, path: str | os.PathLike) -> None:
    _atomic_savez(path, module.state_dict())


def load(module: Module, path: str | os.PathLike) -> Module:
    """Load parameters saved by `save`; every name and shape is checked before any is written."""
    module.load_state_dict(_read_npz(path))
    return module


def save_training(path, model: Module, optimizer, state: dict) -> None:
    """One file for everything a resumed run needs; `state` must be JSON-serialisable."""
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optimizer/{k}": v for k, v in optimizer.state_dict().items()})
    arrays["state.json"] = np.array(json.dumps(state))
    _atomic_savez(path, arrays)


def load_training(path, model: Module, optimizer) -> dict:
    """Restore model and optimiser in place and return the saved `state`. If anything does not
    fit, both are left as they were."""
    arrays = _read_npz(path)
    part = lambda prefix: {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    before = model.state_dict()
    model.load_state_dict(part("model/"))
    try:
        optimizer.load_state_dict(part("optimizer/"))
    except (KeyError, ValueError):
        model.load_state_dict(before)
        raise
    return json.loads(str(arrays["state.json"]))
