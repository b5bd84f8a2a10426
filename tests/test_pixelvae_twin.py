"""The PixelVAE against its PyTorch twin (benchmarks/pixelvae_twin.py) at the same weights, in
float64: the same logits, loss and gradients, and the twin's naive sampler draws minivae's images."""
import importlib.util
import os

import numpy as np
import pytest

from minivae.models.pixelvae import PixelVAE
from minivae.tensor import Tensor

torch = pytest.importorskip("torch")

_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks",
                     "pixelvae_twin.py")
_spec = importlib.util.spec_from_file_location("pixelvae_twin", _path)
pixelvae_twin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pixelvae_twin)


def models(latent_dim=3, image=12, conditioning="bias"):
    model = PixelVAE.gated(latent_dim, channels=4, layers=2, image_shape=(1, image, image),
                           conditioning=conditioning, rng=np.random.default_rng(0),
                           dtype=np.float64)
    return model, pixelvae_twin.twin(model, torch.float64)


@pytest.mark.parametrize("latent_dim, conditioning", [(3, "bias"), (0, "bias"), (3, "map")])
def test_same_weights_give_the_same_logits_loss_and_gradients(latent_dim, conditioning):
    model, net = models(latent_dim, conditioning=conditioning)
    rng = np.random.default_rng(1)
    x = (rng.random((4, 1, 12, 12)) < 0.4).astype(np.float64)
    loss, parts = model.loss(Tensor(x), np.random.default_rng(2))
    loss.backward()
    eps = np.random.default_rng(2).standard_normal((4, latent_dim))  # the draw model.loss made
    theirs, rec, kl = net.loss(torch.from_numpy(x), torch.from_numpy(eps))
    theirs.backward()
    assert loss.item() == pytest.approx(theirs.item(), rel=1e-12)
    assert parts["rec"] == pytest.approx(rec.item(), rel=1e-12)
    assert parts["kl"] == pytest.approx(kl.item(), rel=1e-12, abs=1e-12)
    twin_params = dict(net.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, twin_params[name].grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)
    z = rng.standard_normal((4, latent_dim))
    cond = None if not latent_dim else model.conditioning(Tensor(z)).data  # z, or its maps m(z)
    ours = model.decoder(x, cond).data
    with torch.no_grad():
        logits = net.decoder(torch.from_numpy(x), None if cond is None else torch.from_numpy(cond))
    np.testing.assert_allclose(ours, logits.numpy(), rtol=1e-10, atol=1e-12)


def test_the_twins_naive_sampler_draws_minivaes_cached_images():
    model, net = models(image=8)
    rng = np.random.default_rng(3)
    cond, noise = rng.standard_normal((5, 3)), rng.random((5, 1, 8, 8))
    ours = model.decoder.sample(5, cond=cond, noise=noise, cached=True)
    x = torch.zeros(5, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        for r in range(8):
            for c in range(8):
                p = torch.sigmoid(net.decoder(x, torch.from_numpy(cond))[:, 0, r, c])
                x[:, 0, r, c] = (torch.from_numpy(noise[:, 0, r, c]) < p).double()
    np.testing.assert_array_equal(ours, x.numpy())
