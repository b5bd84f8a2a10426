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
from numba import njit, prange


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


# ---------------------------------------------------------------- im2col and its adjoint, one sample
# Two ways to walk the same index map, picked by stride (measured, one thread, 128 samples).
# Stride 1: a row of cols is a shifted copy of rows of x, and plain loops vectorise (3x3 32->32
# layer: 7 ms; 15 ms through the table). Stride 2: the reads are strided and the rows short (7
# pixels in the 4x4/2 layers); a gather through a table of source pixels, shared by every sample
# and channel, is 3x faster (im2col 3.0 -> 1.0 ms, col2im 3.7 -> 1.3 ms). They stay separate
# functions: folded into one, the loops compiled 1.6x slower.


def _source_index(H, W, kH, kW, stride, padding):
    """src[(i, j), (oh, ow)] = h*W + w, the input pixel that kernel offset (i, j) of output pixel
    (oh, ow) reads, with h = oh*s - p + i and w = ow*s - p + j; -1 where that pixel is padding."""
    H_out, W_out = (H + 2 * padding - kH) // stride + 1, (W + 2 * padding - kW) // stride + 1
    h = np.arange(H_out)[None, None, :, None] * stride - padding + np.arange(kH)[:, None, None, None]
    w = np.arange(W_out)[None, None, None, :] * stride - padding + np.arange(kW)[None, :, None, None]
    inside = (0 <= h) & (h < H) & (0 <= w) & (w < W)
    return np.where(inside, h * W + w, -1).astype(np.int64).reshape(kH * kW, H_out * W_out)


@njit(cache=True)
def _im2col_loops(x, kH, kW, stride, padding, cols):
    """cols[(c, i, j), (oh, ow)] = x[c, oh*s - p + i, ow*s - p + j], or 0 where that is padding.
    x: (C, H, W);  cols: (C*kH*kW, H_out*W_out)."""
    C, H, W = x.shape
    H_out = (H + 2 * padding - kH) // stride + 1
    W_out = (W + 2 * padding - kW) // stride + 1
    for c in range(C):
        for i in range(kH):
            for j in range(kW):
                row = (c * kH + i) * kW + j
                for oh in range(H_out):
                    h = oh * stride - padding + i
                    for ow in range(W_out):
                        w = ow * stride - padding + j
                        # measured: hoisting the bounds test, splitting off the border or
                        # pre-padding x was no faster overall than this plainest form
                        if 0 <= h < H and 0 <= w < W:
                            cols[row, oh * W_out + ow] = x[c, h, w]
                        else:
                            cols[row, oh * W_out + ow] = 0


@njit(cache=True)
def _im2col_gather(x, src, cols):
    """The same cols, read through the table src = _source_index(...)."""
    C = x.shape[0]
    x_flat = x.reshape(C, -1)  # (C, H*W)
    taps = src.shape[0]
    for c in range(C):
        for ij in range(taps):
            for q in range(src.shape[1]):
                k = src[ij, q]
                cols[c * taps + ij, q] = x_flat[c, k] if k >= 0 else 0


@njit(cache=True)
def _col2im_loops(cols, kH, kW, stride, padding, x_bar):
    """The adjoint of im2col: x_bar[c, oh*s - p + i, ow*s - p + j] += cols[(c, i, j), (oh, ow)].
    Overlapping receptive fields add up; entries that fell on padding are dropped."""
    C, H, W = x_bar.shape
    H_out = (H + 2 * padding - kH) // stride + 1
    W_out = (W + 2 * padding - kW) // stride + 1
    for c in range(C):
        for i in range(kH):
            for j in range(kW):
                row = (c * kH + i) * kW + j
                for oh in range(H_out):
                    h = oh * stride - padding + i
                    if 0 <= h < H:
                        for ow in range(W_out):
                            w = ow * stride - padding + j
                            if 0 <= w < W:
                                x_bar[c, h, w] += cols[row, oh * W_out + ow]


@njit(cache=True)
def _col2im_scatter(cols, src, x_bar):
    """The same adjoint, written through the table src = _source_index(...)."""
    C = x_bar.shape[0]
    x_bar_flat = x_bar.reshape(C, -1)  # (C, H*W), a view
    taps = src.shape[0]
    for c in range(C):
        for ij in range(taps):
            for q in range(src.shape[1]):
                k = src[ij, q]
                if k >= 0:
                    x_bar_flat[c, k] += cols[c * taps + ij, q]


