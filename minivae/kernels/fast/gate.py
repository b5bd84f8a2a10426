"""The gated PixelCNN's gate, y = tanh(a) ⊙ σ(b), and its backward, over the workers.

    x = (a ‖ b) on axis 1          (B, 2C, ...) -> y (B, C, ...)
    t = tanh a,  s = σ(b) = ½(1 + tanh(b/2)),  y = t·s
    a_bar = y_bar · s · (1 − t²),  b_bar = y_bar · t · s · (1 − s)

σ(b) through tanh(b/2): one vectorised NumPy tanh instead of an exp, a select and two divisions,
finite for every b, with an absolute error of about one ulp of 1 (enough for a gate; a likelihood's
tiny tail probabilities use logistic.py). The arrays are the PixelCNN's largest, so the
work is cut into chunks of a few samples, each small enough to stay in a core's cache through all
of its passes, and the worker threads share the chunks (NumPy releases the GIL in its loops).
Elementwise, so the result is the same for any number of workers. The numpy door's `gated_tanh`
and `gated_tanh_backward` (kernels/numpy/dense.py) are the same equations in NumPy.
"""
import numpy as np

from minivae.kernels.fast import threads

CHUNK_BYTES = 2**20  # of x per chunk: about half a core's L2 cache, as conv.COLS_BYTES


def _chunks(B: int, bytes_per_sample: int) -> list[slice]:
    m = max(1, CHUNK_BYTES // max(1, bytes_per_sample))
    return [slice(n, min(n + m, B)) for n in range(0, B, m)]


def gated_tanh(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, t, s) = (tanh a · σ b, tanh a, σ b) for x = (a ‖ b) on axis 1, each (B, C, ...)."""
    x = np.ascontiguousarray(x)
    C = x.shape[1] // 2
    y = np.empty((x.shape[0], C) + x.shape[2:], x.dtype)
    t, s = np.empty_like(y), np.empty_like(y)
    chunks = _chunks(len(x), x[0].nbytes)
    half = x.dtype.type(0.5)

    def work(worker, n_workers):
        for n in chunks[worker::n_workers]:
            np.tanh(x[n, :C], out=t[n])
            np.multiply(x[n, C:], half, out=s[n])
            np.tanh(s[n], out=s[n])
            s[n] *= half  # σ(b) = ½ + ½ tanh(b/2)
            s[n] += half
            np.multiply(t[n], s[n], out=y[n])

    threads.run(work)
    return y, t, s


def gated_tanh_backward(y_bar: np.ndarray, t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """x_bar = (y_bar·s·(1 − t²) ‖ y_bar·t·s·(1 − s)) on axis 1: (B, C, ...) -> (B, 2C, ...)."""
    y_bar = np.ascontiguousarray(y_bar)
    B, C = y_bar.shape[:2]
    x_bar = np.empty((B, 2 * C) + y_bar.shape[2:], y_bar.dtype)
    chunks = _chunks(B, 2 * y_bar[0].nbytes)

    def work(worker, n_workers):
        for n in chunks[worker::n_workers]:
            g = y_bar[n] * s[n]  # y_bar · σ(b)
            a_bar, b_bar = x_bar[n, :C], x_bar[n, C:]
            np.multiply(t[n], t[n], out=a_bar)
            np.subtract(1, a_bar, out=a_bar)
            a_bar *= g
            np.subtract(1, s[n], out=b_bar)
            b_bar *= t[n]
            b_bar *= g

    threads.run(work)
    return x_bar
