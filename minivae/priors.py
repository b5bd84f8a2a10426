"""Every prior p(z): the densities a VAE learns or keeps fixed, and the AAE's shapes to sample.

The VAEs' priors are densities, Modules with parameters where they learn, behind one interface:
`log_prob(z)` -> (B,) Tensor, `sample(n, rng)` -> ndarray (n, d), `components()` -> the mixture's
(mu (K, d), log_var (K, d), log_weight (K,)) with the weights normalised, and `kl(q, z)`. Every
`sample` here, the AAE's samplers' too, is `sample(n, rng)`, with `labels=` for those that take
them:

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

The AAE's priors are only samplers: an adversarial autoencoder never evaluates p(z), its
discriminator only sees samples (written in NumPy, no gradient flows into a prior sample):

    StandardPrior(d)      z ~ N(0, I_d), any dimension: the VAE's prior, in float64 ('gaussian')
    RadialMixture()       10 elongated 2-D Gaussians arranged radially around the origin:
                          z = R(θ_k) (r + σ_r·ε₁, σ_t·ε₂),  θ_k = 2πk/K,  k uniform in 0..K−1
    SwissRoll()           a 2-D spiral, two turns out to radius 3, plus a little Gaussian noise:
                          s = √u, u ~ U(0, 1);  z = 3s (cos 4πs, sin 4πs) + σ·ε

Priors with `n_classes` also take integer `labels`: a label picks the mixture component (or the
tenth of the roll) the sample comes from. `conditional=True` marks the paper's supervised prior,
whose model must be given each image's label (Makhzani et al. 2015, section 2.3, Figure 4).
`make(name, dim)` builds one by name (NAMES) and refuses a prior that does not fit the latent size.

The radial mixture and the roll follow the shapes of the paper's Figures 2 and 4 and of the widely
used samplers of musyoku/adversarial-autoencoder; their scales are chosen here.
References: J. M. Tomczak, M. Welling (2018), "VAE with a VampPrior", AISTATS, arXiv:1705.07120;
A. Makhzani, J. Shlens, N. Jaitly, I. Goodfellow, B. Frey (2015), "Adversarial Autoencoders",
arXiv:1511.05644.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from minivae import checks
from minivae import functional as F
from minivae import nn
from minivae.distributions import MixtureOfNormals, Normal
from minivae.tensor import Tensor, no_grad

PRIORS = ("standard", "mixture", "vamp")  # the VAEs' densities
NAMES = ("gaussian", "radial", "swiss-roll", "supervised")  # the AAE's samplers


# ---------------------------------------------------------------- the VAEs' densities p(z)


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
        q = self.encode(self.pseudo_inputs)  # q(z | u_k): mu, log_var (K, d)
        K = len(self.pseudo_inputs.data)
        return MixtureOfNormals(np.zeros(K, self.pseudo_inputs.dtype), q.mu, q.log_var)

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


# ---------------------------------------------------------------- the AAE's samplers


class Prior:
    """A 2-D sampler of p(z): `sample(n, rng, labels=None)` returns float64 (n, 2)."""

    latent_dim: int = 2
    n_classes: int | None = None  # how many labels `sample` accepts (None: it takes none)
    conditional: bool = False  # True: the model must feed each image's label to the prior

    def sample(self, n: int, rng: np.random.Generator, *,
               labels: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def _labels(self, n: int, rng: np.random.Generator, labels) -> np.ndarray:
        """The given labels, checked; or, without them, n labels drawn uniformly."""
        if labels is None:
            if self.conditional:
                raise ValueError(f"{type(self).__name__} is a conditional (supervised) prior: "
                                 f"sample() needs the labels")
            return rng.integers(0, self.n_classes, size=n)
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be {n} integers, got shape {labels.shape} "
                             f"of {labels.dtype}")
        if len(labels) and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise ValueError(f"labels must lie in 0..{self.n_classes - 1}, got "
                             f"{labels.min()}..{labels.max()}")
        return labels


class RadialMixture(Prior):
    """K Gaussians on a circle of radius r, component k at angle θ_k = 2πk/K, each stretched
    along its radius (std σ_r) and thin across it (std σ_t), so the arms do not touch.

    Moments (for K ≥ 3): E z = 0 and Cov z = ½(r² + σ_r² + σ_t²)·I, because the K rotations
    average any 2 × 2 matrix to its isotropic part."""

    def __init__(self, n_components: int = 10, radius: float = 3.0, radial_std: float = 0.5,
                 tangential_std: float = 0.1, conditional: bool = False):
        if n_components < 1:
            raise ValueError(f"RadialMixture: n_components must be at least 1, "
                             f"got {n_components}")
        self.n_classes = n_components
        self.radius, self.radial_std, self.tangential_std = radius, radial_std, tangential_std
        self.conditional = conditional

    def angles(self) -> np.ndarray:
        """θ_k = 2πk/K, the direction of each component, (K,)."""
        return 2 * math.pi * np.arange(self.n_classes) / self.n_classes

    def means(self) -> np.ndarray:
        """The components' centres r·(cos θ_k, sin θ_k), (K, 2)."""
        theta = self.angles()
        return self.radius * np.stack([np.cos(theta), np.sin(theta)], axis=1)

    def sample(self, n, rng, *, labels=None):
        k = self._labels(n, rng, labels)  # (n,) component of each sample
        eps = rng.standard_normal((n, 2))
        along = self.radius + self.radial_std * eps[:, 0]  # (n,) distance along the arm
        across = self.tangential_std * eps[:, 1]  # (n,)
        cos, sin = np.cos(self.angles()[k]), np.sin(self.angles()[k])  # rotate by θ_k
        return np.stack([cos * along - sin * across, sin * along + cos * across], axis=1)

    def __repr__(self) -> str:
        return (f"RadialMixture(n_components={self.n_classes}, radius={self.radius}, "
                f"radial_std={self.radial_std}, tangential_std={self.tangential_std}"
                f"{', conditional=True' if self.conditional else ''})")


