"""The training loop's guards act on the model in memory, its evaluation is the true −ELBO, and
the examples' data protocol is reproducible (issue 22).

- After a NaN loss, or a finite loss whose gradient is NaN or infinite, the parameters in memory
  are bit for bit those of the last good step: the failing step was not applied (on disk, the last
  good checkpoint is test_train.py's business); for the AAE, the failing phase and those after it.
- fit evaluates in eval mode: the test loss it records for a PixelVAE trained with a KL warm-up,
  β ≠ 1 and free bits is the true −ELBO, rec + KL (to 1e-9 relative, float64), and the model is
  back in training mode afterwards.
- examples/vae.py --binarize and examples/pixelvae.py binarise the test set once, the same way for
  a seed: each example scores its metrics on exactly the images fit evaluated in every epoch, the
  two examples on the same images, and no training draw ever equals a test image's.
"""
import importlib.util
import os
import sys

import numpy as np
import pytest

from minivae import data, optim, train
from minivae.models.aae import AAE
from minivae.models.pixelvae import PixelVAE
from minivae.models.vae import VAE
from minivae.tensor import Function

QUIET = dict(log=lambda *_: None)


def digits(n_train=64, n_test=32, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n_train, 1, 28, 28)).astype(np.float32),
            rng.random((n_test, 1, 28, 28)).astype(np.float32))


class PoisonGradient(Function):
    """y = x, but x_bar = NaN: a finite loss whose gradient is not finite."""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, y_bar):
        return y_bar * np.nan


def fails_at(model, call, how, method="loss"):
    """Make model.<method> fail at its `call`-th call (1-based): a NaN loss or a NaN gradient.
    Returns the snapshot of the parameters taken at that call (computing a loss changes none):
    the last good ones."""
    original, calls, snapshot = getattr(model, method), [0], {}

    def failing(*args, **kwargs):
        calls[0] += 1
        out = original(*args, **kwargs)
        if calls[0] != call:
            return out
        snapshot.update({name: p.data.copy() for name, p in model.named_parameters()})
        value, *rest = out if isinstance(out, tuple) else (out,)
        value = value * np.nan if how == "loss" else PoisonGradient.apply(value)
        return (value, *rest) if rest else value

    setattr(model, method, failing)
    return snapshot


def assert_unchanged(model, snapshot):
    assert snapshot, "the failing call never came"
    for name, p in model.named_parameters():
        assert np.isfinite(p.data).all(), f"{name} holds NaN: the failing step was applied"
        np.testing.assert_array_equal(p.data, snapshot[name], err_msg=name)


@pytest.mark.parametrize("how, message", [
    ("loss", r"loss is nan at epoch 2, step 2"),
    ("gradient", r"the gradient of loss is nan \(the loss itself is [0-9.]+\) at epoch 2, step 2")])
def test_after_a_failing_step_the_parameters_in_memory_are_the_last_good_ones(how, message):
    """Five good steps (4 per epoch; the 5th call of model.loss is epoch 1's evaluation), the
    sixth step fails: the model in memory holds what step 5 left, and Adam's moments and step
    count did not move either. Before the fix, a finite loss with a NaN gradient was stepped:
    every parameter became NaN."""
    x_train, x_test = digits()
    model = VAE.mlp(latent_dim=2, hidden=8, rng=np.random.default_rng(1))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    snapshot = fails_at(model, 7, how)
    moments = {}
    original_step = optimizer.step

    def step():
        original_step()
        moments.update(m=[m.copy() for m in optimizer.buffers["m"]], t=optimizer.t)

    optimizer.step = step
    with pytest.raises(FloatingPointError, match=message):
        train.fit(model, optimizer, x_train, x_test, epochs=3, batch_size=16, seed=0, **QUIET)
    assert_unchanged(model, snapshot)
    assert optimizer.t == moments["t"] == 5
    for m, saved in zip(optimizer.buffers["m"], moments["m"]):
        np.testing.assert_array_equal(m, saved)


def test_gradient_step_refuses_a_non_finite_gradient_and_applies_nothing():
    model = VAE.mlp(latent_dim=2, hidden=8, rng=np.random.default_rng(1))
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    fails_at(model, 1, "gradient")
    with pytest.raises(FloatingPointError, match="the gradient of loss is nan"):
        train.gradient_step(model, digits()[0][:8], optimizer, np.random.default_rng(0))
    assert_unchanged(model, before)


@pytest.mark.parametrize("method, phase", [("loss", "rec"), ("disc_loss", "disc"),
                                           ("gen_loss", "gen")])
@pytest.mark.parametrize("how", ["loss", "gradient"])
def test_an_aae_phase_that_fails_is_not_applied(method, phase, how):
    """The AAE's step is three phases, each with its own optimiser: the phase that meets a NaN
    loss or gradient (at the third step) is not applied, and none after it, so the parameters in
    memory are those that phase started from."""
    rng = np.random.default_rng(0)
    x = rng.random((64, 2)).astype(np.float32)
    model = AAE.mlp(latent_dim=2, hidden=8, input_shape=(2,), rng=np.random.default_rng(1))
    optimizers = model.optimizers()
    snapshot = fails_at(model, 3, how, method)
    message = (rf"{phase} is nan at epoch 1, step 3" if how == "loss" else
               rf"the gradient of {phase} is nan \(the {phase} itself is [0-9.]+\) at epoch 1, "
               rf"step 3")
    with pytest.raises(FloatingPointError, match=message):
        train.fit(model, optimizers, x, x, epochs=1, batch_size=16, seed=0, step=model.step,
                  evaluation=model.evaluate, **QUIET)
    assert_unchanged(model, snapshot)


