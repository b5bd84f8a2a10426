"""Layers, optimisers and checkpoints: nn.py, optim.py, checkpoint.py."""
import math
import os
import re

import numpy as np
import pytest

import minivae
from minivae import functional as F
from minivae import nn
from minivae.optim import SGD, Adam
from minivae.tensor import Tensor


def two_moons(n: int, rng: np.random.Generator, noise: float = 0.1):
    """Two interleaved half circles in 2-D with labels 0 and 1."""
    angle = rng.uniform(0, np.pi, n)
    label = rng.integers(0, 2, n)
    x = np.where(label[:, None] == 0,
                 np.stack([np.cos(angle), np.sin(angle)], 1),
                 np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], 1))  # (n, 2)
    return (x + noise * rng.standard_normal((n, 2))).astype(np.float32), label.astype(np.float32)


def mlp(rng, dtype=np.float32) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 16, rng=rng, dtype=dtype), nn.Tanh(),
                         nn.Linear(16, 16, rng=rng, dtype=dtype), nn.ReLU(),
                         nn.Linear(16, 1, rng=rng, dtype=dtype))


class AutoEncoder(nn.Module):
    """A nested module, for parameter names like `encoder.0.weight`."""

    def __init__(self, rng):
        self.encoder = nn.Sequential(nn.Linear(4, 3, rng=rng), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(3, 4, rng=rng, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


# ---------------------------------------------------------------- training end to end


def test_mlp_learns_two_moons_with_adam():
    rng = np.random.default_rng(0)
    x, label = two_moons(256, rng)
    model = mlp(rng)
    optimizer = Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(x)[:, 0], label)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05, f"final loss {loss.item():.4f}"
    with minivae.no_grad():
        accuracy = np.mean((model(x).data[:, 0] > 0) == label)
    assert accuracy > 0.98
    assert all(p.dtype == np.float32 for p in model.parameters())


# ---------------------------------------------------------------- a layer's activation, and Sequential


MODULES = {"relu": nn.ReLU(), "tanh": nn.Tanh(), "leaky_relu": nn.LeakyReLU(0.2), "sigmoid": nn.Sigmoid()}


@pytest.mark.parametrize("activation", list(MODULES))
@pytest.mark.parametrize("layer", ["linear", "conv", "conv_transpose"])
def test_a_layers_activation_is_the_layer_then_the_activation_module(activation, layer):
    """Linear(..., activation=a) computes, forward and backward, what the plain layer followed by
    the activation's own module computes: one op instead of two."""
    rng = np.random.default_rng(1)
    make = {"linear": lambda **kw: nn.Linear(5, 7, **kw),
            "conv": lambda **kw: nn.Conv2d(2, 3, 3, 2, 1, **kw),
            "conv_transpose": lambda **kw: nn.ConvTranspose2d(2, 3, 3, 2, 1, 1, **kw)}[layer]
    fused = make(rng=np.random.default_rng(2), dtype=np.float64, activation=activation, slope=0.2)
    plain = nn.Sequential(make(rng=np.random.default_rng(2), dtype=np.float64), MODULES[activation])
    x_data = rng.standard_normal((8, 5) if layer == "linear" else (4, 2, 5, 5))
    y_bar = None  # random, non-uniform: drawn once the output's shape is known

    def run(net):
        x = Tensor(x_data, requires_grad=True)
        y = net(x)
        y.backward(y_bar)
        return [y.data, x.grad] + [p.grad for p in net.parameters()]

    y_bar = rng.standard_normal(fused(Tensor(x_data)).shape)
    for mine, expected in zip(run(fused), run(plain)):
        np.testing.assert_allclose(mine, expected, rtol=1e-12, atol=1e-15)


def test_sequential_runs_every_module_as_it_is_and_names_a_layers_activation_a_place():
    """No hidden fusion: a ReLU module's own forward runs (its op ends the graph); a layer with an
    activation takes two places, so the keys are those of PyTorch's Linear, ReLU."""
    rng = np.random.default_rng(1)
    pair = nn.Sequential(nn.Linear(5, 7, rng=rng), nn.ReLU())
    assert pair(Tensor(np.ones((2, 5), np.float32)))._fn is F.ReLUOp
    fused = nn.Sequential(nn.Flatten(), nn.Linear(5, 7, rng=rng, activation="relu"),
                          nn.Linear(7, 2, rng=rng))
    assert fused(Tensor(np.ones((2, 5), np.float32))).shape == (2, 2)
    assert list(fused.state_dict()) == ["1.weight", "1.bias", "3.weight", "3.bias"]
    assert fused[3] is list(fused.children())[2] and len(fused) == 3  # place 3 = key '3.'
    assert fused[-1] is fused[3]
    with pytest.raises(IndexError, match="no layer at place 2; its places are 0, 1, 3"):
        fused[2]  # the activation's place: it is inside layer 1
    assert "activation='relu'" in repr(fused)


def test_a_layer_and_an_op_refuse_an_unknown_activation():
    with pytest.raises(ValueError, match="activation must be one of 'identity', 'relu'.*got 'gelu'"):
        nn.Linear(2, 3, activation="gelu")
    for op in (lambda: F.linear(np.ones((1, 2)), np.ones((3, 2)), activation="gelu"),
               lambda: F.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), activation="Relu"),
               lambda: F.conv_transpose2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), activation="")):
        with pytest.raises(ValueError, match="activation must be one of"):  # in either door
            op()


