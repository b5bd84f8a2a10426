"""What the VAE and the PixelVAE share, because it is the same equation in both: the Gaussian
encoder and the two terms of the ELBO (Kingma & Welling, 2014).

    q(z|x) = N(z | mu(x), diag σ²(x))      the encoder's output is (mu, log_var) side by side
    −ELBO(x) = E_q[−ln p(x|z)] + KL(q(z|x) ‖ p(z))  =  rec + kl,   one z sample per image

A model built on it has an `encoder`, a `prior` (priors.py), `config.latent_dim`, `image_shape`,
and its own `log_likelihood(x, z)`, the one place the two decoders differ: ln p(x|z) in the terms
its decoder gives, pixel by pixel for the VAE (its pixels are independent given z), image by image
for the PixelVAE. Each model's loss then weighs and sums these terms as its training asks.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from minivae import checks, nn
from minivae.distributions import Normal
from minivae.tensor import Tensor, as_tensor


class LatentVariableModel(nn.Module):
    encoder: nn.Module | None
    prior: Any  # a p(z) of priors.py: StandardPrior, MixturePrior or VampPrior
    config: Any  # a dataclass with latent_dim
    image_shape: tuple

    def log_likelihood(self, x, z) -> Tensor:
        """ln p(x|z) in nats as the decoder's terms, per pixel or per image: the decoder's part."""
        raise NotImplementedError

    def encode(self, x) -> Normal:
        """q(z|x) = N(mu, diag exp(log_var)), (B, latent) each.  x: (B, *image_shape)."""
        checks.batch(x, self.image_shape, type(self).__name__)
        assert self.encoder is not None  # the PixelCNN alone has none, and its own encode
        h = self.encoder(as_tensor(x))  # (B, 2·latent)
        d = self.config.latent_dim
        return Normal(h[:, :d], h[:, d:])  # mu, log_var

    def elbo(self, x, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        """rec in nats per image, and KL(q(z|x) ‖ p(z)) per image in the groups it splits into,
        (B, groups): (B, latent), one per dimension, in closed form for N(0, I); (B, 1) for a
        learned prior, whose KL is the one-sample estimate ln q(z|x) − ln p(z) at the same z."""
        B = x.shape[0]
        # exercise elbo: encode, sample z, the two terms
        q = self.encode(x)  # q(z|x)
        z = q.rsample(rng)  # z = mu + σ·eps, (B, latent)
        rec = -self.log_likelihood(x, z).sum() / B  # E_q[−ln p(x|z)], one sample per image
        kl = self.prior.kl(q, z)  # KL(q(z|x) ‖ p(z)), (B, groups)
        return rec, kl
        # end exercise
