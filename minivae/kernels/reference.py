"""Plain NumPy twins of the Numba kernels: short, obviously correct, and slow.

Tests pin each fast kernel to its twin here; read these first to see what a kernel computes.
"""
import numpy as np

# ---------------------------------------------------------------- dense (kernels/dense.py)


def activate(a, activation, slope=0.01):
    """y = act(a) for the activations the dense kernels fuse."""
    if activation == "identity":
        return a.copy()
    if activation == "relu":
        return np.maximum(a, 0)
    if activation == "leaky_relu":
        return np.where(a > 0, a, slope * a)
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-a))
    if activation == "tanh":
        return np.tanh(a)
    raise ValueError(f"unknown activation {activation!r}")


def activation_grad_from_output(y, activation, slope=0.01):
    """dy/da written in terms of the output y, which is all the backward pass keeps."""
    if activation == "identity":
        return np.ones_like(y)
    if activation == "relu":
        return (y > 0).astype(y.dtype)
    if activation == "leaky_relu":
        return np.where(y > 0, 1, slope).astype(y.dtype)
    if activation == "sigmoid":
        return y * (1 - y)
    if activation == "tanh":
        return 1 - y * y
    raise ValueError(f"unknown activation {activation!r}")


def bias_act_forward(a, b, activation, slope=0.01):
    """y = act(a + b), b broadcast over rows.  a: (B, N), b: (N,)."""
    return activate(a + b, activation, slope)


def bias_act_backward(y, y_bar, activation, slope=0.01):
    """a_bar = y_bar * act'(a);  b_bar = sum over rows of a_bar."""
    a_bar = y_bar * activation_grad_from_output(y, activation, slope)
    return a_bar, a_bar.sum(axis=0)


def adam_update(p, g, m, v, lr, beta1, beta2, eps, step):
    """PyTorch's Adam: m, v moving averages; p -= lr * m_hat / (sqrt(v_hat) + eps)."""
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**step)
    v_hat = v / (1 - beta2**step)
    p -= lr * m_hat / (np.sqrt(v_hat) + eps)


# ---------------------------------------------------------------- logistic (kernels/logistic.py)


def sigmoid(x):
    """σ(x) = 1 / (1 + e^(−x)), written so that no exponential overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def bce_with_logits(l, t):
    """(−[t ln σ(l) + (1 − t) ln(1 − σ(l))], σ(l)), the loss in its stable form."""
    return np.maximum(l, 0) - l * t + np.log1p(np.exp(-np.abs(l))), sigmoid(l)


# ---------------------------------------------------------------- the PixelCNN's gate (kernels/gate.py)


def gated_tanh(x):
    """(tanh a · σ b, tanh a, σ b) for x = (a ‖ b) on axis 1."""
    a, b = np.split(x, 2, axis=1)
    t, s = np.tanh(a), sigmoid(b)
    return t * s, t, s


def gated_tanh_backward(y_bar, t, s):
    """(y_bar · s · (1 − t²) ‖ y_bar · t · s · (1 − s)) on axis 1."""
    return np.concatenate([y_bar * s * (1 - t * t), y_bar * t * s * (1 - s)], axis=1)
