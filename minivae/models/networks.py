"""Networks that several models share, built in one place.

    conv_encoder    image (B, 1, H, W) -> 1→32→64 channels by stride-2 4×4 convolutions with ReLU
                    (28 → 14 → 7), then one Linear to `out_features`: the conv VAE's encoder
                    (2·latent outputs: mu and log_var), the conv AE's (latent) and the PixelVAE's.
"""
from __future__ import annotations

import numpy as np

from minivae import nn
from minivae.functional import conv_output_size

IMAGE_SHAPE = (1, 28, 28)


def conv_encoder(out_features: int, image_shape: tuple = IMAGE_SHAPE, rng=None,
                 dtype=np.float32) -> nn.Sequential:
    """Conv(1→32, 4, s2, p1) ReLU Conv(32→64, 4, s2, p1) ReLU Flatten Linear(64·H/4·W/4 → out)."""
    rng = np.random.default_rng() if rng is None else rng
    kw = dict(rng=rng, dtype=dtype)
    _, H, W = image_shape
    h, w = (conv_output_size(conv_output_size(n, 4, 2, 1), 4, 2, 1) for n in (H, W))
    return nn.Sequential(
        nn.Conv2d(image_shape[0], 32, 4, 2, 1, **kw), nn.ReLU(),  # (B, 32, H/2, W/2)
        nn.Conv2d(32, 64, 4, 2, 1, **kw), nn.ReLU(),  # (B, 64, H/4, W/4)
        nn.Flatten(), nn.Linear(64 * h * w, out_features, **kw))  # (B, out_features)
