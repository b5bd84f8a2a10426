"""The PixelCNN's cached sampler, one row of pixels at a time, in one compiled loop.

The numpy door's pixelcnn.py has the equations and the argument shapes; this is the same step with
the loops written out: for each sample, pixel by pixel along the row, every layer's horizontal
stack, then the head and the draw. The NumPy version makes a dozen small array calls per layer and
pixel; here each sample's state stays in a few registers' worth of scratch, and the products
run over the output channels, the contiguous axis, which LLVM turns into vector instructions.
Samples are independent, so the workers share fixed chunks of them: the same result for any
number of workers.
"""
import math

import numpy as np
from numba import njit

from minivae.kernels.fast import threads

SAMPLES_PER_TASK = 8  # a worker's share of the samples, never cut by the number of workers


@njit(cache=True, nogil=True, inline="always")
def _gate(pre, C, u):
    """u = tanh(a) · σ(b) for pre = (a ‖ b), from two exponentials: tanh a = 1 − 2/(e^(2a) + 1),
    σ(b) = 1/(1 + e^(−b)), finite for every a and b (e^x = ∞ gives 1 and 0). libm's scalar tanh
    costs six exponentials' time; both forms are within a few ulps of 1 of gate.py's."""
    one, two = pre.dtype.type(1), pre.dtype.type(2)
    for o in range(C):
        u[o] = (one - two / (math.exp(two * pre[o]) + one)) / (one + math.exp(-pre[C + o]))


@njit(cache=True, nogil=True)
def _sample_row(r, first, last, h_in, link, cond, w_h, b_h, taps, w_out, b_out, w_hid, b_hid,
                w_logit, b_logit, noise, logits):
    """Samples first .. last − 1 of row r. The weights are transposed, (in, out): w_h[l] (C_l·T,
    2C), w_out (L − 1, C, C), w_hid (C, 2C); w_logit is (C,)."""
    W = noise.shape[1]
    L = len(h_in)
    C2 = b_hid.shape[0]
    C = C2 // 2
    pre = np.empty(C2, b_hid.dtype)  # a gate's input
    u = np.empty(C, b_hid.dtype)  # its output
    h = np.empty(C, b_hid.dtype)  # h_l at the pixel
    zero, one = b_hid.dtype.type(0), b_hid.dtype.type(1)
    x, y_head = h_in[0], cond[L]
    for i in range(first, last):
        for c in range(W):
            for l in range(L):
                # a tuple read at a run-time index is a switch: once per layer, not per element
                x_l, t_l, w_l, b_l, s_l, y_l = h_in[l], taps[l], w_h[l], b_h[l], link[l], cond[l]
                for o in range(C2):
                    pre[o] = b_l[o] + s_l[i, o, c] + y_l[i, o, c]
                T = t_l.shape[0]
                for k in range(x_l.shape[1]):
                    for t in range(T):
                        v = x_l[i, k, r + t_l[t, 0], c + t_l[t, 1]]
                        row = k * T + t
                        for o in range(C2):
                            pre[o] += w_l[row, o] * v
                _gate(pre, C, u)
                p = (x_l.shape[3] - W) // 2
                if l == 0:  # the first layer has no residual
                    h[:] = u
                else:
                    for o in range(C):
                        pre[o] = b_out[l - 1, o]
                    for k in range(C):
                        for o in range(C):
                            pre[o] += w_out[l - 1, k, o] * u[k]
                    for o in range(C):
                        h[o] = x_l[i, o, r + p, c + p] + pre[o]
                if l + 1 < L:
                    x_next = h_in[l + 1]
                    q = (x_next.shape[3] - W) // 2
                    for o in range(C):
                        x_next[i, o, r + q, c + q] = h[o]
            for o in range(C2):
                pre[o] = b_hid[o] + y_head[i, o, c]
            for k in range(C):
                for o in range(C2):
                    pre[o] += w_hid[k, o] * h[k]
            _gate(pre, C, u)
            logit = b_logit[0]
            for k in range(C):
                logit += w_logit[k] * u[k]
            e = math.exp(-abs(logit))
            s = (one if logit >= zero else e) / (one + e)  # σ(logit), as logistic.py
            p0 = (x.shape[3] - W) // 2
            x[i, 0, r + p0, c + p0] = one if noise[i, c] < s else zero
            logits[i, c] = logit


def sample_row(r, h_in, link, cond, horizontal, out, head, noise):
    """Row r of the sample; the numpy door's sample_row (arguments there), in one compiled loop."""
    n, W = noise.shape
    dtype = h_in[0].dtype
    C2 = horizontal[0][1].shape[0]
    w_hidden, b_hidden, w_logit, b_logit = head

    def ready(a):
        return np.ascontiguousarray(a, dtype)

    args = (tuple(h_in), tuple(ready(s) for s in link), tuple(ready(y) for y in cond),
            tuple(ready(w.T) for w, _, _ in horizontal), tuple(ready(b) for _, b, _ in horizontal),
            tuple(np.ascontiguousarray(t, np.int64) for _, _, t in horizontal),
            ready(np.array([w.T for w, _ in out]).reshape(-1, C2 // 2, C2 // 2)),
            ready(np.array([b for _, b in out]).reshape(-1, C2 // 2)),
            ready(w_hidden.T), ready(b_hidden), ready(w_logit[0]), ready(b_logit),
            np.ascontiguousarray(noise))
    logits = np.empty((n, W), dtype)
    tasks = range(0, n, SAMPLES_PER_TASK)

    def work(worker, n_workers):
        for first in tasks[worker::n_workers]:
            _sample_row(r, first, min(first + SAMPLES_PER_TASK, n), *args, logits)

    threads.run(work)
    return logits
