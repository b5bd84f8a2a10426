"""2-D convolution and transposed convolution kernels (NCHW): ndarray in, ndarray out.

Convolution is a matrix product once each receptive field is unrolled into a column (im2col):

    cols[(c, i, j), (oh, ow)] = x_pad[c, oh*s + i, ow*s + j]                 # (C_in*kH*kW, H_out*W_out)
    y[n]     = W @ cols(x[n]) + b        W = w.reshape(C_out, C_in*kH*kW)
    x_bar[n] = col2im(W.T @ y_bar[n])    col2im is the adjoint of im2col: it scatter-adds
    w_bar    = sum_n y_bar[n] @ cols(x[n]).T,    b_bar = y_bar summed over (n, oh, ow)

with H_out = (H + 2p - kH) // s + 1. The transposed convolution is the adjoint of the
convolution, so it needs no kernel of its own: its forward is conv2d's input-backward, its
input-backward is conv2d's forward, and its weight-backward is conv2d's weight-backward with the
roles of x and y_bar swapped.

A masked convolution (PixelCNN) passes `mask`, a (kH, kW) array of zeros and ones: only the kernel
taps (i, j) where it is 1 become rows of cols. That is the convolution with w * mask - same y, same
x_bar, and w_bar is zero off the mask - at a fraction of the work: a 3x3 type-'B' mask keeps 5 of
the 9 taps, a 7x7 type-'A' mask 24 of 49. `pixelcnn_mask` builds the masks.

How it runs. The batch is cut into chunks of a few samples whose columns fit in a core's cache
(COLS_BYTES), at least MIN_CHUNKS of them. Each worker thread (threads.py) takes every
n_workers-th chunk and does all of its work: the Numba copies (im2col, col2im, padding) and the
chunk's matrix product in NumPy, which runs on that worker's thread alone. The chunks do not depend
on the number of workers, so neither does any result, to the last bit. Splitting the batch instead
of the product keeps both cores busy during the copies, which are a third of the work or more, and
keeps each chunk's columns in the cache of the core that wrote them.

Why this method - measured, not guessed. Forward + input-backward + weight-backward at batch 128,
float32, ms (and x torch), fastest of 3 x 10 calls, 2 threads for everyone, each method in
processes of its own (benchmarks/bench_conv_kernels.py, a 2-core Xeon under KVM, 2026-11-29):

    layer                 this file      one worker,         copies on Numba's   direct loops    torch 2.13
                          (workers)      products on         threads, products   over prange     (oneDNN)
                                         OpenBLAS's threads  on OpenBLAS's
    Conv2d(1,32,4,2,1)      2.2 (0.67)      2.9 (0.88)         57 (18)             15 (4.6)        3.2
    Conv2d(32,64,4,2,1)    10.0 (1.72)     14.6 (2.50)        237 (41)            331 (57)         5.8
    ConvT2d(64,32,4,2,1)   10.0 (1.69)     14.1 (2.39)        199 (34)            329 (56)         5.9
    ConvT2d(32,1,4,2,1)     2.3 (0.68)      3.0 (0.89)         48 (14)             15 (4.6)        3.3
    masked A 7x7 1->32      7.7 (0.41)     13.2 (0.71)        184 (9.9)            74 (3.9)       18.7
    masked B 3x3 32->32    28.1 (1.22)     47.4 (2.06)       2285 (100)           435 (19)        23.0

One worker with the products on OpenBLAS's threads is how this file ran before: the copies run
on one core while the other waits. Spreading those copies over Numba's threads instead makes
every layer 10-100x slower: OpenBLAS's threads spin after each product and the two pools fight
over the cores (threads.py). Direct loops reach 4-13 GFLOP/s against BLAS's 100+. Where torch
stays ahead (the 32- and 64-channel layers), the products run at 90-130 GFLOP/s a core against a
peak near 165; the rest is the copying around them - im2col writes each input pixel once per
kernel tap, and every pass over the batch's 12.8 MB arrays runs into this machine's memory
bandwidth (12-15 GB/s for both cores together) - which oneDNN's direct convolution does not do.
The masks' skipped taps are why the PixelCNN layers come out ahead.

References: K. Chellapilla, S. Puri, P. Simard, "High Performance Convolutional Neural Networks
for Document Processing" (2006) - im2col; V. Dumoulin, F. Visin, "A guide to convolution
arithmetic for deep learning" (2016) - output sizes, transposed convolution as the adjoint;
A. van den Oord, N. Kalchbrenner, K. Kavukcuoglu, "Pixel Recurrent Neural Networks" (2016) -
masks 'A' and 'B'.
"""
import math

