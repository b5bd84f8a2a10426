"""PixelVAE: a VAE whose decoder is a gated PixelCNN (Gulrajani, Kumar, Ahmed, Taiga, Visin,
Vazquez & Courville, 2016, "PixelVAE: A Latent Variable Model for Natural Images",
arXiv:1611.05013).

    q(z|x) = N(z | mu(x), diag σ²(x))           the conv VAE's encoder
    p(z)   = N(z | 0, I), or a learned prior (priors.py: a mixture of Gaussians, the VampPrior)
    p(x|z) = Π_i Bernoulli(x_i | σ(logit_i(x_<i, z)))   the gated PixelCNN, every gate biased by z:
             conditioning 'bias', W z, the same at every pixel (the paper's MNIST model), or 'map',
             W ∗ m(z), m a deconvolutional network to C maps at the image's size (networks.py)

The decoder is autoregressive over the pixels, so it models the local detail itself and z is left
to carry what a small receptive field cannot see: the digit's global shape. The loss is −ELBO in
nats per image, one z sample per image, with ln p(x|z) exact from one teacher-forced pass:

    −ELBO(x) = E_q[−ln p(x|z)] + KL(q(z|x) ‖ p(z)) = rec + kl.

With a learned prior the KL has no closed form and kl is the one-sample estimate ln q(z|x) − ln p(z)
at the same z. Training may weight the KL term (the reported −ELBO never does): β, a linear warm-up
of that weight over the first `warmup` epochs (Bowman et al., 2016; the PixelVAE code warms up over
10,000 steps), and free bits (Kingma et al., 2016, "Improved Variational Inference with Inverse
Autoregressive Flow", eq. 15), which charge each latent dimension at least λ nats of its batch-mean
KL, Σ_j max(λ, KL_j), so an unused dimension costs no gradient to revive (a learned prior's KL does
not split over the dimensions: it is charged max(dλ, KL) in all). In eval mode (`model.eval()`, as
`train.evaluate` runs it) `loss` is the true −ELBO: β = 1, no free bits.

latent_dim = 0 is the PixelCNN alone, the control that shows what z adds: z is then the empty
vector, KL = 0, and the ELBO and every IWAE bound equal the PixelCNN's exact ln p(x).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from minivae import functional as F
from minivae import checks, nn, priors
from minivae.distributions import Normal
from minivae.models.latent import LatentVariableModel
from minivae.models.networks import IMAGE_SHAPE, conv_encoder, map_decoder
from minivae.models.pixelcnn import PixelCNN
from minivae.tensor import Tensor, as_tensor, no_grad


CONDITIONINGS = ("bias", "map")


@dataclass
class PixelVAEConfig:
    latent_dim: int = 16
    channels: int = 16  # of the PixelCNN's features (2·channels before each gate)
    layers: int = 5  # gated layers after the 7×7 first one
    kernel_size: int = 3
    beta: float = 1.0  # weight of the KL term in training
    warmup: float = 0.0  # epochs over which that weight rises linearly from 0 to β
    free_bits: float = 0.0  # λ, nats per latent dimension (0: none)
    prior: str = "standard"  # p(z): 'standard', 'mixture' or 'vamp' (priors.PRIORS)
    prior_components: int = 10  # K of a learned prior
    image_shape: tuple = IMAGE_SHAPE  # (1, H, W) of binary images
    conditioning: str = "bias"  # how z reaches each gate: 'bias' (W z, the same at every pixel)
    # or 'map' (z → feature maps at the image's size → a 1×1 convolution: W m(z) per pixel)


def check_config(config: PixelVAEConfig) -> PixelVAEConfig:
    """Every size and weight of a PixelVAE's config checked, the bad one named."""
    checks.integer(config.latent_dim, "latent_dim", "PixelVAE", minimum=0)
    for name in ("beta", "warmup", "free_bits"):
        checks.real(getattr(config, name), name, "PixelVAE", low=0)
    if config.conditioning not in CONDITIONINGS:
        raise ValueError(f"PixelVAE: conditioning must be one of {', '.join(CONDITIONINGS)}, "
                         f"got {config.conditioning!r}")
    if not config.latent_dim and config.prior != "standard":
        raise ValueError(f"PixelVAE: latent_dim=0 has no z to put a {config.prior!r} prior on")
    return config


