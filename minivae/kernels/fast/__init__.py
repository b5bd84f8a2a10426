"""The fast door: the kernels' interface (kernels/__init__.py) on Numba loops, BLAS and worker
threads.

Each function below computes what its namesake in kernels/numpy/ computes, and says so in the
same equation; tests/test_doors.py proves the two equal. What only this door needs lives in it:

    dense.py, conv.py, im2col.py, logistic.py, gate.py, optim.py, pixelcnn.py   the Numba kernels
    threads.py   the worker threads (started on first use) and OpenBLAS held to one thread
    fpenv.py     subnormal floats flushed to zero, set inside each call below and put back after
    memory.py    freed buffers kept for the next step (glibc's mallopt), set when this door opens

Activations cross the interface by name ('relu', ...); dense.ACTIVATIONS gives the kernels' codes.
"""
import numpy as np

from minivae.kernels.fast import conv, dense, gate, logistic, optim, pixelcnn, threads
from minivae.kernels.fast.fpenv import flush_subnormals
from minivae.kernels.fast.memory import keep_freed_memory

keep_freed_memory()  # the steps' arrays reuse the last step's pages (memory.py)

set_num_threads, get_num_threads = threads.set_num_threads, threads.get_num_threads
matmul = flush_subnormals(threads.matmul)  # a @ b, blocks of rows shared out among the workers
sigmoid = flush_subnormals(logistic.sigmoid)
bce_with_logits = flush_subnormals(logistic.bce_with_logits)
gated_tanh = flush_subnormals(gate.gated_tanh)
gated_tanh_backward = flush_subnormals(gate.gated_tanh_backward)
adam_update = flush_subnormals(optim.adam_step)  # one pass per parameter, on the workers
sample_row = flush_subnormals(pixelcnn.sample_row)  # a row of the cached sampler, compiled


@flush_subnormals
def linear(x, w, b, activation="identity", slope=0.01):
    """y = act(x @ wᵀ + b): the product on BLAS, bias and activation in one Numba pass over y."""
    y = threads.matmul(x, w.T)  # (B, out)
    dense.bias_act_forward(y, b, dense.ACTIVATIONS[activation], slope)  # in place
    return y


@flush_subnormals
def linear_backward(y_bar, x, w, y, activation="identity", slope=0.01, need_x_bar=True,
                    need_w_bar=True):
    """a_bar = y_bar · act'(a) and b_bar = Σ_rows a_bar in one pass;  x_bar = a_bar @ w;
    w_bar = a_barᵀ @ x."""
    code = dense.ACTIVATIONS[activation]
    a_bar, b_bar = dense.bias_act_backward(y, np.ascontiguousarray(y_bar), code, slope)
    x_bar = threads.matmul(a_bar, w) if need_x_bar else None
    w_bar = threads.matmul(a_bar.T, x) if need_w_bar else None
    return x_bar, w_bar, b_bar


def _act_backward(y, y_bar, activation, slope):
    y = np.require(y, requirements="C")  # 0-d stays 0-d, as np.ascontiguousarray would not
    return dense.act_backward(y, np.require(y_bar, y.dtype, "C"), dense.ACTIVATIONS[activation],
                              slope)


act_backward = flush_subnormals(_act_backward)  # y_bar · act'(a) from y, one pass


@flush_subnormals
def conv2d(x, w, b, stride, padding, mask=None, activation="identity", slope=0.01):
    """y = act(x ⋆ (w·mask) + b), im2col around BLAS on the unmasked taps only (conv.py)."""
    return conv.conv2d_forward(x, w, b, stride, padding, mask, dense.ACTIVATIONS[activation], slope)


@flush_subnormals
def conv2d_backward(y_bar, x, w, y, stride, padding, mask=None, activation="identity", slope=0.01,
                    need_x_bar=True):
    """(x_bar, w_bar, b_bar) of conv2d, a_bar = y_bar · act'(a) riding on the copies."""
    return conv.conv2d_backward(y_bar, x, w, stride, padding, mask, need_x_bar=need_x_bar, y=y,
                                activation=dense.ACTIVATIONS[activation], slope=slope)


@flush_subnormals
def conv_transpose2d(x, w, b, stride, padding, output_padding=0, activation="identity",
                     slope=0.01):
    """y = act(conv_transpose2d(x, w) + b), conv2d's input-backward with the bias and activation on
    its last copy."""
    return conv.conv_transpose2d_forward(x, w, b, stride, padding, output_padding,
                                         dense.ACTIVATIONS[activation], slope)


@flush_subnormals
def conv_transpose2d_backward(y_bar, x, w, y, stride, padding, activation="identity", slope=0.01,
                              need_x_bar=True):
    """(x_bar, w_bar, b_bar) of conv_transpose2d: a_bar = y_bar · act'(a), then one im2col pass
    over a_bar serves both products (x_bar costs only its product, so it is always made)."""
    if activation != "identity":
        y_bar = _act_backward(y, y_bar, activation, slope)
    x_bar, w_bar, b_bar = conv.conv_transpose2d_backward(y_bar, x, w, stride, padding)
    return x_bar if need_x_bar else None, w_bar, b_bar
