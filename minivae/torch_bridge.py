"""A bridge to PyTorch: the same network as a `torch.nn` module, with the same weights, and back.

    net = to_torch(module)                 the torch.nn equivalent: same state_dict keys, weights
                                           copied, the dtype of the module's parameters
    from_torch(net.state_dict(), module)   torch weights into a minivae module (returns it)

This is the way past one machine: a model understood (or trained) in minivae continues in PyTorch,
on a GPU or in distributed training, without retraining, and comes back for a look inside.

    Linear, Conv2d, ConvTranspose2d, ReLU, LeakyReLU, Sigmoid, Tanh, Flatten, Unflatten,
    Sequential                       their torch.nn namesakes, with the same keys: a layer with an
                                     activation is two modules there (Linear, ReLU), in the two
                                     places minivae's Sequential gives it
    MaskedConv2d                     torch.nn.Conv2d computing with weight · mask, the (k, k)
                                     mask ('A', 'B', 'V', 'HA', 'HB') a non-persistent buffer,
                                     so it moves with .to(device) and stays out of the state_dict
    GatedLayer, Head, PixelCNN       the gated PixelCNN (models/pixelcnn.py): forward, log_prob,
                                     sample (one full pass per pixel: the oracle, not the cache)
    StandardPrior, MixturePrior,     p(z): log_prob(z) and kl(mu, log_var, z), per image (the
    VampPrior                        closed form per dimension for N(0, I), else the one-sample
                                     ln q(z|x) − ln p(z)); a VampPrior only inside its model, whose
                                     encoder it calls at its pseudo-inputs
    VAE, PixelVAE                    with any of those priors: encode, decode, log_joint and
                                     loss(x, eps), the true −ELBO per image (β-weighted for the
                                     VAE), as minivae's `loss` at that eps (the PixelVAE's in eval
                                     mode: no KL warm-up, no free bits)
    AE, AAE                          encode, decode and the losses: AE.loss; the AAE's loss (rec),
                                     disc_loss(z, z_prior, labels) and gen_loss(z, labels), given
                                     the prior samples (its priors are samplers, with nothing to
                                     convert)

Anything else raises TypeError naming it and where it sits: a model converts whole, every
parameter, or not at all (PCA is fitted in closed form and has no torch twin). torch is imported
only inside these functions, never by the rest of minivae. The torch classes are made on first
use; they live in this module's namespace (as `minivae.torch_bridge.PixelCNN` and so on), so
`torch.save(net)` pickles. This file sits above models/: it knows their classes.
"""
from __future__ import annotations

import functools
import math
from collections import OrderedDict

import numpy as np

from minivae import nn, priors
from minivae.models import aae, ae, pixelcnn, pixelvae, vae

SUPPORTED = ("Linear", "Conv2d", "ConvTranspose2d", "MaskedConv2d", "ReLU", "LeakyReLU",
             "Sigmoid", "Tanh", "Flatten", "Unflatten", "Sequential", "GatedLayer", "Head",
             "PixelCNN", "StandardPrior", "MixturePrior", "VampPrior (inside its model)", "AE",
             "VAE", "PixelVAE", "AAE")


def to_torch(module: nn.Module):
    """The torch.nn module computing what `module` computes, with its weights and state_dict
    keys, in the dtype of its parameters (float64 stays float64)."""
    import torch

    with torch.random.fork_rng(devices=[]):  # torch's layers initialise: keep the user's seed
        net = _convert(module, "")
    ours = module.state_dict()
    if set(net.state_dict()) != set(ours):  # a bridge bug, not the user's
        raise KeyError(f"to_torch: the keys differ: {sorted(set(net.state_dict()) ^ set(ours))}")
    if ours:
        net = net.to(torch.from_numpy(next(iter(ours.values()))).dtype)
        net.load_state_dict({k: torch.from_numpy(v) for k, v in ours.items()})
    return net


