"""The copy loops of a convolution: im2col, its adjoint col2im, and the copies around them (Numba).

    cols[(c, t), (n, oh, ow)] = x_pad[n, c, oh*s + i, ow*s + j]      for each kernel tap t = (i, j)
    col2im(cols): every entry of cols added back onto the pixel it was read from

The numpy door's `im2col` / `col2im` (kernels/numpy/conv.py) are these two lines as a plain loop;
the kernels here compute the same columns, reorganised so that every copy is one contiguous run:

  * Phase planes. The input is zero-padded and split into s*s planes, x_ph[n, c, a, b, u, v] =
    x_pad[n, c, u*s + a, v*s + b]. Tap (i, j) of output pixel (oh, ow) reads x_pad[n, c, oh*s + i,
    ow*s + j] = x_ph[n, c, i % s, j % s, oh + i // s, ow + j // s]: within a plane, a strided
    convolution reads neighbouring pixels, as a stride-1 one does. (For s = 1, x_ph is x_pad.)
  * Wide rows. The columns keep every pixel of a plane row, ow < Wq, not only the W_out real
    ones: then tap (i, j) of sample n is the plane itself from offset (i // s)*Wq + j // s on, one
    run of H_out*Wq numbers. The extra columns compute nothing useful; from_wide drops them from
    the output and to_wide keeps them zero in a gradient, so they add nothing to x_bar or w_bar.
    Each plane has one spare row of zeros, so a run never leaves its plane.

The bias and activation of a layer (dense.py's codes) ride on the copies that write its output
(from_wide, crop_from_phases), and act' on the copy that reads its gradient (to_wide), so they
cost no pass of their own. The flat indices are cast to np.uintp: Numba wraps a negative signed
index around (a[-1] is the last element), and that test on every read stops LLVM from vectorising
the copy; an unsigned index cannot be negative, so Numba leaves the test out (numba PR #929).
Every kernel is nogil, so the workers' copies run at the same time (conv.py shares them out).
"""
import numpy as np
from numba import njit

from minivae.kernels.fast.dense import _act, _act_grad


