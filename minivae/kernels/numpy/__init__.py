"""The numpy door: the kernels' interface (kernels/__init__.py) in plain NumPy, each function the
lines of its equation - short, obviously correct, and slower than the fast door. No Numba and no
thread but the caller's, so pdb steps through every line (MINIVAE_BACKEND=numpy, README).

    dense.py   matmul, linear (+ backward), act_backward, sigmoid, bce_with_logits, the gate
    conv.py    conv2d and conv_transpose2d (+ backward), im2col as a loop over the kernel offsets
    pixelcnn.py  sample_row, a row of the PixelCNN's cached sampler

Adam has no kernel here: adam_update is None, and optim.Adam's own lines are this door's update.
"""
from minivae.kernels.numpy.conv import (conv2d, conv2d_backward, conv_transpose2d,
                                        conv_transpose2d_backward)
from minivae.kernels.numpy.dense import (act_backward, bce_with_logits, gated_tanh,
                                         gated_tanh_backward, linear, linear_backward, matmul,
                                         sigmoid)
from minivae.kernels.numpy.pixelcnn import sample_row

__all__ = ["act_backward", "adam_update", "bce_with_logits", "conv2d", "conv2d_backward",
           "conv_transpose2d", "conv_transpose2d_backward", "gated_tanh", "gated_tanh_backward",
           "get_num_threads", "linear", "linear_backward", "matmul", "sample_row", "set_num_threads", "sigmoid"]

adam_update = None  # optim.Adam.step's equations are the update


def set_num_threads(n: int) -> None:
    """Nothing to share out: this door computes in the calling thread."""


def get_num_threads() -> int:
    return 1
