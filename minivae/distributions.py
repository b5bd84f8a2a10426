"""Probability for the latent-variable models: the Gaussians, the Bernoulli and the mixture prior.

The VAE maximises the evidence lower bound (Kingma & Welling, 2014)

    ln p(x) ≥ ELBO = E_q(z|x)[ln p(x|z)] − KL(q(z|x) ‖ p(z)),

with q = N(mu, diag(exp(log_var))): `log_var` is the log of the *variance*, so σ = exp(½·log_var).
One `Normal` object both samples (the reparameterisation z = mu + σ·eps) and computes the
closed-form KL, so the two can never disagree about what exp(log_var) means. The importance-weighted
bound IWAE_k = E[ln (1/k) Σ_i p(x, z_i) / q(z_i)] of Burda et al. (2016) uses the same log_probs.
The sample and both KLs are Functions whose backward passes are derived by hand, and tested against
autodiff of the same expression written with primitive ops.

Conventions. Every distribution takes Tensors or arrays and returns Tensors in their dtype.
`log_prob` and the KLs are *per element* (the shape of the broadcast inputs): a caller sums over
the event axes itself, e.g. `-(px.log_prob(x).sum() / B)`. The one exception is
`MixtureOfNormals`, whose density does not factorise: its `log_prob` reduces the last (event) axis.
Derivations: docs/derivations.md.  Proofs: tests/test_math.py.
"""
from __future__ import annotations

import math

import numpy as np

from minivae import checks
from minivae import functional as F
from minivae.tensor import Function, Tensor, as_tensor, unbroadcast

LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------- plain NumPy (outside the engine)


