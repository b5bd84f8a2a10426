"""The networks the models share, built in one place.

    mlp(widths)                     Linear layers of these widths, each but the last with a ReLU
    mlp_encoder(widths)             Flatten, then mlp: (B, *item_shape) -> (B, widths[-1])
    mlp_decoder(widths, shape)      mlp, then Unflatten: (B, widths[0]) -> (B, *shape)
    conv_encoder(out_features)      image (B, 1, H, W) -> 1→32→64 channels by stride-2 4×4
                                    convolutions with ReLU (28 → 14 → 7), then one Linear
    conv_decoder(in_features)       its mirror: one Linear with ReLU to (64, 7, 7), then stride-2
                                    4×4 transposed convolutions 64→32→1, ReLU between (7 → 14 → 28)
    map_decoder(in_features, C)     the same shape of network to C feature maps: (B, in) ->
                                    (B, C, H, W), the PixelVAE's z seen at every pixel

The VAE's encoders give 2·latent outputs (mu and log_var), the AE's and the AAE's a latent-wide
code; the decoders give Bernoulli logits or Gaussian means. Every ReLU is its layer's
`activation='relu'`, one op with the layer's product (nn.py); in a Sequential the layer takes two
places, so the keys read as PyTorch's Linear-then-ReLU twin's ('encoder.1.weight',
'encoder.3.weight'). Every builder takes `rng` and `dtype`
and creates its layers in order, so one seed gives the same weights whichever model builds them.
"""
from __future__ import annotations

import numpy as np

from minivae import checks
from minivae import nn
from minivae.functional import conv_output_size

IMAGE_SHAPE = (1, 28, 28)  # one digit: (channels, height, width)


def mlp(widths: list[int], rng=None, dtype=np.float32) -> list[nn.Module]:
    """Linear(widths[0] → widths[1]) with ReLU, ..., Linear(widths[-2] → widths[-1]): no ReLU
    after the last layer."""
    rng = checks.generator(rng, "networks.mlp")
    last = len(widths) - 2
    return [nn.Linear(n_in, n_out, rng=rng, dtype=dtype, activation="identity" if i == last else "relu")
            for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:]))]


def mlp_encoder(widths: list[int], rng=None, dtype=np.float32) -> nn.Sequential:
    """Flatten, then mlp(widths): widths[0] is the number of values in an item (784 for a digit)."""
    return nn.Sequential(nn.Flatten(), *mlp(widths, rng, dtype))


def mlp_decoder(widths: list[int], item_shape: tuple = IMAGE_SHAPE, rng=None,
                dtype=np.float32) -> nn.Sequential:
    """mlp(widths), then Unflatten to item_shape: widths[-1] is math.prod(item_shape)."""
    return nn.Sequential(*mlp(widths, rng, dtype), nn.Unflatten(1, tuple(item_shape)))


def conv_encoder(out_features: int, image_shape: tuple = IMAGE_SHAPE, rng=None,
                 dtype=np.float32) -> nn.Sequential:
    """Conv(1→32, 4, s2, p1, ReLU) Conv(32→64, 4, s2, p1, ReLU) Flatten Linear(64·H/4·W/4 → out)."""
    rng = checks.generator(rng, "networks.conv_encoder")
    kw = dict(rng=rng, dtype=dtype)
    _, H, W = image_shape
    h, w = (conv_output_size(conv_output_size(n, 4, 2, 1), 4, 2, 1) for n in (H, W))
    return nn.Sequential(
        nn.Conv2d(image_shape[0], 32, 4, 2, 1, **kw, activation="relu"),  # (B, 32, H/2, W/2)
        nn.Conv2d(32, 64, 4, 2, 1, **kw, activation="relu"),  # (B, 64, H/4, W/4)
        nn.Flatten(), nn.Linear(64 * h * w, out_features, **kw))  # (B, out_features)


def conv_decoder(in_features: int, rng=None, dtype=np.float32) -> nn.Sequential:
    """Linear(in → 64·7·7, ReLU) Unflatten ConvT(64→32, 4, s2, p1, ReLU) ConvT(32→1, 4, s2, p1):
    (B, in) -> (B, 1, 28, 28)."""
    rng = checks.generator(rng, "networks.conv_decoder")
    kw = dict(rng=rng, dtype=dtype)
    return nn.Sequential(
        nn.Linear(in_features, 64 * 7 * 7, **kw, activation="relu"), nn.Unflatten(1, (64, 7, 7)),
        nn.ConvTranspose2d(64, 32, 4, 2, 1, **kw, activation="relu"),  # (B, 32, 14, 14)
        nn.ConvTranspose2d(32, 1, 4, 2, 1, **kw))  # (B, 1, 28, 28)



def map_decoder(in_features: int, channels: int, image_shape: tuple = IMAGE_SHAPE, rng=None,
                dtype=np.float32) -> nn.Sequential:
    """Linear(in → C·H/4·W/4, ReLU) Unflatten ConvT(C→C, 4, s2, p1, ReLU) ConvT(C→C, 4, s2, p1):
    (B, in) -> (B, C, H, W), H and W multiples of 4 (the conditional PixelCNN's deconvolution
    network m(h), van den Oord et al., 2016, sec. 2.3)."""
    rng = checks.generator(rng, "networks.map_decoder")
    _, H, W = image_shape
    if H % 4 or W % 4:
        raise ValueError(f"map_decoder: the image's height and width must be multiples of 4 "
                         f"(two stride-2 layers), got {H}×{W}")
    kw, C = dict(rng=rng, dtype=dtype), channels
    return nn.Sequential(
        nn.Linear(in_features, C * H // 4 * W // 4, **kw, activation="relu"),
        nn.Unflatten(1, (C, H // 4, W // 4)),
        nn.ConvTranspose2d(C, C, 4, 2, 1, **kw, activation="relu"),  # (B, C, H/2, W/2)
        nn.ConvTranspose2d(C, C, 4, 2, 1, **kw))  # (B, C, H, W)
