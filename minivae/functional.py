"""Differentiable ops: one small Function per primitive, its backward rule beside its forward.

Notation: y is an op's output, y_bar = dL/dy the cotangent that arrives from above, and x_bar,
w_bar, ... the cotangents it returns, one per input. `unbroadcast` folds a gradient back to the
shape of an input that broadcasting stretched.

Composite ops (softmax, log_softmax, mse_loss) are written with primitives. Fused ops say why:
sigmoid, softplus, logsumexp and BCE-with-logits are fused for numerical stability, `linear`,
`conv2d` and `conv_transpose2d` for speed (bias + activation in the kernels' passes). The arrays
are computed by `kernels.*` (kernels/__init__.py): plain NumPy in the numpy door, Numba and worker
threads in the fast one, the same numbers either way.

The shapes a user can get wrong are checked here, once, with messages that name them; the kernels
take their arguments as valid. A Function is named for what it computes, and never like one of
nn.py's layers: the activations are ReLUOp, LeakyReLUOp, SigmoidOp and TanhOp (nn.ReLU is the
layer), the fused layers' ops LinearBiasAct, Conv2dBiasAct and ConvTranspose2dBiasAct.
"""
from __future__ import annotations

import numpy as np

from minivae import kernels
from minivae.tensor import Function, Tensor, as_tensor, unbroadcast


def _axes(axis, ndim: int) -> tuple:
    """axis=None | int | tuple -> a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, int) else axis
    return tuple(sorted(a % ndim for a in axis))


def _expand(y_bar: np.ndarray, axes: tuple, keepdims: bool) -> np.ndarray:
    """Put back the axes a reduction removed, so y_bar broadcasts against its input."""
    return y_bar if keepdims else np.expand_dims(y_bar, axes)


# ---------------------------------------------------------------- arithmetic


class Add(Function):
    """y = a + b;  a_bar = y_bar;  b_bar = y_bar  (each folded back to its shape)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a + b

    @staticmethod
    def backward(ctx, y_bar):
        a_shape, b_shape = ctx.shapes
        return unbroadcast(y_bar, a_shape), unbroadcast(y_bar, b_shape)


class Sub(Function):
    """y = a - b;  a_bar = y_bar;  b_bar = -y_bar."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a - b

    @staticmethod
    def backward(ctx, y_bar):
        a_shape, b_shape = ctx.shapes
        return unbroadcast(y_bar, a_shape), unbroadcast(-y_bar, b_shape)


class Mul(Function):
    """y = a * b;  a_bar = y_bar * b;  b_bar = y_bar * a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, y_bar):
        # exercise backward-rules: the product rule, each cotangent in its input's shape
        a, b = ctx.saved
        a_bar = unbroadcast(y_bar * b, a.shape) if ctx.needs_input_grad[0] else None
        b_bar = unbroadcast(y_bar * a, b.shape) if ctx.needs_input_grad[1] else None
        return a_bar, b_bar
        # end exercise


class Div(Function):
    """y = a / b;  a_bar = y_bar / b;  b_bar = -y_bar * a / b²."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, y_bar):
        a, b = ctx.saved
        a_bar = unbroadcast(y_bar / b, a.shape) if ctx.needs_input_grad[0] else None
        b_bar = unbroadcast(-y_bar * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return a_bar, b_bar


class Neg(Function):
    """y = -x;  x_bar = -y_bar."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, y_bar):
        return -y_bar


class Pow(Function):
    """y = x ** p for a constant p;  x_bar = y_bar * p * x ** (p - 1)."""

    @staticmethod
    def forward(ctx, x, p):
        ctx.save_for_backward(x)
        ctx.p = p
        return x ** np.asarray(p, dtype=x.dtype)

    @staticmethod
    def backward(ctx, y_bar):
        (x,) = ctx.saved
        p = np.asarray(ctx.p, dtype=x.dtype)
        return y_bar * p * x ** (p - 1)


