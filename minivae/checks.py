"""Argument checks shared by the library's entry points, each raising ValueError that names the
function, the argument and the bad value (the examples' command-line checks are in cli.py)."""
from __future__ import annotations

import math
import numbers

import numpy as np

DTYPES = (np.float32, np.float64)  # what minivae computes in


def integer(value, name: str, who: str, minimum: int = 1) -> int:
    """value as an int, if it is an integer (not a bool, not 2.0) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        need = "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"
        raise ValueError(f"{who}: {name} must be {need}, got {value!r}")
    return int(value)


def real(value, name: str, who: str, low: float = -math.inf, high: float = math.inf,
         low_open: bool = False, high_open: bool = False) -> float:
    """value as a float, if it is a finite real number from low to high (each end included
    unless said open)."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value)
          and (value > low if low_open else value >= low)
          and (value < high if high_open else value <= high))
    if not ok:
        if high == math.inf:
            need = f"a finite number {'>' if low_open else '≥'} {low:g}"
        else:
            need = (f"a number in {'(' if low_open else '['}{low:g}, {high:g}"
                    f"{')' if high_open else ']'}")
        raise ValueError(f"{who}: {name} must be {need}, got {value!r}")
    return float(value)


def dtype(value, name: str, who: str) -> np.dtype:
    """A dtype minivae computes in: float32 or float64."""
    if np.dtype(value) not in DTYPES:
        raise ValueError(f"{who}: {name} is {np.dtype(value)}; minivae computes in float32 or "
                         f"float64 only")
    return np.dtype(value)


def data(x, name: str, who: str) -> np.ndarray:
    """A non-empty float32 or float64 array with no NaN or infinity (the first bad entry named)."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{who}: {name} must be a NumPy array, got {type(x).__name__}")
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"{who}: {name} is empty (shape {x.shape})")
    if x.dtype == np.uint8:
        raise ValueError(f"{who}: {name} holds uint8 pixels; convert them with "
                         f"minivae.data.to_float (0..255 -> float32 0..1) first")
    dtype(x.dtype, f"{name}'s dtype", who)
    if not np.isfinite(x).all():
        at = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise ValueError(f"{who}: {name} holds {x[at]} at index {at}")
    return x


def probabilities(x: np.ndarray, name: str, who: str) -> None:
    """Bernoulli targets: every value in [0, 1] (NaN is not)."""
    if x.size and not (x.min() >= 0 and x.max() <= 1):
        raise ValueError(f"{who}: {name} must lie in [0, 1] for a Bernoulli likelihood, got "
                         f"values from {x.min()} to {x.max()} (uint8 pixels are scaled by "
                         f"minivae.data.to_float)")


def batch(x, item_shape: tuple, who: str) -> None:
    """A model's input: a non-empty batch (B, *item_shape)."""
    if tuple(x.shape[1:]) != tuple(item_shape):
        shape = ", ".join(map(str, ("B", *item_shape)))
        raise ValueError(f"{who}: expected inputs of shape ({shape}), got {tuple(x.shape)}")
    if not x.shape[0]:
        raise ValueError(f"{who}: an empty batch, shape {tuple(x.shape)}")


def generator(rng, who: str) -> np.random.Generator:
    """A numpy Generator from `rng`: a Generator as it is, an int seed (≥ 0) or None (fresh
    entropy) through numpy.random.default_rng."""
    if rng is None or isinstance(rng, np.random.Generator):
        return np.random.default_rng(rng)
    if isinstance(rng, bool) or not isinstance(rng, numbers.Integral) or rng < 0:
        raise ValueError(f"{who}: rng must be a numpy.random.Generator, an integer seed ≥ 0 or "
                         f"None, got {rng!r}")
    return np.random.default_rng(int(rng))
