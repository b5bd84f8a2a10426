"""The two doors agree: every op, layer and model, its value and every gradient, computed through
the numpy door equals the fast door's.

    float64   |numpy − fast| ≤ 1e-10 · max(1, max |fast|), element by element (1e-13 holds today)
    float32   |numpy − fast| ≤ 1e-5 · max(1, max |fast|)    (1e-6 does not: the doors sum in
              different orders, and a loss sums thousands of terms)

except float32 parameters after Adam steps (see test_training_steps_agree_through_both_doors).

The inputs, the upstream gradients and the models' weights are drawn once and given to both
doors; nothing else differs between the two runs. And the numpy door is what it says: a training
run through it imports no Numba and starts no thread.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_ops import OPS

from minivae import functional as F
from minivae import kernels, nn, optim
from minivae.models.aae import AAE
from minivae.models.pca import LinearAutoencoder
from minivae.models.ae import AE
from minivae.models.pixelcnn import GatedLayer, PixelCNN
from minivae.models.pixelvae import PixelVAE
from minivae.models.vae import VAE
from minivae.tensor import Tensor

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}


def through_both_doors(fn):
    """{door: fn()} with each door open in turn; the door open before is open again after."""
    before = kernels.get_backend()
    try:
        results = {}
        for door in kernels.BACKENDS:
            kernels.set_backend(door)
            results[door] = fn()
        return results
    finally:
        kernels.set_backend(before)


def assert_doors_agree(results, dtype, what):
    """results['numpy'] and results['fast'], lists of arrays, equal to the stated tolerance."""
    mine, fast = results["numpy"], results["fast"]
    assert len(mine) == len(fast)
    for i, (a, b) in enumerate(zip(mine, fast)):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype == dtype, (what, i, a.shape, b.shape, a.dtype)
        scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
        np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE[dtype] * scale,
                                   err_msg=f"{what}, output {i}: numpy door vs fast door")


def value_and_gradients(fn, inputs, y_bar_seed=1):
    """fn(*inputs) and the gradient of ⟨y_bar, fn⟩ for every input that wants one, y_bar random."""
    def run():
        xs = [Tensor(x.copy(), requires_grad=True) for x in inputs]
        y = fn(*xs)
        y_bar = np.random.default_rng(y_bar_seed).standard_normal(y.shape).astype(y.dtype)
        y.backward(y_bar)
        return [y.data] + [x.grad for x in xs]
    return run


def model_loss_and_gradients(build, x, dtype, loss=None, seed=3):
    """The model's loss at x and every parameter's gradient, the model built afresh from its seed."""
    def run():
        model = build(np.random.default_rng(seed), dtype)
        value = (loss or (lambda m, x: m.loss(Tensor(x), np.random.default_rng(7))[0]))(model, x)
        model.zero_grad()
        value.backward()
        return [value.data] + [p.grad for p in model.parameters() if p.grad is not None]
    return run


# ---------------------------------------------------------------- every op

CONV_OPS = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), (2, 3, 7, 6), (4, 3, 3, 2), (4,)),
    "conv2d masked, leaky_relu": (
        lambda x, w, b: F.conv2d(x, w, b, padding=1, mask=nn.pixelcnn_mask(3, "B", np.float64),
                                 activation="leaky_relu", slope=0.2), (2, 3, 5, 5), (4, 3, 3, 3), (4,)),
    "conv2d tanh": (lambda x, w: F.conv2d(x, w, activation="tanh"), (2, 2, 5, 4), (3, 2, 2, 2)),
    "conv2d sigmoid": (lambda x, w, b: F.conv2d(x, w, b, 1, 1, activation="sigmoid"),
                       (2, 2, 4, 4), (3, 2, 3, 3), (3,)),
    "conv2d relu": (lambda x, w, b: F.conv2d(x, w, b, 2, 1, activation="relu"),
                    (3, 2, 6, 6), (4, 2, 4, 4), (4,)),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1), (2, 3, 4, 3),
                         (3, 2, 3, 3), (2,)),
    "conv_transpose2d relu": (lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, activation="relu"),
                              (2, 4, 3, 3), (4, 2, 4, 4), (2,)),
    "conv_transpose2d sigmoid": (lambda x, w: F.conv_transpose2d(x, w, activation="sigmoid"),
                                 (2, 2, 3, 3), (2, 3, 2, 2)),
    "linear leaky_relu": (lambda x, w, b: F.linear(x, w, b, "leaky_relu", 0.1), (5, 3), (4, 3), (4,)),
    "linear tanh": (lambda x, w, b: F.linear(x, w, b, "tanh"), (5, 3), (4, 3), (4,)),
}
POSITIVE_ONLY = {"log", "sqrt", "pow"}  # their inputs stay positive; the others get both signs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(OPS) + list(CONV_OPS))
def test_every_op_and_its_gradients_agree_through_both_doors(name, dtype):
    fn, *shapes = {**OPS, **CONV_OPS}[name]
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(0.25, 1, shape) for shape in shapes]
    if name not in POSITIVE_ONLY:
        inputs = [x * rng.choice([-2, 2], x.shape) for x in inputs]
    inputs = [x.astype(dtype) for x in inputs]
    assert_doors_agree(through_both_doors(value_and_gradients(fn, inputs)), dtype, name)


# ---------------------------------------------------------------- every layer

LAYERS = {
    "Linear": (lambda rng, d: nn.Linear(6, 5, rng=rng, dtype=d), (4, 6)),
    "Linear relu": (lambda rng, d: nn.Linear(6, 5, rng=rng, dtype=d, activation="relu"), (4, 6)),
    "Conv2d relu": (lambda rng, d: nn.Conv2d(2, 3, 4, 2, 1, rng=rng, dtype=d, activation="relu"),
                    (3, 2, 8, 8)),
    "ConvTranspose2d relu": (lambda rng, d: nn.ConvTranspose2d(3, 2, 4, 2, 1, rng=rng, dtype=d,
                                                               activation="relu"), (3, 3, 4, 4)),
    "MaskedConv2d A": (lambda rng, d: nn.MaskedConv2d(2, 3, 7, "A", rng=rng, dtype=d), (2, 2, 8, 8)),
    "MaskedConv2d HB tanh": (lambda rng, d: nn.MaskedConv2d(2, 3, 3, "HB", rng=rng, dtype=d,
                                                            activation="tanh"), (2, 2, 5, 5)),
    "Sequential": (lambda rng, d: nn.Sequential(
        nn.Flatten(), nn.Linear(12, 8, rng=rng, dtype=d, activation="relu"), nn.Tanh(),
        nn.Linear(8, 4, rng=rng, dtype=d), nn.Sigmoid(), nn.LeakyReLU(0.3),
        nn.Linear(4, 12, rng=rng, dtype=d), nn.ReLU(), nn.Unflatten(1, (3, 4))), (5, 3, 4)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_and_its_gradients_agree_through_both_doors(name, dtype):
    build, shape = LAYERS[name]
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)

    def run():
        layer = build(np.random.default_rng(1), dtype)
        x_t = Tensor(x, requires_grad=True)
        y = layer(x_t)
        y.backward(np.random.default_rng(2).standard_normal(y.shape).astype(dtype))
        return [y.data, x_t.grad] + [p.grad for p in layer.parameters()]

    assert_doors_agree(through_both_doors(run), dtype, name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_gated_layer_agrees_through_both_doors(dtype):
    rng = np.random.default_rng(0)
    v, h_stack, cond = (rng.standard_normal(s).astype(dtype) for s in [(2, 3, 6, 6), (2, 3, 6, 6), (2, 4)])

    def run():
        layer = GatedLayer(3, 3, 3, 4, first=False, last=False, rng=np.random.default_rng(1), dtype=dtype)
        inputs = [Tensor(a, requires_grad=True) for a in (v, h_stack, cond)]
        v_out, h_out = layer(*inputs)
        (v_out * v_out.data + h_out * h_out.data).sum().backward()
        return [v_out.data, h_out.data] + [t.grad for t in inputs] + [p.grad for p in layer.parameters()]

    assert_doors_agree(through_both_doors(run), dtype, "GatedLayer")


# ---------------------------------------------------------------- every model's loss and gradients


def digits(n, dtype, binary=True, seed=4):
    x = np.random.default_rng(seed).random((n, 1, 28, 28))
    return (x < 0.3).astype(dtype) if binary else x.astype(dtype)


MODELS = {  # name: (build, binary images?)
    "LinearAutoencoder": (lambda rng, d: LinearAutoencoder(784, 5, rng=rng, dtype=d), False),
    "VAE.mlp": (lambda rng, d: VAE.mlp(rng=rng, dtype=d), True),
    "VAE.mlp gaussian": (lambda rng, d: VAE.mlp(rng=rng, dtype=d, likelihood="gaussian"), False),
    "VAE.mlp mixture prior": (lambda rng, d: VAE.mlp(rng=rng, dtype=d, prior="mixture"), True),
    "VAE.conv": (lambda rng, d: VAE.conv(latent_dim=8, rng=rng, dtype=d), True),
    "AE.mlp": (lambda rng, d: AE.mlp(rng=rng, dtype=d), True),
    "AE.conv": (lambda rng, d: AE.conv(latent_dim=8, rng=rng, dtype=d), True),
    "AAE.mlp": (lambda rng, d: AAE.mlp(hidden=64, rng=rng, dtype=d), True),
    "PixelVAE": (lambda rng, d: PixelVAE.gated(latent_dim=4, channels=4, layers=2, rng=rng, dtype=d), True),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", MODELS)
def test_every_models_loss_and_gradients_agree_through_both_doors(name, dtype):
    build, binary = MODELS[name]
    x = digits(8, dtype, binary)
    x = x.reshape(len(x), -1) if name == "LinearAutoencoder" else x  # (B, D): it takes vectors
    assert_doors_agree(through_both_doors(model_loss_and_gradients(build, x, dtype)), dtype, name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_aaes_adversarial_losses_agree_through_both_doors(dtype):
    z_prior = np.random.default_rng(5).standard_normal((8, 2)).astype(dtype)

    def losses(model, x):
        z = model.encode(Tensor(x))
        return model.disc_loss(z, z_prior)[0] + model.gen_loss(z)

    build = MODELS["AAE.mlp"][0]
    run = model_loss_and_gradients(build, digits(8, dtype), dtype, loss=losses)
    assert_doors_agree(through_both_doors(run), dtype, "AAE disc_loss + gen_loss")


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_conditional_pixelcnns_log_likelihood_and_samples_agree_through_both_doors(dtype):
    x = digits(3, dtype)[:, :, :8, :8]
    cond = np.random.default_rng(6).standard_normal((3, 2)).astype(dtype)
    noise = np.random.default_rng(7).random((3, 1, 8, 8))

    def build(rng, d):
        return PixelCNN((1, 8, 8), channels=4, layers=2, cond_dim=2, rng=rng, dtype=d)

    log_prob = model_loss_and_gradients(build, x, dtype, loss=lambda m, x: m.log_prob(x, cond).sum())
    assert_doors_agree(through_both_doors(log_prob), dtype, "PixelCNN log_prob")

    def sample():
        net = build(np.random.default_rng(3), dtype)
        return list(net.sample(3, cond=cond, noise=noise, return_logits=True))

    images = through_both_doors(sample)
    np.testing.assert_array_equal(images["numpy"][0], images["fast"][0])
    assert_doors_agree({door: [logits] for door, (_, logits) in images.items()}, dtype,
                       "PixelCNN sample's logits")


def sample_row_inputs(dtype, n=5, W=6, C=3, layers=3, seed=20):
    """kernels.sample_row's arguments for row 2 of a random network of `layers` layers: layer 0
    reads x (1 channel, 3 taps, padding 3), the others C channels (2 taps, padding 1)."""
    rng = np.random.default_rng(seed)
    H, C2 = 4, 2 * C

    def normal(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x = np.zeros((n, 1, H + 6, W + 6), dtype)
    x[:, :, 3:5, 3:3 + W] = rng.integers(0, 2, (n, 1, 2, W))  # rows 0 and 1, already drawn
    h_in = [x] + [np.pad(normal(n, C, H, W), ((0, 0), (0, 0), (1, 1), (1, 1)))
                  for _ in range(layers - 1)]
    taps = [np.array([[3, 0], [3, 1], [3, 2]])] + [np.array([[1, 0], [1, 1]])] * (layers - 1)
    horizontal = [(normal(C2, h.shape[1] * len(t)), normal(C2), t)
                  for h, t in zip(h_in, taps)]
    link = [normal(n, C2, W) for _ in range(layers)]
    cond = [normal(n, C2, W) for _ in range(layers + 1)]  # c(y) along the row, per pixel
    out = [(normal(C, C), normal(C)) for _ in range(layers - 1)]
    head = (normal(C2, C), normal(C2), normal(1, C), normal(1))
    noise = rng.random((n, W))
    return 2, h_in, link, cond, horizontal, out, head, noise


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layers", [1, 3])
def test_the_cached_samplers_row_agrees_through_both_doors(dtype, layers):
    """kernels.sample_row: the same logits, the same pixels drawn and the same features written
    into every layer's input, the untouched entries untouched."""
    def run():
        r, h_in, *rest = sample_row_inputs(dtype, layers=layers)
        logits = kernels.sample_row(r, h_in, *rest)
        return [logits] + h_in

    results = through_both_doors(run)
    before = sample_row_inputs(dtype, layers=layers)[1]
    assert any(not np.array_equal(a, b) for a, b in zip(results["fast"][1:], before))
    np.testing.assert_array_equal(results["numpy"][1], results["fast"][1])  # the pixels drawn
    assert 0 < results["fast"][1][:, :, 5].mean() < 1  # row 2 (padding 3): some 0s, some 1s
    assert_doors_agree(results, dtype, "sample_row: logits, then each layer's input")


