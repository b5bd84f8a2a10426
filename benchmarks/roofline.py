"""How near this CPU's limit each model trains: FLOPs per step, minivae's and PyTorch's time, and
the share of one core's measured sgemm peak, at one thread by CPU time; page faults per step; the
PixelVAE's IWAE and cached sampling.

    python benchmarks/roofline.py [--rounds 5] [--also PATH]   # measure, print, write roofline.json
    python benchmarks/roofline.py --render                     # the tables into the READMEs

The peak is NumPy's float32 matrix product (1024 × 1024 × 1024, OpenBLAS at one thread), measured
in the same run. A step's FLOPs are counted, not estimated: every kernel minivae calls in one
training step (kernels.matmul, linear, the convolutions and their backwards) adds 2·m·k·n for the
products it makes, a masked convolution only for the taps its mask keeps; PyTorch's column is
torch.utils.flop_counter's count of its twin's step (all taps: it multiplies by W·mask). Each
figure is the median over --rounds fresh processes, minivae and PyTorch in turn (and --also PATH,
another checkout's minivae, for a before and after). One thread and CPU time, so a second job on
the machine moves the figures little; the load average is printed with them.
"""
import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
JSON = HERE / "roofline.json"
MODELS = {"mlp-vae": 128, "conv-vae": 128, "pixelvae": 100, "pixelvae-example": 100}  # batch sizes
NAMES = {"mlp-vae": "MLP VAE 784-400-20", "conv-vae": "conv VAE",
         "pixelvae": "PixelVAE, z as a bias, 5 layers (issue 23's)",
         "pixelvae-example": "PixelVAE, examples/pixelvae.py's default"}
BEGIN, END = "<!-- roofline: made by benchmarks/roofline.py --render -->", "<!-- end roofline -->"


