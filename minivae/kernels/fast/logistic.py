"""The logistic function and BCE-with-logits, elementwise, from one exponential per element.

    e = e^(−|l|)                                          never overflows
    σ(l) = 1/(1 + e) for l ≥ 0,  e/(1 + e) for l < 0
    bce(l, t) = max(l, 0) − l·t + ln(1 + e)               = −[t ln σ(l) + (1 − t) ln(1 − σ(l))]

The BCE forward returns σ(l) too, for its backward l_bar = y_bar · (σ(l) − t) then costs no
exponential. In NumPy this is about ten passes over the array; here NumPy makes e and ln(1 + e) on
its SIMD paths (Numba's exp and log run one element at a time, several times slower) and one Numba
pass does everything else. ln(1 + e) is taken as ln(u)·e/(u − 1) with u = 1 + e rounded (exactly
e where u rounds to 1): as accurate as log1p (Goldberg, "What every computer scientist should know
about floating-point arithmetic", 1991, theorem 4), which has no SIMD path in NumPy. The numpy
door's `sigmoid` and `bce_with_logits` (kernels/numpy/dense.py) are the same equations in NumPy.
"""
import numpy as np
from numba import njit


def _exp_minus_abs(x: np.ndarray) -> np.ndarray:
    """e^(−|x|), in two in-place NumPy passes."""
    e = np.abs(x)
    np.negative(e, out=e)
    return np.exp(e, out=e)


@njit(cache=True, nogil=True, error_model="numpy")
def _sigmoid_from_exp(x, e, s):
    """s = σ(x) from e = e^(−|x|).  All 1-D, one length."""
    one = x.dtype.type(1)
    for i in range(x.size):
        s[i] = (one if x[i] >= 0 else e[i]) / (one + e[i])


@njit(cache=True, nogil=True, error_model="numpy")
def _bce_from_exp(l, t, e, log_u, y, s):
    """y = bce(l, t) and s = σ(l) from e = e^(−|l|) and log_u = ln(1 + e).  All 1-D, one length."""
    zero, one = l.dtype.type(0), l.dtype.type(1)
    for i in range(l.size):
        u = one + e[i]
        log1p_e = e[i] if u == one else log_u[i] * e[i] / (u - one)  # ln(1 + e), see above
        y[i] = max(l[i], zero) - l[i] * t[i] + log1p_e
        s[i] = (one if l[i] >= zero else e[i]) / u


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x), finite for every x, in x's dtype and shape."""
    x = np.ascontiguousarray(x)
    e, s = _exp_minus_abs(x), np.empty_like(x)
    _sigmoid_from_exp(x.reshape(-1), e.reshape(-1), s.reshape(-1))
    return s


def bce_with_logits(l: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bce(l, t), σ(l)) elementwise, for logits l and targets t of one shape and dtype."""
    l, t = np.ascontiguousarray(l), np.ascontiguousarray(t)
    e = _exp_minus_abs(l)
    log_u = np.log(1 + e)
    y, s = np.empty_like(l), np.empty_like(l)
    _bce_from_exp(l.reshape(-1), t.reshape(-1), e.reshape(-1), log_u.reshape(-1), y.reshape(-1),
                  s.reshape(-1))
    return y, s
