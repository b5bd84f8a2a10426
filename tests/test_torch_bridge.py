"""torch_bridge: every supported module gives PyTorch's outputs and gradients at the same weights
(float64, within 1e-10), torch -> minivae -> torch keeps every tensor bit for bit, and anything
unsupported is refused by name."""
import io
import os

import numpy as np
import pytest

from minivae import nn
from minivae.models import pixelcnn
from minivae.models.ae import AE
from minivae.models.pixelvae import PixelVAE
from minivae.models.vae import VAE
from minivae.tensor import Tensor
from minivae.torch_bridge import from_torch, to_torch

torch = pytest.importorskip("torch")

TOL = dict(rtol=1e-10, atol=1e-10)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These tensors are tiny: torch's thread pool would only wait on a busy machine (36 passes
    of the sampler took 6 s with 2 threads beside other work, 0.07 s with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def layer_cases() -> dict:
    """name -> (module, input shapes); the first input of a PixelCNN is a binary image."""
    kw = dict(rng=np.random.default_rng(0), dtype=np.float64)
    cases = {
        "Linear": (nn.Linear(5, 3, **kw), [(4, 5)]),
        "Linear-no-bias": (nn.Linear(5, 3, bias=False, **kw), [(4, 5)]),
        "Conv2d": (nn.Conv2d(2, 3, 3, stride=2, padding=1, **kw), [(2, 2, 7, 7)]),
        "Conv2d-no-bias": (nn.Conv2d(2, 3, 4, bias=False, **kw), [(2, 2, 6, 6)]),
        "ConvTranspose2d": (nn.ConvTranspose2d(3, 2, 4, 2, 1, output_padding=1, **kw),
                            [(2, 3, 5, 5)]),
        "ReLU": (nn.ReLU(), [(3, 4)]), "LeakyReLU": (nn.LeakyReLU(0.2), [(3, 4)]),
        "Sigmoid": (nn.Sigmoid(), [(3, 4)]), "Tanh": (nn.Tanh(), [(3, 4)]),
        "Flatten": (nn.Flatten(), [(2, 3, 4, 5)]),
        "Unflatten": (nn.Unflatten(1, (3, 4)), [(2, 12)]),
        "Sequential-dense": (nn.Sequential(  # layers and activation modules
            nn.Linear(6, 5, **kw), nn.ReLU(), nn.Linear(5, 4, **kw), nn.LeakyReLU(0.1),
            nn.Linear(4, 3, **kw), nn.Sigmoid(), nn.Linear(3, 2, **kw), nn.Tanh()), [(4, 6)]),
        "Sequential-dense-activations": (nn.Sequential(  # layers with their activations
            nn.Linear(6, 5, activation="relu", **kw), nn.Linear(5, 4, activation="leaky_relu", slope=0.1, **kw),
            nn.Linear(4, 3, activation="sigmoid", **kw), nn.Linear(3, 2, activation="tanh", **kw)), [(4, 6)]),
        "Sequential-conv": (nn.Sequential(
            nn.Conv2d(1, 3, 3, padding=1, activation="relu", **kw),
            nn.ConvTranspose2d(3, 2, 4, 2, 1, activation="tanh", **kw), nn.Flatten(),
            nn.Linear(2 * 12 * 12, 3, **kw)), [(2, 1, 6, 6)]),
        "GatedLayer-first": (pixelcnn.GatedLayer(1, 3, 7, 2, True, False, **kw),
                             [(2, 1, 6, 6), (2, 1, 6, 6), (2, 2)]),
        "GatedLayer-middle": (pixelcnn.GatedLayer(3, 3, 3, 2, False, False, **kw),
                              [(2, 3, 6, 6), (2, 3, 6, 6), (2, 2)]),
        "GatedLayer-last-unconditional": (pixelcnn.GatedLayer(3, 3, 3, 0, False, True, **kw),
                                          [(2, 3, 6, 6), (2, 3, 6, 6)]),
        "Head": (pixelcnn.Head(3, 2, **kw), [(2, 3, 6, 6), (2, 2)]),
        "PixelCNN": (pixelcnn.PixelCNN((1, 8, 8), channels=4, layers=2, cond_dim=3, **kw),
                     [(3, 1, 8, 8), (3, 3)]),
        "PixelCNN-unconditional": (pixelcnn.PixelCNN((1, 8, 8), channels=4, layers=1, **kw),
                                   [(3, 1, 8, 8)]),
    }
    for mask in ("A", "B", "V", "HA", "HB"):
        cases[f"MaskedConv2d-{mask}"] = (nn.MaskedConv2d(2, 4, 5, mask, **kw), [(2, 2, 6, 6)])
    return cases


