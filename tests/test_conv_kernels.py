"""The fast door's convolution kernels, pinned to the second derivations in tests/conv_twins.py:
first im2col and col2im against the plain loops, then each operation against the twins; and the
numpy door's convolutions against the same twins.

Geometry (batch, channels, image size, kernel, stride, padding) and values are drawn by Hypothesis;
kH != kW and H != W on purpose, so a swapped index cannot pass. Then: the adjoint identities that
make the backward passes right by construction, the output-size formulas, the PixelCNN masks, and
PyTorch as an outside witness when it is installed.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minivae import functional as F
from minivae import nn
import conv_twins as reference
from minivae.kernels.fast import conv, dense, im2col, threads
from minivae.kernels.numpy import conv as numpy_conv
from minivae.kernels.numpy import dense as dense_reference

EXAMPLES = settings(max_examples=25, deadline=None)
DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-11, atol=1e-11)}


def arrays(dtype, shape):
    # values exactly representable in float32, so both dtypes see the same numbers
    return hnp.arrays(dtype, shape, elements=st.floats(-4, 4, width=32))


def assert_close(mine, expected, dtype, what):
    assert mine.dtype == dtype, f"{what}: dtype {mine.dtype} vs reference {dtype}"
    assert mine.shape == expected.shape, f"{what}: shape {mine.shape} vs reference {expected.shape}"
    np.testing.assert_allclose(mine, expected, **TOLERANCE[dtype], err_msg=f"{what}: mine vs reference")


def conv2d_backward_input(y_bar, w, x_shape, s, p, mask=None):
    """x_bar alone, from conv.conv2d_backward (which does not read x for it)."""
    return conv.conv2d_backward(y_bar, np.zeros(x_shape, y_bar.dtype), w, s, p, mask)[0]


def conv2d_backward_weight(x, y_bar, w_shape, s, p, mask=None):
    """(w_bar, b_bar) alone, from conv.conv2d_backward without the input gradient."""
    w = np.zeros(w_shape, np.result_type(x, y_bar))  # the weight gradient does not read w
    _, w_bar, b_bar = conv.conv2d_backward(y_bar, x, w, s, p, mask, need_x_bar=False)
    return w_bar, b_bar


@st.composite
def conv_geometry(draw, transposed=False):
    """(B, C_in, C_out, H, W, kH, kW, stride, padding, output_padding), every size small."""
    kH, kW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, padding = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    output_padding = draw(st.integers(0, stride - 1)) if transposed else 0
    if transposed:  # any input size works as long as the padding leaves some output
        H, W = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        assume((H - 1) * stride + kH + output_padding > 2 * padding)
        assume((W - 1) * stride + kW + output_padding > 2 * padding)
    else:  # the kernel must fit in the padded input
        H = draw(st.integers(max(1, kH - 2 * padding), 8))
        W = draw(st.integers(max(1, kW - 2 * padding), 8))
    B, C_in, C_out = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return B, C_in, C_out, H, W, kH, kW, stride, padding, output_padding


def conv_out(H, W, kH, kW, s, p):
    return F.conv_output_size(H, kH, s, p), F.conv_output_size(W, kW, s, p)


def convT_out(H, W, kH, kW, s, p, op):
    return F.conv_transpose_output_size(H, kH, s, p, op), F.conv_transpose_output_size(W, kW, s, p, op)


# ---------------------------------------------------------------- each kernel against its twin


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(g=conv_geometry(), data=st.data())
def test_im2col_and_col2im_match_the_plain_loops(dtype, g, data):
    """im2col.py's copies (phase planes, wide rows) give the plain loop's columns once the wide
    rows' extra columns are dropped; col2im, fed the twin's columns with zeros in those extra
    columns, gives the twin's scatter-add."""
    B, C_in, _, H, W, kH, kW, s, p, _ = g
    x = data.draw(arrays(dtype, (B, C_in, H, W)))
    H_out, W_out = conv_out(H, W, kH, kW, s, p)
    taps, K = conv.taps_of(None, kH, kW), C_in * kH * kW
    x_ph = np.zeros(im2col.phase_shape(B, C_in, H, W, s, p), dtype)
    im2col.pad_into_phases(x, p, x_ph)
    Wq = x_ph.shape[-1]
    cols = np.empty((K, B * H_out * Wq), dtype)
    im2col.im2col(x_ph, taps, H_out, cols)
    mine = cols.reshape(K, B, H_out, Wq)[..., :W_out].reshape(K, -1)
    assert_close(mine, reference.im2col(x, kH, kW, s, p), dtype, "im2col")

    cols_ref = data.draw(arrays(dtype, (K, B * H_out * W_out)))
    wide = np.zeros((K, B, H_out, Wq), dtype)
    wide[..., :W_out] = cols_ref.reshape(K, B, H_out, W_out)
    x_ph_bar, x_bar = np.empty_like(x_ph), np.empty(x.shape, dtype)
    im2col.col2im(wide.reshape(K, -1), taps, H_out, x_ph_bar)
    im2col.crop_from_phases(x_ph_bar, p, np.zeros(C_in, dtype), dense.IDENTITY, 0.0, x_bar)
    assert_close(x_bar, reference.col2im(cols_ref, x.shape, kH, kW, s, p), dtype, "col2im")


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(g=conv_geometry(), data=st.data())
def test_conv2d_forward_is_the_product_with_the_columns(dtype, g, data):
    """conv.py's docstring in plain NumPy, y = W @ cols(x) + b, against the kernels and against
    the other twin (a loop over the kernel offsets)."""
    B, C_in, C_out, H, W, kH, kW, s, p, _ = g
    x, w = data.draw(arrays(dtype, (B, C_in, H, W))), data.draw(arrays(dtype, (C_out, C_in, kH, kW)))
    b = data.draw(arrays(dtype, (C_out,)))
    by_columns = reference.conv2d_by_im2col(x, w, b, s, p)
    assert_close(conv.conv2d_forward(x, w, b, s, p), by_columns, dtype, "conv2d_forward")
    assert_close(reference.conv2d_forward(x, w, b, s, p), by_columns, dtype, "the two twins")


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(g=conv_geometry(), with_bias=st.booleans(), data=st.data())
def test_conv2d_forward_matches_reference(dtype, g, with_bias, data):
    B, C_in, C_out, H, W, kH, kW, s, p, _ = g
    x, w = data.draw(arrays(dtype, (B, C_in, H, W))), data.draw(arrays(dtype, (C_out, C_in, kH, kW)))
    b = data.draw(arrays(dtype, (C_out,))) if with_bias else None
    assert_close(conv.conv2d_forward(x, w, b, s, p), reference.conv2d_forward(x, w, b, s, p), dtype, "conv2d_forward")