class Exp(Function):
    """y = exp(x);  x_bar = y_bar * y."""

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, y_bar):
        (y,) = ctx.saved
        return y_bar * y


class Log(Function):
    """y = ln x;  x_bar = y_bar / x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, y_bar):
        (x,) = ctx.saved
        return y_bar / x


class Sqrt(Function):
    """y = √x;  x_bar = y_bar / (2y)."""

    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, y_bar):
        (y,) = ctx.saved
        return y_bar / (2 * y)


class MatMul(Function):
    """y = a @ b (2-D or batched);  a_bar = y_bar @ bᵀ;  b_bar = aᵀ @ y_bar."""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not fit "
                             f"(need (..., n, k) @ (..., k, m))")
        ctx.save_for_backward(a, b)
        return kernels.matmul(a, b)

    @staticmethod
    def backward(ctx, y_bar):
        # exercise backward-rules: the matrix product's rule, batch axes folded back
        a, b = ctx.saved
        a_bar = unbroadcast(kernels.matmul(y_bar, b.swapaxes(-1, -2)), a.shape) if ctx.needs_input_grad[0] else None
        b_bar = unbroadcast(kernels.matmul(a.swapaxes(-1, -2), y_bar), b.shape) if ctx.needs_input_grad[1] else None
        return a_bar, b_bar
        # end exercise


# ---------------------------------------------------------------- reductions


class Sum(Function):
    """y = Σ_axes x;  x_bar = y_bar broadcast back over the summed axes."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, _axes(axis, x.ndim), keepdims
        return np.sum(x, axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, y_bar):
        # a read-only view, no copy: ops never write into y_bar, and a leaf copies what it keeps
        return np.broadcast_to(_expand(y_bar, ctx.axes, ctx.keepdims), ctx.shape)


class Max(Function):
    """y = max_axes x;  x_bar = y_bar at the maxima (shared equally between ties), 0 elsewhere."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axes = _axes(axis, x.ndim)
        y = np.max(x, axis=axes, keepdims=True)
        ctx.save_for_backward(x == y)
        ctx.axes, ctx.keepdims = axes, keepdims
        return y if keepdims else np.squeeze(y, axis=axes)

    @staticmethod
    def backward(ctx, y_bar):
        (is_max,) = ctx.saved
        share = is_max / is_max.sum(axis=ctx.axes, keepdims=True)
        return (share * _expand(y_bar, ctx.axes, ctx.keepdims)).astype(y_bar.dtype)


# ---------------------------------------------------------------- shape


class Reshape(Function):
    """y = x viewed with a new shape;  x_bar = y_bar viewed with the old one."""

    @staticmethod
    def forward(ctx, x, shape=()):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, y_bar):
        return y_bar.reshape(ctx.shape)


class Transpose(Function):
    """y = x with axes permuted;  x_bar = y_bar with the inverse permutation."""

    @staticmethod
    def forward(ctx, x, axes=None):
        axes = reversed(range(x.ndim)) if axes is None else axes
        ctx.axes = tuple(a % x.ndim for a in axes)  # non-negative, so argsort inverts them
        return np.transpose(x, ctx.axes)

    @staticmethod
    def backward(ctx, y_bar):
        return np.transpose(y_bar, np.argsort(ctx.axes))


class Concatenate(Function):
    """y = [x1, x2, ...] joined along an axis;  each x_bar is its slice of y_bar."""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        ctx.axis = axis
        ctx.splits = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, y_bar):
        return tuple(np.split(y_bar, ctx.splits, axis=ctx.axis))


class Stack(Function):
    """y = [x1, x2, ...] stacked on a new axis;  each x_bar is its slice of y_bar."""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        ctx.axis = axis
        return np.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, y_bar):
        return tuple(np.moveaxis(y_bar, ctx.axis, 0))


class GetItem(Function):
    """y = x[index];  x_bar = zeros with y_bar added at index (np.add.at when indices repeat)."""

    @staticmethod
    def forward(ctx, x, index=None):
        ctx.shape, ctx.index = x.shape, index
        return x[index]

    @staticmethod
    def backward(ctx, y_bar):
        x_bar = np.zeros(ctx.shape, dtype=y_bar.dtype)
        if _is_basic_index(ctx.index):
            x_bar[ctx.index] = y_bar  # slices never repeat an element
        else:
            np.add.at(x_bar, ctx.index, y_bar)
        return x_bar


def _is_basic_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, slice, type(None), type(Ellipsis))) for p in parts)


class AsType(Function):
    """y = x cast to a dtype;  x_bar = y_bar cast back."""

    @staticmethod
    def forward(ctx, x, dtype=None):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, y_bar):
        return y_bar.astype(ctx.dtype)


# ---------------------------------------------------------------- activations


class _FromOutput(Function):
    """An activation whose derivative is written in its output y: forward keeps y = act(x), and
    backward is x_bar = y_bar · act'(y) (kernels.act_backward)."""

    name: str  # the activation's name in the kernels' interface

    @staticmethod
    def activate(x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, x):
        y = cls.activate(x)
        ctx.save_for_backward(y)
        return y

    @classmethod
    def backward(cls, ctx, y_bar):
        (y,) = ctx.saved
        return kernels.act_backward(y, y_bar, cls.name, 0.0)


