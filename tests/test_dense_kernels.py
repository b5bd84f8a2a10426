"""The fast door's dense and optimiser kernels, pinned to their twins: the numpy door's lines
(kernels/numpy/dense.py) and, for Adam, optim.Adam's own equations (the numpy door's update)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minivae import kernels, nn, optim
from minivae.kernels.fast import dense, threads
from minivae.kernels.fast import optim as optim_kernels
from minivae.kernels.numpy import dense as twin

EXAMPLES = settings(max_examples=30, deadline=None)
DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


def arrays(dtype, shape, low=-30, high=30):
    width = np.dtype(dtype).itemsize * 8  # floats exactly representable in dtype
    return hnp.arrays(dtype, shape, elements=st.floats(low, high, width=width))


def bias_act_backward(y, y_bar, activation, slope):
    """The twin of dense.bias_act_backward: a_bar = y_bar · act'(a), b_bar = Σ_rows a_bar."""
    a_bar = twin.act_backward(y, y_bar, activation, slope)
    return a_bar, a_bar.sum(axis=0)


def adam_by_the_equations(p, grads, lr, beta1, beta2, eps):
    """(p, m, v) after each step of optim.Adam's own lines (the numpy door), a gradient a step."""
    before = kernels.get_backend()
    kernels.set_backend("numpy")
    try:
        param = nn.Parameter(p.copy())
        adam = optim.Adam([param], lr=lr, betas=(beta1, beta2), eps=eps)
        after = []
        for g in grads:
            param.grad = g
            adam.step()
            after.append((param.data.copy(), adam.buffers["m"][0].copy(),
                          adam.buffers["v"][0].copy()))
        return after
    finally:
        kernels.set_backend(before)


def assert_close(mine, expected, dtype, what):
    assert mine.dtype == dtype, f"{what}: dtype {mine.dtype} vs reference {dtype}"
    np.testing.assert_allclose(mine, expected, **TOLERANCE[dtype],
                               err_msg=f"{what}: mine vs reference")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", dense.ACTIVATIONS)
@EXAMPLES
@given(rows=st.integers(1, 9), cols=st.integers(1, 9), slope=st.floats(0, 0.5), data=st.data())
def test_bias_act_forward_matches_reference(activation, dtype, rows, cols, slope, data):
    a, b = data.draw(arrays(dtype, (rows, cols))), data.draw(arrays(dtype, (cols,)))
    with np.errstate(over="ignore"):  # the reference's naive sigmoid may overflow exp(-a)
        expected = twin.activate(a + b, activation, slope)
    mine = a.copy()
    dense.bias_act_forward(mine, b, dense.ACTIVATIONS[activation], slope)  # in place
    assert_close(mine, expected, dtype, f"bias_act_forward {activation}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", dense.ACTIVATIONS)
@EXAMPLES
@given(rows=st.integers(1, 9), cols=st.integers(1, 9), slope=st.floats(0, 0.5), data=st.data())
def test_bias_act_backward_matches_reference(activation, dtype, rows, cols, slope, data):
    a = data.draw(arrays(dtype, (rows, cols)))
    y = twin.activate(a, activation, slope).astype(dtype)  # what the forward keeps
    y_bar = data.draw(arrays(dtype, (rows, cols), -3, 3))
    a_bar, b_bar = bias_act_backward(y, y_bar, activation, slope)
    mine_a_bar, mine_b_bar = dense.bias_act_backward(y, y_bar, dense.ACTIVATIONS[activation], slope)
    assert_close(mine_a_bar, a_bar, dtype, f"bias_act_backward a_bar {activation}")
    assert_close(mine_b_bar, b_bar, dtype, f"bias_act_backward b_bar {activation}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", dense.ACTIVATIONS)
