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


# ---------------------------------------------------------------- bad arguments (issue 14)


SCRIPTS = ["mlp.py", "pca.py", "autoencoder.py", "vae.py", "aae.py", "pixelvae.py"]


def run_example(script, *args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "MPLBACKEND": "Agg"})


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_example_refuses_zero_epochs_before_any_work(script, tmp_path):
    """Before the fix `--epochs 0` trained nothing and crashed with IndexError on history[-1]
    (negative epochs the same)."""
    result = run_example(script, "--epochs", "0", "--out", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "argument --epochs: must be an integer ≥ 1, got '0'" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "argument --batch-size: must be an integer ≥ 1, got '0'"),
    (["--latent-dim", "0"], "argument --latent-dim: must be an integer ≥ 1, got '0'"),
    (["--seed", "-1"], "argument --seed: must be an integer ≥ 0, got '-1'"),
    (["--lr", "nan"], "argument --lr: must be a finite number > 0, got 'nan'"),
    (["--iwae-k", "-5"], "argument --iwae-k: must be an integer ≥ 0, got '-5'"),
])
def test_the_vae_example_names_each_bad_argument(args, message, tmp_path):
    """Before the fix --batch-size 0 raised ZeroDivisionError after the data had loaded."""
    result = run_example("vae.py", *args, "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]


def test_an_output_folder_that_cannot_be_made_is_found_before_any_work(tmp_path):
    """--out naming a file: refused with its path before the data load, not after an epoch."""
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    result = run_example("autoencoder.py", "--out", str(blocked / "run"))
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"--out: [Errno 20] cannot write into the folder {blocked / 'run'}" in result.stderr
    assert "training" not in result.stdout  # the data were never loaded


def test_the_cli_types_accept_what_they_should():
    from minivae import cli
    assert cli.positive_int("3") == 3 and cli.non_negative_int("0") == 0
    assert cli.positive_float("1e-3") == 1e-3 and cli.non_negative_float("0") == 0.0
    assert cli.int_at_least(2)("2") == 2
    for parse, text in [(cli.positive_int, "1.5"), (cli.positive_int, "-2"),
                        (cli.positive_float, "inf"), (cli.positive_float, "0"),
                        (cli.non_negative_float, "-0.1"), (cli.int_at_least(2), "1")]:
        with pytest.raises(Exception, match=f"got '{text}'"):
            parse(text)