@njit(cache=True)
def _im2col(x, kH, kW, stride, padding, src, cols):
    if stride == 1:
        _im2col_loops(x, kH, kW, stride, padding, cols)
    else:
        _im2col_gather(x, src, cols)


@njit(cache=True)
def _col2im(cols, kH, kW, stride, padding, src, x_bar):
    if stride == 1:
        _col2im_loops(cols, kH, kW, stride, padding, x_bar)
    else:
        _col2im_scatter(cols, src, x_bar)


# ---------------------------------------------------------------- whole batches, parallel over samples


@njit(parallel=True, cache=True)
def _im2col_batch(x, kH, kW, stride, padding, src, cols):
    """cols[n] = im2col(x[n]) for every sample.  x: (m, C, H, W), cols: (m, C*kH*kW, H_out*W_out)."""
    for n in prange(x.shape[0]):
        _im2col(x[n], kH, kW, stride, padding, src, cols[n])


@njit(parallel=True, cache=True)
def _col2im_batch(cols, kH, kW, stride, padding, src, x_bar):
    """x_bar[n] = col2im(cols[n]) for every sample (each sample written by one thread only)."""
    for n in prange(x_bar.shape[0]):
        x_bar[n] = 0
        _col2im(cols[n], kH, kW, stride, padding, src, x_bar[n])


# ---------------------------------------------------------------- public kernels
# The products go to BLAS through NumPy: np.matmul on a stack (m, K, HW) of column matrices runs one
# GEMM per sample in C, and (C_out, K) @ cols[n] is sample n of the NCHW output, so nothing is
# transposed. The batch is cut into chunks so a column buffer stays near COLS_BYTES. Outputs are
# sized here; Numba gets C-contiguous arrays of one dtype and plain ints, so each kernel compiles
# once per dtype.

COLS_BYTES = 32 * 2**20


def _prepare(*arrays):
    dtype = np.result_type(*arrays)
    return [np.ascontiguousarray(a, dtype=dtype) for a in arrays]


