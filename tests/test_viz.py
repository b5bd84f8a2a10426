"""Every figure in minivae.viz: it writes a PNG of the expected pixel size and rejects bad shapes.
And the inverse normal CDF the manifold plot stands on, against known quantiles and math.erf.

Pixel sizes: the image mosaics (image_grid, reconstructions, interpolations, manifold) are drawn
at an integer zoom z = clip(640 // longest mosaic side, 1, 3), where a mosaic of R × C images of
28 × 28 with 2-pixel gaps is (30R + 2) × (30C + 2); margins add 4 px on each side, 30 px on top
for a title, 84 px on the left for row labels, and for the manifold's axes 60 left, 44 below and
16 right; a title longer than the figure is wide widens it (6.5 px a character + 16). The other
figures have fixed sizes in inches at DPI = 100.
"""
import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("matplotlib")
import matplotlib.image  # noqa: E402

from minivae import viz  # noqa: E402
from minivae.models.pca import PCA  # noqa: E402
from minivae.viz.latents import _onto_principal_plane  # noqa: E402

EXAMPLES = settings(max_examples=200, deadline=None)


def png_shape(path) -> tuple:
    """(height, width) of the PNG at path, after checking it is a non-empty image."""
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image[..., :3].std() > 0, "the figure is blank"
    return image.shape[:2]


@pytest.fixture
def digits():
    """Ten fake 28 × 28 'digits' in [0, 1]: a bright bar at a different place in each."""
    images = np.zeros((10, 28, 28), dtype=np.float32)
    for i in range(10):
        images[i, 4:24, 2 + 2 * i:6 + 2 * i] = 1.0
    return images


# ---------------------------------------------------------------- the inverse normal CDF

KNOWN_QUANTILES = [  # p, Φ⁻¹(p) (scipy.stats.norm.ppf / mpmath, at the float p)
    (0.5, 0.0),
    (0.975, 1.959963984540054),
    (0.025, -1.959963984540054),
    (0.95, 1.6448536269514722),
    (0.9, 1.2815515655446004),
    (0.99, 2.3263478740408408),
    (0.999, 3.090232306167813),
    (0.8413447460685429, 1.0),           # Φ(1)
    (0.022750131948179195, -2.0),        # Φ(−2)
    (1e-10, -6.361340902404056),
    (1e-20, -9.262340089798408),
]


@pytest.mark.parametrize("p, x", KNOWN_QUANTILES)
def test_normal_ppf_known_quantiles(p, x):
    assert abs(float(viz.normal_ppf(p)) - x) < 1e-9


def test_normal_ppf_is_vectorised_and_symmetric():
    p = np.array([[2.0**-30, 1 / 8, 3 / 8], [1 / 2, 5 / 8, 1 - 2.0**-20]])  # 1 − p is exact
    x = viz.normal_ppf(p)
    assert x.shape == p.shape
    np.testing.assert_array_equal(viz.normal_ppf(1 - p), -x)
    assert np.all(np.diff(viz.normal_ppf(np.linspace(0.001, 0.999, 999))) > 0)


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@EXAMPLES
@given(st.floats(1e-12, 1 - 1e-12))
def test_normal_cdf_undoes_normal_ppf(p):
    x = float(viz.normal_ppf(p))
    # 1 + erf(·) carries an absolute error of about 1e-16, so compare absolutely.
    assert abs(normal_cdf(x) - p) < 1e-15


def test_normal_ppf_tails_and_domain():
    np.testing.assert_array_equal(viz.normal_ppf([0.0, 1.0]), [-np.inf, np.inf])
    assert np.isfinite(viz.normal_ppf(1e-300)) and viz.normal_ppf(1e-300) < -37
    for bad in (-0.1, 1.1, np.nan):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            viz.normal_ppf(bad)


# ---------------------------------------------------------------- image mosaics