def cpu_cost(work, repeats: int) -> tuple[float, float]:
    """(CPU seconds, minor page faults) per call of work()."""
    faults, cpu = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
    for _ in range(repeats):
        work()
    return ((time.process_time() - cpu) / repeats,
            (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / repeats)


# ---------------------------------------------------------------- the children


def peak() -> dict:
    """One core's sgemm: GFLOP/s of a 1024³ float32 product, the best of 20."""
    import numpy as np
    a, b = (np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
            for _ in range(2))
    a @ b
    best = min(cpu_cost(lambda: a @ b, 1)[0] for _ in range(20))
    return {"gflops": 2 * 1024 ** 3 / best / 1e9}


def batch(name: str):
    import numpy as np

    from minivae import data
    (x, _), _ = data.load("mnist-5k")
    x = data.to_float(x[:MODELS[name]])  # (B, 1, 28, 28)
    return data.binarize(x, np.random.default_rng(0)) if name.startswith("pixelvae") else x


def build(name: str):
    import numpy as np

    from minivae.models.pixelvae import PixelVAE
    from minivae.models.vae import VAE
    rng = np.random.default_rng(1)
    if name == "pixelvae":
        return getattr(PixelVAE, "gated", PixelVAE)(rng=rng)  # older checkouts: PixelVAE(...)
    if name == "pixelvae-example":  # the model examples/pixelvae.py builds with its defaults
        spec = importlib.util.spec_from_file_location("example", ROOT / "examples" / "pixelvae.py")
        example = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(example)
        a = example.make_parser().parse_args([])
        return PixelVAE.gated(a.latent_dim, a.channels, a.layers, conditioning=a.conditioning,
                              rng=rng)
    return (VAE.conv if name == "conv-vae" else VAE.mlp)(latent_dim=20, rng=rng)


def count_flops(step) -> float:
    """The FLOPs of the products minivae's kernels make in one call of step()."""
    from minivae import kernels
    from minivae.functional import conv_output_size
    flops = [0.0]

    def conv_taps(w, mask):
        return float((mask != 0).sum()) if mask is not None else w.shape[2] * w.shape[3]

    def count(name, f):
        def counted(*a, **kw):
            flops[0] += f(*a, **kw)
            return original(*a, **kw)
        original = getattr(kernels, name)
        counted.original = original  # type: ignore[attr-defined]
        setattr(kernels, name, counted)

    def conv_out(x, w, stride, padding):
        return (conv_output_size(x.shape[2], w.shape[2], stride, padding) *
                conv_output_size(x.shape[3], w.shape[3], stride, padding))

    count("matmul", lambda a, b, *_, **__: 2.0 * a.size * b.shape[-1])
    count("linear", lambda x, w, *_, **__: 2.0 * x.shape[0] * w.size)
    count("linear_backward", lambda y_bar, x, w, y, act, slope, need_x, need_w:
          2.0 * x.shape[0] * w.size * (bool(need_x) + bool(need_w)))
    count("conv2d", lambda x, w, b, stride, padding, mask=None, *_, **__:
          2.0 * x.shape[0] * w.shape[0] * w.shape[1] * conv_taps(w, mask) *
          conv_out(x, w, stride, padding))
    count("conv2d_backward", lambda y_bar, x, w, y, stride, padding, mask=None, act=None,
          slope=None, need_x_bar=True: 2.0 * x.shape[0] * w.shape[0] * w.shape[1] *
          conv_taps(w, mask) * conv_out(x, w, stride, padding) * (1 + bool(need_x_bar)))
    count("conv_transpose2d", lambda x, w, *_, **__:
          2.0 * x.shape[0] * w.size * x.shape[2] * x.shape[3])
    count("conv_transpose2d_backward", lambda y_bar, x, w, y, stride, padding, act=None,
          slope=None, need_x_bar=True: 2.0 * x.shape[0] * w.size * x.shape[2] * x.shape[3] *
          (1 + bool(need_x_bar)))
    try:
        step()
    finally:
        for name in ("matmul", "linear", "linear_backward", "conv2d", "conv2d_backward",
                     "conv_transpose2d", "conv_transpose2d_backward"):
            setattr(kernels, name, getattr(kernels, name).original)
    return flops[0]


def minivae_child(name: str, steps: int) -> dict:
    import numpy as np

    import minivae
    from minivae import optim
    from minivae.tensor import Tensor
    minivae.set_num_threads(1)
    x, model, rng = batch(name), build(name), np.random.default_rng(2)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)

    def step():
        loss, _ = model.loss(Tensor(x), rng)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):  # compilation, caches, the allocator's first growth
        step()
    figures = {"flops": count_flops(step)}
    figures["seconds"], figures["faults"] = cpu_cost(step, steps)
    if name.startswith("pixelvae"):
        figures.update(pixelvae_evaluation(model))
    return figures


def pixelvae_evaluation(model) -> dict:
    """CPU seconds of metrics.iwae_nll per image (k = 100, 20 test images) and of drawing 64
    images with the cached sampler."""
    import numpy as np

    from minivae.metrics import iwae_nll
    x = batch("pixelvae")[:20]
    iwae_nll(model, x[:2], 100, np.random.default_rng(2))  # warm
    iwae = cpu_cost(lambda: iwae_nll(model, x, 100, np.random.default_rng(2)), 1)[0]
    z = np.random.default_rng(5).standard_normal((64, model.config.latent_dim))
    model.generate(z[:2], np.random.default_rng(6))  # warm
    sample = cpu_cost(lambda: model.generate(z, np.random.default_rng(6)), 1)[0]
    return {"iwae_seconds_per_image": iwae / len(x), "sample64_seconds": sample}


def torch_child(name: str, steps: int) -> dict:
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    x = torch.from_numpy(batch(name))
    if name.startswith("pixelvae"):
        from pixelvae_twin import twin
        model = build(name)
        net = twin(model)
        eps = torch.from_numpy(np.random.default_rng(2).standard_normal(
            (len(x), model.config.latent_dim), dtype=np.float32))
        loss_of = lambda: net.loss(x, eps)[0]  # noqa: E731
    else:
        from twins import torch_vae
        net = torch_vae(20, conv=name == "conv-vae")
        loss_of = lambda: net.loss(x)  # noqa: E731
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        loss = loss_of()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    seconds, faults = cpu_cost(step, steps)
    return {"flops": float(counter.get_total_flops()), "seconds": seconds, "faults": faults}