FUSED = ["relu", "leaky_relu", "sigmoid", "tanh"]  # dense.py's activations the conv kernels fuse


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", FUSED)
@EXAMPLES
@given(g=conv_geometry(), data=st.data())
def test_conv2d_with_activation_matches_reference(dtype, activation, g, data):
    """Forward act(conv2d + b), and the backward through it: a_bar = y_bar · act'(y), then the
    three gradients of the plain convolution at a_bar."""
    B, C_in, C_out, H, W, kH, kW, s, p, _ = g
    x, w = data.draw(arrays(dtype, (B, C_in, H, W))), data.draw(arrays(dtype, (C_out, C_in, kH, kW)))
    b = data.draw(arrays(dtype, (C_out,)))
    code, slope = dense.ACTIVATIONS[activation], 0.1
    y = conv.conv2d_forward(x, w, b, s, p, activation=code, slope=slope)
    with np.errstate(over="ignore"):  # the twin's naive sigmoid may overflow exp(-a)
        y_ref = dense_reference.activate(reference.conv2d_forward(x, w, b, s, p), activation, slope)
    assert_close(y, y_ref, dtype, f"conv2d_forward + {activation}")
    y_bar = data.draw(arrays(dtype, y.shape))
    a_bar = dense_reference.act_backward(y, y_bar, activation, slope)
    x_bar, w_bar, b_bar = conv.conv2d_backward(y_bar, x, w, s, p, y=y, activation=code, slope=slope)
    assert_close(x_bar, reference.conv2d_backward_input(a_bar, w, x.shape, s, p), dtype, "x_bar")
    for mine, theirs, what in zip((w_bar, b_bar), reference.conv2d_backward_weight(x, a_bar, w.shape, s, p),
                                  ("w_bar", "b_bar")):
        assert_close(mine, theirs, dtype, f"conv2d_backward {what} through {activation}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", FUSED)
