"""Run the README's examples with their defaults and write the README's figures from what they
print: its table of run times, and the main example's row of numbers.

    python tools/readme_numbers.py             # runs them all, one after another, in a scratch
                                               # folder (about 20 minutes on two cores), then
                                               # writes docs/readme_numbers.json and README.md
    python tools/readme_numbers.py --render    # README.md from docs/readme_numbers.json alone
    python tools/readme_numbers.py --only pixelvae.py   # run again only that example's commands:
                                               # their rows are replaced and dated

The README's blocks between `<!-- NAME: made by tools/readme_numbers.py ... -->` and
`<!-- end NAME -->` are this script's output; tests/test_readme_numbers.py checks that they are
what docs/readme_numbers.json renders to, so nobody edits a figure by hand.
"""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "docs", "readme_numbers.json")
README = os.path.join(ROOT, "README.md")
MAIN = ["vae.py", "--iwae-k-large", "1000", "--out", "runs/main-example"]  # the Numbers row
COMMANDS = [  # the README's example commands, in its order, with their defaults
    ["vae.py"], ["vae.py", "--conv"], ["vae.py", "--latent-dim", "2"],
    ["vae.py", "--prior", "vamp"], ["pixelvae.py"], ["pixelvae.py", "--latent-dim", "0"],
    ["pca.py"], ["autoencoder.py"], ["autoencoder.py", "--conv"], ["aae.py", "--prior", "radial"],
    ["mlp.py"], ["sample.py", "runs/vae-conv"], ["sample.py", "--pretrained", "pixelvae"],
]


def run_all() -> dict:
    """Run MAIN and COMMANDS in a scratch folder; their wall seconds ('done in N s') and the
    main example's metrics."""
    load = round(os.getloadavg()[0], 1)  # other work on the cores before the runs: say it
    scratch = tempfile.mkdtemp(prefix="minivae-readme-")
    runs = run([MAIN, *COMMANDS], scratch)
    with open(os.path.join(scratch, "runs", "main-example", "metrics.json")) as f:
        main = json.load(f)
    return {"date": datetime.date.today().isoformat(), "cores": os.cpu_count(), "load": load,
            "machine": platform.processor() or platform.machine(),
            "main_example": {k: main[k] for k in ("test_loss", "test_rec", "test_kl", "iwae_nll",
                                                  "iwae_k", "iwae_nll_large", "iwae_k_large",
                                                  "iwae_large_images", "active_units")},
            "runs": runs[1:]}


def run_again(results: dict, script: str) -> dict:
    """The results with the rows of one example's commands measured anew, each dated, with the
    load average before it."""
    load = round(os.getloadavg()[0], 1)
    commands = [argv for argv in COMMANDS if argv[0] == script]
    if not commands:
        raise SystemExit(f"no README command runs {script}")
    again = {row["command"]: {**row, "date": datetime.date.today().isoformat(), "load": load}
             for row in run(commands, tempfile.mkdtemp(prefix="minivae-readme-"))}
    rows = [row for row in results["runs"] if row["command"] not in again] + list(again.values())
    order = ["python examples/" + " ".join(argv) for argv in COMMANDS]
    return {**results, "runs": sorted(rows, key=lambda row: order.index(row["command"]))}


def run(commands: list[list[str]], scratch: str) -> list[dict]:
    """Each command run in `scratch`, one after another: its wall seconds and run folder."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    runs = []
    for argv in commands:
        print("running", " ".join(argv), flush=True)
        result = subprocess.run([sys.executable, os.path.join(ROOT, "examples", argv[0]),
                                 *argv[1:]], cwd=scratch, env=env, capture_output=True,
                                text=True, check=True)
        done = re.search(r"^done in (\d+) s; .* (\S+)$", result.stdout, re.M)
        seconds, folder = float(done.group(1)), done.group(2)
        runs.append({"command": "python examples/" + " ".join(argv), "seconds": seconds,
                     "folder": folder})
        print(f"  {seconds:.0f} s -> {folder}", flush=True)
    return runs


def blocks(results: dict) -> dict[str, str]:
    """The README's blocks, by name, as `results` renders them."""
    m = results["main_example"]
    main = ("| the main example, `python examples/vae.py --iwae-k-large 1000` (mnist-5k, 30 "
            "epochs) | nats per image |\n| --- | --- |\n"
            f"| test −ELBO = rec + KL | {m['test_loss']:.2f} = {m['test_rec']:.2f} + "
            f"{m['test_kl']:.2f} |\n"
            f"| −log p(x) by IWAE, k = {m['iwae_k']}, the whole test set | {m['iwae_nll']:.2f} |\n"
            f"| −log p(x) by IWAE, k = {m['iwae_k_large']}, its first {m['iwae_large_images']} "
            f"images | {m['iwae_nll_large']:.2f} |\n"
            f"| active units | {m['active_units']} of 20 |")
    rows = "\n".join(f"| `{run['command']}` | `{run['folder']}` | {run['seconds']:.0f}"
                     + (f" (on {run['date']}, load {run['load']})" if "date" in run else "")
                     + " |" for run in results["runs"])
    times = (f"Run times with the defaults, measured by `tools/readme_numbers.py` on "
             f"{results['date']} ({results['cores']} cores, load average {results['load']} "
             f"before the first run, the examples one after another; "
             f"wall seconds from start to the last figure, as each example prints them at its "
             f"end; Numba's kernels were already compiled and cached, and compiling them adds a "
             f"few seconds to an example's first run in a fresh clone):\n\n"
             f"| command | its run folder | seconds |\n| --- | --- | --- |\n{rows}")
    return {"main-example": main, "run-times": times}


def render(readme: str, results: dict) -> str:
    for name, text in blocks(results).items():
        pattern = re.compile(rf"(<!-- {name}: made by tools/readme_numbers.py[^\n]*-->\n)"
                             rf".*?(<!-- end {name} -->)", re.S)
        if not pattern.search(readme):
            raise SystemExit(f"README.md has no block '{name}'")
        readme = pattern.sub(lambda m: m.group(1) + text + "\n" + m.group(2), readme)
    return readme


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", action="store_true",
                        help="rewrite README.md from docs/readme_numbers.json, running nothing")
    parser.add_argument("--only", metavar="SCRIPT",
                        help="run only this example's commands and replace their rows")
    args = parser.parse_args()
    if args.only:
        with open(RESULTS) as f:
            results = run_again(json.load(f), args.only)
        with open(RESULTS, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
    elif not args.render:
        results = run_all()
        with open(RESULTS, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
    with open(RESULTS) as f:
        results = json.load(f)
    with open(README) as f:
        readme = f.read()
    with open(README, "w") as f:
        f.write(render(readme, results))
    print(f"wrote {README}")


if __name__ == "__main__":
    main()