def from_torch(state_dict, module: nn.Module) -> nn.Module:
    """Copy a torch state_dict (or a torch module's) into `module`: every key and shape is checked
    before anything is written, values take the module's dtype (bit for bit when they share it).
    Returns the module."""
    if hasattr(state_dict, "state_dict"):
        state_dict = state_dict.state_dict()
    module.load_state_dict({k: v.detach().cpu().numpy() for k, v in state_dict.items()})
    return module


# ---------------------------------------------------------------- minivae module -> torch module


def _convert(m: nn.Module, where: str, in_sequential: bool = False):
    build = _builders().get(type(m))  # the exact type: a subclass may compute something else
    if build is None and not isinstance(m, nn.Module):
        raise TypeError(f"to_torch: {type(m).__name__}{f' (at {where!r})' if where else ''} is "
                        f"not a minivae module, so it has no PyTorch equivalent; supported: "
                        f"{', '.join(SUPPORTED)}")
    if getattr(m, "activation", "identity") != "identity" and not in_sequential:
        raise TypeError(f"to_torch: {type(m).__name__}{f' (at {where!r})' if where else ''} has "
                        f"activation={m.activation!r}, which torch.nn keeps in a module of its "
                        f"own: convert it inside a Sequential (nn.Sequential(layer))")
    if build is None:
        hint = ("; a model's parts may convert on their own, e.g. to_torch(model.encoder)"
                if any(True for _ in m.named_children()) else "")
        raise TypeError(f"to_torch: no PyTorch equivalent for {type(m).__name__}"
                        f"{f' (at {where!r})' if where else ''}; supported: "
                        f"{', '.join(SUPPORTED)}{hint}")
    return build(m, lambda child, name, in_sequential=False: None if child is None else
                 _convert(child, f"{where}.{name}" if where else name, in_sequential))


@functools.cache
def _builders() -> dict:
    from torch import nn as tnn

    T = _torch_classes()
    bias = lambda m: m.bias is not None  # noqa: E731

    def children(net, m, sub, *names):
        for name in names:
            setattr(net, name, sub(getattr(m, name), name))
        return net

    def with_prior(net, m, sub):
        """The model's p(z) as net.prior; a VampPrior calls the torch model's own encode."""
        if type(m.prior) is priors.VampPrior:
            net.prior = T.VampPrior(m.prior.pseudo_inputs.shape, m.prior.latent_dim)
            net.prior.encode = net.encode
        else:
            net.prior = sub(m.prior, "prior")
        return net
    def sequential(m, sub):
        """Each layer under its own name; a layer's activation as the module after it."""
        layers = OrderedDict()
        for name, child in m.named_children():
            layers[name] = sub(child, name, in_sequential=True)
            if getattr(child, "activation", "identity") != "identity":
                layers[str(int(name) + 1)] = activation_module(child)
        return tnn.Sequential(layers)

    def activation_module(layer):
        if layer.activation == "leaky_relu":
            return tnn.LeakyReLU(layer.slope)
        return {"relu": tnn.ReLU, "sigmoid": tnn.Sigmoid, "tanh": tnn.Tanh}[layer.activation]()

    def vae_model(m, sub):
        c = m.config
        net = children(T.VAE(c.latent_dim, c.likelihood, c.c, c.beta), m, sub,
                       "encoder", "decoder")
        return with_prior(net, m, sub)

    def pixelvae_model(m, sub):
        parts = ("encoder", "decoder") + (("z_map",) if m.z_map is not None else ())
        net = children(T.PixelVAE(m.config.latent_dim), m, sub, *parts)
        return with_prior(net, m, sub)

    def vamp_alone(m, sub):
        raise TypeError("to_torch: a VampPrior is its model's encoder at its pseudo-inputs, so it "
                        "converts only with its model: to_torch(model)")

    return {
        nn.Linear: lambda m, sub: tnn.Linear(m.in_features, m.out_features, bias(m)),
        nn.Conv2d: lambda m, sub: tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size,
                                             m.stride, m.padding, bias=bias(m)),
        nn.ConvTranspose2d: lambda m, sub: tnn.ConvTranspose2d(
            m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.output_padding,
            bias=bias(m)),
        nn.MaskedConv2d: lambda m, sub: T.MaskedConv2d(
            m.in_channels, m.out_channels, m.kernel_size, m.mask, m.mask_type, m.padding, bias(m)),
        nn.ReLU: lambda m, sub: tnn.ReLU(),
        nn.LeakyReLU: lambda m, sub: tnn.LeakyReLU(m.slope),
        nn.Sigmoid: lambda m, sub: tnn.Sigmoid(),
        nn.Tanh: lambda m, sub: tnn.Tanh(),
        nn.Flatten: lambda m, sub: tnn.Flatten(m.start_dim),
        nn.Unflatten: lambda m, sub: tnn.Unflatten(m.dim, m.sizes),
        nn.Sequential: sequential,
        pixelcnn.GatedLayer: lambda m, sub: children(
            T.GatedLayer(m.first, m.last), m, sub,
            "vertical", "horizontal", "link", "out", "cond_v", "cond_h"),
        pixelcnn.Head: lambda m, sub: children(T.Head(), m, sub, "hidden", "cond", "logit"),
        pixelcnn.PixelCNN: lambda m, sub: children(
            T.PixelCNN(m.image_shape, m.cond_dim), m, sub, "layers", "head"),
        priors.StandardPrior: lambda m, sub: T.StandardPrior(m.latent_dim),
        priors.MixturePrior: lambda m, sub: T.MixturePrior(*m.means.shape),
        priors.VampPrior: vamp_alone,
        ae.AE: lambda m, sub: children(T.AE(m.config.loss), m, sub, "encoder", "decoder"),
        vae.VAE: vae_model,
        pixelvae.PixelVAE: pixelvae_model,
        aae.AAE: lambda m, sub: children(
            T.AAE(m.prior.n_classes if m.prior.conditional else 0), m, sub,
            "encoder", "decoder", "discriminator"),
    }