@EXAMPLES
@given(g=conv_geometry(transposed=True), data=st.data())
def test_conv_transpose2d_forward_with_activation_matches_reference(dtype, activation, g, data):
    B, C_in, C_out, H, W, kH, kW, s, p, op = g
    x, w = data.draw(arrays(dtype, (B, C_in, H, W))), data.draw(arrays(dtype, (C_in, C_out, kH, kW)))
    b = data.draw(arrays(dtype, (C_out,)))
    y = conv.conv_transpose2d_forward(x, w, b, s, p, op, activation=dense.ACTIVATIONS[activation], slope=0.1)
    with np.errstate(over="ignore"):
        y_ref = dense_reference.activate(reference.conv_transpose2d_forward(x, w, b, s, p, op), activation, 0.1)
    assert_close(y, y_ref, dtype, f"conv_transpose2d_forward + {activation}")


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(g=conv_geometry(), data=st.data())
def test_conv2d_backward_input_matches_reference(dtype, g, data):
    B, C_in, C_out, H, W, kH, kW, s, p, _ = g
    y_bar = data.draw(arrays(dtype, (B, C_out, *conv_out(H, W, kH, kW, s, p))))
    w = data.draw(arrays(dtype, (C_out, C_in, kH, kW)))
    x_shape = (B, C_in, H, W)
    assert_close(conv2d_backward_input(y_bar, w, x_shape, s, p),
                 reference.conv2d_backward_input(y_bar, w, x_shape, s, p), dtype, "conv2d_backward_input")


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(g=conv_geometry(), data=st.data())
def test_conv2d_backward_weight_matches_reference(dtype, g, data):
    B, C_in, C_out, H, W, kH, kW, s, p, _ = g
    x = data.draw(arrays(dtype, (B, C_in, H, W)))
    y_bar = data.draw(arrays(dtype, (B, C_out, *conv_out(H, W, kH, kW, s, p))))
    w_bar, b_bar = conv2d_backward_weight(x, y_bar, (C_out, C_in, kH, kW), s, p)
    w_bar_ref, b_bar_ref = reference.conv2d_backward_weight(x, y_bar, (C_out, C_in, kH, kW), s, p)
    assert_close(w_bar, w_bar_ref, dtype, "conv2d_backward_weight w_bar")
    assert_close(b_bar, b_bar_ref, dtype, "conv2d_backward_weight b_bar")


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(g=conv_geometry(transposed=True), with_bias=st.booleans(), data=st.data())
def test_conv_transpose2d_forward_matches_reference(dtype, g, with_bias, data):
    B, C_in, C_out, H, W, kH, kW, s, p, op = g
    x, w = data.draw(arrays(dtype, (B, C_in, H, W))), data.draw(arrays(dtype, (C_in, C_out, kH, kW)))
    b = data.draw(arrays(dtype, (C_out,))) if with_bias else None
    assert_close(conv.conv_transpose2d_forward(x, w, b, s, p, op),
                 reference.conv_transpose2d_forward(x, w, b, s, p, op), dtype, "conv_transpose2d_forward")


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(g=conv_geometry(transposed=True), data=st.data())
def test_conv_transpose2d_backward_input_matches_reference(dtype, g, data):
    B, C_in, C_out, H, W, kH, kW, s, p, op = g
    y_bar = data.draw(arrays(dtype, (B, C_out, *convT_out(H, W, kH, kW, s, p, op))))
    w = data.draw(arrays(dtype, (C_in, C_out, kH, kW)))
    x = data.draw(arrays(dtype, (B, C_in, H, W)))
    x_bar, _, _ = conv.conv_transpose2d_backward(y_bar, x, w, s, p)
    assert_close(x_bar, reference.conv_transpose2d_backward_input(y_bar, w, x.shape, s, p), dtype,
                 "conv_transpose2d_backward x_bar")


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(g=conv_geometry(transposed=True), data=st.data())
def test_conv_transpose2d_backward_weight_matches_reference(dtype, g, data):
    B, C_in, C_out, H, W, kH, kW, s, p, op = g
    x = data.draw(arrays(dtype, (B, C_in, H, W)))
    y_bar = data.draw(arrays(dtype, (B, C_out, *convT_out(H, W, kH, kW, s, p, op))))
    w = data.draw(arrays(dtype, (C_in, C_out, kH, kW)))
    _, w_bar, b_bar = conv.conv_transpose2d_backward(y_bar, x, w, s, p)
    w_bar_ref, b_bar_ref = reference.conv_transpose2d_backward_weight(x, y_bar, (C_in, C_out, kH, kW), s, p)
    assert_close(w_bar, w_bar_ref, dtype, "conv_transpose2d_backward_weight w_bar")
    assert_close(b_bar, b_bar_ref, dtype, "conv_transpose2d_backward_weight b_bar")


