"""Second derivations of the convolutions, for the tests: both doors (kernels/fast/conv.py and
kernels/numpy/conv.py) are checked against these. Short, obviously correct, and slow.

First the method itself, im2col: each output pixel's receptive field unrolled into a column, so the
convolution is one matrix product, and col2im, its adjoint, a scatter-add back onto the pixels.
These loops, element by element, are what both doors' im2col reorganise, and conv2d_by_im2col is conv.py's docstring:

    cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*s + i, ow*s + j]
    y = W @ cols + b,   W = w.reshape(C_out, C_in*kH*kW)

Then each operation written another way, as a loop over the kH*kW kernel offsets (i, j). At offset
(i, j), output pixel (oh, ow) reads padded input pixel (oh*s + i, ow*s + j); that is a strided
slice of the padded input, and the channel mixing at that offset is one einsum with w[:, :, i, j]:

    y[b, o, oh, ow] = bias[o] + sum_{c, i, j} w[o, c, i, j] * x_pad[b, c, oh*s + i, ow*s + j]

The transposed convolution is written the other way round, as a scatter - each input pixel adds
w[c, :, i, j] * x[b, c, h, w] into output pixel (h*s + i - p, w*s + j - p) - so that tests pinning
it to conv2d's input-backward compare two independent derivations.
"""
import numpy as np


def _sizes(H, W, kH, kW, stride, padding):
    return (H + 2 * padding - kH) // stride + 1, (W + 2 * padding - kW) // stride + 1


def im2col(x, kH, kW, stride, padding):
    """cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*s + i, ow*s + j]: (C*kH*kW, B*H_out*W_out)."""
    B, C, H, W = x.shape
    H_out, W_out = _sizes(H, W, kH, kW, stride, padding)
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((C, kH, kW, B, H_out, W_out), x.dtype)
    for c, i, j, n, oh, ow in np.ndindex(cols.shape):
        cols[c, i, j, n, oh, ow] = x_pad[n, c, oh * stride + i, ow * stride + j]
    return cols.reshape(C * kH * kW, B * H_out * W_out)


def col2im(cols, x_shape, kH, kW, stride, padding):
    """The adjoint of im2col: each entry of cols added back onto the pixel of x it was read from."""
    B, C, H, W = x_shape
    H_out, W_out = _sizes(H, W, kH, kW, stride, padding)
    x_pad_bar = np.zeros((B, C, H + 2 * padding, W + 2 * padding), cols.dtype)
    cols = cols.reshape(C, kH, kW, B, H_out, W_out)
    for c, i, j, n, oh, ow in np.ndindex(cols.shape):
        x_pad_bar[n, c, oh * stride + i, ow * stride + j] += cols[c, i, j, n, oh, ow]
    return x_pad_bar[:, :, padding:padding + H, padding:padding + W]


def conv2d_by_im2col(x, w, b, stride, padding):
    """y = W @ cols(x) + b, W = w.reshape(C_out, C_in*kH*kW), as (B, C_out, H_out, W_out)."""
    B, _, H, W = x.shape
    C_out, _, kH, kW = w.shape
    y = w.reshape(C_out, -1) @ im2col(x, kH, kW, stride, padding)  # (C_out, B*H_out*W_out)
    y = y.reshape(C_out, B, *_sizes(H, W, kH, kW, stride, padding)).transpose(1, 0, 2, 3)
    return y if b is None else y + b[None, :, None, None]


def _window(a, i, j, stride, h_out, w_out):
    """a[:, :, i + s*oh, j + s*ow] for oh < h_out, ow < w_out: the pixels that kernel offset (i, j) touches."""
    return a[:, :, i:i + stride * (h_out - 1) + 1:stride, j:j + stride * (w_out - 1) + 1:stride]


def conv2d_forward(x, w, b, stride, padding):
    """y = conv2d(x, w) + b.  x: (B, C_in, H, W), w: (C_out, C_in, kH, kW) -> (B, C_out, H_out, W_out)."""
    B, _, H, W = x.shape
    C_out, _, kH, kW = w.shape
    H_out, W_out = (H + 2 * padding - kH) // stride + 1, (W + 2 * padding - kW) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.zeros((B, C_out, H_out, W_out), np.result_type(x, w))
    for i in range(kH):
        for j in range(kW):
            y += np.einsum("bchw,oc->bohw", _window(x_pad, i, j, stride, H_out, W_out), w[:, :, i, j])
    if b is not None:
        y += b[None, :, None, None]
    return y


