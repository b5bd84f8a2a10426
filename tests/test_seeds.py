"""benchmarks/seeds.py runs an example over seeds, each in its own folder, and reports every
number as mean ± sd; a finished seed is read, not run again."""
import json
import os
import statistics
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sweep(tmp_path):
    return subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "seeds.py"), "--seeds",
                           "0", "1", "--", os.path.join(ROOT, "examples", "vae.py"), "--epochs",
                           "1", "--iwae-k", "0", "--latent-dim", "2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MPLBACKEND": "Agg"})


def test_seeds_runs_each_seed_in_its_folder_and_reports_mean_and_sd(tmp_path):
    first = sweep(tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads((tmp_path / "runs" / "seeds" / "vae-z2.json").read_text())
    assert report["runs"] == {"0": "runs/vae-z2", "1": "runs/vae-z2-seed1"}
    losses = [report["per_seed"][s]["test_loss"] for s in ("0", "1")]
    mean, sd = report["mean_sd"]["test_loss"]
    assert losses[0] != losses[1]  # two seeds, two runs
    assert mean == pytest.approx(statistics.mean(losses)) and sd == pytest.approx(
        statistics.stdev(losses))
    again = sweep(tmp_path)
    assert again.stdout.count("has finished, read as it is") == 2, again.stdout
