"""Autoencoder: a deterministic code z = Enc(x) and a reconstruction x̂ = Dec(z).

The notes' objective is Σ_n ‖Dec(Enc(x_n)) − x_n‖² over the parameters θ. For images in [0, 1]
this model minimises instead the Bernoulli negative log-likelihood of the pixels given the decoder's
logits, −Σ_pixels [x ln x̂ + (1 − x) ln(1 − x̂)] with x̂ = σ(Dec(z)), in nats per image, so that its
reconstruction loss is on the same scale as a VAE's rec term; `loss='mse'` gives the notes' squared
error (per image) instead. Without a KL term the code space has no prior to sample from.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minivae import checks, nn
from minivae import functional as F
from minivae.models.networks import (IMAGE_SHAPE, conv_decoder, conv_encoder, mlp_decoder,
                                     mlp_encoder)
from minivae.tensor import Tensor, as_tensor, no_grad


@dataclass
class AEConfig:
    latent_dim: int = 20
    network: str = "mlp"  # the builder: 'mlp' (AE.mlp) or 'conv' (AE.conv)
    hidden: int = 400  # the MLP's hidden width (the conv network has none)
    loss: str = "bernoulli"  # or 'mse', the notes' squared error


class AE(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module, config: AEConfig):
        if config.loss not in ("bernoulli", "mse"):
            raise ValueError(f"AE: loss must be 'bernoulli' or 'mse', not {config.loss!r}")
        self.encoder, self.decoder, self.config = encoder, decoder, config

    @classmethod
    def mlp(cls, latent_dim: int = 20, hidden: int = 400, rng=None, dtype=np.float32,
            loss: str = "bernoulli") -> "AE":
        """784-400-latent / latent-400-784 with ReLU. `rng`: a Generator or an int seed."""
        checks.integer(latent_dim, "latent_dim", "AE.mlp")
        checks.integer(hidden, "hidden", "AE.mlp")
        rng = checks.generator(rng, "AE.mlp")
        D = math.prod(IMAGE_SHAPE)
        encoder = mlp_encoder([D, hidden, latent_dim], rng, dtype)  # (B, latent)
        decoder = mlp_decoder([latent_dim, hidden, D], IMAGE_SHAPE, rng, dtype)
        return cls(encoder, decoder, AEConfig(latent_dim, "mlp", hidden, loss))

    @classmethod
    def conv(cls, latent_dim: int = 20, rng=None, dtype=np.float32,
             loss: str = "bernoulli") -> "AE":
        """The conv VAE's layers with a latent_dim-wide code instead of (mu, log_var)."""
        checks.integer(latent_dim, "latent_dim", "AE.conv")
        rng = checks.generator(rng, "AE.conv")
        encoder = conv_encoder(latent_dim, IMAGE_SHAPE, rng, dtype)  # (B, latent)
        decoder = conv_decoder(latent_dim, rng, dtype)  # (B, 1, 28, 28)
        return cls(encoder, decoder, AEConfig(latent_dim, "conv", loss=loss))

    @classmethod
    def from_config(cls, config: AEConfig | dict, rng=None, dtype=np.float32) -> "AE":
        """The AE a config describes, freshly initialised (runs.load_run then loads its weights)."""
        c = config if isinstance(config, AEConfig) else AEConfig(**config)
        if c.network == "conv":
            return cls.conv(c.latent_dim, rng, dtype, c.loss)
        if c.network != "mlp":
            raise ValueError(f"AE: network must be 'mlp' or 'conv', got {c.network!r}")
        return cls.mlp(c.latent_dim, c.hidden, rng, dtype, c.loss)

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
        if self.config.loss == "bernoulli":
            checks.probabilities(as_tensor(x).data, "x", "AE.loss")
            rec = F.binary_cross_entropy_with_logits(f, x, reduction="sum") / B
        else:
            rec = F.mse_loss(f, x, reduction="sum") / B
        return rec, {"rec": rec.item()}

    def reconstruct(self, x) -> np.ndarray:
        with no_grad():
            f = self.decode(self.encode(as_tensor(x)))
        return F.sigmoid(f).data if self.config.loss == "bernoulli" else np.clip(f.data, 0, 1)