import numpy as np
from numba import njit

from minivae.kernels import threads
from minivae.kernels.dense import IDENTITY, _act, _act_grad

# ---------------------------------------------------------------- sizes (validated, for the wrappers)


def conv_output_size(h: int, k: int, stride: int, padding: int) -> int:
    """H_out = (H + 2p - k) // s + 1, refusing sizes that leave no output."""
    if stride < 1 or padding < 0 or k < 1 or h < 1:
        raise ValueError(f"need h >= 1, k >= 1, stride >= 1, padding >= 0; got {h=}, {k=}, {stride=}, {padding=}")
    if k > h + 2 * padding:
        raise ValueError(f"kernel size {k} is larger than the padded input {h} + 2*{padding}")
    return (h + 2 * padding - k) // stride + 1


def conv_transpose_output_size(h: int, k: int, stride: int, padding: int, output_padding: int) -> int:
    """H_out = (H - 1) s - 2p + k + output_padding; output_padding picks among the sizes a stride-s
    convolution maps onto the same H, so it must be below s."""
    if stride < 1 or padding < 0 or k < 1 or h < 1:
        raise ValueError(f"need h >= 1, k >= 1, stride >= 1, padding >= 0; got {h=}, {k=}, {stride=}, {padding=}")
    if not 0 <= output_padding < stride:
        raise ValueError(f"output_padding must be in [0, stride); got {output_padding} with stride {stride}")
    h_out = (h - 1) * stride - 2 * padding + k + output_padding
    if h_out < 1:
        raise ValueError(f"padding {padding} leaves no output (size {h_out})")
    return h_out


# ---------------------------------------------------------------- im2col and its adjoint, a chunk of samples
# Two layouts make every copy below one contiguous run.
#  * Phase planes. The input is zero-padded and split into s*s planes, x_ph[n, c, a, b, u, v] =
#    x_pad[n, c, u*s + a, v*s + b]. Tap (i, j) of output pixel (oh, ow) reads x_pad[n, c, oh*s + i,
#    ow*s + j] = x_ph[n, c, i % s, j % s, oh + i // s, ow + j // s]: within a plane, a strided
#    convolution reads neighbouring pixels, as a stride-1 one does. (For s = 1, x_ph is x_pad.)
#  * Wide rows. The columns keep every pixel of a plane row, ow < Wq, not only the W_out real
#    ones: then tap (i, j) of sample n is the plane itself from offset (i // s)*Wq + j // s on, one
#    run of H_out*Wq numbers. The extra columns compute nothing useful; the wrappers drop them from
#    the output and keep them zero in y_bar, so they add nothing to x_bar or w_bar. Each plane has
#    one spare row of zeros, so a run never leaves its plane.
# The flat indices are cast to np.uintp: Numba wraps a negative signed index around (a[-1] is the
# last element), and that test on every read stops LLVM from vectorising the copy; an unsigned
# index cannot be negative, so Numba leaves the test out (numba PR #929). Measured, one thread, 128
# samples, im2col / col2im of the 3x3 32->32 layer at 28x28: signed 16 ms / -, unsigned 4.7 / 4.8.
# Every kernel is nogil, so the workers' copies run at the same time.


