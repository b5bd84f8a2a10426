"""Autoencoder: a deterministic code z = Enc(x) and a reconstruction x̂ = Dec(z).

The notes' objective is Σ_n ‖Dec(Enc(x_n)) − x_n‖² over the parameters θ. For images in [0, 1]
this model minimises instead the Bernoulli negative log-likelihood of the pixels given the decoder's
logits, −Σ_pixels [x ln x̂ + (1 − x) ln(1 − x̂)] with x̂ = σ(Dec(z)), in nats per image, so that its
reconstruction loss is on the same scale as a VAE's rec term; `loss='mse'` gives the notes' squared
error (per image) instead. Without a KL term the code space has no prior to sample from.
"""
from __future__ import annotations

import math

import numpy as np

from minivae import checks, nn
from minivae import functional as F
from minivae.models.networks import (IMAGE_SHAPE, conv_decoder, conv_encoder, mlp_decoder,
                                     mlp_encoder)
from minivae.tensor import Tensor, as_tensor, no_grad


class AE(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int,
                 loss: str = "bernoulli"):
        if loss not in ("bernoulli", "mse"):
            raise ValueError(f"loss must be 'bernoulli' or 'mse', not {loss!r}")
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim, self.loss_name = latent_dim, loss

    @classmethod
    def mlp(cls, latent_dim: int = 20, hidden: int = 400, rng=None, dtype=np.float32,
            loss: str = "bernoulli") -> "AE":
        """784-400-latent / latent-400-784 with ReLU."""
        rng = np.random.default_rng() if rng is None else rng
        D = math.prod(IMAGE_SHAPE)
        encoder = mlp_encoder([D, hidden, latent_dim], rng, dtype)  # (B, latent)
        decoder = mlp_decoder([latent_dim, hidden, D], IMAGE_SHAPE, rng, dtype)
        return cls(encoder, decoder, latent_dim, loss)

    @classmethod
    def conv(cls, latent_dim: int = 20, rng=None, dtype=np.float32,
             loss: str = "bernoulli") -> "AE":
        """The conv VAE's layers with a latent_dim-wide code instead of (mu, log_var)."""
        rng = np.random.default_rng() if rng is None else rng
        encoder = conv_encoder(latent_dim, IMAGE_SHAPE, rng, dtype)  # (B, latent)
        decoder = conv_decoder(latent_dim, rng, dtype)  # (B, 1, 28, 28)
        return cls(encoder, decoder, latent_dim, loss)

    def encode(self, x) -> Tensor:
        checks.batch(x, IMAGE_SHAPE, "AE")
        return self.encoder(x)  # (B, latent)

    def decode(self, z) -> Tensor:
        """Logits (bernoulli) or pixel values (mse), (B, 1, 28, 28)."""
        return self.decoder(z)

    def loss(self, x, rng=None) -> tuple[Tensor, dict]:
        """Reconstruction loss per image; `rng` is unused (the model is deterministic)."""
        B = x.shape[0]
        f = self.decode(self.encode(x))
        if self.loss_name == "bernoulli":
            checks.probabilities(as_tensor(x).data, "x", "AE.loss")
            rec = F.binary_cross_entropy_with_logits(f, x, reduction="sum") / B
        else:
            rec = F.mse_loss(f, x, reduction="sum") / B
        return rec, {"rec": rec.item()}

    def reconstruct(self, x) -> np.ndarray:
        with no_grad():
            f = self.decode(self.encode(as_tensor(x)))
        return F.sigmoid(f).data if self.loss_name == "bernoulli" else np.clip(f.data, 0, 1)
