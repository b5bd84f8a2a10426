"""The README's PixelVAE and learned-prior tables, mean ± sd over seeds, made from finished runs.

    python tools/seed_tables.py [--runs DIR]    # read the runs, write docs/seed_tables.json, render
    python tools/seed_tables.py --render        # only put docs/seed_tables.json into the README

Each row is an example's command, run once per seed (`python benchmarks/seeds.py --seeds 0 1 2 --
<command>` runs them, each in its own folder under runs/); a seed whose run is missing is named
with the command that makes it; a seed whose run stopped before its end (a NaN loss: its folder
holds a history but no metrics) is named in its row, which then averages the seeds that finished.
A difference between two rows is called real only when it exceeds
the sum of their standard deviations, and each table says for each row whether it does against
the rows it is held against (the PixelCNN alone and the conv VAE; N(0, I)).
"""
import argparse
import importlib.util
import json
import os
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JSON = ROOT / "docs" / "seed_tables.json"
BLOCKS = {  # the README's blocks, each between its markers (see `markers`), and their tables
    "pixelvae": ["The PixelVAE, mnist-5k, 30 epochs", "The PixelVAE, Fashion-MNIST, 2 epochs"],
    "priors": ["The MLP VAE's priors, 20-D, mnist-5k, 30 epochs",
               "The MLP VAE's priors, 2-D, mnist-5k, 30 epochs",
               "The MLP VAE's priors, Fashion-MNIST, 10 epochs"],
}
KEYS = ["test_loss", "test_rec", "test_kl", "iwae_nll", "iwae_images", "active_units", "mmd",
        "epoch", "seconds_training"]

FASHION = "--data fashion-mnist --epochs 2"
PIXEL_NLL = "−ln p(x): IWAE k = 100 on the first 100 test images (exact for the PixelCNN alone)"
VAE_NLL = "−ln p(x): IWAE k = 100 on the whole test set"
VAE = "examples/vae.py --binarize --validation 500"
PRIORS = [("N(0, I)", ""), ("mixture (K = 10)", " --prior mixture"),
          ("VampPrior (K = 50)", " --prior vamp --prior-components 50")]
AGAINST = ("PixelCNN alone", "conv VAE", "PixelVAE, N(0, I)")  # the PixelVAE rows' controls
TABLES = {  # title: (seeds, what −ln p(x) is, the rows held against, rows of (model, command))
    "The PixelVAE, mnist-5k, 30 epochs": ([0, 1, 2], PIXEL_NLL, AGAINST, [
        ("conv VAE", "examples/vae.py --conv --binarize --validation 500"),
        ("PixelCNN alone", "examples/pixelvae.py --latent-dim 0"),
        ("PixelVAE, z as one bias per gate", "examples/pixelvae.py --conditioning bias"),
        *[(f"PixelVAE, {prior}", f"examples/pixelvae.py{flags}") for prior, flags in PRIORS]]),
    "The PixelVAE, Fashion-MNIST, 2 epochs": ([0, 1], PIXEL_NLL, AGAINST, [
        ("conv VAE", f"examples/vae.py --conv --binarize --validation 500 {FASHION}"),
        ("PixelCNN alone", f"examples/pixelvae.py {FASHION} --latent-dim 0"),
        *[(f"PixelVAE, {prior}", f"examples/pixelvae.py {FASHION} --warmup 1{flags}")
          for prior, flags in PRIORS]]),
    **{f"The MLP VAE's priors, {d}, mnist-5k, 30 epochs": ([0, 1, 2], VAE_NLL, (f"{d}, N(0, I)",), [
        (f"{d}, {prior}", f"{VAE}{latent}{flags}") for prior, flags in PRIORS])
       for d, latent in [("20-D", ""), ("2-D", " --latent-dim 2")]},
    "The MLP VAE's priors, Fashion-MNIST, 10 epochs": ([0, 1], VAE_NLL, ("20-D, N(0, I)",), [
        (f"20-D, {prior}", f"{VAE} --data fashion-mnist --epochs 10{flags}")
        for prior, flags in PRIORS]),
}


