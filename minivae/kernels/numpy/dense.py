"""The numpy door's dense and elementwise kernels: the matrix product, a Linear layer's bias and
activation, σ, BCE-with-logits and the PixelCNN's gate, each the lines of its equation.

An activation's derivative is written in its output y, the one array the backward passes keep:

    relu        y = max(a, 0)             act'(a) = [y > 0]
    leaky_relu  y = a if a > 0 else s·a   act'(a) = 1 if y > 0 else s
    sigmoid     y = σ(a)                  act'(a) = y (1 − y)
    tanh        y = tanh a                act'(a) = 1 − y²
"""
import numpy as np


def matmul(a, b):
    """y = a @ b."""
    return a @ b


def activate(a, activation, slope=0.01):
    """y = act(a)."""
    if activation == "relu":
        return np.maximum(a, 0)
    if activation == "leaky_relu":
        return np.where(a > 0, a, slope * a)
    if activation == "sigmoid":
        return sigmoid(a)
    if activation == "tanh":
        return np.tanh(a)
    return a


def act_backward(y, y_bar, activation, slope=0.01):
    """a_bar = y_bar · act'(a), act' written in the output y (see above)."""
    if activation == "relu":
        return y_bar * (y > 0)
    if activation == "leaky_relu":
        return np.where(y > 0, y_bar, slope * y_bar)
    if activation == "sigmoid":
        return y_bar * (y * (1 - y))
    if activation == "tanh":
        return y_bar * (1 - y * y)
    return y_bar


def linear(x, w, b, activation="identity", slope=0.01):
    """y = act(x @ wᵀ + b).  x: (B, in), w: (out, in), b: (out,) -> (B, out)."""
    return activate(x @ w.T + b, activation, slope)


def linear_backward(y_bar, x, w, y, activation="identity", slope=0.01, need_x_bar=True,
                    need_w_bar=True):
    """a_bar = y_bar · act'(a);  x_bar = a_bar @ w;  w_bar = a_barᵀ @ x;  b_bar = Σ_rows a_bar."""
    a_bar = act_backward(y, y_bar, activation, slope)  # (B, out)
    x_bar = a_bar @ w if need_x_bar else None  # (B, in)
    w_bar = a_bar.T @ x if need_w_bar else None  # (out, in)
    return x_bar, w_bar, a_bar.sum(axis=0)


def sigmoid(x):
    """σ(x) = 1 / (1 + e^(−x)), or e^x / (1 + e^x) for x < 0: no exponential overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def bce_with_logits(l, t):
    """(bce, σ(l)):  bce = −[t ln σ(l) + (1 − t) ln(1 − σ(l))] = max(l, 0) − l·t + ln(1 + e^(−|l|))
    for logits l and targets t."""
    # exercise bernoulli-from-logits: -ln p(t | logits), finite for any logit
    return np.maximum(l, 0) - l * t + np.log1p(np.exp(-np.abs(l))), sigmoid(l)
    # end exercise


def gated_tanh(x):
    """(y, t, s) = (tanh a · σ b, tanh a, σ b) for x = (a ‖ b) on axis 1: (B, 2C, ...) -> (B, C,
    ...) each."""
    # exercise gated-activation: tanh(a) * sigmoid(b)
    a, b = np.split(x, 2, axis=1)
    t, s = np.tanh(a), sigmoid(b)
    return t * s, t, s
    # end exercise


def gated_tanh_backward(y_bar, t, s):
    """x_bar = (y_bar · s · (1 − t²) ‖ y_bar · t · s · (1 − s)) on axis 1."""
    # exercise gated-activation: its gradient in t and s
    return np.concatenate([y_bar * s * (1 - t * t), y_bar * t * s * (1 - s)], axis=1)
    # end exercise