def _chunks(B, K, HW, itemsize):
    """Start indices and chunk size m with m·K·HW·itemsize ≈ COLS_BYTES."""
    m = max(1, min(B, COLS_BYTES // (K * HW * itemsize)))
    return range(0, B, m), m


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: int) -> np.ndarray:
    """y = conv2d(x, w) + b.  x: (B, C_in, H, W), w: (C_out, C_in, kH, kW), b: (C_out,) or None
    -> y: (B, C_out, H_out, W_out)."""
    x, w = _prepare(x, w)
    B, _, H, W = x.shape
    C_out, _, kH, kW = w.shape
    stride, padding = int(stride), int(padding)
    H_out, W_out = conv_output_size(H, kH, stride, padding), conv_output_size(W, kW, stride, padding)
    w_mat = w.reshape(C_out, -1)  # (C_out, K)
    y = np.empty((B, C_out, H_out * W_out), x.dtype)
    src = _source_index(H, W, kH, kW, stride, padding)
    starts, m = _chunks(B, w_mat.shape[1], H_out * W_out, x.itemsize)
    cols = np.empty((m, w_mat.shape[1], H_out * W_out), x.dtype)  # (m, K, HW)
    for n0 in starts:
        x_n, cols_n = x[n0:n0 + m], cols[:len(x[n0:n0 + m])]
        _im2col_batch(x_n, kH, kW, stride, padding, src, cols_n)
        np.matmul(w_mat, cols_n, out=y[n0:n0 + len(x_n)])  # (m, C_out, HW)
    if b is not None:
        y += np.asarray(b, dtype=x.dtype)[:, None]
    return y.reshape(B, C_out, H_out, W_out)


def conv2d_backward_input(y_bar: np.ndarray, w: np.ndarray, x_shape: tuple, stride: int, padding: int) -> np.ndarray:
    """x_bar = col2im(W.T @ y_bar), the vector-Jacobian product of conv2d with respect to x."""
    y_bar, w = _prepare(y_bar, w)
    C_out, C_in, kH, kW = w.shape
    B, _, H_out, W_out = y_bar.shape
    stride, padding = int(stride), int(padding)
    x_bar = np.empty(tuple(x_shape), y_bar.dtype)
    w_mat_t = np.ascontiguousarray(w.reshape(C_out, -1).T)  # (K, C_out)
    y_bar3 = y_bar.reshape(B, C_out, H_out * W_out)
    src = _source_index(x_bar.shape[2], x_bar.shape[3], kH, kW, stride, padding)
    starts, m = _chunks(B, w_mat_t.shape[0], H_out * W_out, y_bar.itemsize)
    cols = np.empty((m, w_mat_t.shape[0], H_out * W_out), y_bar.dtype)
    for n0 in starts:
        g = y_bar3[n0:n0 + m]
        cols_n = cols[:len(g)]
        np.matmul(w_mat_t, g, out=cols_n)  # (m, K, HW)
        _col2im_batch(cols_n, kH, kW, stride, padding, src, x_bar[n0:n0 + len(g)])
    return x_bar


def _weight_grad(x, y_bar, w_shape, stride, padding):
    """w_bar = sum_n y_bar[n] @ im2col(x[n]).T, shaped (C_out, C_in, kH, kW) like the weight."""
    x, y_bar = _prepare(x, y_bar)
    C_out, C_in, kH, kW = w_shape
    B, _, H_out, W_out = y_bar.shape
    stride, padding = int(stride), int(padding)
    K = C_in * kH * kW
    y_bar3 = y_bar.reshape(B, C_out, H_out * W_out)
    src = _source_index(x.shape[2], x.shape[3], kH, kW, stride, padding)
    starts, m = _chunks(B, K, H_out * W_out, x.itemsize)
    cols = np.empty((m, K, H_out * W_out), x.dtype)
    w_bar = np.zeros((C_out, K), x.dtype)
    for n0 in starts:
        x_n = x[n0:n0 + m]
        cols_n = cols[:len(x_n)]
        _im2col_batch(x_n, kH, kW, stride, padding, src, cols_n)
        w_bar += np.matmul(y_bar3[n0:n0 + len(x_n)], cols_n.transpose(0, 2, 1)).sum(axis=0)
    return w_bar.reshape(w_shape)


def conv2d_backward_weight(x: np.ndarray, y_bar: np.ndarray, w_shape: tuple, stride: int,
                           padding: int) -> tuple[np.ndarray, np.ndarray]:
    """w_bar = sum_n y_bar[n] @ im2col(x[n]).T,  b_bar = y_bar summed over (B, H_out, W_out)."""
    return _weight_grad(x, y_bar, w_shape, stride, padding), y_bar.sum(axis=(0, 2, 3))


def conv_transpose2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: int,
                             output_padding: int) -> np.ndarray:
    """y = conv_transpose2d(x, w) + b, the adjoint of conv2d with the same w.  x: (B, C_in, H, W),
    w: (C_in, C_out, kH, kW) -> y: (B, C_out, H_out, W_out), H_out = (H - 1) s - 2p + kH + output_padding."""
    B, C_in, H, W = x.shape
    _, C_out, kH, kW = w.shape
    H_out = conv_transpose_output_size(H, kH, stride, padding, output_padding)
    W_out = conv_transpose_output_size(W, kW, stride, padding, output_padding)
    # w read as a conv2d weight maps C_out channels to C_in, so this is conv2d's input-backward
    y = conv2d_backward_input(x, w, (B, C_out, H_out, W_out), stride, padding)
    if b is not None:
        y += np.asarray(b, dtype=y.dtype)[:, None, None]
    return y


def conv_transpose2d_backward_input(y_bar: np.ndarray, w: np.ndarray, x_shape: tuple, stride: int,
                                    padding: int) -> np.ndarray:
    """x_bar = conv2d(y_bar, w): the adjoint of the adjoint is the convolution itself.
    output_padding needs no argument: the extra rows it added are never read back."""
    x_bar = conv2d_forward(y_bar, w, None, stride, padding)
    assert x_bar.shape == tuple(x_shape), (x_bar.shape, x_shape)
    return x_bar


def conv_transpose2d_backward_weight(x: np.ndarray, y_bar: np.ndarray, w_shape: tuple, stride: int,
                                     padding: int) -> tuple[np.ndarray, np.ndarray]:
    """w_bar = conv2d's weight gradient with y_bar as the input and x as the output gradient:
    w_bar[ci, co] = sum_n im2col(y_bar[n]) x[n].T;  b_bar = y_bar summed over (B, H_out, W_out)."""
    return _weight_grad(y_bar, x, w_shape, stride, padding), y_bar.sum(axis=(0, 2, 3))


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