def phase_shape(m, C, H, W, stride, padding):
    """(m, C, s, s, Hq + 1, Wq) with Hq = ceil((H + 2p) / s), Wq = ceil((W + 2p) / s): the phase
    planes of x_pad, each with one spare row."""
    return m, C, stride, stride, -(-(H + 2 * padding) // stride) + 1, -(-(W + 2 * padding) // stride)


@njit(cache=True, nogil=True)
def _plane_runs(H, W, s, padding, Hq1, Wq):
    """The copies between one (H, W) plane of x and its s*s phase planes, one row (start in the
    plane of x, start in its phase planes, length) per run: row h of x, columns w0, w0 + s,
    w0 + 2s, ..., lands in phase plane (a, b) = ((h + p) % s, (w0 + p) % s), row u = (h + p) // s,
    from column v0 = (w0 + p) // s on. In the phase planes' memory order; worked out once per
    call, as divisions cost more than the copies."""
    runs = np.empty((s * Hq1 * s, 3), np.int64)
    r = 0
    for a in range(s):
        for u in range(Hq1):
            h = u * s + a - padding
            if 0 <= h < H:
                for b in range(s):
                    w0 = (b - padding) % s  # the first column of x in phase b
                    runs[r, 0] = h * W + w0
                    runs[r, 1] = ((a * s + b) * Hq1 + u) * Wq + (w0 + padding) // s
                    runs[r, 2] = (W - w0 + s - 1) // s
                    r += 1
    return runs[:r]


@njit(cache=True, nogil=True)
def pad_into_phases(x, padding, x_ph):
    """x_ph[n, c, a, b, u, v] = x[n, c, u*s + a - p, v*s + b - p] wherever that is inside x; the
    entries on the padding are not touched (x_ph is allocated with zeros).
    x: (m, C, H, W);  x_ph: (m, C, s, s, Hq + 1, Wq)."""
    m, C, H, W = x.shape
    s, Hq1, Wq = x_ph.shape[2], x_ph.shape[4], x_ph.shape[5]
    x_flat, ph_flat = x.reshape(-1), x_ph.reshape(-1)
    runs = _plane_runs(H, W, s, padding, Hq1, Wq)
    for nc in range(m * C):  # plane by plane, in memory order
        for r in range(runs.shape[0]):
            frm, to, count = nc * H * W + runs[r, 0], nc * s * s * Hq1 * Wq + runs[r, 1], runs[r, 2]
            if s == 1:  # a contiguous copy, which LLVM vectorises
                for t in range(count):
                    ph_flat[np.uintp(to + t)] = x_flat[np.uintp(frm + t)]
            else:
                for t in range(count):
                    ph_flat[np.uintp(to + t)] = x_flat[np.uintp(frm + t * s)]


@njit(cache=True, nogil=True)
def crop_from_phases(x_ph, padding, bias, code, slope, x):
    """The adjoint of pad_into_phases: x[n, c, h, w] = x_ph at (h + p, w + p); the padding is
    dropped. On the way, x = act(that + bias[c]) (identity and zeros for the plain adjoint), so a
    transposed convolution's bias and activation cost no pass of their own."""
    m, C, H, W = x.shape
    s, Hq1, Wq = x_ph.shape[2], x_ph.shape[4], x_ph.shape[5]
    x_flat, ph_flat = x.reshape(-1), x_ph.reshape(-1)
    runs = _plane_runs(H, W, s, padding, Hq1, Wq)
    slope_, one = x.dtype.type(slope), x.dtype.type(1)
    for nc in range(m * C):
        b_c = bias[nc % C]
        for r in range(runs.shape[0]):
            to, frm, count = nc * H * W + runs[r, 0], nc * s * s * Hq1 * Wq + runs[r, 1], runs[r, 2]
            if s == 1:
                for t in range(count):
                    x_flat[np.uintp(to + t)] = _act(ph_flat[np.uintp(frm + t)] + b_c, code, slope_, one)
            else:
                for t in range(count):
                    x_flat[np.uintp(to + t * s)] = _act(ph_flat[np.uintp(frm + t)] + b_c, code, slope_, one)


@njit(cache=True, nogil=True)
def im2col(x_ph, taps, H_out, cols):
    """cols[(c, t), (n, oh, ow)] = x_ph[n, c, i % s, j % s, oh + i // s, ow + j // s] for each tap
    t = (i, j) of taps and ow < Wq, read as one run per (c, t, n).
    x_ph: (m, C, s, s, Hq + 1, Wq);  taps: (T, 2);  cols: (C*T, m*H_out*Wq), both C-contiguous."""
    m, C, s, _, Hq1, Wq = x_ph.shape
    x_flat, cols_flat = x_ph.reshape(-1), cols.reshape(-1)
    N, run = cols.shape[1], H_out * Wq
    for c in range(C):
        for t in range(taps.shape[0]):
            i, j = taps[t, 0], taps[t, 1]
            row = c * taps.shape[0] + t
            for n in range(m):
                plane = (((n * C + c) * s + i % s) * s + j % s) * Hq1 * Wq  # x_ph[n, c, i % s, j % s]
                frm = plane + (i // s) * Wq + j // s  # where tap (i, j) of pixel (0, 0) reads
                to = row * N + n * run  # cols[row, (n, 0, 0)]
                for q in range(run):
                    cols_flat[np.uintp(to + q)] = x_flat[np.uintp(frm + q)]


@njit(cache=True, nogil=True)
def col2im(cols, taps, H_out, x_ph_bar):
    """The adjoint of im2col: every entry of cols is added back onto the pixel it was read from,
    starting from zero; overlapping receptive fields add up."""
    m, C, s, _, Hq1, Wq = x_ph_bar.shape
    x_flat, cols_flat = x_ph_bar.reshape(-1), cols.reshape(-1)
    N, run = cols.shape[1], H_out * Wq
    x_flat[:] = 0
    for n in range(m):
        for c in range(C):  # sample n, channel c stays in L1 while its rows of cols add into it
            for t in range(taps.shape[0]):
                i, j = taps[t, 0], taps[t, 1]
                row = c * taps.shape[0] + t
                plane = (((n * C + c) * s + i % s) * s + j % s) * Hq1 * Wq
                to, frm = plane + (i // s) * Wq + j // s, row * N + n * run
                for q in range(run):
                    x_flat[np.uintp(to + q)] += cols_flat[np.uintp(frm + q)]


@njit(cache=True, nogil=True)
def from_wide(y_mat, bias, code, slope, y):
    """y[n, o, oh, ow] = act(y_mat[o, (n, oh, ow)] + bias[o]), dropping the wide rows' extra
    columns: the bias and activation ride on the copy."""
    m, C_out, H_out, W_out = y.shape
    y4 = y_mat.reshape(C_out, m, H_out, -1)
    slope_, one = y.dtype.type(slope), y.dtype.type(1)
    for n in range(m):
        for o in range(C_out):
            for oh in range(H_out):
                for ow in range(W_out):
                    y[n, o, oh, ow] = _act(y4[o, n, oh, ow] + bias[o], code, slope_, one)


@njit(cache=True, nogil=True)
def to_wide(y_bar, y, code, slope, Wq, g):
    """g[o, n, oh, ow] = y_bar[n, o, oh, ow] · act'(y[n, o, oh, ow]) for ow < W_out and 0 for
    W_out <= ow < Wq: an output gradient as the chunk's wide (C_out, m*H_out*Wq) matrix, through
    the activation the forward applied (act' read from its output y, as in dense.py; for the
    identity y is not read).  y_bar, y: (m, C_out, H_out, W_out)."""
    m, C_out, H_out, W_out = y_bar.shape
    g4 = g.reshape(C_out, m, H_out, Wq)
    slope_, one = g.dtype.type(slope), g.dtype.type(1)
    for o in range(C_out):
        for n in range(m):
            for oh in range(H_out):
                for ow in range(W_out):
                    g4[o, n, oh, ow] = y_bar[n, o, oh, ow] * _act_grad(y[n, o, oh, ow], code, slope_, one)
                for ow in range(W_out, Wq):
                    g4[o, n, oh, ow] = 0
