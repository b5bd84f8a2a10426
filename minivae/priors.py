"""The VAEs' priors p(z): the densities a VAE learns or keeps fixed.

They are densities, Modules with parameters where they learn, behind one interface:
`log_prob(z)` -> (B,) Tensor, `sample(n, rng)` -> ndarray (n, d), `components()` -> the mixture's
(mu (K, d), log_var (K, d), log_weight (K,)) with the weights normalised, and `kl(q, z)`:

    StandardPrior(d)           p(z) = N(0, I); KL(q ‖ p) in closed form, per dimension
    MixturePrior(d, K)         p(z) = Σ_k π_k N(z | m_k, diag σ_k²), all of m, ln σ², logits learned
    VampPrior(encode, u)       p(z) = (1/K) Σ_k q(z | u_k): the model's own encoder at K learned
                               pseudo-inputs u_k (Tomczak & Welling, 2018, arXiv:1705.07120)

The best prior for a fixed encoder is the aggregate posterior q(z) = (1/N) Σ_n q(z|x_n), for the
KL term averaged over the data is then the smallest it can be; the VampPrior is that form with K
learned inputs in place of the N data. Both learned priors use one mixture density
(`distributions.MixtureOfNormals`: logsumexp over components, full normalising constants). Their
KL(q(z|x) ‖ p(z)) has no closed form; `kl` estimates it as ln q(z|x) − ln p(z) at the z the
reconstruction used (one sample per image; its mean over a batch is what training follows).
`build(name, d, ...)` makes one by name: 'standard', 'mixture' or 'vamp' (PRIORS).

The AAE's priors, which it only samples, are samplers.py's (StandardPrior is also its 'gaussian').
Reference: J. M. Tomczak, M. Welling (2018), "VAE with a VampPrior", AISTATS, arXiv:1705.07120.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from minivae import checks
from minivae import functional as F
from minivae import nn
from minivae.distributions import MixtureOfNormals, Normal
from minivae.tensor import Tensor, no_grad

PRIORS = ("standard", "mixture", "vamp")  # the VAEs' densities


class StandardPrior(nn.Module):
    """p(z) = N(0, I): no parameters, and the KL in closed form. Also the AAE's 'gaussian' prior,
    which only samples it."""

    n_classes = None  # as the AAE's samplers: it takes no labels
    conditional = False

    def __init__(self, latent_dim: int, dtype=np.float32):
        self.latent_dim, self.dtype = latent_dim, np.dtype(dtype)

    def log_prob(self, z) -> Tensor:
        """ln N(z | 0, I) = −½ Σ_j (z_j² + ln 2π), (B,)."""
        return Normal(0.0, 0.0).log_prob(z).sum(axis=-1)

    def sample(self, n: int, rng: np.random.Generator, *, labels=None) -> np.ndarray:
        """z ~ N(0, I), (n, d)."""
        if labels is not None:
            raise ValueError("the standard normal prior has no components: it takes no labels")
        return rng.standard_normal((n, self.latent_dim)).astype(self.dtype)

    def components(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = self.latent_dim
        return np.zeros((1, d), self.dtype), np.zeros((1, d), self.dtype), np.zeros(1, self.dtype)

    def kl(self, q: Normal, z=None) -> Tensor:
        """KL(q(z|x) ‖ N(0, I)) in closed form, (B, d): it factorises over the dimensions."""
        return q.kl_standard()

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}"


class _Mixture(nn.Module):
    """What the learned priors share: a mixture density, its samples and the one-sample KL."""

    latent_dim: int

    def mixture(self) -> MixtureOfNormals:
        raise NotImplementedError

    def log_prob(self, z) -> Tensor:
        """ln p(z) = logsumexp_k [ln π_k + ln N(z | m_k, diag σ_k²)], (B,)."""
        return self.mixture().log_prob(z)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws: a component k ~ π, then z ~ N(m_k, diag σ_k²); (n, d)."""
        with no_grad():
            return self.mixture().sample(n, rng).data

    def components(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with no_grad():
            m = self.mixture()
            return m.means.data, m.log_vars.data, F.log_softmax(m.logits).data

    def kl(self, q: Normal, z) -> Tensor:
        """ln q(z|x) − ln p(z) at z ~ q(z|x), (B, 1): an unbiased one-sample estimate of
        KL(q ‖ p), which has no closed form here and does not split over the dimensions."""
        log_q = q.log_prob(z).sum(axis=-1)  # (B,)
        return (log_q - self.log_prob(z)).reshape(-1, 1)


class MixturePrior(_Mixture):
    """p(z) = Σ_k π_k N(z | m_k, diag exp(log_var_k)), π = softmax(logits): K diagonal Gaussians
    with learned means (initialised from N(0, I)), log-variances (0) and logits (0: equal
    weights)."""

    def __init__(self, latent_dim: int, components: int = 10,
                 rng: np.random.Generator | None = None, dtype=np.float32):
        _check_components(components)
        rng = checks.generator(rng, "MixturePrior")
        self.latent_dim = latent_dim
        self.means = nn.Parameter(rng.standard_normal((components, latent_dim)).astype(dtype))
        self.log_vars = nn.Parameter(np.zeros((components, latent_dim), dtype))
        self.logits = nn.Parameter(np.zeros(components, dtype))

    def mixture(self) -> MixtureOfNormals:
        return MixtureOfNormals(self.logits, self.means, self.log_vars)

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, components={len(self.logits)}"


class VampPrior(_Mixture):
    """p(z) = (1/K) Σ_k q(z | u_k), the model's encoder q at K learned pseudo-inputs u_k.

    `encode` is the model's own `encode` (images -> Normal), held as a function so that the
    encoder's parameters stay the model's alone; `pseudo_inputs` (K, *image shape) are the
    initial u_k. Pick them from training images: every u_k then starts as a real image with
    gradient in every pixel. (The published default, N(−0.05, 0.01) through a Hardtanh(0, 1),
    starts below the Hardtanh's floor, where no gradient passes.) The u_k are not clipped, so
    they stay differentiable everywhere; clip them to [0, 1] to look at them."""

    def __init__(self, encode: Callable[[Tensor], Normal], pseudo_inputs: np.ndarray):
        pseudo_inputs = np.asarray(pseudo_inputs)
        _check_components(len(pseudo_inputs))
        self.encode = encode
        self.pseudo_inputs = nn.Parameter(pseudo_inputs.copy())
        with no_grad():
            self.latent_dim = self.encode(self.pseudo_inputs[:1]).mu.shape[-1]

    def mixture(self) -> MixtureOfNormals:
        # exercise vamp-prior: the encoder at the pseudo-inputs, equal weights
        q = self.encode(self.pseudo_inputs)  # q(z | u_k): mu, log_var (K, d)
        K = len(self.pseudo_inputs.data)
        return MixtureOfNormals(np.zeros(K, self.pseudo_inputs.dtype), q.mu, q.log_var)
        # end exercise

    def extra_repr(self) -> str:
        return f"components={len(self.pseudo_inputs.data)}, latent_dim={self.latent_dim}"


def _check_components(K) -> None:
    if not isinstance(K, (int, np.integer)) or K < 1:
        raise ValueError(f"a mixture prior needs at least one component, got {K!r}")


def build(name: str, latent_dim: int, components: int = 10, encode=None, images=None,
          rng: np.random.Generator | None = None, dtype=np.float32) -> nn.Module:
    """The prior called `name` (PRIORS) for a model with latent size `latent_dim`. 'vamp' needs
    the model's `encode` and training `images`, from which it picks its K pseudo-inputs at
    random (with rng); a prior Module passes through, once its latent size is checked."""
    if isinstance(name, nn.Module):
        if getattr(name, "latent_dim", None) != latent_dim:
            raise ValueError(f"the prior {name!r} is for a {getattr(name, 'latent_dim', '?')}-D "
                             f"latent, but the model's latent has {latent_dim} dimensions")
        return name
    if name not in PRIORS:
        raise ValueError(f"unknown prior {name!r}; known: {', '.join(PRIORS)}")
    if name == "standard":
        return StandardPrior(latent_dim, dtype)
    _check_components(components)
    rng = checks.generator(rng, "priors.build")
    if name == "mixture":
        return MixturePrior(latent_dim, components, rng, dtype)
    if encode is None or images is None:
        raise ValueError("the 'vamp' prior starts its pseudo-inputs at training images: pass them "
                         "(prior_data=x_train) with the model's encoder")
    if len(images) < components:
        raise ValueError(f"the 'vamp' prior needs {components} training images for its "
                         f"pseudo-inputs, got {len(images)}")
    chosen = rng.choice(len(images), size=components, replace=False)
    return VampPrior(encode, np.asarray(images[chosen], dtype=dtype))
