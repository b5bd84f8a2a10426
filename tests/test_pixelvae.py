"""The PixelVAE: its loss is the ELBO (gradients checked), the training switches (β, warm-up, free
bits) never leak into the reported numbers, IWAE with k = 1 is the ELBO on the same draws, and a
few steps of training work end to end."""
import numpy as np
import pytest

import minivae
from minivae import data, optim
from minivae.metrics import iwae_nll, posterior_stats
from minivae.models.pixelvae import PixelVAE
from minivae.tensor import Tensor
from minivae.train import fit


def tiny(latent_dim=2, dtype=np.float64, seed=0, **config):
    return PixelVAE.gated(latent_dim, channels=2, layers=1, image_shape=(1, 8, 8),
                          rng=np.random.default_rng(seed), dtype=dtype, **config)


def binary(shape, seed=1):
    return (np.random.default_rng(seed).random(shape) < 0.4).astype(np.float64)


def objective(model, x, names, seed=3):
    """The training loss as a function of the named parameters, for gradcheck: each call puts the
    given Tensors in place of those parameters and draws the same eps."""
    params = dict(model.named_parameters())

    def fn(*tensors):
        for name, t in zip(names, tensors):
            owner, attr = model, name.split(".")
            for part in attr[:-1]:
                owner = getattr(owner, part)
            setattr(owner, attr[-1], t)
        try:
            return model.loss(Tensor(x), np.random.default_rng(seed))[0]
        finally:
            for name in names:
                owner, attr = model, name.split(".")
                for part in attr[:-1]:
                    owner = getattr(owner, part)
                setattr(owner, attr[-1], params[name])

    return fn, [params[name].data for name in names]


@pytest.mark.parametrize("config, checked", [
    ({}, ("decoder.", "encoder.5.bias")),
    ({"beta": 0.5, "free_bits": 0.05}, ("encoder.5.bias", "decoder.layers.1.cond")),
])
def test_the_whole_loss_passes_gradcheck(config, checked):
    """In float64, the ELBO (then the training objective with β and free bits) with respect to
    every decoder parameter and to the bias of the encoder's head, through which every gradient
    of mu and log_var passes (the weight's is that bias gradient times the Linear's input)."""
    model = tiny(**config)
    x = binary((2, 1, 8, 8))
    names = [n for n, _ in model.named_parameters() if n.startswith(checked)]
    assert "encoder.5.bias" in names and any(".cond_h" in n for n in names)
    fn, arrays = objective(model, x, names)
    minivae.gradcheck(fn, *arrays, atol=1e-6, rtol=1e-4)


def test_eval_mode_reports_the_true_elbo_whatever_the_training_weights():
    model = tiny(beta=0.3, warmup=2.0, free_bits=0.5)
    x = binary((4, 1, 8, 8))
    model.schedule(1.0)  # halfway through the warm-up: weight 0.15
    assert model.kl_weight == pytest.approx(0.15)
    train, parts = model.loss(Tensor(x), np.random.default_rng(0))
    lam = model.config.free_bits
    q = model.encode(Tensor(x))
    kl_j = q.kl_standard().data.sum(0) / len(x)
    expected = parts["rec"] + 0.15 * np.maximum(lam, kl_j).sum()
    assert train.item() == pytest.approx(expected, rel=1e-12)
    model.eval()
    true, parts = model.loss(Tensor(x), np.random.default_rng(0))
    assert true.item() == pytest.approx(parts["rec"] + parts["kl"], rel=1e-12)
    assert parts["kl"] == pytest.approx(kl_j.sum(), rel=1e-12)
    z = q.rsample(np.random.default_rng(0))  # the draw the loss made: rec is −ln p(x|z) there
    assert parts["rec"] == pytest.approx(-model.decoder.log_prob(x, z).data.mean(), rel=1e-12)


def test_warm_up_rises_linearly_to_beta_and_then_stays():
    model = tiny(beta=2.0, warmup=4.0)
    assert model.kl_weight == 0.0
    weights = []
    for epochs in [0.5, 1.0, 2.0, 4.0, 7.5]:
        model.schedule(epochs)
        weights.append(model.kl_weight)
    assert weights == pytest.approx([0.25, 0.5, 1.0, 2.0, 2.0])
    no_warmup = tiny(beta=2.0)
    no_warmup.schedule(0.1)
    assert no_warmup.kl_weight == 2.0


def test_free_bits_give_no_kl_gradient_while_every_dimension_is_below_lambda():
    """Σ_j max(λ, KL_j) with every KL_j < λ is the constant dλ: the encoder then learns from the
    reconstruction alone, exactly as with the KL weight at 0."""
    x = binary((3, 1, 8, 8))
    grads = []
    for config in [{"free_bits": 1e6}, {"beta": 0.0}]:
        model = tiny(**config)
        model.loss(Tensor(x), np.random.default_rng(4))[0].backward()
        grads.append([p.grad for p in model.encoder.parameters()])
    for with_free_bits, without_kl in zip(*grads):
        np.testing.assert_array_equal(with_free_bits, without_kl)


@pytest.mark.parametrize("latent_dim", [2, 0])
def test_iwae_with_one_sample_is_the_elbo_on_the_same_draws(latent_dim):
    model = tiny(latent_dim)
    x = binary((5, 1, 8, 8))
    q = model.encode(Tensor(x))
    z = q.rsample(np.random.default_rng(7))
    elbo = model.log_joint(x, z).data - q.log_prob(z).data.sum(-1)  # (5,), one draw each
    nll = iwae_nll(model, x, 1, np.random.default_rng(7), batch_size=5)
    assert nll == pytest.approx(-elbo.mean(), rel=1e-12)


