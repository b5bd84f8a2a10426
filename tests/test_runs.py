"""Runs can be found and reloaded (issue 20): load_run rebuilds every model an example trains from
the settings its run recorded; a run folder is never replaced or resumed by mistake; each
example's README command gets a folder of its own; constructors check their sizes and take seeds."""
import importlib.util
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

import minivae
from minivae import checkpoint, cli, data, optim, runs
from minivae.checkpoint import CheckpointError
from minivae.models.aae import AAE
from minivae.models.ae import AE
from minivae.models.pca import PCA, LinearAutoencoder
from minivae.models.pixelcnn import PixelCNN
from minivae.models.pixelvae import PixelVAE
from minivae.models.vae import VAE
from minivae.train import evaluate, fit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = {"log": lambda *_: None}


@pytest.fixture(scope="module")
def digits():
    (x_train, y_train), (x_test, y_test) = data.load("mnist-5k")
    return (data.to_float(x_train[:96]), y_train[:96], data.to_float(x_test[:40]), y_test[:40])


BUILDS = {  # name -> (builder, binarize)
    "vae-mlp": (lambda rng, x: VAE.mlp(latent_dim=3, hidden=16, rng=rng), False),
    "vae-conv-mixture": (lambda rng, x: VAE.conv(latent_dim=2, rng=rng, prior="mixture",
                                                 prior_components=3), False),
    "vae-mlp-vamp-gaussian": (lambda rng, x: VAE.mlp(latent_dim=2, hidden=8, rng=rng,
                                                     prior="vamp", prior_components=4,
                                                     prior_data=x, likelihood="gaussian",
                                                     c=0.5), False),
    "ae-mlp": (lambda rng, x: AE.mlp(latent_dim=3, hidden=16, rng=rng), False),
    "ae-conv-mse": (lambda rng, x: AE.conv(latent_dim=3, rng=rng, loss="mse"), False),
    "pixelvae-vamp": (lambda rng, x: PixelVAE.gated(2, channels=4, layers=1, prior="vamp",
                                                    prior_components=3, prior_data=x, warmup=1,
                                                    free_bits=0.1, rng=rng), True),
    "pixelvae-map": (lambda rng, x: PixelVAE.gated(2, channels=4, layers=1, conditioning="map",
                                                   rng=rng), True),
    "pixelcnn-alone": (lambda rng, x: PixelVAE.gated(0, channels=4, layers=2, kernel_size=5,
                                                     rng=rng), True),
}


@pytest.mark.parametrize("name", BUILDS)
def test_load_run_rebuilds_the_trained_model_and_its_test_loss(name, digits, tmp_path):
    """The reloaded model has the class, config and every parameter of the trained one, and
    scores the test set exactly as the run's last evaluation did (same draws, same numbers)."""
    x_train, _, x_test, _ = digits
    build, binarize = BUILDS[name]
    model = build(np.random.default_rng(0), x_train)
    history = fit(model, optim.Adam(model.parameters()), x_train, x_test, epochs=1,
                  batch_size=32, out=str(tmp_path), binarize=binarize, **QUIET)
    loaded = minivae.load_run(tmp_path)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not loaded.training
    for (key, mine), (_, theirs) in zip(model.state_dict().items(),
                                        loaded.state_dict().items()):
        np.testing.assert_array_equal(theirs, mine, err_msg=key)
    x = data.binarize(x_test, np.random.default_rng([0, 1])) if binarize else x_test
    again = evaluate(loaded, x, np.random.default_rng([0, 2, 1]))["loss"]  # fit's draws
    assert again == pytest.approx(history[-1]["test_loss"], rel=1e-6)