class ReLUOp(_FromOutput):
    """y = max(x, 0);  x_bar = y_bar · [y > 0]."""

    name = "relu"
    activate = staticmethod(lambda x: np.maximum(x, 0))


class LeakyReLUOp(Function):
    """y = x if x > 0 else slope·x;  x_bar = y_bar · (1 if x > 0 else slope)."""

    @staticmethod
    def forward(ctx, x, slope=0.01):
        ctx.save_for_backward(x > 0)
        ctx.slope = slope
        return np.where(x > 0, x, x * x.dtype.type(slope))

    @staticmethod
    def backward(ctx, y_bar):
        (positive,) = ctx.saved
        return np.where(positive, y_bar, y_bar * y_bar.dtype.type(ctx.slope))


class SigmoidOp(_FromOutput):
    """y = 1 / (1 + e^(−x));  x_bar = y_bar · y(1 − y).  Fused for stability: from e^(−|x|), which
    never overflows (kernels.sigmoid)."""

    name = "sigmoid"
    activate = staticmethod(lambda x: kernels.sigmoid(x))


class TanhOp(_FromOutput):
    """y = tanh x;  x_bar = y_bar · (1 − y²)."""

    name = "tanh"
    # NumPy's stubs type the ufunc by its scalar overload first, so mypy misses that it maps
    # arrays to arrays
    activate = staticmethod(np.tanh)  # type: ignore[assignment]


class Softplus(Function):
    """y = ln(1 + eˣ) = max(x, 0) + ln(1 + e^(−|x|));  x_bar = y_bar · σ(x).
    Fused for stability: the right-hand form is finite for every x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def backward(ctx, y_bar):
        (x,) = ctx.saved
        return y_bar * kernels.sigmoid(x)


class LogSumExp(Function):
    """y = ln Σ_axes eˣ = m + ln Σ e^(x − m) with m = max x;  x_bar = y_bar · softmax(x).
    Fused for stability: subtracting the max keeps every exponent ≤ 0, and the softmax is kept
    from the forward pass rather than recomputed as e^(x − y), which loses digits for a big |y|."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axes = _axes(axis, x.ndim)
        m = np.max(x, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)  # all −inf along an axis: ln 0 = −inf, not nan
        e = np.exp(x - m)
        s = np.sum(e, axis=axes, keepdims=True)
        ctx.save_for_backward(e / np.where(s > 0, s, 1))  # an all −inf row gets no gradient
        ctx.axes, ctx.keepdims = axes, keepdims
        y = m + np.log(s)
        return y if keepdims else np.squeeze(y, axis=axes)

    @staticmethod
    def backward(ctx, y_bar):
        (softmax,) = ctx.saved
        return _expand(y_bar, ctx.axes, ctx.keepdims) * softmax


