"""Dense-layer kernels: what a Linear layer needs besides the matrix product.

The product x @ Wᵀ goes to BLAS through NumPy. Around it, a naive NumPy layer would make three
passes over the (B, N) activations forward (add bias, apply activation, keep a mask) and three
backward (mask, multiply, column sum). These kernels do one pass each way:

    forward   y = act(a + b)                     in place on a
    backward  a_bar = y_bar · act'(a),  b_bar = Σ_rows a_bar      (act' written from y)

Every activation's derivative is written in terms of its output y, so the backward needs nothing
but y; `act_backward` is that backward alone, for an activation that is a layer of its own (after
a convolution): one pass where NumPy's y_bar * (y > 0) makes two and a temporary. The loops are
serial: these passes take tens of microseconds at batch 128, less than starting Numba's thread
pool costs. The numpy door's `linear`, `linear_backward` and `act_backward` (kernels/numpy/dense.py)
are the same equations in NumPy.
"""
import numpy as np
from numba import njit

IDENTITY, RELU, LEAKY_RELU, SIGMOID, TANH = range(5)
ACTIVATIONS = {"identity": IDENTITY, "relu": RELU, "leaky_relu": LEAKY_RELU,
               "sigmoid": SIGMOID, "tanh": TANH}


# The constants come in the arrays' dtype (slope, one): an int 1 beside a float32 makes Numba
# compute in float64, and then LLVM leaves the loop scalar, several times slower.


@njit(cache=True, inline="always")
def _act(a, code, slope, one):
    zero = one - one
    if code == RELU:  # written so that a NaN passes through, as in np.maximum
        return zero if a < zero else a
    if code == LEAKY_RELU:
        return slope * a if a < zero else a
    if code == SIGMOID:
        if a >= zero:
            return one / (one + np.exp(-a))
        e = np.exp(a)
        return e / (one + e)
    if code == TANH:
        return np.tanh(a)
    return a


@njit(cache=True, inline="always")
def _act_grad(y, code, slope, one):
    """dy/da from the output y."""
    zero = one - one
    if code == RELU:
        return one if y > zero else zero
    if code == LEAKY_RELU:
        return one if y > zero else slope
    if code == SIGMOID:
        return y * (one - y)
    if code == TANH:
        return one - y * y
    return one


@njit(cache=True)
def bias_act_forward(a, b, code, slope):
    """a <- act(a + b), in place.  a: (B, N), b: (N,)."""
    rows, cols = a.shape
    s, one = a.dtype.type(slope), a.dtype.type(1)
    for i in range(rows):
        for j in range(cols):
            a[i, j] = _act(a[i, j] + b[j], code, s, one)


@njit(cache=True)
def bias_act_backward(y, y_bar, code, slope):
    """a_bar = y_bar · act'(a) and b_bar = Σ_rows a_bar, in one pass.  y, y_bar: (B, N)."""
    rows, cols = y.shape
    s, one = y.dtype.type(slope), y.dtype.type(1)
    a_bar = np.empty_like(y_bar)  # (B, N)
    b_bar = np.zeros(cols, dtype=y_bar.dtype)  # (N,)
    for i in range(rows):
        for j in range(cols):
            g = y_bar[i, j] * _act_grad(y[i, j], code, s, one)
            a_bar[i, j] = g
            b_bar[j] += g
    return a_bar, b_bar


@njit(cache=True, nogil=True)
def act_backward(y, y_bar, code, slope):
    """a_bar = y_bar · act'(a), from the output y.  y, y_bar: one shape, C-contiguous."""
    s, one = y.dtype.type(slope), y.dtype.type(1)
    a_bar = np.empty_like(y_bar)
    y_flat, y_bar_flat, a_bar_flat = y.reshape(-1), y_bar.reshape(-1), a_bar.reshape(-1)
    for i in range(y_flat.size):
        a_bar_flat[i] = y_bar_flat[i] * _act_grad(y_flat[i], code, s, one)
    return a_bar
