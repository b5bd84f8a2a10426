"""Save and load a module's parameters as .npz (plain arrays, never pickle).

The write is atomic: arrays go to a temporary file in the same folder, which is renamed over the
target only when complete, so an interrupted save never leaves a half-written checkpoint.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from minivae.nn import Module


def save(module: Module, path: str | os.PathLike) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **module.state_dict())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(module: Module, path: str | os.PathLike) -> Module:
    """Load parameters saved by `save`; every name and shape is checked before any is written."""
    with np.load(os.fspath(path), allow_pickle=False) as f:
        state = {name: f[name] for name in f.files}
    module.load_state_dict(state)
    return module