class BCEWithLogits(Function):
    """Elementwise −[t ln σ(l) + (1 − t) ln(1 − σ(l))] = max(l, 0) − l·t + ln(1 + e^(−|l|));
    l_bar = y_bar · (σ(l) − t);  t_bar = −y_bar · l.
    Fused for stability: finite for any |l| where the naive form takes ln 0. And for speed: the
    kernel gives the loss and σ(l) together, so the backward needs no exponential."""

    @staticmethod
    def forward(ctx, logits, target):
        dtype = np.result_type(logits, target)
        l, t = np.broadcast_arrays(logits.astype(dtype, copy=False), target.astype(dtype, copy=False))
        y, sigma = kernels.bce_with_logits(l, t)
        ctx.save_for_backward(sigma, target, logits if ctx.needs_input_grad[1] else None)
        ctx.shapes = logits.shape, target.shape
        return y

    @staticmethod
    def backward(ctx, y_bar):
        sigma, target, logits = ctx.saved
        l_shape, t_shape = ctx.shapes
        l_bar = t_bar = None
        if ctx.needs_input_grad[0]:
            l_bar = unbroadcast(y_bar * (sigma - target), l_shape)
        if ctx.needs_input_grad[1]:
            t_bar = unbroadcast(-y_bar * logits, t_shape)
        return l_bar, t_bar


class LinearBiasAct(Function):
    """y = act(a), a = x @ Wᵀ + b;  a_bar = y_bar · act'(a);  x_bar = a_bar @ W;
    W_bar = a_barᵀ @ x;  b_bar = Σ_rows a_bar.  Fused for speed: the fast door adds the bias and
    applies the activation in one pass over y each way, where unfused ops make three."""

    @staticmethod
    def forward(ctx, x, weight, bias, activation="identity", slope=0.01):
        if x.ndim != 2 or x.shape[1] != weight.shape[1]:
            raise ValueError(f"linear: input of shape {x.shape} does not fit weight of shape "
                             f"{weight.shape} (need (B, {weight.shape[1]}))")
        ctx.activation, ctx.slope = activation, slope
        y = kernels.linear(x, weight, bias, activation, slope)  # (B, out)
        ctx.save_for_backward(x, weight, y)
        return y

    @staticmethod
    def backward(ctx, y_bar):
        x, weight, y = ctx.saved
        return kernels.linear_backward(y_bar, x, weight, y, ctx.activation, ctx.slope,
                                       *ctx.needs_input_grad[:2])


# ---------------------------------------------------------------- convolutions, sizes checked here


def conv_output_size(h: int, k: int, stride: int, padding: int, who: str = "conv_output_size") -> int:
    """H_out = (H + 2p − k) // s + 1, refusing sizes that leave no output."""
    _check_stride_padding(stride, padding, who)
    if h < 1 or k < 1 or k > h + 2 * padding:
        raise ValueError(f"{who}: a kernel of size {k} does not fit an input of size {h} padded by "
                         f"{padding}")
    return (h + 2 * padding - k) // stride + 1


def conv_transpose_output_size(h: int, k: int, stride: int, padding: int, output_padding: int,
                               who: str = "conv_transpose_output_size") -> int:
    """H_out = (H − 1)·s − 2p + k + output_padding; output_padding picks among the sizes that a
    stride-s convolution maps onto the same H, so it must be below s."""
    _check_stride_padding(stride, padding, who)
    if not 0 <= output_padding < stride:
        raise ValueError(f"{who}: output_padding must be in [0, stride), got {output_padding} "
                         f"with stride {stride}")
    h_out = (h - 1) * stride - 2 * padding + k + output_padding
    if h < 1 or k < 1 or h_out < 1:
        raise ValueError(f"{who}: an input of size {h} and a kernel of size {k} leave no output "
                         f"with padding {padding} (size {h_out})")
    return h_out