CASES = layer_cases()


def outputs(y) -> list:
    return [t for t in (y if isinstance(y, tuple) else (y,)) if t is not None]


@pytest.mark.parametrize("name", CASES)
def test_the_torch_module_gives_the_same_outputs_and_gradients(name):
    module, shapes = CASES[name]
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(shape) for shape in shapes]
    if isinstance(module, pixelcnn.PixelCNN):
        xs[0] = (xs[0] > 0).astype(np.float64)
    ours_in = [Tensor(x, requires_grad=True) for x in xs]
    theirs_in = [torch.tensor(x, requires_grad=True) for x in xs]
    net = to_torch(module)
    ours, theirs = outputs(module(*ours_in)), outputs(net(*theirs_in))
    assert len(ours) == len(theirs)
    y_bars = [rng.standard_normal(y.shape) for y in ours]  # random, so a backward must use it
    for y, t in zip(ours, theirs):
        np.testing.assert_allclose(y.data, t.detach().numpy(), **TOL, err_msg=f"{name} output")
    sum((y * y_bar).sum() for y, y_bar in zip(ours, y_bars)).backward()
    sum((t * torch.from_numpy(y_bar)).sum() for t, y_bar in zip(theirs, y_bars)).backward()
    for k, (x, t) in enumerate(zip(ours_in, theirs_in)):
        np.testing.assert_allclose(x.grad, t.grad.numpy(), **TOL, err_msg=f"{name} input {k}")
    assert_same_gradients(module, net, name)


def assert_same_gradients(module, net, what):
    twin = dict(net.named_parameters())
    assert set(twin) == {name for name, _ in module.named_parameters()}
    for name, p in module.named_parameters():
        np.testing.assert_allclose(p.grad, twin[name].grad.numpy(), **TOL,
                                   err_msg=f"{what}: {name}")


MODELS = {
    "vae-mlp": lambda seed, dtype: VAE.mlp(latent_dim=3, hidden=16,
                                           rng=np.random.default_rng(seed), dtype=dtype),
    "vae-conv": lambda seed, dtype: VAE.conv(latent_dim=3, rng=np.random.default_rng(seed),
                                             dtype=dtype),
    "vae-gaussian-beta": lambda seed, dtype: VAE.mlp(
        latent_dim=3, hidden=16, likelihood="gaussian", c=0.3, beta=0.5,
        rng=np.random.default_rng(seed), dtype=dtype),
    "pixelvae": lambda seed, dtype: PixelVAE(3, channels=4, layers=2,
                                             rng=np.random.default_rng(seed), dtype=dtype),
    "pixelcnn-alone": lambda seed, dtype: PixelVAE(0, channels=4, layers=1,
                                                   rng=np.random.default_rng(seed), dtype=dtype),
}