def test_image_grid(tmp_path, digits):
    # 4 images -> 2 × 2, mosaic 62 × 62, zoom 3 -> 186 + 4 + 4
    path = viz.image_grid(digits[:4], tmp_path / "grid.png")
    assert path == str(tmp_path / "grid.png")
    assert png_shape(path) == (194, 194)
    # 5 images, (N, 1, 28, 28), title -> 3 per row, 2 rows: mosaic 62 × 92, zoom 3
    path = viz.image_grid(digits[:5, None], tmp_path / "grid_title.png", title="five")
    assert png_shape(path) == (30 + 186 + 4, 4 + 276 + 4)
    # nrow = images per row (torchvision's meaning): 10 in one row, mosaic 32 × 302, zoom 2
    path = viz.image_grid(digits, tmp_path / "row.png", nrow=10)
    assert png_shape(path) == (4 + 64 + 4, 4 + 604 + 4)
    # a title wider than the figure widens it: 40 characters -> 6.5 · 40 + 16 = 276 px; one
    # image: mosaic 32 × 32, zoom 3
    path = viz.image_grid(digits[:1], tmp_path / "one.png", title="x" * 40)
    assert png_shape(path) == (30 + 96 + 4, 276)


def test_reconstructions(tmp_path, digits):
    # n = 3: an input row over a reconstruction row of 3: mosaic 62 × 92, zoom 3, labels left
    path = viz.reconstructions(digits, 1 - digits, tmp_path / "rec.png", n=3)
    assert png_shape(path) == (4 + 186 + 4, 84 + 276 + 4)
    # n = 10 > 8 per row: two row pairs, 4 rows of 8: mosaic 122 × 242, zoom 2
    path = viz.reconstructions(digits[:, None], digits[:, None], tmp_path / "rec10.png", n=10,
                               title="x and x_hat")
    assert png_shape(path) == (30 + 244 + 4, 84 + 484 + 4)


def test_interpolations(tmp_path, digits):
    rows = digits.reshape(2, 5, 28, 28)
    # mosaic 62 × 152, zoom 640 // 152 = 4 -> capped at 3
    assert png_shape(viz.interpolations(rows, tmp_path / "a.png")) == (4 + 186 + 4, 4 + 456 + 4)
    assert png_shape(viz.interpolations(rows[:, :, None], tmp_path / "b.png", title="t")) == \
        (30 + 186 + 4, 4 + 456 + 4)


def test_manifold_grid_and_size(tmp_path):
    seen = []

    def decode(z):
        seen.append(z)
        # brightness encodes where the code sits: Φ(z₁) in the left half, Φ(z₂) in the right half
        images = np.empty((len(z), 28, 28))
        images[:, :, :14] = np.array([normal_cdf(v) for v in z[:, 0]])[:, None, None]
        images[:, :, 14:] = np.array([normal_cdf(v) for v in z[:, 1]])[:, None, None]
        return images[:, None]                                          # (M, 1, 28, 28)

    path = viz.manifold(decode, tmp_path / "manifold.png", n=4)
    # mosaic 122 × 122, zoom 3 -> 366; title 30, axes: 60 left, 44 below, 16 right
    assert png_shape(path) == (30 + 366 + 44, 60 + 366 + 16)
    z = seen[0].reshape(4, 4, 2)                                        # (row, column, 2)
    u = (np.arange(4) + 0.5) / 4
    np.testing.assert_allclose(z[0, :, 0], viz.normal_ppf(u), rtol=1e-6)        # z₁ grows right
    np.testing.assert_allclose(z[:, 0, 1], viz.normal_ppf(u[::-1]), rtol=1e-6)  # z₂ grows up


def test_manifold_accepts_a_decoder_of_tensors(tmp_path):
    import minivae
    from minivae import functional as F
    W = minivae.Tensor(np.random.default_rng(0).standard_normal((2, 784)), requires_grad=True)

    def decode(z):
        assert not minivae.is_grad_enabled()
        return F.sigmoid(minivae.Tensor(z) @ W.astype(np.float32)).reshape(-1, 1, 28, 28)

    # mosaic 92 × 92, zoom 3; a short title (the default one, 58 characters, would widen it)
    path = viz.manifold(decode, tmp_path / "m.png", n=3, title="t")
    assert png_shape(path) == (30 + 276 + 44, 60 + 276 + 16)


