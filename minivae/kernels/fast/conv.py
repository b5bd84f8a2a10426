"""2-D convolution and transposed convolution (NCHW) as im2col around a matrix product.

    cols[(c, i, j), (oh, ow)] = x_pad[c, oh*s + i, ow*s + j]    im2col: a column per output pixel
    y[n]     = W @ cols(x[n]) + b                               W = w.reshape(C_out, C_in*kH*kW)
    x_bar[n] = col2im(W.T @ y_bar[n])                           col2im: the adjoint of im2col
    w_bar    = Σ_n y_bar[n] @ cols(x[n]).T,    b_bar = y_bar summed over (n, oh, ow)

with H_out = (H + 2p - kH) // s + 1. The numpy door's conv.py is these four lines in plain NumPy;
im2col.py holds the copy loops, in the layout that makes them fast (phase planes, wide
rows), and each operation below is those lines applied to one chunk of the batch. The transposed
convolution is the adjoint of the convolution, so it needs no kernel of its own: its forward is
conv2d's input-backward, its input-backward is conv2d's forward, and its weight-backward is
conv2d's weight-backward with the roles of x and y_bar swapped.

A masked convolution (PixelCNN) passes `mask`, a (kH, kW) array of zeros and ones: only the kernel
taps (i, j) where it is 1 become rows of cols. That is the convolution with w * mask - same y, same
x_bar, and w_bar is zero off the mask - at a fraction of the work: a 3x3 type-'B' mask keeps 5 of
the 9 taps, a 7x7 type-'A' mask 24 of 49 (nn.pixelcnn_mask builds the masks).

How it runs. The batch is cut into chunks of a few samples whose columns fit in a core's cache
(COLS_BYTES), at least MIN_CHUNKS of them. Each worker thread (threads.py) takes every
n_workers-th chunk and does all of its work: the copies and the chunk's products a @ b, which
NumPy's BLAS runs on that worker's thread alone. The chunks do not depend on the number of
workers, and each chunk's share of w_bar and b_bar is kept apart and added in chunk order, so no
result depends on the number of workers, to the last bit. Splitting the batch rather than each
product keeps both cores busy during the copies, which are a third of the work or more, and keeps
each chunk's columns in the cache of the core that wrote them; benchmarks/README.md has the
measurements against the other ways tried, and PyTorch.

The arguments are taken to be valid (functional.py checks shapes, stride, padding and mask once,
with messages that name them), as in dense.py.

References: K. Chellapilla, S. Puri, P. Simard, "High Performance Convolutional Neural Networks
for Document Processing" (2006) - im2col; V. Dumoulin, F. Visin, "A guide to convolution
arithmetic for deep learning" (2016) - output sizes, transposed convolution as the adjoint.
"""
import math

import numpy as np

from minivae.kernels.fast import threads
from minivae.kernels.fast.dense import IDENTITY
from minivae.kernels.fast.im2col import (col2im, crop_from_phases, from_wide, im2col, pad_into_phases,
                                         phase_shape, to_wide)

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


def taps_of(mask, kH, kW) -> np.ndarray:
    """(T, 2) int64: the kernel offsets (i, j) a convolution computes, in raster order - all of
    them, or those where the (kH, kW) mask is nonzero."""
    return np.argwhere(np.ones((kH, kW), bool) if mask is None else np.asarray(mask) != 0)


def _weight_matrix(w, taps):
    """W = w[:, :, taps] as (C_out, C_in*T), rows of cols ordered (c, t)."""
    return np.ascontiguousarray(w[:, :, taps[:, 0], taps[:, 1]].reshape(w.shape[0], -1))


def _weight_from_matrix(w_bar_t, shape, taps):
    """The (K, C_out) weight gradient of the columns as (C_out, C_in, kH, kW), zero off the taps."""
    w_bar = np.zeros(shape, w_bar_t.dtype)
    w_bar[:, :, taps[:, 0], taps[:, 1]] = w_bar_t.T.reshape(shape[0], shape[1], len(taps))
    return w_bar


# ---------------------------------------------------------------- chunks of the batch, and buffers


