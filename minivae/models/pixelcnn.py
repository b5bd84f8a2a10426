"""Gated PixelCNN for binary images, with no blind spot (van den Oord, Kalchbrenner, Vinyals,
Espeholt, Graves & Kavukcuoglu, 2016, "Conditional Image Generation with PixelCNN Decoders",
arXiv:1606.05328): the PixelVAE's decoder, and with cond_dim=0 a PixelCNN on its own.

    p(x | y) = Π_i p(x_i | x_<i, y),   x_i ~ Bernoulli(σ(logit_i)),   i over pixels in raster order

with y the conditioning (`cond` in the code: the PixelVAE's z). Every logit_i is computed from the
pixels before i only, so one teacher-forced pass gives all the conditionals at once and ln p(x | y)
exactly. Two stacks carry the features, v (vertical) and h (horizontal):

    vertical    v_l = g(V_l ∗ v_{l−1} + c_l^v(y))        mask 'V': rows above and the centre row
    link        s_l = L_l ∗ shift_down(V_l ∗ v_{l−1})   1×1; at row r it holds rows < r only
    horizontal  u_l = g(H_l ∗ h_{l−1} + s_l + c_l^h(y))  mask 'HA' (first layer) or 'HB'
                h_l = h_{l−1} + O_l ∗ u_l                1×1 and a residual (h_0 = u_0: no residual)
    gate        g(a ‖ b) = tanh(a) ⊙ σ(b)               the channels split in two halves
    head        logit = P ∗ g(Q ∗ h_L + c^o(y))          two 1×1 convolutions

v_{−1} = h_{−1} = x; layer 0 has a 7×7 kernel, the `layers` layers after it `kernel_size`. The
vertical stack at row r reads rows ≤ r, the whole width, and reaches the horizontal stack only
through the shift, so pixel (r, c) sees a full window of the rows above - the pixels above and to
the right included, which stacked raster masks miss - and the pixels to its left. The conditioning
c(y) (no bias, as the convolutions have theirs) is, for a vector y (B, cond_dim), W y: a learned
bias per gate, the same at every position, the PixelVAE paper's MNIST variant (Gulrajani et al.,
2016, arXiv:1611.05013, `cond_z_bias`); for a map y (B, cond_dim, H, W) (`cond_map=True`) a 1×1
convolution W ∗ y, a bias per gate and pixel (van den Oord et al., 2016, sec. 2.3, where y is
made from h by a deconvolutional network). A bias the same everywhere cannot say where a stroke
goes unless the network knows where it is, which a few layers from the padding do not.

Sampling is sequential: pixel i needs the pixels before it. `sample(cached=False)` runs a full
pass per pixel (H·W passes, the oracle); `cached=True` keeps every layer's feature maps and
computes only what the new pixel changes: each layer's vertical stack once per row, its horizontal
stack and the head once per pixel (the idea of Fast PixelCNN++, Ramachandran et al., 2017,
arXiv:1704.06001; the caches here are whole feature maps, filled in raster order, rather than the
paper's queues of the last few rows; the vertical stacks' rows are array code here, the pixels
along a row one call of kernels.sample_row). Both follow x_i = [u_i < σ(logit_i)] with uniform
noise u, so the same noise gives the same image.
"""
from __future__ import annotations

from typing import cast

import numpy as np

from minivae import checks, kernels
from minivae import functional as F
from minivae import nn
from minivae.distributions import Bernoulli
from minivae.progress import Progress
from minivae.tensor import Tensor, as_tensor, no_grad

FIRST_KERNEL = 7  # the first layer's kernel size, as in the paper