def conv2d_backward_input(y_bar, w, x_shape, stride, padding):
    """x_bar: every output gradient flows back to the input pixels its window read."""
    B, C_in, H, W = x_shape
    _, _, kH, kW = w.shape
    H_out, W_out = y_bar.shape[2:]
    x_pad_bar = np.zeros((B, C_in, H + 2 * padding, W + 2 * padding), np.result_type(y_bar, w))
    for i in range(kH):
        for j in range(kW):
            _window(x_pad_bar, i, j, stride, H_out, W_out)[...] += np.einsum("bohw,oc->bchw", y_bar, w[:, :, i, j])
    return x_pad_bar[:, :, padding:padding + H, padding:padding + W]


def conv2d_backward_weight(x, y_bar, w_shape, stride, padding):
    """w_bar[o, c, i, j] = sum_{b, oh, ow} y_bar[b, o, oh, ow] * x_pad[b, c, oh*s + i, ow*s + j];  b_bar = sum y_bar."""
    _, _, kH, kW = w_shape
    H_out, W_out = y_bar.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    w_bar = np.zeros(w_shape, np.result_type(x, y_bar))
    for i in range(kH):
        for j in range(kW):
            w_bar[:, :, i, j] = np.einsum("bohw,bchw->oc", y_bar, _window(x_pad, i, j, stride, H_out, W_out))
    return w_bar, y_bar.sum(axis=(0, 2, 3))


def conv_transpose2d_forward(x, w, b, stride, padding, output_padding):
    """y = conv_transpose2d(x, w) + b as a scatter.  x: (B, C_in, H, W), w: (C_in, C_out, kH, kW)
    -> (B, C_out, H_out, W_out), H_out = (H - 1) s - 2p + kH + output_padding."""
    B, _, H, W = x.shape
    _, C_out, kH, kW = w.shape
    H_out = (H - 1) * stride - 2 * padding + kH + output_padding
    W_out = (W - 1) * stride - 2 * padding + kW + output_padding
    # scatter into the padded output, then cut the padding off every side
    y_full = np.zeros((B, C_out, H_out + 2 * padding, W_out + 2 * padding), np.result_type(x, w))
    for i in range(kH):
        for j in range(kW):
            _window(y_full, i, j, stride, H, W)[...] += np.einsum("bchw,co->bohw", x, w[:, :, i, j])
    y = y_full[:, :, padding:padding + H_out, padding:padding + W_out]
    if b is not None:
        y = y + b[None, :, None, None]
    return y


def _pad(y_bar, padding):
    """y_bar placed back in the padded output the scatter wrote to; the cut-off border gets 0."""
    return np.pad(y_bar, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def conv_transpose2d_backward_input(y_bar, w, x_shape, stride, padding):
    """x_bar[b, c, h, w] = sum over the output pixels that input pixel scattered into."""
    _, _, H, W = x_shape
    _, _, kH, kW = w.shape
    full = _pad(y_bar, padding)
    x_bar = np.zeros(x_shape, np.result_type(y_bar, w))
    for i in range(kH):
        for j in range(kW):
            x_bar += np.einsum("bohw,co->bchw", _window(full, i, j, stride, H, W), w[:, :, i, j])
    return x_bar


def conv_transpose2d_backward_weight(x, y_bar, w_shape, stride, padding):
    """w_bar[c, o, i, j] = sum_{b, h, w} x[b, c, h, w] * y_bar_full[b, o, h*s + i, w*s + j];  b_bar = sum y_bar."""
    _, _, H, W = x.shape
    _, _, kH, kW = w_shape
    full = _pad(y_bar, padding)
    w_bar = np.zeros(w_shape, np.result_type(x, y_bar))
    for i in range(kH):
        for j in range(kW):
            w_bar[:, :, i, j] = np.einsum("bchw,bohw->co", x, _window(full, i, j, stride, H, W))
    return w_bar, y_bar.sum(axis=(0, 2, 3))
