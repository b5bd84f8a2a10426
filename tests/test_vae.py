"""The VAE and AE end to end: exact gradients, training, determinism, checkpoints, guards."""
import json
import os

import numpy as np
import pytest

from minivae import data, optim
from minivae.models.ae import AE
from minivae.models.vae import VAE
from minivae.tensor import Tensor
from minivae.train import fit


@pytest.fixture(scope="module")
def digits():
    (x_train, _), (x_test, _) = data.load("mnist-5k")
    return data.to_float(x_train[:512]), data.to_float(x_test[:256])


def check_param_grads(loss_fn, params, rng, n_entries=40, eps=1e-6):
    """Autodiff gradient of loss_fn() against central differences, on random parameter entries."""
    for p in params:
        p.grad = None
    loss_fn().backward()
    for p in params:
        for _ in range(max(1, n_entries // len(params))):
            i = tuple(rng.integers(0, n) for n in p.shape)
            original = p.data[i]
            p.data[i] = original + eps
            plus = loss_fn().item()
            p.data[i] = original - eps
            minus = loss_fn().item()
            p.data[i] = original
            numerical = (plus - minus) / (2 * eps)
            assert p.grad[i] == pytest.approx(numerical, rel=1e-5, abs=1e-7), \
                f"autodiff {p.grad[i]} vs numerical {numerical} at {i} of a {p.shape} parameter"


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_loss_gradient_matches_finite_differences(likelihood, digits):
    rng = np.random.default_rng(0)
    model = VAE.mlp(latent_dim=2, hidden=5, rng=rng, dtype=np.float64, likelihood=likelihood)
    x = Tensor(digits[0][:3].astype(np.float64))
    # a fixed eps (the same generator state at every call) makes the loss a deterministic function
    loss_fn = lambda: model.loss(x, np.random.default_rng(7))[0]
    check_param_grads(loss_fn, model.parameters(), rng)


def test_vae_loss_is_rec_plus_kl_in_nats_per_image(digits):
    model = VAE.mlp(rng=np.random.default_rng(0))
    loss, parts = model.loss(Tensor(digits[0][:64]), np.random.default_rng(0))
    assert loss.item() == pytest.approx(parts["rec"] + parts["kl"], rel=1e-6)
    # an untrained Bernoulli decoder predicts about 0.5 per pixel: about 784·ln 2 nats per image
    assert 0.5 * 784 * np.log(2) < parts["rec"] < 2 * 784 * np.log(2)
    assert parts["kl"] >= 0


@pytest.mark.parametrize("build", [VAE.mlp, AE.mlp])
def test_loss_falls_within_a_few_steps(build, digits):
    x_train, _ = digits
    rng = np.random.default_rng(0)
    model = build(rng=rng)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for step in range(15):
        loss, _ = model.loss(Tensor(x_train[:128]), rng)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def train_small(out, epochs, resume=False, seed=3, digits=None):
    model = VAE.mlp(latent_dim=4, hidden=32, rng=np.random.default_rng(seed))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    history = fit(model, opt, digits[0], digits[1], epochs=epochs, batch_size=64, seed=seed,
                  out=out, resume=resume, binarize=True, log=lambda *_: None)
    return model, history


def test_same_seed_gives_bit_identical_history(tmp_path, digits):
    _, a = train_small(None, 2, digits=digits)
    _, b = train_small(None, 2, digits=digits)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(a) == strip(b)


def test_resume_continues_exactly(tmp_path, digits):
    straight, h_straight = train_small(str(tmp_path / "a"), 3, digits=digits)
    train_small(str(tmp_path / "b"), 1, digits=digits)  # interrupted after one epoch
    resumed, h_resumed = train_small(str(tmp_path / "b"), 3, resume=True, digits=digits)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(h_resumed) == strip(h_straight)
    for (name, p), q in zip(straight.named_parameters(), resumed.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    saved = json.loads((tmp_path / "b" / "history.json").read_text())
    assert [r["epoch"] for r in saved] == [1, 2, 3]


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, digits):
    out = str(tmp_path / "run")
    model, _ = train_small(out, 1, digits=digits)
    checkpoint = os.path.join(out, "checkpoint.npz")
    good = open(checkpoint, "rb").read()
    model.decoder[-2].bias.data[:] = np.nan  # poison the decoder
    with pytest.raises(FloatingPointError, match=r"loss is nan at epoch 1, step 1.*checkpoint"):
        fit(model, optim.Adam(model.parameters()), digits[0], digits[1], epochs=2,
            batch_size=64, out=out, overwrite=True, log=lambda *_: None)
    assert open(checkpoint, "rb").read() == good


@pytest.mark.parametrize("build", [VAE.mlp, AE.mlp])
def test_wrong_input_shape_gets_a_clear_error(build):
    model = build(rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\).*\(4, 784\)"):
        model.loss(Tensor(np.zeros((4, 784), np.float32)), np.random.default_rng(0))


def test_unknown_likelihood_is_refused():
    with pytest.raises(ValueError, match="likelihood"):
        VAE.mlp(likelihood="poisson")


def test_sample_reconstruct_interpolate_shapes(digits):
    model = VAE.mlp(latent_dim=3, rng=np.random.default_rng(0))
    x = digits[1][:4]
    assert model.sample(5, np.random.default_rng(0)).shape == (5, 1, 28, 28)
    r = model.reconstruct(x)
    assert r.shape == x.shape and r.min() >= 0 and r.max() <= 1
    path = model.interpolate(x[:2], x[2:], steps=7)
    assert path.shape == (2, 7, 1, 28, 28)
    np.testing.assert_allclose(path[:, 0], model.reconstruct(x[:2]), atol=1e-6)