def test_fit_records_the_true_elbo_whatever_the_training_weights():
    """A PixelVAE in the middle of its KL warm-up, with β = 0.3 and free bits of 20 nats per
    dimension (far above its KL): its training objective is rec + w·Σ_j max(λ, KL_j) with w < 1,
    far from the −ELBO. What fit records as test_loss must be rec + KL, the −ELBO, to 1e-9; and
    the same number again when the model is evaluated after training, on the same draws."""
    x_train, x_test = digits(32, 16)
    model = PixelVAE.gated(2, channels=2, layers=1, beta=0.3, warmup=4, free_bits=20.0,
                           rng=np.random.default_rng(0), dtype=np.float64)
    x_train, x_test = x_train.astype(np.float64), x_test.astype(np.float64)
    history = train.fit(model, optim.Adam(model.parameters(), lr=1e-3), x_train, x_test, epochs=2,
                        batch_size=16, seed=0, binarize=True, on_step=model.schedule, **QUIET)
    assert model.training, "fit leaves the model in eval mode"
    assert 0 < model.kl_weight < 0.3  # still warming up: the training objective is not the ELBO
    for h in history:
        np.testing.assert_allclose(h["test_loss"], h["test_rec"] + h["test_kl"], rtol=1e-9)
        assert h["test_kl"] < 20.0 * 2  # the free bits would have charged 40 nats at least
    x_fixed = data.binarize(x_test, np.random.default_rng([0, 1]))
    again = train.evaluate(model, x_fixed, np.random.default_rng([0, 2, 2]))
    np.testing.assert_allclose(again["loss"], history[-1]["test_loss"], rtol=1e-9)
    model.train()  # and the training objective does differ here, so the test can tell
    loss, parts = model.loss(data.binarize(x_test, np.random.default_rng(1)),
                             np.random.default_rng(2))
    assert abs(loss.item() - (parts["rec"] + parts["kl"])) > 0.1


# ---------------------------------------------------------------- the examples' data protocol

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


class Stop(Exception):
    """Raised where an example starts its metrics: the data protocol is settled by then."""


def run_example(script, args, monkeypatch, x_train, x_test, tmp_path):
    """Run examples/<script>'s main() in this process on the given uint8 images, up to its first
    metric (iwae_report). Returns the test images fit evaluated each epoch, the binary training
    batches it drew, and the test images the example went on to score."""
    seen = {"evaluated": [], "train_draws": [], "scored": None}
    y = lambda x: np.zeros(len(x), np.int64)  # noqa: E731
    monkeypatch.setattr(data, "load", lambda name, root=None: ((x_train, y(x_train)),
                                                              (x_test, y(x_test))))
    evaluate, binarize = train.evaluate, data.binarize

    def recording_evaluate(model, x, rng, batch_size=500):
        seen["evaluated"].append(x.copy())
        return evaluate(model, x, rng, batch_size)

    def recording_binarize(x, rng=None):
        out = binarize(x, rng)
        if rng is not None and len(x) == len(x_train):  # a training batch (batch size = N)
            seen["train_draws"].append(out.copy())
        return out

    def scored(model, x, *args, **kwargs):
        seen["scored"] = np.array(x)
        raise Stop

    monkeypatch.setattr(train, "evaluate", recording_evaluate)
    monkeypatch.setattr(data, "binarize", recording_binarize)
    spec = importlib.util.spec_from_file_location(f"example_{script[:-3]}",
                                                  os.path.join(EXAMPLES, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "iwae_report", scored)
    monkeypatch.setattr(sys, "argv", [script, *args, "--out", str(tmp_path / script)])
    with pytest.raises(Stop):
        module.main()
    monkeypatch.undo()
    return seen


def test_the_examples_binarise_the_test_set_once_the_same_way_and_apart_from_training(
        monkeypatch, tmp_path):
    """Grey images (every pixel 128/255), so a binary image is nothing but its noise: two equal
    binary images would mean the same uniforms. One training image, so the training stream's
    first draw comes straight from the start of the run's generator (a permutation of one
    element draws nothing): a test set binarised from the training seed would repeat it."""
    x_train = np.full((1, 28, 28), 128, np.uint8)
    x_test = np.full((6, 28, 28), 128, np.uint8)
    common = ["--epochs", "2", "--batch-size", "1", "--seed", "7", "--iwae-k", "1"]
    runs = {
        "vae.py": run_example("vae.py", [*common, "--binarize", "--latent-dim", "1"],
                              monkeypatch, x_train, x_test, tmp_path),
        "pixelvae.py": run_example("pixelvae.py", [*common, "--latent-dim", "1", "--channels",
                                                   "2", "--layers", "0", "--time-samples", "0",
                                                   "--validation", "0"],  # one training image
                                   monkeypatch, x_train, x_test, tmp_path),
    }
    fixed = runs["vae.py"]["scored"]
    assert fixed.shape == (6, 1, 28, 28) and set(np.unique(fixed)) == {0.0, 1.0}
    assert len({image.tobytes() for image in fixed}) == 6, "test images share their noise"
    for script, seen in runs.items():
        assert len(seen["evaluated"]) == 2 and len(seen["train_draws"]) == 2, script
        for evaluated in seen["evaluated"]:  # fixed: the same images in every epoch
            np.testing.assert_array_equal(evaluated, fixed, err_msg=f"{script}: fit evaluated")
        np.testing.assert_array_equal(seen["scored"], fixed, err_msg=f"{script}: metrics")
        draws = np.concatenate(seen["train_draws"]).reshape(-1, 784)
        assert not (draws[0] == draws[1]).all(), f"{script}: the training draws repeat"
        for image in fixed.reshape(-1, 784):
            assert not (draws == image).all(axis=1).any(), \
                f"{script}: a training draw is a test image: the same noise"