def test_the_cached_samplers_row_is_the_same_for_one_and_two_workers():
    """The fast door's workers share the samples in fixed chunks: the same bits for any number."""
    before_door, before_threads = kernels.get_backend(), kernels.get_num_threads()
    results = []
    try:
        kernels.set_backend("fast")
        for workers in (1, 2):
            kernels.set_num_threads(workers)
            r, h_in, *rest = sample_row_inputs(np.float32, n=21)  # three chunks of samples
            results.append([kernels.sample_row(r, h_in, *rest)] + h_in)
    finally:
        kernels.set_backend(before_door)
        kernels.set_num_threads(before_threads)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["Adam", "SGD"])
def test_training_steps_agree_through_both_doors(dtype, optimizer):
    """Three steps of the MLP VAE: the fast door's Adam kernel against optim.Adam's equations. In
    float32 Adam's step lr·m̂/(√v̂ + ε) is ±lr wherever a gradient is a rounding error away from 0,
    and the doors may round it to opposite signs: there the parameters are compared to 2·lr a step."""
    x, lr, steps = digits(16, dtype), 1e-3, 3

    def train():
        model = VAE.mlp(hidden=64, rng=np.random.default_rng(3), dtype=dtype)
        opt = (optim.Adam(model.parameters(), lr=lr) if optimizer == "Adam"
               else optim.SGD(model.parameters(), lr=lr, momentum=0.9))
        rng, losses = np.random.default_rng(4), []
        for _ in range(steps):
            loss, _ = model.loss(Tensor(x), rng)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.data)
        return losses + opt.buffers.get("m", []), [p.data for p in model.parameters()]

    runs = through_both_doors(train)
    assert_doors_agree({door: run[0] for door, run in runs.items()}, dtype, f"{optimizer}: losses, m")
    if dtype == np.float32 and optimizer == "Adam":
        for mine, fast in zip(runs["numpy"][1], runs["fast"][1]):
            np.testing.assert_allclose(mine, fast, rtol=0, atol=2 * lr * steps)
    else:
        assert_doors_agree({door: run[1] for door, run in runs.items()}, dtype, f"{optimizer}: parameters")