# ---------------------------------------------------------------- the torch classes

_TORCH_CLASSES = ("MaskedConv2d", "GatedLayer", "Head", "PixelCNN", "StandardPrior",
                  "MixturePrior", "VampPrior", "AE", "VAE", "PixelVAE", "AAE")


def __getattr__(name: str):
    """minivae.torch_bridge.PixelCNN and the rest, made on first use (so unpickling finds them)."""
    if name in _TORCH_CLASSES:
        return getattr(_torch_classes(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _torch_classes():
    """The torch modules with no torch.nn namesake, written as the twins of minivae's."""
    import torch
    from torch import nn as tnn
    from torch.nn import functional as TF

    def gate(x):
        """tanh(a) ⊙ σ(b) for x = (a ‖ b) on the channels, as F.gated_tanh."""
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def plus_bias(a, cond_net, cond):
        """a + c(y), per (sample, channel) from a vector y or per pixel too from a map y, as
        pixelcnn._plus_bias."""
        if cond_net is None:
            return a
        c = cond_net(cond)
        return a + (c if c.dim() == 4 else c[:, :, None, None])

    class MaskedConv2d(tnn.Conv2d):
        """y = x ⋆ (W · mask) + b: minivae's MaskedConv2d."""

        def __init__(self, in_channels, out_channels, kernel_size, mask, mask_type, padding,
                     bias=True):
            super().__init__(in_channels, out_channels, kernel_size, padding=padding, bias=bias)
            self.mask_type = mask_type
            self.register_buffer("mask", torch.as_tensor(np.array(mask)), persistent=False)

        def forward(self, x):
            return TF.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding)

        def extra_repr(self):
            return f"mask_type={self.mask_type!r}, " + super().extra_repr()

    class GatedLayer(tnn.Module):
        """pixelcnn.GatedLayer: (v, h_stack) -> (v', h_stack'), v' None after the last layer."""

        def __init__(self, first, last):
            super().__init__()
            self.first, self.last = first, last

        def forward(self, v, h_stack, cond=None):
            v_pre = self.vertical(v)
            shifted = TF.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]  # one row down, zeros on top
            h_pre = self.horizontal(h_stack) + self.link(shifted)
            u = gate(plus_bias(h_pre, self.cond_h, cond))
            v_out = None if self.last else gate(plus_bias(v_pre, self.cond_v, cond))
            return v_out, (u if self.first else h_stack + self.out(u))

    class Head(tnn.Module):
        """pixelcnn.Head: logit = P ∗ g(Q ∗ h_L + c(y))."""

        def forward(self, h_stack, cond=None):
            return self.logit(gate(plus_bias(self.hidden(h_stack), self.cond, cond)))

    class PixelCNN(tnn.Module):
        """pixelcnn.PixelCNN: forward(x, cond) -> logits (B, 1, H, W), log_prob, sample."""

        def __init__(self, image_shape, cond_dim):
            super().__init__()
            self.image_shape, self.cond_dim = tuple(image_shape), cond_dim

        def forward(self, x, cond=None):
            v = h_stack = x
            for layer in self.layers:
                v, h_stack = layer(v, h_stack, cond)
            return self.head(h_stack, cond)

        def log_prob(self, x, cond=None):
            """ln p(x | y), (B,) nats."""
            return -TF.binary_cross_entropy_with_logits(
                self(x, cond), x, reduction="none").sum(dim=(1, 2, 3))

        @torch.no_grad()
        def sample(self, n, cond=None, noise=None):
            """x_i = [u_i < σ(logit_i)], pixel by pixel, one full pass per pixel; noise: uniforms
            (n, 1, H, W), drawn by torch.rand when not given."""
            weight = self.head.logit.weight
            if noise is None:
                noise = torch.rand((n,) + self.image_shape, dtype=weight.dtype,
                                   device=weight.device)
            x = torch.zeros_like(noise)
            for r in range(x.shape[2]):
                for c in range(x.shape[3]):
                    logit = self(x, cond)[:, 0, r, c]
                    x[:, 0, r, c] = (noise[:, 0, r, c] < torch.sigmoid(logit)).to(x.dtype)
            return x

    def kl_standard(mu, log_var):
        """KL(N(mu, e^log_var) ‖ N(0, 1)) per dimension, in distributions' expm1 form."""
        return 0.5 * (mu * mu + (torch.expm1(log_var) - log_var))

    def normal_log_prob(z, mu, log_var):
        """ln N(z | mu, e^log_var) per element, as distributions.Normal.log_prob."""
        return -0.5 * (math.log(2 * math.pi) + log_var + (z - mu) ** 2 * torch.exp(-log_var))

    def mixture_log_prob(z, log_weights, means, log_vars):
        """ln Σ_k π_k N(z | m_k, diag e^log_var_k), (B,), as distributions.MixtureOfNormals."""
        per_component = normal_log_prob(z[:, None, :], means, log_vars).sum(-1)  # (B, K)
        return torch.logsumexp(log_weights + per_component, dim=-1)

    class StandardPrior(tnn.Module):
        """priors.StandardPrior: p(z) = N(0, I); kl in closed form, (B, d)."""

        def __init__(self, latent_dim):
            super().__init__()
            self.latent_dim = latent_dim

        def log_prob(self, z):
            return normal_log_prob(z, 0.0, torch.zeros_like(z)).sum(-1)

        def kl(self, mu, log_var, z=None):
            return kl_standard(mu, log_var)

    class LearnedPrior(tnn.Module):
        def kl(self, mu, log_var, z):
            """ln q(z|x) − ln p(z) at z ~ q(z|x), (B, 1): the one-sample estimate."""
            log_q = normal_log_prob(z, mu, log_var).sum(-1)
            return (log_q - self.log_prob(z))[:, None]

    class MixturePrior(LearnedPrior):
        """priors.MixturePrior: Σ_k softmax(logits)_k N(z | means_k, diag e^log_vars_k)."""

        def __init__(self, components, latent_dim):
            super().__init__()
            self.latent_dim = latent_dim
            self.means = tnn.Parameter(torch.zeros(components, latent_dim))
            self.log_vars = tnn.Parameter(torch.zeros(components, latent_dim))
            self.logits = tnn.Parameter(torch.zeros(components))

        def log_prob(self, z):
            return mixture_log_prob(z, torch.log_softmax(self.logits, 0), self.means,
                                    self.log_vars)

        def extra_repr(self):
            return f"components={len(self.logits)}, latent_dim={self.latent_dim}"

    class VampPrior(LearnedPrior):
        """priors.VampPrior: (1/K) Σ_k q(z | u_k), q its model's encode (set by the model)."""

        def __init__(self, shape, latent_dim):
            super().__init__()
            self.latent_dim = latent_dim
            self.pseudo_inputs = tnn.Parameter(torch.zeros(shape))

        def log_prob(self, z):
            mu, log_var = self.encode(self.pseudo_inputs)  # (K, d) each
            K = len(self.pseudo_inputs)
            return mixture_log_prob(z, torch.full((K,), -math.log(K), dtype=z.dtype,
                                                  device=z.device), mu, log_var)

        def extra_repr(self):
            return f"components={len(self.pseudo_inputs)}, latent_dim={self.latent_dim}"

    class AE(tnn.Module):
        """models.ae.AE: encode, decode, loss (Bernoulli or squared error, per image)."""

        def __init__(self, loss_name):
            super().__init__()
            self.loss_name = loss_name

        def encode(self, x):
            return self.encoder(x)

        def decode(self, z):
            return self.decoder(z)

        def loss(self, x):
            f = self.decode(self.encode(x))
            if self.loss_name == "bernoulli":
                rec = TF.binary_cross_entropy_with_logits(f, x, reduction="sum") / len(x)
            else:
                rec = TF.mse_loss(f, x, reduction="sum") / len(x)
            return rec, {"rec": rec.item()}

        forward = loss

    class VAE(tnn.Module):
        """models.vae.VAE with its prior."""

        def __init__(self, latent_dim, likelihood, c, beta):
            super().__init__()
            self.latent_dim, self.likelihood, self.c, self.beta = latent_dim, likelihood, c, beta

        def encode(self, x):
            """mu, log_var of q(z|x), (B, latent) each."""
            return self.encoder(x).split(self.latent_dim, dim=1)

        def decode(self, z):
            return self.decoder(z)

        def log_likelihood(self, x, z):
            """ln p(x|z), (B,)."""
            f = self.decode(z)
            if self.likelihood == "bernoulli":
                terms = -TF.binary_cross_entropy_with_logits(f, x, reduction="none")
            else:  # N(x | f, c·I), the constant included
                terms = -(0.5 * math.log(2 * math.pi * self.c) + (x - f) ** 2 / (2 * self.c))
            return terms.flatten(1).sum(1)

        def log_joint(self, x, z):
            """ln p(x|z) + ln p(z), (B,): the importance weights' numerator."""
            return self.log_likelihood(x, z) + self.prior.log_prob(z)

        def loss(self, x, eps=None):
            """−ELBO per image and its terms, with z = mu + σ·eps (eps ~ N(0, I) if not given)."""
            mu, log_var = self.encode(x)
            eps = torch.randn_like(mu) if eps is None else eps
            z = mu + torch.exp(0.5 * log_var) * eps
            rec = -self.log_likelihood(x, z).sum() / len(x)
            kl = self.prior.kl(mu, log_var, z).sum() / len(x)
            return rec + self.beta * kl, {"rec": rec.item(), "kl": kl.item()}

        forward = loss

    class PixelVAE(tnn.Module):
        """models.pixelvae.PixelVAE with its prior; `loss` is the true −ELBO (eval mode's: no KL
        weight, no free bits)."""

        def __init__(self, latent_dim):
            super().__init__()
            self.latent_dim = latent_dim

        def encode(self, x):
            """mu, log_var of q(z|x), (B, latent) each (empty without a latent)."""
            if not self.latent_dim:
                empty = x.new_zeros((len(x), 0))
                return empty, empty
            return self.encoder(x).split(self.latent_dim, dim=1)

        def conditioning(self, z):
            """z, its maps m(z) (conditioning 'map'), or None without a latent."""
            if not self.latent_dim:
                return None
            return self.z_map(z) if hasattr(self, "z_map") else z

        def log_likelihood(self, x, z):
            return self.decoder.log_prob(x, self.conditioning(z))

        def log_joint(self, x, z):
            return self.log_likelihood(x, z) + self.prior.log_prob(z)

        def loss(self, x, eps=None):
            d = self.latent_dim
            if not d:  # the PixelCNN alone
                rec = -self.decoder.log_prob(x).mean()
                return rec, {"rec": rec.item(), "kl": 0.0}
            mu, log_var = self.encode(x)
            eps = torch.randn_like(mu) if eps is None else eps
            z = mu + torch.exp(0.5 * log_var) * eps
            rec = -self.log_likelihood(x, z).mean()
            kl = self.prior.kl(mu, log_var, z).sum() / len(x)
            return rec + kl, {"rec": rec.item(), "kl": kl.item()}

        forward = loss

    class AAE(tnn.Module):
        """models.aae.AAE's networks and its three losses, the prior samples given."""

        def __init__(self, n_classes):
            super().__init__()
            self.n_classes = n_classes  # > 0: the supervised prior's discriminator sees labels

        def encode(self, x):
            return self.encoder(x)

        def decode(self, z):
            return self.decoder(z)

        def discriminate(self, z, labels=None):
            """Disc(z) (of [z, one-hot label] for the supervised prior), (B,)."""
            if self.n_classes:
                one_hot = TF.one_hot(torch.as_tensor(labels), self.n_classes).to(z.dtype)
                z = torch.cat([z, one_hot], dim=1)
            return self.discriminator(z).reshape(-1)

        def loss(self, x):
            """The reconstruction loss, nats per item."""
            rec = TF.binary_cross_entropy_with_logits(self.decode(self.encode(x)), x,
                                                      reduction="sum") / len(x)
            return rec, {"rec": rec.item()}

        def disc_loss(self, z, z_prior, labels=None):
            """Mean BCE of Disc on [z_prior, z] against [1, 0], no gradient to the codes; and its
            accuracy."""
            both = torch.cat([z_prior.detach(), z.detach()])
            labels = None if labels is None else torch.cat([torch.as_tensor(labels)] * 2)
            logits = self.discriminate(both, labels)
            target = torch.cat([torch.ones(len(z_prior)), torch.zeros(len(z))]).to(logits)
            accuracy = ((logits > 0) == (target > 0)).to(torch.float64).mean().item()
            return TF.binary_cross_entropy_with_logits(logits, target), accuracy

        def gen_loss(self, z, labels=None):
            """Mean −ln D(z), the non-saturating generator loss."""
            logits = self.discriminate(z, labels)
            return TF.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

        forward = loss

    made = dict(MaskedConv2d=MaskedConv2d, GatedLayer=GatedLayer, Head=Head, PixelCNN=PixelCNN,
                StandardPrior=StandardPrior, MixturePrior=MixturePrior, VampPrior=VampPrior,
                AE=AE, VAE=VAE, PixelVAE=PixelVAE, AAE=AAE)
    for name, cls in made.items():  # where pickle looks for them: see __getattr__
        cls.__module__, cls.__qualname__ = __name__, name
    return type("TorchClasses", (), made)
