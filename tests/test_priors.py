"""The learned priors p(z): the mixture density against NumPy, its special cases, its samples'
moments, its gradients, the one-sample KL against the closed form and against quadrature, the
VampPrior as the aggregate posterior, a maximum-likelihood fit, and the models that use them."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minivae
from minivae import data, optim, priors
from minivae.distributions import Normal
from minivae.metrics import iwae_nll
from minivae.models.pixelvae import PixelVAE
from minivae.models.vae import VAE
from minivae.tensor import Tensor

EXAMPLES = settings(max_examples=30, deadline=None)


def log_mixture_density(z, means, log_vars, logits):
    """ln Σ_k π_k Π_j N(z_j | m_kj, σ²_kj), written directly in NumPy (float64, no logsumexp
    trick beyond a shift), (B,)."""
    pi = np.exp(logits - logits.max())
    pi /= pi.sum()
    var = np.exp(log_vars)
    diff = z[:, None, :] - means[None]  # (B, K, d)
    log_n = -0.5 * (np.log(2 * np.pi * var)[None] + diff ** 2 / var[None]).sum(-1)  # (B, K)
    top = log_n.max(1, keepdims=True)
    return np.log((pi[None] * np.exp(log_n - top)).sum(1)) + top[:, 0]


def mixture(d=3, K=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    p = priors.MixturePrior(d, K, rng, dtype)
    p.log_vars.data = rng.uniform(-1, 1, (K, d)).astype(dtype)
    p.logits.data = rng.standard_normal(K).astype(dtype)
    return p


def linear_encoder(d_in, d, seed=0):
    """q(z|x) = N(W x, diag exp(V x)) on flattened x: a tiny encoder for the VampPrior's tests."""
    rng = np.random.default_rng(seed)
    W, V = 0.5 * rng.standard_normal((d, d_in)), 0.3 * rng.standard_normal((d, d_in))

    def encode(x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        flat = x.reshape(x.shape[0], -1)
        return Normal(flat @ W.T, flat @ V.T)

    return encode


# ---------------------------------------------------------------- the density


@EXAMPLES
@given(d=st.integers(1, 4), K=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_mixture_log_prob_is_the_direct_numpy_density(d, K, seed):
    p = mixture(d, K, seed)
    z = 2 * np.random.default_rng(seed + 1).standard_normal((6, d))
    expected = log_mixture_density(z, p.means.data, p.log_vars.data, p.logits.data)
    np.testing.assert_allclose(p.log_prob(z).data, expected, rtol=1e-11, atol=1e-11)


def test_one_component_is_one_gaussian_and_zero_parameters_are_the_standard_normal():
    p = mixture(d=3, K=1)
    z = np.random.default_rng(2).standard_normal((5, 3))
    one = Normal(p.means.data[0], p.log_vars.data[0]).log_prob(z).data.sum(-1)
    np.testing.assert_allclose(p.log_prob(z).data, one, rtol=1e-12)
    p.means.data[:] = 0
    p.log_vars.data[:] = 0
    standard = priors.StandardPrior(3, np.float64)
    np.testing.assert_allclose(p.log_prob(z).data, standard.log_prob(z).data, rtol=1e-12)
    np.testing.assert_allclose(standard.log_prob(z).data, -0.5 * (z ** 2 + np.log(2 * np.pi)).sum(-1))


@pytest.mark.parametrize("which", ["mixture", "vamp"])
def test_samples_have_the_mixtures_mean_and_covariance(which):
    if which == "mixture":
        p = mixture(d=2, K=3, seed=3)
    else:
        images = np.random.default_rng(4).random((3, 1, 2, 2))
        p = priors.VampPrior(linear_encoder(4, 2), images)
    mu, log_var, log_w = p.components()
    w = np.exp(log_w)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    mean = w @ mu  # (d,)
    second = sum(w[k] * (np.diag(np.exp(log_var[k])) + np.outer(mu[k], mu[k])) for k in range(len(w)))
    cov = second - np.outer(mean, mean)
    n = 40000
    z = p.sample(n, np.random.default_rng(5))
    assert z.shape == (n, 2)
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(z.mean(0) - mean) < 5 * se_mean)
    # the variance of a sample covariance entry: E[(z_i z_j)²]-type bound, estimated from z itself
    centred = z - z.mean(0)
    products = centred[:, :, None] * centred[:, None, :]  # (n, d, d)
    se_cov = products.std(0) / np.sqrt(n)
    assert np.all(np.abs(np.cov(z.T) - cov) < 5 * se_cov)


def test_log_prob_gradients_wrt_z_means_log_vars_logits_and_pseudo_inputs():
    p = mixture(d=2, K=3, seed=6)
    z = np.random.default_rng(7).standard_normal((4, 2))
    minivae.gradcheck(lambda z_, m, v, a: _with(p, means=m, log_vars=v, logits=a).log_prob(z_),
                      z, p.means.data, p.log_vars.data, p.logits.data)
    u = np.random.default_rng(8).random((3, 1, 2, 2))
    vamp = priors.VampPrior(linear_encoder(4, 2), u)
    minivae.gradcheck(lambda z_, u_: _with(vamp, pseudo_inputs=u_).log_prob(z_), z, u)


def _with(prior, **tensors):
    """The prior with some parameters replaced by the given Tensors (for gradcheck)."""
    for name, t in tensors.items():
        setattr(prior, name, t)
    return prior


# ---------------------------------------------------------------- the KL


def test_one_sample_kl_averages_to_the_closed_form_under_the_standard_prior():
    """K = 1 with m = 0 and log_var = 0 is N(0, I), so the estimate ln q(z) − ln p(z) over many
    z ~ q must average to Σ_j ½(mu² + σ² − ln σ² − 1) (within 5 standard errors)."""
    rng = np.random.default_rng(9)
    q = Normal(rng.standard_normal(3), rng.uniform(-1, 1, 3))
    p = priors.MixturePrior(3, 1, dtype=np.float64)
    p.means.data[:] = 0
    estimates = p.kl(Normal(np.tile(q.mu.data, (50000, 1)), np.tile(q.log_var.data, (50000, 1))),
                     Tensor(q.mu.data + np.exp(0.5 * q.log_var.data) * rng.standard_normal((50000, 3))))
    closed = priors.StandardPrior(3).kl(q).data.sum()
    assert estimates.shape == (50000, 1)
    se = estimates.data.std() / np.sqrt(len(estimates.data))
    assert abs(estimates.data.mean() - closed) < 5 * se


def test_one_sample_kl_averages_to_the_integral_under_a_1d_mixture_prior():
    p = mixture(d=1, K=3, seed=10)
    p.means.data[:] = [[-2.0], [0.5], [3.0]]
    mu, log_var = np.array([0.7]), np.array([-0.4])
    grid = np.linspace(-12, 12, 200001)[:, None]  # z, (G, 1)
    log_q = Normal(mu, log_var).log_prob(grid).data[:, 0]
    integrand = np.exp(log_q) * (log_q - p.log_prob(grid).data)
    exact = np.trapezoid(integrand, grid[:, 0])
    rng = np.random.default_rng(11)
    n = 100000
    z = mu + np.exp(0.5 * log_var) * rng.standard_normal((n, 1))
    est = p.kl(Normal(np.tile(mu, (n, 1)), np.tile(log_var, (n, 1))), Tensor(z)).data[:, 0]
    assert abs(est.mean() - exact) < 5 * est.std() / np.sqrt(n)
    assert exact > 0


# ---------------------------------------------------------------- the VampPrior


def test_vamp_components_are_the_encoder_at_the_pseudo_inputs_with_equal_weights():
    encode = linear_encoder(4, 2)
    u = np.random.default_rng(12).random((5, 1, 2, 2))
    p = priors.VampPrior(encode, u)
    mu, log_var, log_w = p.components()
    q = encode(u)
    np.testing.assert_array_equal(mu, q.mu.data)
    np.testing.assert_array_equal(log_var, q.log_var.data)
    np.testing.assert_allclose(log_w, -np.log(5), rtol=1e-15)
    assert p.latent_dim == 2 and [n for n, _ in p.named_parameters()] == ["pseudo_inputs"]


def test_vamp_with_the_whole_training_set_is_the_aggregate_posterior():
    encode = linear_encoder(4, 2, seed=1)
    x = np.random.default_rng(13).random((20, 1, 2, 2))
    p = priors.VampPrior(encode, x)
    z = np.random.default_rng(14).standard_normal((7, 2))
    q = encode(x)
    density = np.mean([np.exp(Normal(q.mu.data[n], q.log_var.data[n]).log_prob(z).data.sum(-1))
                       for n in range(20)], axis=0)  # (1/N) Σ_n q(z | x_n)
    np.testing.assert_allclose(p.log_prob(z).data, np.log(density), rtol=1e-12)


# ---------------------------------------------------------------- learning


def test_maximum_likelihood_recovers_a_known_mixture():
    rng = np.random.default_rng(15)
    means = np.array([[-4.0, 0.0], [4.0, 1.0], [0.0, 5.0]])
    stds = np.array([[0.5, 1.0], [1.0, 0.5], [0.7, 0.7]])
    weights = np.array([0.5, 0.3, 0.2])
    k = rng.choice(3, size=6000, p=weights)
    z = means[k] + stds[k] * rng.standard_normal((6000, 2))
    p = priors.MixturePrior(2, 3, np.random.default_rng(16), np.float64)
    p.means.data = z[[0, 1, 2]] + 0.0  # start at three of the points, as k-means would
    while len({tuple(np.round(m)) for m in p.means.data}) < 3:  # three different starts
        p.means.data = z[rng.choice(len(z), 3)]
    opt = optim.Adam(p.parameters(), lr=0.05)
    for _ in range(1500):
        loss = -p.log_prob(z).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    mu, log_var, log_w = p.components()
    order = [int(np.argmin(((mu - m) ** 2).sum(1))) for m in means]  # match the components
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(mu[order], means, atol=0.1)
    np.testing.assert_allclose(np.exp(0.5 * log_var[order]), stds, atol=0.1)
    np.testing.assert_allclose(np.exp(log_w[order]), weights, atol=0.03)


def digits(n=64):
    (x, _), _ = data.load("mnist-5k")
    return data.binarize(data.to_float(x[:n]), np.random.default_rng(0))


@pytest.mark.parametrize("build", [
    lambda x: VAE.mlp(latent_dim=4, hidden=32, rng=np.random.default_rng(0), prior="mixture",
                      prior_components=5),
    lambda x: VAE.mlp(latent_dim=4, hidden=32, rng=np.random.default_rng(0), prior="vamp",
                      prior_components=5, prior_data=x),
    lambda x: PixelVAE.gated(4, channels=4, layers=1, rng=np.random.default_rng(0), prior="vamp",
                             prior_components=3, prior_data=x),
], ids=["vae-mixture", "vae-vamp", "pixelvae-vamp"])
def test_training_moves_the_priors_parameters_and_kl_is_the_one_sample_estimate(build):
    x = digits()
    model = build(x)
    names = [n for n, _ in model.named_parameters() if n.startswith("prior.")]
    in_model = {id(p) for p in model.parameters()}
    assert names and all(id(p) in in_model for p in model.prior.parameters())
    before = [p.data.copy() for p in model.prior.parameters()]
    loss, parts = model.loss(Tensor(x[:16]), np.random.default_rng(1))
    q = model.encode(Tensor(x[:16]))
    z = q.rsample(np.random.default_rng(1))  # the draw the loss made
    estimate = (q.log_prob(z).data.sum(-1) - model.prior.log_prob(z).data).mean()
    assert parts["kl"] == pytest.approx(estimate, rel=1e-5)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is not None and np.any(p.grad != 0) for p in model.prior.parameters())
    opt.step()
    assert all(np.any(p.data != b) for p, b in zip(model.prior.parameters(), before))