# ---------------------------------------------------------------- optimisers, by hand


def quadratic_step(optimizer, p: nn.Parameter) -> None:
    """One step on L = ½ Σ p², whose gradient is p."""
    optimizer.zero_grad()
    (0.5 * (p * p).sum()).backward()
    optimizer.step()


def test_sgd_with_momentum_and_weight_decay_matches_hand_computed_steps():
    # lr = 0.1, μ = 0.9, λ = 0.01 on L = ½p²:  g = p + λp = 1.01p;  b = μb + g;  p <- p − lr·b.
    # t=1: b = 1.01·p0                        p1 = p0 − 0.101·p0              = 0.899·p0
    # t=2: b = 0.909·p0 + 1.01·0.899·p0 = 1.81699·p0;  p2 = (0.899 − 0.181699)·p0 = 0.717301·p0
    # t=3: b = 0.9·1.81699·p0 + 1.01·0.717301·p0 = 2.35976501·p0
    #      p3 = (0.717301 − 0.235976501)·p0 = 0.481324499·p0
    p0 = np.array([1.0, -2.0, 0.5])
    p = nn.Parameter(p0.copy())
    optimizer = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    for expected in [0.899, 0.717301, 0.481324499]:
        quadratic_step(optimizer, p)
        np.testing.assert_allclose(p.data, expected * p0, rtol=1e-12)


def test_plain_sgd_matches_hand_computed_steps_in_float32():
    p = nn.Parameter(np.array([2.0, -4.0], dtype=np.float32))
    optimizer = SGD([p], lr=0.25)
    for expected in [1.5, 1.125, 0.84375]:  # p <- p − 0.25·p = 0.75·p
        quadratic_step(optimizer, p)
        np.testing.assert_array_equal(p.data, np.float32(expected) * np.array([1, -2], np.float32))
    assert p.dtype == np.float32


def test_adam_with_a_constant_gradient_moves_lr_per_step():
    # With g constant: m_t = (1 − β1ᵗ)g and v_t = (1 − β2ᵗ)g², so m̂ = g, v̂ = g², and every
    # step is lr·g / (|g| + ε): p3 = p0 − 3·lr·g / (|g| + ε).
    g = np.array([0.5, -2.0, 1e-3])
    p = nn.Parameter(np.zeros(3))
    optimizer = Adam([p], lr=0.01, eps=1e-8)
    for _ in range(3):
        optimizer.zero_grad()
        (p * g).sum().backward()
        optimizer.step()
    np.testing.assert_allclose(p.data, -3 * 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)


def test_adam_with_weight_decay_matches_hand_computed_steps():
    # Kingma & Ba, with PyTorch's L2 weight decay: g = p + λp on L = ½p², lr = 0.1,
    # β = (0.9, 0.999), ε = 1e-8, λ = 0.1, from p0 = 1:
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    g1 = 1.1 * 1.0
    m1, v1 = 0.1 * g1, 0.001 * g1**2
    p1 = 1.0 - lr * (m1 / (1 - b1)) / (math.sqrt(v1 / (1 - b2)) + eps)
    g2 = 1.1 * p1
    m2, v2 = b1 * m1 + 0.1 * g2, b2 * v1 + 0.001 * g2**2
    p2 = p1 - lr * (m2 / (1 - b1**2)) / (math.sqrt(v2 / (1 - b2**2)) + eps)
    g3 = 1.1 * p2
    m3, v3 = b1 * m2 + 0.1 * g3, b2 * v2 + 0.001 * g3**2
    p3 = p2 - lr * (m3 / (1 - b1**3)) / (math.sqrt(v3 / (1 - b2**3)) + eps)

    p = nn.Parameter(np.array([1.0]))
    optimizer = Adam([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=0.1)
    for expected in [p1, p2, p3]:
        quadratic_step(optimizer, p)
        np.testing.assert_allclose(p.data, [expected], rtol=1e-12)
    assert p1 == pytest.approx(0.9, abs=1e-7) and p3 < p2 < p1


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps)])
def test_optimisers_update_non_contiguous_parameters(make):
    p = nn.Parameter(np.ones((3, 2)).T)  # a transposed view: not C-contiguous
    q = nn.Parameter(np.ones((2, 3)))
    optimizer = make([p, q])
    p.grad, q.grad = np.ones((2, 3)), np.ones((2, 3))
    optimizer.step()
    assert (p.data < 1).all()
    np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: Adam(ps, lr=0.1)], ids=["sgd", "adam"])
