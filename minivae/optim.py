"""Optimisers: SGD with momentum and Adam, with PyTorch's exact update rules.

References: PyTorch's torch.optim.SGD and torch.optim.Adam documentation; Kingma & Ba (2015),
"Adam: A Method for Stochastic Optimization".
"""
from __future__ import annotations

import numpy as np

from minivae import checks, kernels
from minivae.nn import Parameter


class Optimizer:
    def __init__(self, params, lr: float):
        self.params: list[Parameter] = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        who = type(self).__name__
        checks.real(lr, "the learning rate lr", who, low=0, low_open=True)
        for i, p in enumerate(self.params):
            checks.dtype(p.dtype, f"parameter {i} {p.shape}", who)
        self.lr = lr
        self.t = 0  # steps taken
        self.buffers: dict[str, list[np.ndarray]] = {}  # per-parameter state, e.g. Adam's m, v

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """The step count and every buffer, keyed 'm.0', 'm.1', ... (for checkpoints)."""
        state = {"t": np.array(self.t)}
        for name, arrays in self.buffers.items():
            state.update({f"{name}.{i}": a.copy() for i, a in enumerate(arrays)})
        return state

    def load_state_dict(self, state: dict) -> None:
        """Every key and shape is checked before anything is written."""
        expected = self.state_dict()
        if set(state) != set(expected):
            raise KeyError(f"optimizer state: missing {sorted(set(expected) - set(state))}, "
                           f"unexpected {sorted(set(state) - set(expected))}")
        for key, value in expected.items():
            if np.shape(state[key]) != value.shape:
                raise ValueError(f"optimizer state {key!r} has shape {np.shape(state[key])}, "
                                 f"expected {value.shape}")
        self.t = int(state["t"])
        for name, arrays in self.buffers.items():
            for i, a in enumerate(arrays):
                a[...] = state[f"{name}.{i}"]

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """g <- g + λp;  b <- μb + g;  p <- p − lr·b.  b starts at 0, so b = g at the first step."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr)
        checks.real(momentum, "momentum", "SGD", low=0)
        checks.real(weight_decay, "weight_decay", "SGD", low=0)
        self.momentum, self.weight_decay = momentum, weight_decay
        if momentum:
            self.buffers["momentum"] = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        self.t += 1
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                b = self.buffers["momentum"][i]
                b *= self.momentum
                b += g
                g = b
            p.data -= (self.lr * g).astype(p.dtype)


class Adam(Optimizer):
    """m <- β1 m + (1 − β1) g;  v <- β2 v + (1 − β2) g²;
    p <- p − lr · m̂ / (√v̂ + ε)  with m̂ = m / (1 − β1ᵗ), v̂ = v / (1 − β2ᵗ).
    `step` is these lines; the fast door runs them as one pass over each parameter
    (kernels.adam_update), in the parameters' dtype as PyTorch does."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"Adam: betas must be a pair (β1, β2), got {betas!r}")
        for name, beta in zip(("betas[0]", "betas[1]"), betas):
            checks.real(beta, name, "Adam", low=0, high=1, high_open=True)
        checks.real(eps, "eps", "Adam", low=0, low_open=True)
        checks.real(weight_decay, "weight_decay", "Adam", low=0)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        # C-contiguous (zeros_like would copy a transposed layout): the kernel writes through
        # flat views of p, m and v, and a flat view of a non-contiguous array is a copy.
        self.buffers["m"] = [np.zeros(p.shape, dtype=p.dtype) for p in self.params]
        self.buffers["v"] = [np.zeros(p.shape, dtype=p.dtype) for p in self.params]

    def step(self) -> None:
        self.t += 1
        (beta1, beta2), lr, eps, t = self.betas, self.lr, self.eps, self.t
        arrays = []  # (p, g, m, v) of each parameter with a gradient, flat
        for param, m, v in zip(self.params, self.buffers["m"], self.buffers["v"]):
            if param.grad is None:
                continue
            g = param.grad + self.weight_decay * param.data if self.weight_decay else param.grad
            if not param.data.flags.c_contiguous:
                param.data = np.ascontiguousarray(param.data)
            g = np.ascontiguousarray(g, dtype=param.dtype)
            arrays.append((param.data.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)))
        if kernels.adam_update is not None:  # the fast door: the lines below, one pass each
            kernels.adam_update(arrays, lr, beta1, beta2, eps, t)
            return
        for p, g, m, v in arrays:  # in place, in p's dtype
            # exercise adam: the moments, their bias correction, the step
            m[...] = beta1 * m + (1 - beta1) * g
            v[...] = beta2 * v + (1 - beta2) * g * g
            m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
            p -= lr * m_hat / (np.sqrt(v_hat) + eps)
            # end exercise


class Optimizers:
    """Several optimisers that step apart and are saved as one, each an attribute by its name:
    the AAE's `Optimizers(rec=..., disc=..., gen=...)`, one per phase of its step. The state's
    keys read 'rec/m.0'; loading checks every part before any is written."""

    def __init__(self, **named: Optimizer):
        vars(self).update(named)  # opt.rec, opt.disc, ...: the parts, in the order given

    def __getattr__(self, name: str) -> Optimizer:  # only for a name that is not a part
        raise AttributeError(f"Optimizers: no part named {name!r}; the parts are {list(vars(self))}")

    def __iter__(self):
        return iter(vars(self).values())

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"{name}/{key}": value for name, part in vars(self).items()
                for key, value in part.state_dict().items()}

    def load_state_dict(self, state: dict) -> None:
        """All or nothing: a part that refuses its state puts back the parts loaded before it."""
        named = vars(self)
        parts = {name: {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + "/")}
                 for name in named}
        unexpected = [k for k in state if k.split("/")[0] not in parts]
        if unexpected:
            raise KeyError(f"optimizer state: unexpected keys {unexpected}")
        before = {name: part.state_dict() for name, part in named.items()}
        try:
            for name, part in parts.items():
                named[name].load_state_dict(part)
        except (KeyError, ValueError):
            for name, state_before in before.items():
                named[name].load_state_dict(state_before)
            raise
