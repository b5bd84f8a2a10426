"""The kernels: one interface, two doors. ndarray in, ndarray out; a kernel never sees a Tensor.

    numpy   kernels/numpy/  plain NumPy, each function the lines of its equation: read it, step
                            through it with pdb; no Numba, no thread but the caller's
    fast    kernels/fast/   the same functions on Numba loops, BLAS and worker threads, with
                            subnormals flushed to zero inside each call (the default)

`set_backend("numpy" | "fast")` opens one door, or MINIVAE_BACKEND=numpy before minivae is
imported; it binds the names below to that door's functions. The ops (functional.py) and the
optimisers call them through this module, `kernels.matmul(a, b)`, never a door's own module, so
nothing above kernels/ knows which door is open. tests/test_doors.py proves the doors equal.

    matmul(a, b)                                     a @ b
    linear(x, w, b, act, slope)                      y = act(x @ wᵀ + b)
    linear_backward(y_bar, x, w, y, act, slope, need_x_bar, need_w_bar)   (x_bar, w_bar, b_bar)
    act_backward(y, y_bar, act, slope)               y_bar · act'(a), act' written in y
    sigmoid(x)                                       σ(x)
    bce_with_logits(l, t)                            (−[t ln σ(l) + (1 − t) ln(1 − σ(l))], σ(l))
    conv2d(x, w, b, stride, padding, mask, act, slope)                    act(x ⋆ (w·mask) + b)
    conv2d_backward(y_bar, x, w, y, stride, padding, mask, act, slope, need_x_bar)
    conv_transpose2d(x, w, b, stride, padding, output_padding, act, slope)
    conv_transpose2d_backward(y_bar, x, w, y, stride, padding, act, slope, need_x_bar)
    gated_tanh(x)                                    (tanh a · σ b, tanh a, σ b), x = (a ‖ b)
    gated_tanh_backward(y_bar, t, s)                 x_bar
    adam_update(params, lr, beta1, beta2, eps, t)    Adam in one pass, or None: optim.py's lines
    sample_row(r, h_in, link, cond, horizontal, out, head, noise)   the PixelCNN's cached sampler:
                                                     row r, pixel by pixel, in place; its logits

An activation `act` is named: 'identity', 'relu', 'leaky_relu' (with `slope`), 'sigmoid', 'tanh'.
"""
from __future__ import annotations

import importlib
import numbers
import os
from collections.abc import Callable
from typing import Any

BACKENDS = ("numpy", "fast")
INTERFACE = ("matmul", "linear", "linear_backward", "act_backward", "sigmoid", "bce_with_logits",
             "conv2d", "conv2d_backward", "conv_transpose2d", "conv_transpose2d_backward",
             "gated_tanh", "gated_tanh_backward", "adam_update", "sample_row")

# set_backend binds each of these to the open door's function of that name
matmul: Callable
linear: Callable
linear_backward: Callable
act_backward: Callable
sigmoid: Callable
bce_with_logits: Callable
conv2d: Callable
conv2d_backward: Callable
conv_transpose2d: Callable
conv_transpose2d_backward: Callable
gated_tanh: Callable
gated_tanh_backward: Callable
adam_update: Callable | None
sample_row: Callable

# the open door's name and module, and the threads asked for, if any
_open: dict[str, Any] = {"name": None, "door": None, "threads": None}


def set_backend(name: str) -> None:
    """Open the door `name` ('numpy' or 'fast') for every op from now on. The fast door's module,
    and with it Numba, is imported on the first set_backend('fast')."""
    if name not in BACKENDS:
        raise ValueError(f"set_backend: the backends are {' and '.join(map(repr, BACKENDS))}, "
                         f"got {name!r}")
    door = importlib.import_module(f"minivae.kernels.{name}")
    globals().update({fn: getattr(door, fn) for fn in INTERFACE})
    _open.update(name=name, door=door)
    if _open["threads"] is not None:
        door.set_num_threads(_open["threads"])


def get_backend() -> str:
    """The open door: 'numpy' or 'fast'."""
    return _open["name"]


def set_num_threads(n: int) -> None:
    """Share the fast door's kernels out among n threads (1: everything in the calling thread).
    Results are the same to the last bit for every n. The numpy door keeps n for the fast one."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"set_num_threads: need a positive integer, at least one thread, got "
                         f"{n!r}")
    _open["threads"] = int(n)
    _open["door"].set_num_threads(int(n))


def get_num_threads() -> int:
    """The threads the open door computes on: the fast door's workers, 1 for the numpy door."""
    return _open["door"].get_num_threads()


set_backend(os.environ.get("MINIVAE_BACKEND", "fast"))