@pytest.mark.parametrize("name", MODELS)
def test_a_models_torch_twin_has_the_same_loss_and_gradients(name):
    model = MODELS[name](0, np.float64)
    model.eval()  # the PixelVAE's true −ELBO, as the torch twin computes it
    net = to_torch(model)
    x = (np.random.default_rng(1).random((4, 1, 28, 28)) < 0.4).astype(np.float64)
    loss, parts = model.loss(Tensor(x), np.random.default_rng(2))
    loss.backward()
    eps = np.random.default_rng(2).standard_normal((4, model.config.latent_dim))  # rsample's draw
    theirs, their_parts = net.loss(torch.from_numpy(x), torch.from_numpy(eps))
    theirs.backward()
    np.testing.assert_allclose(loss.item(), theirs.item(), **TOL)
    for term in ("rec", "kl"):
        np.testing.assert_allclose(parts[term], their_parts[term], **TOL, err_msg=term)
    assert_same_gradients(model, net, name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["vae-conv", "pixelvae"])
def test_torch_to_minivae_to_torch_keeps_every_tensor_bit_for_bit(name, dtype):
    net = to_torch(MODELS[name](0, dtype))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # weights no minivae module had: torch's own
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype))
    model = from_torch(net.state_dict(), MODELS[name](1, dtype))
    back = to_torch(model).state_dict()
    assert list(back) == list(net.state_dict())
    for key, theirs in net.state_dict().items():
        assert back[key].dtype == theirs.dtype, key
        assert back[key].numpy().tobytes() == theirs.numpy().tobytes(), key
        assert dict(model.named_parameters())[key].data.tobytes() == theirs.numpy().tobytes()


def test_unsupported_modules_are_refused_by_name():
    class Custom(nn.Module):
        def forward(self, x):
            return x

    class MyLinear(nn.Linear):  # a subclass may compute something else: refused too
        pass

    with pytest.raises(TypeError, match=r"no PyTorch equivalent for Custom \(at '1\.1'\)"):
        to_torch(nn.Sequential(nn.ReLU(), nn.Sequential(nn.Tanh(), Custom())))
    with pytest.raises(TypeError, match="no PyTorch equivalent for MyLinear; supported: Linear"):
        to_torch(MyLinear(2, 3))
    with pytest.raises(TypeError, match=r"AE; .*to_torch\(model\.encoder\)"):
        to_torch(AE.mlp(latent_dim=2, hidden=4))
    with pytest.raises(TypeError, match="the prior MixturePrior of this VAE"):
        to_torch(VAE.mlp(latent_dim=2, hidden=4, prior="mixture", prior_components=2))
    with pytest.raises(TypeError, match=r"Linear has activation='relu'.*inside a Sequential"):
        to_torch(nn.Linear(2, 3, activation="relu"))  # torch.nn has no Linear with a ReLU inside


def test_from_torch_refuses_other_keys_and_leaves_the_module_as_it_was():
    model = MODELS["vae-mlp"](0, np.float64)
    before = model.state_dict()
    state = to_torch(MODELS["vae-mlp"](1, np.float64)).state_dict()
    state["extra"] = state.pop("decoder.0.bias")
    with pytest.raises(KeyError, match="decoder.0.bias"):
        from_torch(state, model)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_the_torch_pixelcnn_samples_minivaes_images_and_pickles():
    net_ours = pixelcnn.PixelCNN((1, 6, 6), channels=4, layers=2, cond_dim=2,
                                 rng=np.random.default_rng(0), dtype=np.float64)
    rng = np.random.default_rng(3)
    cond, noise = rng.standard_normal((5, 2)), rng.random((5, 1, 6, 6))
    buffer = io.BytesIO()
    torch.save(to_torch(net_ours), buffer)  # the torch classes pickle
    buffer.seek(0)
    net = torch.load(buffer, weights_only=False)
    theirs = net.sample(5, torch.from_numpy(cond), torch.from_numpy(noise))
    np.testing.assert_array_equal(net_ours.sample(5, cond=cond, noise=noise, cached=True),
                                  theirs.numpy())


def test_to_torch_leaves_torchs_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    to_torch(MODELS["vae-mlp"](0, np.float32))
    assert torch.equal(torch.rand(3), expected)


def test_the_readme_snippet_runs():
    """The README's "Going further" code block, as written there."""
    readme = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
    with open(readme, encoding="utf-8") as f:
        section = f.read().split("## Going further", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md: Going further", "exec"), {})
