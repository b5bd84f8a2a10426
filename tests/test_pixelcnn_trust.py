"""The gated PixelCNN, proven further (issue 22): the cached sampler's work is pinned by counting
(never by timing), it draws the naive sampler's images for every odd kernel size and for odd,
non-square images, every conditioning path (each gate's and the head's) carries z into the
logits, and a bad number of samples gets minivae's own error naming n.

Exactness runs in float64: images identical bit for bit, logits within 1e-10.
"""
import numpy as np
import pytest

from minivae import kernels
from minivae.models import pixelcnn
from minivae.models.pixelcnn import PixelCNN
from minivae.models.pixelvae import PixelVAE
from minivae.tensor import Tensor


def net_of(H, W, kernel_size=3, layers=2, channels=3, cond_dim=2, seed=0):
    return PixelCNN((1, H, W), channels, layers, kernel_size, cond_dim,
                    rng=np.random.default_rng(seed), dtype=np.float64)


# ---------------------------------------------------------------- the cached sampler's work


class Counter:
    """Wraps methods of classes (via monkeypatch) and counts their calls by name."""

    def __init__(self, monkeypatch):
        self.monkeypatch, self.calls = monkeypatch, {}

    def watch(self, cls, method):
        name = f"{cls.__name__}.{method}"
        original = getattr(cls, method)
        self.calls[name] = 0

        def counted(*args, **kwargs):
            self.calls[name] += 1
            return original(*args, **kwargs)

        self.monkeypatch.setattr(cls, method, counted)


def count_sampling(monkeypatch, net, n, cached):
    counter = Counter(monkeypatch)
    for cls, method in [(PixelCNN, "_logits"), (pixelcnn.GatedLayer, "forward"),
                        (pixelcnn.Head, "forward"), (pixelcnn._MaskedTaps, "row"),
                        (kernels, "sample_row")]:
        counter.watch(cls, method)
    h = np.random.default_rng(1).standard_normal((n, net.cond_dim))
    net.sample(n, np.random.default_rng(2), cond=h, cached=cached)
    return counter.calls


@pytest.mark.parametrize("H, W, layers", [(5, 4, 2), (3, 6, 0), (4, 4, 3)])
def test_the_cached_sampler_makes_no_full_pass_and_one_row_or_pixel_of_work_per_layer(
        monkeypatch, H, W, layers):
    """cached=True: no full network pass at all; each layer's vertical stack computes one row per
    image row (H − 1 of them: row 0's link sees only the zero row above the image), and one call
    of kernels.sample_row per row runs every horizontal stack and the head pixel by pixel along
    it. The naive oracle, for contrast, runs the whole network H·W times. The counts are the
    contract: with n images in a batch they do not grow with n (the batch is one array)."""
    net = net_of(H, W, layers=layers)
    L = layers + 1  # gated layers, the 7×7 first one included
    for n in (1, 3):
        calls = count_sampling(monkeypatch, net, n, cached=True)
        assert calls == {"PixelCNN._logits": 0, "GatedLayer.forward": 0, "Head.forward": 0,
                         "_MaskedTaps.row": (H - 1) * L, "minivae.kernels.sample_row": H}, f"n={n}"
    naive = count_sampling(monkeypatch, net, 2, cached=False)
    assert naive["PixelCNN._logits"] == H * W and naive["GatedLayer.forward"] == H * W * L
    assert naive["_MaskedTaps.row"] == naive["minivae.kernels.sample_row"] == 0


def test_the_cached_taps_compute_only_the_masks_taps():
    """The per-row and per-pixel work of a masked convolution is its unmasked taps only: the
    weights the cache multiplies by are (out, in · taps), 28 taps of 49 for the 7×7 'V' mask, 3
    for 'HA', 6 of 9 for a 3×3 'V', 2 for 'HB'."""
    net = net_of(6, 6, kernel_size=3, layers=1, channels=2)
    first, second = net.layers
    widths = [pixelcnn._MaskedTaps(conv).w.shape for conv in
              (first.vertical, first.horizontal, second.vertical, second.horizontal)]
    assert widths == [(4, 1 * 28), (4, 1 * 3), (4, 2 * 6), (4, 2 * 2)]


# ---------------------------------------------------------------- cached == naive everywhere