def phase_shape(m, C, H, W, stride, padding):
    """(m, C, s, s, Hq + 1, Wq) with Hq = ceil((H + 2p) / s), Wq = ceil((W + 2p) / s): the phase
    planes of x_pad, each with one spare row."""
    return m, C, stride, stride, -(-(H + 2 * padding) // stride) + 1, -(-(W + 2 * padding) // stride)


@njit(cache=True, nogil=True)
def _phase_columns(W, s, padding):
    """For each column phase b: w0, the first column of x with (w0 + p) % s == b; v0, where it lands
    in the plane; and how many columns of x land there. Worked out once, as divisions cost more
    than the copies."""
    w0, v0, count = np.empty(s, np.int64), np.empty(s, np.int64), np.empty(s, np.int64)
    for b in range(s):
        w0[b] = (b - padding) % s
        v0[b], count[b] = (w0[b] + padding) // s, (W - w0[b] + s - 1) // s
    return w0, v0, count


@njit(cache=True, nogil=True)
def pad_into_phases(x, padding, x_ph):
    """x_ph[n, c, a, b, u, v] = x[n, c, u*s + a - p, v*s + b - p] wherever that is inside x; the
    entries on the padding are not touched (x_ph is allocated with zeros).
    x: (m, C, H, W);  x_ph: (m, C, s, s, Hq + 1, Wq)."""
    m, C, H, W = x.shape
    s, Hq1, Wq = x_ph.shape[2], x_ph.shape[4], x_ph.shape[5]
    x_flat, ph_flat = x.reshape(-1), x_ph.reshape(-1)
    w0, v0, count = _phase_columns(W, s, padding)
    for nc in range(m * C):  # plane by plane, in memory order
        for a in range(s):
            for u in range(Hq1):
                h = u * s + a - padding
                if 0 <= h < H:
                    for b in range(s):
                        frm = (nc * H + h) * W + w0[b]
                        to = (((nc * s + a) * s + b) * Hq1 + u) * Wq + v0[b]
                        if s == 1:  # a contiguous copy, which LLVM vectorises
                            for t in range(count[b]):
                                ph_flat[np.uintp(to + t)] = x_flat[np.uintp(frm + t)]
                        else:
                            for t in range(count[b]):
                                ph_flat[np.uintp(to + t)] = x_flat[np.uintp(frm + t * s)]


@njit(cache=True, nogil=True)
def crop_from_phases(x_ph, padding, bias, code, slope, x):
    """The adjoint of pad_into_phases: x[n, c, h, w] = x_ph at (h + p, w + p); the padding is
    dropped. On the way, x = act(that + bias[c]) (dense.py's activations; identity and zeros for
    the plain adjoint), so a transposed convolution's bias and activation cost no pass of their own."""
    m, C, H, W = x.shape
    s, Hq1, Wq = x_ph.shape[2], x_ph.shape[4], x_ph.shape[5]
    x_flat, ph_flat = x.reshape(-1), x_ph.reshape(-1)
    w0, v0, count = _phase_columns(W, s, padding)
    slope_, one = x.dtype.type(slope), x.dtype.type(1)
    for nc in range(m * C):
        b_c = bias[nc % C]
        for a in range(s):
            for u in range(Hq1):
                h = u * s + a - padding
                if 0 <= h < H:
                    for b in range(s):
                        to = (nc * H + h) * W + w0[b]
                        frm = (((nc * s + a) * s + b) * Hq1 + u) * Wq + v0[b]
                        if s == 1:
                            for t in range(count[b]):
                                x_flat[np.uintp(to + t)] = _act(ph_flat[np.uintp(frm + t)] + b_c, code, slope_, one)
                        else:
                            for t in range(count[b]):
                                x_flat[np.uintp(to + t * s)] = _act(ph_flat[np.uintp(frm + t)] + b_c, code, slope_, one)


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


# ---------------------------------------------------------------- the two passes over the batch
# Every operation is one of two passes, each a loop over chunks that the workers share:
#   _columns_pass   cols = im2col(x); then y = W @ cols + b, and w_bar += cols @ g.T if asked for
#   _gradient_pass  g = y_bar as wide rows; then x_bar = col2im(W.T @ g) and/or w_bar += im2col(x) @ g.T
# Each worker has its own buffers. The chunks, and so every product, are the same for any number
# of workers, and each chunk's share of w_bar and b_bar is kept apart and added in chunk order:
# the result is bit for bit the same on 1 worker or 8, and whichever finishes first.

COLS_BYTES = 2**20  # a chunk's columns: about half a core's L2 cache
MIN_CHUNKS = 8  # so that 2 or 4 workers share a batch evenly; never the number of workers (see above)


def _prepare(*arrays):
    dtype = np.result_type(*arrays)
    return [np.ascontiguousarray(a, dtype=dtype) for a in arrays]


def _chunk_size(B, bytes_per_sample):
    """m samples per chunk: columns of about COLS_BYTES, and at least MIN_CHUNKS chunks."""
    return max(1, min(COLS_BYTES // max(1, bytes_per_sample), -(-B // MIN_CHUNKS)))


def _add_up(parts):
    """The chunks' partial sums, added in chunk order: the same total for any number of workers."""
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def _leading(buffer, *shape):
    """The first prod(shape) elements of a flat buffer as a C-contiguous array of that shape, so a
    short last chunk reuses the buffer and is still contiguous for Numba and BLAS."""
    return buffer[:math.prod(shape)].reshape(shape)


def taps_of(mask, kH, kW) -> np.ndarray:
    """(T, 2) int64: the kernel offsets (i, j) a convolution computes, in raster order - all of them,
    or those where the (kH, kW) mask is nonzero."""
    if mask is None:
        return np.argwhere(np.ones((kH, kW), bool))
    mask = np.asarray(mask)
    if mask.shape != (kH, kW):
        raise ValueError(f"mask of shape {mask.shape} does not match the {kH}x{kW} kernel")
    return np.argwhere(mask != 0)


def _weight_matrix(w, taps):
    """W = w[:, :, taps] as (C_out, C_in*T), rows of cols ordered (c, t)."""
    return np.ascontiguousarray(w[:, :, taps[:, 0], taps[:, 1]].reshape(w.shape[0], -1))


def _weight_from_matrix(w_bar_t, shape, taps):
    """The (K, C_out) weight gradient of the columns as (C_out, C_in, kH, kW), zero off the taps."""
    w_bar = np.zeros(shape, w_bar_t.dtype)
    w_bar[:, :, taps[:, 0], taps[:, 1]] = w_bar_t.T.reshape(shape[0], shape[1], len(taps))
    return w_bar


def _columns_pass(x, taps, stride, padding, H_out, W_out, w_mat, bias=None, g_src=None,
                  act=(IDENTITY, 0.0)):
    """Chunk by chunk, cols = im2col(x) (C_in*T, m*H_out*Wq), then
        y     = act(w_mat @ cols + bias), as (B, C_out, H_out, W_out)       w_mat: (C_out, C_in*T)
        w_bar = sum over chunks of cols @ g.T, (C_in*T, C_g)     if g_src (B, C_g, H_out, W_out) is given
    act = (code, slope) of a dense.py activation. Returns (y, w_bar), w_bar None without g_src."""
    B, C, H, W = x.shape
    C_out, K = w_mat.shape
    Wq = phase_shape(B, C, H, W, stride, padding)[-1]
    wide = H_out * Wq  # columns per sample
    m = _chunk_size(B, K * wide * x.itemsize)
    y = np.empty((B, C_out, H_out, W_out), x.dtype)
    bias = np.zeros(C_out, x.dtype) if bias is None else bias
    chunks = range(0, B, m)  # the first sample of each chunk
    if g_src is not None:
        C_g = g_src.shape[1]
        w_bars = np.empty((len(chunks), K, C_g), x.dtype)  # each chunk's share of w_bar

    def work(worker, n_workers):
        x_ph = np.zeros(phase_shape(m, C, H, W, stride, padding), x.dtype)  # the padding stays zero
        cols_buffer, y_buffer = np.empty(K * m * wide, x.dtype), np.empty(C_out * m * wide, x.dtype)
        if g_src is not None:
            g_buffer = np.empty(C_g * m * wide, x.dtype)
        for c in range(worker, len(chunks), n_workers):
            n0 = chunks[c]
            k = min(m, B - n0)  # samples in this chunk
            pad_into_phases(x[n0:n0 + k], padding, x_ph[:k])
            cols = _leading(cols_buffer, K, k * wide)
            im2col(x_ph[:k], taps, H_out, cols)
            y_mat = _leading(y_buffer, C_out, k * wide)
            np.matmul(w_mat, cols, out=y_mat)  # (C_out, k*H_out*Wq)
            from_wide(y_mat, bias, *act, y[n0:n0 + k])
            if g_src is not None:
                g = _leading(g_buffer, C_g, k * wide)
                to_wide(g_src[n0:n0 + k], g_src[n0:n0 + k], IDENTITY, 0.0, Wq, g)
                np.matmul(cols, g.T, out=w_bars[c])  # (K, C_g)

    threads.run(work)
    return y, (_add_up(w_bars) if g_src is not None else None)


def _gradient_pass(y_bar, taps, stride, padding, x_shape, w_mat=None, x=None, through=None,
                   then=None):
    """Chunk by chunk, g = y_bar as wide rows (C_out, m*H_out*Wq), then
        x_bar = col2im(w_mat.T @ g), cropped to x_shape                if w_mat (C_out, C_in*T) is given
        w_bar = sum over chunks of im2col(x) @ g.T, (C_in*T, C_out)     if x (B, C_in, H, W) is given
    through = (y, code, slope): y_bar comes through that activation of the output y, so g is
    y_bar · act'(y);  then = (bias, code, slope): x_bar becomes act(x_bar + bias) (a transposed
    convolution's forward). Returns (x_bar, w_bar, b_bar), b_bar = g summed over (B, H_out, W_out)
    when x is given; None for those not asked for."""
    B, C_out, H_out, _ = y_bar.shape
    _, C_in, H, W = x_shape
    K = C_in * len(taps)
    Wq = phase_shape(B, C_in, H, W, stride, padding)[-1]
    wide = H_out * Wq
    m = _chunk_size(B, K * wide * y_bar.itemsize)
    x_bar = np.empty(x_shape, y_bar.dtype) if w_mat is not None else None
    w_mat_t = np.ascontiguousarray(w_mat.T) if w_mat is not None else None  # (K, C_out)
    y, code, slope = through if through is not None else (y_bar, IDENTITY, 0.0)
    then = then if then is not None else (np.zeros(C_in, y_bar.dtype), IDENTITY, 0.0)
    chunks = range(0, B, m)  # the first sample of each chunk
    if x is not None:  # each chunk's share of w_bar and b_bar
        w_bars, b_bars = np.empty((len(chunks), K, C_out), y_bar.dtype), np.empty((len(chunks), C_out), y_bar.dtype)

    def work(worker, n_workers):
        planes = phase_shape(m, C_in, H, W, stride, padding)
        x_ph, x_ph_bar = np.zeros(planes, y_bar.dtype), np.empty(planes, y_bar.dtype)
        g_buffer, cols_buffer = np.empty(C_out * m * wide, y_bar.dtype), np.empty(K * m * wide, y_bar.dtype)
        ones = np.ones(m * wide, y_bar.dtype)
        for c in range(worker, len(chunks), n_workers):
            n0 = chunks[c]
            k = min(m, B - n0)
            g, cols = _leading(g_buffer, C_out, k * wide), _leading(cols_buffer, K, k * wide)
            to_wide(y_bar[n0:n0 + k], y[n0:n0 + k], code, slope, Wq, g)
            if w_mat is not None:
                np.matmul(w_mat_t, g, out=cols)  # (K, k*H_out*Wq)
                col2im(cols, taps, H_out, x_ph_bar[:k])
                crop_from_phases(x_ph_bar[:k], padding, *then, x_bar[n0:n0 + k])
            if x is not None:
                pad_into_phases(x[n0:n0 + k], padding, x_ph[:k])
                im2col(x_ph[:k], taps, H_out, cols)
                np.matmul(cols, g.T, out=w_bars[c])  # (K, C_out)
                np.matmul(g, ones[:k * wide], out=b_bars[c])  # g's row sums (its extra columns are 0): 2 µs; g.sum(axis=1) 6 µs

    threads.run(work)
    if x is None:
        return x_bar, None, None
    return x_bar, _add_up(w_bars), _add_up(b_bars)


# ---------------------------------------------------------------- the operations


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: int,
                   mask: np.ndarray | None = None, activation: int = IDENTITY,
                   slope: float = 0.0) -> np.ndarray:
    """y = act(conv2d(x, w * mask) + b), act a dense.py activation code.  x: (B, C_in, H, W),
    w: (C_out, C_in, kH, kW), b: (C_out,) or None, mask: (kH, kW) or None -> y: (B, C_out, H_out, W_out)."""
    x, w = _prepare(x, w)
    _, _, H, W = x.shape
    kH, kW = w.shape[2:]
    H_out, W_out = conv_output_size(H, kH, stride, padding), conv_output_size(W, kW, stride, padding)
    taps = taps_of(mask, kH, kW)
    bias = None if b is None else np.asarray(b, dtype=x.dtype)
    return _columns_pass(x, taps, int(stride), int(padding), H_out, W_out, _weight_matrix(w, taps), bias,
                         act=(activation, slope))[0]


def conv2d_backward(y_bar: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int, padding: int,
                    mask: np.ndarray | None = None, need_x_bar: bool = True, y: np.ndarray | None = None,
                    activation: int = IDENTITY, slope: float = 0.0) -> tuple:
    """(x_bar, w_bar, b_bar), the vector-Jacobian products of y = act(a), a = conv2d(x, w * mask) + b,
    in one pass over the batch, with a_bar = y_bar · act'(y) (y the forward's output; not needed
    for the identity):  x_bar = col2im(W.T @ a_bar) (None unless need_x_bar),  w_bar = sum of
    a_bar @ cols(x).T (zero off the mask),  b_bar = a_bar summed over (B, H_out, W_out)."""
    y_bar, x, w = _prepare(y_bar, x, w)
    taps = taps_of(mask, *w.shape[2:])
    w_mat = _weight_matrix(w, taps) if need_x_bar else None
    through = None if activation == IDENTITY else (np.ascontiguousarray(y, y_bar.dtype), activation, slope)
    x_bar, w_bar_t, b_bar = _gradient_pass(y_bar, taps, int(stride), int(padding), x.shape, w_mat, x,
                                           through=through)
    return x_bar, _weight_from_matrix(w_bar_t, w.shape, taps), b_bar


def conv2d_backward_input(y_bar: np.ndarray, w: np.ndarray, x_shape: tuple, stride: int, padding: int,
                          mask: np.ndarray | None = None) -> np.ndarray:
    """x_bar of y = conv2d(x, w * mask): every output gradient flows back to the pixels its window read."""
    y_bar, w = _prepare(y_bar, w)
    taps = taps_of(mask, *w.shape[2:])
    return _gradient_pass(y_bar, taps, int(stride), int(padding), tuple(x_shape), _weight_matrix(w, taps))[0]


def conv_transpose2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: int,
                             output_padding: int, activation: int = IDENTITY, slope: float = 0.0) -> np.ndarray:
    """y = act(conv_transpose2d(x, w) + b), the adjoint of conv2d with the same w, then the bias and
    a dense.py activation.  x: (B, C_in, H, W), w: (C_in, C_out, kH, kW) -> y: (B, C_out, H_out, W_out),
    H_out = (H - 1) s - 2p + kH + output_padding."""
    x, w = _prepare(x, w)
    B, C_in, H, W = x.shape
    _, C_out, kH, kW = w.shape
    H_out = conv_transpose_output_size(H, kH, stride, padding, output_padding)
    W_out = conv_transpose_output_size(W, kW, stride, padding, output_padding)
    bias = np.zeros(C_out, x.dtype) if b is None else np.asarray(b, dtype=x.dtype)
    # w read as a conv2d weight maps C_out channels to C_in, so this is conv2d's input-backward
    taps = taps_of(None, kH, kW)
    return _gradient_pass(x, taps, int(stride), int(padding), (B, C_out, H_out, W_out), _weight_matrix(w, taps),
                          then=(bias, activation, slope))[0]


def conv_transpose2d_backward(y_bar: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int,
                              padding: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_bar, w_bar, b_bar) of y = conv_transpose2d(x, w) + b, from one im2col pass over y_bar:
        x_bar = conv2d(y_bar, w)             the adjoint of the adjoint is the convolution itself
        w_bar = conv2d's weight gradient with y_bar as the input and x as the output gradient
        b_bar = y_bar summed over (B, H_out, W_out).
    output_padding needs no argument: the extra rows it added are never read back."""
    y_bar, x, w = _prepare(y_bar, x, w)
    _, _, kH, kW = w.shape
    _, _, H, W = x.shape
    taps = taps_of(None, kH, kW)
    x_bar, w_bar_t = _columns_pass(y_bar, taps, int(stride), int(padding), H, W, _weight_matrix(w, taps), g_src=x)
    return x_bar, _weight_from_matrix(w_bar_t, w.shape, taps), y_bar.sum(axis=(0, 2, 3))


# ---------------------------------------------------------------- PixelCNN masks (plain NumPy)


def pixelcnn_mask(k: int, mask_type: str, dtype=np.float32) -> np.ndarray:
    """(k, k) mask of the kernel taps a PixelCNN convolution may use, for one channel group (the
    same mask serves every (output, input) channel pair: no R/G/B ordering as in the paper's
    colour model). Output pixel (r, c) then reads input pixel (r + i - k//2, c + j - k//2) only
    where mask[i, j] = 1.

    Raster masks (van den Oord et al., "Pixel Recurrent Neural Networks", 2016):
      'A'  rows above, and the pixels left of the centre in its own row (a first layer);
      'B'  the same and the centre itself (later layers).
    Stacked raster masks leave a blind spot above and to the right; the gated PixelCNN
    (van den Oord et al., "Conditional Image Generation with PixelCNN Decoders", 2016) splits them:
      'V'   the vertical stack: the rows above and the centre row, every column (its output at row
            r is used for row r + 1 only, after a shift down one row);
      'HA'  the horizontal stack's first layer: the centre row, left of the centre;
      'HB'  its later layers: the centre row, left of the centre and the centre."""
    if mask_type not in ("A", "B", "V", "HA", "HB"):
        raise ValueError(f"mask_type must be 'A', 'B', 'V', 'HA' or 'HB', got {mask_type!r}")
    if k < 1 or k % 2 == 0:
        raise ValueError(f"a PixelCNN mask needs an odd kernel size to have a centre, got {k}")
    centre = k // 2
    mask = np.zeros((k, k), dtype)
    if mask_type == "V":
        mask[:centre + 1, :] = 1
        return mask
    if mask_type in ("A", "B"):
        mask[:centre, :] = 1  # every row above
    mask[centre, :centre + mask_type.endswith("B")] = 1  # left of the centre, and the centre for B
    return mask
