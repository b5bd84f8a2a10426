"""Dense-layer kernels: what a Linear layer needs besides the matrix product.

The product x @ Wᵀ goes to BLAS through NumPy. Around it, a naive NumPy layer would make three
passes over the (B, N) activations forward (add bias, apply activation, keep a mask) and three
backward (mask, multiply, column sum). These kernels do one pass each way:

    forward   y = act(a + b)                     in place on a
    backward  a_bar = y_bar · act'(a),  b_bar = Σ_rows a_bar      (act' written from y)

Every activation's derivative is written in terms of its output y, so the backward needs nothing
but y. The loops are serial: these passes take tens of microseconds at batch 128, less than
starting Numba's thread pool costs. The NumPy twins are `reference.bias_act_forward` / `reference.bias_act_backward`.
"""
import numpy as np
from numba import njit

IDENTITY, RELU, LEAKY_RELU, SIGMOID, TANH = range(5)
ACTIVATIONS = {"identity": IDENTITY, "relu": RELU, "leaky_relu": LEAKY_RELU,
               "sigmoid": SIGMOID, "tanh": TANH}


@njit(cache=True, inline="always")
def _act(a, code, slope):
    if code == RELU:
        return a if a > 0 else 0 * a
    if code == LEAKY_RELU:
        return a if a > 0 else slope * a
    if code == SIGMOID:
        if a >= 0:
            return 1 / (1 + np.exp(-a))
        e = np.exp(a)
        return e / (1 + e)
    if code == TANH:
        return np.tanh(a)
    return a


@njit(cache=True, inline="always")
def _act_grad(y, code, slope):
    """dy/da from the output y."""
    if code == RELU:
        return 1 if y > 0 else 0
    if code == LEAKY_RELU:
        return 1 if y > 0 else slope
    if code == SIGMOID:
        return y * (1 - y)
    if code == TANH:
        return 1 - y * y
    return 1


@njit(cache=True)
def bias_act_forward(a, b, code, slope):
    """a <- act(a + b), in place.  a: (B, N), b: (N,)."""
    rows, cols = a.shape
    s = a.dtype.type(slope)
    for i in range(rows):
        for j in range(cols):
            a[i, j] = _act(a[i, j] + b[j], code, s)


@njit(cache=True)
def bias_act_backward(y, y_bar, code, slope):
    """a_bar = y_bar · act'(a) and b_bar = Σ_rows a_bar, in one pass.  y, y_bar: (B, N)."""
    rows, cols = y.shape
    s = y.dtype.type(slope)
    a_bar = np.empty_like(y_bar)  # (B, N)
    b_bar = np.zeros(cols, dtype=y_bar.dtype)  # (N,)
    for i in range(rows):
        for j in range(cols):
            g = y_bar[i, j] * _act_grad(y[i, j], code, s)
            a_bar[i, j] = g
            b_bar[j] += g
    return a_bar, b_bar
