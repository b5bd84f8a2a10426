"""Layers: Module, Parameter, Linear, Conv2d, ConvTranspose2d, MaskedConv2d (and the PixelCNN
masks it uses), Sequential, activations; `frozen`, a block in which a module's parameters are
constants.

PyTorch-shaped, so models can be checked side by side against a PyTorch twin: `Linear.weight` is
(out, in) and y = x @ Wᵀ + b; parameter names and `state_dict()` keys read `encoder.0.weight`.
A Module finds its parameters and children by walking its attributes in the order they were set:
no registration hooks, nothing hidden. The layers' inputs are checked by the ops they call
(functional.py), once.

Linear, Conv2d and ConvTranspose2d take an `activation` ('relu', 'leaky_relu' with `slope`,
'sigmoid', 'tanh'), applied in the layer's own op: y = act(x @ Wᵀ + b) costs no pass of its own in
the fast door. It is a choice the network's builder makes and the layer's repr shows
(models/networks.py fuses every Linear or convolution that a ReLU follows); a ReLU module is a
layer of its own and always runs its own forward.
"""
from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from typing import Iterator

import numpy as np

from minivae import checks
from minivae import functional as F
from minivae.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimiser updates."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)


class Module:
    training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------- walking the tree
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator["Module"]:
        return (child for _, child in self.named_children())

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    # ---------------------------------------------------------------- modes and gradients
    def train(self, mode: bool = True) -> "Module":
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # ---------------------------------------------------------------- state
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays into the parameters. Every name and shape is checked before anything is
        written, so a bad state leaves the module as it was."""
        params = dict(self.named_parameters())
        missing = [name for name in params if name not in state]
        unexpected = [name for name in state if name not in params]
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name, p in params.items():
            if np.shape(state[name]) != p.shape:
                raise ValueError(f"load_state_dict: {name!r} has shape {np.shape(state[name])}, "
                                 f"the module expects {p.shape}")
        for name, p in params.items():
            p.data = np.array(state[name], dtype=p.dtype)

    # ---------------------------------------------------------------- printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = [f"  ({name}): " + repr(child).replace("\n", "\n  ")
                    for name, child in self.named_children()]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n" + "\n".join(children) + "\n)"


def _uniform(rng: np.random.Generator, bound: float, shape: tuple, dtype) -> Parameter:
    checks.dtype(dtype, "dtype", "a layer")  # float16 and the rest have no kernels
    return Parameter(rng.uniform(-bound, bound, size=shape).astype(dtype))


def _activation(activation: str, slope: float) -> tuple[str, float]:
    """A layer's activation and slope, checked when it is built (F.ACTIVATIONS)."""
    F._check_activation(activation, "a layer's activation")
    return activation, slope


def _activation_repr(layer) -> str:
    if layer.activation == "identity":
        return ""
    slope = f", slope={layer.slope}" if layer.activation == "leaky_relu" else ""
    return f", activation={layer.activation!r}{slope}"


class Linear(Module):
    """y = act(x @ Wᵀ + b), act the identity unless `activation` names one.  PyTorch's default
    initialisation: W and b ~ U(−1/√in, 1/√in) (kaiming_uniform with a = √5 works out to that
    bound)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 activation: str = "identity", slope: float = 0.01):
        rng = checks.generator(rng, "Linear")
        self.in_features, self.out_features = in_features, out_features
        self.activation, self.slope = _activation(activation, slope)
        bound = 1 / math.sqrt(in_features)
        self.weight = _uniform(rng, bound, (out_features, in_features), dtype)
        self.bias = _uniform(rng, bound, (out_features,), dtype) if bias else None

    def forward(self, x) -> Tensor:
        return F.linear(x, self.weight, self.bias, self.activation, self.slope)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}" + _activation_repr(self))


class Conv2d(Module):
    """y = act(x ⋆ W + b) with W (C_out, C_in, k, k); H_out = (H + 2·padding − k) // stride + 1.
    PyTorch's default initialisation: W and b ~ U(−1/√fan_in, 1/√fan_in), fan_in = C_in·k²."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, rng: np.random.Generator | None = None,
                 dtype=np.float32, activation: str = "identity", slope: float = 0.01):
        rng = checks.generator(rng, "Conv2d")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.activation, self.slope = _activation(activation, slope)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        bound = 1 / math.sqrt(in_channels * kernel_size**2)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = _uniform(rng, bound, shape, dtype)
        self.bias = _uniform(rng, bound, (out_channels,), dtype) if bias else None

    def forward(self, x) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding,
                        activation=self.activation, slope=self.slope)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
                + _activation_repr(self))


