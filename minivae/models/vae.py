"""Variational autoencoder (Kingma & Welling, 2014, "Auto-Encoding Variational Bayes").

    q(z|x) = N(z | mu(x), diag σ²(x))      the encoder, giving mu and log_var = ln σ²
    p(z)   = N(z | 0, I)                    the prior, or a learned one (priors.py)
    p(x|z) = Bernoulli(x | σ(f(z)))         or N(x | f(z), c·I), the decoder

The loss is −ELBO in nats per image, one z sample per image:

    −ELBO(x) = E_q[−ln p(x|z)] + KL(q(z|x) ‖ p(z))  =  rec + kl,

and with a β weight (Higgins et al., 2017) rec + β·kl. With the Gaussian decoder the rec term is
‖x − f(z)‖²/(2c) plus the constant ½·D·ln 2πc, the notes' L_rec. The backward passes of the
reparameterised sample and the KL are derived by hand in distributions.py. With a learned prior
(prior='mixture' or 'vamp') the KL has no closed form, and kl is the one-sample estimate
ln q(z|x) − ln p(z) at the z the reconstruction used.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from minivae import checks, nn, priors
from minivae.distributions import Bernoulli, NormalFixedVariance
from minivae.models.latent import LatentVariableModel
from minivae.models.networks import (IMAGE_SHAPE, conv_decoder, conv_encoder, mlp_decoder,
                                     mlp_encoder)
from minivae.tensor import Tensor, as_tensor, no_grad


@dataclass
class VAEConfig:
    latent_dim: int = 20
    network: str = "mlp"  # the builder: 'mlp' (VAE.mlp) or 'conv' (VAE.conv)
    hidden: int = 400  # the MLP's hidden width (the conv network has none)
    likelihood: str = "bernoulli"  # or 'gaussian': p(x|z) = N(x | f(z), c·I)
    c: float = 0.1  # the Gaussian decoder's fixed variance
    beta: float = 1.0  # weight of the KL term
    prior: str = "standard"  # p(z): 'standard', 'mixture' or 'vamp' (priors.PRIORS)
    prior_components: int = 10  # K of a learned prior


def check_config(config: VAEConfig) -> VAEConfig:
    """Every size and weight of a VAE's config checked, the bad one named."""
    checks.integer(config.latent_dim, "latent_dim", "VAE")
    checks.integer(config.hidden, "hidden", "VAE")
    checks.real(config.c, "c", "VAE", low=0, low_open=True)
    checks.real(config.beta, "beta", "VAE", low=0)
    if config.likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(f"VAE: likelihood must be 'bernoulli' or 'gaussian', "
                         f"not {config.likelihood!r}")
    return config


