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
    VAE, PixelVAE                    with the N(0, I) prior: encode, decode and loss(x, eps),
                                     the true −ELBO per image, as minivae's `loss` at that eps

Anything else raises TypeError naming it and where it sits. torch is imported only inside these
functions, never by the rest of minivae. The torch classes are made on first use; they live in
this module's namespace (as `minivae.torch_bridge.PixelCNN` and so on), so `torch.save(net)`
pickles. This file sits above models/: it knows their classes.
"""
from __future__ import annotations

import functools
import math
from collections import OrderedDict

import numpy as np

from minivae import nn, priors
from minivae.models import pixelcnn, pixelvae, vae

SUPPORTED = ("Linear", "Conv2d", "ConvTranspose2d", "MaskedConv2d", "ReLU", "LeakyReLU",
             "Sigmoid", "Tanh", "Flatten", "Unflatten", "Sequential", "GatedLayer", "Head",
             "PixelCNN", "VAE (N(0, I) prior)", "PixelVAE (N(0, I) prior)")


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
        _standard_prior(m)
        c = m.config
        return children(T.VAE(c.latent_dim, c.likelihood, c.c, c.beta), m, sub,
                        "encoder", "decoder")

    def pixelvae_model(m, sub):
        _standard_prior(m)
        return children(T.PixelVAE(m.config.latent_dim), m, sub, "encoder", "decoder")

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
        vae.VAE: vae_model,
        pixelvae.PixelVAE: pixelvae_model,
    }


def _standard_prior(model) -> None:
    if type(model.prior) is not priors.StandardPrior:
        raise TypeError(f"to_torch: no PyTorch equivalent for the prior "
                        f"{type(model.prior).__name__} of this {type(model).__name__}: only "
                        f"the N(0, I) prior (StandardPrior) converts; the encoder and decoder "
                        f"convert on their own: to_torch(model.encoder), to_torch(model.decoder)")


# ---------------------------------------------------------------- the torch classes

_TORCH_CLASSES = ("MaskedConv2d", "GatedLayer", "Head", "PixelCNN", "VAE", "PixelVAE")


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

    def plus_bias(a, linear, cond):
        """a + W y as a bias per (sample, channel), as pixelcnn._plus_bias."""
        return a if linear is None else a + linear(cond)[:, :, None, None]

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

    class VAE(tnn.Module):
        """models.vae.VAE with the N(0, I) prior."""

        def __init__(self, latent_dim, likelihood, c, beta):
            super().__init__()
            self.latent_dim, self.likelihood, self.c, self.beta = latent_dim, likelihood, c, beta

        def encode(self, x):
            """mu, log_var of q(z|x), (B, latent) each."""
            return self.encoder(x).split(self.latent_dim, dim=1)

        def decode(self, z):
            return self.decoder(z)

        def loss(self, x, eps=None):
            """−ELBO per image and its terms, with z = mu + σ·eps (eps ~ N(0, I) if not given)."""
            mu, log_var = self.encode(x)
            eps = torch.randn_like(mu) if eps is None else eps
            f = self.decode(mu + torch.exp(0.5 * log_var) * eps)
            if self.likelihood == "bernoulli":
                nll = TF.binary_cross_entropy_with_logits(f, x, reduction="sum")
            else:  # N(x | f, c·I), the constant included
                nll = (0.5 * math.log(2 * math.pi * self.c) + (x - f) ** 2 / (2 * self.c)).sum()
            rec, kl = nll / len(x), kl_standard(mu, log_var).sum() / len(x)
            return rec + self.beta * kl, {"rec": rec.item(), "kl": kl.item()}

        forward = loss

    class PixelVAE(tnn.Module):
        """models.pixelvae.PixelVAE with the N(0, I) prior; `loss` is the true −ELBO (eval
        mode's: no KL weight, no free bits)."""

        def __init__(self, latent_dim):
            super().__init__()
            self.latent_dim = latent_dim

        def loss(self, x, eps=None):
            d = self.latent_dim
            if not d:  # the PixelCNN alone
                rec = -self.decoder.log_prob(x).mean()
                return rec, {"rec": rec.item(), "kl": 0.0}
            mu, log_var = self.encoder(x).split(d, dim=1)
            eps = torch.randn_like(mu) if eps is None else eps
            rec = -self.decoder.log_prob(x, mu + torch.exp(0.5 * log_var) * eps).mean()
            kl = kl_standard(mu, log_var).sum() / len(x)
            return rec + kl, {"rec": rec.item(), "kl": kl.item()}

        forward = loss

    made = dict(MaskedConv2d=MaskedConv2d, GatedLayer=GatedLayer, Head=Head, PixelCNN=PixelCNN,
                VAE=VAE, PixelVAE=PixelVAE)
    for name, cls in made.items():  # where pickle looks for them: see __getattr__
        cls.__module__, cls.__qualname__ = __name__, name
    return type("TorchClasses", (), made)