@EXAMPLES
@given(g=conv_geometry(transposed=True), data=st.data())
def test_reference_transposed_conv_is_conv2d_input_backward(g, data):
    """The twins' scatter form of the transposed conv equals conv2d's input-backward with the same w."""
    B, C_in, C_out, H, W, kH, kW, s, p, op = g
    x, w = data.draw(arrays(np.float64, (B, C_in, H, W))), data.draw(arrays(np.float64, (C_in, C_out, kH, kW)))
    y_shape = (B, C_out, *convT_out(H, W, kH, kW, s, p, op))
    np.testing.assert_allclose(reference.conv_transpose2d_forward(x, w, None, s, p, op),
                               reference.conv2d_backward_input(x, w, y_shape, s, p), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- adjoint identities, float64


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(g=conv_geometry(), with_bias=st.booleans(), data=st.data())
def test_masked_conv2d_matches_reference_with_masked_weight(dtype, g, with_bias, data):
    """A mask computes only the taps it keeps; the result is the twin's with w * mask, and w_bar is
    zero off the mask - for any mask, not only PixelCNN's."""
    B, C_in, C_out, H, W, kH, kW, s, p, _ = g
    x, w = data.draw(arrays(dtype, (B, C_in, H, W))), data.draw(arrays(dtype, (C_out, C_in, kH, kW)))
    b = data.draw(arrays(dtype, (C_out,))) if with_bias else None
    mask = data.draw(hnp.arrays(dtype, (kH, kW), elements=st.sampled_from([0.0, 1.0])))
    y = conv.conv2d_forward(x, w, b, s, p, mask)
    assert_close(y, reference.conv2d_forward(x, w * mask, b, s, p), dtype, "masked conv2d_forward")
    y_bar = data.draw(arrays(dtype, y.shape))
    x_bar, w_bar, b_bar = conv.conv2d_backward(y_bar, x, w, s, p, mask)
    w_bar_ref, b_bar_ref = reference.conv2d_backward_weight(x, y_bar, w.shape, s, p)
    assert_close(x_bar, reference.conv2d_backward_input(y_bar, w * mask, x.shape, s, p), dtype, "masked x_bar")
    assert_close(w_bar, w_bar_ref * mask, dtype, "masked w_bar")
    assert_close(b_bar, b_bar_ref, dtype, "masked b_bar")


# ---------------------------------------------------------------- chunks of the batch, worker threads


def all_outputs(transposed, x, w, b, y_bar, s, p):
    """Every array a layer's kernels produce: y, x_bar, w_bar, b_bar."""
    if transposed:
        return (conv.conv_transpose2d_forward(x, w, b, s, p, 1), *conv.conv_transpose2d_backward(y_bar, x, w, s, p))
    return (conv.conv2d_forward(x, w, b, s, p), *conv.conv2d_backward(y_bar, x, w, s, p))


def reference_outputs(transposed, x, w, b, y_bar, s, p):
    if transposed:
        return (reference.conv_transpose2d_forward(x, w, b, s, p, 1),
                reference.conv_transpose2d_backward_input(y_bar, w, x.shape, s, p),
                *reference.conv_transpose2d_backward_weight(x, y_bar, w.shape, s, p))
    return (reference.conv2d_forward(x, w, b, s, p), reference.conv2d_backward_input(y_bar, w, x.shape, s, p),
            *reference.conv2d_backward_weight(x, y_bar, w.shape, s, p))


def a_layer(transposed, seed=7):
    """(x, w, b, y_bar, stride, padding) of a small layer with 7 samples."""
    rng = np.random.default_rng(seed)
    B, C_in, C_out, H, k, s, p = 7, 3, 4, 6, 3, 2, 1
    x = rng.standard_normal((B, C_in, H, H))
    w = rng.standard_normal((C_in, C_out, k, k) if transposed else (C_out, C_in, k, k))
    H_out = F.conv_transpose_output_size(H, k, s, p, 1) if transposed else F.conv_output_size(H, k, s, p)
    return x, w, rng.standard_normal(C_out), rng.standard_normal((B, C_out, H_out, H_out)), s, p


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("per_chunk", [1, 3])  # 7 samples: 7 chunks; or 3 + 3 + a short last chunk of 1
def test_chunks_of_the_batch_give_the_same_result(monkeypatch, transposed, per_chunk):
    """The kernels walk the batch in chunks sized by COLS_BYTES; the cut must not show in any output."""
    x, w, b, y_bar, s, p = a_layer(transposed)
    monkeypatch.setattr(conv, "_chunk_size", lambda B, bytes_per_sample: per_chunk)
    names = ("y", "x_bar", "w_bar", "b_bar")
    for mine, theirs, what in zip(all_outputs(transposed, x, w, b, y_bar, s, p),
                                  reference_outputs(transposed, x, w, b, y_bar, s, p), names):
        assert_close(mine, theirs, np.float64, f"{what}, {per_chunk} samples per chunk")


@pytest.mark.parametrize("transposed", [False, True])
def test_any_number_of_worker_threads_gives_the_same_result(transposed):
    """1, 2 or 3 workers (more workers than chunks included) agree with the twins, and a run
    repeats itself exactly: each worker's share of the batch is fixed by its number."""
    x, w, b, y_bar, s, p = a_layer(transposed, seed=11)
    expected = reference_outputs(transposed, x, w, b, y_bar, s, p)
    before = threads.get_num_threads()
    try:
        for n in (1, 2, 3, 8):
            threads.set_num_threads(n)
            first = all_outputs(transposed, x, w, b, y_bar, s, p)
            again = all_outputs(transposed, x, w, b, y_bar, s, p)
            for mine, repeat, theirs, what in zip(first, again, expected, ("y", "x_bar", "w_bar", "b_bar")):
                assert_close(mine, theirs, np.float64, f"{what} with {n} workers")
                np.testing.assert_array_equal(mine, repeat, err_msg=f"{what}: two runs with {n} workers differ")
    finally:
        threads.set_num_threads(before)


def test_kernels_called_from_inside_a_worker_run_there():
    """A layer run from inside a worker's work (nested) does all its chunks in that worker."""
    x, w, b, y_bar, s, p = a_layer(False, seed=5)
    expected = reference_outputs(False, x, w, b, y_bar, s, p)
    results = {}
    threads.run(lambda worker, n_workers: results.setdefault(worker, all_outputs(False, x, w, b, y_bar, s, p)))
    for outputs in results.values():
        for mine, theirs, what in zip(outputs, expected, ("y", "x_bar", "w_bar", "b_bar")):
            assert_close(mine, theirs, np.float64, f"{what} from inside a worker")


def inner(a, b):
    return float(np.sum(a * b))


@EXAMPLES
@given(g=conv_geometry(), seed=st.integers(0, 2**32 - 1))
def test_conv2d_backwards_are_adjoints(g, seed):
    """<conv(x; w), y> = <x, backward_input(y)> = <w, backward_weight(x, y)>, and <y, b> = <b_bar, b>."""
    B, C_in, C_out, H, W, kH, kW, s, p, _ = g
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((B, C_in, H, W)), rng.standard_normal((C_out, C_in, kH, kW))
    b = rng.standard_normal(C_out)
    y = rng.standard_normal((B, C_out, *conv_out(H, W, kH, kW, s, p)))  # a random, non-uniform cotangent
    lhs = inner(conv.conv2d_forward(x, w, None, s, p), y)
    w_bar, b_bar = conv2d_backward_weight(x, y, w.shape, s, p)
    assert np.isclose(lhs, inner(x, conv2d_backward_input(y, w, x.shape, s, p)), rtol=1e-10, atol=1e-10)
    assert np.isclose(lhs, inner(w, w_bar), rtol=1e-10, atol=1e-10)
    with_bias = conv.conv2d_forward(x, w, b, s, p) - conv.conv2d_forward(x, w, None, s, p)
    assert np.isclose(inner(with_bias, y), inner(b, b_bar), rtol=1e-10, atol=1e-10)


@EXAMPLES
@given(g=conv_geometry(transposed=True), seed=st.integers(0, 2**32 - 1))
def test_conv_transpose2d_backwards_are_adjoints(g, seed):
    B, C_in, C_out, H, W, kH, kW, s, p, op = g
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((B, C_in, H, W)), rng.standard_normal((C_in, C_out, kH, kW))
    y = rng.standard_normal((B, C_out, *convT_out(H, W, kH, kW, s, p, op)))
    lhs = inner(conv.conv_transpose2d_forward(x, w, None, s, p, op), y)
    x_bar, w_bar, _ = conv.conv_transpose2d_backward(y, x, w, s, p)
    assert np.isclose(lhs, inner(x, x_bar), rtol=1e-10, atol=1e-10)
    assert np.isclose(lhs, inner(w, w_bar), rtol=1e-10, atol=1e-10)
    # and the transposed conv is the adjoint of conv2d with the same weight: <convT(x), y> = <x, conv(y)>
    assert np.isclose(lhs, inner(x, conv.conv2d_forward(y, w, None, s, p)), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- output sizes


@given(h=st.integers(1, 40), k=st.integers(1, 9), s=st.integers(1, 4), p=st.integers(0, 4))
def test_conv_output_size_counts_the_windows_that_fit(h, k, s, p):
    fits = [start for start in range(0, h + 2 * p, s) if start + k <= h + 2 * p]
    if not fits:
        with pytest.raises(ValueError):
            F.conv_output_size(h, k, s, p)
    else:
        assert F.conv_output_size(h, k, s, p) == len(fits)


@given(h=st.integers(1, 20), k=st.integers(1, 9), s=st.integers(1, 4), p=st.integers(0, 4), data=st.data())
def test_conv_transpose_output_size_inverts_conv_output_size(h, k, s, p, data):
    """A transposed conv of size h -> h_out is the adjoint of a conv of size h_out -> h."""
    op = data.draw(st.integers(0, s - 1))
    assume((h - 1) * s + k + op > 2 * p)
    h_out = F.conv_transpose_output_size(h, k, s, p, op)
    assert h_out == (h - 1) * s - 2 * p + k + op
    assert F.conv_output_size(h_out, k, s, p) == h


@pytest.mark.parametrize("args", [(3, 5, 1, 0), (4, 3, 0, 1), (4, 3, 1, -1), (0, 1, 1, 0)])
def test_conv_output_size_refuses_bad_geometry(args):
    with pytest.raises(ValueError):
        F.conv_output_size(*args)


@pytest.mark.parametrize("args", [(4, 3, 2, 1, 2), (4, 3, 1, 0, 1), (1, 1, 1, 1, 0), (4, 3, 0, 1, 0)])
def test_conv_transpose_output_size_refuses_bad_geometry(args):
    with pytest.raises(ValueError):
        F.conv_transpose_output_size(*args)


@pytest.mark.parametrize("H, k, s, p, op, expected", [(7, 4, 2, 1, 0, 14), (14, 4, 2, 1, 0, 28), (7, 3, 2, 1, 1, 14)])
def test_conv_transpose2d_output_shape(H, k, s, p, op, expected):
    x, w = np.ones((2, 3, H, H + 1)), np.ones((3, 5, k, k))
    y = conv.conv_transpose2d_forward(x, w, None, s, p, op)
    assert y.shape == (2, 5, expected, F.conv_transpose_output_size(H + 1, k, s, p, op))


# ---------------------------------------------------------------- PixelCNN masks


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_pixelcnn_mask_sees_only_earlier_pixels(mask_type, k):
    mask = nn.pixelcnn_mask(k, mask_type)
    assert mask.shape == (k, k)
    c = k // 2
    for i in range(k):
        for j in range(k):
            before = (i, j) < (c, c)  # raster order
            expected = before or (mask_type == "B" and (i, j) == (c, c))
            assert mask[i, j] == expected, (mask_type, k, i, j)
    assert mask.sum() == c * k + c + (mask_type == "B")


def test_pixelcnn_mask_examples():
    a = nn.pixelcnn_mask(3, "A")
    b = nn.pixelcnn_mask(3, "B")
    np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])


