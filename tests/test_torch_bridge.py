"""torch_bridge: every supported module gives PyTorch's outputs and gradients at the same weights
(float64, within 1e-10), every model minivae trains (AE, VAE and PixelVAE with each prior, the
AAE) converts whole with its losses and gradients, torch -> minivae -> torch keeps every tensor
bit for bit, and anything unsupported is refused by name: the bridge never drops a part."""
import io
import os

import numpy as np
import pytest

from minivae import nn, priors, samplers
from minivae.models import pixelcnn
from minivae.models.aae import AAE
from minivae.models.ae import AE
from minivae.models.pca import PCA
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
    "pixelvae": lambda seed, dtype: PixelVAE.gated(3, channels=4, layers=2,
                                                   rng=np.random.default_rng(seed), dtype=dtype),
    "pixelcnn-alone": lambda seed, dtype: PixelVAE.gated(0, channels=4, layers=1,
                                                         rng=np.random.default_rng(seed), dtype=dtype),
}


def prior_data(dtype):
    return (np.random.default_rng(5).random((6, 1, 28, 28)) < 0.3).astype(dtype)


for _prior in ("mixture", "vamp"):  # the learned priors, with every parameter they learn
    MODELS[f"vae-mlp-{_prior}"] = lambda seed, dtype, prior=_prior: VAE.mlp(
        latent_dim=3, hidden=16, prior=prior, prior_components=4, prior_data=prior_data(dtype),
        beta=0.7, rng=np.random.default_rng(seed), dtype=dtype)
    MODELS[f"vae-conv-{_prior}"] = lambda seed, dtype, prior=_prior: VAE.conv(
        latent_dim=2, prior=prior, prior_components=3, prior_data=prior_data(dtype),
        rng=np.random.default_rng(seed), dtype=dtype)
    MODELS[f"pixelvae-{_prior}"] = lambda seed, dtype, prior=_prior: PixelVAE.gated(
        3, channels=4, layers=2, prior=prior, prior_components=4, prior_data=prior_data(dtype),
        rng=np.random.default_rng(seed), dtype=dtype)


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
@pytest.mark.parametrize("name", ["vae-conv", "pixelvae", "vae-mlp-mixture", "pixelvae-vamp"])
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
    with pytest.raises(TypeError, match=r"Linear has activation='relu'.*inside a Sequential"):
        to_torch(nn.Linear(2, 3, activation="relu"))  # torch.nn has no Linear with a ReLU inside
    with pytest.raises(TypeError, match=r"no PyTorch equivalent for Custom \(at 'decoder\.4'\)"):
        model = VAE.mlp(latent_dim=2, hidden=4)
        model.decoder = nn.Sequential(*model.decoder, Custom())
        to_torch(model)


@pytest.mark.parametrize("loss", ["bernoulli", "mse"])
def test_the_autoencoders_torch_twin_has_the_same_loss_and_gradients(loss):
    model = AE.mlp(latent_dim=3, hidden=16, loss=loss, rng=np.random.default_rng(0),
                   dtype=np.float64)
    net = to_torch(model)
    x = np.random.default_rng(1).random((4, 1, 28, 28))
    ours, parts = model.loss(Tensor(x))
    ours.backward()
    theirs, their_parts = net.loss(torch.from_numpy(x))
    theirs.backward()
    np.testing.assert_allclose(ours.item(), theirs.item(), **TOL)
    np.testing.assert_allclose(parts["rec"], their_parts["rec"], **TOL)
    assert_same_gradients(model, net, f"AE {loss}")


def zero_grads(*modules):
    for module in modules:
        for p in module.parameters():
            p.grad = None


@pytest.mark.parametrize("prior", ["gaussian", "radial", "supervised"])
def test_the_aaes_torch_twin_has_the_same_three_losses_and_gradients(prior):
    """Each phase's loss, at the same codes and prior samples (and labels, for the supervised
    prior's discriminator): the same value and the same gradient for every parameter it reaches,
    within 1e-10 (float64); the discriminator's accuracy too."""
    model = AAE.mlp(latent_dim=2, prior=prior, hidden=16, rng=np.random.default_rng(0),
                    dtype=np.float64)
    net = to_torch(model)
    rng = np.random.default_rng(1)
    x = rng.random((6, 1, 28, 28))
    labels = rng.integers(0, 10, 6) if prior == "supervised" else None
    z_prior = model.sample_prior(6, rng, labels=labels)
    x_t, z_prior_t = torch.from_numpy(x), torch.from_numpy(z_prior)
    labels_t = None if labels is None else torch.from_numpy(labels)

    def check(ours, theirs, what):
        zero_grads(model, net)
        ours.backward()
        theirs.backward()
        np.testing.assert_allclose(ours.item(), theirs.item(), **TOL, err_msg=what)
        twin = dict(net.named_parameters())
        for name, p in model.named_parameters():
            if p.grad is None:  # a part this loss does not reach: not in torch's either
                assert twin[name].grad is None or not twin[name].grad.any(), f"{what}: {name}"
            else:
                np.testing.assert_allclose(p.grad, twin[name].grad.numpy(), **TOL,
                                           err_msg=f"{what}: {name}")

    check(model.loss(Tensor(x))[0], net.loss(x_t)[0], "rec")
    z, z_t = model.encode(Tensor(x)), net.encode(x_t)
    (ours, accuracy), (theirs, their_accuracy) = (model.disc_loss(z, z_prior, labels),
                                                  net.disc_loss(z_t, z_prior_t, labels_t))
    assert accuracy == their_accuracy
    check(ours, theirs, "disc")
    check(model.gen_loss(model.encode(Tensor(x)), labels), net.gen_loss(net.encode(x_t), labels_t),
          "gen")