# ---------------------------------------------------------------- the parent


def spawn(kind: str, path: Path, model: str, steps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(path), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, __file__, "--child", kind, model, "--steps",
                           str(steps)], env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{kind} {model} ({path}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def available(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def measure(args) -> dict:
    sides = [("minivae", ROOT)] + [(f"minivae {p.name}", p) for p in args.also]
    if available("torch"):
        sides.append(("PyTorch", ROOT))
    load = os.getloadavg()[0]
    runs: dict = {}
    for _ in range(args.rounds):
        runs.setdefault("peak", []).append(spawn("peak", ROOT, "-", 1))
        for model in MODELS:
            for side, path in sides:  # in turn, so a slow spell hits each side alike
                if model == "pixelvae-example" and path != ROOT:
                    continue  # another checkout's example may build another model
                kind = "torch" if side == "PyTorch" else "minivae"
                runs.setdefault(model, {}).setdefault(side, []).append(
                    spawn(kind, path, model, args.steps))
    median = lambda rows: {k: statistics.median(r[k] for r in rows) for k in rows[0]}  # noqa
    return {"date": time.strftime("%Y-%m-%d"), "rounds": args.rounds, "steps": args.steps,
            "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
            "peak_gflops": statistics.median(r["gflops"] for r in runs.pop("peak")),
            "models": {model: {side: median(rows) for side, rows in by_side.items()}
                       for model, by_side in runs.items()}}


def render(figures: dict) -> str:
    """The markdown tables of a measurement."""
    peak = figures["peak_gflops"]
    lines = [f"One thread, CPU time, medians of {figures['rounds']} rounds of fresh processes, "
             f"{figures['date']}, load average {figures['load_average'][0]} at the start and "
             f"{figures['load_average'][1]} at the end; one core's sgemm peak "
             f"{peak:.0f} GFLOP/s.", "",
             "| training step | side | GFLOP / step | ms / step | GFLOP/s | share of peak | "
             "page faults / step | × PyTorch |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for model, sides in figures["models"].items():
        torch = sides.get("PyTorch")
        for side, f in sides.items():
            rate = f["flops"] / f["seconds"] / 1e9
            ratio = f"{f['seconds'] / torch['seconds']:.2f}" if torch else "—"
            lines.append(f"| {NAMES[model]}, batch {MODELS[model]} | {side} | {f['flops'] / 1e9:.2f} | "
                         f"{1e3 * f['seconds']:.1f} | {rate:.0f} | {100 * rate / peak:.0f} % | "
                         f"{f['faults']:.0f} | {ratio} |")
    lines += ["", "| PixelVAE evaluation | side | IWAE, k = 100: s / image | 64 cached samples: s |",
              "| --- | --- | --- | --- |"]
    lines += [f"| {NAMES[model]} | {side} | {f['iwae_seconds_per_image']:.3f} | "
              f"{f['sample64_seconds']:.2f} |" for model, sides in figures["models"].items()
              for side, f in sides.items() if "iwae_seconds_per_image" in f]
    return "\n".join(lines)


def write_block(path: Path, table: str) -> None:
    """Put the table between the roofline markers of a README."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} block to fill")
    head, rest = text.split(BEGIN, 1)
    path.write_text(f"{head}{BEGIN}\n{table}\n{END}{rest.split(END, 1)[1]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--also", action="append", default=[], type=Path, metavar="PATH")
    parser.add_argument("--render", action="store_true",
                        help="write roofline.json's tables into README.md and benchmarks/README.md")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, model = args.child
        child = {"peak": lambda: peak(), "minivae": lambda: minivae_child(model, args.steps),
                 "torch": lambda: torch_child(model, args.steps)}[kind]
        print(json.dumps(child()))
        return
    if not args.render:
        JSON.write_text(json.dumps(measure(args), indent=1) + "\n")
    table = render(json.loads(JSON.read_text()))
    print(table)
    if args.render:
        for readme in (ROOT / "README.md", HERE / "README.md"):
            write_block(readme, table)


if __name__ == "__main__":
    main()
