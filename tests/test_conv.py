"""Convolution layers through the engine: gradients, output sizes, mask causality, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minivae
from minivae import functional as F
from minivae import nn
from minivae.tensor import Tensor


@st.composite
def conv_case(draw, transposed=False):
    """Small random shapes, kernels, strides and paddings that give a non-empty output."""
    B, C_in, C_out = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k, stride = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    padding = draw(st.integers(0, k - 1))
    H = draw(st.integers(max(1, k - 2 * padding), 5))
    W = draw(st.integers(max(1, k - 2 * padding), 5))
    output_padding = draw(st.integers(0, stride - 1)) if transposed else 0
    if transposed and (min(H, W) - 1) * stride - 2 * padding + k + output_padding < 1:
        padding = 0
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, C_in, H, W))
    w_shape = (C_in, C_out, k, k) if transposed else (C_out, C_in, k, k)
    return x, rng.standard_normal(w_shape), rng.standard_normal(C_out), stride, padding, \
        output_padding


@settings(max_examples=40)
@given(conv_case())
def test_conv2d_gradcheck(case):
    x, w, b, stride, padding, _ = case
    minivae.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding), x, w, b)


@settings(max_examples=40)
@given(conv_case(transposed=True))
def test_conv_transpose2d_gradcheck(case):
    x, w, b, stride, padding, output_padding = case
    minivae.gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, stride, padding,
                                                         output_padding), x, w, b)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])  # smooth, so finite differences hold
@settings(max_examples=15)
@given(case=conv_case(), transposed_case=conv_case(transposed=True))
def test_fused_activation_gradcheck(activation, case, transposed_case):
    x, w, b, stride, padding, _ = case
    minivae.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, activation=activation), x, w, b)
    x, w, b, stride, padding, op = transposed_case
    minivae.gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, stride, padding, op,
                                                         activation=activation), x, w, b)


def test_a_conv_layers_activation_runs_in_its_op():
    """Conv2d(activation='relu') and ConvTranspose2d(activation='tanh') are one op each, with the
    values of the plain layers followed by their activation modules."""
    kw = dict(dtype=np.float64)
    fused = nn.Sequential(nn.Conv2d(2, 3, 3, 1, 1, rng=np.random.default_rng(0), activation="relu", **kw),
                          nn.ConvTranspose2d(3, 2, 4, 2, 1, rng=np.random.default_rng(1), activation="tanh",
                                             **kw))
    apart = nn.Sequential(nn.Conv2d(2, 3, 3, 1, 1, rng=np.random.default_rng(0), **kw), nn.ReLU(),
                          nn.ConvTranspose2d(3, 2, 4, 2, 1, rng=np.random.default_rng(1), **kw), nn.Tanh())
    x = Tensor(np.random.default_rng(2).standard_normal((2, 2, 5, 5)), requires_grad=True)
    y = fused(x)
    assert y._fn is F.ConvTranspose2dBiasAct and y._ctx.inputs[0]._fn is F.Conv2dBiasAct
    np.testing.assert_allclose(y.data, apart(x).data, rtol=1e-12, atol=1e-12)
    assert list(fused.state_dict()) == list(apart.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


@pytest.mark.parametrize("H, k, stride, padding", [(28, 4, 2, 1), (14, 4, 2, 1), (28, 7, 1, 3),
                                                   (28, 3, 1, 1), (5, 3, 2, 0), (6, 1, 3, 0)])
def test_conv2d_output_size_formula(H, k, stride, padding):
    layer = nn.Conv2d(2, 3, k, stride, padding, rng=np.random.default_rng(0))
    y = layer(Tensor(np.zeros((1, 2, H, H), np.float32)))
    assert y.shape == (1, 3, (H + 2 * padding - k) // stride + 1, (H + 2 * padding - k) // stride + 1)
    assert y.dtype == np.float32


@pytest.mark.parametrize("H, k, stride, padding, output_padding",
                         [(7, 4, 2, 1, 0), (14, 4, 2, 1, 0), (7, 3, 2, 1, 1), (4, 3, 3, 0, 2),
                          (5, 5, 1, 2, 0)])
def test_conv_transpose2d_output_size_formula(H, k, stride, padding, output_padding):
    layer = nn.ConvTranspose2d(2, 3, k, stride, padding, output_padding,
                               rng=np.random.default_rng(0))
    y = layer(Tensor(np.zeros((1, 2, H, H), np.float32)))
    H_out = (H - 1) * stride - 2 * padding + k + output_padding
    assert y.shape == (1, 3, H_out, H_out)


def test_transposed_conv_is_the_adjoint_of_conv():
    """<conv(x), y> = <x, conv_transpose(y)> with the same weight and no bias."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    y = rng.standard_normal((2, 4, 4, 4))
    lhs = np.sum(F.conv2d(Tensor(x), Tensor(w), None, 2, 0).data * y)
    rhs = np.sum(x * F.conv_transpose2d(Tensor(y), Tensor(w), None, 2, 0).data)
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_pytorch_initialisation_bounds():
    conv = nn.Conv2d(32, 64, 4, rng=np.random.default_rng(0))
    assert np.abs(conv.weight.data).max() <= 1 / np.sqrt(32 * 16)
    assert np.abs(conv.weight.data).max() > 0.9 / np.sqrt(32 * 16)
    convt = nn.ConvTranspose2d(64, 32, 4, rng=np.random.default_rng(0))
    assert convt.weight.shape == (64, 32, 4, 4)
    assert np.abs(convt.weight.data).max() <= 1 / np.sqrt(32 * 16)  # fan_in counts axis 1