@pytest.mark.parametrize("name", ["vae-mlp-mixture", "pixelvae-vamp"])
def test_a_learned_priors_log_joint_is_the_same_in_torch(name):
    """ln p(x|z) + ln p(z) (the IWAE weights' numerator) at given z, and its gradients with respect
    to z and every parameter (the prior's and, for the VampPrior, the encoder's through the
    pseudo-inputs), within 1e-10."""
    model = MODELS[name](0, np.float64)
    net = to_torch(model)
    rng = np.random.default_rng(3)
    x = (rng.random((3, 1, 28, 28)) < 0.4).astype(np.float64)
    z = rng.standard_normal((3, model.config.latent_dim))
    y_bar = rng.standard_normal(3)
    z_ours, z_theirs = Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    ours, theirs = model.log_joint(x, z_ours), net.log_joint(torch.from_numpy(x), z_theirs)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **TOL)
    (ours * y_bar).sum().backward()
    (theirs * torch.from_numpy(y_bar)).sum().backward()
    np.testing.assert_allclose(z_ours.grad, z_theirs.grad.numpy(), **TOL)
    twin = dict(net.named_parameters())
    for key, p in model.named_parameters():
        if key.startswith("prior.") or (name.startswith("pixelvae") and key.startswith("encoder.")):
            np.testing.assert_allclose(p.grad, twin[key].grad.numpy(), **TOL, err_msg=key)


# ---------------------------------------------------------------- the bridge never drops a part


EVERY_MODEL = {
    **{f"VAE.{build}-{prior}": (lambda build=build, prior=prior: getattr(VAE, build)(
        latent_dim=2, **({"hidden": 8} if build == "mlp" else {}), prior=prior,
        prior_components=3, prior_data=prior_data(np.float32), rng=np.random.default_rng(0)))
       for build in ("mlp", "conv") for prior in priors.PRIORS},
    **{f"PixelVAE-{prior}": (lambda prior=prior: PixelVAE.gated(
        2, channels=2, layers=1, prior=prior, prior_components=3,
        prior_data=prior_data(np.float32), rng=np.random.default_rng(0)))
       for prior in priors.PRIORS},
    "PixelVAE-no-latent": lambda: PixelVAE.gated(0, channels=2, layers=1, rng=np.random.default_rng(0)),
    "PixelCNN": lambda: pixelcnn.PixelCNN((1, 5, 5), 2, 1, cond_dim=2,
                                          rng=np.random.default_rng(0)),
    **{f"AE.{build}-{loss}": (lambda build=build, loss=loss: getattr(AE, build)(
        latent_dim=2, **({"hidden": 8} if build == "mlp" else {}), loss=loss,
        rng=np.random.default_rng(0)))
       for build in ("mlp", "conv") for loss in ("bernoulli", "mse")},
    **{f"AAE-{prior}": (lambda prior=prior: AAE.mlp(latent_dim=2, prior=prior, hidden=8,
                                                    rng=np.random.default_rng(0)))
       for prior in samplers.NAMES},
    "MixturePrior": lambda: priors.MixturePrior(2, 3, rng=np.random.default_rng(0)),
    "StandardPrior": lambda: priors.StandardPrior(2),
}
REFUSED = {  # what cannot convert, and the name the refusal must give
    "PCA": (lambda: PCA(2), "PCA .*is not a minivae module"),
    "VampPrior-alone": (lambda: EVERY_MODEL["VAE.mlp-vamp"]().prior,
                        "a VampPrior .* converts only with its model"),
}


@pytest.mark.parametrize("name", [*EVERY_MODEL, *REFUSED])
def test_every_model_converts_every_parameter_or_is_refused_by_name(name):
    """Every model class minivae trains, with each prior it takes: to_torch converts every
    parameter (the same keys, each value bit for bit, no parameter in torch that minivae lacks),
    or raises TypeError naming what it cannot convert."""
    if name in REFUSED:
        make, message = REFUSED[name]
        with pytest.raises(TypeError, match=message):
            to_torch(make())
        return
    model = EVERY_MODEL[name]()
    net = to_torch(model)
    ours = dict(model.named_parameters())
    theirs = dict(net.named_parameters())
    assert len(ours) == len(model.parameters())  # no parameter reached twice
    assert set(theirs) == set(ours), set(theirs) ^ set(ours)
    assert set(net.state_dict()) == set(ours)  # no buffer posing as a parameter
    for key, p in ours.items():
        assert theirs[key].detach().numpy().tobytes() == p.data.tobytes(), key


def test_a_part_added_to_a_model_is_never_dropped_silently():
    """A parameter the model's builder does not know of (set on the model by hand) is not left
    behind: to_torch refuses, naming it."""
    model = VAE.mlp(latent_dim=2, hidden=4, prior="mixture", prior_components=2)
    model.temperature = nn.Parameter(np.ones(1, np.float32))
    with pytest.raises(KeyError, match="temperature"):
        to_torch(model)


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


def test_a_torch_vampprior_pickles_with_its_model_and_uses_that_models_encoder():
    """The torch VampPrior calls its model's encode (as minivae's does): after torch.save and
    torch.load the copy's prior follows the copy's encoder, not the original's."""
    net = to_torch(MODELS["vae-mlp-vamp"](0, np.float64))
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    copy = torch.load(buffer, weights_only=False)
    z = torch.from_numpy(np.random.default_rng(4).standard_normal((5, 3)))
    assert torch.equal(copy.prior.log_prob(z), net.prior.log_prob(z))
    with torch.no_grad():
        copy.encoder[1].bias.add_(1.0)
    assert not torch.allclose(copy.prior.log_prob(z), net.prior.log_prob(z))
    assert "components=4, latent_dim=3" in repr(copy.prior)


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
