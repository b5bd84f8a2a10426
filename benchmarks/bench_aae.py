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
    import torch
    from torch import nn
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    probe = AAE.mlp(prior=prior, hidden=1)  # for the prior sampler and the sizes only
    d, conditional = probe.config.latent_dim, probe.prior.conditional
    d_in = d + (10 if conditional else 0)

    def mlp(widths):
        layers = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        return nn.Sequential(*layers[:-1])

    encoder = nn.Sequential(nn.Flatten(), mlp([784, 512, 512, d]))
    decoder = nn.Sequential(mlp([d, 512, 512, 784]), nn.Unflatten(1, (1, 28, 28)))
    disc = mlp([d_in, 512, 512, 1])
    c = probe.config
    adam = lambda params, lr: torch.optim.Adam(params, lr=lr, betas=c.betas)
    opt_rec = adam([*encoder.parameters(), *decoder.parameters()], c.lr_rec)
    opt_disc, opt_gen = adam(disc.parameters(), c.lr_disc), adam(encoder.parameters(), c.lr_gen)
    bce = nn.functional.binary_cross_entropy_with_logits
    x = torch.rand(batch, 1, 28, 28)
    labels = rng.integers(0, 10, batch)
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(labels), 10).float()

    def discriminate(z, two=False):
        if conditional:
            z = torch.cat([z, torch.cat([one_hot, one_hot]) if two else one_hot], dim=1)
        return disc(z).reshape(-1)

    def step():
        # 1. reconstruction
        rec = bce(decoder(encoder(x)), x, reduction="sum") / batch
        opt_rec.zero_grad()
        rec.backward()
        opt_rec.step()
        # 2a. discriminator, on [prior samples, codes]
        z = encoder(x)
        z_prior = torch.from_numpy(probe.sample_prior(batch, rng, labels))
        logits = discriminate(torch.cat([z_prior, z.detach()]), two=True)
        target = torch.cat([torch.ones(batch), torch.zeros(batch)])
        loss = bce(logits, target)
        opt_disc.zero_grad()
        loss.backward()
        opt_disc.step()
        # 2b. generator: the encoder against a frozen discriminator
        disc.requires_grad_(False)
        logits = discriminate(z)
        loss = bce(logits, torch.ones(batch))
        opt_gen.zero_grad()
        loss.backward()
        disc.requires_grad_(True)
        opt_gen.step()
    return step


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