@pytest.mark.parametrize("mask_type, k", [("C", 3), ("a", 3), ("A", 4), ("B", 0)])
def test_pixelcnn_mask_refuses_bad_arguments(mask_type, k):
    with pytest.raises(ValueError):
        nn.pixelcnn_mask(k, mask_type)


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_output_depends_only_on_earlier_pixels(mask_type):
    """Through the kernels with the mask (w itself is dense), output pixel q's gradient reaches only
    input pixels before q in raster order (and q itself for 'B'): the autoregressive property the
    mask exists for."""
    k, H, W = 5, 6, 7
    w, mask = np.random.default_rng(0).uniform(0.5, 1.5, (3, 2, k, k)), nn.pixelcnn_mask(k, mask_type)
    for q in [(0, 0), (2, 3), (5, 6)]:
        y_bar = np.zeros((1, 3, H, W))
        y_bar[0, 1, q[0], q[1]] = 1.0
        x_bar = conv2d_backward_input(y_bar, w, (1, 2, H, W), 1, k // 2, mask)
        reaches = {(i, j) for i in range(H) for j in range(W) if np.any(x_bar[0, :, i, j] != 0)}
        allowed = {(i, j) for i in range(H) for j in range(W) if (i, j) < q or (mask_type == "B" and (i, j) == q)}
        assert reaches <= allowed, (mask_type, q, sorted(reaches - allowed))
        assert (mask_type == "B") == (q in reaches)


# ---------------------------------------------------------------- layout and dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_accept_non_contiguous_inputs_and_keep_dtype(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 9, 8)).astype(dtype).transpose(0, 1, 3, 2)  # (3, 2, 8, 9), not contiguous
    w = rng.standard_normal((4, 2, 3, 3)).astype(dtype)[:, :, ::-1]  # negative strides
    y = conv.conv2d_forward(x, w, None, 2, 1)
    assert_close(y, reference.conv2d_forward(x, w, None, 2, 1), dtype, "non-contiguous conv2d_forward")
    w_bar, b_bar = conv2d_backward_weight(x, y, w.shape, 2, 1)
    assert w_bar.dtype == b_bar.dtype == dtype and w_bar.flags.c_contiguous


# ---------------------------------------------------------------- PyTorch as an outside witness


@pytest.mark.parametrize("transposed, C_in, C_out, k, s, p, op, H", [
    (False, 1, 32, 4, 2, 1, 0, 28), (False, 32, 64, 4, 2, 1, 0, 14), (False, 32, 32, 3, 1, 1, 0, 28),
    (False, 3, 5, 7, 1, 3, 0, 9), (True, 64, 32, 4, 2, 1, 0, 7), (True, 32, 1, 4, 2, 1, 0, 14),
    (True, 3, 4, 3, 2, 1, 1, 5), (True, 2, 3, 5, 3, 2, 2, 4),
])
def test_matches_torch(transposed, C_in, C_out, k, s, p, op, H):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, C_in, H, H + 1))
    w = rng.standard_normal((C_in, C_out, k, k) if transposed else (C_out, C_in, k, k))
    b = rng.standard_normal(C_out)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    if transposed:
        yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, s, p, op)
        y = conv.conv_transpose2d_forward(x, w, b, s, p, op)
    else:
        yt = torch.nn.functional.conv2d(xt, wt, bt, s, p)
        y = conv.conv2d_forward(x, w, b, s, p)
    y_bar = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(y_bar))
    if transposed:
        x_bar, w_bar, b_bar = conv.conv_transpose2d_backward(y_bar, x, w, s, p)
    else:
        x_bar, w_bar, b_bar = conv.conv2d_backward(y_bar, x, w, s, p)
    for mine, theirs, what in [(y, yt.detach(), "y"), (x_bar, xt.grad, "x_bar"), (w_bar, wt.grad, "w_bar"),
                               (b_bar, bt.grad, "b_bar")]:
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-9, atol=1e-9, err_msg=f"{what}: mine vs torch")


