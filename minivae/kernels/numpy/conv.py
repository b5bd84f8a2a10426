"""The numpy door's convolutions (NCHW): im2col around one matrix product, as the equations say.

    cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh·s + i, ow·s + j]   im2col: a column per pixel
    y     = act(W @ cols(x) + b)                  W = (w·mask) as (C_out, C_in·kH·kW)
    a_bar = y_bar · act'(a)
    x_bar = col2im(Wᵀ @ a_bar)                    col2im: the adjoint of im2col
    w_bar = (a_bar @ cols(x)ᵀ)·mask,   b_bar = a_bar summed over (n, oh, ow)

with H_out = (H + 2p − kH) // s + 1. The transposed convolution is the adjoint of the convolution
with the same w (read as a conv2d weight from C_out channels to C_in), so it is the same lines the
other way round: its forward is col2im(Wᵀ @ x), its input-backward W @ cols(y_bar). A mask (kH, kW)
of zeros and ones is applied to w; the fast door skips the taps it zeroes instead, to the same
result. References: Chellapilla, Puri & Simard (2006), im2col; Dumoulin & Visin (2016), the
transposed convolution as the adjoint.
"""
import numpy as np

from minivae.kernels.numpy.dense import act_backward, activate


def _sizes(H, W, kH, kW, stride, padding):
    return (H + 2 * padding - kH) // stride + 1, (W + 2 * padding - kW) // stride + 1


def im2col(x, kH, kW, stride, padding):
    """cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh·s + i, ow·s + j]: (C·kH·kW, B·H_out·W_out)."""
    B, C, H, W = x.shape
    H_out, W_out = _sizes(H, W, kH, kW, stride, padding)
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    # exercise im2col: one column per output pixel
    cols = np.empty((C, kH, kW, B, H_out, W_out), x.dtype)
    for i in range(kH):
        for j in range(kW):  # kernel offset (i, j) reads one strided window of every image
            window = x_pad[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride]
            cols[:, i, j] = window.transpose(1, 0, 2, 3)  # (C, B, H_out, W_out)
    return cols.reshape(C * kH * kW, B * H_out * W_out)
    # end exercise


def col2im(cols, x_shape, kH, kW, stride, padding):
    """The adjoint of im2col: each entry of cols added back onto the pixel of x it was read from."""
    B, C, H, W = x_shape
    H_out, W_out = _sizes(H, W, kH, kW, stride, padding)
    x_pad = np.zeros((B, C, H + 2 * padding, W + 2 * padding), cols.dtype)
    cols = cols.reshape(C, kH, kW, B, H_out, W_out)
    for i in range(kH):
        for j in range(kW):
            window = x_pad[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride]
            window += cols[:, i, j].transpose(1, 0, 2, 3)  # (B, C, H_out, W_out)
    return x_pad[:, :, padding:padding + H, padding:padding + W]


def _rows(a):
    """(B, C, H, W) -> (C, B·H·W): one row per channel, as the products want."""
    return a.transpose(1, 0, 2, 3).reshape(a.shape[1], -1)


def conv2d(x, w, b, stride, padding, mask=None, activation="identity", slope=0.01):
    """y = act(W @ cols(x) + b).  x: (B, C_in, H, W), w: (C_out, C_in, kH, kW), b: (C_out,),
    mask: (kH, kW) or None -> y: (B, C_out, H_out, W_out)."""
    B, _, H, W = x.shape
    C_out, _, kH, kW = w.shape
    mask = np.ones((kH, kW), w.dtype) if mask is None else np.asarray(mask, w.dtype)
    W_ = (w * mask).reshape(C_out, -1)  # (C_out, C_in·kH·kW)
    a = W_ @ im2col(x, kH, kW, stride, padding) + b[:, None]  # (C_out, B·H_out·W_out)
    a = a.reshape(C_out, B, *_sizes(H, W, kH, kW, stride, padding)).transpose(1, 0, 2, 3)
    return activate(a, activation, slope)


def conv2d_backward(y_bar, x, w, y, stride, padding, mask=None, activation="identity", slope=0.01,
                    need_x_bar=True):
    """(x_bar, w_bar, b_bar):  a_bar = y_bar · act'(a);  x_bar = col2im(Wᵀ @ a_bar);
    w_bar = (a_bar @ cols(x)ᵀ)·mask;  b_bar = Σ_(n, oh, ow) a_bar."""
    C_out, _, kH, kW = w.shape
    a_bar = _rows(act_backward(y, y_bar, activation, slope))  # (C_out, B·H_out·W_out)
    mask = np.ones((kH, kW), w.dtype) if mask is None else np.asarray(mask, w.dtype)
    W_ = (w * mask).reshape(C_out, -1)  # (C_out, C_in·kH·kW)
    x_bar = col2im(W_.T @ a_bar, x.shape, kH, kW, stride, padding) if need_x_bar else None
    w_bar = (a_bar @ im2col(x, kH, kW, stride, padding).T).reshape(w.shape)  # (C_out, C_in, kH, kW)
    return x_bar, w_bar * mask, a_bar.sum(axis=1)


def conv_transpose2d(x, w, b, stride, padding, output_padding=0, activation="identity", slope=0.01):
    """y = act(col2im(Wᵀ @ x) + b), W = w as (C_in, C_out·kH·kW).  x: (B, C_in, H, W),
    w: (C_in, C_out, kH, kW) -> y: (B, C_out, H_out, W_out),
    H_out = (H − 1)s − 2p + kH + output_padding."""
    B, C_in, H, W = x.shape
    _, C_out, kH, kW = w.shape
    H_out = (H - 1) * stride - 2 * padding + kH + output_padding
    W_out = (W - 1) * stride - 2 * padding + kW + output_padding
    a = col2im(w.reshape(C_in, -1).T @ _rows(x), (B, C_out, H_out, W_out), kH, kW, stride, padding)
    return activate(a + b[None, :, None, None], activation, slope)


def conv_transpose2d_backward(y_bar, x, w, y, stride, padding, activation="identity", slope=0.01,
                              need_x_bar=True):
    """(x_bar, w_bar, b_bar):  a_bar = y_bar · act'(a);  x_bar = W @ cols(a_bar);
    w_bar = x @ cols(a_bar)ᵀ;  b_bar = Σ_(n, oh, ow) a_bar."""
    B, C_in, H, W = x.shape
    _, _, kH, kW = w.shape
    a_bar = act_backward(y, y_bar, activation, slope)  # (B, C_out, H_out, W_out)
    cols = im2col(a_bar, kH, kW, stride, padding)  # (C_out·kH·kW, B·H·W)
    W_ = w.reshape(C_in, -1)  # (C_in, C_out·kH·kW)
    x_bar = (W_ @ cols).reshape(C_in, B, H, W).transpose(1, 0, 2, 3) if need_x_bar else None
    w_bar = (_rows(x) @ cols.T).reshape(w.shape)  # (C_in, C_out, kH, kW)
    return x_bar, w_bar, a_bar.sum(axis=(0, 2, 3))
