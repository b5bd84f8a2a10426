"""The convolution kernels against the other ways to write them, and against PyTorch.

    python benchmarks/bench_conv_kernels.py [--batch 128] [--repeats 10] [--no-compile]

For each layer of the conv VAE and the PixelCNN decoder (28x28 images, float32) it times one
forward + input-backward + weight-backward, all in this one run, of:
  * conv.py: minivae/kernels/conv.py as it stands - Numba im2col of a chunk of samples (prange),
    then np.matmul on the stack, one OpenBLAS GEMM per sample on OpenBLAS's own threads;
  * numba-blas: one prange over the samples, each im2col'd into a cache-sized buffer and multiplied
    by single-threaded BLAS inside Numba, so only Numba's threads run (needs SciPy, whose BLAS
    np.dot calls inside @njit, and threadpoolctl to hold that BLAS to one thread; skipped without);
  * blas-batch: im2col of the whole batch into one (C_in*kH*kW, B*H_out*W_out) matrix (Numba,
    parallel), then one numpy `@` on OpenBLAS's own threads;
  * direct: plain loops over prange, no BLAS;
and PyTorch (its oneDNN kernels) on the same number of threads when torch is installed. It prints
ms (fastest of --repeats runs, the methods taking turns; the median beside it, since other
processes on a 2-core machine add noise that the minimum mostly filters - and a method whose
median runs away from its minimum is one that load from other processes hurts), GFLOP/s and the
ratio to torch, then the JIT compile time of conv.py cold (a fresh NUMBA_CACHE_DIR, in a
subprocess) and from the cache that run wrote.

Transposed convolutions run through each method's conv2d pieces exactly as conv.py composes them
(forward = input-backward, input-backward = forward, weight-backward with x and y_bar swapped);
masked layers multiply w by the mask before the forward and w_bar by it after.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

from minivae.kernels import conv  # noqa: E402

# (name, kind, C_in, C_out, k, stride, padding, input size, masked)
LAYERS = [
    ("Conv2d(1,32,4,2,1)", "conv", 1, 32, 4, 2, 1, 28, False),
    ("Conv2d(32,64,4,2,1)", "conv", 32, 64, 4, 2, 1, 14, False),
    ("ConvT2d(64,32,4,2,1)", "convT", 64, 32, 4, 2, 1, 7, False),
    ("ConvT2d(32,1,4,2,1)", "convT", 32, 1, 4, 2, 1, 14, False),
    ("masked 7x7 1->32 p3", "conv", 1, 32, 7, 1, 3, 28, True),
    ("masked 3x3 32->32 p1", "conv", 32, 32, 3, 1, 1, 28, True),
]


# ---------------------------------------------------------------- method: im2col of the whole batch + numpy @


@njit(parallel=True, cache=True)
def _im2col_batch(x, kH, kW, stride, padding, src, cols):
    """cols[(c, i, j), n*HW + (oh, ow)] = x_pad[n, c, oh*s + i, ow*s + j]: one matrix for the whole batch."""
    B = x.shape[0]
    HW = cols.shape[1] // B
    for n in prange(B):
        conv._im2col(x[n], kH, kW, stride, padding, src, cols[:, n * HW:(n + 1) * HW])


@njit(parallel=True, cache=True)
def _col2im_batch(cols, kH, kW, stride, padding, src, x_bar):
    B = x_bar.shape[0]
    HW = cols.shape[1] // B
    for n in prange(B):
        x_bar[n] = 0
        conv._col2im(cols[:, n * HW:(n + 1) * HW], kH, kW, stride, padding, src, x_bar[n])


def batch_forward(x, w, b, s, p):
    B, C_in, H, W = x.shape
    C_out, _, kH, kW = w.shape
    H_out, W_out = conv.conv_output_size(H, kH, s, p), conv.conv_output_size(W, kW, s, p)
    cols = np.empty((C_in * kH * kW, B * H_out * W_out), x.dtype)
    _im2col_batch(x, kH, kW, s, p, conv._source_index(H, W, kH, kW, s, p), cols)
    y = w.reshape(C_out, -1) @ cols  # (C_out, B*H_out*W_out)
    y = y.reshape(C_out, B, H_out, W_out).transpose(1, 0, 2, 3)  # NCHW needs this copy
    if b is not None:
        y = y + b[None, :, None, None]
    return np.ascontiguousarray(y)


def batch_backward_input(y_bar, w, x_shape, s, p):
    B, C_out, H_out, W_out = y_bar.shape
    kH, kW = w.shape[2:]
    y_mat = np.ascontiguousarray(y_bar.transpose(1, 0, 2, 3)).reshape(C_out, -1)  # (C_out, B*HW)
    cols = w.reshape(C_out, -1).T @ y_mat  # (C_in*kH*kW, B*HW)
    x_bar = np.empty(x_shape, y_bar.dtype)
    _col2im_batch(cols, kH, kW, s, p, conv._source_index(*x_shape[2:], kH, kW, s, p), x_bar)
    return x_bar


def batch_backward_weight(x, y_bar, w_shape, s, p):
    B, C_out, H_out, W_out = y_bar.shape
    _, C_in, kH, kW = w_shape
    cols = np.empty((C_in * kH * kW, B * H_out * W_out), x.dtype)
    _im2col_batch(x, kH, kW, s, p, conv._source_index(*x.shape[2:], kH, kW, s, p), cols)
    y_mat = np.ascontiguousarray(y_bar.transpose(1, 0, 2, 3)).reshape(C_out, -1)
    return (y_mat @ cols.T).reshape(w_shape), y_bar.sum(axis=(0, 2, 3))


# ---------------------------------------------------------------- method: direct loops over prange


@njit(parallel=True, cache=True)
def _direct_forward(x, w, bias, stride, padding, y):
    """y[n, o] = bias[o] + sum_{c, i, j} w[o, c, i, j] x_pad[n, c, oh*s + i, ow*s + j], one (n, o) plane per task."""
    B, C_in, H, W = x.shape
    C_out, _, kH, kW = w.shape
    H_out, W_out = y.shape[2], y.shape[3]
    for task in prange(B * C_out):
        n, o = task // C_out, task % C_out
        y[n, o] = bias[o]
        for c in range(C_in):
            for i in range(kH):
                for j in range(kW):
                    w_ocij = w[o, c, i, j]
                    for oh in range(H_out):
                        h = oh * stride - padding + i
                        if 0 <= h < H:
                            for ow in range(W_out):
                                ww = ow * stride - padding + j
                                if 0 <= ww < W:
                                    y[n, o, oh, ow] += w_ocij * x[n, c, h, ww]


@njit(parallel=True, cache=True)
def _direct_backward_input(y_bar, w, stride, padding, x_bar):
    """x_bar[n, c] gathers w[o, c, i, j] y_bar[n, o, oh, ow] from every window that read it;
    one (n, c) plane per task."""
    B, C_out, H_out, W_out = y_bar.shape
    _, C_in, kH, kW = w.shape
    H, W = x_bar.shape[2], x_bar.shape[3]
    for task in prange(B * C_in):
        n, c = task // C_in, task % C_in
        x_bar[n, c] = 0
        for o in range(C_out):
            for i in range(kH):
                for j in range(kW):
                    w_ocij = w[o, c, i, j]
                    for oh in range(H_out):
                        h = oh * stride - padding + i
                        if 0 <= h < H:
                            for ow in range(W_out):
                                ww = ow * stride - padding + j
                                if 0 <= ww < W:
                                    x_bar[n, c, h, ww] += w_ocij * y_bar[n, o, oh, ow]


@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})  # reassoc: let LLVM vectorise the sum
def _direct_backward_weight(x, y_bar, stride, padding, w_bar):
    """w_bar[o, c, i, j] = sum_{n, oh, ow} y_bar[n, o, oh, ow] x_pad[n, c, oh*s + i, ow*s + j];
    one (o, c) pair per task."""
    B, C_in, H, W = x.shape
    _, C_out, H_out, W_out = y_bar.shape
    kH, kW = w_bar.shape[2], w_bar.shape[3]
    for task in prange(C_out * C_in):
        o, c = task // C_in, task % C_in
        for i in range(kH):
            for j in range(kW):
                total = 0.0
                for n in range(B):
                    for oh in range(H_out):
                        h = oh * stride - padding + i
                        if 0 <= h < H:
                            for ow in range(W_out):
                                ww = ow * stride - padding + j
                                if 0 <= ww < W:
                                    total += y_bar[n, o, oh, ow] * x[n, c, h, ww]
                w_bar[o, c, i, j] = total


def direct_forward(x, w, b, s, p):
    B, _, H, W = x.shape
    C_out, _, kH, kW = w.shape
    y = np.empty((B, C_out, conv.conv_output_size(H, kH, s, p), conv.conv_output_size(W, kW, s, p)), x.dtype)
    _direct_forward(x, w, np.zeros(C_out, x.dtype) if b is None else b, s, p, y)
    return y


def direct_backward_input(y_bar, w, x_shape, s, p):
    x_bar = np.empty(x_shape, y_bar.dtype)
    _direct_backward_input(y_bar, np.ascontiguousarray(w), s, p, x_bar)
    return x_bar


def direct_backward_weight(x, y_bar, w_shape, s, p):
    w_bar = np.empty(w_shape, x.dtype)
    _direct_backward_weight(x, y_bar, s, p, w_bar)
    return w_bar, y_bar.sum(axis=(0, 2, 3))


# ---------------------------------------------------------------- method: BLAS inside Numba, one thread pool
# Each Numba thread owns samples t, t + T, ... and one column buffer, and calls BLAS itself through
# np.dot (SciPy's BLAS), held to one thread so the two pools never compete for the cores.

try:
    import scipy.linalg.cython_blas  # noqa: F401 - load SciPy's BLAS before threadpoolctl looks for it
    from threadpoolctl import ThreadpoolController
    _one_blas_thread = ThreadpoolController()
except ImportError:
    _one_blas_thread = None


@njit(parallel=True, cache=True)
def _nb_forward(x, w_mat, kH, kW, stride, padding, src, T, y):
    B, C_out, H_out, W_out = y.shape
    for t in prange(T):
        cols = np.empty((w_mat.shape[1], H_out * W_out), x.dtype)  # (K, HW), reused for every sample
        for n in range(t, B, T):
            conv._im2col(x[n], kH, kW, stride, padding, src, cols)
            np.dot(w_mat, cols, y[n].reshape(C_out, H_out * W_out))  # straight into sample n of y


@njit(parallel=True, cache=True)
def _nb_backward_input(y_bar, w_mat_t, kH, kW, stride, padding, src, T, x_bar):
    B, C_out, H_out, W_out = y_bar.shape
    for t in prange(T):
        cols = np.empty((w_mat_t.shape[0], H_out * W_out), y_bar.dtype)
        for n in range(t, B, T):
            np.dot(w_mat_t, y_bar[n].reshape(C_out, H_out * W_out), cols)
            x_bar[n] = 0
            conv._col2im(cols, kH, kW, stride, padding, src, x_bar[n])


@njit(parallel=True, cache=True)
def _nb_backward_weight(x, y_bar, kH, kW, stride, padding, src, w_bar_t):
    B, C_out, H_out, W_out = y_bar.shape
    T = w_bar_t.shape[0]
    for t in prange(T):
        cols = np.empty((w_bar_t.shape[1], H_out * W_out), x.dtype)
        prod = np.empty((w_bar_t.shape[1], C_out), x.dtype)
        w_bar_t[t] = 0
        for n in range(t, B, T):
            conv._im2col(x[n], kH, kW, stride, padding, src, cols)
            np.dot(cols, y_bar[n].reshape(C_out, H_out * W_out).T, prod)  # (K, C_out): faster than y_bar @ cols.T
            w_bar_t[t] += prod


def _threads(B):
    return max(1, min(B, numba.get_num_threads()))


def nb_forward(x, w, b, s, p):
    B, _, H, W = x.shape
    C_out, _, kH, kW = w.shape
    y = np.empty((B, C_out, conv.conv_output_size(H, kH, s, p), conv.conv_output_size(W, kW, s, p)), x.dtype)
    with _one_blas_thread.limit(limits=1, user_api="blas"):
        _nb_forward(x, w.reshape(C_out, -1), kH, kW, s, p, conv._source_index(H, W, kH, kW, s, p), _threads(B), y)
    return y if b is None else y + b[None, :, None, None]


def nb_backward_input(y_bar, w, x_shape, s, p):
    C_out, _, kH, kW = w.shape
    x_bar = np.empty(x_shape, y_bar.dtype)
    w_mat_t = np.ascontiguousarray(w.reshape(C_out, -1).T)
    with _one_blas_thread.limit(limits=1, user_api="blas"):
        _nb_backward_input(y_bar, w_mat_t, kH, kW, s, p, conv._source_index(*x_shape[2:], kH, kW, s, p),
                           _threads(y_bar.shape[0]), x_bar)
    return x_bar


def nb_backward_weight(x, y_bar, w_shape, s, p):
    C_out, C_in, kH, kW = w_shape
    w_bar_t = np.empty((_threads(x.shape[0]), C_in * kH * kW, C_out), x.dtype)  # one partial sum per thread
    with _one_blas_thread.limit(limits=1, user_api="blas"):
        _nb_backward_weight(x, y_bar, kH, kW, s, p, conv._source_index(*x.shape[2:], kH, kW, s, p), w_bar_t)
    return np.ascontiguousarray(w_bar_t.sum(axis=0).T).reshape(w_shape), y_bar.sum(axis=(0, 2, 3))


def transposed(forward, backward_input, backward_weight):
    """A transposed convolution from a method's three conv2d pieces, composed as conv.py composes them."""
    def t_forward(x, w, b, s, p, output_padding):
        H_out = conv.conv_transpose_output_size(x.shape[2], w.shape[2], s, p, output_padding)
        W_out = conv.conv_transpose_output_size(x.shape[3], w.shape[3], s, p, output_padding)
        y = backward_input(x, w, (x.shape[0], w.shape[1], H_out, W_out), s, p)
        return y if b is None else y + b[None, :, None, None]

    def t_backward_input(y_bar, w, x_shape, s, p):
        return forward(y_bar, w, None, s, p)

    def t_backward_weight(x, y_bar, w_shape, s, p):
        return backward_weight(y_bar, x, w_shape, s, p)[0], y_bar.sum(axis=(0, 2, 3))
    return t_forward, t_backward_input, t_backward_weight


