"""z seen at every pixel (issue 25): the PixelVAE's conditioning 'map', z → m(z) (B, C, H, W) → a 1×1
convolution into each gate. Its loss is still the ELBO (gradients checked through m), the PixelCNN
conditioned on a map is still a distribution, the cached sampler reads the map at the pixel it
draws (the naive sampler's images, the teacher-forced logits), and old runs load as 'bias'."""
import dataclasses
import itertools

import numpy as np
import pytest

import minivae
from minivae.models.pixelcnn import PixelCNN
from minivae.models.pixelvae import PixelVAE

from test_pixelvae import binary, objective


def tiny(latent_dim=2, dtype=np.float64, seed=0, **config):
    return PixelVAE.gated(latent_dim, channels=2, layers=1, image_shape=(1, 8, 8),
                          conditioning="map", rng=np.random.default_rng(seed), dtype=dtype,
                          **config)


def mapped(H, W, layers=2, channels=3, cond_dim=2, seed=5):
    return PixelCNN((1, H, W), channels, layers, 3, cond_dim, np.random.default_rng(seed),
                    np.float64, cond_map=True)


def test_the_whole_loss_passes_gradcheck_through_the_map_network():
    model = tiny(free_bits=0.05, beta=0.5)
    names = [n for n, _ in model.named_parameters()
             if n.startswith(("z_map.", "decoder.layers.1.cond", "decoder.head.cond",
                              "encoder.5.bias"))]
    assert any(n.startswith("z_map.") for n in names) and any(".cond_h" in n for n in names)
    fn, arrays = objective(model, binary((2, 1, 8, 8)), names)
    minivae.gradcheck(fn, *arrays, atol=1e-6, rtol=1e-4)


def test_a_pixelcnn_conditioned_on_a_map_is_a_distribution_over_all_512_3x3_images():
    net = PixelCNN((1, 3, 3), 3, 1, 3, 2, np.random.default_rng(4), np.float64, cond_map=True)
    x = np.array(list(itertools.product([0.0, 1.0], repeat=9))).reshape(512, 1, 3, 3)
    m = np.tile(np.random.default_rng(5).standard_normal((1, 2, 3, 3)), (512, 1, 1, 1))
    assert abs(np.exp(net.log_prob(x, m).data).sum() - 1) < 1e-12


@pytest.mark.parametrize("H, W, layers", [(6, 5, 2), (4, 7, 0), (5, 5, 3)])
def test_the_cached_sampler_reads_the_map_at_the_pixel_it_draws(H, W, layers):
    """A map that differs at every pixel and for every image: the cached sampler draws the naive
    sampler's images, each pixel with its teacher-forced logit (float64, 1e-10)."""
    net = mapped(H, W, layers)
    rng = np.random.default_rng(6)
    m = 3 * rng.standard_normal((3, 2, H, W))
    noise = rng.random((3, 1, H, W))
    naive = net.sample(3, cond=m, noise=noise, cached=False)
    cached, logits = net.sample(3, cond=m, noise=noise, cached=True, return_logits=True)
    np.testing.assert_array_equal(cached, naive)
    np.testing.assert_allclose(logits, net(cached, m).data, rtol=0, atol=1e-10)
    assert 0.05 < cached.mean() < 0.95


def test_a_change_of_the_map_at_one_pixel_moves_that_pixels_logit():
    net = mapped(4, 5)
    m = np.random.default_rng(7).standard_normal((1, 2, 4, 5))
    x = binary((1, 1, 4, 5))
    moved = m.copy()
    moved[0, :, 2, 3] += 1.0
    change = np.abs(net(x, moved).data - net(x, m).data)[0, 0]  # (4, 5)
    assert change[2, 3] > 1e-6  # the gates at (2, 3) see the map there
    assert change[:2].max() == 0 and change[2, :3].max() == 0  # pixels before it cannot


def test_a_map_of_the_wrong_shape_is_refused_naming_both_shapes():
    net = mapped(4, 5)
    with pytest.raises(ValueError, match=r"cond must have shape \(1, 2, 4, 5\), got \(1, 2\)"):
        net(binary((1, 1, 4, 5)), np.zeros((1, 2)))


@pytest.mark.parametrize("config, match", [
    ({"conditioning": "spatial"}, "conditioning must be one of bias, map, got 'spatial'"),
    ({"image_shape": (1, 6, 6)}, "multiples of 4"),
])
def test_bad_conditioning_settings_are_refused(config, match):
    with pytest.raises(ValueError, match=match):
        PixelVAE.gated(2, channels=2, layers=1, **{"conditioning": "map", **config})


def test_the_config_rebuilds_a_map_model_and_an_old_runs_config_a_bias_one():
    model = tiny(seed=1)
    config = dataclasses.asdict(model.config)
    assert PixelVAE.from_config(config, dtype=np.float64).z_map is not None
    del config["conditioning"]  # a run saved before the setting existed
    old = PixelVAE.from_config(config, dtype=np.float64)
    assert old.z_map is None and old.config.conditioning == "bias"


def test_decompressions_and_samples_go_through_the_map():
    model = tiny(seed=2)
    rng = np.random.default_rng(3)
    z = rng.standard_normal((2, 2))
    noise = rng.random((2, 1, 8, 8))
    cached = model.generate(z, None, noise=noise)
    naive = model.generate(z, None, noise=noise, cached=False)
    np.testing.assert_array_equal(cached, naive)
    assert model.sample(2, rng).shape == (2, 1, 8, 8)


def test_the_torch_bridge_computes_the_same_loss():
    torch = pytest.importorskip("torch")
    from minivae.torch_bridge import to_torch
    model = tiny(seed=4)
    model.eval()
    x = binary((3, 1, 8, 8))
    eps = np.random.default_rng(5).standard_normal((3, 2))
    net = to_torch(model).double()
    ours = model.log_likelihood(x, eps).data
    theirs = net.log_likelihood(torch.from_numpy(x), torch.from_numpy(eps)).detach().numpy()
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-10)