class VAE(LatentVariableModel):
    """encode and the ELBO's two terms are latent.py's, shared with the PixelVAE."""

    image_shape = IMAGE_SHAPE

    def __init__(self, encoder: nn.Module, decoder: nn.Module, config: VAEConfig,
                 prior_data: np.ndarray | None = None, rng=None):
        """prior_data: training images, from which the VampPrior picks its pseudo-inputs."""
        check_config(config)
        self.encoder, self.decoder, self.config = encoder, decoder, config
        dtype = encoder.parameters()[0].dtype
        self.prior = priors.build(config.prior, config.latent_dim, config.prior_components,
                                  self.encode, prior_data, rng, dtype)

    # ------------------------------------------------------------ builders
    @classmethod
    def mlp(cls, latent_dim: int = 20, hidden: int = 400, rng=None, dtype=np.float32,
            prior_data=None, **fields) -> "VAE":
        """784-400-(20, 20) / 20-400-784 with ReLU: the pytorch/examples network. `rng`: a
        Generator or an int seed; `fields`: VAEConfig's others."""
        config = check_config(VAEConfig(latent_dim=latent_dim, network="mlp", hidden=hidden,
                                        **fields))
        rng = checks.generator(rng, "VAE.mlp")
        D = math.prod(IMAGE_SHAPE)
        encoder = mlp_encoder([D, hidden, 2 * latent_dim], rng, dtype)  # (B, 2·latent)
        decoder = mlp_decoder([latent_dim, hidden, D], IMAGE_SHAPE, rng, dtype)
        return cls(encoder, decoder, config, prior_data, rng)

    @classmethod
    def conv(cls, latent_dim: int = 20, rng=None, dtype=np.float32, prior_data=None,
             **fields) -> "VAE":
        """Encoder 1→32→64 channels by stride-2 4×4 convolutions (28→14→7), then a linear head;
        the decoder mirrors it with transposed convolutions."""
        config = check_config(VAEConfig(latent_dim=latent_dim, network="conv", **fields))
        rng = checks.generator(rng, "VAE.conv")
        encoder = conv_encoder(2 * latent_dim, IMAGE_SHAPE, rng, dtype)  # (B, 2·latent)
        decoder = conv_decoder(latent_dim, rng, dtype)  # (B, 1, 28, 28)
        return cls(encoder, decoder, config, prior_data, rng)

    @classmethod
    def from_config(cls, config: VAEConfig | dict, rng=None, dtype=np.float32,
                    prior_data=None) -> "VAE":
        """The VAE a config describes, freshly initialised (runs.load_run then loads its weights).
        Without prior_data a VampPrior's pseudo-inputs start at zero: a loaded checkpoint holds
        them."""
        config = dict(dataclasses.asdict(config) if isinstance(config, VAEConfig) else config)
        network = config.pop("network", "mlp")
        if network not in ("mlp", "conv"):
            raise ValueError(f"VAE: network must be 'mlp' or 'conv', got {network!r}")
        if config.get("prior") == "vamp" and prior_data is None:
            prior_data = np.zeros((config.get("prior_components", 10), *IMAGE_SHAPE), dtype)
        if network == "conv":
            config.pop("hidden", None)
            return cls.conv(rng=rng, dtype=dtype, prior_data=prior_data, **config)
        return cls.mlp(rng=rng, dtype=dtype, prior_data=prior_data, **config)

    # ------------------------------------------------------------ the model
    def decode(self, z) -> Tensor:
        """f(z): Bernoulli logits or Gaussian means, (B, 1, 28, 28)."""
        return self.decoder(z)

    def likelihood(self, f) -> Bernoulli | NormalFixedVariance:
        """p(x|z) from the decoder output f = f(z)."""
        if self.config.likelihood == "bernoulli":
            return Bernoulli(f)
        return NormalFixedVariance(f, self.config.c)

    def log_likelihood(self, x, z) -> Tensor:
        """ln p(x_i|z) of every pixel, (B, 1, 28, 28): given z the pixels are independent."""
        return self.likelihood(self.decode(z)).log_prob(x)

    def loss(self, x, rng: np.random.Generator) -> tuple[Tensor, dict]:
        """−ELBO in nats per image, and its two terms (latent.py: encode → sample z → ln p(x|z)
        → KL)."""
        rec, kl = self.elbo(x, rng)
        kl = kl.sum() / x.shape[0]  # KL(q(z|x) ‖ p(z)), batch mean: closed form for N(0, I)
        return rec + self.config.beta * kl, {"rec": rec.item(), "kl": kl.item()}

    def log_joint(self, x, z) -> Tensor:
        """ln p(x|z) + ln p(z) per image, (N,): the numerator of the importance weights (IWAE).
        x: (N, 1, 28, 28), z: (N, latent)."""
        z = as_tensor(z)
        return self.log_likelihood(x, z).sum(axis=(1, 2, 3)) + self.prior.log_prob(z)

    # ------------------------------------------------------------ using it
    def mean_image(self, f: Tensor) -> np.ndarray:
        """E[x|z] as pixels in [0, 1]: σ(logits) or the Gaussian mean, clipped."""
        if self.config.likelihood == "bernoulli":
            return Bernoulli(f).probs.data
        return np.clip(f.data, 0, 1)

    def reconstruct(self, x) -> np.ndarray:
        """E[x | z = mu(x)]: the decoder's mean at the posterior mean."""
        with no_grad():
            return self.mean_image(self.decode(self.encode(as_tensor(x)).mu))

    def generate(self, z: np.ndarray) -> np.ndarray:
        """Decoder means in [0, 1] for latent codes z of shape (N, latent)."""
        dtype = self.decoder.parameters()[0].dtype
        with no_grad():
            return self.mean_image(self.decode(as_tensor(z, dtype)))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n images decoded from z ~ p(z), as means in [0, 1]."""
        return self.generate(self.prior.sample(n, rng))

    def interpolate(self, x_a, x_b, steps: int = 10) -> np.ndarray:
        """Decoded images along the straight line between mu(x_a) and mu(x_b):
        (B, steps, 1, 28, 28) for image batches x_a, x_b of shape (B, 1, 28, 28)."""
        with no_grad():
            mu_a = self.encode(as_tensor(x_a)).mu.data  # (B, latent)
            mu_b = self.encode(as_tensor(x_b)).mu.data
        t = np.linspace(0, 1, steps)[None, :, None]  # (1, steps, 1)
        z = (1 - t) * mu_a[:, None] + t * mu_b[:, None]  # (B, steps, latent)
        images = self.generate(z.reshape(-1, z.shape[-1]))  # (B·steps, 1, 28, 28)
        return images.reshape(len(mu_a), steps, *IMAGE_SHAPE)