def _check_stride_padding(stride, padding, who):
    if stride < 1 or padding < 0:
        raise ValueError(f"{who}: stride must be ≥ 1 and padding ≥ 0, got {stride}, {padding}")


def _check_conv(x, weight, stride, padding, name, weight_in_axis, mask=None, output_padding=None):
    """The shape errors a user can make, named before any kernel runs: the kernels take their
    arguments as valid. output_padding is given for the transposed convolution only."""
    if x.ndim != 4:
        raise ValueError(f"{name}: input must be 4-D (B, C, H, W), got shape {x.shape}")
    if weight.ndim != 4 or x.shape[1] != weight.shape[weight_in_axis]:
        raise ValueError(f"{name}: input of shape {x.shape} has {x.shape[1]} channels, but the "
                         f"weight of shape {weight.shape} expects {weight.shape[weight_in_axis]}")
    _check_stride_padding(stride, padding, name)
    kH, kW = weight.shape[2:]
    if mask is not None and np.shape(mask) != (kH, kW):
        raise ValueError(f"{name}: mask of shape {np.shape(mask)} does not match the {kH}×{kW} "
                         f"kernel of the weight {weight.shape}")
    if output_padding is not None:  # the transposed convolution: any input fits, if it leaves output
        for h, k in ((x.shape[2], kH), (x.shape[3], kW)):
            conv_transpose_output_size(h, k, stride, padding, output_padding, who=name)
    elif kH > x.shape[2] + 2 * padding or kW > x.shape[3] + 2 * padding:
        raise ValueError(f"{name}: kernel {kH}×{kW} (weight {weight.shape}) is larger than the "
                         f"input {x.shape} padded by {padding}")


class Conv2dBiasAct(Function):
    """y = act(a), a = x ⋆ (W·mask) + b, a cross-correlation over NCHW images with W (C_out, C_in,
    kH, kW);
    a_bar = y_bar · act'(a);  x_bar = the transposed convolution of a_bar with W·mask;
    W_bar = (Σ a_bar ⊗ patches of x)·mask;  b_bar = Σ_{B,H,W} a_bar.  The mask (kH, kW), if any, is
    fixed (the fast door skips the taps it zeroes; the bias and activation ride on its copies)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride=1, padding=0, mask=None, activation="identity", slope=0.01):
        _check_conv(x, weight, stride, padding, "conv2d", weight_in_axis=1, mask=mask)
        ctx.activation, ctx.slope = activation, slope
        ctx.stride, ctx.padding, ctx.mask = stride, padding, mask
        y = kernels.conv2d(x, weight, bias, stride, padding, mask, activation, slope)  # (B, C_out, H_out, W_out)
        ctx.save_for_backward(x, weight, y if activation != "identity" else None)
        return y

    @staticmethod
    def backward(ctx, y_bar):
        x, weight, y = ctx.saved
        return kernels.conv2d_backward(y_bar, x, weight, y, ctx.stride, ctx.padding, ctx.mask,
                                       ctx.activation, ctx.slope, ctx.needs_input_grad[0])


class ConvTranspose2dBiasAct(Function):
    """The adjoint of Conv2dBiasAct, with W (C_in, C_out, kH, kW): y = act(a), a = conv2d's
    input-backward of x, plus b;  a_bar = y_bar · act'(a);  x_bar = conv2d of a_bar with W;
    W_bar = conv2d's weight-backward with the roles swapped."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride=1, padding=0, output_padding=0, activation="identity",
                slope=0.01):
        _check_conv(x, weight, stride, padding, "conv_transpose2d", weight_in_axis=0,
                    output_padding=output_padding)
        ctx.activation, ctx.slope = activation, slope
        ctx.stride, ctx.padding = stride, padding
        y = kernels.conv_transpose2d(x, weight, bias, stride, padding, output_padding, activation,
                                     slope)  # (B, C_out, H_out, W_out)
        ctx.save_for_backward(x, weight, y if activation != "identity" else None)
        return y

    @staticmethod
    def backward(ctx, y_bar):
        x, weight, y = ctx.saved
        return kernels.conv_transpose2d_backward(y_bar, x, weight, y, ctx.stride, ctx.padding,
                                                 ctx.activation, ctx.slope, ctx.needs_input_grad[0])