class GatedLayer(nn.Module):
    """One layer of both stacks: (v, h_stack) -> (v', h_stack') at the same resolution, C channels
    each.
    The last layer's vertical stack feeds nothing above it, so there v' is None: it only makes
    the link into the horizontal stack."""

    def __init__(self, in_channels: int, channels: int, kernel_size: int, cond_dim: int,
                 first: bool, last: bool, rng, dtype, cond_map: bool = False):
        kw = dict(rng=rng, dtype=dtype)
        C2 = 2 * channels  # a and b of each gate
        self.first, self.last = first, last
        self.vertical = nn.MaskedConv2d(in_channels, C2, kernel_size, "V", **kw)
        self.horizontal = nn.MaskedConv2d(in_channels, C2, kernel_size, "HA" if first else "HB", **kw)
        self.link = nn.Conv2d(C2, C2, 1, **kw)
        self.out = None if first else nn.Conv2d(channels, channels, 1, **kw)
        self.cond_v = _conditioning(cond_dim, C2, cond_map, kw) if not last else None
        self.cond_h = _conditioning(cond_dim, C2, cond_map, kw)

    def forward(self, v, h_stack, cond=None) -> tuple[Tensor | None, Tensor]:
        v_pre = self.vertical(v)  # (B, 2C, H, W): at row r, rows ≤ r
        h_pre = self.horizontal(h_stack) + self.link(F.shift_down(v_pre))  # row r: rows < r, left
        u = F.gated_tanh(_plus_bias(h_pre, self.cond_h, cond))  # (B, C, H, W)
        v_out = None if self.last else F.gated_tanh(_plus_bias(v_pre, self.cond_v, cond))
        return v_out, (u if self.out is None else h_stack + self.out(u))  # the first: no residual


class Head(nn.Module):
    """logit = P ∗ g(Q ∗ h_L + c(y)): two 1×1 convolutions around a gate, one logit per pixel."""

    def __init__(self, channels: int, cond_dim: int, rng, dtype, cond_map: bool = False):
        kw = dict(rng=rng, dtype=dtype)
        self.hidden = nn.Conv2d(channels, 2 * channels, 1, **kw)
        self.cond = _conditioning(cond_dim, 2 * channels, cond_map, dict(rng=rng, dtype=dtype))
        self.logit = nn.Conv2d(channels, 1, 1, **kw)

    def forward(self, h_stack, cond=None) -> Tensor:
        hidden = _plus_bias(self.hidden(h_stack), self.cond, cond)  # (B, 2C, H, W)
        return self.logit(F.gated_tanh(hidden))  # (B, 1, H, W)


def _conditioning(cond_dim: int, C2: int, cond_map: bool, kw: dict) -> nn.Module | None:
    """c(y) = W y for one gate (no bias, as the convolutions have theirs): a Linear of a vector y,
    a 1×1 convolution of a map y; None without conditioning."""
    if not cond_dim:
        return None
    return nn.Conv2d(cond_dim, C2, 1, bias=False, **kw) if cond_map else \
        nn.Linear(cond_dim, C2, bias=False, **kw)


def _plus_bias(a: Tensor, cond_net: nn.Module | None, cond: Tensor | None) -> Tensor:
    """a + c(y): (B, 2C, H, W). From a vector y a bias per (sample, channel), the same at every
    pixel; from a map y (B, cond_dim, H, W) one per pixel too."""
    if cond_net is None:
        return a
    c = cond_net(cond)
    return a + (c if c.ndim == 4 else c.reshape(len(a), -1, 1, 1))