class SwissRoll(Prior):
    """A spiral z = 3s·(cos 4πs, sin 4πs) with s = √u, u ~ U(0, 1), plus N(0, σ²I) noise.

    s = √u spreads the points evenly over the roll's area rather than its length. A label k picks
    u ~ U(k/K, (k+1)/K), the k-th of K stretches of the roll, centre to rim."""

    def __init__(self, noise: float = 0.1, n_classes: int = 10):
        self.noise, self.n_classes = noise, n_classes

    def sample(self, n, rng, *, labels=None):
        u = rng.random(n)  # (n,)
        if labels is not None:
            u = (self._labels(n, rng, labels) + u) / self.n_classes
        s = np.sqrt(u)
        z = 3 * s[:, None] * np.stack([np.cos(4 * math.pi * s), np.sin(4 * math.pi * s)], axis=1)
        return z + self.noise * rng.standard_normal((n, 2))  # (n, 2)

    def __repr__(self) -> str:
        return f"SwissRoll(noise={self.noise})"


def make(name: str, dim: int) -> Prior | StandardPrior:
    """The AAE's prior called `name` (NAMES) for a latent space of `dim` dimensions."""
    if name not in NAMES:
        raise ValueError(f"unknown prior {name!r}; known: {', '.join(NAMES)}")
    if name == "gaussian":
        if dim < 1:
            raise ValueError(f"the 'gaussian' prior needs a latent of at least one dimension, "
                             f"got {dim}")
        return StandardPrior(dim, np.float64)
    if dim != 2:
        raise ValueError(f"the {name!r} prior is 2-D, but the latent space has {dim} dimensions; "
                         f"use latent_dim=2 (--latent-dim 2), or the 'gaussian' prior, which "
                         f"fits any dimension")
    if name == "swiss-roll":
        return SwissRoll()
    return RadialMixture(conditional=name == "supervised")
