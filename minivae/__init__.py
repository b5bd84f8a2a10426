"""minivae: PCA, autoencoders, VAEs, AAEs and the PixelVAE (a VAE with a gated PixelCNN decoder and
learned priors) from scratch on a NumPy autodiff engine.

Floors, bottom up: kernels/ (two doors: plain NumPy, or Numba and threads) -> tensor.py (the
engine) -> functional.py (ops) -> nn.py, optim.py (layers, optimisers). See README.md for a tour.
"""
from minivae import data, distributions, functional, nn, optim
from minivae.checkpoint import load, save
from minivae.gradcheck import GradcheckError, gradcheck
from minivae.kernels import get_backend, get_num_threads, set_backend, set_num_threads
from minivae.runs import load_pretrained, load_run
from minivae.tensor import Function, Tensor, as_tensor, is_grad_enabled, no_grad, unbroadcast

__all__ = ["data", "distributions", "functional", "nn", "optim", "load", "save", "GradcheckError",
           "gradcheck", "get_backend", "get_num_threads", "set_backend", "set_num_threads",
           "load_pretrained", "load_run", "Function",
           "Tensor", "as_tensor", "is_grad_enabled", "no_grad", "unbroadcast"]
__version__ = "0.1.0"
