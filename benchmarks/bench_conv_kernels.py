"""The convolution kernels against PyTorch: forward + both backwards of each conv layer the models use.

    python benchmarks/bench_conv_kernels.py [--batch 128] [--repeats 10] [--rounds 3] [--no-compile]

For each layer of the conv VAE and the PixelCNN decoder (28x28 images, float32) it times one
forward + input-backward + weight-backward of minivae/kernels/fast/conv.py - minivae's workers each take
whole chunks of the batch: the copies (im2col.py) and the chunk's product, NumPy's BLAS on that
worker's thread - and of PyTorch (its oneDNN kernels) on the same number of threads, when torch is
installed. Masked layers: minivae passes the mask (only its taps are computed); PyTorch multiplies
w by it, as a PixelCNN in PyTorch does. GFLOP/s counts the dense layer's work for both, so it
compares speed, not arithmetic.

minivae and PyTorch each run in fresh Python processes of their own, one after another in this one
run, and the ratio is taken between those figures. Sharing a process is not fair: after one
library's products, OpenBLAS's idle threads keep spinning on the cores and the next library's
layers ran up to 2x slower beside them. The two take turns for --rounds rounds, because a 2-core
virtual machine has slow spells of several seconds that would hit a single process. ms = the
fastest call over all rounds, the median of all calls beside it. The last line is the JIT compile
time of conv.py, cold (a fresh NUMBA_CACHE_DIR) and from the cache that run wrote.

The other ways tried (products on OpenBLAS's threads, copies on Numba's threads, direct loops) and
their numbers are in benchmarks/README.md.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import numpy as np  # noqa: E402

from minivae import functional as F  # noqa: E402
from minivae import nn  # noqa: E402
from minivae.kernels.fast import conv, threads  # noqa: E402

# (name, kind, C_in, C_out, k, stride, padding, input size, mask type)
LAYERS = [
    ("Conv2d(1,32,4,2,1)", "conv", 1, 32, 4, 2, 1, 28, None),
    ("Conv2d(32,64,4,2,1)", "conv", 32, 64, 4, 2, 1, 14, None),
    ("ConvT2d(64,32,4,2,1)", "convT", 64, 32, 4, 2, 1, 7, None),
    ("ConvT2d(32,1,4,2,1)", "convT", 32, 1, 4, 2, 1, 14, None),
    ("masked A 7x7 1->32", "conv", 1, 32, 7, 1, 3, 28, "A"),
    ("masked B 3x3 32->32", "conv", 32, 32, 3, 1, 1, 28, "B"),
]


# ---------------------------------------------------------------- one layer


def minivae_step(kind, x, w, b, s, p, mask, y_bar):
    """A closure doing forward + input-backward + weight-backward of one layer, as minivae's
    Conv2dBiasAct / ConvTranspose2dBiasAct Functions call the kernels."""
    def step():
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
        H_out = F.conv_output_size(H, k, s, p)
        return 3 * 2 * B * C_out * C_in * k * k * H_out * H_out
    return 3 * 2 * B * C_in * C_out * k * k * H * H  # every input pixel meets every kernel tap


def milliseconds(step, repeats):
    """ms of each of repeats calls of step(), after two warm-up calls (JIT compile, allocator,
    thread pools)."""
    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(1e3 * (time.perf_counter() - start))
    return times


def run_one(library, batch, repeats):
    """Time minivae or torch in this process; print one JSON line per layer."""
    if library == "torch":
        import torch
        torch.set_num_threads(threads.get_num_threads())
    rng = np.random.default_rng(0)
    for name, kind, C_in, C_out, k, s, p, H, mask_type in LAYERS:
        x = rng.standard_normal((batch, C_in, H, H)).astype(np.float32)
        w_shape = (C_out, C_in, k, k) if kind == "conv" else (C_in, C_out, k, k)
        w = (rng.standard_normal(w_shape) / np.sqrt(C_in * k * k)).astype(np.float32)
        b = rng.standard_normal(C_out).astype(np.float32)
        mask = nn.pixelcnn_mask(k, mask_type) if mask_type else None
        H_out = F.conv_output_size(H, k, s, p) if kind == "conv" else F.conv_transpose_output_size(H, k, s, p, 0)
        y_bar = rng.standard_normal((batch, C_out, H_out, H_out)).astype(np.float32)
        make_step = torch_step if library == "torch" else minivae_step
        ms = milliseconds(make_step(kind, x, w, b, s, p, mask, y_bar), repeats)
        print(json.dumps({"layer": name, "gflop": flops(kind, batch, C_in, C_out, k, s, p, H) / 1e9,
                          "times": ms}), flush=True)


# ---------------------------------------------------------------- compile time


COMPILE_PROBE = """
import time, numpy as np
t0 = time.perf_counter()
from minivae.kernels.fast import conv
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
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes for each library")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time measurement")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: time this library here
    args = parser.parse_args()
    if args.one:
        return run_one(args.one, args.batch, args.repeats)

    has_torch = importlib.util.find_spec("torch") is not None
    columns = ["minivae"] + ["torch"] * has_torch
    times = {library: [[] for _ in LAYERS] for library in columns}
    gflop = [0.0] * len(LAYERS)
    for round_ in range(args.rounds):  # rounds of fresh processes: a slow spell of the machine hits one, not all
        for library in columns:
            out = subprocess.run([sys.executable, __file__, "--one", library, "--batch", str(args.batch),
                                  "--repeats", str(args.repeats)], capture_output=True, text=True, check=True)
            for i, line in enumerate(out.stdout.splitlines()):
                record = json.loads(line)
                times[library][i] += record["times"]
                gflop[i] = record["gflop"]
            print(f"round {round_ + 1}/{args.rounds}: timed {library}", file=sys.stderr, flush=True)
    results = {library: [{"ms": (min(t), float(np.median(t))), "gflop": g} for t, g in zip(times[library], gflop)]
               for library in columns}
    print(f"batch {args.batch}, float32, {threads.get_num_threads()} threads for minivae and torch; "
          f"ms = fastest of {args.rounds} x {args.repeats} calls (median) of forward + input-backward + "
          f"weight-backward; xtorch = ms / torch's ms, each in processes of their own in this run\n")
    print(f"{'layer':<22}" + "".join(f"{library:>29}" for library in columns))
    print(" " * 22 + "".join(f"{'ms (median) GFLOP/s xtorch':>29}" for _ in columns))
    for i, (name, *_) in enumerate(LAYERS):
        line = f"{name:<22}"
        for library in columns:
            r = results[library][i]
            ratio = f"{r['ms'][0] / results['torch'][i]['ms'][0]:5.2f}x" if has_torch else ""
            line += f"{r['ms'][0]:8.1f} ({r['ms'][1]:6.1f}) {r['gflop'] / r['ms'][0] * 1e3:5.0f} {ratio:>6}"
        print(line, flush=True)

    if not args.no_compile:
        (cold_import, cold_calls), (warm_import, warm_calls) = compile_times()
        print(f"\nJIT compile of conv.py, float32, all kernels: cold {cold_calls:.1f} s "
              f"(+ import {cold_import:.1f} s), from cache {warm_calls:.2f} s (+ import {warm_import:.1f} s)")


if __name__ == "__main__":
    main()