def test_manifold_rejects_bad_decoder_output(tmp_path):
    with pytest.raises(ValueError, match="decode"):
        viz.manifold(lambda z: np.zeros((len(z) - 1, 28, 28)), tmp_path / "m.png", n=3)
    with pytest.raises(ValueError, match="decode"):
        viz.manifold(lambda z: np.zeros((len(z), 784)), tmp_path / "m.png", n=3)
    with pytest.raises(ValueError, match="n must be"):
        viz.manifold(lambda z: np.zeros((len(z), 28, 28)), tmp_path / "m.png", n=0)


@pytest.mark.parametrize("call", [
    lambda p: viz.image_grid(np.zeros((4, 28)), p),
    lambda p: viz.image_grid(np.zeros((4, 3, 28, 28)), p),
    lambda p: viz.image_grid(np.zeros((0, 28, 28)), p),
    lambda p: viz.image_grid(np.zeros((4, 28, 28)), p, nrow=0),
    lambda p: viz.reconstructions(np.zeros((4, 28, 28)), np.zeros((4, 1, 14, 14)), p),
    lambda p: viz.reconstructions(np.zeros((4, 28, 28)), np.zeros((3, 28, 28)), p),
    lambda p: viz.reconstructions(np.zeros((4, 28, 28)), np.zeros((4, 28, 28)), p, n=0),
    lambda p: viz.interpolations(np.zeros((4, 28, 28)), p),
])
def test_mosaics_reject_bad_shapes(tmp_path, call):
    with pytest.raises(ValueError):
        call(tmp_path / "bad.png")


# ---------------------------------------------------------------- plots