# ---------------------------------------------------------------- the gated PixelCNN's own ops


class ShiftDown(Function):
    """y[..., r, :] = x[..., r − 1, :] and y[..., 0, :] = 0: every row sees only the rows above it
    (the link from a PixelCNN's vertical stack to its horizontal one);
    x_bar[..., r, :] = y_bar[..., r + 1, :] and x_bar[..., H − 1, :] = 0."""

    @staticmethod
    def forward(ctx, x):
        y = np.zeros_like(x)
        # exercise pixelcnn-masks: shift every row down by one
        y[..., 1:, :] = x[..., :-1, :]
        return y
        # end exercise

    @staticmethod
    def backward(ctx, y_bar):
        x_bar = np.zeros_like(y_bar)
        # exercise pixelcnn-masks: and its adjoint
        x_bar[..., :-1, :] = y_bar[..., 1:, :]
        return x_bar
        # end exercise


class GatedTanh(Function):
    """y = tanh(a) ⊙ σ(b), where a and b are the two halves of axis 1: (B, 2C, ...) -> (B, C, ...);
    a_bar = y_bar · σ(b) · (1 − tanh²a);  b_bar = y_bar · tanh(a) · σ(b)(1 − σ(b)).
    Fused: one op instead of two slices, two activations and a product (five graph nodes)."""

    @staticmethod
    def forward(ctx, x):
        if x.ndim < 2 or x.shape[1] % 2:
            raise ValueError(f"gated_tanh: axis 1 must hold an even number of channels (a, b), "
                             f"got shape {x.shape}")
        y, t, s = kernels.gated_tanh(x)
        ctx.save_for_backward(t, s)
        return y

    @staticmethod
    def backward(ctx, y_bar):
        t, s = ctx.saved
        return kernels.gated_tanh_backward(y_bar, t, s)


# ---------------------------------------------------------------- the functional API


def add(a, b): return Add.apply(a, b)
def sub(a, b): return Sub.apply(a, b)
def mul(a, b): return Mul.apply(a, b)
def div(a, b): return Div.apply(a, b)
def neg(x): return Neg.apply(x)
def exp(x): return Exp.apply(x)
def log(x): return Log.apply(x)
def sqrt(x): return Sqrt.apply(x)
def matmul(a, b): return MatMul.apply(a, b)
def relu(x): return ReLUOp.apply(x)
def leaky_relu(x, slope=0.01): return LeakyReLUOp.apply(x, slope=slope)
def sigmoid(x): return SigmoidOp.apply(x)
def tanh(x): return TanhOp.apply(x)
def softplus(x): return Softplus.apply(x)
def astype(x, dtype): return AsType.apply(x, dtype=np.dtype(dtype))
def shift_down(x): return ShiftDown.apply(x)
def gated_tanh(x): return GatedTanh.apply(x)


def pow(x, exponent: float):
    if isinstance(exponent, Tensor):
        raise TypeError("pow: the exponent must be a constant number, not a Tensor")
    return Pow.apply(x, p=float(exponent))


