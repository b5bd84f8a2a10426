"""Every op in functional.py: its gradient against finite differences, its dtype, its stability.

One helper, `check_grad`, runs `minivae.gradcheck` in float64 with a random, non-uniform upstream
gradient; Hypothesis draws the shapes (with size-1 axes and rank mismatch for broadcasting ops)
and the values (kept away from kinks: relu at 0, ties in max).
"""
import zlib

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minivae
from minivae import functional as F
from minivae.tensor import Tensor

EXAMPLES = settings(max_examples=40, deadline=None)
GRADCHECKS = 0  # gradient checks run so far in this session


def check_grad(fn, *inputs, **tolerances):
    """gradcheck `fn` at float64 `inputs`. The upstream gradient u is random, seeded from the
    inputs' bytes, so it differs between examples and a failing example replays exactly."""
    global GRADCHECKS
    GRADCHECKS += 1
    seed = zlib.crc32(b"".join(np.ascontiguousarray(x).tobytes() for x in inputs))
    minivae.gradcheck(fn, *inputs, seed=seed, **tolerances)


# ---------------------------------------------------------------- value and shape strategies

REAL = st.floats(-2, 2)
POSITIVE = st.floats(0.2, 3)  # log, sqrt, non-integer powers
NONZERO = st.floats(0.1, 2) | st.floats(-2, -0.1)  # relu's kink, division
DISTINCT = st.integers(-40, 40).map(lambda k: k / 10)  # with unique=True: no ties in max
SIDE = st.integers(1, 4)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def arrays(shape, elements=REAL, unique=False):
    return hnp.arrays(np.float64, shape, elements=elements, unique=unique)


def broadcastable_pair(data):
    """Two shapes that broadcast together: size-1 axes and different ranks included."""
    return data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4)
                     ).input_shapes