def test_without_a_latent_the_model_is_the_pixelcnn_and_every_bound_is_exact():
    model = tiny(latent_dim=0)
    model.eval()
    x = binary((4, 1, 8, 8))
    exact = -model.decoder.log_prob(x).data.mean()
    loss, parts = model.loss(Tensor(x), np.random.default_rng(0))
    assert parts["kl"] == 0 and loss.item() == pytest.approx(exact, rel=1e-12)
    for k in (1, 7):
        assert iwae_nll(model, x, k, np.random.default_rng(1)) == pytest.approx(exact, rel=1e-12)
    assert posterior_stats(model, x)["active_units"] == 0


def test_log_joint_adds_the_prior_to_the_pixelcnn_likelihood():
    model = tiny()
    x, z = binary((3, 1, 8, 8)), np.random.default_rng(2).standard_normal((3, 2))
    log_pz = -0.5 * (z ** 2 + np.log(2 * np.pi)).sum(-1)
    expected = model.decoder.log_prob(x, z).data + log_pz
    np.testing.assert_allclose(model.log_joint(x, z).data, expected, rtol=1e-12)


def test_a_few_steps_of_training_lower_the_loss_and_the_samples_are_not_blank():
    (x_train, _), _ = data.load("mnist-5k")
    x = data.to_float(x_train[:64])[:, :, ::2, ::2][:, :, 1:13, 1:13]  # 12×12 crops: quick
    model = PixelVAE.gated(latent_dim=4, channels=8, layers=2, image_shape=(1, 12, 12),
                           rng=np.random.default_rng(0))
    seen = []
    history = fit(model, optim.Adam(model.parameters(), lr=3e-3), x, x, epochs=4, batch_size=16,
                  binarize=True, on_step=seen.append, log=lambda *a: None)
    assert history[-1]["test_loss"] < history[0]["test_loss"] - 5
    assert seen == pytest.approx([e + s / 4 for e in range(4) for s in range(1, 5)])
    samples = model.sample(8, np.random.default_rng(1))
    assert samples.shape == (8, 1, 12, 12) and set(np.unique(samples)) <= {0.0, 1.0}
    assert 0.02 < samples.mean() < 0.6  # digits: mostly background, not blank, not filled
    again = model.reconstruct(data.binarize(x[:4], np.random.default_rng(2)),
                              np.random.default_rng(3))
    assert again.shape == (4, 1, 12, 12)


@pytest.mark.parametrize("config, match", [
    ({"latent_dim": -1}, "PixelVAE: latent_dim must be an integer ≥ 0, got -1"),
    ({"latent_dim": 2.0}, "PixelVAE: latent_dim must be an integer ≥ 0, got 2.0"),
    ({"beta": -0.1}, "PixelVAE: beta must be a finite number ≥ 0, got -0.1"),
    ({"warmup": -1}, "PixelVAE: warmup must be a finite number ≥ 0, got -1"),
    ({"free_bits": float("nan")}, "PixelVAE: free_bits must be a finite number ≥ 0, got nan"),
    ({"rng": "seed"}, "PixelVAE: rng must be a numpy.random.Generator, an integer seed"),
])
def test_bad_configurations_are_refused(config, match):
    with pytest.raises(ValueError, match=match):
        PixelVAE.gated(**{"latent_dim": 2, **config})


def test_bad_images_are_refused_with_their_shape_or_value_named():
    model = tiny()
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\), got \(2, 1, 28, 28\)"):
        model.loss(Tensor(np.zeros((2, 1, 28, 28))), np.random.default_rng(0))
    with pytest.raises(ValueError, match="0 or 1"):
        model.loss(Tensor(np.full((2, 1, 8, 8), 0.3)), np.random.default_rng(0))


def test_the_vae_and_the_pixelvae_share_one_encoder_and_one_elbo():
    """Built the same way (a classmethod builder, its config, from_config), with the same encode and
    ELBO terms; `decode` is the decoder's output where a decoder has one without x (the VAE's
    logits), and `generate(z, ...)` is images for codes in both (the PixelVAE's drawn pixel by
    pixel, so it has no `decode`)."""
    from minivae.models.vae import VAE
    pixel, vae = tiny(), VAE.conv(latent_dim=2, rng=np.random.default_rng(0), dtype=np.float64)
    assert type(pixel).elbo is type(vae).elbo
    x = binary((3, 1, 8, 8))
    q, h = pixel.encode(x), pixel.encoder(Tensor(x)).data  # (3, 4): mu and log_var side by side
    np.testing.assert_array_equal(q.mu.data, h[:, :2])
    np.testing.assert_array_equal(q.log_var.data, h[:, 2:])
    assert not hasattr(pixel, "decode") and isinstance(vae.decode(Tensor(np.zeros((3, 2)))), Tensor)
    images = pixel.generate(np.zeros((3, 2)), np.random.default_rng(0))
    assert images.shape == (3, 1, 8, 8) and set(np.unique(images)) <= {0.0, 1.0}
    again = PixelVAE.from_config(pixel.config, rng=np.random.default_rng(0), dtype=np.float64)
    assert all(np.array_equal(a, b) for a, b in zip(again.state_dict().values(),
                                                   pixel.state_dict().values()))
