"""One example's configuration over several seeds: every number its metrics.json reports, as
mean ± standard deviation, so that a comparison holds only beyond the spread.

    python benchmarks/seeds.py --seeds 0 1 2 -- examples/pixelvae.py --epochs 10
    python benchmarks/seeds.py --seeds 0 1 2 -- examples/pixelvae.py --latent-dim 0 --epochs 10

Each seed is a run of the example as a user would start it, with `--seed S` added, so each lands
in its own folder (the examples name it after their flags: runs/pixelvae-seed1, ...). A seed whose
run has finished is not run again (its metrics.json is read), so an interrupted sweep continues
where it stopped. Prints a table and writes it, with every seed's numbers, to --out (default
runs/seeds/<the folder's name>.json).
"""
import argparse
import importlib.util
import json
import math
import os
import re
import statistics
import subprocess
import sys

from minivae import cli

KEYS = ["test_loss", "test_rec", "test_kl", "iwae_nll", "bits_per_dim", "active_units",
        "epoch", "seconds_training"]  # what the README's tables report; epoch: the one kept


def run_seed(example: list[str], seed: int) -> str:
    """Run the example with this seed, unless it has finished already; its run folder."""
    command = [sys.executable, *example, "--seed", str(seed)]
    folder = _folder(command)
    if os.path.exists(os.path.join(folder, "metrics.json")):
        print(f"seed {seed}: {folder} has finished, read as it is", flush=True)
        return folder
    print(f"seed {seed}: {' '.join(command[1:])}", flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"seed {seed} failed:\n{done.stderr[-3000:]}")
    return re.search(r"the run is in (\S+)$", done.stdout, re.M).group(1)


def _folder(command: list[str]) -> str:
    """The run folder the example will use, from its own parser and RUN_NAME."""
    spec = importlib.util.spec_from_file_location("example", command[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines the example; runs nothing (main is not called)
    parser = module.make_parser()
    cli.show_defaults(parser)
    parsed = parser.parse_args(command[2:])
    return parsed.out or os.path.join("runs", cli.run_name(parser, parsed, module.RUN_NAME))


def summary(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one seed)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=None)
    parser.add_argument("example", nargs=argparse.REMAINDER,
                        help="-- then the example and its flags, as you would run it")
    args = parser.parse_args()
    example = args.example[1:] if args.example[:1] == ["--"] else args.example
    if not example or not example[0].endswith(".py"):
        parser.error("give the example after --, e.g. -- examples/vae.py --epochs 5")
    if "--seed" in example:
        parser.error("--seed is this script's to set: give --seeds instead")
    runs = {seed: run_seed(example, seed) for seed in args.seeds}
    metrics = {seed: json.load(open(os.path.join(folder, "metrics.json")))
               for seed, folder in runs.items()}
    table = {}
    for key in KEYS:
        values = [m[key] for m in metrics.values() if isinstance(m.get(key), (int, float))]
        if len(values) == len(metrics) and all(math.isfinite(v) for v in values):
            table[key] = summary(values)
    print(f"\n{' '.join(example)}, seeds {', '.join(map(str, args.seeds))}: mean ± sd")
    for key, (mean, sd) in table.items():
        print(f"  {key:18s} {mean:10.3f} ± {sd:.3f}")
    name = os.path.basename(runs[args.seeds[0]]).replace(f"-seed{args.seeds[0]}", "")
    out = args.out or os.path.join("runs", "seeds", f"{name}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"example": example, "seeds": args.seeds, "runs": runs,
                   "mean_sd": table, "per_seed": {str(s): {k: m.get(k) for k in KEYS}
                                                  for s, m in metrics.items()}}, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