def test_latent_scatter_2d_with_prior(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((300, 2))
    labels = rng.integers(0, 10, 300)
    path = viz.latent_scatter(z, labels, tmp_path / "z.png", title="codes",
                              prior=rng.standard_normal((500, 2)))
    assert png_shape(path) == (500, 640)


def test_latent_scatter_projects_higher_dimensions(tmp_path):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((200, 5)) * [4, 2, 1, 1, 1]
    assert png_shape(viz.latent_scatter(z, rng.integers(0, 3, 200), tmp_path / "a.png",
                                        prior=rng.standard_normal((100, 5)))) == (500, 640)
    assert png_shape(viz.latent_scatter(z, None, tmp_path / "b.png")) == (500, 640)
    # more than ten classes fall back to a continuous colormap with a colorbar
    assert png_shape(viz.latent_scatter(z, np.arange(200) % 20, tmp_path / "c.png")) == (500, 640)


def test_latent_scatter_projection_is_pca():
    """The picture of codes of more than two dimensions is PCA's encoder (models/pca.py), signs
    included, though viz computes it itself (viz sits below the models)."""
    rng = np.random.default_rng(2)
    z = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6)) + 3.0
    a = rng.standard_normal((40, 6))
    project = _onto_principal_plane(z)
    pca = PCA(2).fit(z)
    np.testing.assert_allclose(project(z), pca.encode(z), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(project(a), pca.encode(a), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("z, labels, prior", [
    (np.zeros(10), np.zeros(10), None),                 # 1-D codes
    (np.zeros((10, 1)), np.zeros(10), None),            # one latent dimension
    (np.zeros((10, 2)), np.zeros(9), None),             # labels of the wrong length
    (np.zeros((10, 3)), np.zeros(10), np.zeros((5, 2))),  # prior in the wrong dimension
])
def test_latent_scatter_rejects_bad_shapes(tmp_path, z, labels, prior):
    with pytest.raises(ValueError):
        viz.latent_scatter(z, labels, tmp_path / "bad.png", prior=prior)


def test_prior_density_draws_each_prior_and_rejects_bad_input(tmp_path):
    from minivae import priors
    rng = np.random.default_rng(3)
    z = rng.standard_normal((300, 2)) * [3, 1]
    shown = {"N(0, I)": priors.StandardPrior(2), "mixture": priors.MixturePrior(2, 4, rng=rng),
             "an array function": type("P", (), {"log_prob": staticmethod(
                 lambda g: -0.5 * (g ** 2).sum(axis=1))})()}
    path = viz.prior_density(z, rng.integers(0, 10, 300), shown, tmp_path / "p.png", title="t")
    height, width = png_shape(path)
    assert width > 2.5 * height  # three panels side by side
    for bad_z, labels, bad_priors in [(z[:, :1], None, shown), (z, np.zeros(5), shown),
                                       (z, None, {})]:
        with pytest.raises(ValueError, match="prior_density"):
            viz.prior_density(bad_z, labels, bad_priors, tmp_path / "q.png")
    assert not (tmp_path / "q.png").exists()


def test_loss_curves(tmp_path):
    history = [{"epoch": e, "train_loss": 200 / e + 90, "test_loss": 210 / e + 92,
                "test_rec": 150 / e + 70, "test_kl": 22 + 1 / e, "seconds": 3.0}
               for e in range(1, 6)]
    history[2]["test_kl"] = None                        # a gap, not an error
    assert png_shape(viz.loss_curves(history, tmp_path / "loss.png")) == (400, 600)
    only_train = [{"train_loss": 1.0 / e} for e in range(1, 4)]
    assert png_shape(viz.loss_curves(only_train, tmp_path / "train.png", title="t")) == (400, 600)


@pytest.mark.parametrize("history", [[], {"train_loss": [1, 2]}, [{"epoch": 1, "seconds": 2.0}],
                                     [1.0, 2.0]])
def test_loss_curves_rejects_bad_history(tmp_path, history):
    with pytest.raises(ValueError):
        viz.loss_curves(history, tmp_path / "bad.png")


def test_eigen_images_and_explained_variance(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.random((60, 196)) * np.linspace(0, 1, 196)  # 14 × 14 images keep eigh quick
    pca = PCA(20).fit(X)
    # 5 components + the mean = 6 panels in one row: (1.1·6 + 0.9) × (1.15 + 0.5) inches
    path = viz.eigen_images(pca.components_, tmp_path / "eig.png", n=5, mean=pca.mean_)
    assert png_shape(path) == (165, 750)
    # 16 components in two rows of 8: (1.1·8 + 0.9) × (1.15·2 + 0.5) inches
    assert png_shape(viz.eigen_images(pca.components_, tmp_path / "eig16.png")) == (280, 970)
    full = PCA(59).fit(X[:, :120])                      # 59 ratios: the 10 and 50 markers
    assert png_shape(viz.explained_variance(full.explained_variance_ratio_,
                                            tmp_path / "ev.png")) == (400, 600)


@pytest.mark.parametrize("call", [
    lambda p: viz.eigen_images(np.zeros((3, 780)), p),                     # not a square image
    lambda p: viz.eigen_images(np.zeros(784), p),                          # 1-D
    lambda p: viz.eigen_images(np.zeros((3, 784)), p, mean=np.zeros(100)),
    lambda p: viz.explained_variance(np.full(5, 0.3), p),                  # sums to 1.5
    lambda p: viz.explained_variance(np.zeros((2, 2)), p),
])
def test_pca_figures_reject_bad_input(tmp_path, call):
    with pytest.raises(ValueError):
        call(tmp_path / "bad.png")


def test_missing_matplotlib_says_how_to_install(tmp_path, monkeypatch, digits):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)            # import now fails
    with pytest.raises(ImportError, match=r'pip install "minivae\[examples\]"'):
        viz.image_grid(digits, tmp_path / "grid.png")


def test_creates_missing_folders(tmp_path, digits):
    path = viz.image_grid(digits, tmp_path / "a" / "b" / "grid.png")
    assert png_shape(path) == png_shape(viz.image_grid(digits, tmp_path / "grid.png"))