def kl_normal_standard(mu: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """Per-dimension KL(N(mu, e^log_var) ‖ N(0, 1)) = ½(mu² + σ² − ln σ² − 1), shape of mu.
    Written ½(mu² + expm1(log_var) − log_var): never negative from rounding, exact 0 at (0, 0)."""
    mu, log_var = np.asarray(mu), np.asarray(log_var)
    # exercise kl-closed-form: KL(N(mu, sigma^2) || N(0, 1)) per dimension
    return 0.5 * (mu * mu + (np.expm1(log_var) - log_var))
    # end exercise


def kl_normal(mu1: np.ndarray, log_var1: np.ndarray,
              mu2: np.ndarray, log_var2: np.ndarray) -> np.ndarray:
    """Per-dimension KL(N(mu1, σ1²) ‖ N(mu2, σ2²))
    = ½(ln σ2²/σ1² + σ1²/σ2² − 1 + (mu1 − mu2)²/σ2²), in the same expm1 form."""
    mu1, log_var1, mu2, log_var2 = map(np.asarray, (mu1, log_var1, mu2, log_var2))
    delta = log_var1 - log_var2  # ln σ1²/σ2²
    return 0.5 * ((np.expm1(delta) - delta) + _over_variance(mu1 - mu2, mu1 - mu2, log_var2))


def _over_variance(a, b, log_var):
    """a·b / e^log_var, and 0 where b = 0: the limit at the mean itself, kept when the variance
    underflows (e^−log_var = inf would make 0·inf = NaN)."""
    with np.errstate(over="ignore", invalid="ignore"):
        r = a * b * np.exp(-log_var)
    return np.where(b == 0, np.zeros((), r.dtype), r)


# ---------------------------------------------------------------- hand-derived gradients


class Reparameterize(Function):
    """z = mu + σ·eps with σ = exp(½·log_var);  mu_bar = z_bar;  log_var_bar = ½·z_bar·σ·eps."""

    @staticmethod
    def forward(ctx, mu, log_var, eps=None):
        # exercise reparameterize: z = mu + sigma * eps
        sigma = np.exp(0.5 * log_var)
        ctx.save_for_backward(sigma, eps)
        ctx.shapes = mu.shape, log_var.shape
        return mu + sigma * eps  # (*sample_shape, *batch_shape)
        # end exercise

    @staticmethod
    def backward(ctx, z_bar):
        # exercise reparameterize: mu_bar and log_var_bar, derived by hand
        sigma, eps = ctx.saved
        mu_shape, log_var_shape = ctx.shapes
        mu_bar = unbroadcast(z_bar, mu_shape)  # summed over the sample axes
        log_var_bar = unbroadcast(0.5 * z_bar * sigma * eps, log_var_shape)
        return mu_bar, log_var_bar
        # end exercise


class KLStandardNormal(Function):
    """kl = ½(mu² + σ² − ln σ² − 1);  mu_bar = kl_bar·mu;  log_var_bar = ½·kl_bar·(σ² − 1)."""

    @staticmethod
    def forward(ctx, mu, log_var):
        ctx.save_for_backward(mu, log_var)
        return kl_normal_standard(mu, log_var)

    @staticmethod
    def backward(ctx, kl_bar):
        mu, log_var = ctx.saved
        # exercise kl-closed-form: its gradient, derived by hand
        mu_bar = unbroadcast(kl_bar * mu, mu.shape)
        log_var_bar = unbroadcast(0.5 * kl_bar * np.expm1(log_var), log_var.shape)  # σ² − 1
        return mu_bar, log_var_bar
        # end exercise


class KLNormal(Function):
    """kl = ½(e^δ − 1 − δ + Δ²/σ2²) with δ = ln σ1²/σ2², Δ = mu1 − mu2;
    mu1_bar = kl_bar·Δ/σ2² = −mu2_bar;  log_var1_bar = ½·kl_bar·(e^δ − 1);
    log_var2_bar = −½·kl_bar·(e^δ − 1 + Δ²/σ2²)."""

    @staticmethod
    def forward(ctx, mu1, log_var1, mu2, log_var2):
        ctx.save_for_backward(mu1, log_var1, mu2, log_var2)
        return kl_normal(mu1, log_var1, mu2, log_var2)

    @staticmethod
    def backward(ctx, kl_bar):
        mu1, log_var1, mu2, log_var2 = ctx.saved
        delta_over_var2 = _over_variance(1, mu1 - mu2, log_var2)  # Δ/σ2², 0 where Δ = 0
        expm1_delta = np.expm1(log_var1 - log_var2)  # σ1²/σ2² − 1
        mu1_bar = kl_bar * delta_over_var2
        log_var1_bar = 0.5 * kl_bar * expm1_delta
        log_var2_bar = -0.5 * kl_bar * (expm1_delta + (mu1 - mu2) * delta_over_var2)  # Δ²/σ2²
        return (unbroadcast(mu1_bar, mu1.shape), unbroadcast(log_var1_bar, log_var1.shape),
                unbroadcast(-mu1_bar, mu2.shape), unbroadcast(log_var2_bar, log_var2.shape))


class SquaredOverVariance(Function):
    """r = d²/σ² = d²·e^(−log_var), and r = 0 where d = 0 even if σ² underflowed to 0;
    d_bar = 2·r_bar·d/σ² (0 where d = 0);  log_var_bar = −r_bar·r."""

    @staticmethod
    def forward(ctx, d, log_var):
        r = _over_variance(d, d, log_var)
        ctx.save_for_backward(d, log_var, r)
        return r

    @staticmethod
    def backward(ctx, r_bar):
        d, log_var, r = ctx.saved
        d_bar = 2 * r_bar * _over_variance(1, d, log_var)
        return unbroadcast(d_bar, d.shape), unbroadcast(-r_bar * r, log_var.shape)


# ---------------------------------------------------------------- distributions


class Normal:
    """Diagonal Gaussian N(mu, diag(exp(log_var))); mu and log_var broadcast against each other."""

    def __init__(self, mu, log_var):
        like = mu if isinstance(mu, Tensor) else log_var if isinstance(log_var, Tensor) else None
        dtype = None if like is None else like.dtype  # a plain array or number takes the Tensor's
        self.mu, self.log_var = as_tensor(mu, dtype), as_tensor(log_var, dtype)
        # Normal(0.0, 0.0), the prior: plain numbers take the dtype they meet, as in the engine
        self._numbers = isinstance(mu, (int, float)) and isinstance(log_var, (int, float))

    def _in(self, dtype) -> tuple[Tensor, Tensor]:
        if self._numbers:
            return Tensor(self.mu.data.astype(dtype)), Tensor(self.log_var.data.astype(dtype))
        return self.mu, self.log_var

    @property
    def sigma(self) -> Tensor:
        return F.exp(0.5 * self.log_var)

    def rsample(self, rng: np.random.Generator, sample_shape: tuple = ()) -> Tensor:
        """z = mu + σ·eps, eps ~ N(0, I), differentiable in mu and log_var.
        Shape (*sample_shape, *batch_shape)."""
        batch_shape = np.broadcast_shapes(self.mu.shape, self.log_var.shape)
        dtype = np.result_type(self.mu.dtype, self.log_var.dtype)
        eps = rng.standard_normal(tuple(sample_shape) + batch_shape, dtype=dtype)
        return Reparameterize.apply(self.mu, self.log_var, eps=eps)

    def log_prob(self, z) -> Tensor:
        """ln N(z | mu, σ²) = −½(ln 2π + log_var + (z − mu)²/σ²), per element; finite at z = mu
        even when σ² underflows to 0."""
        z = as_tensor(z, None if self._numbers else self.mu.dtype)
        mu, log_var = self._in(z.dtype)
        return -0.5 * (LOG_2PI + log_var + SquaredOverVariance.apply(z - mu, log_var))

    def entropy(self) -> Tensor:
        """h = ½(ln 2π + 1 + log_var), per dimension (the shape of log_var)."""
        return 0.5 * (LOG_2PI + 1) + 0.5 * self.log_var

    def kl_standard(self) -> Tensor:
        """KL(self ‖ N(0, I)) per dimension (broadcast shape of mu and log_var); sum it yourself."""
        return KLStandardNormal.apply(self.mu, self.log_var)

    def kl(self, other: "Normal") -> Tensor:
        """KL(self ‖ other) per dimension (broadcast shape of all four), closed form (kl_normal)."""
        (mu1, log_var1), (mu2, log_var2) = self._in(other.mu.dtype), other._in(self.mu.dtype)
        return KLNormal.apply(mu1, log_var1, mu2, log_var2)


class Bernoulli:
    """p(x | logits) = σ(l)^x (1 − σ(l))^(1 − x), for x in [0, 1] (grey pixels allowed)."""

    def __init__(self, logits):
        self.logits = as_tensor(logits)

    @property
    def probs(self) -> Tensor:
        return F.sigmoid(self.logits)

    def log_prob(self, x) -> Tensor:
        """x·ln σ(l) + (1 − x)·ln(1 − σ(l)) = −BCE-with-logits, per element; finite for any |l|."""
        x = as_tensor(x, self.logits.dtype)  # data, uint8 pixels included, in the logits' dtype
        checks.probabilities(x.data, "x", "Bernoulli.log_prob")  # else negative 'nats'
        return -F.binary_cross_entropy_with_logits(self.logits, x, reduction="none")

    def sample(self, rng: np.random.Generator) -> Tensor:
        """x ~ Bernoulli(σ(l)) elementwise; discrete, so not differentiable."""
        return Tensor((rng.random(self.logits.shape) < self.probs.data).astype(self.logits.dtype))


class NormalFixedVariance:
    """The notes' decoder p(x|z) = N(x | f(z), c·I) with a fixed variance c > 0 (not learned)."""

    def __init__(self, mean, c: float):
        if not c > 0:
            raise ValueError(f"NormalFixedVariance: the variance c must be positive, not {c}")
        self.mean, self.c = as_tensor(mean), float(c)

    def log_prob(self, x) -> Tensor:
        """ln N(x | f, c) = −½ ln(2πc) − (x − f)²/(2c), per element, the constant included."""
        x = as_tensor(x, self.mean.dtype)
        return -0.5 * math.log(2 * math.pi * self.c) - (x - self.mean) ** 2 / (2 * self.c)

    def sample(self, rng: np.random.Generator) -> Tensor:
        """x = f + √c·eps, cut from the graph (a picture, not a training signal)."""
        eps = rng.standard_normal(self.mean.shape, dtype=self.mean.dtype)
        return Tensor(self.mean.data + math.sqrt(self.c) * eps)


class MixtureOfNormals:
    """p(z) = Σ_k π_k N(z | means_k, diag(exp(log_vars_k))) with π = softmax(logits); all learnable.
    logits (K,), means (K, d), log_vars (K, d). The learned prior of later models."""

    def __init__(self, logits, means, log_vars):
        self.logits, self.means, self.log_vars = as_tensor(logits), as_tensor(means), as_tensor(log_vars)

    def log_prob(self, z) -> Tensor:
        """ln p(z) = logsumexp_k [ln π_k + Σ_j ln N(z_j | m_kj, σ²_kj)]; z (..., d) -> (...,)."""
        z = as_tensor(z, self.means.dtype)
        # exercise mixture-log-prob: ln sum_k pi_k N(z | m_k, sigma_k^2), stably
        z = z.reshape(*z.shape[:-1], 1, z.shape[-1])  # (..., 1, d) against (K, d)
        log_pz_k = Normal(self.means, self.log_vars).log_prob(z).sum(axis=-1)  # (..., K)
        return F.logsumexp(F.log_softmax(self.logits) + log_pz_k, axis=-1)  # (...,)
        # end exercise

    def sample(self, n: int, rng: np.random.Generator) -> Tensor:
        """n draws: a component k ~ π, then z = means_k + σ_k·eps (differentiable in the means
        and log_vars, not in the discrete choice of k)."""
        logits = self.logits.data.astype(np.float64)
        pi = np.exp(logits - logits.max())  # softmax, unnormalised
        k = rng.choice(len(pi), size=n, p=pi / pi.sum())  # (n,)
        return Normal(self.means[k], self.log_vars[k]).rsample(rng)  # (n, d)
