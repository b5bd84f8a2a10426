"""The PixelVAE, proven further (issue 22), in float64:

- free bits where they matter: a batch whose latent dimensions sit on both sides of λ, where the
  per-dimension charge Σ_j max(λ, KL_j) and a charge on the total differ; value to 1e-12 and every
  gradient to 1e-10 against the objective written out by hand; and a learned prior's charge on the
  total, max(dλ, KL), on both sides of dλ;
- decompressions draw z ~ q(z|x), not its mean, and pixels from p(x|z), not its mode: both pinned
  by their distributions, within 4 standard errors;
- on a model small enough to integrate (3×3 binary images, a 1-D z integrated by quadrature), the
  IWAE estimate of −ln p(x) rises to the exact value as k grows (its mean stays above it within 3
  standard errors, falls with k, and the gap at k = 256 is under a tenth of the ELBO's), and the
  mixture's and the VampPrior's one-sample KL are unbiased (within 4 standard errors).
"""
import itertools

import numpy as np
import pytest

from minivae.distributions import Normal
from minivae.metrics import iwae_nll
from minivae.models import pixelvae as pixelvae_module
from minivae.models.networks import mlp_encoder
from minivae.models.pixelvae import PixelVAE
from minivae.tensor import Tensor


def tiny(latent_dim=3, seed=0, **config):
    return PixelVAE.gated(latent_dim, channels=2, layers=1, image_shape=(1, 8, 8),
                          rng=np.random.default_rng(seed), dtype=np.float64, **config)


def binary(shape, seed=1, p=0.4):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.float64)


# ---------------------------------------------------------------- free bits where they matter


def grads(model) -> dict:
    return {name: p.grad.copy() for name, p in model.named_parameters()}


def zero_grads(model):
    for p in model.parameters():
        p.grad = None


def test_free_bits_charge_each_dimension_when_some_are_above_lambda_and_some_below():
    """Σ_j max(λ, KL_j): the dimensions below λ cost a constant (no gradient), those above their
    KL, weighted by β. λ is set between the batch's KL_j, so that per dimension and on the total
    (max(dλ, Σ_j KL_j)) give different numbers: the only case where the two differ."""
    x = binary((4, 1, 8, 8))
    model = tiny(beta=0.7)
    model.encoder[5].bias.data[0] = 2.0  # mu_0 far from 0: dimension 0 carries a large KL
    q = model.encode(Tensor(x))
    kl_j = q.kl_standard().data.sum(0) / len(x)  # (3,) batch-mean KL per dimension
    lam = float(np.sort(kl_j)[1:].mean())  # above the smallest KL_j, below the largest
    above = kl_j > lam
    assert 0 < above.sum() < 3
    per_dimension, total = np.maximum(lam, kl_j).sum(), max(3 * lam, kl_j.sum())
    assert abs(per_dimension - total) > 0.01  # the case where it matters
    model.config.free_bits = lam

    loss, parts = model.loss(Tensor(x), np.random.default_rng(5))
    assert loss.item() == pytest.approx(parts["rec"] + 0.7 * per_dimension, rel=1e-12)
    loss.backward()
    theirs = grads(model)
    zero_grads(model)
    # by hand: rec + β·Σ_{j above λ} KL_j, at the same eps
    q = model.encode(Tensor(x))
    z = q.rsample(np.random.default_rng(5))
    rec = -model.log_likelihood(x, z).sum() / len(x)
    kl = (q.kl_standard().sum(axis=0) / len(x) * above.astype(np.float64)).sum()
    (rec + 0.7 * kl).backward()
    for name, g in grads(model).items():
        np.testing.assert_allclose(theirs[name], g, rtol=0, atol=1e-10, err_msg=name)
    assert np.abs(theirs["encoder.5.bias"]).max() > 1e-3


@pytest.mark.parametrize("prior", ["mixture", "vamp"])
def test_a_learned_priors_free_bits_charge_the_total_kl_on_both_sides_of_d_lambda(prior):
    """A learned prior's KL does not split over the dimensions: it is charged max(dλ, KL). Below
    dλ the charge is constant: the prior gets no gradient and the encoder learns from the
    reconstruction alone; above dλ everything is as without free bits. Values to 1e-12, gradients
    to 1e-10."""
    x = binary((4, 1, 8, 8))

    def make(free_bits):
        model = tiny(beta=0.5, free_bits=free_bits, prior=prior, prior_components=3,
                     prior_data=binary((5, 1, 8, 8), seed=9))
        model.encoder[5].weight.data *= 10  # q(z|x) far apart for different images: a real KL
        return model

    reference = make(0.0)
    loss, parts = reference.loss(Tensor(x), np.random.default_rng(5))
    kl = parts["kl"]
    assert kl > 0.1
    loss.backward()
    with_kl = grads(reference)
    reference.kl_weight = 0.0  # the reconstruction alone
    zero_grads(reference)
    reference.loss(Tensor(x), np.random.default_rng(5))[0].backward()
    without_kl = grads(reference)
    for d_lambda, expected in [(1.5 * kl, without_kl), (0.5 * kl, with_kl)]:
        model = make(d_lambda / 3)  # λ per dimension, 3 dimensions
        loss, parts = model.loss(Tensor(x), np.random.default_rng(5))
        assert parts["kl"] == pytest.approx(kl, rel=1e-12)
        assert loss.item() == pytest.approx(parts["rec"] + 0.5 * max(d_lambda, kl), rel=1e-12)
        loss.backward()
        for name, g in grads(model).items():
            np.testing.assert_allclose(g, expected[name], rtol=0, atol=1e-10,
                                       err_msg=f"dλ = {d_lambda:.3f}: {name}")


