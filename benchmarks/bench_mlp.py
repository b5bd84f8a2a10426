"""One training step of the 784-400-20-400-784 MLP autoencoder: where does the time go?

    python benchmarks/bench_mlp.py [--batch 128] [--repeats 50]

Prints, all measured in this one run:
  * ms per step (forward, backward, Adam) at batch 128 in float32, and the GFLOP/s it achieves;
  * the engine's share: the same step on a tiny 8-4-2-4-8 network at batch 1 costs almost nothing
    in BLAS, so its time is the per-step overhead of the Python engine (graph building, Function
    calls, optimiser loop); overhead share = tiny step / full step;
  * the pieces the kernels replace: fused Linear+ReLU against the unfused ops, and the Numba Adam
    update against the same update in NumPy;
  * when torch is installed, the same step in PyTorch on the same number of threads, and the ratio.
"""
import argparse
import time

import numpy as np

import minivae
from minivae import functional as F
from minivae import kernels, nn, optim

WIDTHS = (784, 400, 20, 400, 784)


def build(widths, rng):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        relu = i < len(widths) - 2 and i != len(widths) // 2 - 1  # no ReLU at the code or output
        layers.append(nn.Linear(n_in, n_out, rng=rng, activation="relu" if relu else "identity"))
    return nn.Sequential(*layers)


def seconds_per_call(fn, repeats):
    for _ in range(2):  # warm up: JIT compile, allocator
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def minivae_step(widths, batch, fused=True, seed=0):
    rng = np.random.default_rng(seed)
    model = build(widths, rng)
    optimizer = optim.Adam(model.parameters())
    x = rng.uniform(size=(batch, widths[0])).astype(np.float32)

    def forward(t):
        if fused:
            return model(t)
        for layer in model:  # one op at a time: matmul, add bias, relu
            t = t @ layer.weight.T + layer.bias
            t = F.relu(t) if layer.activation == "relu" else t
        return t

    def step():
        logits = forward(minivae.Tensor(x))
        loss = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / batch
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def torch_step(widths, batch, seed=0):
    import torch
    torch.manual_seed(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(widths) - 2 and i != len(widths) // 2 - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.Adam(model.parameters())
    x = torch.rand(batch, widths[0])

    def step():
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), x,
                                                                    reduction="sum") / batch
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def flops_per_step(widths, batch):
    """Forward 2·B·in·out per layer; backward twice that (input and weight gradients)."""
    return 3 * sum(2 * batch * a * b for a, b in zip(widths[:-1], widths[1:]))


def adam_numpy_vs_numba(rng, repeats):
    """optim.Adam.step through the fast door (the Numba kernel) and the numpy door (its equations)."""
    params = [nn.Parameter(rng.standard_normal(shape).astype(np.float32))
              for a, b in zip(WIDTHS[:-1], WIDTHS[1:]) for shape in ((b, a), (b,))]
    for p in params:
        p.grad = p.data * 0.1
    adam, before, seconds = optim.Adam(params), kernels.get_backend(), []
    for door in ("fast", "numpy"):
        kernels.set_backend(door)
        seconds.append(seconds_per_call(adam.step, repeats))
    kernels.set_backend(before)
    return tuple(seconds)


def main():
    parser = argparse.ArgumentParser(description="MLP training-step benchmark")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    B, R = args.batch, args.repeats
    width_str = "-".join(map(str, WIDTHS))

    full = seconds_per_call(minivae_step(WIDTHS, B), R)
    unfused = seconds_per_call(minivae_step(WIDTHS, B, fused=False), R)
    tiny = seconds_per_call(minivae_step((8, 4, 2, 4, 8), 1), R)
    adam_numba, adam_numpy = adam_numpy_vs_numba(np.random.default_rng(0), R)
    gflops = flops_per_step(WIDTHS, B) / full / 1e9

    print(f"MLP {width_str}, batch {B}, float32, forward + backward + Adam, median of {R}")
    print(f"  minivae step                 {full * 1e3:8.2f} ms   {gflops:6.1f} GFLOP/s")
    print(f"  same step, unfused Linear    {unfused * 1e3:8.2f} ms   (fused saves "
          f"{(unfused - full) * 1e3:.2f} ms)")
    print(f"  tiny 8-4-2-4-8 step, batch 1 {tiny * 1e3:8.2f} ms   = engine overhead per step")
    print(f"  engine overhead share        {100 * tiny / full:8.1f} %    (target < 15 %)")
    print(f"  Adam update, Numba           {adam_numba * 1e3:8.2f} ms   "
          f"NumPy form {adam_numpy * 1e3:.2f} ms")
    try:
        import torch
    except ImportError:
        print("  torch not installed: no PyTorch comparison (pip install torch)")
        return
    torch.set_num_threads(minivae.get_num_threads())  # as many threads as minivae's workers
    ref = seconds_per_call(torch_step(WIDTHS, B), R)
    print(f"  PyTorch {torch.__version__} step ({torch.get_num_threads()} threads) "
          f"{ref * 1e3:8.2f} ms   ratio minivae / PyTorch {full / ref:.2f}")


if __name__ == "__main__":
    main()
