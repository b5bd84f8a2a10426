"""Optimiser kernels: Adam's update in one pass over a parameter, the parameters shared out among
the worker threads.

In NumPy the update is about ten whole-array passes (two moving averages, their bias corrections,
a square root, a division); here it is one loop, which LLVM turns into SIMD instructions once
Numba's division needs no Python ZeroDivisionError check (error_model="numpy": x / 0 is inf or nan,
as in NumPy and PyTorch). `adam_step` cuts every parameter into pieces of CHUNK elements and the
workers take turns at them; each element's update reads and writes that element alone, so the
split changes no bit of the result. optim.Adam.step's own lines are the same update in NumPy (the
numpy door's), and benchmarks/bench_mlp.py times the two.
"""
import numpy as np
from numba import njit

from minivae.kernels.fast import threads

CHUNK = 2**16  # elements per piece: 256 KB of each float32 array, a few pieces per worker for a layer


@njit(cache=True, nogil=True, error_model="numpy")
def adam_update(p, g, m, v, lr, beta1, beta2, eps, step):
    """PyTorch's rule, in place on p, m, v (any shape, C-contiguous):
    m <- β1 m + (1 − β1) g;  v <- β2 v + (1 − β2) g²;
    p <- p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)."""
    p, g, m, v = p.ravel(), g.ravel(), m.ravel(), v.ravel()
    # the constants in the parameters' dtype, so float32 stays float32 arithmetic, as in PyTorch
    step_size = p.dtype.type(lr / (1 - beta1**step))
    inv_sqrt_bc2 = p.dtype.type(1 / np.sqrt(1 - beta2**step))
    b1, b2, e = p.dtype.type(beta1), p.dtype.type(beta2), p.dtype.type(eps)
    for i in range(p.size):
        m[i] = b1 * m[i] + (1 - b1) * g[i]
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
        p[i] -= step_size * m[i] / (np.sqrt(v[i]) * inv_sqrt_bc2 + e)


def adam_step(arrays, lr, beta1, beta2, eps, step):
    """adam_update on every (p, g, m, v) of `arrays` (1-D, C-contiguous), in pieces the workers
    share."""
    pieces = [tuple(a[i:i + CHUNK] for a in four) for four in arrays for i in range(0, four[0].size, CHUNK)]

    def work(worker, n_workers):
        for p, g, m, v in pieces[worker::n_workers]:
            adam_update(p, g, m, v, lr, beta1, beta2, eps, step)

    threads.run(work)