def test_an_optimiser_resumed_from_its_state_dict_continues_the_same_trajectory(make):
    p, resumed_p = nn.Parameter(np.array([1.0, -2.0])), nn.Parameter(np.zeros(2))
    optimizer = make([p])
    for _ in range(2):
        quadratic_step(optimizer, p)
    resumed_p.data = p.data.copy()
    resumed = make([resumed_p])
    resumed.load_state_dict(optimizer.state_dict())
    assert resumed.t == 2
    for _ in range(2):
        quadratic_step(optimizer, p)
        quadratic_step(resumed, resumed_p)
    np.testing.assert_array_equal(resumed_p.data, p.data)

    before = resumed.state_dict()
    bad = {**optimizer.state_dict(), "extra.0": np.zeros(2)}
    with pytest.raises(KeyError, match="extra.0"):
        resumed.load_state_dict(bad)
    key = next(k for k in before if k != "t")
    with pytest.raises(ValueError, match=re.escape(key)):
        resumed.load_state_dict({**optimizer.state_dict(), key: np.zeros(3)})
    assert_same_state(resumed.state_dict(), before)


def test_optimisers_skip_parameters_without_gradients_and_reject_bad_arguments():
    p, q = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    q.grad = np.ones(2)
    for optimizer in [SGD([p, q], lr=0.1), Adam([p, q])]:
        optimizer.step()
    np.testing.assert_array_equal(p.data, 1)
    with pytest.raises(ValueError, match="empty"):
        Adam([])
    with pytest.raises(ValueError, match="learning rate"):
        SGD([p], lr=0)


# ---------------------------------------------------------------- state and checkpoints


def assert_same_state(a: dict, b: dict):
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_state_dict_names_and_copies():
    model = AutoEncoder(np.random.default_rng(0))
    state = model.state_dict()
    assert list(state) == ["encoder.0.weight", "encoder.0.bias", "decoder.0.weight"]
    assert state["encoder.0.weight"].shape == (3, 4)
    state["encoder.0.weight"][:] = 0  # a copy: the model is untouched
    assert (model.encoder[0].weight.data != 0).any()


def test_save_and_load_round_trip_exactly(tmp_path):
    source, target = AutoEncoder(np.random.default_rng(0)), AutoEncoder(np.random.default_rng(1))
    path = tmp_path / "model.npz"
    minivae.save(source, path)
    minivae.save(source, path)  # overwriting is fine
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    assert minivae.load(target, path) is target
    assert_same_state(target.state_dict(), source.state_dict())
    x = Tensor(np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32))
    np.testing.assert_array_equal(target(x).data, source(x).data)

    fresh = AutoEncoder(np.random.default_rng(3))
    fresh.load_state_dict(source.state_dict())
    assert_same_state(fresh.state_dict(), source.state_dict())


def bad_states(model):
    """(what is wrong, the key to name, the bad state) for each kind of mistake."""
    missing = model.state_dict()
    del missing["encoder.0.bias"]
    unexpected = model.state_dict()
    unexpected["encoder.1.weight"] = np.ones((2, 2), np.float32)
    misshaped = model.state_dict()  # the last key, so writing as one goes would show
    misshaped["decoder.0.weight"] = np.ones((3, 4), np.float32)
    return [("missing", "encoder.0.bias", missing),
            ("unexpected", "encoder.1.weight", unexpected),
            ("misshaped", "decoder.0.weight", misshaped)]


@pytest.mark.parametrize("kind", ["missing", "unexpected", "misshaped"])
@pytest.mark.parametrize("via", ["load_state_dict", "file"])
def test_a_bad_checkpoint_raises_naming_the_key_and_changes_nothing(kind, via, tmp_path):
    model = AutoEncoder(np.random.default_rng(0))
    other = AutoEncoder(np.random.default_rng(1))
    _, key, state = next(case for case in bad_states(other) if case[0] == kind)
    before = model.state_dict()
    with pytest.raises((KeyError, ValueError), match=key.replace(".", r"\.")):
        if via == "file":
            np.savez(tmp_path / "bad.npz", **state)
            minivae.load(model, tmp_path / "bad.npz")
        else:
            model.load_state_dict(state)
    assert_same_state(model.state_dict(), before)


