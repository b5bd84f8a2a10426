"""The convolution kernels against PyTorch, and against the other ways to write them.

    python benchmarks/bench_conv_kernels.py [--batch 128] [--repeats 10] [--rounds 3] [--no-compile]
                                            [--methods conv.py,openblas-threads,numba-threads,direct]

For each layer of the conv VAE and the PixelCNN decoder (28x28 images, float32) it times one
forward + input-backward + weight-backward of:
  * conv.py: minivae/kernels/conv.py as it stands - minivae's workers each take whole chunks of
    the batch: im2col (Numba) and the chunk's product (NumPy's BLAS on that worker's thread);
  * openblas-threads: the same kernels with one worker, each chunk's product on OpenBLAS's own
    threads and the copies in the calling thread - the method conv.py used before;
  * numba-threads: openblas-threads with im2col and col2im spread over Numba's threads (prange),
    to show what a second thread pool beside OpenBLAS's costs;
  * direct: plain loops over prange, no BLAS;
and PyTorch (its oneDNN kernels) on the same number of threads, when torch is installed.
Masked layers: the minivae methods pass the mask (only its taps are computed); direct and PyTorch
multiply w by it, as a PixelCNN in PyTorch does. GFLOP/s counts the dense layer's work for every
method, so it compares speed, not arithmetic.

Each method, and PyTorch, runs in fresh Python processes of its own, one after another in this
one run, and the ratio to PyTorch is taken between those figures. Sharing a process is not fair:
after one library's products, OpenBLAS's idle threads keep spinning on the cores and the next
library's layers ran up to 2x slower beside them. The methods take turns for --rounds rounds,
because this 2-core virtual machine has slow spells of several seconds (the same GEMM 2.5x
slower) that would hit a single process. ms = the fastest call over all rounds, the median of
all calls beside it. The last line is the JIT compile time of conv.py, cold (a fresh
NUMBA_CACHE_DIR) and from the cache that run wrote.
"""
import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

from minivae.kernels import conv, threads  # noqa: E402

# (name, kind, C_in, C_out, k, stride, padding, input size, mask type)
LAYERS = [
    ("Conv2d(1,32,4,2,1)", "conv", 1, 32, 4, 2, 1, 28, None),
    ("Conv2d(32,64,4,2,1)", "conv", 32, 64, 4, 2, 1, 14, None),
    ("ConvT2d(64,32,4,2,1)", "convT", 64, 32, 4, 2, 1, 7, None),
    ("ConvT2d(32,1,4,2,1)", "convT", 32, 1, 4, 2, 1, 14, None),
    ("masked A 7x7 1->32", "conv", 1, 32, 7, 1, 3, 28, "A"),
    ("masked B 3x3 32->32", "conv", 32, 32, 3, 1, 1, 28, "B"),
]
METHODS = ("conv.py", "openblas-threads", "numba-threads", "direct")


# ---------------------------------------------------------------- method: conv.py with threaded copies


