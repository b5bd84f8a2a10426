"""Model selection on a held-out validation set (issue 25): fit keeps the epoch with the lowest
validation loss, the model it returns holds that epoch's parameters (in memory, in best.npz, after
a resume, through load_run), and the test numbers reported are that epoch's. Tiny runs: an MLP VAE
with 32 hidden units on 512 images.
"""
import numpy as np
import pytest

from minivae import data, optim, runs
from minivae.models.vae import VAE
from minivae.train import best_epoch, evaluate, fit

QUIET = dict(log=lambda *_: None)
SEED = 3


@pytest.fixture(scope="module")
def digits():
    (x_train, y_train), (x_test, _) = data.load("mnist-5k")
    (x_train, _), (x_valid, _) = data.hold_out(x_train[:600], y_train[:600], 88)
    return data.to_float(x_train), data.to_float(x_valid), data.to_float(x_test[:200])


def validation_losses(model, losses: list[float]):
    """fit's evaluation with the validation loss of epoch e set to losses[e - 1], so the best
    epoch is known in advance; the test numbers stay the true ones. fit evaluates the test set,
    then the validation set, every epoch."""
    calls = []

    def evaluation(x, y, rng):
        numbers = evaluate(model, x, rng)
        calls.append(x)
        if len(calls) % 2 == 0:  # the validation set's call
            numbers["loss"] = losses[len(calls) // 2 - 1]
        return numbers

    return evaluation


def train(digits, out=None, epochs=4, losses=(5.0, 1.0, 3.0, 4.0), resume=False):
    model = VAE.mlp(latent_dim=4, hidden=32, rng=np.random.default_rng(SEED))
    history = fit(model, optim.Adam(model.parameters(), lr=3e-3), digits[0], digits[2],
                  x_valid=digits[1], epochs=epochs, batch_size=64, seed=SEED, out=out,
                  resume=resume, evaluation=validation_losses(model, list(losses)), **QUIET)
    return model, history


def loss_after(model, digits, epoch: int) -> float:
    """The model's test loss with the draws fit used after `epoch`."""
    return evaluate(model, digits[2], np.random.default_rng([SEED, 2, epoch]))["loss"]


def test_fit_returns_the_best_epochs_model_and_its_test_numbers_are_that_epochs(digits, tmp_path):
    model, history = train(digits, tmp_path / "run")
    assert [h["valid_loss"] for h in history] == [5.0, 1.0, 3.0, 4.0]
    best = best_epoch(history)
    assert best["epoch"] == 2
    assert loss_after(model, digits, 2) == best["test_loss"] != history[-1]["test_loss"]
    loaded = runs.load_run(tmp_path / "run")  # best.npz: the model the run reports
    assert loss_after(loaded, digits, 2) == best["test_loss"]


def test_a_resumed_run_whose_best_epoch_came_before_reads_it_from_best_npz(digits, tmp_path):
    train(digits, tmp_path / "run", epochs=2)
    model, history = train(digits, tmp_path / "run", epochs=4, losses=(3.0, 4.0), resume=True)
    assert [h["valid_loss"] for h in history] == [5.0, 1.0, 3.0, 4.0]
    assert loss_after(model, digits, 2) == history[1]["test_loss"]


def test_without_a_file_the_best_epoch_is_kept_in_memory(digits):
    model, history = train(digits, out=None, losses=(2.0, 1.5, 0.5, 0.7))
    assert loss_after(model, digits, 3) == history[2]["test_loss"] != history[-1]["test_loss"]


def test_without_validation_the_model_is_the_last_epochs(digits):
    model = VAE.mlp(latent_dim=4, hidden=32, rng=np.random.default_rng(SEED))
    history = fit(model, optim.Adam(model.parameters(), lr=3e-3), digits[0], digits[2],
                  epochs=2, batch_size=64, seed=SEED, **QUIET)
    assert "valid_loss" not in history[-1] and best_epoch(history) is history[-1]
    assert loss_after(model, digits, 2) == history[-1]["test_loss"]


@pytest.mark.parametrize("n", [-1, 600, 601])
def test_hold_out_names_a_split_it_cannot_make(n):
    x = np.zeros((600, 28, 28), np.uint8)
    with pytest.raises(ValueError, match=f"cannot hold out {n} of 600 training images"):
        data.hold_out(x, np.zeros(600), n)


def test_hold_out_keeps_the_last_images_apart():
    x, y = np.arange(10), np.arange(10) * 2
    (x_train, y_train), (x_valid, y_valid) = data.hold_out(x, y, 3)
    assert list(x_train) == list(range(7)) and list(x_valid) == [7, 8, 9]
    assert list(y_valid) == [14, 16, 18]
    assert len(data.hold_out(x, y, 0)[1][0]) == 0
