"""2-D convolution and transposed convolution kernels (NCHW): ndarray in, ndarray out.

Convolution is a matrix product once each receptive field is unrolled into a column (im2col):

    cols[(c, i, j), (oh, ow)] = x_pad[c, oh*s + i, ow*s + j]                 # (C_in*kH*kW, H_out*W_out)
    y[n]     = W @ cols(x[n]) + b        W = w.reshape(C_out, C_in*kH*kW)
    x_bar[n] = col2im(W.T @ y_bar[n])    col2im is the adjoint of im2col: it scatter-adds
    w_bar    = sum_n y_bar[n] @ cols(x[n]).T,    b_bar = y_bar summed over (n, oh, ow)

with H_out = (H + 2p - kH) // s + 1. The transposed convolution is the adjoint of the
convolution, so it needs no kernel of its own: its forward is conv2d's input-backward, its
input-backward is conv2d's forward, and its weight-backward is conv2d's weight-backward with the
roles of x and y_bar swapped. A masked (PixelCNN) convolution is an ordinary one called with
w * mask, whose weight gradient the caller multiplies by the same mask; `pixelcnn_mask` builds it.

How it runs. Numba unrolls the samples of a chunk of the batch in parallel (`prange` over samples)
into a stack of column matrices (m, C_in*kH*kW, H_out*W_out); NumPy's `np.matmul` then runs one
BLAS GEMM per sample, and (C_out, K) @ cols[n] *is* sample n of the NCHW output, so nothing is
transposed. col2im scatters back, one sample per thread. Only NumPy and Numba are needed: a GEMM
called from inside @njit would need SciPy's BLAS, which minivae does not depend on.

Why this method - measured, not guessed (forward + input-backward + weight-backward, batch 128,
float32, one thread each for Numba, OpenBLAS and torch, fastest of 5; AMD EPYC; the machine was
shared, so two-thread figures were not stable enough to quote):

    layer                          im2col + one GEMM   per-sample im2col   torch 2.13   ratio
                                   for the batch       + np.matmul stack   (oneDNN)
    Conv2d(1,32,4,2,1)      28x28        3.7 ms             1.9 ms            7.3 ms     0.26
    Conv2d(32,64,4,2,1)     14x14       33.1 ms            24.2 ms           13.7 ms     1.77
    ConvTranspose2d(64,32)   7x7        34.5 ms            24.4 ms           13.5 ms     1.81
    ConvTranspose2d(32,1)   14x14        4.9 ms             1.6 ms            7.7 ms     0.20
    MaskedConv2d A 7x7 1->32 28x28      47.7 ms            22.7 ms           49.2 ms     0.46
    MaskedConv2d B 3x3 32->32 28x28    270.3 ms           117.4 ms           59.2 ms     1.98

Not yet fast enough at two threads. On the quiet machine (torch on 2 threads; best of 5), the
ratios to torch were 0.55, 3.0, 3.1, 0.32, 0.85 and 3.3 for the six layers above, whether Numba or
OpenBLAS held the second thread: the per-sample GEMMs run one after another, and when both thread
pools are live they spin against each other on 2 cores. Running each sample's GEMM inside its
Numba thread (BLAS held to one thread) measured 1.1-1.5x torch on the large layers
(`bench_conv_kernels.py --methods numba-blas`), but a GEMM called from @njit needs SciPy (and
threadpoolctl to pin its threads), which are not dependencies of minivae.

The batch-wide column matrix (C_in*kH*kW, B*H_out*W_out) makes one large, efficient GEMM, but
it writes C_in*kH*kW times the input through main memory and back (115 MB for the 3x3 32->32
layer) and needs transposes around the product; the per-sample stack stays in cache. Direct loops
over `prange` (no BLAS) were slower than either in benchmarks/bench_conv_kernels.py.

References: K. Chellapilla, S. Puri, P. Simard, "High Performance Convolutional Neural Networks
for Document Processing" (2006) - im2col; V. Dumoulin, F. Visin, "A guide to convolution
arithmetic for deep learning" (2016) - output sizes, transposed convolution as the adjoint;
A. van den Oord, N. Kalchbrenner, K. Kavukcuoglu, "Pixel Recurrent Neural Networks" (2016) -
masks 'A' and 'B'.
"""
import numpy as np
from numba import njit


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
# index cannot be negative, so Numba leaves the test out (numba PR #929).
# Measured, one thread, 128 samples, im2col / col2im in ms (the layers of the table above):
#   3x3 32->32 at 28x28:        signed indices 16 / -,   unsigned 4.7 / 4.8,
#   4x4 stride 2, 32 at 14x14:  unsigned 2.2 / 2.3,   phase planes 1.4 / 1.9,