NUMBA_BLAS = (nb_forward, nb_backward_input, nb_backward_weight)
BATCH = (batch_forward, batch_backward_input, batch_backward_weight)
DIRECT = (direct_forward, direct_backward_input, direct_backward_weight)
METHODS = {  # name: (conv2d forward, input-backward, weight-backward), (the same three for ConvTranspose2d)
    "conv.py": ((conv.conv2d_forward, conv.conv2d_backward_input, conv.conv2d_backward_weight),
                (conv.conv_transpose2d_forward, conv.conv_transpose2d_backward_input,
                 conv.conv_transpose2d_backward_weight)),
    "numba-blas": (NUMBA_BLAS, transposed(*NUMBA_BLAS)),
    "blas-batch": (BATCH, transposed(*BATCH)),
    "direct": (DIRECT, transposed(*DIRECT)),
}
if _one_blas_thread is None:
    del METHODS["numba-blas"]


# ---------------------------------------------------------------- one layer, one method


def layer_step(method, kind, x, w, b, s, p, mask):
    """A closure doing forward + input-backward + weight-backward of one layer with one method."""
    plain, transposed_ = METHODS[method]
    forward, backward_input, backward_weight = plain if kind == "conv" else transposed_
    extra = () if kind == "conv" else (0,)  # output_padding
    y_shape = forward(x, w, b, s, p, *extra).shape
    y_bar = np.random.default_rng(1).standard_normal(y_shape).astype(x.dtype)

    def step():
        w_used = w * mask if mask is not None else w
        forward(x, w_used, b, s, p, *extra)
        backward_input(y_bar, w_used, x.shape, s, p)
        w_bar, b_bar = backward_weight(x, y_bar, w.shape, s, p)
        return w_bar * mask if mask is not None else w_bar
    return step