class PixelVAE(LatentVariableModel):
    """encode (but for latent_dim = 0) and the ELBO's two terms are latent.py's, shared with the
    VAE."""

    def __init__(self, encoder: nn.Module | None, decoder: PixelCNN, config: PixelVAEConfig,
                 prior_data: np.ndarray | None = None, rng=None, z_map: nn.Module | None = None):
        """encoder: None when latent_dim = 0. prior_data: training images, from which the
        VampPrior picks its pseudo-inputs. z_map: with conditioning 'map', the network m(z)."""
        check_config(config)
        self.encoder, self.decoder, self.config = encoder, decoder, config
        self.z_map = z_map
        self.image_shape = tuple(config.image_shape)
        self.prior = priors.build(config.prior, config.latent_dim, config.prior_components,
                                  self.encode, prior_data, rng, decoder.dtype)
        # the training weight of KL; see schedule()
        self.kl_weight = 0.0 if config.warmup else config.beta

    # ------------------------------------------------------------ builders
    @classmethod
    def gated(cls, latent_dim: int = 16, channels: int = 16, layers: int = 5,
              kernel_size: int = 3, rng=None, dtype=np.float32, prior_data=None,
              **fields) -> "PixelVAE":
        """The conv VAE's encoder (none when latent_dim = 0: the PixelCNN alone) and a gated
        PixelCNN decoder of `layers` gated layers after a 7×7 first one, each with 2·channels
        features before its gate. `fields`: PixelVAEConfig's others. `rng`: a Generator or
        an int seed."""
        config = check_config(PixelVAEConfig(latent_dim, channels, layers, kernel_size, **fields))
        config.image_shape = shape = tuple(config.image_shape)
        rng = checks.generator(rng, "PixelVAE")
        encoder = conv_encoder(2 * latent_dim, shape, rng, dtype) if latent_dim else None
        spatial = bool(latent_dim) and config.conditioning == "map"
        z_map = map_decoder(latent_dim, channels, shape, rng, dtype) if spatial else None
        decoder = PixelCNN(shape, channels, layers, kernel_size, channels if spatial else latent_dim,
                           rng, dtype, cond_map=spatial)
        return cls(encoder, decoder, config, prior_data, rng, z_map)

    @classmethod
    def from_config(cls, config: PixelVAEConfig | dict, rng=None, dtype=np.float32,
                    prior_data=None) -> "PixelVAE":
        """The PixelVAE a config describes, freshly initialised (runs.load_run then loads its
        weights). Without prior_data a VampPrior's pseudo-inputs start at zero: a loaded
        checkpoint holds them."""
        c = dataclasses.asdict(config) if isinstance(config, PixelVAEConfig) else dict(config)
        c["image_shape"] = tuple(c.get("image_shape", IMAGE_SHAPE))  # JSON gives a list
        if c.get("prior") == "vamp" and prior_data is None:
            prior_data = np.zeros((c.get("prior_components", 10), *c["image_shape"]), dtype)
        return cls.gated(**c, prior_data=prior_data, rng=rng, dtype=dtype)

    def schedule(self, epochs: float) -> None:
        """Set the KL weight for training `epochs` epochs in: β·min(1, epochs / warmup). Pass it to
        train.fit as on_step, which calls it before every step with the epochs done after it."""
        warmup = self.config.warmup
        self.kl_weight = self.config.beta * (min(1.0, epochs / warmup) if warmup else 1.0)

    # ------------------------------------------------------------ the model
    def encode(self, x) -> Normal:
        """q(z|x) = N(mu, diag exp(log_var)), (B, latent) each.  x: (B, 1, 28, 28)."""
        if self.config.latent_dim:
            return super().encode(x)
        checks.batch(x, self.image_shape, "PixelVAE")  # the PixelCNN alone: z is the empty vector
        empty = np.zeros((x.shape[0], 0), self.decoder.dtype)
        return Normal(empty, empty)

    def conditioning(self, z):
        """What the PixelCNN's gates see of z: z itself, its feature maps m(z) (B, C, H, W) with
        conditioning 'map', None for the PixelCNN alone."""
        if not self.config.latent_dim:
            return None
        return self.z_map(as_tensor(z)) if self.z_map is not None else z

    def log_likelihood(self, x, z) -> Tensor:
        """ln p(x|z) by the PixelCNN, teacher-forced: (B,) nats."""
        return self.decoder.log_prob(x, self.conditioning(z))

    def loss(self, x, rng: np.random.Generator) -> tuple[Tensor, dict]:
        """The training objective (eval mode: the true −ELBO), nats per image, and its terms."""
        rec, kl = self.elbo(x, rng)  # latent.py: encode → sample z → ln p(x|z) → KL
        kl_groups = kl.sum(axis=0) / x.shape[0]  # batch means, (latent,) or (1,): see elbo
        kl = kl_groups.sum()
        parts = {"rec": rec.item(), "kl": kl.item()}
        if not self.training:
            return rec + kl, parts
        lam = self.config.free_bits * self.config.latent_dim / max(1, kl_groups.shape[0])
        charged = (F.relu(kl_groups - lam) + lam).sum() if lam else kl  # Σ_g max(λ_g, KL_g)
        return rec + self.kl_weight * charged, parts

    def log_joint(self, x, z) -> Tensor:
        """ln p(x|z) + ln p(z) per image, (N,): the numerator of the importance weights (IWAE).
        x: (N, 1, 28, 28), z: (N, latent)."""
        z = as_tensor(z)
        return self.log_likelihood(x, z) + self.prior.log_prob(z)

    # ------------------------------------------------------------ using it
    def generate(self, z, rng: np.random.Generator, noise=None, cached: bool = True,
                 progress: bool = False) -> np.ndarray:
        """Images for codes z (N, latent), as the VAE's generate, but drawn: x ~ p(x|z), pixel by
        pixel, (N, 1, 28, 28) of 0/1 (no decode: the PixelCNN's logits need x, see
        log_likelihood); progress: a progress bar row by row."""
        z = np.asarray(z, dtype=self.decoder.dtype)
        with no_grad():
            cond = self.conditioning(z)  # what the PixelCNN's gates see of z
        cond = cond.data if isinstance(cond, Tensor) else cond
        return self.decoder.sample(len(z), rng, cond=cond, noise=noise, cached=cached,
                                   progress=progress)

    def sample(self, n: int, rng: np.random.Generator, *, cached: bool = True,
               progress: bool = False) -> np.ndarray:
        """n images from the model: z ~ p(z), then x ~ p(x|z)."""
        n = checks.integer(n, "n", "PixelVAE.sample")
        return self.generate(self.prior.sample(n, rng), rng, cached=cached, progress=progress)

    def reconstruct(self, x, rng: np.random.Generator, cached: bool = True,
                    progress: bool = False) -> np.ndarray:
        """The paper's "decompressions": z ~ q(z|x), then x' ~ p(x|z), (B, 1, 28, 28)."""
        with no_grad():
            z = self.encode(as_tensor(x)).rsample(rng)
        return self.generate(z.data, rng, cached=cached, progress=progress)