def sum(x, axis=None, keepdims=False): return Sum.apply(x, axis=axis, keepdims=keepdims)
def max(x, axis=None, keepdims=False): return Max.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    x = as_tensor(x)
    n = int(np.prod([x.shape[a] for a in _axes(axis, x.ndim)]))
    return sum(x, axis, keepdims) / n


def reshape(x, *shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Reshape.apply(x, shape=tuple(shape))


def transpose(x, *axes):
    axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
    return Transpose.apply(x, axes=tuple(axes) if axes else None)


permute = transpose  # PyTorch's name for a general axis permutation


def concatenate(xs, axis=0): return Concatenate.apply(*xs, axis=axis)
def stack(xs, axis=0): return Stack.apply(*xs, axis=axis)
def getitem(x, index): return GetItem.apply(x, index=index)


def logsumexp(x, axis=None, keepdims=False):
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)


def log_softmax(x, axis=-1):
    """ln softmax(x) = x − logsumexp(x): composite, stable because logsumexp is."""
    return x - logsumexp(x, axis=axis, keepdims=True)


def softmax(x, axis=-1):
    return exp(log_softmax(x, axis=axis))


def _reduce(y, reduction: str):
    if reduction == "mean":
        return mean(y)
    if reduction == "sum":
        return sum(y)
    if reduction == "none":
        return y
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def binary_cross_entropy_with_logits(logits, target, reduction: str = "mean"):
    """−[t ln σ(l) + (1 − t) ln(1 − σ(l))], reduced; finite for |logits| up to 1e4 and beyond."""
    return _reduce(BCEWithLogits.apply(logits, target), reduction)


def mse_loss(x, target, reduction: str = "mean"):
    """(x − t)², reduced."""
    return _reduce((x - target) ** 2, reduction)


ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh")  # what linear and conv apply


def _check_activation(activation, who: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"{who}: activation must be one of {', '.join(map(repr, ACTIVATIONS))}, "
                         f"got {activation!r}")


def _bias_or_zeros(bias, n: int, dtype):
    return np.zeros(n, dtype=dtype) if bias is None else bias


def linear(x, weight, bias=None, activation: str = "identity", slope: float = 0.01):
    """y = act(x @ Wᵀ + b) with W of shape (out, in), as in PyTorch."""
    _check_activation(activation, "linear")
    bias = _bias_or_zeros(bias, weight.shape[0], weight.dtype)
    return LinearBiasAct.apply(x, weight, bias, activation=activation, slope=slope)


def conv2d(x, weight, bias=None, stride: int = 1, padding: int = 0, mask=None,
           activation: str = "identity", slope: float = 0.01):
    """y = act(x ⋆ W + b): x (B, C_in, H, W), W (C_out, C_in, kH, kW) -> (B, C_out, H_out, W_out),
    H_out = (H + 2·padding − kH) // stride + 1, as in PyTorch.  mask: an optional fixed (kH, kW)
    array of 0 and 1; the result is that of W·mask, computed on the unmasked taps only."""
    _check_activation(activation, "conv2d")
    bias = _bias_or_zeros(bias, weight.shape[0], weight.dtype)
    return Conv2dBiasAct.apply(x, weight, bias, stride=stride, padding=padding, mask=mask,
                        activation=activation, slope=slope)


def conv_transpose2d(x, weight, bias=None, stride: int = 1, padding: int = 0,
                     output_padding: int = 0, activation: str = "identity", slope: float = 0.01):
    """y = act(conv_transpose2d(x, W) + b): x (B, C_in, H, W), W (C_in, C_out, kH, kW) ->
    (B, C_out, H_out, W_out), H_out = (H − 1)·stride − 2·padding + kH + output_padding, as in
    PyTorch."""
    _check_activation(activation, "conv_transpose2d")
    bias = _bias_or_zeros(bias, weight.shape[1], weight.dtype)
    return ConvTranspose2dBiasAct.apply(x, weight, bias, stride=stride, padding=padding,
                                 output_padding=output_padding, activation=activation, slope=slope)