def test_load_run_rebuilds_the_aae_and_pca(digits, tmp_path):
    x_train, y_train, x_test, y_test = digits
    model = AAE.mlp(latent_dim=2, prior="supervised", hidden=16, mmd_n=20, rng=1)
    optimizers = model.optimizers()
    history = fit(model, optimizers, x_train, x_test, y_train=y_train, y_test=y_test, epochs=1,
                  batch_size=32, out=str(tmp_path / "aae"), step=model.step,
                  evaluation=model.evaluate, **QUIET)
    loaded = minivae.load_run(tmp_path / "aae")
    assert loaded.config == model.config and loaded.prior.conditional
    again = loaded.evaluate(x_test, y_test, np.random.default_rng([0, 2, 1]))
    assert again["rec"] == pytest.approx(history[-1]["test_rec"], rel=1e-6)

    flat = x_train.reshape(len(x_train), -1)
    pca = PCA(5).fit(flat)
    os.makedirs(tmp_path / "pca")
    checkpoint.save_model(tmp_path / "pca" / "checkpoint.npz", pca,
                          {"settings": {"model": "PCA", "config": pca.config}})
    back = minivae.load_run(tmp_path / "pca")
    np.testing.assert_array_equal(back.components_, pca.components_)
    np.testing.assert_array_equal(back.explained_variance_ratio_, pca.explained_variance_ratio_)
    np.testing.assert_array_equal(back.encode(flat), pca.encode(flat))


def test_load_run_names_what_is_wrong(digits, tmp_path):
    with pytest.raises(FileNotFoundError, match="no run folder"):
        minivae.load_run(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="holds no checkpoint.npz"):
        minivae.load_run(tmp_path)
    (tmp_path / "checkpoint.npz").write_bytes(b"half a file")
    with pytest.raises(CheckpointError, match="not a minivae checkpoint"):
        minivae.load_run(tmp_path)
    net = minivae.nn.Sequential(minivae.nn.Linear(2, 2, rng=0))  # trained, but no model class
    fit_net = tmp_path / "net"
    os.makedirs(fit_net)
    checkpoint.save_model(fit_net / "checkpoint.npz", net, {"settings": {"model": "Sequential"}})
    with pytest.raises(CheckpointError, match="no model that load_run can rebuild.*Sequential"):
        minivae.load_run(fit_net)


def test_minivae_load_reads_an_examples_checkpoint(digits, tmp_path):
    """The README's minivae.load(model, path) on a run's checkpoint.npz (it failed before: the
    training checkpoint keeps its parameters under 'model/')."""
    x_train, _, x_test, _ = digits
    model = VAE.mlp(latent_dim=3, hidden=16, rng=0)
    fit(model, optim.Adam(model.parameters()), x_train, x_test, epochs=1, batch_size=32,
        out=str(tmp_path), **QUIET)
    fresh = minivae.load(VAE.mlp(latent_dim=3, hidden=16, rng=1), tmp_path / "checkpoint.npz")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[key], value)
    with pytest.raises(CheckpointError, match="does not fit"):
        minivae.load(VAE.mlp(latent_dim=4, hidden=16, rng=1), tmp_path / "checkpoint.npz")


def test_the_settings_tell_an_mlp_from_a_conv_vae():
    """Both were recorded as 'VAE' with the same config before: nothing said which network."""
    assert VAE.mlp(rng=0).config != VAE.conv(rng=0).config
    assert VAE.from_config(VAE.conv(rng=0).config).encoder[0].__class__.__name__ == "Conv2d"
    assert AE.mlp(rng=0).config != AE.conv(rng=0).config


# ---------------------------------------------------------------- one folder, never lost


def train(out, digits, model=None, **kw):
    x_train, _, x_test, _ = digits
    model = model or VAE.mlp(latent_dim=3, hidden=16, rng=0)
    return fit(model, optim.Adam(model.parameters()), x_train, x_test, batch_size=32,
               out=str(out), **{"epochs": 1, **QUIET, **kw})


def test_a_run_is_never_replaced_without_resume_or_overwrite(digits, tmp_path):
    train(tmp_path, digits, epochs=2)
    before = (tmp_path / "checkpoint.npz").read_bytes()
    with pytest.raises(FileExistsError, match=f"{tmp_path} holds a finished run of 2 epochs: "
                                              f"continue it with --resume"):
        train(tmp_path, digits, epochs=2)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    history = train(tmp_path, digits, epochs=1, overwrite=True)  # replaced, as asked
    assert len(history) == 1 and (tmp_path / "checkpoint.npz").read_bytes() != before


def test_an_interrupted_run_is_kept_too(digits, tmp_path):
    def interrupt(epochs_done):  # Ctrl-C in the third epoch
        if epochs_done > 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, digits, epochs=5, on_step=interrupt)
    with pytest.raises(FileExistsError, match="an interrupted run, 2 of 5 epochs done"):
        train(tmp_path, digits, epochs=5)
    assert len(train(tmp_path, digits, epochs=5, resume=True)) == 5