# ---------------------------------------------------------------- decompressions


def capture_generate(model, monkeypatch):
    seen = {}
    generate = model.generate

    def capturing(z, rng, *args, **kwargs):
        seen["z"] = np.array(z)
        return generate(z, rng, *args, **kwargs)

    monkeypatch.setattr(model, "generate", capturing)
    return seen


def test_decompressions_draw_z_from_the_posterior_not_its_mean(monkeypatch):
    """One image, reconstructed N = 400 times in one batch: the codes it was decoded from have the
    posterior's mean (within 4 standard errors, σ/√N) and its standard deviation (within 4 of the
    sample std's standard errors, σ/√(2N))."""
    model = PixelVAE.gated(2, channels=2, layers=1, image_shape=(1, 4, 4),
                           rng=np.random.default_rng(0), dtype=np.float64)
    N = 400
    x = np.tile(binary((1, 1, 4, 4), seed=3), (N, 1, 1, 1))
    seen = capture_generate(model, monkeypatch)
    images = model.reconstruct(x, np.random.default_rng(1))
    assert images.shape == x.shape
    q = model.encode(Tensor(x[:1]))
    mu, sigma = q.mu.data[0], q.sigma.data[0]
    z = seen["z"]
    assert np.all(np.abs(z.mean(0) - mu) < 4 * sigma / np.sqrt(N)), (z.mean(0), mu)
    assert np.all(np.abs(z.std(0) / sigma - 1) < 4 / np.sqrt(2 * N)), (z.std(0), sigma)


def test_decompressions_draw_pixels_from_p_x_given_z_not_its_mode(monkeypatch):
    """Each pixel x_i must be a Bernoulli(p_i) draw, p_i = σ(logit_i(x_<i, z)) teacher-forced on
    the image drawn. Then S = Σ (x_i − p_i)(2p_i − 1) over every pixel of every image has mean 0
    and variance Σ p_i(1 − p_i)(2p_i − 1)² (its terms are martingale differences); |S| must be
    within 4 standard deviations. The mode, x_i = [p_i > ½], makes every term positive."""
    model = PixelVAE.gated(2, channels=3, layers=1, image_shape=(1, 6, 6),
                           rng=np.random.default_rng(2), dtype=np.float64)
    N = 200
    x = binary((N, 1, 6, 6), seed=4)
    seen = capture_generate(model, monkeypatch)
    images = model.reconstruct(x, np.random.default_rng(5))
    p = 1 / (1 + np.exp(-model.decoder(Tensor(images), seen["z"]).data))
    weight = 2 * p - 1
    S = ((images - p) * weight).sum()
    sd = np.sqrt((p * (1 - p) * weight ** 2).sum())
    assert sd > 1  # enough uncertain pixels to tell a draw from the mode
    assert abs(S) < 4 * sd, (S, sd)


# ---------------------------------------------------------------- the quadrature model


Z = np.linspace(-10, 10, 401)  # the grid for z, step 0.05: smooth, Gaussian-tailed integrands
ALL_IMAGES = np.array(list(itertools.product([0.0, 1.0], repeat=9))).reshape(512, 1, 3, 3)


def quadrature_model(monkeypatch, prior="standard", seed=0):
    """A PixelVAE over 3×3 binary images with a 1-D z: an MLP encoder (the conv encoder needs
    at least 4×4) and a PixelCNN whose gates are driven hard by z (conditioning weights × 10), so
    that z matters; q(z|x) is shifted by +1 (its mean's bias), so that the ELBO is clearly below
    ln p(x) while q stays wide enough for IWAE to converge fast."""
    monkeypatch.setattr(pixelvae_module, "conv_encoder",
                        lambda out, shape, rng, dtype: mlp_encoder([9, 16, out], rng, dtype))
    model = PixelVAE.gated(1, channels=3, layers=1, image_shape=(1, 3, 3), prior=prior,
                           prior_components=3, prior_data=ALL_IMAGES[[5, 300, 511]],
                           rng=np.random.default_rng(seed), dtype=np.float64)
    for name, p in model.named_parameters():
        if ".cond" in name:
            p.data *= 10
    model.encoder[-1].bias.data[:] = [1.0, 0.0]  # mu, log_var
    if prior == "vamp":  # q(z|x) far apart for different images, so q(z|x) is not p(z)
        model.encoder[-1].weight.data *= 5
    if prior == "mixture":
        model.prior.means.data[:] = [[-2.0], [0.5], [3.0]]
        model.prior.log_vars.data[:] = [[-1.0], [0.0], [-0.5]]
        model.prior.logits.data[:] = [0.3, -0.2, 0.0]
    return model


