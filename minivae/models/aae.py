"""Adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow & Frey, 2015, "Adversarial
Autoencoders", arXiv:1511.05644).

    z = Enc(x)              a deterministic encoder; its codes of the data make the aggregate
                            posterior q(z) = E_x[δ(z − Enc(x))]
    p(x|z) = Bernoulli(x | σ(Dec(z)))      the decoder, as in the autoencoder
    D(z) = σ(Disc(z))       the discriminator: the probability that z was drawn from p(z)

A VAE pulls every q(z|x) toward p(z) with a KL term. The AAE instead makes the aggregate q(z) match
p(z) by adversarial training on the codes — a GAN whose generator is the encoder — which needs
only samples of p(z), so the prior can have any shape (minivae/priors.py). Each minibatch step
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
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from minivae import checks, data, nn, optim, priors
from minivae import functional as F
from minivae.metrics import mmd_rbf, median_heuristic
from minivae.models.networks import IMAGE_SHAPE, mlp, mlp_decoder, mlp_encoder
from minivae.tensor import Tensor, as_tensor, no_grad
from minivae.train import (Progress, close_run, evaluate, open_run, run_settings, save_run,
                           stopped)


@dataclass
class AAEConfig:
    latent_dim: int = 2
    prior: str = "gaussian"  # 'gaussian', 'radial', 'swiss-roll' or 'supervised' (priors.NAMES)
    optimizer: str = "adam"  # or 'sgd', with momentum (the paper's choice)
    lr_rec: float = 4e-4  # phase 1: encoder and decoder
    lr_disc: float = 4e-4  # phase 2a: discriminator
    lr_gen: float = 4e-4  # phase 2b: encoder
    betas: tuple = (0.5, 0.999)  # Adam's; β1 = 0.5 is the usual choice for adversarial training
    momentum: float = 0.9  # SGD's
    lr_decay: float = 0.1  # fit_aae lowers the rates linearly to this fraction by the last epoch
    input_shape: tuple = IMAGE_SHAPE  # of one item: (1, 28, 28) for digits, (2,) for points


class AAEOptimizers:
    """The three optimisers of a step, one per phase. The rec and gen optimisers both update the
    encoder, each with its own moment estimates. Saved and restored as one state (for resume)."""

    def __init__(self, rec: optim.Optimizer, disc: optim.Optimizer, gen: optim.Optimizer):
        self.rec, self.disc, self.gen = rec, disc, gen

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"{phase}/{key}": value for phase in ("rec", "disc", "gen")
                for key, value in getattr(self, phase).state_dict().items()}

    def load_state_dict(self, state: dict) -> None:
        """All three are checked before any is written."""
        parts = {phase: {k[len(phase) + 1:]: v for k, v in state.items()
                         if k.startswith(phase + "/")} for phase in ("rec", "disc", "gen")}
        unexpected = [k for k in state if k.split("/")[0] not in parts]
        if unexpected:
            raise KeyError(f"optimizer state: unexpected keys {unexpected}")
        before = {phase: getattr(self, phase).state_dict() for phase in parts}
        try:
            for phase, part in parts.items():
                getattr(self, phase).load_state_dict(part)
        except (KeyError, ValueError):
            for phase, state_before in before.items():
                getattr(self, phase).load_state_dict(state_before)
            raise


class AAE(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module, discriminator: nn.Module,
                 config: AAEConfig):
        self.encoder, self.decoder, self.discriminator = encoder, decoder, discriminator
        self.config = config
        if config.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', not {config.optimizer!r}")
        self.prior = priors.make(config.prior, config.latent_dim)  # checks that it fits

    # ------------------------------------------------------------ builders
    @classmethod
    def mlp(cls, latent_dim: int = 2, prior: str = "gaussian", hidden: int = 512,
            input_shape: tuple = IMAGE_SHAPE, rng=None, dtype=np.float32, **config) -> "AAE":
        """784-512-512-latent / latent-512-512-784 / latent-512-512-1, ReLU between layers (the
        paper's MNIST networks used 1000 units). With the supervised prior the discriminator's
        input grows by a one-hot label: (latent + 10)-512-512-1. `input_shape` other than
        (1, 28, 28) builds the same networks for other data, e.g. (2,) for points in the plane."""
        rng = np.random.default_rng() if rng is None else rng
        config = AAEConfig(latent_dim=latent_dim, prior=prior, input_shape=tuple(input_shape),
                           **config)
        p = priors.make(prior, latent_dim)  # fail early, before building anything
        D = math.prod(input_shape)
        d_in = latent_dim + (p.n_classes if p.conditional else 0)
        encoder = mlp_encoder([D, hidden, hidden, latent_dim], rng, dtype)  # (B, latent)
        decoder = mlp_decoder([latent_dim, hidden, hidden, D], input_shape, rng, dtype)
        discriminator = nn.Sequential(*mlp([d_in, hidden, hidden, 1], rng, dtype))  # (B, 1)
        return cls(encoder, decoder, discriminator, config)

    def optimizers(self) -> AAEOptimizers:
        """One optimiser per phase, as the config says."""
        c = self.config
        enc, dec = self.encoder.parameters(), self.decoder.parameters()
        disc = self.discriminator.parameters()
        if c.optimizer == "adam":
            make = lambda params, lr: optim.Adam(params, lr=lr, betas=c.betas)
        else:
            make = lambda params, lr: optim.SGD(params, lr=lr, momentum=c.momentum)
        return AAEOptimizers(make(enc + dec, c.lr_rec), make(disc, c.lr_disc),
                             make(enc, c.lr_gen))

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
            one_hot = np.eye(self.prior.n_classes, dtype=z.dtype)[labels]  # (B, classes)
            z = F.concatenate([z, Tensor(one_hot)], axis=1)  # (B, latent + classes)
        return self.discriminator(z).reshape(-1)  # (B,)

    def sample_prior(self, n: int, rng: np.random.Generator,
                     labels: np.ndarray | None = None) -> np.ndarray:
        """n draws of p(z) (of p(z | label) for the supervised prior), in the model's dtype."""
        z = self.prior.sample(n, rng, labels if self.prior.conditional else None)  # (n, latent)
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
        z, z_prior = as_tensor(z).detach(), as_tensor(z_prior).detach()
        both = F.concatenate([z_prior, z], axis=0)  # (2B, latent): one pass through D
        labels = None if labels is None else np.concatenate([labels, labels])
        logits = self.discriminate(both, labels)  # (2B,)
        target = np.concatenate([np.ones(len(z_prior)), np.zeros(len(z))]).astype(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, target)  # mean over 2B
        accuracy = float(np.mean((logits.data > 0) == (target > 0)))
        return loss, accuracy

    def gen_loss(self, z, labels=None) -> Tensor:
        """L_G = mean −ln D(z) = mean BCE of Disc(z) against target 1 (non-saturating)."""
        logits = self.discriminate(z, labels)  # (B,)
        return F.binary_cross_entropy_with_logits(logits, np.ones(logits.shape, logits.dtype))

    # ------------------------------------------------------------ one training step
    def reconstruction_phase(self, x: Tensor, optimizer: optim.Optimizer) -> float:
        """Phase 1: one step of the encoder and decoder on the reconstruction loss."""
        rec, _ = self.loss(x)
        optimizer.zero_grad()
        rec.backward()
        optimizer.step()
        return rec.item()

    def discriminator_phase(self, z, optimizer: optim.Optimizer, rng: np.random.Generator,
                            labels=None) -> tuple[float, float]:
        """Phase 2a: one step of the discriminator, telling prior samples from the codes z."""
        loss, accuracy = self.disc_loss(z, self.sample_prior(len(z), rng, labels), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item(), accuracy

    def generator_phase(self, z: Tensor, optimizer: optim.Optimizer, labels=None) -> float:
        """Phase 2b: one step of the encoder toward codes the discriminator takes for prior
        samples. z = Enc(x) with its graph. The discriminator is frozen for the whole phase, so
        the backward pass computes no gradient for it (backward too runs inside the block)."""
        with nn.frozen(self.discriminator):
            loss = self.gen_loss(z, labels)
            optimizer.zero_grad()
            loss.backward()
        optimizer.step()
        return loss.item()

    def step(self, x, optimizers: AAEOptimizers, rng: np.random.Generator,
             labels: np.ndarray | None = None) -> dict:
        """The three phases on one minibatch x; returns the losses and the discriminator's
        accuracy on this batch (measured before its update)."""
        x = as_tensor(x).detach()
        rec = self.reconstruction_phase(x, optimizers.rec)
        # One encoder pass serves both regularisation phases: the encoder does not change
        # between them, so its codes and their graph are the same for both.
        z = self.encode(x)  # (B, latent)
        disc, accuracy = self.discriminator_phase(z.detach(), optimizers.disc, rng, labels)
        gen = self.generator_phase(z, optimizers.gen, labels)
        return {"rec": rec, "disc": disc, "gen": gen, "disc_accuracy": accuracy}

    # ------------------------------------------------------------ using it
    def encode_all(self, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Codes of every item of x, (N, latent)."""
        with no_grad():
            return np.concatenate([self.encode(Tensor(x[i:i + batch_size])).data
                                   for i in range(0, len(x), batch_size)])

    def reconstruct(self, x) -> np.ndarray:
        """σ(Dec(Enc(x))): pixel means in [0, 1]."""
        with no_grad():
            return F.sigmoid(self.decode(self.encode(as_tensor(x)))).data

    def generate(self, z: np.ndarray) -> np.ndarray:
        """Decoder means in [0, 1] for codes z of shape (N, latent)."""
        with no_grad():
            z = as_tensor(z, self._dtype())
            return F.sigmoid(self.decode(z)).data

    def sample(self, n: int, rng: np.random.Generator, labels=None) -> np.ndarray:
        """n images decoded from z ~ p(z) (p(z | label) for the supervised prior)."""
        return self.generate(self.sample_prior(n, rng, labels))

    def evaluate(self, x: np.ndarray, labels: np.ndarray | None, rng: np.random.Generator,
                 mmd_n: int = 2000) -> dict:
        """On held-out data: the reconstruction loss (nats per item), the discriminator's accuracy
        at telling the codes of x from as many prior samples, and the squared MMD between the
        codes of the first `mmd_n` items and as many prior samples, beside its floor (the MMD
        between two independent prior samples of that size). One bandwidth serves both MMDs:
        the median heuristic on a third prior sample, so it is a property of the prior alone."""
        rec = evaluate(self, x, rng)["rec"]
        z = self.encode_all(x)  # (N, latent)
        y = None if labels is None else np.asarray(labels)
        z_prior = self.sample_prior(len(z), rng, y)
        with no_grad():
            _, accuracy = self.disc_loss(z, z_prior, y)
        n = min(mmd_n, len(z))
        y_n = None if y is None else y[:n]
        h = median_heuristic(self.sample_prior(n, rng, y_n))
        mmd = mmd_rbf(z[:n], z_prior[:n], h)
        floor = mmd_rbf(self.sample_prior(n, rng, y_n), self.sample_prior(n, rng, y_n), h)
        return {"rec": rec, "disc_accuracy": accuracy, "mmd": mmd, "mmd_floor": floor,
                "mmd_bandwidth": h, "mmd_n": n}


# ---------------------------------------------------------------------------- the training loop


def fit_aae(model: AAE, x_train: np.ndarray, x_test: np.ndarray, *, y_train=None, y_test=None,
            epochs: int, batch_size: int = 128, seed: int = 0,
            optimizers: AAEOptimizers | None = None, out: str | None = None,
            resume: bool = False, mmd_n: int = 2000,
            log: Callable = print) -> list[dict]:
    """Train for `epochs` epochs of three-phase steps; return the history, one dict per epoch.

    The same conventions as train.fit: one Generator from `seed` drives shuffling and prior
    sampling (so a seed fixes every loss), each epoch is evaluated with its own derived Generator,
    a progress bar shows on a terminal only, and with `out` a checkpoint and history.json are
    written after every epoch, which `resume=True` continues from. Labels are needed for the
    supervised prior only. A non-finite loss stops training with FloatingPointError.

    The three learning rates fall linearly, from the optimisers' own at the first epoch to
    `model.config.lr_decay` times those at the last: at constant rates the adversarial game never
    settles, and the codes keep swinging around the prior from one epoch to the next (the
    final MMD would depend on the epoch you stop at)."""
    if model.prior.conditional and (y_train is None or y_test is None):
        raise ValueError(f"the {model.config.prior!r} prior is supervised: pass y_train and "
                         f"y_test")
    epochs = checks.integer(epochs, "epochs", "fit_aae")
    batch_size = checks.integer(batch_size, "batch_size", "fit_aae")
    seed = checks.integer(seed, "seed", "fit_aae", minimum=0)
    mmd_n = checks.integer(mmd_n, "mmd_n", "fit_aae", minimum=2)
    x_train = checks.data(x_train, "x_train", "fit_aae")
    x_test = checks.data(x_test, "x_test", "fit_aae")
    optimizers = model.optimizers() if optimizers is None else optimizers
    settings = run_settings(model, optimizers, x_train, x_test, batch_size=batch_size, seed=seed,
                            mmd_n=mmd_n, epochs=epochs)
    rng = np.random.default_rng(seed)
    checkpoint, history = open_run(out, resume, model, optimizers, rng, log, settings)
    saved_epoch = len(history)  # of this run's last checkpoint

    arrays = x_train if y_train is None else (x_train, np.asarray(y_train))
    base_lr = {phase: getattr(optimizers, phase).lr for phase in ("rec", "disc", "gen")}
    for epoch in range(len(history) + 1, epochs + 1):
        start, sums, seen = time.perf_counter(), {}, 0
        # linear decay: 1 at the first epoch, config.lr_decay at the last
        factor = 1 + (model.config.lr_decay - 1) * (epoch - 1) / max(epochs - 1, 1)
        for phase, lr in base_lr.items():
            getattr(optimizers, phase).lr = lr * factor
        progress = Progress(math.ceil(len(x_train) / batch_size), f"epoch {epoch}/{epochs}")
        for i, batch in enumerate(data.batches(arrays, batch_size, rng), start=1):
            x, y = batch if y_train is not None else (batch, None)
            parts = model.step(x, optimizers, rng, y)
            if not all(math.isfinite(v) for v in parts.values()):
                progress.close()
                raise stopped(f"a loss is not finite at epoch {epoch}, step {i}: {parts}",
                              checkpoint, saved_epoch)
            sums = {k: sums.get(k, 0.0) + v * len(x) for k, v in parts.items()}
            seen += len(x)
            progress.update(i, sums["rec"] / seen)
        progress.close()
        seconds = time.perf_counter() - start
        test = model.evaluate(x_test, y_test, np.random.default_rng([seed, 2, epoch]), mmd_n)
        if not all(math.isfinite(v) for v in test.values()):
            raise stopped(f"a test value is not finite after epoch {epoch}: {test}; this epoch "
                          f"is not saved", checkpoint, saved_epoch)
        record = {"epoch": epoch, **{f"train_{k}": v / seen for k, v in sums.items()},
                  "test_loss": test["rec"], "test_rec": test["rec"],
                  "test_disc_accuracy": test["disc_accuracy"], "test_mmd": test["mmd"],
                  "test_mmd_floor": test["mmd_floor"], "test_mmd_n": test["mmd_n"],
                  "test_mmd_bandwidth": test["mmd_bandwidth"], "seconds": seconds}
        history.append(record)
        log(f"epoch {epoch:3d}  rec {record['train_rec']:.2f}  disc {record['train_disc']:.3f}"
            f"  gen {record['train_gen']:.3f}  test rec {test['rec']:.2f}"
            f"  D acc {test['disc_accuracy']:.2f}  MMD² {test['mmd']:.4f}"
            f" (floor {test['mmd_floor']:.4f})  {seconds:.1f}s")
        if checkpoint:
            save_run(checkpoint, model, optimizers, rng, history, settings)
            saved_epoch = epoch
    close_run(out)
    return history
