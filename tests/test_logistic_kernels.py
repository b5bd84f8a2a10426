"""The logistic kernels (kernels/fast/logistic.py), pinned to their twins in the numpy door (kernels/numpy/dense.py):
Hypothesis shapes and values, float32 and float64, logits out to ±1e4 where naive forms overflow."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minivae.kernels.fast import logistic
from minivae.kernels.numpy import dense as reference

EXAMPLES = settings(max_examples=40, deadline=None)
DTYPES = [np.float32, np.float64]
# a few units of the last place: the kernels and NumPy take exp and log by different routes
TOLERANCE = {np.float32: dict(rtol=4e-6, atol=1e-30), np.float64: dict(rtol=1e-14, atol=1e-300)}


def arrays(dtype, shape, low, high):
    width = np.dtype(dtype).itemsize * 8
    return hnp.arrays(dtype, shape, elements=st.floats(low, high, width=width))


def assert_close(mine, expected, dtype, what):
    assert mine.dtype == dtype and mine.shape == expected.shape, f"{what}: {mine.dtype} {mine.shape}"
    np.testing.assert_allclose(mine, expected, **TOLERANCE[dtype], err_msg=f"{what}: mine vs reference")


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=6), data=st.data())
def test_sigmoid_matches_reference(dtype, shape, data):
    x = data.draw(arrays(dtype, shape, -1e4, 1e4))
    assert_close(logistic.sigmoid(x), reference.sigmoid(x), dtype, "sigmoid")


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=6),
       scale=st.sampled_from([1.0, 30.0, 1e4]), data=st.data())
def test_bce_with_logits_matches_reference(dtype, shape, scale, data):
    l = data.draw(arrays(dtype, shape, -scale, scale))
    t = data.draw(arrays(dtype, shape, 0, 1))
    y, sigma = logistic.bce_with_logits(l, t)
    y_ref, sigma_ref = reference.bce_with_logits(l, t)
    assert_close(y, y_ref, dtype, "bce_with_logits loss")
    assert_close(sigma, sigma_ref, dtype, "bce_with_logits σ(l)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_is_accurate_where_one_plus_e_rounds_to_one(dtype):
    """ln(1 + e) for e below half an ulp of 1 is e itself, not 0 (the Goldberg form's branch)."""
    l = np.array([-20.0, -40.0, -80.0, 20.0, 40.0], dtype)
    y, _ = logistic.bce_with_logits(l, np.zeros_like(l))
    expected = np.maximum(l, 0) + np.exp(-np.abs(l).astype(np.float64))
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert (y[:3] > 0).all()


def test_non_contiguous_inputs():
    rng = np.random.default_rng(0)
    l, t = rng.standard_normal((6, 8)).T, rng.uniform(size=(6, 8)).T
    for mine, expected in zip(logistic.bce_with_logits(l, t), reference.bce_with_logits(l, t)):
        np.testing.assert_allclose(mine, expected, rtol=1e-14)
