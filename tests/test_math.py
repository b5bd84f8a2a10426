"""Property tests that prove the math of minivae/distributions.py (issue 4).

Each test says which of the seven properties it proves. References are written here from scratch
in NumPy (densities, quadrature, the multivariate KL, the linear-Gaussian marginal), never taken
from the code under test. Monte-Carlo checks draw from fixed seeds and bound their error by a few
standard errors, so under the derandomized 'ci' profile (tests/conftest.py) every run sees the
same numbers.
docs/derivations.md lists every property with its tolerance and number of examples.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from minivae import Tensor, functional as F, gradcheck, no_grad
from minivae.distributions import (Bernoulli, MixtureOfNormals, Normal, NormalFixedVariance,
                                   kl_normal, kl_normal_standard)

EPS64, EPS32 = np.finfo(np.float64).eps, float(np.finfo(np.float32).eps)


# ---------------------------------------------------------------- references and strategies


def log_normal_pdf(z, mu, var):
    """ln N(z | mu, var), elementwise, from the textbook formula."""
    return -0.5 * np.log(2 * np.pi * var) - (z - mu) ** 2 / (2 * var)


def mvn_log_pdf(z, mean, cov):
    """ln N(z | mean, cov) for a full covariance matrix, via its Cholesky factor; z (..., d)."""
    L = np.linalg.cholesky(cov)
    r = np.linalg.solve(L, (z - mean).reshape(-1, len(mean)).T)  # (d, n)
    log_det = 2 * np.log(np.diag(L)).sum()
    return (-0.5 * (len(mean) * np.log(2 * np.pi) + log_det + (r * r).sum(0))).reshape(z.shape[:-1])


def quadrature_kl(mu1, sigma1, mu2, sigma2, n=20001):
    """∫ q ln(q/p) dz by the trapezoid rule over mu1 ± 12·sigma1 (q's mass beyond is < 1e-32)."""
    z = np.linspace(mu1 - 12 * sigma1, mu1 + 12 * sigma1, n)
    log_q, log_p = log_normal_pdf(z, mu1, sigma1**2), log_normal_pdf(z, mu2, sigma2**2)
    return np.trapezoid(np.exp(log_q) * (log_q - log_p), z)


def grads(fn, arrays, y_bar):
    """Reverse-mode gradients of fn at `arrays` for the upstream cotangent y_bar."""
    xs = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    fn(*xs).backward(y_bar)
    return [x.grad for x in xs]


def reals(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def gaussian_params(draw, shape=None, mu=(-5.0, 5.0), sigma=(0.05, 5.0)):
    """(mu, log_var) arrays of one shape with mu and σ in the issue's ranges."""
    shape = shape or draw(st.tuples(st.integers(1, 3), st.integers(1, 4)))
    m = draw(arrays(np.float64, shape, elements=reals(*mu)))
    s = draw(arrays(np.float64, shape, elements=reals(*sigma)))
    return m, 2 * np.log(s)


# ---------------------------------------------------------------- 1. closed form = quadrature


@settings(max_examples=200)
@given(mu=reals(-5, 5), sigma=reals(0.05, 5))
def test_kl_standard_equals_quadrature(mu, sigma):
    """Property 1: ½(μ² + σ² − ln σ² − 1) = ∫ q ln(q/p) to 1e-6 relative, all three spellings."""
    log_var = np.array([2 * np.log(sigma)])
    numeric = quadrature_kl(mu, sigma, 0.0, 1.0)
    q = Normal(np.array([mu]), log_var)
    spellings = kl_normal_standard(mu, log_var), q.kl_standard().data, q.kl(Normal(0.0, 0.0)).data
    for closed in spellings:
        np.testing.assert_allclose(closed, numeric, rtol=1e-6, atol=1e-12)


@settings(max_examples=200)
@given(mu1=reals(-5, 5), sigma1=reals(0.05, 5), mu2=reals(-5, 5), sigma2=reals(0.05, 5))
def test_kl_two_gaussians_equals_quadrature(mu1, sigma1, mu2, sigma2):
    """Property 1: KL(N(μ1, σ1²) ‖ N(μ2, σ2²)) in closed form = ∫ q ln(q/p) to 1e-6 relative."""
    lv1, lv2 = 2 * np.log(sigma1), 2 * np.log(sigma2)
    numeric = quadrature_kl(mu1, sigma1, mu2, sigma2)
    np.testing.assert_allclose(kl_normal(mu1, lv1, mu2, lv2), numeric, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(Normal(mu1, lv1).kl(Normal(mu2, lv2)).data, numeric,
                               rtol=1e-6, atol=1e-12)


def test_notes_closing_formula_has_a_sign_slip():
    """The notes end with Σ(−½ ln σ² + ½μ² + ½σ² + ½); quadrature decides for −½ (see
    docs/derivations.md, section 7)."""
    for mu, sigma in [(0.0, 1.0), (1.5, 0.3), (-2.0, 3.0)]:
        numeric = quadrature_kl(mu, sigma, 0.0, 1.0)
        notes = -0.5 * np.log(sigma**2) + 0.5 * mu**2 + 0.5 * sigma**2 + 0.5
        np.testing.assert_allclose(notes - 1.0, numeric, rtol=1e-9, atol=1e-12)  # off by exactly 1
        np.testing.assert_allclose(kl_normal_standard(mu, 2 * np.log(sigma)), numeric,
                                   rtol=1e-9, atol=1e-12)
    # Their first line, ½(σ² + 1/σ² − 2), is not this KL either: it is KL(q‖p) + KL(p‖q) at μ = 0.
    for sigma in (0.3, 1.0, 3.0):
        first_line = 0.5 * (sigma**2 + 1 / sigma**2 - 2)
        both_ways = quadrature_kl(0.0, sigma, 0.0, 1.0) + quadrature_kl(0.0, 1.0, 0.0, sigma)
        np.testing.assert_allclose(first_line, both_ways, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- 2. factorisation and Monte Carlo


@settings(max_examples=100)
@given(d=st.integers(1, 6), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_diagonal_kl_is_sum_of_per_dimension_kls_and_matches_monte_carlo(d, data, seed):
    """Property 2: the d-dim KL (general-covariance formula) = Σ_i KL_i; a 20000-sample Monte-Carlo
    estimate with the joint densities lies within 5 standard errors of it."""
    mu1, lv1 = data.draw(gaussian_params(shape=(d,)))
    mu2, lv2 = data.draw(gaussian_params(shape=(d,)))
    per_dimension = Normal(mu1, lv1).kl(Normal(mu2, lv2)).data  # (d,)
    assert per_dimension.shape == (d,)
    cov1, cov2 = np.diag(np.exp(lv1)), np.diag(np.exp(lv2))
    inv2, diff = np.linalg.inv(cov2), mu2 - mu1
    joint = 0.5 * (np.trace(inv2 @ cov1) + diff @ inv2 @ diff - d
                   + np.linalg.slogdet(cov2)[1] - np.linalg.slogdet(cov1)[1])
    np.testing.assert_allclose(per_dimension.sum(), joint, rtol=1e-9, atol=1e-12)

    n = 20000
    z = Normal(mu1, lv1).rsample(np.random.default_rng(seed), (n,)).data  # (n, d)
    log_ratio = mvn_log_pdf(z, mu1, cov1) - mvn_log_pdf(z, mu2, cov2)  # (n,)
    standard_error = log_ratio.std(ddof=1) / np.sqrt(n)
    assert abs(log_ratio.mean() - joint) <= 5 * standard_error + 1e-12


# ---------------------------------------------------------------- 3. KL ≥ 0, = 0 iff equal


# Differences of 0, of 1e-15 ... 1e-3 (where a naive exp(δ) − 1 − δ rounds below 0), and up to 3.
tiny = st.builds(lambda m, e: m * 10.0**e, reals(-1, 1), st.integers(-15, -3))
small_or_zero = st.sampled_from([0.0]) | tiny | reals(-3, 3)


@settings(max_examples=300)
@given(q=gaussian_params(shape=(4,)), dmu=arrays(np.float64, 4, elements=small_or_zero),
       dlv=arrays(np.float64, 4, elements=small_or_zero))
def test_kl_is_nonnegative(q, dmu, dlv):
    """Property 3: KL ≥ 0 in floating point too, even for nearly equal pairs (the expm1 form)."""
    mu, lv = q
    for dtype in (np.float64, np.float32):
        a, b, c, e = (np.asarray(v, dtype) for v in (mu, lv, mu + dmu, lv + dlv))
        assert np.all(kl_normal(a, b, c, e) >= 0)
        assert np.all(kl_normal_standard(a, b) >= 0)
        assert np.all(kl_normal_standard(c - a, e - b) >= 0)  # nearly N(0, 1)
        assert np.all(Normal(c - a, e - b).kl_standard().data >= 0)
        assert np.all(Normal(a, b).kl(Normal(c, e)).data >= 0)
        assert np.all(Normal(a, b).kl_standard().data >= 0)


@settings(max_examples=200)
@given(q=gaussian_params(shape=(3,)), dmu=reals(1e-6, 3), dlv=reals(1e-6, 3),
       which=st.sampled_from(["mu", "log_var", "both"]), sign=st.sampled_from([-1.0, 1.0]))
def test_kl_is_zero_exactly_when_equal(q, dmu, dlv, which, sign):
    """Property 3: KL(q ‖ q) == 0.0 exactly; a change of ≥ 1e-6 in μ or ln σ² makes it > 0."""
    mu, lv = q
    assert np.all(kl_normal(mu, lv, mu, lv) == 0.0)
    assert np.all(Normal(mu, lv).kl(Normal(mu, lv)).data == 0.0)
    assert np.all(kl_normal_standard(np.zeros(3), np.zeros(3)) == 0.0)
    mu2 = mu + sign * dmu * (which != "log_var")
    lv2 = lv + sign * dlv * (which != "mu")
    assert np.all(kl_normal(mu, lv, mu2, lv2) > 0)
    assert np.all(Normal(mu, lv).kl(Normal(mu2, lv2)).data > 0)
    assert np.all(kl_normal_standard(mu2 - mu, lv2 - lv) > 0)


# ---------------------------------------------------------------- 4. rsample's moments


def moments_agree(z, mu, var, k=5.0):
    """Sample mean and variance of z (n, ...) within k standard errors of mu and var."""
    n = len(z)
    mean_ok = np.abs(z.mean(0) - mu) <= k * np.sqrt(var / n)
    var_ok = np.abs(z.var(0, ddof=1) - var) <= k * var * np.sqrt(2 / (n - 1))
    return bool(np.all(mean_ok) and np.all(var_ok))


@settings(max_examples=100)
@given(q=gaussian_params(shape=(4,), sigma=(0.05, 7.0)), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_rsample_has_the_moments_the_kl_assumes(q, seed, dtype):
    """Property 4: z = rsample() has mean μ and variance exp(log_var), the σ² of the KL."""
    mu, lv = (np.asarray(v, dtype) for v in q)
    z = Normal(mu, lv).rsample(np.random.default_rng(seed), (20000,)).data  # (20000, 4)
    assert z.dtype == dtype
    assert moments_agree(z.astype(np.float64), mu.astype(np.float64), np.exp(lv.astype(np.float64)))


def test_moment_test_catches_std_versus_variance_bug():
    """numpy-ml's bug, exp(log_var) used as the standard deviation, fails the test above."""
    mu, lv = np.zeros(3), np.array([-1.5, 0.8, 2.0])
    eps = np.random.default_rng(0).standard_normal((20000, 3))
    assert moments_agree(mu + np.exp(0.5 * lv) * eps, mu, np.exp(lv))
    assert not moments_agree(mu + np.exp(lv) * eps, mu, np.exp(lv))


# ---------------------------------------------------------------- 5. hand-derived gradients


@settings(max_examples=60)
@given(q=gaussian_params(sigma=(0.1, 3.0)), k=st.integers(1, 3), shared_log_var=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_rsample_gradient_equals_autodiff_and_finite_differences(q, k, shared_log_var, seed):
    """Property 5: Reparameterize's mu_bar = z_bar, log_var_bar = ½ z_bar σ eps, against autodiff of
    mu + exp(½ log_var)·eps and against central differences (also with log_var broadcast)."""
    mu, lv = q
    lv = lv[0] if shared_log_var else lv  # (d,) broadcast over the batch
    eps = np.random.default_rng(seed).standard_normal((k,) + mu.shape)

    def hand(m, v):
        return Normal(m, v).rsample(np.random.default_rng(seed), (k,))

    def primitive(m, v):
        return m + F.exp(0.5 * v) * eps

    z_bar = np.random.default_rng(seed + 1).standard_normal((k,) + mu.shape)
    np.testing.assert_allclose(hand(Tensor(mu), Tensor(lv)).data,
                               primitive(Tensor(mu), Tensor(lv)).data)
    for g_hand, g_auto in zip(grads(hand, (mu, lv), z_bar), grads(primitive, (mu, lv), z_bar)):
        np.testing.assert_allclose(g_hand, g_auto, rtol=1e-12, atol=1e-12)
    gradcheck(hand, mu, lv)


@settings(max_examples=60)
@given(q=gaussian_params(sigma=(0.1, 3.0)), seed=st.integers(0, 2**32 - 1))
def test_kl_standard_gradient_equals_autodiff_and_finite_differences(q, seed):
    """Property 5: KLStandardNormal's mu_bar = μ, log_var_bar = ½(σ² − 1), against autodiff of
    ½(μ² + exp(log_var) − log_var − 1) and against central differences."""
    mu, lv = q
    kl_bar = np.random.default_rng(seed).standard_normal(mu.shape)

    def hand(m, v):
        return Normal(m, v).kl_standard()

    def primitive(m, v):
        return 0.5 * (m * m + F.exp(v) - v - 1)

    for g_hand, g_auto in zip(grads(hand, (mu, lv), kl_bar), grads(primitive, (mu, lv), kl_bar)):
        np.testing.assert_allclose(g_hand, g_auto, rtol=1e-12, atol=1e-12)
    gradcheck(hand, mu, lv)


@settings(max_examples=60)
@given(q=gaussian_params(shape=(2, 3), sigma=(0.1, 3.0)),
       p=gaussian_params(shape=(3,), sigma=(0.1, 3.0)), seed=st.integers(0, 2**32 - 1))
def test_kl_normal_gradient_equals_autodiff_and_finite_differences(q, p, seed):
    """Property 5 (also hand-derived): KLNormal's four cotangents, p broadcast over the batch."""
    kl_bar = np.random.default_rng(seed).standard_normal((2, 3))

    def hand(m1, v1, m2, v2):
        return Normal(m1, v1).kl(Normal(m2, v2))

    def primitive(m1, v1, m2, v2):
        delta = v1 - v2
        return 0.5 * (F.exp(delta) - 1 - delta + (m1 - m2) ** 2 * F.exp(-v2))

    inputs = (*q, *p)
    for g_hand, g_auto in zip(grads(hand, inputs, kl_bar), grads(primitive, inputs, kl_bar)):
        np.testing.assert_allclose(g_hand, g_auto, rtol=1e-10, atol=1e-12)
    gradcheck(hand, *inputs)


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), K=st.integers(1, 3), d=st.integers(1, 3))
def test_log_prob_gradients_by_finite_differences(seed, K, d):
    """The autodiff paths (log_probs, entropy) against central differences, logits up to ±30."""
    rng = np.random.default_rng(seed)
    mu, lv, z = rng.standard_normal((3, 2, d))
    gradcheck(lambda m, v, x: Normal(m, v).log_prob(x), mu, lv, z)
    gradcheck(lambda v: Normal(0.0, v).entropy(), lv)
    gradcheck(lambda f, x: NormalFixedVariance(f, 0.3).log_prob(x), mu, z)
    logits, x = 30 * rng.standard_normal((2, d)), rng.random((2, d))
    gradcheck(lambda l, t: Bernoulli(l).log_prob(t), logits, x)
    gradcheck(lambda a, m, v, x: MixtureOfNormals(a, m, v).log_prob(x),
              rng.standard_normal(K), rng.standard_normal((K, d)), rng.standard_normal((K, d)), z)


# ---------------------------------------------------------------- 6. the linear Gaussian oracle


@st.composite
def linear_gaussian(draw):
    """p(z) = N(0, I_m), p(x|z) = N(Wz + b, cI_D) with W = U·diag(s), U orthonormal columns, so
    the exact posterior N((I + WᵀW/c)⁻¹Wᵀ(x − b)/c, (I + WᵀW/c)⁻¹) is diagonal and a Normal can
    equal it."""
    m, D = draw(st.integers(1, 3)), draw(st.integers(3, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    U, _ = np.linalg.qr(rng.standard_normal((D, m)))
    s = draw(arrays(np.float64, m, elements=reals(0.2, 3.0)))
    W, b, c = U * s, rng.standard_normal(D), draw(reals(0.1, 2.0))
    x = b + W @ rng.standard_normal(m) + np.sqrt(c) * rng.standard_normal(D)
    cov_x = W @ W.T + c * np.eye(D)
    log_px = mvn_log_pdf(x, b, cov_x)  # the closed-form marginal log N(x | b, WWᵀ + cI)
    post_var = 1 / (1 + s**2 / c)  # diag of (I + WᵀW/c)⁻¹
    post_mu = post_var * (W.T @ (x - b)) / c
    return W, b, c, x, log_px, post_mu, np.log(post_var)


def elbo(q, W, b, c, x):
    """E_q[ln p(x|z)] − KL(q ‖ p(z)) in closed form, with
    E‖x − Wz − b‖² = ‖x − Wμ − b‖² + Σ_j (WᵀW)_jj σ_j²."""
    fit = NormalFixedVariance(W @ q.mu.data + b, c).log_prob(x).sum().item()
    spread = np.sum((W * W).sum(0) * np.exp(q.log_var.data)) / (2 * c)
    return fit - spread - q.kl_standard().sum().item()


def log_weights(q, z, W, b, c, x):
    """ln p(x, z) − ln q(z) = ln p(x|z) + ln p(z) − ln q(z) for z (..., m): the library's
    log_probs."""
    log_px_z = NormalFixedVariance(z @ W.T + b, c).log_prob(x).sum(axis=-1)
    log_pz = Normal(0.0, 0.0).log_prob(z).sum(axis=-1)
    return (log_px_z + log_pz - q.log_prob(z).sum(axis=-1)).data


@settings(max_examples=100)
@given(model=linear_gaussian(), seed=st.integers(0, 2**32 - 1))
def test_elbo_equals_log_px_at_the_exact_posterior(model, seed):
    """Property 6: q = p(z|x) gives ELBO = ln p(x) to 1e-8, and every reparameterised sample has
    ln p(x, z) − ln q(z) = ln p(x): the bound is tight with zero variance."""
    W, b, c, x, log_px, post_mu, post_lv = model
    q = Normal(post_mu, post_lv)
    assert abs(elbo(q, W, b, c, x) - log_px) <= 1e-8
    z = q.rsample(np.random.default_rng(seed), (64,)).data  # (64, m)
    np.testing.assert_allclose(log_weights(q, z, W, b, c, x), log_px, rtol=0, atol=1e-8)


@settings(max_examples=100)
@given(model=linear_gaussian(), dmu=reals(-2, 2), dlv=reals(-2, 2), j=st.integers(0, 2))
def test_elbo_is_strictly_lower_for_any_other_gaussian(model, dmu, dlv, j):
    """Property 6: moving q off the posterior lowers the ELBO strictly, by KL(q ‖ p(z|x))."""
    W, b, c, x, log_px, post_mu, post_lv = model
    assume(max(abs(dmu), abs(dlv)) >= 1e-3)
    mu, lv = post_mu.copy(), post_lv.copy()
    mu[j % len(mu)] += dmu
    lv[j % len(lv)] += dlv
    q = Normal(mu, lv)
    gap = log_px - elbo(q, W, b, c, x)
    assert gap > 0
    np.testing.assert_allclose(gap, q.kl(Normal(post_mu, post_lv)).sum().item(), rtol=0, atol=1e-8)


@settings(max_examples=15)
@given(model=linear_gaussian(), shift=arrays(np.float64, 3, elements=reals(-1, 1)),
       widen=arrays(np.float64, 3, elements=reals(0.3, 1.5)), seed=st.integers(0, 2**32 - 1))
def test_iwae_bound_lies_above_elbo_grows_with_k_and_approaches_log_px(model, shift, widen, seed):
    """Property 6: IWAE_k = E ln (1/k) Σ_i w_i, averaged over 2^18/k independent replicates (blocks
    of one stream), is ≈ ELBO at k = 1, grows with k (paired differences), stays ≤ ln p(x), and at
    k = 64 has closed at least 90% of the gap. q is wider than the posterior so w is bounded."""
    W, b, c, x, log_px, post_mu, post_lv = model
    m = len(post_mu)
    q = Normal(post_mu + shift[:m] * np.exp(0.5 * post_lv), post_lv + widen[:m])
    elbo_q = elbo(q, W, b, c, x)
    n, ks = 2**18, (1, 4, 16, 64)
    with no_grad():
        z = q.rsample(np.random.default_rng(seed), (n,)).data  # (n, m)
        log_w = log_weights(q, z, W, b, c, x)  # (n,)
    # IWAE_k of each block of 64 samples, averaged over its 64/k sub-blocks: (n/64, len(ks))
    iwae = np.stack([(F.logsumexp(log_w.reshape(-1, 64 // k, k), axis=-1).data - np.log(k)).mean(1)
                     for k in ks], axis=1)
    mean, se = iwae.mean(0), iwae.std(0, ddof=1) / np.sqrt(len(iwae))
    assert abs(mean[0] - elbo_q) <= 5 * se[0]  # IWAE_1 is the ELBO
    steps = np.diff(iwae, axis=1)  # paired: IWAE_4k − IWAE_k on the same samples
    assert np.all(steps.mean(0) > 0), f"IWAE_k means {mean} do not grow with k"
    assert np.all(mean[1:] > elbo_q)
    assert np.all(mean <= log_px + 5 * se)
    assert log_px - mean[-1] <= 0.1 * (log_px - elbo_q) + 5 * se[-1]


# ---------------------------------------------------------------- 7. Bernoulli and the mixture


@settings(max_examples=300)
@given(logits=arrays(np.float64, 6, elements=reals(-1e4, 1e4)),
       x=arrays(np.float64, 6, elements=st.sampled_from([0.0, 1.0]) | reals(0, 1)))
def test_bernoulli_log_prob_is_the_textbook_formula_and_finite(logits, x):
    """Property 7: −BCE-with-logits = x ln σ(l) + (1 − x) ln(1 − σ(l)) wherever that form is
    finite (to its own rounding: 1 − σ carries an absolute error ≈ ε), and finite for |l| ≤ 1e4,
    in float32 too."""
    got = Bernoulli(logits).log_prob(x).data
    assert np.all(np.isfinite(got))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        sig = 1 / (1 + np.exp(-logits))
        naive = x * np.log(sig) + (1 - x) * np.log(1 - sig)
        tol = 8 * EPS64 * (1 + np.abs(naive) + (1 - x) / (1 - sig))
    finite = np.isfinite(naive)
    np.testing.assert_array_less(np.abs(got - naive)[finite], tol[finite] + 1e-300)
    l32, x32 = logits.astype(np.float32), x.astype(np.float32)
    got32 = Bernoulli(l32).log_prob(x32).data
    assert got32.dtype == np.float32 and np.all(np.isfinite(got32))
    ref = Bernoulli(l32.astype(np.float64)).log_prob(x32.astype(np.float64)).data
    # float32 rounds l·x and cancels max(l, 0) − l·x: an error of a few ε32·|l| is inherent
    np.testing.assert_array_less(np.abs(got32 - ref), 4 * EPS32 * (1 + np.abs(l32) + np.abs(ref)))


@settings(max_examples=200)
@given(q=gaussian_params(), z=st.data(), logit=reals(-50, 50))
def test_mixture_with_one_component_is_the_normal(q, z, logit):
    """Property 7: MixtureOfNormals with K = 1 = Normal.log_prob summed over the event axis."""
    mu, lv = q  # (B, d)
    z = z.draw(arrays(np.float64, mu.shape, elements=reals(-10, 10)))
    for i in range(len(mu)):
        mixture = MixtureOfNormals(np.array([logit]), mu[i:i + 1], lv[i:i + 1]).log_prob(z)  # (B,)
        normal = Normal(mu[i], lv[i]).log_prob(z).sum(axis=-1)
        np.testing.assert_allclose(mixture.data, normal.data, rtol=1e-12, atol=1e-12)


@settings(max_examples=100)
@given(K=st.integers(2, 4), d=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_mixture_log_prob_is_log_of_weighted_sum(K, d, seed):
    """ln Σ_k π_k Π_j N(z_j | m_kj, σ²_kj) computed directly, where that does not underflow."""
    rng = np.random.default_rng(seed)
    logits, means = rng.standard_normal(K), rng.standard_normal((K, d))
    lv = 0.5 * rng.standard_normal((K, d))
    z = rng.standard_normal((5, d))
    pi = np.exp(logits) / np.exp(logits).sum()
    dens = np.exp(log_normal_pdf(z[:, None, :], means, np.exp(lv)).sum(-1))  # (5, K)
    np.testing.assert_allclose(MixtureOfNormals(logits, means, lv).log_prob(z).data,
                               np.log(dens @ pi), rtol=1e-10)


def test_mixture_integrates_to_one_and_samples_have_its_mean():
    logits = np.array([0.3, -1.0, 1.2])
    means, lv = np.array([[-3.0], [0.5], [4.0]]), np.log([[0.5], [2.0], [0.3]])  # (K, 1)
    prior = MixtureOfNormals(logits, means, lv)
    z = np.linspace(-20, 20, 40001)
    assert abs(np.trapezoid(np.exp(prior.log_prob(z[:, None]).data), z) - 1) < 1e-9
    pi = np.exp(logits) / np.exp(logits).sum()
    samples = prior.sample(100000, np.random.default_rng(0)).data  # (100000, 1)
    assert samples.shape == (100000, 1)
    assert abs(samples.mean() - pi @ means[:, 0]) <= 5 * samples.std() / np.sqrt(len(samples))


# ---------------------------------------------------------------- the other formulas


@settings(max_examples=100)
@given(q=gaussian_params(), z=st.data(), c=reals(0.01, 10))
def test_log_probs_and_entropy_are_the_textbook_densities(q, z, c):
    """Normal and NormalFixedVariance log_prob (constants included) against ln N; the entropy
    against −∫ q ln q by quadrature."""
    mu, lv = q
    z = z.draw(arrays(np.float64, mu.shape, elements=reals(-10, 10)))
    np.testing.assert_allclose(Normal(mu, lv).log_prob(z).data, log_normal_pdf(z, mu, np.exp(lv)),
                               rtol=1e-12)
    np.testing.assert_allclose(NormalFixedVariance(mu, c).log_prob(z).data,
                               log_normal_pdf(z, mu, c), rtol=1e-12)
    sigma = np.exp(0.5 * lv[0, 0])
    grid = np.linspace(-12 * sigma, 12 * sigma, 20001)
    log_q = log_normal_pdf(grid, 0.0, sigma**2)
    np.testing.assert_allclose(Normal(mu, lv).entropy().data[0, 0],
                               -np.trapezoid(np.exp(log_q) * log_q, grid), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_everything_stays_in_the_input_dtype(dtype):
    rng = np.random.default_rng(0)
    mu, lv, z = (rng.standard_normal((2, 3)).astype(dtype) for _ in range(3))
    q, data = Normal(mu, lv), rng.random((2, 3))  # data arrive as float64 (or uint8) arrays
    outputs = [q.rsample(rng), q.log_prob(data), q.entropy(), q.kl_standard(), q.kl(Normal(z, lv)),
               Bernoulli(z).log_prob(data), Bernoulli(z).sample(rng),
               NormalFixedVariance(z, 0.5).log_prob((data * 255).astype(np.uint8)),
               MixtureOfNormals(mu[:, 0], z, lv).log_prob(data),
               MixtureOfNormals(mu[:, 0], z, lv).sample(4, rng)]
    prior = Normal(0.0, 0.0)  # plain numbers take the dtype they meet
    outputs += [prior.log_prob(Tensor(z)), prior.log_prob(z), q.kl(prior), prior.kl(q),
                Normal(Tensor(mu), 0.0).kl_standard(), Normal(0.0, Tensor(lv)).rsample(rng)]
    assert [o.dtype for o in outputs] == [dtype] * len(outputs)


# ---------------------------------------------------------------- underflowed variances (issue 14)


@settings(max_examples=100)
@given(mu=arrays(np.float64, 3, elements=reals(-5, 5)), lv=reals(-2000, -80),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_log_prob_and_kl_stay_finite_when_a_variance_underflows_at_equal_means(mu, lv, dtype):
    """σ² = e^log_var underflows (e^−log_var = inf), the means are equal: (z − μ)²/σ² is 0, not
    0·inf = NaN; so ln N(μ | μ, σ²) = −½(ln 2π + log_var) and KL(q ‖ q) = 0, and their gradients
    are finite. Before the fix all were NaN."""
    mu, log_var = mu.astype(dtype), np.full(3, lv, dtype)
    q = Normal(Tensor(mu, requires_grad=True), Tensor(log_var, requires_grad=True))
    log_p = q.log_prob(mu)
    np.testing.assert_allclose(log_p.data, -0.5 * (np.log(2 * np.pi) + log_var), rtol=1e-6)
    log_p.sum().backward()
    assert np.all(np.isfinite(q.mu.grad)) and np.all(np.isfinite(q.log_var.grad))
    p = Normal(Tensor(mu.copy(), requires_grad=True), Tensor(log_var.copy(), requires_grad=True))
    kl = q.kl(p)
    assert np.all(kl.data == 0) and kl.dtype == dtype
    kl.sum().backward()
    for g in (p.mu.grad, p.log_var.grad):
        assert np.all(np.isfinite(g))
    assert np.all(kl_normal(mu, log_var - 1, mu, log_var) > 0)  # σ1 ≠ σ2: still a plain number
    assert np.all(np.isfinite(kl_normal(mu, log_var - 1, mu, log_var)))


@settings(max_examples=60)
@given(q=gaussian_params(sigma=(0.1, 3.0)), seed=st.integers(0, 2**32 - 1))
def test_squared_over_variance_gradient_equals_autodiff_and_finite_differences(q, seed):
    """Property 5 for the hand-derived (z − μ)²/σ² inside Normal.log_prob, against autodiff of
    (z − μ)²·exp(−log_var) where that is finite, and central differences."""
    mu, lv = q
    z = np.random.default_rng(seed).standard_normal(mu.shape)
    r_bar = np.random.default_rng(seed + 1).standard_normal(mu.shape)
    hand = lambda m, v: Normal(m, v).log_prob(z)
    primitive = lambda m, v: -0.5 * (np.log(2 * np.pi) + v + (Tensor(z) - m) ** 2 * F.exp(-v))
    for g_hand, g_auto in zip(grads(hand, (mu, lv), r_bar), grads(primitive, (mu, lv), r_bar)):
        np.testing.assert_allclose(g_hand, g_auto, rtol=1e-12, atol=1e-12)
    gradcheck(hand, mu, lv)