# ---------------------------------------------------------------- the numpy door against the twins


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(g=conv_geometry(), data=st.data())
def test_numpy_doors_im2col_and_col2im_are_the_element_by_element_loops(dtype, g, data):
    B, C_in, _, H, W, kH, kW, s, p, _ = g
    x = data.draw(arrays(dtype, (B, C_in, H, W)))
    cols = numpy_conv.im2col(x, kH, kW, s, p)
    assert_close(cols, reference.im2col(x, kH, kW, s, p), dtype, "numpy door im2col")
    cols_bar = data.draw(arrays(dtype, cols.shape))
    assert_close(numpy_conv.col2im(cols_bar, x.shape, kH, kW, s, p),
                 reference.col2im(cols_bar, x.shape, kH, kW, s, p), dtype, "numpy door col2im")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["identity"] + FUSED)
@EXAMPLES
@given(g=conv_geometry(), masked=st.booleans(), data=st.data())
def test_numpy_doors_conv2d_matches_the_twins(dtype, activation, g, masked, data):
    """act(conv2d(x, w·mask) + b) and its three gradients, by im2col, against the loop over kernel
    offsets; w_bar zero off the mask."""
    B, C_in, C_out, H, W, kH, kW, s, p, _ = g
    x, w = data.draw(arrays(dtype, (B, C_in, H, W))), data.draw(arrays(dtype, (C_out, C_in, kH, kW)))
    b = data.draw(arrays(dtype, (C_out,)))
    mask = data.draw(hnp.arrays(dtype, (kH, kW), elements=st.sampled_from([0.0, 1.0]))) if masked else None
    w_used = w if mask is None else w * mask
    y = numpy_conv.conv2d(x, w, b, s, p, mask, activation, 0.1)
    with np.errstate(over="ignore"):
        assert_close(y, dense_reference.activate(reference.conv2d_forward(x, w_used, b, s, p),
                                                 activation, 0.1), dtype, "y")
    y_bar = data.draw(arrays(dtype, y.shape))
    x_bar, w_bar, b_bar = numpy_conv.conv2d_backward(y_bar, x, w, y, s, p, mask, activation, 0.1)
    a_bar = dense_reference.act_backward(y, y_bar, activation, 0.1)
    w_bar_ref, b_bar_ref = reference.conv2d_backward_weight(x, a_bar, w.shape, s, p)
    assert_close(x_bar, reference.conv2d_backward_input(a_bar, w_used, x.shape, s, p), dtype, "x_bar")
    assert_close(w_bar, w_bar_ref if mask is None else w_bar_ref * mask, dtype, "w_bar")
    assert_close(b_bar, b_bar_ref, dtype, "b_bar")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["identity"] + FUSED)