@njit(parallel=True, cache=True)
def _im2col_threads(x_ph, taps, H_out, cols):
    """conv.im2col with its channel loop spread over Numba's threads (each writes its own rows)."""
    m, C, s, _, Hq1, Wq = x_ph.shape
    x_flat, cols_flat = x_ph.reshape(-1), cols.reshape(-1)
    N, run, T = cols.shape[1], H_out * Wq, taps.shape[0]
    for c in prange(C):
        for t in range(T):
            i, j = taps[t, 0], taps[t, 1]
            for n in range(m):
                frm = (((n * C + c) * s + i % s) * s + j % s) * Hq1 * Wq + (i // s) * Wq + j // s
                for q in range(run):
                    cols_flat[np.uintp((c * T + t) * N + n * run + q)] = x_flat[np.uintp(frm + q)]


@njit(parallel=True, cache=True)
def _col2im_threads(cols, taps, H_out, x_ph_bar):
    """conv.col2im with its sample loop spread over Numba's threads (each adds into its own samples)."""
    m, C, s, _, Hq1, Wq = x_ph_bar.shape
    x_flat, cols_flat = x_ph_bar.reshape(-1), cols.reshape(-1)
    N, run, T = cols.shape[1], H_out * Wq, taps.shape[0]
    for n in prange(m):
        x_ph_bar[n] = 0
        for c in range(C):
            for t in range(T):
                i, j = taps[t, 0], taps[t, 1]
                to = (((n * C + c) * s + i % s) * s + j % s) * Hq1 * Wq + (i // s) * Wq + j // s
                for q in range(run):
                    x_flat[np.uintp(to + q)] += cols_flat[np.uintp((c * T + t) * N + n * run + q)]


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
    """x_bar[n, c] gathers w[o, c, i, j] y_bar[n, o, oh, ow] from every window that read it; one (n, c) plane per task."""
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
    """w_bar[o, c, i, j] = sum_{n, oh, ow} y_bar[n, o, oh, ow] x_pad[n, c, oh*s + i, ow*s + j]; one (o, c) pair per task."""
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
    return w_bar


# ---------------------------------------------------------------- one layer, one method


def layer_step(method, kind, x, w, b, s, p, mask, y_bar):
    """A closure doing forward + input-backward + weight-backward of one layer with one method,
    as minivae's Conv2d / ConvTranspose2d Functions call them."""
    def step():
        if method == "direct":
            w_used = w * mask if mask is not None else w
            if kind == "conv":
                direct_forward(x, w_used, b, s, p)
                direct_backward_input(y_bar, w_used, x.shape, s, p)
                return direct_backward_weight(x, y_bar, w.shape, s, p)
            # the transposed conv composed from conv2d's pieces, as the adjoint
            direct_backward_input(x, w_used, y_bar.shape, s, p) + b[None, :, None, None]
            direct_forward(y_bar, w_used, None, s, p)
            return direct_backward_weight(y_bar, x, w.shape, s, p)
        if kind == "conv":
            conv.conv2d_forward(x, w, b, s, p, mask)
            return conv.conv2d_backward(y_bar, x, w, s, p, mask)[1]
        conv.conv_transpose2d_forward(x, w, b, s, p, 0)
        return conv.conv_transpose2d_backward(y_bar, x, w, s, p)[1]
    return step


def torch_step(kind, x, w, b, s, p, mask, y_bar):
    import torch

    xt = torch.from_numpy(x).requires_grad_(True)
    wt = torch.from_numpy(w.copy()).requires_grad_(True)
    bt = torch.from_numpy(b.copy()).requires_grad_(True)
    mt = torch.from_numpy(mask) if mask is not None else None
    yt_bar = torch.from_numpy(y_bar)
    op = torch.nn.functional.conv2d if kind == "conv" else torch.nn.functional.conv_transpose2d

    def step():
        xt.grad = wt.grad = bt.grad = None
        op(xt, wt * mt if mt is not None else wt, bt, s, p).backward(yt_bar)
    return step


def flops(kind, B, C_in, C_out, k, s, p, H):
    """Multiply-adds x 2 for the forward, times 3 for the two backward products of the same size."""
    if kind == "conv":
        H_out = conv.conv_output_size(H, k, s, p)
        return 3 * 2 * B * C_out * C_in * k * k * H_out * H_out
    return 3 * 2 * B * C_in * C_out * k * k * H * H  # every input pixel meets every kernel tap


def milliseconds(step, repeats):
    """ms of each of repeats calls of step(), after two warm-up calls (JIT compile, allocator,
    thread pools)."""
    step(); step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(1e3 * (time.perf_counter() - start))
    return times


def run_one_method(method, batch, repeats):
    """Time one method (or torch) in this process; print one JSON line per layer."""
    n_threads = threads.get_num_threads()
    if method in ("openblas-threads", "numba-threads"):
        threads.set_num_threads(1)  # one worker, and its products left to OpenBLAS's threads:
        threads.one_blas_thread = contextlib.nullcontext  # a single worker holds BLAS to itself now
    if method == "numba-threads":
        conv.im2col, conv.col2im = _im2col_threads, _col2im_threads
    if method == "torch":
        import torch
        torch.set_num_threads(n_threads)
    rng = np.random.default_rng(0)
    for name, kind, C_in, C_out, k, s, p, H, mask_type in LAYERS:
        x = rng.standard_normal((batch, C_in, H, H)).astype(np.float32)
        w_shape = (C_out, C_in, k, k) if kind == "conv" else (C_in, C_out, k, k)
        w = (rng.standard_normal(w_shape) / np.sqrt(C_in * k * k)).astype(np.float32)
        b = rng.standard_normal(C_out).astype(np.float32)
        mask = conv.pixelcnn_mask(k, mask_type) if mask_type else None
        H_out = conv.conv_output_size(H, k, s, p) if kind == "conv" else conv.conv_transpose_output_size(H, k, s, p, 0)
        y_bar = rng.standard_normal((batch, C_out, H_out, H_out)).astype(np.float32)
        make_step = torch_step if method == "torch" else partial(layer_step, method)
        ms = milliseconds(make_step(kind, x, w, b, s, p, mask, y_bar), repeats)
        print(json.dumps({"layer": name, "gflop": flops(kind, batch, C_in, C_out, k, s, p, H) / 1e9,
                          "times": ms}), flush=True)


# ---------------------------------------------------------------- compile time


COMPILE_PROBE = """
import time, numpy as np
t0 = time.perf_counter()
from minivae.kernels import conv
t1 = time.perf_counter()
x = np.ones((2, 3, 8, 8), np.float32); w = np.ones((4, 3, 3, 3), np.float32); wt = np.ones((3, 4, 3, 3), np.float32)
y = conv.conv2d_forward(x, w, None, 1, 1)
conv.conv2d_backward(y, x, w, 1, 1)
yt = conv.conv_transpose2d_forward(x, wt, None, 2, 1, 1)
conv.conv_transpose2d_backward(yt, x, wt, 2, 1)
t2 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t1:.2f}")
"""


def compile_times():
    """(import s, first calls s) of conv.py in float32, cold and from the cache the cold run wrote."""
    results = []
    with tempfile.TemporaryDirectory() as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=str(ROOT))
        for _ in ("cold", "cached"):
            out = subprocess.run([sys.executable, "-c", COMPILE_PROBE], env=env, capture_output=True,
                                 text=True, check=True)
            results.append(tuple(float(v) for v in out.stdout.split()))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per layer in each process")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per method")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time measurement")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: time this one method (or torch) here
    args = parser.parse_args()
    if args.one:
        return run_one_method(args.one, args.batch, args.repeats)

    methods = args.methods.split(",")
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown method(s) {', '.join(sorted(unknown))}; choose from {', '.join(METHODS)}")
    has_torch = importlib.util.find_spec("torch") is not None
    columns = methods + ["torch"] * has_torch
    times = {method: [[] for _ in LAYERS] for method in columns}
    gflop = [0.0] * len(LAYERS)
    for round_ in range(args.rounds):  # rounds of fresh processes: a slow spell of the machine hits one, not all
        for method in columns:
            out = subprocess.run([sys.executable, __file__, "--one", method, "--batch", str(args.batch),
                                  "--repeats", str(args.repeats)], capture_output=True, text=True, check=True)
            for i, line in enumerate(out.stdout.splitlines()):
                record = json.loads(line)
                times[method][i] += record["times"]
                gflop[i] = record["gflop"]
            print(f"round {round_ + 1}/{args.rounds}: timed {method}", file=sys.stderr, flush=True)
    results = {method: [{"ms": (min(t), float(np.median(t))), "gflop": g} for t, g in zip(times[method], gflop)]
               for method in columns}
    print(f"batch {args.batch}, float32, {threads.get_num_threads()} threads for minivae, Numba, OpenBLAS and torch; "
          f"ms = fastest of {args.rounds} x {args.repeats} calls (median) of forward + input-backward + "
          f"weight-backward; xtorch = ms / torch's ms, each in processes of their own in this run\n")
    print(f"{'layer':<22}" + "".join(f"{m:>29}" for m in columns))
    print(" " * 22 + "".join(f"{'ms (median) GFLOP/s xtorch':>29}" for _ in columns))
    for i, (name, *_) in enumerate(LAYERS):
        line = f"{name:<22}"
        for method in columns:
            r = results[method][i]
            ratio = f"{r['ms'][0] / results['torch'][i]['ms'][0]:5.2f}x" if has_torch else ""
            line += f"{r['ms'][0]:8.1f} ({r['ms'][1]:6.1f}) {r['gflop'] / r['ms'][0] * 1e3:5.0f} {ratio:>6}"
        print(line, flush=True)

    if not args.no_compile:
        (cold_import, cold_calls), (warm_import, warm_calls) = compile_times()
        print(f"\nJIT compile of conv.py, float32, all kernels: cold {cold_calls:.1f} s "
              f"(+ import {cold_import:.1f} s), from cache {warm_calls:.2f} s (+ import {warm_import:.1f} s)")


if __name__ == "__main__":
    main()