def exact_log_px(model, x) -> np.ndarray:
    """ln p(x) = ln ∫ p(x|z) p(z) dz by the rectangle rule on Z, (B,). The rule converges
    geometrically for such integrands: halving the step from 0.1 to 0.05 moves ln p(x) by 5e-6,
    and the 512 probabilities add up to 1 within 1e-13."""
    if len(x) > 32:  # 32 images · 401 codes at a time: one pass of all of them is 5x slower
        return np.concatenate([exact_log_px(model, x[i:i + 32]) for i in range(0, len(x), 32)])
    B, G = len(x), len(Z)
    z = np.tile(Z, B)[:, None]  # (B·G, 1)
    log_joint = model.log_joint(np.repeat(x, G, axis=0), z).data.reshape(B, G)
    top = log_joint.max(1, keepdims=True)
    return top[:, 0] + np.log(np.exp(log_joint - top).sum(1) * (Z[1] - Z[0]))


def test_the_quadrature_is_exact_every_3x3_images_probability_adds_to_one(monkeypatch):
    model = quadrature_model(monkeypatch)
    log_px = exact_log_px(model, ALL_IMAGES)
    assert abs(np.exp(log_px).sum() - 1) < 1e-10


def test_iwae_rises_to_the_exact_log_likelihood_as_k_grows(monkeypatch):
    """For three images, 400 independent estimates by metrics.iwae_nll at each k in 1, 4, 16,
    64, 256 (20 calls, each the mean over 20 copies of the image). With m_k their mean and s_k its
    standard error (from the spread of the 20 calls):
      the bound   m_k ≥ −ln p(x) − 3 s_k                         (E[IWAE_k] ≤ ln p(x))
      its order   m_k ≤ m_{k/4} + 3 √(s_k² + s_{k/4}²)            (IWAE_k rises with k)
      the limit   m_256 − (−ln p(x)) < (m_1 − (−ln p(x))) / 10,   with m_1's gap > 5 s_1."""
    model = quadrature_model(monkeypatch)
    x = ALL_IMAGES[[37, 200, 455]]
    exact = -exact_log_px(model, x)
    rng = np.random.default_rng(11)
    M, R, ks = 20, 20, [1, 4, 16, 64, 256]
    for i in range(len(x)):
        means, ses = [], []
        for k in ks:
            copies = np.repeat(x[i:i + 1], R, axis=0)
            runs = [iwae_nll(model, copies, k, rng, batch_size=R) for _ in range(M)]
            means.append(np.mean(runs))
            ses.append(np.std(runs, ddof=1) / np.sqrt(M))
        gaps = np.array(means) - exact[i]
        for k, gap, se in zip(ks, gaps, ses):
            assert gap > -3 * se, f"image {i}: IWAE_{k} is above ln p(x): gap {gap:.4f}, s {se:.4f}"
        for a, b in zip(range(len(ks) - 1), range(1, len(ks))):
            assert gaps[b] < gaps[a] + 3 * np.hypot(ses[a], ses[b]), \
                f"image {i}: k = {ks[b]} is worse than k = {ks[a]}: {gaps}"
        assert gaps[0] > 5 * ses[0], f"image {i}: the ELBO's gap is too small to test: {gaps}"
        assert gaps[-1] < gaps[0] / 10, f"image {i}: no approach to ln p(x): {gaps}"


@pytest.mark.parametrize("prior", ["mixture", "vamp"])
def test_a_learned_priors_one_sample_kl_is_unbiased(monkeypatch, prior):
    """The kl the loss reports (eval mode) is the batch mean of ln q(z|x) − ln p(z) at its own
    z ~ q(z|x); over N = 20000 draws its mean must be KL(q ‖ p) by quadrature,
    ∫ q(z) [ln q(z) − ln p(z)] dz, within 4 standard errors. And it is that batch mean of the
    prior's per-image estimate at the loss's own draws, to 1e-10."""
    model = quadrature_model(monkeypatch, prior=prior)
    model.eval()
    N = 20000
    for image in (3, 170):
        x = np.tile(ALL_IMAGES[image:image + 1], (N, 1, 1, 1))
        q1 = model.encode(Tensor(x[:1]))
        log_q = Normal(q1.mu.data[0, 0], q1.log_var.data[0, 0]).log_prob(Z).data  # (G,)
        log_p = model.prior.log_prob(Z[:, None]).data
        exact = (np.exp(log_q) * (log_q - log_p)).sum() * (Z[1] - Z[0])
        _, parts = model.loss(Tensor(x), np.random.default_rng(image))
        q = model.encode(Tensor(x))
        per_image = model.prior.kl(q, q.rsample(np.random.default_rng(image))).data[:, 0]  # (N,)
        assert parts["kl"] == pytest.approx(per_image.mean(), rel=1e-10)
        se = per_image.std(ddof=1) / np.sqrt(N)
        assert abs(per_image.mean() - exact) < 4 * se, (per_image.mean(), exact, se)
        assert exact > 20 * se  # a KL clearly above 0, so a bias would show
