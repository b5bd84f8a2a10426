"""gradcheck: compare autodiff with finite differences, in float64.

Two checks on f = fn(*inputs) with a random upstream cotangent u (a uniform one would hide a
backward that ignores its y_bar):

1. every entry of the vector-Jacobian product Jᵀu that `backward` computes, against the central
   difference of the scalar ⟨u, f(x)⟩;
2. the dot-product test ⟨v, Jᵀu⟩ = ⟨u, J v⟩ for a random direction v, with J v by a central
   difference along v (HIPS/autograd's check: it needs no other framework).
"""
from __future__ import annotations

import numpy as np

from minivae.tensor import Tensor


class GradcheckError(AssertionError):
    pass


def gradcheck(fn, *inputs, eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-4,
              seed: int = 0) -> float:
    """Check `fn`'s gradient with respect to every input; return the largest error found.

    Inputs are arrays or Tensors, cast to float64. `fn` takes Tensors and returns a Tensor.
    The error of an entry is |autodiff − numerical| − rtol·|numerical|; it must stay below atol.
    Raises GradcheckError listing "autodiff vs numerical" values on failure."""
    rng = np.random.default_rng(seed)
    xs = [np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64) for x in inputs]

    def f(*arrays) -> np.ndarray:
        return fn(*[Tensor(a) for a in arrays]).data

    u = rng.standard_normal(np.shape(f(*xs)))

    def scalar(*arrays) -> float:
        return float(np.sum(u * f(*arrays)))

    tensors = [Tensor(x.copy(), requires_grad=True) for x in xs]
    fn(*tensors).backward(u)
    autodiff = [np.zeros_like(x) if t.grad is None else t.grad for x, t in zip(xs, tensors)]

    worst = 0.0
    for k, x in enumerate(xs):  # check 1: entry by entry
        numerical = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            original = x[i]
            x[i] = original + eps
            plus = scalar(*xs)
            x[i] = original - eps
            minus = scalar(*xs)
            x[i] = original
            numerical[i] = (plus - minus) / (2 * eps)
        worst = _compare(f"input {k} (shape {x.shape})", autodiff[k], numerical,
                         atol, rtol, worst)

    vs = [rng.standard_normal(x.shape) for x in xs]  # check 2: the dot-product test
    jvp = (scalar(*[x + eps * v for x, v in zip(xs, vs)])
           - scalar(*[x - eps * v for x, v in zip(xs, vs)])) / (2 * eps)
    vjp = sum(float(np.sum(v * g)) for v, g in zip(vs, autodiff))
    return _compare("dot-product test <v, J^T u> vs <u, J v>", np.array(vjp), np.array(jvp),
                    atol, rtol, worst)


def _compare(what: str, autodiff, numerical, atol: float, rtol: float, worst: float) -> float:
    error = np.abs(autodiff - numerical) - rtol * np.abs(numerical)
    if error.size and error.max() > atol:
        bad = np.argwhere(error > atol)[:5]
        rows = "\n".join(f"  at {tuple(i)}: autodiff {autodiff[tuple(i)]:.8g} vs numerical "
                         f"{numerical[tuple(i)]:.8g}" for i in bad)
        raise GradcheckError(f"gradcheck failed for {what}: autodiff vs numerical\n{rows}")
    return max(worst, float(np.abs(autodiff - numerical).max(initial=0.0)))
