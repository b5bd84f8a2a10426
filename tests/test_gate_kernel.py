"""The PixelCNN's gate kernel (kernels/fast/gate.py), pinned to its twin in the numpy door (kernels/numpy/dense.py):
Hypothesis shapes and values, float32 and float64, and the same bits on 1, 2 or 3 workers."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minivae.kernels.fast import gate, threads
from minivae.kernels.numpy import dense as reference

EXAMPLES = settings(max_examples=40, deadline=None)
# σ through tanh(b/2) and through exp differ by about an ulp of 1 (absolute)
TOLERANCE = {np.float32: dict(rtol=1e-5, atol=4e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}


def inputs(dtype, data, scale=20.0):
    B, C, *rest = data.draw(hnp.array_shapes(min_dims=2, max_dims=4, max_side=5))
    width = np.dtype(dtype).itemsize * 8
    values = st.floats(-scale, scale, width=width)
    x = data.draw(hnp.arrays(dtype, (B, 2 * C, *rest), elements=values))
    y_bar = data.draw(hnp.arrays(dtype, (B, C, *rest), elements=st.floats(-2, 2, width=width)))
    return x, y_bar


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@EXAMPLES
@given(data=st.data())
def test_gate_and_its_backward_match_the_twin(dtype, data):
    x, y_bar = inputs(dtype, data)
    mine, twin = gate.gated_tanh(x), reference.gated_tanh(x)
    for what, a, b in zip(("y", "tanh a", "σ b"), mine, twin):
        assert a.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, **TOLERANCE[dtype], err_msg=f"{what}: mine vs reference")
    t, s = mine[1:]
    np.testing.assert_allclose(gate.gated_tanh_backward(y_bar, t, s),
                               reference.gated_tanh_backward(y_bar, t, s), **TOLERANCE[dtype],
                               err_msg="x_bar: mine vs reference")


@pytest.mark.parametrize("n", [1, 2, 3])
def test_the_same_bits_on_any_number_of_workers(n):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 32, 28, 28)).astype(np.float32)  # chunks of a few samples
    y_bar = rng.standard_normal((37, 16, 28, 28)).astype(np.float32)
    before = threads.get_num_threads()
    try:
        threads.set_num_threads(1)
        y1, t1, s1 = gate.gated_tanh(x)
        x_bar1 = gate.gated_tanh_backward(y_bar, t1, s1)
        threads.set_num_threads(n)
        y, t, s = gate.gated_tanh(x)
        x_bar = gate.gated_tanh_backward(y_bar, t, s)
    finally:
        threads.set_num_threads(before)
    np.testing.assert_array_equal(y, y1)
    np.testing.assert_array_equal(x_bar, x_bar1)