# ---------------------------------------------------------------- Linear and shape errors


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        F.matmul(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5))))
    with pytest.raises(ValueError, match=r"\(3,\).*\(3, 2\)"):
        F.matmul(Tensor(np.ones(3)), Tensor(np.ones((3, 2))))


def test_linear_shape_mismatch_names_both_shapes():
    layer = nn.Linear(3, 2, rng=np.random.default_rng(0))
    for x in [np.ones((4, 5)), np.ones(3), np.ones((2, 4, 3))]:
        with pytest.raises(ValueError, match=re.escape(str(x.shape)) + r".*\(2, 3\)"):
            layer(Tensor(x))
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(2, 3\)"):
        F.linear(Tensor(np.ones((4, 5))), Tensor(np.ones((2, 3))))


def test_linear_init_matches_pytorch_bounds():
    rng = np.random.default_rng(0)
    layer = nn.Linear(256, 300, rng=rng)
    bound = 1 / math.sqrt(256)
    for p in (layer.weight, layer.bias):
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.99 * bound  # uniform over the whole range
    assert abs(layer.weight.data.mean()) < 0.02 * bound
    assert layer.weight.shape == (300, 256) and layer.bias.shape == (300,)
    again = nn.Linear(256, 300, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(again.weight.data, layer.weight.data)  # the rng decides
    no_bias = nn.Linear(4, 2, bias=False)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]


def test_linear_computes_x_times_w_transpose_plus_b():
    layer = nn.Linear(3, 2, rng=np.random.default_rng(0), dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((4, 3))
    np.testing.assert_allclose(layer(Tensor(x)).data,
                               x @ layer.weight.data.T + layer.bias.data, rtol=1e-12)


# ---------------------------------------------------------------- modules


def test_sequential_repr():
    model = nn.Sequential(nn.Linear(2, 3, rng=np.random.default_rng(0)), nn.ReLU(),
                          nn.Sequential(nn.Linear(3, 1, bias=False), nn.LeakyReLU(0.2)),
                          nn.Unflatten(1, (1, 1)))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Linear(in_features=3, out_features=1, bias=False)\n"
        "    (1): LeakyReLU(negative_slope=0.2)\n"
        "  )\n"
        "  (3): Unflatten(dim=1, sizes=(1, 1))\n"
        ")")
    assert len(model) == 4 and isinstance(model[1], nn.ReLU)


def test_train_and_eval_propagate_to_every_module():
    model = AutoEncoder(np.random.default_rng(0))
    modules = [model, model.encoder, model.encoder[0], model.encoder[1], model.decoder,
               model.decoder[0], model.decoder[1]]
    assert all(m.training for m in modules)
    assert model.eval() is model
    assert not any(m.training for m in modules)
    model.train()
    assert all(m.training for m in modules)
    assert nn.Linear(2, 2).training  # a fresh module starts in training mode


def test_zero_grad_clears_every_parameter():
    model = AutoEncoder(np.random.default_rng(0))
    model(Tensor(np.ones((2, 4), np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_flatten_and_unflatten_shapes():
    x = Tensor(np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5), requires_grad=True)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(start_dim=2)(x).shape == (2, 3, 20)
    assert nn.Unflatten(1, (3, 4, 5))(nn.Flatten()(x)).shape == (2, 3, 4, 5)
    assert nn.Unflatten(-1, (5, 1))(x).shape == (2, 3, 4, 5, 1)
    y = nn.Unflatten(1, (3, 4, 5))(nn.Flatten()(x))
    np.testing.assert_array_equal(y.data, x.data)
    y.backward(np.ones(y.shape))
    assert x.grad.shape == x.shape


# ---------------------------------------------------------------- side by side with PyTorch


def test_linear_forward_matches_torch():
    torch = pytest.importorskip("torch")
    layer = nn.Linear(5, 3, rng=np.random.default_rng(0), dtype=np.float64)
    twin = torch.nn.Linear(5, 3).double()
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(layer.weight.data))
        twin.bias.copy_(torch.from_numpy(layer.bias.data))
    x = np.random.default_rng(1).standard_normal((4, 5))
    np.testing.assert_allclose(layer(Tensor(x)).data, twin(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-12)


def test_adam_trajectory_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p0, target = rng.standard_normal(6), rng.standard_normal(6)
    p, twin = nn.Parameter(p0.copy()), torch.tensor(p0.copy(), requires_grad=True)
    ours = Adam([p], lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)
    theirs = torch.optim.Adam([twin], lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)
    for _ in range(5):
        ours.zero_grad()
        F.mse_loss(p, target, reduction="sum").backward()
        ours.step()
        theirs.zero_grad()
        ((twin - torch.from_numpy(target)) ** 2).sum().backward()
        theirs.step()
        np.testing.assert_allclose(p.data, twin.detach().numpy(), rtol=1e-10)
