"""The gated PixelCNN: masks, causality with no blind spot, a normalised p(x | y), exact sampling.

Exactness claims run in float64: the gradient of every logit with respect to every pixel is exactly
zero outside the designed receptive field (and nonzero inside it), the 512 binary 3×3 images'
probabilities add up to 1, and the cached sampler draws the very images of the naive one.
"""
import itertools

import numpy as np
import pytest

from minivae import nn
from minivae.nn import pixelcnn_mask
from minivae.models.pixelcnn import FIRST_KERNEL, PASS, PixelCNN
from minivae.tensor import Tensor, no_grad


def small(H=8, W=8, channels=3, layers=2, kernel_size=3, cond_dim=2, dtype=np.float64, seed=0):
    return PixelCNN((1, H, W), channels, layers, kernel_size, cond_dim,
                    rng=np.random.default_rng(seed), dtype=dtype)


def binary(shape, seed=1, dtype=np.float64):
    return (np.random.default_rng(seed).random(shape) < 0.5).astype(dtype)


# ---------------------------------------------------------------- masks


def taps(mask):
    """{(di, dj)}: the offsets from the centre that a mask lets through."""
    c = mask.shape[0] // 2
    return {(i - c, j - c) for i, j in zip(*np.nonzero(mask))}


@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_every_mask_holds_exactly_its_taps(k):
    p = k // 2
    square = {(di, dj) for di in range(-p, p + 1) for dj in range(-p, p + 1)}
    earlier = {(di, dj) for di, dj in square if di < 0 or (di == 0 and dj < 0)}
    expected = {
        "A": earlier,
        "B": earlier | {(0, 0)},
        "V": {(di, dj) for di, dj in square if di <= 0},
        "HA": {(0, dj) for dj in range(-p, 0)},
        "HB": {(0, dj) for dj in range(-p, 1)},
    }
    for mask_type, offsets in expected.items():
        assert taps(pixelcnn_mask(k, mask_type)) == offsets, mask_type


def test_mask_tap_counts_at_the_networks_sizes():
    """The work a masked convolution does is its taps: 28 and 3 of 49 in the 7×7 first layer,
    6 and 2 of 9 in a 3×3 one."""
    counts = [int(pixelcnn_mask(k, t).sum()) for k, t in [(7, "V"), (7, "HA"), (3, "V"), (3, "HB")]]
    assert counts == [28, 3, 6, 2]


def test_masked_taps_get_zero_gradient_and_stay_zero():
    net = small()
    x, cond = binary((2, 1, 8, 8)), np.random.default_rng(2).standard_normal((2, 2))
    net.log_prob(x, cond).sum().backward()
    masked = [m for layer in net.layers for m in (layer.vertical, layer.horizontal)]
    assert len(masked) == 2 * (1 + 2)
    for conv in masked:
        hidden = conv.mask == 0
        assert np.all(conv.weight.data[:, :, hidden] == 0), conv.mask_type
        assert np.all(conv.weight.grad[:, :, hidden] == 0), conv.mask_type
        assert np.any(conv.weight.grad[:, :, ~hidden] != 0), conv.mask_type


# ---------------------------------------------------------------- causality


