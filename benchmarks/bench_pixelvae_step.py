"""A PixelVAE training step and its IWAE evaluation: CPU seconds and page faults, at one thread.

    python benchmarks/bench_pixelvae_step.py [--steps 10] [--rounds 3] [--also PATH ...]

The example's default PixelVAE (16-D z, 16 channels, 5 gated layers) on binarised mnist-5k,
batch 100: the seconds of CPU time per step (loss → backward → Adam), and the minor page faults per
step (getrusage's ru_minflt: each is a fresh page the kernel hands the process, zeroed; a step that
reuses its memory has none); then metrics.iwae_nll with k = 100 on 20 test images, the same two
figures per image; then the CPU seconds of the cached sampler drawing 64 images (generate,
cached=True, from fixed z and pixel noise, as examples/pixelvae.py's time_samplers). One thread
(minivae.set_num_threads(1)), and CPU time rather than wall time, so that other work on a shared
machine changes the figures little. Each run is a fresh process; with
--also PATH the runs alternate between this checkout and the other one's minivae (a worktree of an
older commit: "before" and "after" in one run); a figure is the median over --rounds rounds.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(args) -> dict:
    """The child: one fresh process's figures."""
    import numpy as np

    import minivae
    from minivae import data, optim
    from minivae.metrics import iwae_nll
    from minivae.models.pixelvae import PixelVAE
    from minivae.tensor import Tensor
    minivae.set_num_threads(1)
    (x_train, _), (x_test, _) = data.load("mnist-5k")
    rng = np.random.default_rng(0)
    x = data.binarize(data.to_float(x_train[:100]), rng)  # (100, 1, 28, 28)
    x_test = data.binarize(data.to_float(x_test[:20]), rng)  # (20, 1, 28, 28)
    build = getattr(PixelVAE, "gated", PixelVAE)  # a checkout before PixelVAE.gated (--also)
    model = build(rng=np.random.default_rng(1))
    optimizer = optim.Adam(model.parameters(), lr=1e-3)

    def step():
        loss, _ = model.loss(Tensor(x), rng)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def cost(work, repeats):
        """(CPU seconds, minor page faults) per repeat of work()."""
        faults, cpu = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
        for _ in range(repeats):
            work()
        return ((time.process_time() - cpu) / repeats,
                (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / repeats)

    for _ in range(3):  # compilation, caches, the allocator's first growth
        step()
    step_seconds, step_faults = cost(step, args.steps)
    iwae_nll(model, x_test[:2], 100, np.random.default_rng(2))  # warm
    iwae_seconds, iwae_faults = cost(lambda: iwae_nll(model, x_test, 100,
                                                      np.random.default_rng(2)), 1)
    noise_rng = np.random.default_rng(5)
    z = noise_rng.standard_normal((64, model.config.latent_dim))
    noise = noise_rng.random((64,) + model.image_shape)
    model.generate(z[:2], None, noise=noise[:2])  # warm
    sample_seconds, _ = cost(lambda: model.generate(z, None, noise=noise, cached=True), 1)
    return {"step_seconds": step_seconds, "step_faults": step_faults,
            "iwae_seconds_per_image": iwae_seconds / len(x_test),
            "iwae_faults_per_image": iwae_faults / len(x_test), "sample_seconds_64": sample_seconds}


def spawn(path: Path, args) -> dict:
    env = dict(os.environ, PYTHONPATH=str(path))
    done = subprocess.run([sys.executable, __file__, "--child", "--steps", str(args.steps)],
                          env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the run of {path} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--also", action="append", default=[], type=Path, metavar="PATH")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return
    paths = [ROOT, *args.also]
    runs = {path: [] for path in paths}
    for _ in range(args.rounds):
        for path in paths:  # in turn, so a slow spell of the machine hits each alike
            runs[path].append(spawn(path, args))
    print(f"PixelVAE (default), batch 100, 1 thread, CPU time; medians of {args.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'minivae':28s} {'s/step':>8s} {'faults/step':>12s} {'IWAE s/image':>13s} "
          f"{'faults/image':>13s} {'64 samples s':>13s}")
    for path in paths:
        med = {key: statistics.median(run[key] for run in runs[path]) for key in runs[path][0]}
        name = "this checkout" if path == ROOT else path.name
        print(f"{name:28s} {med['step_seconds']:8.3f} {med['step_faults']:12.0f} "
              f"{med['iwae_seconds_per_image']:13.3f} {med['iwae_faults_per_image']:13.0f} "
              f"{med['sample_seconds_64']:13.3f}")


if __name__ == "__main__":
    main()
