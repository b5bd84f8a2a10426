"""The adversarial autoencoder: the three phases, the priors, the MMD, training end to end."""
import math

import numpy as np
import pytest

from minivae import data, optim, samplers
from minivae.metrics import median_heuristic, mmd_rbf
from minivae.metrics import encode_all
from minivae.models.aae import AAE
from minivae.tensor import Tensor
from minivae.train import fit, linear_decay

PHASES = {  # which parameters each phase may change
    "reconstruction": {"encoder", "decoder"},
    "discriminator": {"discriminator"},
    "generator": {"encoder"},
}


def toy_points(n, rng):
    """Points spread uniformly over the unit square: a toy data set in the plane."""
    return rng.random((n, 2)).astype(np.float32)  # (n, 2)


def tiny(prior="gaussian", seed=0, hidden=16, **config):
    return AAE.mlp(latent_dim=2, prior=prior, hidden=hidden, input_shape=(2,),
                   rng=np.random.default_rng(seed), **config)


def fit_aae(model, x, x_test, epochs, **kw):
    """train.fit with the AAE's hooks, as examples/aae.py runs it."""
    optimizers = model.optimizers()
    return fit(model, optimizers, x, x_test, epochs=epochs, step=model.step,
               evaluation=model.evaluate,
               on_step=linear_decay(optimizers, model.config.lr_decay, epochs), **kw)


def snapshot(model):
    return {name: p.data.copy() for name, p in model.named_parameters()}


def changed_groups(before, model):
    """The set of groups ('encoder', ...) whose parameters changed, and whether each parameter of
    a changed group changed (a phase should update all of its parameters, not some)."""
    changed = {name: not np.array_equal(before[name], p.data)
               for name, p in model.named_parameters()}
    groups = {name.split(".")[0] for name, c in changed.items() if c}
    whole = all(c for name, c in changed.items() if name.split(".")[0] in groups)
    return groups, whole


# ---------------------------------------------------------------- the three phases


@pytest.mark.parametrize("prior", ["gaussian", "supervised"])
def test_each_phase_updates_only_its_own_parameters(prior):
    rng = np.random.default_rng(0)
    model = tiny(prior)
    opt = model.optimizers()
    x, y = Tensor(toy_points(32, rng)), rng.integers(0, 10, 32)

    before = snapshot(model)
    model.reconstruction_phase(x, opt.rec)
    assert changed_groups(before, model) == (PHASES["reconstruction"], True)

    before = snapshot(model)
    model.discriminator_phase(model.encode(x).detach(), opt.disc, rng, y)
    assert changed_groups(before, model) == (PHASES["discriminator"], True)

    before = snapshot(model)
    for p in model.discriminator.parameters():
        p.grad = None
    model.generator_phase(model.encode(x), opt.gen, y)
    assert changed_groups(before, model) == (PHASES["generator"], True)
    # the frozen discriminator got no gradient at all, not merely no update
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert all(p.requires_grad for p in model.parameters())  # and is unfrozen afterwards


