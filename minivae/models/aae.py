"""Adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow & Frey, 2015, "Adversarial
Autoencoders", arXiv:1511.05644).

    z = Enc(x)              a deterministic encoder; its codes of the data make the aggregate
                            posterior q(z) = E_x[δ(z − Enc(x))]
    p(x|z) = Bernoulli(x | σ(Dec(z)))      the decoder, as in the autoencoder
    D(z) = σ(Disc(z))       the discriminator: the probability that z was drawn from p(z)

A VAE pulls every q(z|x) toward p(z) with a KL term. The AAE instead makes the aggregate q(z) match
p(z) by adversarial training on the codes — a GAN whose generator is the encoder — which needs
only samples of p(z), so the prior can have any shape (minivae/samplers.py). Each minibatch step
has three phases, each updating only its own parameters with its own optimiser:

  1. reconstruction  rec = −Σ_pixels ln p(x | z = Enc(x))                        encoder, decoder
  2. regularisation  L_D = −½[ln D(z_p) + ln(1 − D(Enc(x)))],  z_p ~ p(z)          discriminator
                     L_G = −ln D(Enc(x))                                          encoder

L_G is the non-saturating generator loss of Goodfellow et al. (2014): it has the same fixed point
as minimising ln(1 − D) but strong gradients while the discriminator still wins easily. With
logits l = Disc(z), −ln σ(l) and −ln(1 − σ(l)) are BCE-with-logits against targets 1 and 0, which
stay finite for any l.

The supervised prior (the paper's section 2.3, Figure 4): the discriminator also sees the image's
label as a one-hot vector, and the prior sample set against each code is drawn from the mixture
component that the label picks, so each digit class fills its own component.

Training is train.fit's loop with the AAE's hooks: `step=model.step` (the three phases, one
optimiser each: `model.optimizers()`), `evaluation=model.evaluate`, and
`on_step=train.linear_decay(optimizers, config.lr_decay, epochs)`: the three learning rates fall
linearly to lr_decay times their first values by the last epoch, for at constant rates the
adversarial game never settles, and the codes keep swinging around the prior from one epoch to the
next (the final MMD would depend on the epoch you stop at).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from minivae import checks, nn, optim, samplers
from minivae import functional as F
from minivae.metrics import encode_all, mmd_rbf, median_heuristic
from minivae.models.networks import IMAGE_SHAPE, mlp, mlp_decoder, mlp_encoder
from minivae.tensor import Tensor, as_tensor, no_grad
from minivae.train import descend, evaluate


@dataclass
class AAEConfig:
    latent_dim: int = 2
    prior: str = "gaussian"  # 'gaussian', 'radial', 'swiss-roll' or 'supervised' (samplers.NAMES)
    optimizer: str = "adam"  # or 'sgd', with momentum (the paper's choice)
    lr_rec: float = 4e-4  # phase 1: encoder and decoder
    lr_disc: float = 4e-4  # phase 2a: discriminator
    lr_gen: float = 4e-4  # phase 2b: encoder
    betas: tuple = (0.5, 0.999)  # Adam's; β1 = 0.5 is the usual choice for adversarial training
    momentum: float = 0.9  # SGD's
    lr_decay: float = 0.1  # the rates fall to this fraction by the last epoch (train.linear_decay)
    mmd_n: int = 2000  # test codes in evaluate's MMD
    input_shape: tuple = IMAGE_SHAPE  # of one item: (1, 28, 28) for digits, (2,) for points
    hidden: int = 512  # the width of every hidden layer of the three networks


class AAE(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module, discriminator: nn.Module,
                 config: AAEConfig):
        self.encoder, self.decoder, self.discriminator = encoder, decoder, discriminator
        self.config = config
        if config.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', not {config.optimizer!r}")
        checks.integer(config.mmd_n, "mmd_n", "AAE", minimum=2)
        self.prior = samplers.make(config.prior, config.latent_dim)  # checks that it fits

    # ------------------------------------------------------------ builders
    @classmethod
    def mlp(cls, latent_dim: int = 2, prior: str = "gaussian", hidden: int = 512,
            input_shape: tuple = IMAGE_SHAPE, rng=None, dtype=np.float32, **fields) -> "AAE":
        """784-512-512-latent / latent-512-512-784 / latent-512-512-1, ReLU between layers (the
        paper's MNIST networks used 1000 units). With the supervised prior the discriminator's
        input grows by a one-hot label: (latent + 10)-512-512-1. `input_shape` other than
        (1, 28, 28) builds the same networks for other data, e.g. (2,) for points in the plane."""
        checks.integer(latent_dim, "latent_dim", "AAE.mlp")
        checks.integer(hidden, "hidden", "AAE.mlp")
        rng = checks.generator(rng, "AAE.mlp")
        config = AAEConfig(latent_dim=latent_dim, prior=prior, input_shape=tuple(input_shape),
                           hidden=hidden, **fields)
        p = samplers.make(prior, latent_dim)  # fail early, before building anything
        D = math.prod(input_shape)
        d_in = latent_dim + ((p.n_classes or 0) if p.conditional else 0)
        encoder = mlp_encoder([D, hidden, hidden, latent_dim], rng, dtype)  # (B, latent)
        decoder = mlp_decoder([latent_dim, hidden, hidden, D], input_shape, rng, dtype)
        discriminator = nn.Sequential(*mlp([d_in, hidden, hidden, 1], rng, dtype))  # (B, 1)
        return cls(encoder, decoder, discriminator, config)

    @classmethod
    def from_config(cls, config: AAEConfig | dict, rng=None, dtype=np.float32) -> "AAE":
        """The AAE a config describes, freshly initialised (runs.load_run loads its weights)."""
        c = dataclasses.asdict(config) if isinstance(config, AAEConfig) else dict(config)
        c["betas"], c["input_shape"] = tuple(c["betas"]), tuple(c["input_shape"])  # JSON: lists
        return cls.mlp(rng=rng, dtype=dtype, **c)

    def optimizers(self) -> optim.Optimizers:
        """One optimiser per phase, as the config says: rec (encoder and decoder), disc, gen (the
        encoder again, with moment estimates of its own)."""
        c = self.config
        enc, dec = self.encoder.parameters(), self.decoder.parameters()
        disc = self.discriminator.parameters()
        make: Callable[[list, float], optim.Optimizer]
        if c.optimizer == "adam":
            make = lambda params, lr: optim.Adam(params, lr=lr, betas=c.betas)
        else:
            make = lambda params, lr: optim.SGD(params, lr=lr, momentum=c.momentum)
        return optim.Optimizers(rec=make(enc + dec, c.lr_rec), disc=make(disc, c.lr_disc),
                                gen=make(enc, c.lr_gen))

    # ------------------------------------------------------------ the networks
    def encode(self, x) -> Tensor:
        """z = Enc(x), (B, latent)."""
        checks.batch(x, self.config.input_shape, "AAE")
        return self.encoder(x)  # (B, latent)

    def decode(self, z) -> Tensor:
        """Bernoulli logits, (B, *input_shape)."""
        return self.decoder(z)

    def discriminate(self, z, labels: np.ndarray | None = None) -> Tensor:
        """Disc(z): the logit of 'z came from the prior', (B,). The supervised prior's
        discriminator sees [z, one-hot label]."""
        if self.prior.conditional:
            if labels is None:
                raise ValueError(f"the {self.config.prior!r} prior is supervised: pass the "
                                 f"images' labels")
            assert self.prior.n_classes is not None  # a conditional prior has its classes
            one_hot = np.eye(self.prior.n_classes, dtype=z.dtype)[labels]  # (B, classes)
            z = F.concatenate([z, Tensor(one_hot)], axis=1)  # (B, latent + classes)
        return self.discriminator(z).reshape(-1)  # (B,)

    def sample_prior(self, n: int, rng: np.random.Generator, *,
                     labels: np.ndarray | None = None) -> np.ndarray:
        """n draws of p(z) (of p(z | label) for the supervised prior), in the model's dtype."""
        z = self.prior.sample(n, rng, labels=labels if self.prior.conditional else None)  # (n, d)
        return z.astype(self._dtype())

    def _dtype(self):
        return self.decoder.parameters()[0].dtype

    # ------------------------------------------------------------ the three losses
    def loss(self, x, rng=None) -> tuple[Tensor, dict]:
        """The reconstruction loss, −Σ ln p(x|z) in nats per item (the train.evaluate interface;
        `rng` is unused: the model is deterministic)."""
        B = x.shape[0]
        checks.probabilities(as_tensor(x).data, "x", "AAE.loss")
        rec = F.binary_cross_entropy_with_logits(self.decode(self.encode(x)), x,
                                                 reduction="sum") / B
        return rec, {"rec": rec.item()}

    def disc_loss(self, z, z_prior, labels=None) -> tuple[Tensor, float]:
        """L_D = mean BCE of Disc on [z_prior, z] against targets [1, 0], and its accuracy.
        z (codes) and z_prior (prior samples): (B, latent) each, no gradient to the codes."""
        # exercise aae-phases: the discriminator's loss
        z, z_prior = as_tensor(z).detach(), as_tensor(z_prior).detach()
        both = F.concatenate([z_prior, z], axis=0)  # (2B, latent): one pass through D
        labels = None if labels is None else np.concatenate([labels, labels])
        logits = self.discriminate(both, labels)  # (2B,)
        target = np.concatenate([np.ones(len(z_prior)), np.zeros(len(z))]).astype(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, target)  # mean over 2B
        accuracy = float(np.mean((logits.data > 0) == (target > 0)))
        return loss, accuracy
        # end exercise

    def gen_loss(self, z, labels=None) -> Tensor:
        """L_G = mean −ln D(z) = mean BCE of Disc(z) against target 1 (non-saturating)."""
        # exercise aae-phases: the generator's loss
        logits = self.discriminate(z, labels)  # (B,)
        return F.binary_cross_entropy_with_logits(logits, np.ones(logits.shape, logits.dtype))
        # end exercise

    # ------------------------------------------------------------ one training step
    def reconstruction_phase(self, x: Tensor, optimizer: optim.Optimizer) -> float:
        """Phase 1: one step of the encoder and decoder on the reconstruction loss."""
        rec, _ = self.loss(x)
        descend(rec, optimizer, "rec")  # not applied if rec or its gradient is NaN or infinite
        return rec.item()

    def discriminator_phase(self, z, optimizer: optim.Optimizer, rng: np.random.Generator,
                            labels=None) -> tuple[float, float]:
        """Phase 2a: one step of the discriminator, telling prior samples from the codes z."""
        loss, accuracy = self.disc_loss(z, self.sample_prior(len(z), rng, labels=labels), labels)
        descend(loss, optimizer, "disc")
        return loss.item(), accuracy

    def generator_phase(self, z: Tensor, optimizer: optim.Optimizer, labels=None) -> float:
        """Phase 2b: one step of the encoder toward codes the discriminator takes for prior
        samples. z = Enc(x) with its graph. The discriminator is frozen for the whole phase, so
        the backward pass computes no gradient for it (backward too runs inside the block)."""
        with nn.frozen(self.discriminator):
            loss = self.gen_loss(z, labels)
            descend(loss, optimizer, "gen")
        return loss.item()

    def step(self, x, optimizers: optim.Optimizers, rng: np.random.Generator,
             labels: np.ndarray | None = None) -> dict:
        """The three phases on one minibatch x (train.fit's step); returns the losses and the
        discriminator's accuracy on this batch (measured before its update)."""
        if self.prior.conditional and labels is None:
            raise ValueError(f"the {self.config.prior!r} prior is supervised: train with the "
                             f"images' labels (train.fit's y_train and y_test)")
        x = as_tensor(x).detach()
        rec = self.reconstruction_phase(x, optimizers.rec)
        if not math.isfinite(rec):  # not applied; fit stops on it, before the other phases
            return {"rec": rec}
        # One encoder pass serves both regularisation phases: the encoder does not change
        # between them, so its codes and their graph are the same for both.
        z = self.encode(x)  # (B, latent)
        disc, accuracy = self.discriminator_phase(z.detach(), optimizers.disc, rng, labels)
        if not math.isfinite(disc):
            return {"rec": rec, "disc": disc}
        gen = self.generator_phase(z, optimizers.gen, labels)
        return {"rec": rec, "disc": disc, "gen": gen, "disc_accuracy": accuracy}

    # ------------------------------------------------------------ using it
    def reconstruct(self, x) -> np.ndarray:
        """σ(Dec(Enc(x))): pixel means in [0, 1]."""
        with no_grad():
            return F.sigmoid(self.decode(self.encode(as_tensor(x)))).data

    def generate(self, z: np.ndarray) -> np.ndarray:
        """Decoder means in [0, 1] for codes z of shape (N, latent)."""
        with no_grad():
            return F.sigmoid(self.decode(as_tensor(z, self._dtype()))).data

    def sample(self, n: int, rng: np.random.Generator, *, labels=None) -> np.ndarray:
        """n images decoded from z ~ p(z) (p(z | label) for the supervised prior)."""
        return self.generate(self.sample_prior(n, rng, labels=labels))

    def evaluate(self, x: np.ndarray, labels: np.ndarray | None, rng: np.random.Generator) -> dict:
        """On held-out data (train.fit's evaluation): the reconstruction loss (nats per item, also
        the 'loss'), the discriminator's accuracy at telling the codes of x from as many prior
        samples, and the squared MMD between the codes of the first config.mmd_n items and as many
        prior samples, beside its floor (the MMD between two independent prior samples of that
        size). One bandwidth serves both MMDs: the median heuristic on a third prior sample, so it
        is a property of the prior alone."""
        rec = evaluate(self, x, rng)["rec"]
        z = encode_all(self, x)  # (N, latent)
        y = None if labels is None else np.asarray(labels)
        z_prior = self.sample_prior(len(z), rng, labels=y)
        with no_grad():
            _, accuracy = self.disc_loss(z, z_prior, y)
        n = min(self.config.mmd_n, len(z))
        y_n = None if y is None else y[:n]
        h = median_heuristic(self.sample_prior(n, rng, labels=y_n))
        mmd = mmd_rbf(z[:n], z_prior[:n], h)
        floor = mmd_rbf(self.sample_prior(n, rng, labels=y_n),
                        self.sample_prior(n, rng, labels=y_n), h)
        return {"loss": rec, "rec": rec, "disc_accuracy": accuracy, "mmd": mmd, "mmd_floor": floor,
                "mmd_n": n, "mmd_bandwidth": h}