@pytest.mark.parametrize("kernel_size", [3, 5, 7])
@pytest.mark.parametrize("H, W", [(5, 7), (7, 4), (1, 6), (6, 1), (9, 5), (1, 1)])
def test_cached_and_naive_samplers_agree_for_every_kernel_size_and_odd_non_square_images(
        kernel_size, H, W):
    """Same h and noise -> the same images bit for bit, and every logit a pixel was drawn with
    equals the teacher-forced logit within 1e-10 (float64), for 3×3, 5×5 and 7×7 kernels and
    images with odd, unequal sides (one row or one column included)."""
    net = net_of(H, W, kernel_size=kernel_size, layers=2, seed=kernel_size + H)
    rng = np.random.default_rng(H * 10 + W)
    h = 2 * rng.standard_normal((4, 2))
    noise = rng.random((4, 1, H, W))
    naive, naive_logits = net.sample(4, cond=h, noise=noise, cached=False, return_logits=True)
    cached, cached_logits = net.sample(4, cond=h, noise=noise, cached=True, return_logits=True)
    assert cached.shape == (4, 1, H, W)
    np.testing.assert_array_equal(cached, naive)
    np.testing.assert_allclose(cached_logits, naive_logits, rtol=0, atol=1e-10)
    np.testing.assert_allclose(cached_logits, net(Tensor(cached), h).data, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- every conditioning path


def conditioning_paths(net):
    """name -> the Linear of every place h enters: each layer's vertical and horizontal gate
    (the last layer's vertical stack feeds nothing, so it has none) and the head's gate."""
    paths = {}
    for i, layer in enumerate(net.layers):
        for stack in ("cond_v", "cond_h"):
            if getattr(layer, stack) is not None:
                paths[f"layers.{i}.{stack}"] = getattr(layer, stack)
    paths["head.cond"] = net.head.cond
    return paths


def gradient_wrt_h(net, x, h, y_bar):
    ht = Tensor(h, requires_grad=True)
    net(Tensor(x), ht).backward(y_bar)
    return ht.grad


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_the_logits_depend_on_h_through_every_gate_and_the_head(layers):
    """Keep one conditioning path, zero the weights of all the others: the logits must still
    depend on h (∂⟨ȳ, logits⟩/∂h ≠ 0, by minivae's own autodiff, float64), for each path in turn.
    With every path zeroed the gradient is exactly 0: the control, showing that nothing else
    carries h. A path whose bias were computed and then dropped (or added to the wrong stack
    after the gate) shows up as a zero gradient."""
    net = net_of(6, 5, layers=layers, channels=3, cond_dim=2, seed=layers)
    rng = np.random.default_rng(3)
    x = (rng.random((3, 1, 6, 5)) < 0.5).astype(np.float64)
    h = rng.standard_normal((3, 2))
    y_bar = rng.standard_normal((3, 1, 6, 5))
    paths = conditioning_paths(net)
    assert len(paths) == 2 * (layers + 1) - 1 + 1  # v and h per layer, no v in the last, head
    saved = {name: linear.weight.data.copy() for name, linear in paths.items()}
    for linear in paths.values():
        linear.weight.data[...] = 0
    assert np.all(gradient_wrt_h(net, x, h, y_bar) == 0), "h reaches the logits by another path"
    for name, linear in paths.items():
        linear.weight.data[...] = saved[name]
        g = gradient_wrt_h(net, x, h, y_bar)
        assert np.abs(g).max() > 1e-6, f"the logits do not depend on h through {name}"
        linear.weight.data[...] = 0


def test_every_conditioning_path_moves_the_cached_samplers_logits_too():
    """The cached sampler computes each path's bias itself: with one path kept at a time, a change
    of h changes the logits the cached sampler draws with, and they stay the teacher-forced ones
    (1e-10, float64)."""
    net = net_of(4, 5, layers=2, channels=3, cond_dim=2, seed=5)
    rng = np.random.default_rng(4)
    h0, h1 = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    noise = rng.random((2, 1, 4, 5))
    paths = conditioning_paths(net)
    saved = {name: linear.weight.data.copy() for name, linear in paths.items()}
    for name, kept in paths.items():
        for other, linear in paths.items():
            linear.weight.data[...] = saved[other] if other == name else 0
        x0, l0 = net.sample(2, cond=h0, noise=noise, cached=True, return_logits=True)
        _, l1 = net.sample(2, cond=h1, noise=noise, cached=True, return_logits=True)
        assert np.abs(l0 - l1).max() > 1e-6, f"{name}: the cached logits ignore h"
        np.testing.assert_allclose(l0, net(Tensor(x0), h0).data, rtol=0, atol=1e-10, err_msg=name)


# ---------------------------------------------------------------- bad calls


@pytest.mark.parametrize("n", [0, -3, 2.0, True])
def test_sampling_a_bad_number_of_images_names_n(n):
    net = net_of(4, 4, cond_dim=0)
    for cached in (True, False):
        with pytest.raises(ValueError, match=rf"PixelCNN.sample: n must be a positive integer, "
                                             rf"got {n!r}"):
            net.sample(n, np.random.default_rng(0), cached=cached)
    model = PixelVAE.gated(2, channels=2, layers=1, image_shape=(1, 8, 8),
                           rng=np.random.default_rng(0), dtype=np.float64)
    with pytest.raises(ValueError, match=rf"PixelVAE.sample: n must be a positive integer, "
                                         rf"got {n!r}"):
        model.sample(n, np.random.default_rng(0))
