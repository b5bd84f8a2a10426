"""PyTorch twins of minivae's models, for the benchmarks: the same networks, losses and recipes.

    TorchVAE(latent_dim, conv)     the MLP or conv VAE of minivae.models.vae (Bernoulli likelihood)
    TorchAAE(prior, ...)           AAE.mlp's three networks and its three-phase step
    train_epoch_vae, train_epoch_aae   one epoch on the batches minivae's loops would draw

torch is imported inside the functions, so a benchmark without torch still runs minivae's half.
The twins train on minivae's own data order (data.batches with the loop's Generator) and draw the
AAE's prior samples with minivae's samplers, so both libraries see the same numbers.
"""
import numpy as np

from minivae import data


def torch_vae(latent_dim: int, conv: bool):
    """VAE.mlp (784-400-latent) or VAE.conv as a torch Module with loss(x) = −ELBO per image."""
    import torch
    from torch import nn

    class TorchVAE(nn.Module):
        def __init__(self):
            super().__init__()
            if conv:
                self.encoder = nn.Sequential(
                    nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                    nn.Flatten(), nn.Linear(3136, 2 * latent_dim))
                self.decoder = nn.Sequential(
                    nn.Linear(latent_dim, 3136), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
                    nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
                    nn.ConvTranspose2d(32, 1, 4, 2, 1))
            else:
                self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 400), nn.ReLU(),
                                             nn.Linear(400, 2 * latent_dim))
                self.decoder = nn.Sequential(nn.Linear(latent_dim, 400), nn.ReLU(),
                                             nn.Linear(400, 784), nn.Unflatten(1, (1, 28, 28)))

        def loss(self, x):
            mu, log_var = self.encoder(x).chunk(2, dim=1)
            z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
            rec = nn.functional.binary_cross_entropy_with_logits(self.decoder(z), x,
                                                                 reduction="sum")
            kl = 0.5 * torch.sum(mu ** 2 + log_var.exp() - log_var - 1)
            return (rec + kl) / len(x)

    return TorchVAE()


def train_epoch_vae(model, optimizer, x_train, batch_size, rng) -> float:
    """One epoch of minibatch steps, as train.fit runs them; returns the mean training loss."""
    import torch
    total = 0.0
    for x in data.batches(x_train, batch_size, rng):
        loss = model.loss(torch.from_numpy(x))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(x)
    return total / len(x_train)


class TorchAAE:
    """AAE.mlp's networks (encoder 784-h-h-latent, decoder latent-h-h-784, discriminator
    latent-h-h-1, ReLU) and AAE.step's three phases with their own Adam optimisers. Like minivae's
    step it makes one encoder pass for both regularisation phases, runs the discriminator once on
    [prior samples, codes], and computes no discriminator gradient in the generator phase."""

    def __init__(self, prior: str = "gaussian", hidden: int = 512, seed: int = 0):
        import torch
        from torch import nn

        from minivae.models.aae import AAE
        torch.manual_seed(seed)
        self.probe = AAE.mlp(prior=prior, hidden=1)  # minivae's prior sampler and config
        c, d = self.probe.config, self.probe.config.latent_dim
        self.conditional = self.probe.prior.conditional
        d_in = d + (10 if self.conditional else 0)

        def mlp(widths):
            layers = []
            for n_in, n_out in zip(widths[:-1], widths[1:]):
                layers += [nn.Linear(n_in, n_out), nn.ReLU()]
            return nn.Sequential(*layers[:-1])

        self.encoder = nn.Sequential(nn.Flatten(), mlp([784, hidden, hidden, d]))
        self.decoder = nn.Sequential(mlp([d, hidden, hidden, 784]), nn.Unflatten(1, (1, 28, 28)))
        self.disc = mlp([d_in, hidden, hidden, 1])
        adam = lambda params, lr: torch.optim.Adam(params, lr=lr, betas=c.betas)
        self.opt_rec = adam([*self.encoder.parameters(), *self.decoder.parameters()], c.lr_rec)
        self.opt_disc = adam(self.disc.parameters(), c.lr_disc)
        self.opt_gen = adam(self.encoder.parameters(), c.lr_gen)
        self.base_lr = {o: o.param_groups[0]["lr"] for o in self.optimizers()}

    def optimizers(self):
        return self.opt_rec, self.opt_disc, self.opt_gen

    def set_lr_factor(self, factor: float) -> None:
        for o in self.optimizers():
            o.param_groups[0]["lr"] = self.base_lr[o] * factor

    def discriminate(self, z, one_hot=None):
        import torch
        if self.conditional:
            z = torch.cat([z, one_hot], dim=1)
        return self.disc(z).reshape(-1)

    def step(self, x_np: np.ndarray, rng: np.random.Generator, labels=None) -> float:
        """The three phases on one minibatch; returns the reconstruction loss."""
        import torch
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        x, B = torch.from_numpy(x_np), len(x_np)
        one_hot = (torch.nn.functional.one_hot(torch.from_numpy(labels), 10).float()
                   if self.conditional else None)
        # 1. reconstruction
        rec = bce(self.decoder(self.encoder(x)), x, reduction="sum") / B
        self.opt_rec.zero_grad()
        rec.backward()
        self.opt_rec.step()
        # 2a. discriminator, on [prior samples, codes]
        z = self.encoder(x)
        z_prior = torch.from_numpy(self.probe.sample_prior(B, rng, labels=labels))
        both_labels = None if one_hot is None else torch.cat([one_hot, one_hot])
        logits = self.discriminate(torch.cat([z_prior, z.detach()]), both_labels)
        loss = bce(logits, torch.cat([torch.ones(B), torch.zeros(B)]))
        self.opt_disc.zero_grad()
        loss.backward()
        self.opt_disc.step()
        # 2b. generator: the encoder against a frozen discriminator
        self.disc.requires_grad_(False)
        loss = bce(self.discriminate(z, one_hot), torch.ones(B))
        self.opt_gen.zero_grad()
        loss.backward()
        self.disc.requires_grad_(True)
        self.opt_gen.step()
        return rec.item()


def train_epoch_aae(model: TorchAAE, x_train, y_train, batch_size, rng, factor=1.0) -> float:
    """One epoch of three-phase steps, as train.fit runs AAE.step (its learning rates set to
    `factor` times their first-epoch values); returns the mean reconstruction loss."""
    model.set_lr_factor(factor)
    arrays = x_train if y_train is None else (x_train, np.asarray(y_train))
    total = 0.0
    for batch in data.batches(arrays, batch_size, rng):
        x, y = batch if y_train is not None else (batch, None)
        total += model.step(x, rng, y) * len(x)
    return total / len(x_train)