def logit_jacobian(net, x, cond):
    """J[i, j] = ∂logit_i / ∂x_j for pixels in raster order, and G[i] = ‖∂logit_i / ∂cond‖, by
    minivae's own autodiff: one backward pass per output pixel."""
    _, _, H, W = x.shape
    J, G = np.zeros((H * W, H * W)), np.zeros(H * W)
    for i in range(H * W):
        xt = Tensor(x, requires_grad=True)
        cond_t = None if cond is None else Tensor(cond, requires_grad=True)
        y_bar = np.zeros(x.shape)
        y_bar[0, 0, i // W, i % W] = 1
        net(xt, cond_t).backward(y_bar)
        J[i] = xt.grad[0, 0].ravel()
        G[i] = 0 if cond is None else np.abs(cond_t.grad).sum()
    return J, G


def designed_field(H, W, layers, kernel_size):
    """The pixels each output sees by design: R = 3 + layers·(k//2) rows above it and R columns
    either side of it, and R pixels to its left in its own row."""
    R = FIRST_KERNEL // 2 + layers * (kernel_size // 2)
    field = np.zeros((H * W, H * W), bool)
    for r, c in itertools.product(range(H), range(W)):
        for r2, c2 in itertools.product(range(H), range(W)):
            above = r - 1 - R <= r2 <= r - 1 and abs(c2 - c) <= R
            left = r2 == r and c - R <= c2 <= c - 1
            field[r * W + c, r2 * W + c2] = above or left
    return field


@pytest.mark.parametrize("layers, kernel_size", [(2, 3), (1, 5), (0, 3)])
def test_each_logit_sees_exactly_its_designed_field_and_never_itself_or_later(layers, kernel_size):
    net = small(layers=layers, kernel_size=kernel_size)
    x, cond = binary((1, 1, 8, 8)), np.random.default_rng(3).standard_normal((1, 2))
    J, G = logit_jacobian(net, x, cond)
    later = np.triu(np.ones_like(J, bool))  # j >= i in raster order
    assert np.all(J[later] == 0), "a logit depends on its own pixel or a later one"
    field = designed_field(8, 8, layers, kernel_size)
    assert np.all(J[~field] == 0), "a logit sees a pixel outside its designed field"
    assert np.all(J[field] != 0), "a pixel inside the designed field is not seen (a blind spot)"
    assert np.all(G > 0), "some logit does not depend on cond"


def test_the_pixels_above_and_to_the_right_that_a_plain_masked_stack_misses_are_seen():
    """Stacked raster masks grow the field one column right per row up, so pixel (r − 1, c + 4)
    stays hidden from (r, c) however deep the stack: the blind spot. The gated stacks see it."""
    rng = np.random.default_rng(0)
    kw = dict(rng=rng, dtype=np.float64)
    plain = nn.Sequential(nn.MaskedConv2d(1, 4, FIRST_KERNEL, "A", **kw), nn.Tanh(),
                          nn.MaskedConv2d(4, 4, 3, "B", **kw), nn.Tanh(),
                          nn.MaskedConv2d(4, 1, 3, "B", **kw))
    gated = small(layers=2, cond_dim=0)
    x = binary((1, 1, 8, 8))
    i, j = 4 * 8 + 2, 3 * 8 + 6  # output (4, 2); input (3, 6), one row up and four columns right
    J_plain = logit_jacobian(plain_as_net(plain), x, None)[0]
    J_gated = logit_jacobian(gated, x, None)[0]
    assert J_plain[i, j] == 0 and J_gated[i, j] != 0
    later = np.triu(np.ones_like(J_plain, bool))
    assert np.all(J_plain[later] == 0)  # the plain stack is causal too, only blind


def plain_as_net(stack):
    return lambda x, cond=None: stack(x)


# ---------------------------------------------------------------- the distribution


@pytest.mark.parametrize("cond_dim", [0, 2])
def test_probabilities_of_all_512_binary_3x3_images_add_up_to_one(cond_dim):
    net = small(H=3, W=3, cond_dim=cond_dim, seed=4)
    x = np.array(list(itertools.product([0.0, 1.0], repeat=9))).reshape(512, 1, 3, 3)
    cond = None if not cond_dim else np.tile(np.random.default_rng(5).standard_normal((1, 2)), (512, 1))
    log_p = net.log_prob(x, cond).data  # (512,)
    assert log_p.shape == (512,)
    assert abs(np.exp(log_p).sum() - 1) < 1e-12


def test_log_prob_is_the_sum_of_bernoulli_terms_of_the_logits():
    net = small()
    x, cond = binary((3, 1, 8, 8)), np.random.default_rng(6).standard_normal((3, 2))
    logits = net(x, cond).data
    expected = (x * -np.logaddexp(0, -logits) + (1 - x) * -np.logaddexp(0, logits)).sum((1, 2, 3))
    np.testing.assert_allclose(net.log_prob(x, cond).data, expected, rtol=1e-12)


def test_fully_convolutional_any_height_and_width():
    net = small()
    for shape in [(2, 1, 5, 7), (1, 1, 12, 3), (2, 1, 1, 1)]:
        cond = np.zeros((shape[0], 2))
        assert net(binary(shape), cond).shape == shape
        assert net.log_prob(binary(shape), cond).shape == (shape[0],)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_prob_without_a_graph_is_the_teacher_forced_one_for_repeated_images(dtype):
    """log_prob under no_grad (layer 0's convolutions once per distinct image, passes of PASS
    images) gives the graph-recording pass's numbers to rounding: float64 1e-12, float32 1e-4
    relative (a sum of 64 terms of about 1 nat), whatever the order of the repeats and however
    the batch splits into passes."""
    net = small(layers=2, dtype=dtype, seed=12)
    images = binary((4, 1, 8, 8), seed=13, dtype=dtype)
    which = np.random.default_rng(14).integers(0, 4, PASS + 7)  # repeats, shuffled, two passes
    x = images[which]
    cond = np.random.default_rng(15).standard_normal((len(x), 2))  # a different y for each
    with_graph = net.log_prob(x, cond).data
    with no_grad():
        in_passes = net.log_prob(x, cond).data
    assert in_passes.shape == (len(x),) and in_passes.dtype == dtype
    np.testing.assert_allclose(in_passes, with_graph, rtol=1e-12 if dtype == np.float64 else 1e-4)


# ---------------------------------------------------------------- sampling


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cached_and_naive_samplers_draw_the_same_images_for_different_h(dtype):
    net = small(H=8, W=7, layers=2, dtype=dtype, seed=7)
    rng = np.random.default_rng(8)
    cond = 2 * rng.standard_normal((6, 2))  # a different cond for every image
    noise = rng.random((6, 1, 8, 7))
    naive, naive_logits = net.sample(6, cond=cond, noise=noise, cached=False, return_logits=True)
    cached, cached_logits = net.sample(6, cond=cond, noise=noise, cached=True, return_logits=True)
    assert cached.shape == (6, 1, 8, 7) and cached.dtype == dtype
    assert set(np.unique(cached)) <= {0.0, 1.0}
    np.testing.assert_array_equal(cached, naive)
    # every logit a pixel was drawn with is the teacher-forced one, to rounding
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(cached_logits, net(cached, cond).data, rtol=0, atol=tolerance)
    np.testing.assert_allclose(naive_logits, net(naive, cond).data, rtol=0, atol=tolerance)
    assert 0.05 < cached.mean() < 0.95  # not all black, not all white: a real draw


@pytest.mark.parametrize("cached", [True, False])
def test_a_sample_is_a_fixed_point_of_teacher_forcing_with_its_noise(cached):
    net = small(seed=9)
    rng = np.random.default_rng(10)
    cond, noise = rng.standard_normal((4, 2)), rng.random((4, 1, 8, 8))
    x = net.sample(4, cond=cond, noise=noise, cached=cached)
    p = 1 / (1 + np.exp(-net(x, cond).data))  # every conditional, from one parallel pass
    np.testing.assert_array_equal(x, noise < p)


def test_unconditional_sampling_and_a_seeded_rng():
    net = small(cond_dim=0, seed=11)
    a = net.sample(3, np.random.default_rng(12))
    b = net.sample(3, np.random.default_rng(12), cached=False)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 1, 8, 8)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("make, match", [
    (lambda: small(kernel_size=4), "kernel_size must be odd"),
    (lambda: small(layers=-1), "layers >= 0"),
    (lambda: small(channels=0), "channels >= 1"),
    (lambda: PixelCNN((3, 8, 8)), r"\(1, H, W\)"),
])
def test_bad_configurations_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_images_and_conditions_are_refused_with_the_bad_value_named():
    net, cond = small(), np.zeros((2, 2))
    with pytest.raises(ValueError, match="0 or 1.*0.5"):
        net(np.full((2, 1, 8, 8), 0.5), cond)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\).*\(2, 8, 8\)"):
        net(np.zeros((2, 8, 8)), cond)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        net(np.zeros((2, 3, 8, 8)), cond)
    with pytest.raises(ValueError, match=r"cond must have shape \(2, 2\), got \(2, 3\)"):
        net(np.zeros((2, 1, 8, 8)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"cond must have shape \(2, 2\), got None"):
        net.log_prob(np.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match="unconditional"):
        small(cond_dim=0)(np.zeros((2, 1, 8, 8)), cond)
    with pytest.raises(ValueError, match="noise must have shape"):
        net.sample(2, cond=cond, noise=np.zeros((2, 1, 4, 4)))
    with pytest.raises(ValueError, match="give rng"):
        net.sample(2, cond=cond)


def test_log_prob_and_sampling_check_their_inputs_once(monkeypatch):
    """One check per call (the pass behind log_prob and each sampled pixel checks nothing again)."""
    net, calls = small(), []
    check = PixelCNN._check
    monkeypatch.setattr(PixelCNN, "_check", lambda self, *args: calls.append(1) or check(self, *args))
    net.log_prob(binary((2, 1, 8, 8)), np.zeros((2, 2)))
    assert len(calls) == 1
    net.sample(2, np.random.default_rng(0), cond=np.zeros((2, 2)), cached=False)
    assert len(calls) == 1