def phase_shape(m, C, H, W, stride, padding):
    """(m, C, s, s, Hq + 1, Wq) with Hq = ceil((H + 2p) / s), Wq = ceil((W + 2p) / s): the phase
    planes of x_pad, each with one spare row."""
    return m, C, stride, stride, -(-(H + 2 * padding) // stride) + 1, -(-(W + 2 * padding) // stride)


@njit(cache=True)
def _phase_columns(W, s, padding):
    """For each column phase b: w0, the first column of x with (w0 + p) % s == b; v0, where it lands
    in the plane; and how many columns of x land there. Worked out once, as divisions cost more
    than the copies."""
    w0, v0, count = np.empty(s, np.int64), np.empty(s, np.int64), np.empty(s, np.int64)
    for b in range(s):
        w0[b] = (b - padding) % s
        v0[b], count[b] = (w0[b] + padding) // s, (W - w0[b] + s - 1) // s
    return w0, v0, count


@njit(cache=True)
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


@njit(cache=True)
def crop_from_phases(x_ph, padding, x):
    """The adjoint of pad_into_phases: x[n, c, h, w] = x_ph at (h + p, w + p); the padding is dropped."""
    m, C, H, W = x.shape
    s, Hq1, Wq = x_ph.shape[2], x_ph.shape[4], x_ph.shape[5]
    x_flat, ph_flat = x.reshape(-1), x_ph.reshape(-1)
    w0, v0, count = _phase_columns(W, s, padding)
    for nc in range(m * C):
        for a in range(s):
            for u in range(Hq1):
                h = u * s + a - padding
                if 0 <= h < H:
                    for b in range(s):
                        to = (nc * H + h) * W + w0[b]
                        frm = (((nc * s + a) * s + b) * Hq1 + u) * Wq + v0[b]
                        if s == 1:
                            for t in range(count[b]):
                                x_flat[np.uintp(to + t)] = ph_flat[np.uintp(frm + t)]
                        else:
                            for t in range(count[b]):
                                x_flat[np.uintp(to + t * s)] = ph_flat[np.uintp(frm + t)]


@njit(cache=True)
def to_wide(y, Wq, g):
    """g[o, n, oh, ow] = y[n, o, oh, ow] for ow < W_out and 0 for W_out <= ow < Wq: an NCHW array
    as the chunk's wide (C_out, m*H_out*Wq) matrix.  y: (m, C_out, H_out, W_out)."""
    m, C_out, H_out, W_out = y.shape
    g4 = g.reshape(C_out, m, H_out, Wq)
    for o in range(C_out):
        for n in range(m):
            for oh in range(H_out):
                for ow in range(W_out):
                    g4[o, n, oh, ow] = y[n, o, oh, ow]
                for ow in range(W_out, Wq):
                    g4[o, n, oh, ow] = 0


@njit(cache=True)
def from_wide(y_mat, bias, y):
    """y[n, o, oh, ow] = y_mat[o, (n, oh, ow)] + bias[o], dropping the wide rows' extra columns."""
    m, C_out, H_out, W_out = y.shape
    y4 = y_mat.reshape(C_out, m, H_out, -1)
    for n in range(m):
        for o in range(C_out):
            for oh in range(H_out):
                for ow in range(W_out):
                    y[n, o, oh, ow] = y4[o, n, oh, ow] + bias[o]


@njit(cache=True)
def im2col(x_ph, kH, kW, H_out, cols):
    """cols[(c, i, j), (n, oh, ow)] = x_ph[n, c, i % s, j % s, oh + i // s, ow + j // s] for
    ow < Wq, read as one run per (c, i, j, n).
    x_ph: (m, C, s, s, Hq + 1, Wq);  cols: (C*kH*kW, m*H_out*Wq), both C-contiguous."""
    m, C, s, _, Hq1, Wq = x_ph.shape
    x_flat, cols_flat = x_ph.reshape(-1), cols.reshape(-1)
    N, run = cols.shape[1], H_out * Wq
    for c in range(C):
        for i in range(kH):
            for j in range(kW):
                row = (c * kH + i) * kW + j
                for n in range(m):
                    plane = (((n * C + c) * s + i % s) * s + j % s) * Hq1 * Wq  # x_ph[n, c, i % s, j % s]
                    frm = plane + (i // s) * Wq + j // s  # where tap (i, j) of pixel (0, 0) reads
                    to = row * N + n * run  # cols[row, (n, 0, 0)]
                    for t in range(run):
                        cols_flat[np.uintp(to + t)] = x_flat[np.uintp(frm + t)]


@njit(cache=True)
def col2im(cols, kH, kW, H_out, x_ph_bar):
    """The adjoint of im2col: every entry of cols is added back onto the pixel it was read from,
    starting from zero; overlapping receptive fields add up."""
    m, C, s, _, Hq1, Wq = x_ph_bar.shape
    x_flat, cols_flat = x_ph_bar.reshape(-1), cols.reshape(-1)
    N, run = cols.shape[1], H_out * Wq
    x_flat[:] = 0
    for n in range(m):
        for c in range(C):  # sample n, channel c stays in L1 while its kH*kW rows of cols add into it
            for i in range(kH):
                for j in range(kW):
                    row = (c * kH + i) * kW + j
                    plane = (((n * C + c) * s + i % s) * s + j % s) * Hq1 * Wq
                    to, frm = plane + (i // s) * Wq + j // s, row * N + n * run
                    for t in range(run):
                        x_flat[np.uintp(to + t)] += cols_flat[np.uintp(frm + t)]


# ---------------------------------------------------------------- the products, chunk by chunk
# The batch is cut into chunks of m samples, m chosen so the column matrix (K, m*H_out*Wq) is
# about COLS_BYTES and stays in the last-level cache. Each chunk is one wide GEMM in NumPy, which
# OpenBLAS runs on all its threads; the chunk's columns are ordered (n, oh, ow), so a product
# (C_out, m, H_out, Wq) is transposed into NCHW on the way out (dropping the wide rows' extra
# columns), and y_bar the other way on the way in (copies of the output's size, small beside the
# columns). Numba's loops run in the calling thread, on purpose: with Numba's thread pool live as
# well, the idle threads of the two pools spin against each other on 2 cores and the layers ran
# 1.7-11x slower (benchmarks/bench_conv_kernels.py, method numba-threads).

COLS_BYTES = 8 * 2**20


def _prepare(*arrays):
    dtype = np.result_type(*arrays)
    return [np.ascontiguousarray(a, dtype=dtype) for a in arrays]


def _chunk_size(B, K, HW, itemsize):
    """m samples per chunk, with m*K*HW*itemsize about COLS_BYTES."""
    return max(1, min(B, COLS_BYTES // (K * HW * itemsize)))


def _leading(buffer, *shape):
    """The first prod(shape) elements of a flat buffer as a C-contiguous array of that shape, so a
    short last chunk reuses the buffer and is still contiguous for Numba and BLAS."""
    return buffer[:np.prod(shape)].reshape(shape)


def _wide_y_bar(buffer, y_bar, n0, k, Wq):
    """y_bar[n0:n0 + k] as the chunk's (C_out, k*H_out*Wq) matrix, zero in the extra columns."""
    _, C_out, H_out, _ = y_bar.shape
    g = _leading(buffer, C_out, k * H_out * Wq)
    to_wide(y_bar[n0:n0 + k], Wq, g)
    return g


def to_phases(x: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """The zero-padded x as phase planes, (B, C, s, s, Hq + 1, Wq): what im2col reads. Conv2d keeps
    it from the forward pass, so the weight gradient does not pad x a second time."""
    x = np.ascontiguousarray(x)
    x_ph = np.zeros(phase_shape(*x.shape, int(stride), int(padding)), x.dtype)
    pad_into_phases(x, int(padding), x_ph)
    return x_ph


def _columns_pass(x_ph, kH, kW, H_out, W_out, w_mat=None, bias=None, y_bar=None):
    """One pass of im2col over the phase planes x_ph, chunk by chunk, feeding either product or both:
        y     = w_mat @ cols(x) + bias, as (B, C_out, H_out, W_out)    conv2d's forward
        w_bar = sum over chunks of cols(x) @ y_bar_mat.T, (K, C_out)    conv2d's weight gradient
    w_mat: (C_out, K), y_bar: (B, C_out, H_out, W_out); returns (y, w_bar), None for a product not
    asked for."""
    B, C, Wq = x_ph.shape[0], x_ph.shape[1], x_ph.shape[-1]
    K, wide = C * kH * kW, H_out * Wq  # rows of cols; columns per sample
    m = _chunk_size(B, K, wide, x_ph.itemsize)
    cols_buffer = np.empty(K * m * wide, x_ph.dtype)
    y = w_bar = None
    if w_mat is not None:
        C_out = w_mat.shape[0]
        y, y_buffer = np.empty((B, C_out, H_out, W_out), x_ph.dtype), np.empty(C_out * m * wide, x_ph.dtype)
        bias = np.zeros(C_out, x_ph.dtype) if bias is None else bias
    if y_bar is not None:
        C_out = y_bar.shape[1]
        g_buffer, w_bar = np.empty(C_out * m * wide, x_ph.dtype), np.zeros((K, C_out), x_ph.dtype)
    for n0 in range(0, B, m):
        k = min(m, B - n0)  # samples in this chunk
        cols = _leading(cols_buffer, K, k * wide)
        im2col(x_ph[n0:n0 + k], kH, kW, H_out, cols)
        if w_mat is not None:
            y_mat = _leading(y_buffer, w_mat.shape[0], k * wide)
            np.matmul(w_mat, cols, out=y_mat)  # (C_out, k*H_out*Wq)
            from_wide(y_mat, bias, y[n0:n0 + k])
        if y_bar is not None:
            g = _wide_y_bar(g_buffer, y_bar, n0, k, Wq)
            w_bar += cols @ g.T  # OpenBLAS ran this orientation 1.4x faster than g @ cols.T
    return y, w_bar


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: int,
                   x_ph: np.ndarray | None = None) -> np.ndarray:
    """y = conv2d(x, w) + b.  x: (B, C_in, H, W), w: (C_out, C_in, kH, kW), b: (C_out,) or None
    -> y: (B, C_out, H_out, W_out). x_ph: to_phases(x, stride, padding), if the caller has it."""
    x, w = _prepare(x, w)
    B, C_in, H, W = x.shape
    C_out, _, kH, kW = w.shape
    H_out, W_out = conv_output_size(H, kH, stride, padding), conv_output_size(W, kW, stride, padding)
    x_ph = to_phases(x, stride, padding) if x_ph is None else x_ph.astype(x.dtype, copy=False)
    bias = None if b is None else np.asarray(b, dtype=x.dtype)
    y, _ = _columns_pass(x_ph, kH, kW, H_out, W_out, w_mat=w.reshape(C_out, -1), bias=bias)
    return y


def conv2d_backward(y_bar: np.ndarray, w: np.ndarray, x_shape: tuple, stride: int, padding: int,
                    x_ph: np.ndarray | None = None, need_x_bar: bool = True) -> tuple:
    """(x_bar, w_bar, b_bar), the vector-Jacobian products of y = conv2d(x, w) + b:
        x_bar = col2im(W.T @ y_bar)                                       if need_x_bar
        w_bar = sum over chunks of y_bar_mat @ cols(x).T,  b_bar = y_bar summed over (B, H_out, W_out)
                                          if x_ph = to_phases(x, stride, padding) is given
    and None for those not asked for. One pass over the batch: each chunk's y_bar matrix serves both."""
    y_bar, w = _prepare(y_bar, w)
    C_out, C_in, kH, kW = w.shape
    B, _, H_out, W_out = y_bar.shape
    _, _, H, W = x_shape
    stride, padding = int(stride), int(padding)
    Wq, K = phase_shape(B, C_in, H, W, stride, padding)[-1], C_in * kH * kW
    wide = H_out * Wq
    m = _chunk_size(B, K, wide, y_bar.itemsize)
    g_buffer, cols_buffer = np.empty(C_out * m * wide, y_bar.dtype), np.empty(K * m * wide, y_bar.dtype)
    x_bar = w_bar = b_bar = None
    if need_x_bar:
        w_mat_t = np.ascontiguousarray(w.reshape(C_out, K).T)  # (K, C_out)
        x_ph_bar = np.empty(phase_shape(m, C_in, H, W, stride, padding), y_bar.dtype)
        x_bar = np.empty((B, C_in, H, W), y_bar.dtype)
    if x_ph is not None:
        x_ph = x_ph.astype(y_bar.dtype, copy=False)
        w_bar_t, b_bar = np.zeros((K, C_out), y_bar.dtype), y_bar.sum(axis=(0, 2, 3))
    for n0 in range(0, B, m):
        k = min(m, B - n0)
        g, cols = _wide_y_bar(g_buffer, y_bar, n0, k, Wq), _leading(cols_buffer, K, k * wide)
        if need_x_bar:
            np.matmul(w_mat_t, g, out=cols)  # (K, k*H_out*Wq)
            col2im(cols, kH, kW, H_out, x_ph_bar[:k])
            crop_from_phases(x_ph_bar[:k], padding, x_bar[n0:n0 + k])
        if x_ph is not None:
            im2col(x_ph[n0:n0 + k], kH, kW, H_out, cols)
            w_bar_t += cols @ g.T
    if x_ph is not None:
        w_bar = np.ascontiguousarray(w_bar_t.T).reshape(w.shape)
    return x_bar, w_bar, b_bar


def conv_transpose2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: int,
                             output_padding: int) -> np.ndarray:
    """y = conv_transpose2d(x, w) + b, the adjoint of conv2d with the same w.  x: (B, C_in, H, W),
    w: (C_in, C_out, kH, kW) -> y: (B, C_out, H_out, W_out), H_out = (H - 1) s - 2p + kH + output_padding."""
    B, C_in, H, W = x.shape
    _, C_out, kH, kW = w.shape
    H_out = conv_transpose_output_size(H, kH, stride, padding, output_padding)
    W_out = conv_transpose_output_size(W, kW, stride, padding, output_padding)
    # w read as a conv2d weight maps C_out channels to C_in, so this is conv2d's input-backward
    y, _, _ = conv2d_backward(x, w, (B, C_out, H_out, W_out), stride, padding)
    if b is not None:
        y += np.asarray(b, dtype=y.dtype)[:, None, None]
    return y


def conv_transpose2d_backward(y_bar: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int,
                              padding: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_bar, w_bar, b_bar) of y = conv_transpose2d(x, w) + b, from one im2col pass over y_bar:
        x_bar = conv2d(y_bar, w)             the adjoint of the adjoint is the convolution itself
        w_bar = conv2d's weight gradient with y_bar as the input and x as the output gradient
        b_bar = y_bar summed over (B, H_out, W_out).
    output_padding needs no argument: the extra rows it added are never read back."""
    y_bar, x, w = _prepare(y_bar, x, w)
    C_in, C_out, kH, kW = w.shape
    B, _, H, W = x.shape
    x_bar, w_bar_t = _columns_pass(to_phases(y_bar, stride, padding), kH, kW, H, W,
                                   w_mat=w.reshape(C_in, -1), y_bar=x)
    w_bar = np.ascontiguousarray(w_bar_t.T).reshape(w.shape)  # (C_in, C_out, kH, kW)
    return x_bar.reshape(x.shape), w_bar, y_bar.sum(axis=(0, 2, 3))


# ---------------------------------------------------------------- PixelCNN masks (plain NumPy)


def pixelcnn_mask(c_out: int, c_in: int, k: int, mask_type: str, dtype=np.float32) -> np.ndarray:
    """(c_out, c_in, k, k) mask that lets output pixel (r, c) see only input pixels before it in
    raster order: rows above, and the pixels to the left in its own row. Type 'A' (first layer) also
    hides the centre pixel itself, type 'B' (later layers) lets it through. One channel group: no
    R/G/B ordering as in the paper's colour model."""
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    if k < 1 or k % 2 == 0:
        raise ValueError(f"a PixelCNN mask needs an odd kernel size to have a centre, got {k}")
    centre = k // 2
    mask = np.ones((c_out, c_in, k, k), dtype)
    mask[:, :, centre, centre + (mask_type == "B"):] = 0  # the centre row from the centre (A) or after it (B)
    mask[:, :, centre + 1:, :] = 0  # every row below
    return mask
