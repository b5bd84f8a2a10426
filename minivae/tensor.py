"""The whole autodiff engine: Tensor, Function, backward().

A Tensor wraps an ndarray. Each op is a `Function` whose `forward(ctx, *arrays)` computes the value
and saves what `backward(ctx, y_bar)` needs to return one gradient per input (reverse-mode
autodiff: given the cotangent y_bar = dL/dy, return x_bar = dL/dx for each input x). Calling
`loss.backward()` visits the graph in reverse topological order and accumulates those gradients
into the leaves' `.grad`.

The graph walk is iterative, so a chain of any depth works (no recursion limit). The op rules live
in `functional.py`; the Tensor methods below are thin wrappers around them. `as_tensor(x)` is the
one way data becomes a Tensor where a Tensor may already have been given.
References: micrograd (A. Karpathy), tinygrad's early Function classes, HIPS/autograd.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

_grad_enabled = True


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block ops record no graph: for evaluation and parameter updates."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting added or stretched, so it has `shape` again."""
    # exercise unbroadcast: fold grad back to `shape`
    while grad.ndim > len(shape):  # leading axes that broadcasting prepended
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):  # size-1 axes that broadcasting stretched
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad
    # end exercise


class Context:
    """What a Function's forward leaves for its backward."""

    __slots__ = ("saved", "needs_input_grad", "inputs", "__dict__")
    saved: tuple
    needs_input_grad: tuple[bool, ...]
    inputs: tuple

    def save_for_backward(self, *arrays) -> None:
        self.saved = arrays


class Function:
    """One differentiable op. Subclasses define `forward(ctx, *arrays, **options)` returning an
    ndarray and `backward(ctx, y_bar)` returning one gradient (or None) per positional input."""

    @staticmethod
    def forward(ctx: Context, *arrays, **options) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, y_bar: np.ndarray):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **options) -> "Tensor":
        """Run forward on the inputs' arrays; record the graph edge when a gradient is wanted.
        Positional inputs are differentiable (Tensors, arrays or Python numbers, which take the
        dtype of the Tensor inputs); keyword options (axis, stride, ...) are not."""
        tensors = _as_tensors(inputs)
        ctx = Context()
        ctx.needs_input_grad = tuple(t.requires_grad for t in tensors)
        y = cls.forward(ctx, *[t.data for t in tensors], **options)
        out = Tensor(y)
        if _grad_enabled and any(ctx.needs_input_grad):
            out.requires_grad = True
            out._fn, out._ctx = cls, ctx
            ctx.inputs = tensors
        return out


def _as_tensors(inputs) -> tuple:
    """Wrap non-Tensor inputs as constants; Python numbers take the Tensor inputs' dtype, so a
    float32 Tensor times 0.5 stays float32."""
    dtype = next((x.dtype for x in inputs if isinstance(x, Tensor)), None)
    return tuple(as_tensor(x, dtype if isinstance(x, (int, float)) else None) for x in inputs)


def as_tensor(x, dtype=None) -> "Tensor":
    """x itself if it is a Tensor; otherwise a constant Tensor of it (an array, a list, a number),
    in `dtype` if one is given."""
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=dtype))