@st.composite
def shape_and_axis(draw):
    """A shape and an axis argument: None, an int or a tuple, each axis maybe negative."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3))
    ndim = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"])) if ndim else "none"
    if kind == "none":
        return shape, None
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    axes = [a - ndim if draw(st.booleans()) else a for a in axes]
    return shape, axes[0] if kind == "int" else tuple(axes)


# ---------------------------------------------------------------- arithmetic

BINARY = {"add": F.add, "sub": F.sub, "mul": F.mul, "div": F.div}


@pytest.mark.parametrize("name", BINARY)
@EXAMPLES
@given(data=st.data())
def test_binary_op_gradients_with_broadcasting(name, data):
    shape_a, shape_b = broadcastable_pair(data)
    a = data.draw(arrays(shape_a))
    b = data.draw(arrays(shape_b, NONZERO if name == "div" else REAL))
    check_grad(BINARY[name], a, b)


# Operator forms, with a Python number or a constant ndarray on either side.
SCALAR_FORMS = {
    "t + 2.5": lambda t: t + 2.5,
    "2.5 + t": lambda t: 2.5 + t,
    "t - 2": lambda t: t - 2,
    "2 - t": lambda t: 2 - t,
    "t * 1.5": lambda t: t * 1.5,
    "-1.5 * t": lambda t: -1.5 * t,
    "t / 4": lambda t: t / 4,
    "3 / t": lambda t: 3 / t,
    "-t": lambda t: -t,
    "ndarray * t": lambda t: np.linspace(-1, 2, 4) * t,
    "ndarray - t": lambda t: np.linspace(-1, 2, 4) - t,
}


@pytest.mark.parametrize("form", SCALAR_FORMS)
@EXAMPLES
@given(data=st.data())
def test_operators_with_constants(form, data):
    shape = data.draw(hnp.array_shapes(max_dims=3, max_side=3).map(lambda s: s[:-1] + (4,)))
    check_grad(SCALAR_FORMS[form], data.draw(arrays(shape, NONZERO)))


@EXAMPLES
@given(data=st.data(), p=st.sampled_from([0, 1, 2, 3, -1, -2, 0.5, 1.5, -0.5, 2.7]))
def test_pow(data, p):
    integer = float(p).is_integer()  # negative bases only for integer exponents
    bases = st.floats(0.3, 2) | st.floats(-2, -0.3) if integer else st.floats(0.3, 2)
    x = data.draw(arrays(data.draw(SHAPES), bases))
    check_grad(lambda t: t ** p, x)
    check_grad(lambda t: F.pow(t, p), x)


def test_pow_rejects_a_tensor_exponent():
    with pytest.raises(TypeError, match="exponent"):
        F.pow(Tensor([1.0, 2.0]), Tensor(2.0))


UNARY = {
    "neg": (F.neg, REAL),
    "exp": (F.exp, REAL),
    "log": (F.log, POSITIVE),
    "sqrt": (F.sqrt, POSITIVE),
    "relu": (F.relu, NONZERO),
    "leaky_relu": (F.leaky_relu, NONZERO),
    "leaky_relu(0.3)": (lambda t: F.leaky_relu(t, 0.3), NONZERO),
    "sigmoid": (F.sigmoid, st.floats(-8, 8)),
    "tanh": (F.tanh, st.floats(-4, 4)),
    "softplus": (F.softplus, st.floats(-8, 8)),
}


@pytest.mark.parametrize("name", UNARY)
@EXAMPLES
@given(data=st.data())
def test_unary_op_gradients(name, data):
    fn, elements = UNARY[name]
    check_grad(fn, data.draw(arrays(data.draw(SHAPES), elements)))


@EXAMPLES
@given(n=SIDE, k=SIDE, m=SIDE, data=st.data())
def test_matmul_2d(n, k, m, data):
    a, b = data.draw(arrays((n, k))), data.draw(arrays((k, m)))
    check_grad(F.matmul, a, b)
    check_grad(lambda a, b: a @ b, a, b)


@EXAMPLES
@given(data=st.data())
def test_matmul_batched_with_batch_broadcasting(data):
    shape_a, shape_b = data.draw(hnp.mutually_broadcastable_shapes(
        signature="(n,k),(k,m)->(n,m)", max_dims=2, max_side=3)).input_shapes
    check_grad(F.matmul, data.draw(arrays(shape_a)), data.draw(arrays(shape_b)))


def test_matmul_with_a_constant_ndarray_on_the_left():
    w = np.arange(6.0).reshape(2, 3)
    check_grad(lambda t: w @ t, np.linspace(-1, 1, 12).reshape(3, 4))


# ---------------------------------------------------------------- reductions


@pytest.mark.parametrize("name", ["sum", "mean", "max", "logsumexp"])
@EXAMPLES
@given(shape_axis=shape_and_axis(), keepdims=st.booleans(), data=st.data())
def test_reduction_gradients(name, shape_axis, keepdims, data):
    shape, axis = shape_axis
    x = data.draw(arrays(shape, DISTINCT, unique=True))  # distinct values: max has no ties
    check_grad(lambda t: getattr(F, name)(t, axis, keepdims), x)
    check_grad(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), x)  # the method


def test_max_shares_the_gradient_between_ties():
    x = Tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], requires_grad=True)
    F.max(x, axis=1).backward(np.array([6.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [[0, 3, 3], [2, 0, 2]])


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@EXAMPLES
@given(data=st.data())
def test_softmax_gradients(name, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    check_grad(lambda t: getattr(F, name)(t, axis=axis), data.draw(arrays(shape, st.floats(-5, 5))))


# ---------------------------------------------------------------- shape ops


@EXAMPLES
@given(data=st.data())
def test_reshape(data):
    shape = data.draw(SHAPES)
    new = list(data.draw(st.permutations(shape)))
    if new and data.draw(st.booleans()):
        new[data.draw(st.integers(0, len(new) - 1))] = -1
    x = data.draw(arrays(shape))
    check_grad(lambda t: F.reshape(t, *new), x)
    check_grad(lambda t: t.reshape(tuple(new)), x)
    check_grad(lambda t: F.reshape(t, -1), x)


@EXAMPLES
@given(data=st.data())
def test_transpose_and_permute(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=3))
    ndim = len(shape)
    axes = tuple(a - ndim if data.draw(st.booleans()) else a
                 for a in data.draw(st.permutations(range(ndim))))  # some spelled negative
    x = data.draw(arrays(shape))
    check_grad(lambda t: F.permute(t, axes), x)
    check_grad(lambda t: t.transpose(*axes), x)
    check_grad(lambda t: F.transpose(t), x)  # all axes reversed
    check_grad(lambda t: t.T, x)


@EXAMPLES
@given(data=st.data())
def test_concatenate(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    xs = [data.draw(arrays(shape[:axis % len(shape)] + (n,) + shape[axis % len(shape) + 1:]))
          for n in sizes]
    check_grad(lambda *ts: F.concatenate(ts, axis=axis), *xs)


@EXAMPLES
@given(data=st.data(), count=st.integers(1, 3))
def test_stack(data, count):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    xs = [data.draw(arrays(shape)) for _ in range(count)]
    check_grad(lambda *ts: F.stack(ts, axis=axis), *xs)


@EXAMPLES
@given(data=st.data())
def test_getitem_basic_indices(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True))  # ints, slices, ..., None
    check_grad(lambda t: t[index], data.draw(arrays(shape)))


@EXAMPLES
@given(data=st.data())
def test_getitem_integer_arrays_with_repeats(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    x = data.draw(arrays(shape))
    index = data.draw(hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(max_side=6)))
    check_grad(lambda t: t[index], x)
    rows = data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=6))
    rows = rows + rows[:1]  # at least one repeat: the np.add.at path must sum, not overwrite
    check_grad(lambda t: t[rows], x)
    check_grad(lambda t: F.getitem(t, np.array(rows)), x)
    if len(shape) > 1:
        check_grad(lambda t: t[:, [0, 0, -1]], x)  # slice mixed with an index array


def test_getitem_boolean_mask():
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    check_grad(lambda t: t[x > 0.1], x)


# ---------------------------------------------------------------- losses, linear, casts


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@EXAMPLES
@given(data=st.data())
def test_bce_with_logits_gradients_wrt_logits_and_target(reduction, data):
    shape_l, shape_t = broadcastable_pair(data)
    logits = data.draw(arrays(shape_l, st.floats(-6, 6)))
    target = data.draw(arrays(shape_t, st.floats(0, 1)))
    check_grad(lambda l, t: F.binary_cross_entropy_with_logits(l, t, reduction), logits, target)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@EXAMPLES
@given(data=st.data())
def test_mse_loss_gradients(reduction, data):
    shape_x, shape_t = broadcastable_pair(data)
    x, target = data.draw(arrays(shape_x)), data.draw(arrays(shape_t))
    check_grad(lambda x, t: F.mse_loss(x, t, reduction), x, target)


def test_losses_reject_an_unknown_reduction():
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(Tensor([1.0]), Tensor([0.0]), reduction="avg")


@pytest.mark.parametrize("activation", ["identity", "relu", "leaky_relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@EXAMPLES
@given(batch=SIDE, n_in=SIDE, n_out=SIDE, data=st.data())
def test_linear_gradients(activation, bias, batch, n_in, n_out, data):
    x = data.draw(arrays((batch, n_in), NONZERO))
    w = data.draw(arrays((n_out, n_in), NONZERO))
    b = data.draw(arrays((n_out,), NONZERO)) if bias else np.zeros(n_out)
    if activation in ("relu", "leaky_relu"):
        assume(np.abs(x @ w.T + b).min() > 1e-3)  # away from the kink at 0
    if bias:
        check_grad(lambda x, w, b: F.linear(x, w, b, activation, slope=0.2), x, w, b)
    else:
        check_grad(lambda x, w: F.linear(x, w, activation=activation, slope=0.2), x, w)


@EXAMPLES
@given(data=st.data())
def test_astype(data):
    x = data.draw(arrays(data.draw(SHAPES)))
    check_grad(lambda t: F.astype(t, np.float64), x)
    # Through float32 and back: float32 rounding needs a larger step and tolerance.
    check_grad(lambda t: t.astype(np.float32).astype(np.float64), x, eps=1e-2, atol=1e-4)


# ---------------------------------------------------------------- the gated PixelCNN's ops

FEATURE_MAPS = hnp.array_shapes(min_dims=3, max_dims=4, min_side=1, max_side=4)


@EXAMPLES
@given(data=st.data())
def test_shift_down_moves_rows_down_and_its_gradient_up(data):
    x = data.draw(arrays(data.draw(FEATURE_MAPS)))
    y = F.shift_down(Tensor(x)).data
    np.testing.assert_array_equal(y[..., 1:, :], x[..., :-1, :])
    np.testing.assert_array_equal(y[..., 0, :], 0)
    check_grad(F.shift_down, x)


@EXAMPLES
@given(data=st.data())
def test_gated_tanh_is_tanh_of_one_half_times_sigmoid_of_the_other(data):
    B, C, *rest = data.draw(FEATURE_MAPS)
    x = data.draw(arrays((B, 2 * C, *rest)))
    y = F.gated_tanh(Tensor(x)).data
    # atol: the fast door flushes subnormal results to zero (README, floating-point state)
    np.testing.assert_allclose(y, np.tanh(x[:, :C]) / (1 + np.exp(-x[:, C:])), rtol=1e-12,
                               atol=np.finfo(x.dtype).tiny)
    check_grad(F.gated_tanh, x)


def test_gated_tanh_refuses_an_odd_channel_count():
    with pytest.raises(ValueError, match="even number of channels"):
        F.gated_tanh(Tensor(np.zeros((2, 3, 4, 4))))


# ---------------------------------------------------------------- dtype preservation

# Every op, with the shapes of its inputs (the binary ones broadcast).
OPS = {
    "add": (F.add, (3, 1), (4,)),
    "sub": (F.sub, (3, 1), (4,)),
    "mul": (F.mul, (2, 3), (3,)),
    "div": (F.div, (2, 3), (2, 1)),
    "neg": (F.neg, (3,)),
    "pow": (lambda t: F.pow(t, 1.5), (3,)),
    "exp": (F.exp, (3,)),
    "log": (F.log, (3,)),
    "sqrt": (F.sqrt, (3,)),
    "matmul": (F.matmul, (2, 3), (3, 4)),
    "matmul batched": (F.matmul, (2, 1, 2, 3), (3, 3, 1)),
    "sum": (lambda t: F.sum(t, axis=1), (2, 3)),
    "mean": (lambda t: F.mean(t, axis=(0, -1), keepdims=True), (2, 3, 4)),
    "max": (lambda t: F.max(t, axis=0), (2, 3)),
    "reshape": (lambda t: F.reshape(t, 3, 2), (2, 3)),
    "transpose": (F.transpose, (2, 3)),
    "permute": (lambda t: F.permute(t, 2, 0, 1), (2, 3, 4)),
    "concatenate": (lambda a, b: F.concatenate([a, b], axis=1), (2, 1), (2, 3)),
    "stack": (lambda a, b: F.stack([a, b], axis=-1), (2, 3), (2, 3)),
    "getitem slice": (lambda t: t[1:, ::2], (3, 4)),
    "getitem repeats": (lambda t: t[[0, 0, 2]], (3, 4)),
    "relu": (F.relu, (3,)),
    "leaky_relu": (F.leaky_relu, (3,)),
    "sigmoid": (F.sigmoid, (3,)),
    "tanh": (F.tanh, (3,)),
    "softplus": (F.softplus, (3,)),
    "logsumexp": (lambda t: F.logsumexp(t, axis=-1), (2, 3)),
    "log_softmax": (F.log_softmax, (2, 3)),
    "softmax": (F.softmax, (2, 3)),
    "bce_with_logits": (F.binary_cross_entropy_with_logits, (2, 3), (2, 3)),
    "bce_with_logits none": (lambda l, t: F.binary_cross_entropy_with_logits(l, t, "none"),
                             (2, 3), (3,)),
    "mse_loss": (F.mse_loss, (2, 3), (2, 3)),
    "shift_down": (F.shift_down, (2, 3, 4, 5)),
    "gated_tanh": (F.gated_tanh, (2, 4, 3, 3)),
    "linear": (F.linear, (2, 3), (4, 3), (4,)),
    "linear relu, no bias": (lambda x, w: F.linear(x, w, activation="relu"), (2, 3), (4, 3)),
    "linear sigmoid": (lambda x, w, b: F.linear(x, w, b, "sigmoid"), (2, 3), (4, 3), (4,)),
    # A Python number takes the Tensor's dtype.
    "t + 1": (lambda t: t + 1, (3,)),
    "0.5 * t": (lambda t: 0.5 * t, (3,)),
    "1 - t": (lambda t: 1 - t, (3,)),
    "t / 3": (lambda t: t / 3, (3,)),
    "2 / t": (lambda t: 2 / t, (3,)),
    "t ** 2": (lambda t: t ** 2, (3,)),
    "mse against 0.0": (lambda t: F.mse_loss(t, 0.0), (3,)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", OPS)
def test_op_preserves_dtype(name, dtype):
    fn, *shapes = OPS[name]
    rng = np.random.default_rng(0)
    xs = [Tensor(rng.uniform(0.25, 1, shape).astype(dtype), requires_grad=True) for shape in shapes]
    y = fn(*xs)
    assert y.dtype == dtype, f"{name}: {y.dtype} out of {dtype} in"
    y.backward(rng.standard_normal(y.shape).astype(dtype))
    for x in xs:
        assert x.grad.dtype == dtype, f"{name}: {x.grad.dtype} gradient for a {dtype} input"
        assert x.grad.shape == x.shape


def test_astype_casts_forward_and_casts_the_gradient_back():
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64
    (y * 2).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, 2)


# ---------------------------------------------------------------- numerical stability

HUGE = np.array([-1e4, -1e3, -100.0, -40.0, -20.0, -3.0, 0.0, 3.0, 20.0, 40.0, 100.0, 1e3, 1e4])


def naive_bce(logits, target):
    """−[t ln σ(l) + (1 − t) ln(1 − σ(l))] as written: ln 0 and 0·∞ for large |l|."""
    with np.errstate(all="ignore"):
        s = 1 / (1 + np.exp(-logits))
        return -(target * np.log(s) + (1 - target) * np.log(1 - s))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("target", [0.0, 0.3, 1.0])
def test_bce_with_logits_is_finite_and_matches_the_naive_formula(dtype, target):
    logits = Tensor(HUGE.astype(dtype), requires_grad=True)
    t = Tensor(np.full(HUGE.shape, target, dtype=dtype), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    loss.sum().backward()
    assert np.isfinite(loss.data).all() and np.isfinite(logits.grad).all()
    assert np.isfinite(t.grad).all()
    naive = naive_bce(HUGE, target)  # in float64
    # For |l| ≤ 20 the naive form is accurate to ~1e-8; beyond, 1 − σ(l) loses its digits.
    accurate = np.abs(HUGE) <= 20
    np.testing.assert_allclose(loss.data[accurate], naive[accurate], rtol=1e-6, atol=1e-12)
    finite = np.isfinite(naive)
    np.testing.assert_allclose(loss.data[finite], naive[finite], rtol=1e-2, atol=1e-12)
    # The limits: loss → max(l, 0) − l·t as |l| → ∞.
    big = np.abs(HUGE) >= 100
    expected = np.maximum(HUGE, 0) - HUGE * target
    np.testing.assert_allclose(loss.data[big], expected[big], rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_softplus_are_finite_at_plus_minus_1e4(dtype):
    x = Tensor(np.array([-1e4, 1e4], dtype=dtype), requires_grad=True)
    y = F.sigmoid(x)
    np.testing.assert_array_equal(y.data, [0, 1])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 0])
    x.grad = None
    y = F.softplus(x)
    np.testing.assert_array_equal(y.data, [0, 1e4])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_is_finite_at_plus_minus_1e4_and_with_minus_inf(dtype):
    x = Tensor(np.array([[1e4, 1e4], [-1e4, -1e4], [-np.inf, 0.0], [-np.inf, -1e4]], dtype=dtype),
               requires_grad=True)
    y = F.logsumexp(x, axis=1)
    np.testing.assert_allclose(y.data, [1e4 + np.log(2), -1e4 + np.log(2), 0, -1e4], rtol=1e-6)
    y.backward(np.ones(4, dtype=dtype))
    # The backward forms e^(x − y) from the stored y; a float32 y near 1e4 is only good to
    # ulp(1e4) ≈ 1e-3, so the float32 softmax is good to ~1e-4 there.
    rtol = 1e-3 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(x.grad, [[0.5, 0.5], [0.5, 0.5], [0, 1], [0, 1]], rtol=rtol)
    with np.errstate(divide="ignore"):  # every term −inf: the sum is 0 and ln 0 = −inf, not nan
        y = F.logsumexp(Tensor(np.full((2, 3), -np.inf, dtype=dtype)), axis=-1)
    np.testing.assert_array_equal(y.data, [-np.inf, -np.inf])


def test_log_softmax_is_finite_for_huge_inputs():
    y = F.log_softmax(Tensor([[1e4, 0.0, -1e4]]))
    np.testing.assert_allclose(y.data, [[0, -1e4, -2e4]])