# ---------------------------------------------------------------- PixelCNN masks


def input_gradients_of_pixel(model, x: np.ndarray, i: int) -> np.ndarray:
    """d output[0, :, pixel i] / d x, summed over output channels, with minivae's autodiff."""
    xt = Tensor(x, requires_grad=True)
    y = model(xt)  # (1, C, H, W)
    H, W = x.shape[2:]
    y_bar = np.zeros(y.shape)
    y_bar[0, :, i // W, i % W] = np.random.default_rng(i).standard_normal(y.shape[1])
    y.backward(y_bar)
    return np.abs(xt.grad[0]).sum(axis=0).ravel()  # (H·W,) in raster order


def test_masked_stack_is_causal_in_raster_order():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.MaskedConv2d(1, 4, 5, "A", rng=rng, dtype=np.float64), nn.ReLU(),
                          nn.MaskedConv2d(4, 4, 3, "B", rng=rng, dtype=np.float64), nn.ReLU(),
                          nn.MaskedConv2d(4, 4, 3, "B", rng=rng, dtype=np.float64), nn.ReLU(),
                          nn.MaskedConv2d(4, 2, 3, "B", rng=rng, dtype=np.float64))
    x = rng.uniform(0.1, 1, size=(1, 1, 7, 7))
    for i in range(0, 49, 3):
        g = input_gradients_of_pixel(model, x, i)
        assert np.all(g[i:] == 0), f"output pixel {i} depends on input pixels {np.nonzero(g[i:])[0] + i}"
        if i > 0:
            assert g[:i].max() > 0, f"output pixel {i} sees no earlier pixel: the mask is dead"


def test_mask_type_b_sees_the_centre_and_a_does_not():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1, size=(1, 1, 5, 5))
    for mask_type, sees_centre in (("A", False), ("B", True)):
        layer = nn.MaskedConv2d(1, 1, 3, mask_type, rng=rng, dtype=np.float64)
        layer.weight.data[:] = 1
        g = input_gradients_of_pixel(layer, x, 12)
        assert (g[12] > 0) == sees_centre


def test_masked_weight_gradient_is_masked():
    layer = nn.MaskedConv2d(2, 3, 5, "A", rng=np.random.default_rng(0))
    assert np.all(layer.weight.data[:, :, layer.mask == 0] == 0)  # hidden weights start at zero
    y = layer(Tensor(np.random.default_rng(1).standard_normal((2, 2, 6, 6)).astype(np.float32)))
    y.backward(np.ones(y.shape, np.float32))
    assert np.all(layer.weight.grad[:, :, layer.mask == 0] == 0)
    assert np.all(layer.weight.grad[:, :, layer.mask == 1] != 0)