class _Batch:
    """A convolution seen from its image side, the (B, C, H, W) array that im2col reads (x for
    conv2d, the output for the transposed one), with the batch cut into chunks for the workers."""

    def __init__(self, image_shape, kernel_size, taps, stride, padding, dtype):
        self.B, self.C, self.H, self.W = image_shape
        self.taps, self.stride, self.padding, self.dtype = taps, int(stride), int(padding), dtype
        kH, kW = kernel_size
        self.H_out = (self.H + 2 * self.padding - kH) // self.stride + 1  # the other side's size
        self.W_out = (self.W + 2 * self.padding - kW) // self.stride + 1
        self.Wq = phase_shape(1, self.C, self.H, self.W, self.stride, self.padding)[-1]
        self.wide = self.H_out * self.Wq  # columns per sample, the wide rows' extra ones included
        self.K = self.C * len(taps)  # rows of cols
        self.m = _chunk_size(self.B, self.K * self.wide * np.dtype(dtype).itemsize)
        self.starts = range(0, self.B, self.m)  # the first sample of each chunk

    def partial_sums(self, *shape) -> np.ndarray:
        """(chunks, *shape): one slot per chunk for its share of a sum over the batch."""
        return np.empty((len(self.starts), *shape), self.dtype)

    def each_chunk(self, chunk_work) -> None:
        """chunk_work(c, n, scratch) for every chunk c, n its samples (a slice of the batch), worker
        w taking chunks w, w + n_workers, ...; each worker brings buffers of its own (_Scratch)."""
        def work(worker, n_workers):
            scratch = _Scratch(self)
            for c in range(worker, len(self.starts), n_workers):
                n0 = self.starts[c]
                scratch.k = min(self.m, self.B - n0)
                chunk_work(c, slice(n0, n0 + scratch.k), scratch)

        threads.run(work)


class _Scratch:
    """One worker's buffers, made for a whole chunk of m samples on first use and reused chunk after
    chunk; a chunk of k < m samples (the last) takes the first part of each, still C-contiguous for
    Numba and BLAS. `k` is the number of samples in the chunk at hand."""

    def __init__(self, batch: _Batch):
        self.batch, self.buffers, self.k = batch, {}, batch.m

    def _take(self, name, shape, make=np.empty):
        """Buffer `name` as an array of `shape`, which is k samples' worth."""
        size = math.prod(shape)
        if name not in self.buffers:
            self.buffers[name] = make(size // self.k * self.batch.m, self.batch.dtype)
        return self.buffers[name][:size].reshape(shape)

    def columns(self, x_n) -> np.ndarray:
        """cols(x[n]), (C*T, k*H_out*Wq): the chunk padded into phase planes (whose padding stays
        zero from the buffer's making), then im2col."""
        b = self.batch
        x_ph = self._take("x_ph", phase_shape(self.k, b.C, b.H, b.W, b.stride, b.padding), np.zeros)
        pad_into_phases(x_n, b.padding, x_ph)
        cols = self._take("cols", (b.K, self.k * b.wide))
        im2col(x_ph, b.taps, b.H_out, cols)
        return cols

    def image(self, cols) -> np.ndarray:
        """col2im(cols): every entry of cols added back onto the pixel it came from, as the chunk's
        phase planes (k, C, s, s, Hq + 1, Wq); crop_from_phases then drops the padding."""
        b = self.batch
        x_ph_bar = self._take("x_ph_bar", phase_shape(self.k, b.C, b.H, b.W, b.stride, b.padding))
        col2im(cols, b.taps, b.H_out, x_ph_bar)
        return x_ph_bar

    def wide_rows(self, g_n, y_n, activation, slope) -> np.ndarray:
        """g_n · act'(y_n) as wide rows (C_g, k*H_out*Wq), their extra columns 0: a gradient on the
        other side, (k, C_g, H_out, W_out), ready for a product with the columns."""
        g = self._take("g", (g_n.shape[1], self.k * self.batch.wide))
        to_wide(g_n, y_n, activation, slope, self.batch.Wq, g)
        return g

    def product(self, name, a, b) -> np.ndarray:
        """a @ b into buffer `name`: the chunk's product, on this worker's thread alone (threads.run
        holds NumPy's BLAS to one thread)."""
        return np.matmul(a, b, out=self._take(name, (a.shape[0], b.shape[1])))

    def ones(self) -> np.ndarray:
        """k*H_out*Wq ones: a @ ones sums a's rows as one product."""
        return self._take("ones", (self.k * self.batch.wide,), np.ones)


# ---------------------------------------------------------------- the operations


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: int,
                   mask: np.ndarray | None = None, activation: int = IDENTITY,
                   slope: float = 0.0) -> np.ndarray:
    """y[n] = act(W @ cols(x[n]) + b), W = (w * mask) as (C_out, C_in*T), act a dense.py activation
    code.  x: (B, C_in, H, W), w: (C_out, C_in, kH, kW), b: (C_out,) or None, mask: (kH, kW) or
    None -> y: (B, C_out, H_out, W_out)."""
    x, w = _prepare(x, w)
    taps = taps_of(mask, *w.shape[2:])
    batch = _Batch(x.shape, w.shape[2:], taps, stride, padding, x.dtype)
    W = _weight_matrix(w, taps)
    bias = np.zeros(len(W), x.dtype) if b is None else np.asarray(b, dtype=x.dtype)
    y = np.empty((batch.B, len(W), batch.H_out, batch.W_out), x.dtype)

    def chunk(c, n, scratch):
        y_wide = scratch.product("y", W, scratch.columns(x[n]))  # W @ cols(x[n]), (C_out, k*H_out*Wq)
        from_wide(y_wide, bias, activation, slope, y[n])  # + b, act, the extra columns dropped

    batch.each_chunk(chunk)
    return y