# ---------------------------------------------------------------- the numpy door is plain NumPy


def test_training_through_the_numpy_door_imports_no_numba_and_starts_no_thread(tmp_path):
    script = textwrap.dedent("""
        import sys, threading
        import numpy as np
        import minivae
        from minivae import optim
        from minivae.models.vae import VAE
        from minivae.tensor import Tensor

        assert minivae.get_backend() == "numpy"
        model = VAE.conv(latent_dim=4, rng=np.random.default_rng(0))
        adam = optim.Adam(model.parameters())
        x = (np.random.default_rng(1).random((8, 1, 28, 28)) < 0.3).astype(np.float32)
        for _ in range(2):
            loss, _ = model.loss(Tensor(x), np.random.default_rng(2))
            adam.zero_grad()
            loss.backward()
            adam.step()
        numba = sorted(m for m in sys.modules if m == "numba" or m.startswith(("numba.", "llvmlite")))
        fast = sorted(m for m in sys.modules if m.startswith("minivae.kernels.fast"))
        print(numba, fast, threading.active_count(), minivae.get_num_threads())
    """)
    env = {**os.environ, "MINIVAE_BACKEND": "numpy"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["[]", "[]", "1", "1"], result.stdout


def test_set_backend_names_the_doors():
    with pytest.raises(ValueError, match="the backends are 'numpy' and 'fast', got 'slow'"):
        kernels.set_backend("slow")