class ConvTranspose2d(Module):
    """The adjoint of Conv2d, W (C_in, C_out, k, k), then + b and act;
    H_out = (H − 1)·stride − 2·padding + k + output_padding.  PyTorch's initialisation, whose
    fan_in for this layer counts W's second axis: fan_in = C_out·k²."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, output_padding: int = 0, bias: bool = True,
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 activation: str = "identity", slope: float = 0.01):
        rng = checks.generator(rng, "ConvTranspose2d")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.activation, self.slope = _activation(activation, slope)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.output_padding = output_padding
        bound = 1 / math.sqrt(out_channels * kernel_size**2)
        shape = (in_channels, out_channels, kernel_size, kernel_size)
        self.weight = _uniform(rng, bound, shape, dtype)
        self.bias = _uniform(rng, bound, (out_channels,), dtype) if bias else None

    def forward(self, x) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, activation=self.activation, slope=self.slope)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, "
                f"output_padding={self.output_padding}, bias={self.bias is not None}"
                + _activation_repr(self))


def pixelcnn_mask(k: int, mask_type: str, dtype=np.float32) -> np.ndarray:
    """(k, k) mask of the kernel taps a PixelCNN convolution may use, for one channel group (the
    same mask serves every (output, input) channel pair: no R/G/B ordering as in the paper's
    colour model). Output pixel (r, c) then reads input pixel (r + i - k//2, c + j - k//2) only
    where mask[i, j] = 1.

    Raster masks (van den Oord et al., "Pixel Recurrent Neural Networks", 2016):
      'A'  rows above, and the pixels left of the centre in its own row (a first layer);
      'B'  the same and the centre itself (later layers).
    Stacked raster masks leave a blind spot above and to the right; the gated PixelCNN
    (van den Oord et al., "Conditional Image Generation with PixelCNN Decoders", 2016) splits them:
      'V'   the vertical stack: the rows above and the centre row, every column (its output at row
            r is used for row r + 1 only, after a shift down one row);
      'HA'  the horizontal stack's first layer: the centre row, left of the centre;
      'HB'  its later layers: the centre row, left of the centre and the centre."""
    if mask_type not in ("A", "B", "V", "HA", "HB"):
        raise ValueError(f"mask_type must be 'A', 'B', 'V', 'HA' or 'HB', got {mask_type!r}")
    if k < 1 or k % 2 == 0:
        raise ValueError(f"a PixelCNN mask needs an odd kernel size to have a centre, got {k}")
    centre = k // 2
    # exercise pixelcnn-masks: the taps each mask keeps
    mask = np.zeros((k, k), dtype)
    if mask_type == "V":
        mask[:centre + 1, :] = 1
        return mask
    if mask_type in ("A", "B"):
        mask[:centre, :] = 1  # every row above
    mask[centre, :centre + mask_type.endswith("B")] = 1  # left of the centre, and the centre for B
    return mask
    # end exercise


class MaskedConv2d(Conv2d):
    """PixelCNN's masked convolution (van den Oord et al., 2016): a fixed (k, k) mask hides the
    pixels at and after the centre in raster order, so output pixel i sees only input pixels
    before i. Type 'A' (first layer) also hides the centre; type 'B' keeps it. The gated
    PixelCNN's stacks use 'V', 'HA' and 'HB' (see `pixelcnn_mask`). The convolution runs on the
    unmasked taps only (F.conv2d's mask), so the hidden weights get zero gradient; they are
    zeroed at initialisation, so `weight` alone is the layer's whole kernel."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 mask_type: str = "B", padding: int | None = None, bias: bool = True,
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 activation: str = "identity", slope: float = 0.01):
        mask = pixelcnn_mask(kernel_size, mask_type, dtype)  # (k, k), a constant; checks k and type
        padding = kernel_size // 2 if padding is None else padding
        super().__init__(in_channels, out_channels, kernel_size, 1, padding, bias, rng, dtype,
                         activation, slope)
        self.mask_type, self.mask = mask_type, mask
        self.weight.data *= self.mask

    def forward(self, x) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, mask=self.mask,
                        activation=self.activation, slope=self.slope)

    def extra_repr(self) -> str:
        return f"mask_type={self.mask_type!r}, " + super().extra_repr()


class Sequential(Module):
    """Layers applied in order, each to the output of the one before, named by their place as in
    PyTorch: '0', '1', ... A layer with an activation takes two places, for it is two modules in
    PyTorch (Linear, then ReLU): Sequential(Flatten(), Linear(784, 400, activation='relu'),
    Linear(400, 40)) names them '0', '1' and '3', and its keys read '1.weight', '3.weight' in
    both."""

    def __init__(self, *layers: Module):
        place = 0
        for layer in layers:
            setattr(self, str(place), layer)
            place += 1 if getattr(layer, "activation", "identity") == "identity" else 2

    def __len__(self) -> int:
        return sum(1 for _ in self.children())

    def __getitem__(self, i: int) -> Module:
        """The layer at place i, as the printout and the keys name it ('encoder.5.weight' is
        encoder[5]); a negative i counts layers from the end."""
        if i < 0:
            return list(self.children())[i]
        layer = vars(self).get(str(i))
        if not isinstance(layer, Module):
            places = ", ".join(name for name, _ in self.named_children())
            raise IndexError(f"Sequential has no layer at place {i}; its places are {places} (a "
                             f"layer with an activation takes two)")
        return layer

    def __iter__(self) -> Iterator[Module]:
        return self.children()

    def forward(self, x) -> Tensor:
        for layer in self.children():
            x = layer(x)
        return x


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01):
        self.slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.slope}"


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Flatten(Module):
    """(B, d1, d2, ...) -> (B, d1·d2·...) for start_dim=1."""

    def __init__(self, start_dim: int = 1):
        self.start_dim = start_dim

    def forward(self, x):
        return F.reshape(x, x.shape[:self.start_dim] + (-1,))


class Unflatten(Module):
    """Split one axis into `sizes`: Unflatten(1, (64, 7, 7)) maps (B, 3136) -> (B, 64, 7, 7)."""

    def __init__(self, dim: int, sizes: tuple):
        self.dim, self.sizes = dim, tuple(sizes)

    def forward(self, x):
        dim = self.dim % x.ndim
        return F.reshape(x, x.shape[:dim] + self.sizes + x.shape[dim + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, sizes={self.sizes}"


@contextlib.contextmanager
def frozen(module: Module):
    """Inside this block, `module`'s parameters are constants: ops record no edge to them, so a
    backward pass run inside the block computes no gradient for them (and stores none)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad = False
    try:
        yield
    finally:
        for p in params:
            p.requires_grad = True