def conv2d_backward(y_bar: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int, padding: int,
                    mask: np.ndarray | None = None, need_x_bar: bool = True, y: np.ndarray | None = None,
                    activation: int = IDENTITY, slope: float = 0.0) -> tuple:
    """(x_bar, w_bar, b_bar) of y = act(a), a = conv2d(x, w * mask) + b, in one pass over the batch:
        a_bar[n] = y_bar[n] · act'(y[n])              (y, the forward's output; unread for identity)
        x_bar[n] = col2im(W.T @ a_bar[n])             None unless need_x_bar
        w_bar    = Σ_n a_bar[n] @ cols(x[n]).T        zero off the mask
        b_bar    = a_bar summed over (n, oh, ow)."""
    y_bar, x, w = _prepare(y_bar, x, w)
    taps = taps_of(mask, *w.shape[2:])
    batch = _Batch(x.shape, w.shape[2:], taps, stride, padding, y_bar.dtype)
    C_out = w.shape[0]
    W_T = np.ascontiguousarray(_weight_matrix(w, taps).T) if need_x_bar else None  # (C_in*T, C_out)
    if activation == IDENTITY:
        y, slope = y_bar, 0.0
    else:
        y = np.ascontiguousarray(y, y_bar.dtype)
    x_bar = np.empty(x.shape, y_bar.dtype) if need_x_bar else None
    no_bias = np.zeros(batch.C, y_bar.dtype)
    w_bars, b_bars = batch.partial_sums(batch.K, C_out), batch.partial_sums(C_out)  # chunk by chunk

    def chunk(c, n, scratch):
        a_bar = scratch.wide_rows(y_bar[n], y[n], activation, slope)  # (C_out, k*H_out*Wq)
        if need_x_bar:
            x_ph_bar = scratch.image(scratch.product("cols", W_T, a_bar))  # col2im(W.T @ a_bar)
            crop_from_phases(x_ph_bar, batch.padding, no_bias, IDENTITY, 0.0, x_bar[n])
        np.matmul(scratch.columns(x[n]), a_bar.T, out=w_bars[c])  # cols(x[n]) @ a_bar.T: (C_in*T, C_out)
        np.matmul(a_bar, scratch.ones(), out=b_bars[c])  # a_bar's row sums (its extra columns are 0)

    batch.each_chunk(chunk)
    return x_bar, _weight_from_matrix(_add_up(w_bars), w.shape, taps), _add_up(b_bars)


