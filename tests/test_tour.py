"""docs/tour.py runs end to end with the fast setting, as CI runs it, and writes its figures where
it is told to (never into the package)."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

TOUR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "tour.py")
FIGURES = ["vae_loss_graph.dot", "vae_reconstructions.png", "vae_samples.png",
           "pixelcnn_receptive_fields.png", "pixelvae_samples.png", "pixelvae_pretrained.png",
           "learned_prior.png"]


def test_the_tour_runs_end_to_end(tmp_path):
    out = tmp_path / "figures"
    env = {**os.environ, "MINIVAE_TOUR_FAST": "1", "MINIVAE_TOUR_OUT": str(out),
           "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, TOUR], cwd=tmp_path, capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + "\n" + result.stderr[-3000:]
    assert "the tour took" in result.stdout
    # run as a script it prints its prose too (before: only the code's output), and the files it
    # shows by their path in the repository (before: a path relative to site-packages)
    assert "## 1. The engine: a Tensor, a Function, backward(), gradcheck" in result.stdout
    assert "# tests/test_dense_kernels.py, line" in result.stdout
    assert "pretrained PixelVAE" in result.stdout
    for name in FIGURES:
        assert (out / name).stat().st_size > 0, f"the tour did not write {name}"
    assert sorted(os.listdir(tmp_path)) == ["figures"], "the tour wrote outside its folder"