def test_step_is_the_three_phases_in_order():
    x = toy_points(32, np.random.default_rng(1))
    a, b = tiny(seed=3), tiny(seed=3)
    opt_a, opt_b = a.optimizers(), b.optimizers()
    parts = a.step(x, opt_a, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    rec = b.reconstruction_phase(Tensor(x), opt_b.rec)
    disc, accuracy = b.discriminator_phase(b.encode(Tensor(x)).detach(), opt_b.disc, rng)
    gen = b.generator_phase(b.encode(Tensor(x)), opt_b.gen)
    assert parts == {"rec": rec, "disc": disc, "gen": gen, "disc_accuracy": accuracy}
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_each_phase_moves_its_loss_the_right_way():
    """A small plain-gradient step lowers the phase's own loss on the same batch: the discriminator
    learns to tell prior samples (target 1) from codes (target 0), the encoder to fool it."""
    rng = np.random.default_rng(2)
    model = tiny(optimizer="sgd", momentum=0.0, lr_rec=1e-3, lr_disc=1e-2, lr_gen=1e-2)
    opt = model.optimizers()
    x = Tensor(toy_points(64, rng))
    z_prior = model.sample_prior(64, np.random.default_rng(9))

    rec_before = model.loss(x)[0].item()
    model.reconstruction_phase(x, opt.rec)
    assert model.loss(x)[0].item() < rec_before

    z = model.encode(x).detach()
    disc_before = model.disc_loss(z, z_prior)[0].item()
    model.discriminator_phase(z, opt.disc, np.random.default_rng(9))  # the same prior samples
    assert model.disc_loss(z, z_prior)[0].item() < disc_before

    gen_before = model.gen_loss(model.encode(x)).item()
    disc_before = model.disc_loss(model.encode(x), z_prior)[0].item()
    model.generator_phase(model.encode(x), opt.gen)
    assert model.gen_loss(model.encode(x)).item() < gen_before
    assert model.disc_loss(model.encode(x), z_prior)[0].item() > disc_before  # D is fooled more


def test_losses_match_their_formulas():
    rng = np.random.default_rng(4)
    model = tiny(dtype=np.float64)
    x = toy_points(16, rng).astype(np.float64)
    z = model.encode(Tensor(x)).data  # (16, 2)
    z_prior = rng.standard_normal((16, 2))
    logit = lambda v: model.discriminate(Tensor(v)).data  # (B,)
    log_sigmoid = lambda l: -np.logaddexp(0, -l)  # ln σ(l)

    disc, accuracy = model.disc_loss(z, z_prior)
    expected = -0.5 * (log_sigmoid(logit(z_prior)).mean() + log_sigmoid(-logit(z)).mean())
    assert disc.item() == pytest.approx(expected, rel=1e-12)
    assert accuracy == pytest.approx(0.5 * ((logit(z_prior) > 0).mean() + (logit(z) < 0).mean()))
    assert model.gen_loss(Tensor(z)).item() == pytest.approx(-log_sigmoid(logit(z)).mean(),
                                                             rel=1e-12)
    x_hat = 1 / (1 + np.exp(-model.decode(Tensor(z)).data))
    rec = -(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat)).sum() / len(x)
    assert model.loss(Tensor(x))[0].item() == pytest.approx(rec, rel=1e-10)


def test_supervised_discriminator_sees_the_label():
    model = tiny("supervised")
    assert model.discriminator[0].in_features == 2 + 10  # [z, one-hot label]
    z = Tensor(np.zeros((3, 2), np.float32))
    a = model.discriminate(z, np.array([0, 0, 0])).data
    b = model.discriminate(z, np.array([0, 5, 9])).data
    assert a[0] == b[0] and a[1] != b[1] and a[2] != b[2]
    with pytest.raises(ValueError, match="supervised.*labels"):
        model.discriminate(z)
    with pytest.raises(ValueError, match="supervised.*y_train"):
        x = toy_points(8, np.random.default_rng(0))
        fit_aae(model, x, x, 1, log=lambda *_: None)


def test_wrong_input_shape_and_optimizer_get_clear_errors():
    model = AAE.mlp(hidden=8, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\).*\(4, 784\)"):
        model.encode(Tensor(np.zeros((4, 784), np.float32)))
    with pytest.raises(ValueError, match="optimizer"):
        tiny(optimizer="rmsprop")
    assert isinstance(tiny(optimizer="sgd").optimizers().gen, optim.SGD)


# ---------------------------------------------------------------- training end to end


def test_mmd_to_the_prior_falls_on_toy_data():
    """The codes of an untrained encoder huddle near 0; 300 steps of the three phases spread them
    over N(0, I), and without the regularisation phases (an autoencoder) they stay far from it.
    (Over seeds 0-7 the fall was 15× to 40×, and the autoencoder stayed 3× to 30× further.)"""
    rng = np.random.default_rng(0)
    x, x_test = toy_points(1024, rng), toy_points(500, rng)
    z_prior = rng.standard_normal((500, 2))
    h = median_heuristic(rng.standard_normal((500, 2)))
    mmd = lambda m: mmd_rbf(encode_all(m, x_test), z_prior, h)

    lr = 1e-3
    aae, ae = tiny(hidden=32, lr_rec=lr, lr_disc=lr, lr_gen=lr), tiny(hidden=32, lr_rec=lr)
    start = mmd(aae)
    opt_aae, opt_ae = aae.optimizers(), ae.optimizers()
    batch_rng = np.random.default_rng(1)
    for _ in range(75):  # epochs of 4 steps: 300 steps
        for xb in data.batches(x, 256, batch_rng):
            aae.step(xb, opt_aae, batch_rng)
            ae.reconstruction_phase(Tensor(xb), opt_ae.rec)
    assert mmd(aae) < start / 5, (start, mmd(aae))
    assert mmd(ae) > 2 * mmd(aae), (mmd(ae), mmd(aae))


