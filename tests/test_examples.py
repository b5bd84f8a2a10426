"""Every example runs end to end on the shipped mnist-5k with a tiny budget and writes its files."""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

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


# ---------------------------------------------------------------- runs kept, errors in one line


def one_error_line(result) -> str:
    """The example failed the way a user's mistake should: status 2, one `error: ...` line, no
    traceback."""
    assert result.returncode == 2, result.stdout[-1000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error: " in line]
    assert len(errors) == 1, result.stderr
    return errors[0]


def tiny_vae(*args):
    return ["vae.py", "--epochs", "1", "--iwae-k", "0", "--latent-dim", "2", *args]


def test_a_finished_run_is_not_replaced_and_resume_needs_a_run(tmp_path):
    """Before the fix, running an example again silently started over in the same folder, and
    --resume with nothing to resume started afresh."""
    first = run_example(*tiny_vae(), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "done in" in first.stdout and (tmp_path / "runs" / "vae-z2" / "checkpoint.npz").exists()
    again = run_example(*tiny_vae(), cwd=tmp_path)
    assert ("error: runs/vae-z2 holds a finished run of 1 epoch: continue it with --resume"
            in one_error_line(again))
    nothing = run_example(*tiny_vae("--conv", "--resume"), cwd=tmp_path)
    assert "error: runs/vae-conv-z2 holds no checkpoint to resume" in one_error_line(nothing)
    assert not (tmp_path / "runs" / "vae-conv-z2" / "checkpoint.npz").exists()
    replaced = run_example(*tiny_vae("--overwrite"), cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr[-2000:]


def test_a_corrupt_checkpoint_is_one_error_line_and_debug_shows_the_traceback(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"not a zip")
    result = run_example(*tiny_vae("--resume", "--out", str(out)))
    assert "not a minivae checkpoint" in one_error_line(result)
    debug = run_example(*tiny_vae("--resume", "--out", str(out), "--debug"))
    assert debug.returncode != 0 and "Traceback" in debug.stderr


@pytest.mark.parametrize("args, message", [
    (["pixelvae.py", "--latent-dim", "0", "--prior", "vamp"],
     "--prior needs a latent: --latent-dim 0 is the PixelCNN alone"),
    (["pixelvae.py", "--latent-dim", "0", "--iwae-k-large", "1000"],
     "--iwae-k-large needs a latent"),
    (["vae.py", "--prior-components", "50"], "--prior-components is for a learned prior"),
    (["vae.py", "--c", "0.5"], "--c is the Gaussian decoder's variance"),
    (["vae.py", "--iwae-k", "0", "--iwae-images", "10"], "--iwae-images chooses the images"),
    (["vae.py", "--resume", "--overwrite"], "not allowed with argument"),
])
def test_contradictory_flags_are_refused_before_any_work(args, message, tmp_path):
    """Before the fix `pixelvae.py --latent-dim 0 --prior vamp` loaded the data and built the
    model before refusing, with a traceback."""
    result = run_example(*args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert result.stdout == "" and not (tmp_path / "runs").exists()


def test_ctrl_c_keeps_the_last_checkpoint_and_prints_the_command_that_resumes_it(tmp_path):
    """Before the fix Ctrl-C printed some 45 lines of traceback from inside the thread pool."""
    command = [sys.executable, os.path.join(EXAMPLES, "vae.py"), "--conv", "--epochs", "3",
               "--iwae-k", "0", "--latent-dim", "2"]
    run = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env={**os.environ, "MPLBACKEND": "Agg"})
    for line in run.stdout:  # wait until epoch 1 is saved: its log line comes first
        if line.startswith("epoch   1"):
            break
    history = tmp_path / "runs" / "vae-conv-z2" / "history.json"
    for _ in range(600):
        if history.exists():
            break
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err[-3000:]
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3, err
    kept = re.search(r"keeps the checkpoint of epoch (\d) of 3; resume it with:\n  (.*)", err)
    assert kept, err
    resume = shlex.split(kept.group(2))
    assert resume[-1] == "--resume" and "--conv" in resume
    finished = subprocess.run([sys.executable, *resume[1:]], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300, env={**os.environ, "MPLBACKEND": "Agg"})
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"resumed from runs/vae-conv-z2/checkpoint.npz after epoch {kept.group(1)}" in \
        finished.stdout
    assert len(json.loads(history.read_text())) == 3


def test_sample_draws_from_any_run_and_from_the_pretrained_models(tmp_path):
    run = run_example(*tiny_vae(), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    drawn = run_example("sample.py", "runs/vae-z2", "--n", "9", cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    for name in ("samples.png", "reconstructions.png", "manifold.png"):
        assert (tmp_path / "runs" / "vae-z2" / "sampled" / name).stat().st_size > 0
    pretrained = run_example("sample.py", "--pretrained", "pixelvae", "--n", "4", cwd=tmp_path)
    assert pretrained.returncode == 0, pretrained.stderr[-2000:]
    for name in ("samples.png", "reconstructions.png"):
        assert (tmp_path / "runs" / "pretrained-pixelvae" / name).stat().st_size > 0
    assert "error: no run folder 'runs/nothing'" in one_error_line(
        run_example("sample.py", "runs/nothing", cwd=tmp_path))