def test_resume_needs_something_to_resume_and_not_overwrite_too(digits, tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} holds no checkpoint to resume"):
        train(tmp_path, digits, resume=True)
    assert not (tmp_path / "checkpoint.npz").exists()
    with pytest.raises(ValueError, match="resume and overwrite contradict"):
        train(tmp_path, digits, resume=True, overwrite=True)


def test_resuming_with_another_network_or_batch_size_names_each_difference(digits, tmp_path):
    """Before: a list of two dozen missing keys, or a weight's shape."""
    train(tmp_path, digits)
    x_train, _, x_test, _ = digits
    conv = VAE.conv(latent_dim=3, rng=0)
    with pytest.raises(ValueError, match=r"config\.network: mlp then, conv now; config\.hidden: "
                                         r"16 then, 400 now"):
        fit(conv, optim.Adam(conv.parameters()), x_train, x_test, epochs=2, batch_size=32,
            out=str(tmp_path), resume=True, **QUIET)
    mlp = VAE.mlp(latent_dim=3, hidden=16, rng=0)
    with pytest.raises(ValueError, match=r"batch_size: 32 then, 16 now") as info:
        fit(mlp, optim.Adam(mlp.parameters()), x_train, x_test, epochs=2, batch_size=16,
            out=str(tmp_path), resume=True, **QUIET)
    assert "model/" not in str(info.value)


# ---------------------------------------------------------------- the README's examples


