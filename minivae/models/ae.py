"""Autoencoder: a deterministic code z = Enc(x) and a reconstruction x̂ = Dec(z).

The notes' objective is Σ_n ‖Dec(Enc(x_n)) − x_n‖² over the parameters θ. For images in [0, 1]
this model minimises instead the Bernoulli negative log-likelihood of the pixels given the decoder's
logits, −Σ_pixels [x ln x̂ + (1 − x) ln(1 − x̂)] with x̂ = σ(Dec(z)), in nats per image, so that its
reconstruction loss is on the same scale as a VAE's rec term; `loss='mse'` gives the notes' squared
error (per image) instead. Without a KL term the code space has no prior to sample from.
"""
from __future__ import annotations

import numpy as np

from minivae import checks, nn
from minivae import functional as F
from minivae.models.networks import conv_encoder
from minivae.models.vae import D, IMAGE_SHAPE
from minivae.tensor import Tensor, no_grad


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
        kw = dict(rng=rng, dtype=dtype)
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(D, hidden, **kw), nn.ReLU(),
                                nn.Linear(hidden, latent_dim, **kw))
        decoder = nn.Sequential(nn.Linear(latent_dim, hidden, **kw), nn.ReLU(),
                                nn.Linear(hidden, D, **kw), nn.Unflatten(1, IMAGE_SHAPE))
        return cls(encoder, decoder, latent_dim, loss)

    @classmethod
    def conv(cls, latent_dim: int = 20, rng=None, dtype=np.float32,
             loss: str = "bernoulli") -> "AE":
        """The conv VAE's layers with a latent_dim-wide code instead of (mu, log_var)."""
        rng = np.random.default_rng() if rng is None else rng
        kw = dict(rng=rng, dtype=dtype)
        encoder = conv_encoder(latent_dim, **kw)  # (B, latent)
        decoder = nn.Sequential(
            nn.Linear(latent_dim, 3136, **kw), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 4, 2, 1, **kw), nn.ReLU(),  # (B, 32, 14, 14)
            nn.ConvTranspose2d(32, 1, 4, 2, 1, **kw))  # (B, 1, 28, 28)
        return cls(encoder, decoder, latent_dim, loss)

    def encode(self, x) -> Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"AE: expected images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        if not x.shape[0]:
            raise ValueError(f"AE: an empty batch, shape {tuple(x.shape)}")
        return self.encoder(x)  # (B, latent)

    def decode(self, z) -> Tensor:
        """Logits (bernoulli) or pixel values (mse), (B, 1, 28, 28)."""
        return self.decoder(z)

    def loss(self, x, rng=None) -> tuple[Tensor, dict]:
        """Reconstruction loss per image; `rng` is unused (the model is deterministic)."""
        B = x.shape[0]
        f = self.decode(self.encode(x))
        if self.loss_name == "bernoulli":
            checks.probabilities(x.data if isinstance(x, Tensor) else np.asarray(x), "x",
                                 "AE.loss")
            rec = F.binary_cross_entropy_with_logits(f, x, reduction="sum") / B
        else:
            rec = F.mse_loss(f, x, reduction="sum") / B
        return rec, {"rec": rec.item()}

    def reconstruct(self, x) -> np.ndarray:
        with no_grad():
            f = self.decode(self.encode(x if isinstance(x, Tensor) else Tensor(x)))
        return F.sigmoid(f).data if self.loss_name == "bernoulli" else np.clip(f.data, 0, 1)