class PixelCNN(nn.Module):
    """The gated PixelCNN p(x | y) over binary images of shape (1, H, W).

    net(x, cond) -> logits (B, 1, H, W) in one teacher-forced pass; net.log_prob(x, cond) -> (B,)
    nats; net.sample(n, rng, cond=cond) -> (n, 1, H, W) of 0/1. Fully convolutional: any H, W
    (image_shape is the size `sample` draws). cond, the conditioning y: (B, cond_dim), or None when
    cond_dim = 0. Each checks its inputs once."""

    def __init__(self, image_shape: tuple = (1, 28, 28), channels: int = 16, layers: int = 5,
                 kernel_size: int = 3, cond_dim: int = 0, rng: np.random.Generator | None = None,
                 dtype=np.float32, cond_map: bool = False):
        if len(image_shape) != 3 or image_shape[0] != 1 or min(image_shape) < 1:
            raise ValueError(f"PixelCNN: image_shape must be (1, H, W) for binary images, "
                             f"got {image_shape}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"PixelCNN: kernel_size must be odd (a mask needs a centre), "
                             f"got {kernel_size}")
        if layers < 0 or channels < 1 or cond_dim < 0:
            raise ValueError(f"PixelCNN: need layers >= 0, channels >= 1 and cond_dim >= 0, got "
                             f"layers={layers}, channels={channels}, cond_dim={cond_dim}")
        rng = checks.generator(rng, "PixelCNN")
        self.image_shape, self.channels, self.cond_dim = tuple(image_shape), channels, cond_dim
        self.cond_map = bool(cond_dim and cond_map)
        self.kernel_size, self.n_layers = kernel_size, layers
        gated = [GatedLayer(1, channels, FIRST_KERNEL, cond_dim, True, layers == 0, rng, dtype,
                            cond_map)]
        gated += [GatedLayer(channels, channels, kernel_size, cond_dim, False, i == layers, rng,
                             dtype, cond_map) for i in range(1, layers + 1)]
        self.layers = nn.Sequential(*gated)  # a list of layers: '0', '1', ... as in PyTorch
        self.head = Head(channels, cond_dim, rng, dtype, cond_map)

    @property
    def dtype(self):
        return self.head.logit.weight.dtype

    def forward(self, x, cond=None) -> Tensor:
        """The Bernoulli logits of every pixel given the pixels before it: (B, 1, H, W)."""
        return self._logits(*self._check(x, cond))

    def log_prob(self, x, cond=None) -> Tensor:
        """ln p(x | y) = Σ_i ln Bernoulli(x_i | σ(logit_i)), (B,) nats."""
        x, cond = self._check(x, cond)
        return Bernoulli(self._logits(x, cond)).log_prob(x).sum(axis=(1, 2, 3))

    def _logits(self, x: Tensor, cond: Tensor | None) -> Tensor:
        """The teacher-forced pass, on inputs already checked."""
        v = h_stack = x  # (B, 1, H, W)
        for layer in self.layers:
            v, h_stack = layer(v, h_stack, cond)  # (B, C, H, W) each
        return self.head(h_stack, cond)  # (B, 1, H, W)

    def _check(self, x, cond) -> tuple[Tensor, Tensor | None]:
        """x as a binary (B, 1, H, W) Tensor in the model's dtype, cond as (B, cond_dim) or None."""
        x = as_tensor(x, self.dtype)
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"PixelCNN: expected binary images of shape (B, 1, H, W), "
                             f"got {tuple(x.shape)}")
        if not np.isin(x.data, (0, 1)).all():
            bad = x.data[~np.isin(x.data, (0, 1))][0]
            raise ValueError(f"PixelCNN: pixels must be 0 or 1 (binarise the images first, "
                             f"minivae.data.binarize), found {bad}")
        return x, self._check_cond(cond, x.shape[0], x.shape[2:])

    def _check_cond(self, cond, n: int, hw: tuple) -> Tensor | None:
        """cond as (n, cond_dim), or (n, cond_dim, H, W) for a map; None without conditioning."""
        if self.cond_dim == 0:
            if cond is not None:
                raise ValueError("PixelCNN: this network is unconditional (cond_dim=0), "
                                 "so it takes no cond")
            return None
        shape = (n, self.cond_dim, *hw) if self.cond_map else (n, self.cond_dim)
        if cond is None or tuple(np.shape(cond)) != shape:
            raise ValueError(f"PixelCNN: cond must have shape {shape}, got "
                             f"{None if cond is None else tuple(np.shape(cond))}")
        return as_tensor(cond, self.dtype)

    # ------------------------------------------------------------ sampling
    def sample(self, n: int, rng: np.random.Generator | None = None, *, cond=None, noise=None,
               cached: bool = True, return_logits: bool = False, progress: bool = False):
        """n images (n, 1, H, W) of 0/1, pixel by pixel: x_i = [u_i < σ(logit_i)], with u the
        given `noise` (uniforms of that shape) or drawn from rng. cached=False: one full pass per
        pixel (the oracle); cached=True: only what each new pixel changes. With return_logits,
        also the logit each pixel was drawn with, (n, 1, H, W); with progress, a progress bar
        row by row (on stderr)."""
        n = checks.integer(n, "n", "PixelCNN.sample")  # (NumPy would fail on 0 or -3 deep inside)
        shape = (n,) + self.image_shape
        if noise is None:
            if rng is None:
                raise ValueError("PixelCNN.sample: give rng (or the noise itself)")
            noise = rng.random(shape)
        noise = np.asarray(noise)
        if noise.shape != shape:
            raise ValueError(f"PixelCNN.sample: noise must have shape {shape}, got {noise.shape}")
        cond = self._check_cond(cond, n, self.image_shape[1:])
        logits = np.zeros(noise.shape, self.dtype)
        rows = Progress(shape[2], f"{n} samples, {'cached' if cached else 'naive'} sampler",
                        unit=lambda r: f"{r} rows", quiet=not progress)
        with no_grad():
            x = (self._sample_cached if cached else self._sample_naive)(noise, cond, logits, rows)
        rows.close()
        return (x, logits) if return_logits else x

    def _sample_naive(self, noise: np.ndarray, cond, logits: np.ndarray,
                      rows: Progress) -> np.ndarray:
        x = np.zeros(noise.shape, self.dtype)  # (n, 1, H, W)
        for r in range(x.shape[2]):
            for c in range(x.shape[3]):
                logit = self._logits(Tensor(x), cond).data[:, 0, r, c]  # (n,): the whole image, again
                x[:, 0, r, c] = noise[:, 0, r, c] < _sigmoid(logit)
                logits[:, 0, r, c] = logit
            rows.update(1)
        return x

    def _sample_cached(self, noise: np.ndarray, cond, logits: np.ndarray,
                       rows: Progress) -> np.ndarray:
        n, _, H, W = noise.shape
        gated = cast(list[GatedLayer], list(self.layers))  # what the Sequential holds
        caches = [_LayerCache(layer, cond, n, H, W) for layer in gated]
        x = caches[0].v_in  # the image itself, padded: layer 0 reads it through both stacks
        p = caches[0].p
        # what kernels.sample_row reads: each layer's horizontal input, mask, 1×1 convolution and
        # c^h(y), then the head's c^o(y) and its two 1×1 convolutions
        h_in = [cache.h_in for cache in caches]
        horizontal = [(cache.horizontal.w, cache.horizontal.b, cache.horizontal.taps)
                      for cache in caches]
        out = [_pointwise_weights(cast(nn.Conv2d, layer.out)) for layer in gated[1:]]
        C2 = self.head.hidden.out_channels
        cond_h = [cache.cond_h for cache in caches]
        cond_h.append(_cond_bias(self.head.cond, cond, n, C2, H, W, self.dtype))
        head = (*_pointwise_weights(self.head.hidden), *_pointwise_weights(self.head.logit))
        for r in range(H):
            for cache, after in zip(caches, caches[1:] + [None]):
                cache.vertical_row(r, after)  # row r − 1 of the vertical stack, now final
            links = [cache.link[:, :, r] for cache in caches]  # (n, 2C, W) each
            conds = [c[:, :, r] for c in cond_h]  # (n, 2C, W) each: c(y) along row r
            # the horizontal stacks and the head, pixel by pixel along row r, into x
            logits[:, 0, r] = kernels.sample_row(r, h_in, links, conds, horizontal, out, head,
                                                 noise[:, 0, r])
            rows.update(1)
        return x[:, :, p:p + H, p:p + W].copy()


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return F.sigmoid(Tensor(a)).data


