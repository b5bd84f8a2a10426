"""One full adversarial-autoencoder step (all three phases) at batch 128 in float32, against a
PyTorch twin in the same run.

    python benchmarks/bench_aae.py [--batch 128] [--repeats 50] [--prior gaussian] [--threads N]

The networks are AAE.mlp's defaults: encoder 784-512-512-2, decoder 2-512-512-784, discriminator
2-512-512-1, ReLU, Adam. A step is: reconstruction phase (encoder + decoder), discriminator phase,
generator phase (encoder), each with its own optimiser. The twin does exactly the same work: one
encoder pass shared by the two regularisation phases, the discriminator run once on the
concatenated [prior samples, codes], and no discriminator weight gradients in the generator phase.

Prints ms per step (median of --repeats, the two libraries measured in alternation so that other
load on the machine hits both alike), minivae's time per phase, and the ratio minivae / PyTorch.
--threads N sets the BLAS threads of both, and minivae's workers (default: each library's own
default). On a machine shared with other work, try --threads 1: a two-thread BLAS product waits
whenever the other core is busy, which makes timings jumpy.
"""
import argparse
import os
import sys
import time


def parse():
    parser = argparse.ArgumentParser(description="AAE training-step benchmark")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--prior", default="gaussian")
    parser.add_argument("--threads", type=int, default=None)
    return parser.parse_args()


ARGS = parse()
if ARGS.threads:  # must be set before NumPy loads OpenBLAS
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

import minivae  # noqa: E402
from minivae.models.aae import AAE  # noqa: E402
from minivae.tensor import Tensor  # noqa: E402

if ARGS.threads:
    minivae.set_num_threads(ARGS.threads)


def minivae_step(batch, prior, seed=0):
    rng = np.random.default_rng(seed)
    model = AAE.mlp(prior=prior, rng=rng)
    optimizers = model.optimizers()
    x = rng.uniform(size=(batch, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, batch)
    times = {"rec": [], "disc": [], "gen": []}

    def step():
        model.step(x, optimizers, rng, labels)

    def phases():  # the same step, timed phase by phase
        xt = Tensor(x)
        t0 = time.perf_counter()
        model.reconstruction_phase(xt, optimizers.rec)
        t1 = time.perf_counter()
        z = model.encode(xt)
        model.discriminator_phase(z.detach(), optimizers.disc, rng, labels)
        t2 = time.perf_counter()
        model.generator_phase(z, optimizers.gen, labels)
        t3 = time.perf_counter()
        for name, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
            times[name].append(dt)
    return step, phases, times


def torch_step(batch, prior, seed=0):
    """The same step in PyTorch (benchmarks/twins.py), on the same kind of random batch."""
    import torch

    from twins import TorchAAE
    model = TorchAAE(prior, seed=seed)
    rng = np.random.default_rng(seed)
    x = torch.rand(batch, 1, 28, 28).numpy()
    labels = rng.integers(0, 10, batch)
    return lambda: model.step(x, rng, labels)


def alternate(fns, repeats):
    """Median seconds per call of each fn, measured in alternation after two warm-up calls."""
    for fn in fns:
        fn(), fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t in zip(fns, times):
            start = time.perf_counter()
            fn()
            t.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def main():
    B, R = ARGS.batch, ARGS.repeats
    step, phases, phase_times = minivae_step(B, ARGS.prior)
    try:
        import torch
    except ImportError:
        torch = None
    fns = [step, phases]
    if torch is not None:
        if ARGS.threads:
            torch.set_num_threads(ARGS.threads)
        fns.append(torch_step(B, ARGS.prior))
    medians = alternate(fns, R)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"AAE step (reconstruction + discriminator + generator phases), {ARGS.prior} prior, "
          f"batch {B}, float32, median of {R}; BLAS threads: {threads}, "
          f"minivae's workers: {minivae.get_num_threads()}")
    print(f"  minivae step                {medians[0] * 1e3:8.2f} ms")
    parts = "  ".join(f"{name} {np.median(t) * 1e3:.2f}" for name, t in phase_times.items())
    print(f"    by phase (ms)             {parts}")
    if torch is None:
        print("  torch not installed: no PyTorch comparison (pip install torch)")
        return
    print(f"  PyTorch {torch.__version__} step ({torch.get_num_threads()} threads) "
          f"{medians[2] * 1e3:8.2f} ms")
    print(f"  ratio minivae / PyTorch     {medians[0] / medians[2]:8.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
