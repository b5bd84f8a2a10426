"""Optimisers: SGD with momentum and Adam, with PyTorch's exact update rules.

References: PyTorch's torch.optim.SGD and torch.optim.Adam documentation; Kingma & Ba (2015),
"Adam: A Method for Stochastic Optimization".
"""
from __future__ import annotations

import numpy as np

from minivae.kernels import optim as kernels
from minivae.nn import Parameter


class Optimizer:
    def __init__(self, params, lr: float):
        self.params: list[Parameter] = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if lr <= 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be positive, got {lr}")
        self.lr = lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """g <- g + λp;  b <- μb + g (b = g at the first step);  p <- p − lr·b."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.buffers: list[np.ndarray | None] = [None] * len(self.params)

    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                b = self.buffers[i]
                self.buffers[i] = b = g.copy() if b is None else self.momentum * b + g
                g = b
            p.data -= (self.lr * g).astype(p.dtype)


class Adam(Optimizer):
    """m <- β1 m + (1 − β1) g;  v <- β2 v + (1 − β2) g²;
    p <- p − lr · m̂ / (√v̂ + ε)  with m̂ = m / (1 − β1ᵗ), v̂ = v / (1 − β2ᵗ).
    The update runs as one Numba pass per parameter (kernels/optim.py)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.t = 0
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        self.t += 1
        beta1, beta2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            kernels.adam_update(p.data, np.ascontiguousarray(g, dtype=p.dtype), m, v,
                                self.lr, beta1, beta2, self.eps, self.t)