def train_small(out=None, epochs=2, resume=False, seed=3, prior="supervised"):
    rng = np.random.default_rng(0)
    x, x_test = toy_points(256, rng), toy_points(64, rng)
    y, y_test = rng.integers(0, 10, 256), rng.integers(0, 10, 64)
    model = tiny(prior, seed=seed)
    history = fit_aae(model, x, x_test, epochs, y_train=y, y_test=y_test, batch_size=64,
                      seed=seed, out=out, resume=resume, log=lambda *_: None)
    return model, history


def strip(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def test_same_seed_gives_identical_losses():
    _, a = train_small()
    _, b = train_small()
    _, c = train_small(seed=4)
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)
    assert set(a[-1]) >= {"train_rec", "train_disc", "train_gen", "train_disc_accuracy",
                          "test_rec", "test_disc_accuracy", "test_mmd", "test_mmd_floor"}


def test_resume_continues_exactly(tmp_path):
    straight, h_straight = train_small(str(tmp_path / "a"), 3)
    train_small(str(tmp_path / "b"), 1)  # interrupted after one epoch
    resumed, h_resumed = train_small(str(tmp_path / "b"), 3, resume=True)
    assert strip(h_resumed) == strip(h_straight)
    for (name, p), q in zip(straight.named_parameters(), resumed.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_a_non_finite_loss_stops_training():
    model = tiny()
    model.decoder[0].bias.data[:] = np.nan
    x = toy_points(64, np.random.default_rng(0))
    with pytest.raises(FloatingPointError, match="rec is nan at epoch 1, step 1"):
        fit_aae(model, x, x, 1, log=lambda *_: None)


def test_sample_reconstruct_shapes_on_digits():
    (x, _), _ = data.load("mnist-5k")
    x = data.to_float(x[:4])
    model = AAE.mlp(prior="supervised", hidden=8, rng=np.random.default_rng(0))
    images = model.sample(3, np.random.default_rng(0), labels=np.array([1, 2, 3]))
    assert images.shape == (3, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    r = model.reconstruct(x)
    assert r.shape == x.shape and r.min() >= 0 and r.max() <= 1
    assert encode_all(model, x, batch_size=3).shape == (4, 2)


# ---------------------------------------------------------------- priors


def moments(z):
    return z.mean(0), np.cov(z.T)


def test_gaussian_prior_has_zero_mean_and_identity_covariance():
    mean, cov = moments(samplers.make("gaussian", 3).sample(40_000, np.random.default_rng(0)))
    np.testing.assert_allclose(mean, 0, atol=0.03)
    np.testing.assert_allclose(cov, np.eye(3), atol=0.03)


def test_radial_prior_moments_and_components():
    p = samplers.RadialMixture()
    r, s_r, s_t = p.radius, p.radial_std, p.tangential_std
    mean, cov = moments(p.sample(40_000, np.random.default_rng(0)))
    np.testing.assert_allclose(mean, 0, atol=0.05)
    np.testing.assert_allclose(cov, 0.5 * (r ** 2 + s_r ** 2 + s_t ** 2) * np.eye(2), atol=0.1)
    # a label picks its component: centre r·(cos θ_k, sin θ_k), std σ_r along, σ_t across
    labels = np.repeat(np.arange(10), 2000)
    z = p.sample(len(labels), np.random.default_rng(1), labels=labels)
    for k, theta in enumerate(p.angles()):
        zk = z[labels == k]
        along = zk @ np.array([np.cos(theta), np.sin(theta)])  # radial coordinate
        across = zk @ np.array([-np.sin(theta), np.cos(theta)])  # tangential coordinate
        assert along.mean() == pytest.approx(r, abs=0.04)
        assert along.std() == pytest.approx(s_r, rel=0.1)
        assert abs(across.mean()) < 0.01
        assert across.std() == pytest.approx(s_t, rel=0.1)


def test_swiss_roll_lies_on_its_spiral_with_the_right_moments():
    rng = np.random.default_rng(0)
    z = samplers.SwissRoll(noise=0.0).sample(20_000, rng)
    radius = np.hypot(z[:, 0], z[:, 1])
    assert radius.max() <= 3 + 1e-12
    # on the curve: the angle is 4π·s = (4π/3)·radius, modulo 2π
    turn = np.angle(np.exp(1j * (np.arctan2(z[:, 1], z[:, 0]) - 4 * math.pi * radius / 3)))
    np.testing.assert_allclose(turn, 0, atol=1e-9)
    # moments against quadrature: s = √u has density 2s on [0, 1]
    s = (np.arange(200_000) + 0.5) / 200_000
    w = 2 * s / len(s)
    curve = 3 * s[:, None] * np.stack([np.cos(4 * math.pi * s), np.sin(4 * math.pi * s)], 1)
    mean = w @ curve
    cov = (curve - mean).T @ ((curve - mean) * w[:, None])
    noisy = samplers.SwissRoll(noise=0.1).sample(40_000, rng)
    np.testing.assert_allclose(noisy.mean(0), mean, atol=0.03)
    np.testing.assert_allclose(np.cov(noisy.T), cov + 0.01 * np.eye(2), atol=0.05)
    # a label picks its tenth of the roll, centre to rim
    labels = rng.integers(0, 10, 5000)
    radius = np.hypot(*samplers.SwissRoll(noise=0.0).sample(5000, rng, labels=labels).T)
    assert np.all(radius >= 3 * np.sqrt(labels / 10) - 1e-12)
    assert np.all(radius <= 3 * np.sqrt((labels + 1) / 10) + 1e-12)


@pytest.mark.parametrize("name", samplers.NAMES)
def test_priors_are_deterministic_given_a_seed(name):
    p = samplers.make(name, 2)
    labels = np.arange(50) % 10 if p.conditional else None
    a = p.sample(50, np.random.default_rng(7), labels=labels)
    b = p.sample(50, np.random.default_rng(7), labels=labels)
    c = p.sample(50, np.random.default_rng(8), labels=labels)
    assert a.shape == (50, 2) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unknown_or_misfitting_priors_get_clear_errors():
    with pytest.raises(ValueError, match="unknown prior 'laplace'; known: gaussian, radial"):
        samplers.make("laplace", 2)
    for name in ("radial", "swiss-roll", "supervised"):
        with pytest.raises(ValueError, match=f"'{name}' prior is 2-D.*3 dimensions"):
            samplers.make(name, 3)
        with pytest.raises(ValueError, match="2-D"):
            AAE.mlp(latent_dim=8, prior=name, hidden=4)
    assert samplers.make("gaussian", 8).latent_dim == 8
    with pytest.raises(ValueError, match="needs the labels"):
        samplers.make("supervised", 2).sample(4, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.9"):
        samplers.make("radial", 2).sample(2, np.random.default_rng(0), labels=np.array([3, 10]))
    with pytest.raises(ValueError, match="takes no labels"):
        samplers.make("gaussian", 2).sample(2, np.random.default_rng(0), labels=np.array([0, 1]))


# ---------------------------------------------------------------- the MMD


def mmd_naive(a, b, h):
    k = lambda u, v: math.exp(-np.sum((u - v) ** 2) / (2 * h * h))
    mean = lambda p, q: sum(k(u, v) for u in p for v in q) / (len(p) * len(q))
    return mean(a, a) + mean(b, b) - 2 * mean(a, b)


def test_mmd_matches_the_definition_and_behaves_like_a_distance():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((30, 3)), rng.standard_normal((20, 3)) + 0.5
    assert mmd_rbf(a, b, 1.3) == pytest.approx(mmd_naive(a, b, 1.3), rel=1e-10)
    h = median_heuristic(np.concatenate([a, b]))
    pooled = np.concatenate([a, b])
    distances = [np.linalg.norm(u - v) for i, u in enumerate(pooled) for v in pooled[i + 1:]]
    assert h == pytest.approx(np.median(distances), rel=1e-10)
    assert mmd_rbf(a, b) == pytest.approx(mmd_naive(a, b, h), rel=1e-10)
    assert mmd_rbf(a, b) == pytest.approx(mmd_rbf(b, a), rel=1e-12)
    assert mmd_rbf(a, a) == pytest.approx(0, abs=1e-12)
    # the floor: two samples of one distribution, against growing shifts
    x, y = rng.standard_normal((1000, 2)), rng.standard_normal((1000, 2))
    h = median_heuristic(x)
    floor = mmd_rbf(x, y, h)
    shifted = [mmd_rbf(x, y + shift, h) for shift in (0.3, 1.0, 3.0)]
    assert floor < 0.005 < shifted[0] < shifted[1] < shifted[2]
    with pytest.raises(ValueError, match="mmd_rbf"):
        mmd_rbf(a, b[:, :2])
