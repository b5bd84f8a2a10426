"""The AAE's priors: shapes of p(z) it only samples. An adversarial autoencoder never evaluates
p(z), its discriminator only sees samples (written in NumPy, no gradient flows into a prior
sample). Every `sample` is `sample(n, rng)`, with `labels=` for those that take them:

    StandardPrior(d)      z ~ N(0, I_d), any dimension: the VAE's prior (priors.py), in float64
                          ('gaussian')
    RadialMixture()       10 elongated 2-D Gaussians arranged radially around the origin:
                          z = R(θ_k) (r + σ_r·ε₁, σ_t·ε₂),  θ_k = 2πk/K,  k uniform in 0..K−1
    SwissRoll()           a 2-D spiral, two turns out to radius 3, plus a little Gaussian noise:
                          s = √u, u ~ U(0, 1);  z = 3s (cos 4πs, sin 4πs) + σ·ε

Samplers with `n_classes` also take integer `labels`: a label picks the mixture component (or the
tenth of the roll) the sample comes from. `conditional=True` marks the paper's supervised prior,
whose model must be given each image's label (Makhzani et al. 2015, section 2.3, Figure 4).
`make(name, dim)` builds one by name (NAMES) and refuses a prior that does not fit the latent size.

The radial mixture and the roll follow the shapes of the paper's Figures 2 and 4 and of the widely
used samplers of musyoku/adversarial-autoencoder; their scales are chosen here.
Reference: A. Makhzani, J. Shlens, N. Jaitly, I. Goodfellow, B. Frey (2015), "Adversarial
Autoencoders", arXiv:1511.05644.
"""
from __future__ import annotations

import math

import numpy as np

from minivae.priors import StandardPrior

NAMES = ("gaussian", "radial", "swiss-roll", "supervised")


class Sampler:
    """A 2-D sampler of p(z): `sample(n, rng, labels=None)` returns float64 (n, 2)."""

    latent_dim: int = 2
    n_classes: int  # how many labels `sample` accepts: 0 .. n_classes − 1
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


class RadialMixture(Sampler):
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


class SwissRoll(Sampler):
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


def make(name: str, dim: int) -> Sampler | StandardPrior:
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