class Tensor:
    """An ndarray plus what reverse-mode autodiff needs: `.grad` and the op that made it."""

    __slots__ = ("data", "grad", "requires_grad", "_fn", "_ctx", "__weakref__")
    __array_priority__ = 1000  # so ndarray + Tensor defers to Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False):
        data = data.data if isinstance(data, Tensor) else np.asarray(data)
        if not np.issubdtype(data.dtype, np.floating):  # the engine differentiates floats only
            data = data.astype(np.float64)
        self.data: np.ndarray = data
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self._fn: type[Function] | None = None  # the Function that produced it (None: a leaf)
        self._ctx: Context | None = None  # its saved context

    # ------------------------------------------------------------------ plain attributes
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, prefix='Tensor(')}, dtype={self.dtype}{grad})"

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> "Tensor":
        """The same values, cut from the graph."""
        return Tensor(self.data)

    # ------------------------------------------------------------------ reverse mode
    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` that requires it."""
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar, but this tensor has shape "
                    f"{self.shape}; pass grad= of that shape (or reduce with .sum() first)")
            grad = np.ones_like(self.data)
        grad = np.asarray(grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"backward(): grad has shape {grad.shape}, tensor has {self.shape}")

        order = topological_order(self)  # every node after its inputs

        # Reverse sweep: pass each node's gradient to its inputs; `+=` handles fan-out.
        grads = {id(self): grad}
        handed = {id(grad)}  # arrays a leaf may not keep as they are: the caller's, and those kept
        for node in reversed(order):
            y_bar = grads.pop(id(node))
            if node._ctx is None:  # a leaf
                # An op's fresh gradient is kept as it is; a view, a read-only broadcast or an
                # array another leaf holds is copied, so that no two gradients share memory.
                if (y_bar.dtype != node.dtype or y_bar.base is not None
                        or not y_bar.flags.writeable or id(y_bar) in handed):
                    y_bar = y_bar.astype(node.dtype)
                handed.add(id(y_bar))
                node.grad = y_bar if node.grad is None else node.grad + y_bar
                continue
            x_bars = node._fn.backward(node._ctx, y_bar)
            if not isinstance(x_bars, tuple):
                x_bars = (x_bars,)
            for x, needed, x_bar in zip(node._ctx.inputs, node._ctx.needs_input_grad, x_bars):
                if needed and x_bar is not None:
                    key = id(x)
                    grads[key] = grads[key] + x_bar if key in grads else x_bar

    # ------------------------------------------------------------------ operators
    def __add__(self, other): return F.add(self, other)
    def __radd__(self, other): return F.add(other, self)
    def __sub__(self, other): return F.sub(self, other)
    def __rsub__(self, other): return F.sub(other, self)
    def __mul__(self, other): return F.mul(self, other)
    def __rmul__(self, other): return F.mul(other, self)
    def __truediv__(self, other): return F.div(self, other)
    def __rtruediv__(self, other): return F.div(other, self)
    def __pow__(self, exponent): return F.pow(self, exponent)
    def __matmul__(self, other): return F.matmul(self, other)
    def __rmatmul__(self, other): return F.matmul(other, self)
    def __neg__(self): return F.neg(self)
    def __getitem__(self, index): return F.getitem(self, index)

    # Comparisons give plain boolean arrays: they have no gradient.
    def __lt__(self, other): return self.data < _data(other)
    def __le__(self, other): return self.data <= _data(other)
    def __gt__(self, other): return self.data > _data(other)
    def __ge__(self, other): return self.data >= _data(other)
    def __eq__(self, other): return self.data == _data(other)
    def __ne__(self, other): return self.data != _data(other)
    __hash__ = object.__hash__  # __eq__ is elementwise, identity stays the hash

    # ------------------------------------------------------------------ methods
    def sum(self, axis=None, keepdims=False): return F.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return F.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return F.max(self, axis, keepdims)
    def reshape(self, *shape): return F.reshape(self, *shape)
    def transpose(self, *axes): return F.transpose(self, *axes)
    def permute(self, *axes): return F.permute(self, *axes)
    T = property(lambda self: F.transpose(self))
    def exp(self): return F.exp(self)
    def log(self): return F.log(self)
    def sqrt(self): return F.sqrt(self)
    def relu(self): return F.relu(self)
    def sigmoid(self): return F.sigmoid(self)
    def tanh(self): return F.tanh(self)
    def softplus(self): return F.softplus(self)
    def logsumexp(self, axis=None, keepdims=False): return F.logsumexp(self, axis, keepdims)
    def astype(self, dtype): return F.astype(self, dtype)


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def graph_inputs(node: Tensor) -> list:
    """The inputs of the op that made `node` that need a gradient: the edges backward() follows
    (none for a leaf)."""
    if node._ctx is None:
        return []
    ctx = node._ctx
    return [x for x, needed in zip(ctx.inputs, ctx.needs_input_grad) if needed]


def topological_order(root: Tensor) -> list:
    """Every node that `root` was computed from through graph_inputs, each after all of its
    inputs, so that the reversed list visits every node before those it depends on. An iterative
    depth-first search: a deep graph cannot overflow Python's stack."""
    # exercise topological-sort: every node after its inputs, without recursion
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        elif id(node) not in visited:
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((x, False) for x in graph_inputs(node))
    return order
    # end exercise


# functional.py defines the ops on top of Tensor and Function, so it is imported after them.
from minivae import functional as F  # noqa: E402