def load_example(script: str):
    spec = importlib.util.spec_from_file_location(script[:-3], os.path.join(ROOT, "examples",
                                                                            script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BASES = {script: load_example(script).RUN_NAME
         for script in ("vae.py", "pixelvae.py", "autoencoder.py", "aae.py", "pca.py")}


def readme_runs() -> list[tuple[str, list[str]]]:
    """(script, argv) of every training example the README shows, main command included."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    found = []
    for line in readme.splitlines():
        m = re.search(r"python examples/(\w+\.py)([^#&]*)", line)
        if m and m.group(1) in BASES and line.startswith(("python ", "pip install")):
            argv = [a for a in shlex.split(m.group(2)) if a not in ("[--conv]",)]
            found.append((m.group(1), argv))
            if "[--conv]" in m.group(2):
                found.append((m.group(1), argv + ["--conv"]))
    return found


def test_every_readme_example_gets_a_folder_of_its_own():
    """Before: vae.py, vae.py --prior vamp and vae.py --latent-dim 2 all wrote runs/vae, and the
    PixelCNN control destroyed the PixelVAE run it is compared with."""
    folders = {}
    for script, argv in readme_runs():
        parser = load_example(script).make_parser()
        cli.show_defaults(parser)
        args = parser.parse_args(argv)
        folder = cli.run_name(parser, args, BASES[script])
        assert folder not in folders, f"{script} {argv} and {folders[folder]} share runs/{folder}"
        folders[folder] = (script, argv)
    assert {"vae", "vae-conv", "vae-z2", "vae-vamp", "pixelvae", "pixelvae-z0"} <= set(folders)
    assert len(folders) >= 10


def test_a_run_name_leaves_out_what_resume_may_change():
    parser = load_example("vae.py").make_parser()
    name = lambda *argv: cli.run_name(parser, parser.parse_args(list(argv)), "vae")
    assert name() == name("--epochs", "3", "--iwae-k", "5", "--resume") == "vae"
    assert name("--conv", "--prior", "vamp", "--prior-components", "50") == "vae-conv-vamp-k50"
    assert name("--data", "fashion-mnist", "--seed", "2") == "vae-fashion-mnist-seed2"


# ---------------------------------------------------------------- constructors


@pytest.mark.parametrize("build, message", [
    (lambda: VAE.mlp(latent_dim=0), "VAE: latent_dim must be a positive integer, got 0"),
    (lambda: VAE.conv(latent_dim=-2), "VAE: latent_dim must be a positive integer, got -2"),
    (lambda: VAE.mlp(hidden=0), "VAE: hidden must be a positive integer, got 0"),
    (lambda: VAE.mlp(c=0.0, likelihood="gaussian"), "VAE: c must be a finite number > 0"),
    (lambda: AE.mlp(latent_dim=0), "AE.mlp: latent_dim must be a positive integer, got 0"),
    (lambda: AE.conv(latent_dim=1.5), "AE.conv: latent_dim must be a positive integer"),
    (lambda: AAE.mlp(hidden=0), "AAE.mlp: hidden must be a positive integer, got 0"),
    (lambda: PixelVAE.gated(-1), "PixelVAE: latent_dim must be an integer ≥ 0, got -1"),
    (lambda: PixelCNN(channels=0), "channels=0"),
    (lambda: LinearAutoencoder(10, 0), "need 1 <= k <= D, got k=0"),
    (lambda: VAE.mlp(rng="seed"), "VAE.mlp: rng must be a numpy.random.Generator, an integer "
                                  "seed ≥ 0 or None, got 'seed'"),
    (lambda: AE.conv(rng=-1), "AE.conv: rng must be"),
    (lambda: PixelCNN(rng=1.0), "PixelCNN: rng must be"),
])
def test_constructors_check_their_arguments_by_name(build, message):
    """Before: VAE.mlp(latent_dim=0) raised ZeroDivisionError, an int rng failed deep inside."""
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


@pytest.mark.parametrize("build", [
    lambda rng: VAE.mlp(latent_dim=2, hidden=8, rng=rng),
    lambda rng: VAE.conv(latent_dim=2, rng=rng, prior="mixture", prior_components=2),
    lambda rng: AE.conv(latent_dim=2, rng=rng),
    lambda rng: AAE.mlp(hidden=8, rng=rng),
    lambda rng: PixelVAE.gated(2, channels=4, layers=1, rng=rng),
    lambda rng: LinearAutoencoder(6, 2, rng=rng),
    lambda rng: minivae.nn.Conv2d(1, 2, 3, rng=rng),
])
def test_an_int_seed_is_the_generator_of_that_seed(build):
    by_seed, by_generator = build(7), build(np.random.default_rng(7))
    for (key, a), (_, b) in zip(by_seed.state_dict().items(), by_generator.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=key)


# ---------------------------------------------------------------- the pretrained models


@pytest.mark.parametrize("name", runs.PRETRAINED)
def test_a_pretrained_model_scores_what_it_recorded(name):
    """The shipped model's test −ELBO on mnist-5k, recomputed in float64, is the one recorded
    beside it (tools/make_pretrained.py): a numerical change anywhere in the stack moves it."""
    recorded = runs.read_metrics(runs.pretrained_dir(name))["check"]["test_loss_float64"]
    assert runs.test_loss(runs.pretrained_dir(name)) == pytest.approx(recorded, abs=1e-4)


def test_the_pretrained_pixelvae_samples_and_decompresses():
    model = minivae.load_pretrained("pixelvae")
    rng = np.random.default_rng(0)
    images = model.sample(4, rng)
    assert images.shape == (4, 1, 28, 28) and set(np.unique(images)) <= {0.0, 1.0}
    x = runs.test_images(runs.read_settings(runs.pretrained_dir("pixelvae")), 4)
    assert model.reconstruct(x, rng).shape == x.shape
    with pytest.raises(ValueError, match="no pretrained model 'vampire'; there are: vae, "
                                         "pixelvae"):
        minivae.load_pretrained("vampire")


# ---------------------------------------------------------------- an edit reaches the examples


def test_the_examples_import_the_source_in_this_checkout():
    """`python examples/x.py` puts examples/ first on sys.path; with the README's non-editable
    install it then imported a copy in site-packages, and an edit to minivae/ never showed."""
    probe = ("import sys; sys.path[0] = sys.argv[1]; import minivae, os; "
             "print(os.path.realpath(minivae.__file__))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    found = subprocess.run([sys.executable, "-c", probe, os.path.join(ROOT, "examples")],
                           capture_output=True, text=True, env=env, cwd=ROOT + "/examples",
                           check=True).stdout.strip()
    assert found.startswith(os.path.realpath(ROOT) + os.sep), (
        f"examples import minivae from {found}: install it editable (pip install -e .)")