def seeds_module():
    spec = importlib.util.spec_from_file_location("seeds", ROOT / "benchmarks" / "seeds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def collect(runs: Path) -> dict:
    """Every row's per-seed numbers, read from the runs' metrics.json."""
    seeds, found, missing = seeds_module(), {}, []
    os.chdir(runs)  # the examples name their folders runs/<name> from where they run
    for title, (seed_list, nll, against, rows) in TABLES.items():
        table = found[title] = {"nll": nll, "against": list(against), "rows": {}}
        for model, command in rows:
            per_seed, stopped = {}, []
            for seed in seed_list:
                folder = Path(seeds._folder(["python", *command.split(), "--seed", str(seed)]))
                if (folder / "metrics.json").exists():
                    metrics = json.loads((folder / "metrics.json").read_text())
                    per_seed[str(seed)] = {key: metrics.get(key) for key in KEYS}
                elif (folder / "history.json").exists():  # the run ended before its end
                    epochs = len(json.loads((folder / "history.json").read_text()))
                    stopped.append(f"seed {seed} stopped after epoch {epochs}")
                else:
                    missing.append(f"{command} --seed {seed}")
            table["rows"][model] = {"command": command, "seeds": per_seed, "stopped": stopped}
    if missing:
        raise SystemExit(f"runs missing; make them with python <command> (from {runs}):\n  "
                         + "\n  ".join(missing))
    return found


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def column(row: dict, key: str) -> tuple[float, float] | None:
    """Mean and sd of one number over the row's seeds; None where a run has none (the PixelCNN
    alone's MMD)."""
    values = [s[key] for s in row["seeds"].values()]
    return None if None in values else mean_sd([float(v) for v in values])


def verdict(row: dict, control: dict) -> str:
    """'−1.23, beyond the spread' or '+0.20, within it': the row's −ELBO minus the control's."""
    (a, sa), (b, sb) = column(row, "test_loss"), column(control, "test_loss")
    return f"{a - b:+.2f}, {'beyond the spread' if abs(a - b) > sa + sb else 'within it'}"


def markers(block: str) -> tuple[str, str]:
    return (f"<!-- seed-tables {block}: made by tools/seed_tables.py -->",
            f"<!-- end seed-tables {block} -->")


def render(tables: dict) -> str:
    def show(key, row, digits=2, scale=1.0, form="f"):
        figures = column(row, key)
        if figures is None:
            return "—"
        mean, sd = figures
        return f"{mean * scale:.{digits}{form}} ± {sd * scale:.{digits}{form}}"

    lines = []
    for title, table in tables.items():
        rows, against = table["rows"], table["against"]
        n = max(len(row["seeds"]) + len(row.get("stopped", [])) for row in rows.values())
        lines += [f"**{title}**, {n} seeds each, mean ± sd; {table['nll']}.", "",
                  "| model (command) | −ELBO = rec + KL | −ln p(x) | active units | MMD² to the "
                  "prior | epoch kept | minutes | " + " | ".join(f"vs {a}" for a in against) + " |",
                  "| --- | --- | --- | --- | --- | --- | --- | " + "--- | " * len(against)]
        for model, row in rows.items():
            versus = ["—" if model == a else verdict(row, rows[a]) for a in against]
            stopped = "; ".join(row.get("stopped", []))
            done = len(row["seeds"])
            model = f"{model}, {done} seed{'s' * (done != 1)} ({stopped})" if stopped else model
            lines.append(
                f"| {model} (`{row['command']}`) | {show('test_loss', row)} = "
                f"{column(row, 'test_rec')[0]:.2f} + {column(row, 'test_kl')[0]:.2f} | "
                f"{show('iwae_nll', row)} | {show('active_units', row, 1)} | {show('mmd', row, 1, form='e')} | "
                f"{show('epoch', row, 1)} | {show('seconds_training', row, 1, 1 / 60)} | "
                + " | ".join(versus) + " |")
        lines.append("")
    return "\n".join(lines).rstrip()


def render_readme(readme: str, tables: dict) -> str:
    """The README with each block replaced by its tables, rendered from `tables`."""
    for block, titles in BLOCKS.items():
        begin, end = markers(block)
        if begin not in readme or end not in readme:
            raise SystemExit(f"README.md has no {begin} ... {end} block to fill")
        head, rest = readme.split(begin, 1)
        text = render({title: tables[title] for title in titles})
        readme = f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}"
    return readme


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=ROOT,
                        help="the folder that holds runs/ (default: the checkout)")
    parser.add_argument("--render", action="store_true",
                        help="only render docs/seed_tables.json into the README")
    args = parser.parse_args()
    if not args.render:
        JSON.write_text(json.dumps(collect(args.runs.resolve()), indent=1) + "\n")
    tables = json.loads(JSON.read_text())
    readme = ROOT / "README.md"
    readme.write_text(render_readme(readme.read_text(), tables))
    print(render(tables))


if __name__ == "__main__":
    main()