@settings(max_examples=30)
@given(conv_case(), st.data())
def test_masked_conv2d_gradcheck_and_equals_the_masked_weight(case, data):
    """conv2d(x, W, mask=m) is conv2d(x, W·m): same output, same x_bar and b_bar, and W_bar is the
    masked weight's gradient - checked against the plain op, and by finite differences."""
    x, w, b, stride, padding, _ = case
    k = w.shape[2]
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=k * k, max_size=k * k)), float).reshape(k, k)
    minivae.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, mask=mask), x, w, b)
    ours = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    plain = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*ours, stride, padding, mask=mask)
    y_plain = F.conv2d(plain[0], plain[1] * Tensor(mask), plain[2], stride, padding)
    np.testing.assert_allclose(y.data, y_plain.data, rtol=1e-12, atol=1e-12)
    y_bar = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(y_bar)
    y_plain.backward(y_bar)
    for mine, expected in zip(ours, plain):
        np.testing.assert_allclose(mine.grad, expected.grad, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- bad input


def test_channel_mismatch_names_both_shapes():
    layer = nn.Conv2d(3, 8, 3)
    with pytest.raises(ValueError, match=r"\(2, 4, 9, 9\).*\(8, 3, 3, 3\)"):
        layer(Tensor(np.zeros((2, 4, 9, 9), np.float32)))
    with pytest.raises(ValueError, match=r"\(2, 4, 9, 9\).*\(3, 8, 3, 3\)"):
        nn.ConvTranspose2d(3, 8, 3)(Tensor(np.zeros((2, 4, 9, 9), np.float32)))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"kernel 7×7.*larger than the input \(1, 1, 4, 4\)"):
        nn.Conv2d(1, 1, 7, padding=1)(Tensor(np.zeros((1, 1, 4, 4), np.float32)))


def test_input_must_be_4d():
    with pytest.raises(ValueError, match=r"4-D.*\(1, 28, 28\)"):
        nn.Conv2d(1, 2, 3)(Tensor(np.zeros((1, 28, 28), np.float32)))


def test_mask_of_the_wrong_shape_names_both_shapes():
    x, w = Tensor(np.zeros((1, 2, 5, 5))), Tensor(np.zeros((3, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"mask of shape \(2, 3\).*3×3.*\(3, 2, 3, 3\)"):
        F.conv2d(x, w, mask=np.ones((2, 3)))


def test_masked_conv_refuses_an_even_kernel_and_an_unknown_type():
    with pytest.raises(ValueError, match="odd"):
        nn.MaskedConv2d(1, 4, 4, "A")
    with pytest.raises(ValueError, match="mask_type"):
        nn.MaskedConv2d(1, 4, 3, "C")


# ---------------------------------------------------------------- side by side with PyTorch


@pytest.mark.parametrize("transposed", [False, True])
def test_matches_pytorch(transposed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 9, 9))
    w = rng.standard_normal((4, 5, 3, 3) if transposed else (5, 4, 3, 3))
    b = rng.standard_normal(5)
    y_bar = None
    ours, theirs = [Tensor(a, requires_grad=True) for a in (x, w, b)], \
        [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    if transposed:
        y = F.conv_transpose2d(*ours, stride=2, padding=1, output_padding=1)
        t = torch.nn.functional.conv_transpose2d(*theirs, stride=2, padding=1, output_padding=1)
    else:
        y = F.conv2d(*ours, stride=2, padding=1)
        t = torch.nn.functional.conv2d(*theirs, stride=2, padding=1)
    np.testing.assert_allclose(y.data, t.detach().numpy(), rtol=1e-10, atol=1e-10)
    y_bar = rng.standard_normal(y.shape)
    y.backward(y_bar)
    t.backward(torch.tensor(y_bar))
    for mine, ref in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad, ref.grad.numpy(), rtol=1e-10, atol=1e-10)