def _gate(x: np.ndarray) -> np.ndarray:
    """tanh(a) ⊙ σ(b) for x = (a ‖ b) on axis 1: (n, 2C, ...) -> (n, C, ...), the op's kernel."""
    return kernels.gated_tanh(x)[0]


class _MaskedTaps:
    """A masked k×k convolution read at one row of an input padded by k//2 (or, through
    kernels.sample_row, at one pixel): y[n, o] = b[o] + Σ_(c, i, j) W[o, c, i, j] ·
    x_pad[n, c, r + i, col + j], (i, j) the mask's taps."""

    def __init__(self, conv: nn.MaskedConv2d):
        self.taps = np.argwhere(conv.mask != 0)  # (T, 2), raster order
        self.i, self.j = self.taps[:, 0], self.taps[:, 1]
        assert conv.bias is not None  # every convolution of the PixelCNN has a bias
        self.w = conv.weight.data[:, :, self.i, self.j].reshape(conv.out_channels, -1)  # (O, C·T)
        self.b = conv.bias.data

    def row(self, x_pad: np.ndarray, r: int, W: int) -> np.ndarray:
        """Output row r: (n, O, W)."""
        patches = np.stack([x_pad[:, :, r + i, j:j + W] for i, j in self.taps], 2)  # (n, C, T, W)
        return _rows_product(self.w, patches.reshape(len(x_pad), -1, W), self.b)