def test_dense_kernels_at_layer_size(activation, dtype):
    """One realistic size (batch 128, 400 units), where the row sums are long."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((128, 400)).astype(dtype), rng.standard_normal(400).astype(dtype)
    y = a.copy()
    dense.bias_act_forward(y, b, dense.ACTIVATIONS[activation], 0.2)
    assert_close(y, twin.activate(a + b, activation, 0.2), dtype, activation)
    y_bar = rng.standard_normal(y.shape).astype(dtype)
    for mine, expected in zip(dense.bias_act_backward(y, y_bar, dense.ACTIVATIONS[activation], 0.2),
                              bias_act_backward(y, y_bar, activation, 0.2)):
        np.testing.assert_allclose(mine, expected, rtol=1e-4 if dtype == np.float32 else 1e-10,
                                   atol=1e-4 if dtype == np.float32 else 1e-10,
                                   err_msg=f"bias_act_backward {activation}: mine vs reference")


def test_sigmoid_kernel_is_finite_where_the_naive_form_overflows():
    a = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=np.float32)
    dense.bias_act_forward(a, np.zeros(5, np.float32), dense.SIGMOID, 0.0)
    np.testing.assert_allclose(a, [[0, 3.7e-44, 0.5, 1, 1]], atol=1e-30)


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
       lr=st.floats(1e-4, 1e-1), beta1=st.floats(0, 0.99), beta2=st.floats(0.9, 0.9999),
       eps=st.sampled_from([1e-8, 1e-6, 1e-3]), seed=st.integers(0, 2**32 - 1))
def test_adam_update_matches_the_equations_over_three_steps(dtype, shape, lr, beta1, beta2, eps,
                                                            seed):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape).astype(dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(3)]
    expected = adam_by_the_equations(p, grads, lr, beta1, beta2, eps)
    for step, (g, twins) in enumerate(zip(grads, expected), start=1):
        optim_kernels.adam_update(p, g, m, v, lr, beta1, beta2, eps, step)
        for mine, twin_value, name in zip((p, m, v), twins, "pmv"):
            assert_close(mine, twin_value, dtype, f"adam_update {name} at step {step}")


@pytest.mark.parametrize("n_workers", [1, 2, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_step_over_the_workers_matches_the_equations(n_workers, dtype, open_door):
    """The fast door cuts the parameters into pieces of kernels/fast/optim.CHUNK that the workers
    share: every element still gets the equations' update, whatever the pieces and workers."""
    open_door("fast")
    before = threads.get_num_threads()
    threads.set_num_threads(n_workers)
    try:
        rng = np.random.default_rng(n_workers)
        shapes = [(3, optim_kernels.CHUNK + 5), (7,), (2 * optim_kernels.CHUNK,), (40, 9)]
        params = [nn.Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]
        grads = [[rng.standard_normal(s).astype(dtype) for _ in range(3)] for s in shapes]
        twins = [adam_by_the_equations(p.data, g, 1e-2, 0.8, 0.99, 1e-6)
                 for p, g in zip(params, grads)]
        adam = optim.Adam(params, lr=1e-2, betas=(0.8, 0.99), eps=1e-6)
        for step in range(3):
            for p, g in zip(params, grads):
                p.grad = g[step]
            adam.step()
            for i, (p, twin_steps) in enumerate(zip(params, twins)):
                assert_close(p.data, twin_steps[step][0], dtype, f"Adam parameter {i}, step {step + 1}")
    finally:
        threads.set_num_threads(before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", dense.ACTIVATIONS)
@EXAMPLES
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=6), slope=st.floats(0, 0.5),
       data=st.data())
def test_act_backward_matches_reference(activation, dtype, shape, slope, data):
    a = data.draw(arrays(dtype, shape))
    y = twin.activate(a, activation, slope).astype(dtype)
    y_bar = data.draw(arrays(dtype, shape, -3, 3))
    expected = twin.act_backward(y, y_bar, activation, slope)
    mine = dense.act_backward(y, y_bar, dense.ACTIVATIONS[activation], slope)
    assert_close(mine, expected, dtype, f"act_backward {activation}")