def torch_step(kind, x, w, b, s, p, mask):
    import torch

    xt = torch.from_numpy(x).requires_grad_(True)
    wt = torch.from_numpy(w.copy()).requires_grad_(True)
    bt = torch.from_numpy(b.copy()).requires_grad_(True)
    mt = torch.from_numpy(mask) if mask is not None else None
    op = torch.nn.functional.conv2d if kind == "conv" else torch.nn.functional.conv_transpose2d
    with torch.no_grad():
        y_bar = torch.randn(op(xt, wt, bt, s, p).shape, dtype=xt.dtype)

    def step():
        xt.grad = wt.grad = bt.grad = None
        y = op(xt, wt * mt if mt is not None else wt, bt, s, p)
        y.backward(y_bar)
    return step


def flops(kind, B, C_in, C_out, k, s, p, H):
    """Multiply-adds x 2 for the forward, times 3 for the two backward products of the same size."""
    if kind == "conv":
        H_out = conv.conv_output_size(H, k, s, p)
        return 3 * 2 * B * C_out * C_in * k * k * H_out * H_out
    return 3 * 2 * B * C_in * C_out * k * k * H * H  # every input pixel meets every kernel tap


def time_round_robin(steps, repeats):
    """{name: (fastest ms, median ms)}. The steps take turns, so a burst of load from other processes
    hits them all alike; a short pause before each call lets the previous one's spinning BLAS/OpenMP
    workers go idle, so no step pays for its predecessor's threads."""
    for step in steps.values():
        step(); step()  # warm up: JIT compile, allocator, thread pools
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            time.sleep(0.02)
            start = time.perf_counter()
            step()
            times[name].append(1e3 * (time.perf_counter() - start))
    return {name: (min(t), float(np.median(t))) for name, t in times.items()}