@EXAMPLES
@given(g=conv_geometry(transposed=True), data=st.data())
def test_numpy_doors_conv_transpose2d_matches_the_twins(dtype, activation, g, data):
    """act(conv_transpose2d(x, w) + b) and its three gradients, as col2im(Wᵀ @ x), against the
    scatter over kernel offsets."""
    B, C_in, C_out, H, W, kH, kW, s, p, op = g
    x, w = data.draw(arrays(dtype, (B, C_in, H, W))), data.draw(arrays(dtype, (C_in, C_out, kH, kW)))
    b = data.draw(arrays(dtype, (C_out,)))
    y = numpy_conv.conv_transpose2d(x, w, b, s, p, op, activation, 0.1)
    with np.errstate(over="ignore"):
        assert_close(y, dense_reference.activate(reference.conv_transpose2d_forward(x, w, b, s, p, op),
                                                 activation, 0.1), dtype, "y")
    y_bar = data.draw(arrays(dtype, y.shape))
    x_bar, w_bar, b_bar = numpy_conv.conv_transpose2d_backward(y_bar, x, w, y, s, p, activation, 0.1)
    a_bar = dense_reference.act_backward(y, y_bar, activation, 0.1)
    w_bar_ref, b_bar_ref = reference.conv_transpose2d_backward_weight(x, a_bar, w.shape, s, p)
    assert_close(x_bar, reference.conv_transpose2d_backward_input(a_bar, w, x.shape, s, p), dtype, "x_bar")
    assert_close(w_bar, w_bar_ref, dtype, "w_bar")
    assert_close(b_bar, b_bar_ref, dtype, "b_bar")