def test_iwae_with_one_sample_is_the_elbo_under_a_learned_prior():
    x = digits(8).astype(np.float64)
    model = VAE.mlp(latent_dim=3, hidden=16, rng=np.random.default_rng(2), dtype=np.float64,
                    prior="mixture", prior_components=4)
    q = model.encode(Tensor(x))
    z = q.rsample(np.random.default_rng(3))
    elbo = model.log_joint(x, z).data - q.log_prob(z).data.sum(-1)
    assert iwae_nll(model, x, 1, np.random.default_rng(3), batch_size=8) == pytest.approx(
        -elbo.mean(), rel=1e-12)
    assert iwae_nll(model, x, 50, np.random.default_rng(3)) < -elbo.mean() + 1.0


# ---------------------------------------------------------------- bad input


def test_bad_priors_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="unknown prior 'laplace'; known: standard, mixture, vamp"):
        VAE.mlp(latent_dim=2, prior="laplace")
    with pytest.raises(ValueError, match="at least one component, got 0"):
        VAE.mlp(latent_dim=2, prior="mixture", prior_components=0)
    with pytest.raises(ValueError, match="at least one component"):
        priors.MixturePrior(2, -3)
    with pytest.raises(ValueError, match="is for a 3-D latent, but the model's latent has 2"):
        VAE.mlp(latent_dim=2, prior=priors.MixturePrior(3, 2))
    with pytest.raises(ValueError, match="pass them"):
        VAE.mlp(latent_dim=2, prior="vamp")
    with pytest.raises(ValueError, match="needs 10 training images"):
        VAE.mlp(latent_dim=2, prior="vamp", prior_data=digits(4))
    with pytest.raises(ValueError, match="no z to put a 'mixture' prior on"):
        PixelVAE.gated(0, prior="mixture")