# ---------------------------------------------------------------- compile time


COMPILE_PROBE = """
import time, numpy as np
t0 = time.perf_counter()
from minivae.kernels import conv
t1 = time.perf_counter()
x = np.ones((2, 3, 8, 8), np.float32); w = np.ones((4, 3, 3, 3), np.float32); wt = np.ones((3, 4, 3, 3), np.float32)
y = conv.conv2d_forward(x, w, None, 1, 1)
conv.conv2d_backward_input(y, w, x.shape, 1, 1); conv.conv2d_backward_weight(x, y, w.shape, 1, 1)
yt = conv.conv_transpose2d_forward(x, wt, None, 2, 1, 1)
conv.conv_transpose2d_backward_input(yt, wt, x.shape, 2, 1)
conv.conv_transpose2d_backward_weight(x, yt, wt.shape, 2, 1)
t2 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t1:.2f}")
"""


def compile_times():
    """(import s, first calls s) of conv.py in float32, cold and from the cache the cold run wrote."""
    root = str(Path(__file__).resolve().parents[1])
    results = []
    with tempfile.TemporaryDirectory() as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=root)
        for _ in ("cold", "cached"):
            out = subprocess.run([sys.executable, "-c", COMPILE_PROBE], env=env, capture_output=True,
                                 text=True, check=True)
            results.append(tuple(float(v) for v in out.stdout.split()))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time measurement")
    args = parser.parse_args()
    methods = args.methods.split(",")

    try:
        import torch
        torch.set_num_threads(numba.get_num_threads())
    except ImportError:
        torch = None
    versus = f"torch {torch.__version__} on {torch.get_num_threads()} threads" if torch else "no torch"
    print(f"batch {args.batch}, float32, {numba.get_num_threads()} Numba threads, {versus}; ms = fastest of "
          f"{args.repeats} runs (median) of forward + input-backward + weight-backward\n")
    header = f"{'layer':<22}" + "".join(f"{m:>28}" for m in methods) + (f"{'torch':>20}" if torch else "")
    print(header)
    units = " " * 22 + "".join(f"{'ms (median) GFLOP/s xtorch':>28}" for _ in methods)
    print(units + (f"{'ms (median) GFLOP/s':>20}" if torch else ""))

    rng = np.random.default_rng(0)
    for name, kind, C_in, C_out, k, s, p, H, masked in LAYERS:
        x = rng.standard_normal((args.batch, C_in, H, H)).astype(np.float32)
        w_shape = (C_out, C_in, k, k) if kind == "conv" else (C_in, C_out, k, k)
        w = (rng.standard_normal(w_shape) / np.sqrt(C_in * k * k)).astype(np.float32)
        b = rng.standard_normal(C_out).astype(np.float32)
        mask = conv.pixelcnn_mask(C_out, C_in, k, "B") if masked else None
        gflop = flops(kind, args.batch, C_in, C_out, k, s, p, H) / 1e9

        steps = {method: layer_step(method, kind, x, w, b, s, p, mask) for method in methods}
        if torch:
            steps["torch"] = torch_step(kind, x, w, b, s, p, mask)
        ms = time_round_robin(steps, args.repeats)
        cells = []
        for method in methods:
            ratio = f"{ms[method][0] / ms['torch'][0]:5.2f}x" if torch else ""
            cells.append(f"{ms[method][0]:7.1f} ({ms[method][1]:6.1f}) {gflop / ms[method][0] * 1e3:5.0f} {ratio}")
        line = f"{name:<22}" + "".join(f"{c:>28}" for c in cells)
        if torch:
            line += f"{ms['torch'][0]:7.1f} ({ms['torch'][1]:6.1f}) {gflop / ms['torch'][0] * 1e3:5.0f}"
        print(line, flush=True)

    if not args.no_compile:
        (cold_import, cold_calls), (warm_import, warm_calls) = compile_times()
        print(f"\nJIT compile of conv.py, float32, all six kernels: cold {cold_calls:.1f} s "
              f"(+ import {cold_import:.1f} s), from cache {warm_calls:.2f} s (+ import {warm_import:.1f} s)")


if __name__ == "__main__":
    main()
