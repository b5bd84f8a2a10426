"""Run folders: every example trains into one folder, and `load_run` brings the model back.

    runs/vae-conv-vamp-k50/          one run: the folder's name says the settings that differ
        checkpoint.npz               train.fit's: parameters, optimiser, and in state.json the
                                     run's settings (the model's class and its whole config)
        best.npz                     with a validation set: the best epoch's parameters
        history.json, metrics.json, *.png

    model = minivae.load_run("runs/vae-conv-vamp-k50")     # the trained model, in eval mode
    model = minivae.load_pretrained("pixelvae")            # one that ships inside the package

A model is rebuilt from its recorded config by its class's `from_config` and its parameters are
loaded (checkpoint.load): no pickle, nothing run from the file. PCA's example writes the same
kind of file (checkpoint.save_model) with its mean, components and eigenvalues.
"""
from __future__ import annotations

import json
import os

import numpy as np

from minivae import checkpoint, data
from minivae.models.aae import AAE
from minivae.models.ae import AE
from minivae.models.pca import PCA
from minivae.models.pixelvae import PixelVAE
from minivae.models.vae import VAE
from minivae.train import evaluate

MODELS = {cls.__name__: cls for cls in (PCA, AE, VAE, AAE, PixelVAE)}  # what load_run rebuilds
PRETRAINED_DIR = os.path.join(os.path.dirname(__file__), "pretrained")
PRETRAINED = {  # name -> what it is; each a run folder under minivae/pretrained/
    "vae": "the main example's MLP VAE (784-400-20, Bernoulli), 30 epochs on mnist-5k",
    "pixelvae": "examples/pixelvae.py's default PixelVAE (16-D z as feature maps, 5 gated layers), "
                "mnist-5k",
}


def checkpoint_path(run_dir: str | os.PathLike) -> str:
    """run_dir/checkpoint.npz, once sure it is there (FileNotFoundError naming the folder)."""
    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"no run folder {run_dir!r}")
    path = os.path.join(run_dir, "checkpoint.npz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir} holds no checkpoint.npz: the run finished no epoch "
                                f"(or the folder is not a run's)")
    return path


def read_settings(run_dir: str | os.PathLike) -> dict:
    """The settings a run recorded: 'model' (its class), 'config', 'dataset', 'epochs', 'seed',
    'batch_size', 'binarize', ... (train.run_settings), and 'epochs_done'."""
    path = checkpoint_path(run_dir)
    state = checkpoint.read_state(path)
    settings = state.get("settings")
    if not isinstance(settings, dict) or settings.get("model") not in MODELS:
        kind = settings.get("model") if isinstance(settings, dict) else None
        raise checkpoint.CheckpointError(
            f"{path} records no model that load_run can rebuild (model {kind!r}; it rebuilds "
            f"{', '.join(MODELS)})")
    return {**settings, "epochs_done": len(state.get("history") or [])}


def load_run(run_dir: str | os.PathLike, dtype=np.float32):
    """The model a run trained: rebuilt from the run's recorded settings, its parameters loaded
    (cast to `dtype`), in eval mode. Works on a finished or an interrupted run and on the
    pretrained models' folders. The parameters are those the run reports: of its best epoch on
    validation (best.npz) when it held out a validation set, else of its last checkpoint."""
    settings = read_settings(run_dir)
    model = MODELS[settings["model"]].from_config(settings["config"], dtype=dtype)
    best = os.path.join(os.fspath(run_dir), "best.npz")
    checkpoint.load(model, best if os.path.exists(best) else checkpoint_path(run_dir))
    if hasattr(model, "eval"):
        model.eval()
    return model


def pretrained_dir(name: str) -> str:
    """The run folder of a shipped model (PRETRAINED lists them)."""
    if name not in PRETRAINED:
        raise ValueError(f"no pretrained model {name!r}; there are: {', '.join(PRETRAINED)}")
    return os.path.join(PRETRAINED_DIR, name)


def load_pretrained(name: str, dtype=np.float32):
    """A model that ships inside the package, trained (see PRETRAINED and its metrics.json)."""
    return load_run(pretrained_dir(name), dtype)


def test_images(settings: dict, n: int | None = None) -> np.ndarray:
    """The test images of a run's data set (the first n), as the run saw them: in [0, 1], and
    with the fixed binarisation of the test set if it binarised (train.fit's)."""
    name = settings.get("dataset", "mnist-5k")  # older runs did not record it: the default
    x = data.to_float(data.load(name)[1][0])  # (N, 1, 28, 28)
    if settings.get("binarize"):
        x = data.binarize(x, np.random.default_rng([settings["seed"], 1]))
    return x[:n]


def test_loss(run_dir: str | os.PathLike, dtype=np.float64, seed: int = 0) -> float:
    """The loaded model's test loss (for the VAEs the true −ELBO: eval mode) on its run's test
    images, one z per image drawn from default_rng(seed), computed in `dtype`: in float64 the
    figure a shipped model records, which any change of the numbers anywhere in the stack moves."""
    model = load_run(run_dir, dtype)
    x = test_images(read_settings(run_dir)).astype(dtype)
    return evaluate(model, x, np.random.default_rng(seed))["loss"]


def read_metrics(run_dir: str | os.PathLike) -> dict:
    """The run's metrics.json ({} when the run never got to write one)."""
    path = os.path.join(os.fspath(run_dir), "metrics.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)
