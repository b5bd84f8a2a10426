"""Whole training runs, minivae beside its PyTorch twin: seconds per epoch, every epoch.

    python benchmarks/bench_training.py [--models mlp-vae,conv-vae,aae] [--data fashion-mnist]
                                        [--epochs 4] [--rounds 3] [--also PATH ...]

One step on random data hides what real training does: data order, evaluation between epochs,
and numbers that drift as the model learns (subnormal floats, for one, appear only after some
epochs). So this trains each model the way its example does - minivae through train.fit (with
the AAE's hooks for it), the twin (benchmarks/twins.py) with the same network, recipe, batches and
thread count (torch.set_num_threads(minivae.get_num_threads())) - and prints the training seconds
of every epoch (evaluation excluded) and their ratio, minivae / PyTorch.

Each run is a fresh Python process, so neither library's idle threads sit on the cores while the
other computes. The runs take turns - minivae, PyTorch, then each --also checkout - for --rounds
rounds, so a slow spell of this shared machine hits all of them alike; a figure is the median of
its epoch over the rounds. --also PATH adds the minivae of another checkout (e.g. a worktree of an
older commit), run by the same script: that is how "before" and "after" are measured in one run.
fashion-mnist falls back to mnist-5k where it is not installed.

A model is one entry of MODELS: a function training minivae's, and one training its twin, each
returning its seconds per epoch and last training loss.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- one run, in its own process


def _load(name):
    from minivae import data
    (x_train, y_train), (x_test, y_test) = data.load(name)
    return data.to_float(x_train), y_train, data.to_float(x_test), y_test


def minivae_vae(args, conv):
    import numpy as np

    from minivae import optim
    from minivae.models.vae import VAE
    from minivae.train import fit
    x_train, _, x_test, _ = _load(args.data)
    model = (VAE.conv if conv else VAE.mlp)(rng=np.random.default_rng(args.seed))
    history = fit(model, optim.Adam(model.parameters(), lr=1e-3), x_train, x_test[:1000],
                  epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                  log=lambda message: print(message, file=sys.stderr))
    return [h["seconds"] for h in history], history[-1]["train_loss"]


def torch_vae(args, conv):
    import numpy as np
    import torch

    from twins import torch_vae as twin
    from twins import train_epoch_vae
    x_train, _, _, _ = _load(args.data)
    torch.manual_seed(args.seed)
    model = twin(20, conv)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng, seconds = np.random.default_rng(args.seed), []
    for _ in range(args.epochs):
        start = time.perf_counter()
        loss = train_epoch_vae(model, optimizer, x_train, args.batch_size, rng)
        seconds.append(time.perf_counter() - start)
    return seconds, loss


def minivae_aae(args):
    import numpy as np

    from minivae.models.aae import AAE
    from minivae.train import fit
    x_train, _, x_test, _ = _load(args.data)
    log = lambda message: print(message, file=sys.stderr)
    try:
        from minivae.train import linear_decay
    except ImportError:  # an --also checkout from before train.fit trained the AAE: its fit_aae
        from minivae.models.aae import fit_aae
        model = AAE.mlp(rng=np.random.default_rng(args.seed))
        history = fit_aae(model, x_train, x_test[:1000], epochs=args.epochs,
                          batch_size=args.batch_size, seed=args.seed, mmd_n=200, log=log)
    else:
        model = AAE.mlp(rng=np.random.default_rng(args.seed), mmd_n=200)
        optimizers = model.optimizers()
        history = fit(model, optimizers, x_train, x_test[:1000], epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, step=model.step,
                      evaluation=model.evaluate, log=log,
                      on_step=linear_decay(optimizers, model.config.lr_decay, args.epochs))
    return [h["seconds"] for h in history], history[-1]["train_rec"]


def torch_aae(args):
    import numpy as np

    from minivae.models.aae import AAEConfig
    from twins import TorchAAE, train_epoch_aae
    x_train, _, _, _ = _load(args.data)
    model, rng, seconds = TorchAAE(seed=args.seed), np.random.default_rng(args.seed), []
    for epoch in range(1, args.epochs + 1):
        # train.linear_decay's factor: 1 at the first epoch, lr_decay at the last
        factor = 1 + (AAEConfig.lr_decay - 1) * (epoch - 1) / max(args.epochs - 1, 1)
        start = time.perf_counter()
        loss = train_epoch_aae(model, x_train, None, args.batch_size, rng, factor)
        seconds.append(time.perf_counter() - start)
    return seconds, loss


def minivae_pixelvae(args):
    import numpy as np

    from minivae import optim
    from minivae.models.pixelvae import PixelVAE
    from minivae.train import fit
    x_train, _, x_test, _ = _load(args.data)
    build = getattr(PixelVAE, "gated", PixelVAE)  # a checkout before PixelVAE.gated (--also)
    model = build(rng=np.random.default_rng(args.seed))
    history = fit(model, optim.Adam(model.parameters(), lr=1e-3), x_train, x_test[:1000],
                  epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, binarize=True,
                  on_step=model.schedule, log=lambda message: print(message, file=sys.stderr))
    return [h["seconds"] for h in history], history[-1]["train_loss"]


def torch_pixelvae(args):
    import numpy as np

    from minivae.models.pixelvae import PixelVAE
    from pixelvae_twin import train_twin, twin
    x_train, _, x_test, _ = _load(args.data)
    model = PixelVAE.gated(rng=np.random.default_rng(args.seed))  # the twin starts from its weights
    history = train_twin(twin(model), model, x_train, x_test[:1000], args.epochs, args.batch_size,
                         1e-3, args.seed, log=lambda message: print(message, file=sys.stderr))
    return [h["seconds"] for h in history], history[-1]["train_loss"]


# name: (minivae's run, the twin's run)
MODELS = {
    "mlp-vae": (lambda args: minivae_vae(args, conv=False), lambda args: torch_vae(args, conv=False)),
    "conv-vae": (lambda args: minivae_vae(args, conv=True), lambda args: torch_vae(args, conv=True)),
    "aae": (minivae_aae, torch_aae),
    "pixelvae": (minivae_pixelvae, torch_pixelvae),
}


def run_one(args):
    """The child: one training run; prints {"seconds": [...], "loss": ...} as its last line."""
    import minivae
    if args.library == "torch":
        import torch
        torch.set_num_threads(args.threads)
    else:
        minivae.set_num_threads(args.threads)
    seconds, loss = MODELS[args.model][args.library == "torch"](args)
    print(json.dumps({"seconds": seconds, "loss": loss}))


# ---------------------------------------------------------------- the driver


def spawn(library, path, model, data, args):
    """One run in a fresh process, with `path` first on PYTHONPATH (so it trains that minivae)."""
    command = [sys.executable, __file__, "--run", library, "--model", model, "--data", data,
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--seed", str(args.seed), "--threads", str(args.threads)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{library} run of {model} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def available(name):
    """`name`, or mnist-5k where it cannot be loaded."""
    from minivae import data
    try:
        data.load(name)
        return name
    except Exception as e:  # absent and no network: say so and carry on
        print(f"{name} not available ({type(e).__name__}); using mnist-5k")
        return "mnist-5k"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="default: minivae's default")
    parser.add_argument("--also", action="append", default=[], metavar="PATH",
                        help="also time the minivae of this checkout (repeatable)")
    parser.add_argument("--run", choices=["minivae", "torch"], dest="library", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.library:
        return run_one(args)

    import minivae
    args.threads = args.threads or minivae.get_num_threads()
    try:
        import torch  # noqa: F401
        contenders = [("minivae", "minivae", ROOT), ("PyTorch", "torch", ROOT)]
    except ImportError:
        print("torch not installed: minivae alone (pip install torch)")
        contenders = [("minivae", "minivae", ROOT)]
    contenders += [(f"minivae@{Path(p).name}", "minivae", Path(p).resolve()) for p in args.also]
    data = available(args.data)
    print(f"seconds per epoch (training only), batch {args.batch_size}, {args.threads} threads "
          f"for every library, {data}, median of {args.rounds} rounds; each run a fresh process, "
          f"the runs in turn")
    for model in args.models.split(","):
        runs = {name: [] for name, _, _ in contenders}
        for r in range(args.rounds):
            turn = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
            for name, library, path in turn:
                runs[name].append(spawn(library, path, model, data, args))
        report(model, runs)
        sys.stdout.flush()


def report(model, runs):
    medians = {name: [statistics.median(epoch) for epoch in zip(*(r["seconds"] for r in rs))]
               for name, rs in runs.items()}
    epochs = len(next(iter(medians.values())))
    print(f"\n{model:<26}" + "".join(f"{'epoch ' + str(e + 1):>10}" for e in range(epochs))
          + "   last/first   last epoch's train loss")
    for name, seconds in medians.items():
        loss = statistics.median(r["loss"] for r in runs[name])
        print(f"  {name:<24}" + "".join(f"{s:10.2f}" for s in seconds)
              + f"{seconds[-1] / seconds[0]:13.2f}{loss:19.2f}")
    if "PyTorch" in medians:
        for name, seconds in medians.items():
            if name != "PyTorch":
                ratios = [s / t for s, t in zip(seconds, medians["PyTorch"])]
                print(f"  {name + ' / PyTorch':<24}" + "".join(f"{q:10.2f}" for q in ratios))


if __name__ == "__main__":
    main()
