"""Every example runs end to end on the shipped mnist-5k with a tiny budget and writes its files."""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

CASES = {
    "mlp": (["mlp.py", "--epochs", "2"], ["mlp.npz", "decision_boundary.png"]),
    "pca": (["pca.py", "--latent-dim", "10"],
            ["metrics.json", "eigen_images.png", "explained_variance.png"]),
    "autoencoder": (["autoencoder.py", "--epochs", "1"],
                    ["metrics.json", "history.json", "checkpoint.npz", "reconstructions.png"]),
    "vae": (["vae.py", "--epochs", "1", "--iwae-k", "2", "--latent-dim", "2"],
            ["metrics.json", "history.json", "checkpoint.npz", "samples.png", "manifold.png"]),
    "conv-vae": (["vae.py", "--conv", "--epochs", "1", "--iwae-k", "0"],
                 ["metrics.json", "reconstructions.png", "interpolations.png"]),
    "vae-vamp": (["vae.py", "--epochs", "1", "--iwae-k", "0", "--latent-dim", "2", "--prior", "vamp",
                  "--prior-components", "5"],
                 ["metrics.json", "prior_density.png", "pseudo_inputs.png", "samples.png"]),
    "pixelvae": (["pixelvae.py", "--epochs", "1", "--iwae-k", "2", "--time-samples", "1",
                  "--channels", "4", "--layers", "1", "--latent-dim", "2", "--prior", "mixture",
                  "--prior-components", "3"],
                 ["metrics.json", "samples.png", "decompressions.png", "fixed_z.png",
                  "prior_density.png", "loss.png"]),
    "pixelcnn": (["pixelvae.py", "--epochs", "1", "--iwae-k", "1", "--time-samples", "0",
                  "--channels", "4", "--layers", "1", "--latent-dim", "0"],
                 ["metrics.json", "samples.png"]),
    "aae": (["aae.py", "--epochs", "1", "--vae-epochs", "1", "--mmd-n", "200"],
            ["metrics.json", "latent.png"]),
}


@pytest.mark.parametrize("name", CASES)
def test_example_runs_and_writes_its_files(name, tmp_path):
    args, expected = CASES[name]
    out = tmp_path / name
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, args[0]), *args[1:],
                             "--out", str(out)], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for filename in expected:
        assert (out / filename).stat().st_size > 0, f"{name} did not write {filename}"
    if (out / "metrics.json").exists():
        metrics = json.loads((out / "metrics.json").read_text())
        for key in ("test_loss", "test_rec", "test_kl", "epochs", "seconds_per_epoch"):
            assert key in metrics, f"{name}: metrics.json lacks {key}"