def _scatter(g, w, taps, image_shape, stride, padding, bias, activation, slope) -> np.ndarray:
    """image[n] = act(col2im(W.T @ g[n]) + b), W = w[:, :, taps] as (C_g, C*T): g (B, C_g, H_out,
    W_out) scattered back to image_shape (B, C, H, W). That is conv2d's input-backward (b = 0 and
    the identity), and the transposed convolution's forward."""
    batch = _Batch(image_shape, w.shape[2:], taps, stride, padding, g.dtype)
    W_T = np.ascontiguousarray(_weight_matrix(w, taps).T)  # (C*T, C_g)
    image = np.empty(image_shape, g.dtype)

    def chunk(c, n, scratch):
        g_wide = scratch.wide_rows(g[n], g[n], IDENTITY, 0.0)  # (C_g, k*H_out*Wq)
        x_ph_bar = scratch.image(scratch.product("cols", W_T, g_wide))  # col2im(W.T @ g[n])
        crop_from_phases(x_ph_bar, batch.padding, bias, activation, slope, image[n])  # act(· + b)

    batch.each_chunk(chunk)
    return image


def conv_transpose2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: int,
                             output_padding: int, activation: int = IDENTITY, slope: float = 0.0) -> np.ndarray:
    """y = act(conv_transpose2d(x, w) + b), the adjoint of conv2d with the same w (conv2d's
    input-backward, w read as a conv2d weight from C_out channels to C_in), then the bias and a
    dense.py activation.  x: (B, C_in, H, W), w: (C_in, C_out, kH, kW) -> y: (B, C_out, H_out,
    W_out), H_out = (H - 1) s - 2p + kH + output_padding."""
    x, w = _prepare(x, w)
    B, _, H, W = x.shape
    _, C_out, kH, kW = w.shape
    H_out = (H - 1) * stride - 2 * padding + kH + output_padding
    W_out = (W - 1) * stride - 2 * padding + kW + output_padding
    bias = np.zeros(C_out, x.dtype) if b is None else np.asarray(b, dtype=x.dtype)
    return _scatter(x, w, taps_of(None, kH, kW), (B, C_out, H_out, W_out), stride, padding, bias,
                    activation, slope)


def conv_transpose2d_backward(y_bar: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int,
                              padding: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_bar, w_bar, b_bar) of y = conv_transpose2d(x, w) + b, from the one set of columns
    cols(y_bar[n]), W = w as (C_in, C_out*kH*kW):
        x_bar[n] = W @ cols(y_bar[n])            conv2d(y_bar, w): the adjoint of the adjoint
        w_bar    = Σ_n cols(y_bar[n]) @ x[n].T    conv2d's weight gradient: y_bar its input, x its
                                                  output gradient
        b_bar    = y_bar summed over (n, H_out, W_out).
    output_padding needs no argument: the extra rows it added are never read back."""
    y_bar, x, w = _prepare(y_bar, x, w)
    taps = taps_of(None, *w.shape[2:])
    batch = _Batch(y_bar.shape, w.shape[2:], taps, stride, padding, y_bar.dtype)
    W = _weight_matrix(w, taps)  # (C_in, C_out*T)
    no_bias = np.zeros(len(W), y_bar.dtype)
    x_bar = np.empty(x.shape, y_bar.dtype)
    w_bars = batch.partial_sums(batch.K, len(W))  # chunk by chunk

    def chunk(c, n, scratch):
        cols = scratch.columns(y_bar[n])  # (C_out*T, k*H*Wq)
        from_wide(scratch.product("y", W, cols), no_bias, IDENTITY, 0.0, x_bar[n])  # W @ cols(y_bar[n])
        x_wide = scratch.wide_rows(x[n], x[n], IDENTITY, 0.0)  # (C_in, k*H*Wq)
        np.matmul(cols, x_wide.T, out=w_bars[c])  # cols(y_bar[n]) @ x[n].T: (C_out*T, C_in)

    batch.each_chunk(chunk)
    return x_bar, _weight_from_matrix(_add_up(w_bars), w.shape, taps), y_bar.sum(axis=(0, 2, 3))