def _pointwise_weights(conv: nn.Conv2d) -> tuple[np.ndarray, np.ndarray]:
    """A 1×1 convolution's weight as a matrix and its bias: (C_out, C_in), (C_out,)."""
    assert conv.bias is not None  # every convolution of the PixelCNN has a bias
    return conv.weight.data[:, :, 0, 0], conv.bias.data


def _pointwise(conv: nn.Conv2d, x: np.ndarray) -> np.ndarray:
    """A 1×1 convolution along a row, (n, C_in, W) -> (n, C_out, W)."""
    w, b = _pointwise_weights(conv)
    return _rows_product(w, x, b)


def _rows_product(w: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """w @ x[n] + b for every n: (O, K), (n, K, W), (O,) -> (n, O, W), as one matrix product
    (`w @ x` would make n small ones)."""
    return np.tensordot(w, x, axes=(1, 1)).transpose(1, 0, 2) + b[:, None]  # (n, O, W)


def _cond_bias(cond_net: nn.Module | None, cond, n: int, C2: int, H: int, W: int,
               dtype) -> np.ndarray:
    """c(y) at every pixel, (n, 2C, H, W): from a vector y the same at every pixel (a view),
    zeros without conditioning."""
    c = np.zeros((n, C2), dtype) if cond_net is None else cond_net(cond).data
    return c if c.ndim == 4 else np.broadcast_to(c[:, :, None, None], (n, C2, H, W))


class _LayerCache:
    """One gated layer's inputs during sampling, as whole feature maps padded by the layer's k//2,
    filled in raster order: v_in (its vertical input) row by row, h_in (its horizontal input) pixel
    by pixel, and `link`, the shifted vertical features s_l, row by row."""

    def __init__(self, layer: GatedLayer, cond, n: int, H: int, W: int):
        self.layer, self.W = layer, W
        self.p = layer.vertical.kernel_size // 2
        self.vertical, self.horizontal = _MaskedTaps(layer.vertical), _MaskedTaps(layer.horizontal)
        C_in, dtype = layer.vertical.in_channels, layer.vertical.weight.dtype
        padded = (n, C_in, H + 2 * self.p, W + 2 * self.p)
        self.v_in = np.zeros(padded, dtype)
        self.h_in = self.v_in if layer.first else np.zeros(padded, dtype)  # layer 0: both are x
        C2 = layer.vertical.out_channels
        self.link = np.empty((n, C2, H, W), dtype)
        self.cond_v, self.cond_h = (_cond_bias(cond_net, cond, n, C2, H, W, dtype)
                                    for cond_net in (layer.cond_v, layer.cond_h))

    def vertical_row(self, r: int, after: "_LayerCache | None") -> None:
        """Before row r is sampled: the link into row r, from the vertical stack's row r − 1 (all
        pixels of rows < r are known now); and v_l's row r − 1 into the next layer's input."""
        # exercise cached-sampler: the vertical stack's row r - 1, once, into the caches
        if r == 0:  # shift_down put a row of zeros on top: the link sees only its bias
            zeros = np.zeros((len(self.v_in), self.link.shape[1], self.W), self.link.dtype)
            self.link[:, :, 0] = _pointwise(self.layer.link, zeros)
            return
        v_pre = self.vertical.row(self.v_in, r - 1, self.W)  # (n, 2C, W)
        self.link[:, :, r] = _pointwise(self.layer.link, v_pre)
        if after is not None:
            v_out = _gate(v_pre + self.cond_v[:, :, r - 1])  # (n, C, W)
            after.v_in[:, :, r - 1 + after.p, after.p:after.p + self.W] = v_out
        # end exercise
