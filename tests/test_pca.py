"""PCA against its defining properties, and the linear autoencoder against PCA.

Closed-form PCA (minivae.models.pca.PCA): orthonormal components; the mean reconstruction error on
the fitted data equals the sum of the discarded eigenvalues of the covariance normalised by N;
agreement with an SVD of the centred data up to sign; explained-variance ratios. Hypothesis draws
the data shapes. Then the gradient-descent twin (LinearAutoencoder) must find the same subspace.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minivae import optim
from minivae.models.pca import PCA, LinearAutoencoder, largest_principal_angle
from minivae.train import fit

EXAMPLES = settings(max_examples=30, deadline=None)


@st.composite
def problems(draw, max_n=40, max_d=12):
    """(X, k): random float64 data (N, D) with an uneven spectrum and a non-zero mean."""
    N = draw(st.integers(2, max_n))
    D = draw(st.integers(1, max_d))
    k = draw(st.integers(1, D))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scales = np.exp(rng.uniform(-2, 2, size=D))                         # (D,)
    X = rng.standard_normal((N, D)) * scales @ random_rotation(rng, D) + rng.normal(0, 3, D)
    return X, k


def random_rotation(rng, D):
    Q, R = np.linalg.qr(rng.standard_normal((D, D)))
    return Q * np.sign(np.diag(R))                                     # (D, D), Haar-distributed


def spread_data(rng, N, variances, shift=2.0):
    """N samples whose covariance has the given, well-separated eigenvalues (in a random basis)."""
    D = len(variances)
    Z = rng.standard_normal((N, D)) * np.sqrt(variances)               # (N, D)
    return Z @ random_rotation(rng, D).T + shift


# ---------------------------------------------------------------- closed-form PCA


@EXAMPLES
@given(problems())
def test_components_are_orthonormal_and_sorted(problem):
    X, k = problem
    pca = PCA(k).fit(X)
    W = pca.components_
    assert W.shape == (k, X.shape[1])
    np.testing.assert_allclose(W @ W.T, np.eye(k), atol=1e-10)
    assert np.all(np.diff(pca.eigenvalues_) <= 0), "eigenvalues not descending"
    np.testing.assert_array_equal(pca.explained_variance_, pca.eigenvalues_[:k])


@EXAMPLES
@given(problems())
def test_reconstruction_error_is_the_sum_of_discarded_eigenvalues(problem):
    """mean_n ‖x_n − x̂_n‖² = Σ_{i>k} λ_i, with λ the eigenvalues of C = X̄ᵀX̄ / N (divisor N)."""
    X, k = problem
    pca = PCA(k).fit(X)
    total = np.var(X, axis=0).sum()                                    # np.var divides by N
    np.testing.assert_allclose(pca.eigenvalues_.sum(), total, rtol=1e-10)
    discarded = pca.eigenvalues_[k:].sum()
    assert abs(pca.reconstruction_error(X) - discarded) <= 1e-9 * total + 1e-12


@EXAMPLES
@given(problems())
def test_explained_variance_ratio_sums_to_at_most_one(problem):
    X, k = problem
    D = X.shape[1]
    ratio = PCA(k).fit(X).explained_variance_ratio_
    assert ratio.shape == (k,) and np.all(ratio >= 0)
    assert ratio.sum() <= 1 + 1e-12
    np.testing.assert_allclose(PCA(D).fit(X).explained_variance_ratio_.sum(), 1.0, rtol=1e-12)


@EXAMPLES
@given(problems())
def test_sign_convention_largest_entry_positive(problem):
    X, k = problem
    W = PCA(k).fit(X).components_
    largest = W[np.arange(k), np.argmax(np.abs(W), axis=1)]
    assert np.all(largest > 0)


@EXAMPLES
@given(problems())
def test_full_rank_pca_reconstructs_exactly(problem):
    X, _ = problem
    pca = PCA(X.shape[1]).fit(X)
    np.testing.assert_allclose(pca.decode(pca.encode(X)), X, atol=1e-9 * (1 + np.abs(X).max()))


@pytest.mark.parametrize("seed", range(5))
def test_matches_svd_of_centred_data_up_to_sign(seed):
    rng = np.random.default_rng(seed)
    X = spread_data(rng, N=200, variances=[9.0, 5.0, 3.0, 2.0, 1.0, 0.5, 0.25, 0.1])
    k = 4
    pca = PCA(k).fit(X)
    X_bar = X - X.mean(axis=0)
    _, S, Vt = np.linalg.svd(X_bar, full_matrices=False)
    signs = np.sign(np.sum(Vt[:k] * pca.components_, axis=1))          # (k,), ±1
    np.testing.assert_allclose(pca.components_, signs[:, None] * Vt[:k], atol=1e-10)
    np.testing.assert_allclose(pca.explained_variance_, S[:k] ** 2 / len(X), rtol=1e-10)
    np.testing.assert_allclose(pca.encode(X), X_bar @ pca.components_.T, atol=1e-10)


def test_fit_is_deterministic_under_row_order():
    """The sign convention makes the components independent of round-off in the eigensolver."""
    rng = np.random.default_rng(0)
    X = spread_data(rng, N=300, variances=[5.0, 3.0, 2.0, 1.0, 0.5])
    a = PCA(3).fit(X).components_
    b = PCA(3).fit(X[rng.permutation(len(X))]).components_
    np.testing.assert_allclose(a, b, atol=1e-10)


def test_float32_input_keeps_float32_output():
    rng = np.random.default_rng(1)
    X = spread_data(rng, N=50, variances=[3.0, 2.0, 1.0]).astype(np.float32)
    pca = PCA(2).fit(X)
    Z = pca.encode(X)
    assert Z.dtype == np.float32 and Z.shape == (50, 2)
    assert pca.decode(Z).dtype == np.float32 and pca.decode(Z).shape == (50, 3)


# ---------------------------------------------------------------- repeated eigenvalues (issue 14)


def data_with_spectrum(rng, N, eigenvalues, shift=1.5):
    """N rows whose covariance (divisor N) has exactly these eigenvalues, in a random basis:
    X̄ = √N · Q diag(√λ) Rᵀ with Q (N, D) orthonormal columns orthogonal to the ones vector (so
    the mean is `shift` exactly) and R a random rotation, so X̄ᵀX̄ / N = R diag(λ) Rᵀ."""
    D = len(eigenvalues)
    A = rng.standard_normal((N, D))
    Q, _ = np.linalg.qr(A - A.mean(axis=0))                            # (N, D), columns ⊥ 1
    return np.sqrt(N) * (Q * np.sqrt(eigenvalues)) @ random_rotation(rng, D).T + shift


@st.composite
def clustered_spectra(draw):
    """1 to 4 levels (0 allowed), each repeated 1 to 4 times, each copy moved by nothing or by a
    relative 1e-13 .. 1e-9: repeated and near-repeated eigenvalues, shuffled."""
    levels = draw(st.lists(st.sampled_from([0.0]) | st.floats(0.01, 10), min_size=1, max_size=4,
                           unique=True))
    spectrum = []
    for level in levels:
        for _ in range(draw(st.integers(1, 4))):
            nudge = draw(st.sampled_from([0.0]) | st.floats(1e-13, 1e-9))
            spectrum.append(level * (1 + draw(st.sampled_from([-1, 1])) * nudge))
    return np.array(draw(st.permutations(spectrum)))


def check_pca_on_spectrum(X, eigenvalues, k):
    """Real, orthonormal, sorted, the eigenvalues those of the data, and the reconstruction error
    the sum of the discarded ones (which are defined even when a level straddles k)."""
    pca = PCA(k).fit(X)
    W, lam = pca.components_, pca.eigenvalues_
    truth = np.sort(eigenvalues)[::-1]
    scale = 1 + truth.max()
    assert W.dtype == np.float64 and lam.dtype == np.float64, (W.dtype, lam.dtype)  # not complex
    assert np.all(np.isfinite(W)) and W.shape == (k, X.shape[1])
    np.testing.assert_allclose(W @ W.T, np.eye(k), atol=1e-10)
    assert np.all(np.diff(lam) <= 0), f"eigenvalues not descending: {lam}"
    np.testing.assert_allclose(lam, truth, atol=1e-10 * scale)
    np.testing.assert_array_equal(pca.explained_variance_, lam[:k])
    assert abs(pca.reconstruction_error(X) - truth[k:].sum()) <= 1e-9 * scale


@settings(max_examples=60, deadline=None)
@given(spectrum=clustered_spectra(), extra_rows=st.integers(1, 40), k=st.data(),
       seed=st.integers(0, 2**32 - 1))
def test_repeated_and_near_repeated_eigenvalues(spectrum, extra_rows, k, seed):
    D = len(spectrum)
    X = data_with_spectrum(np.random.default_rng(seed), D + extra_rows, spectrum)
    check_pca_on_spectrum(X, spectrum, k.draw(st.integers(1, D)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_data_on_which_eig_returns_complex_unsorted_output(seed):
    """A spectrum of three repeated levels (and zeros): here numpy.linalg.eig returns complex
    round-off, unsorted eigenvalues and a non-orthogonal basis; PCA must not."""
    spectrum = np.array([4, 4, 4, 1, 1, 1, 1, 0.25, 0.25, 0, 0, 0], float)
    for attempt in range(seed, 1000, 3):  # the first data of this seed's family where eig fails
        X = data_with_spectrum(np.random.default_rng(attempt), 40, spectrum)
        C = np.cov(X.T, bias=True)
        values, vectors = np.linalg.eig(C)
        if np.iscomplexobj(values) and np.abs(values.imag).max() > 0:
            break
    assert np.iscomplexobj(values) and np.any(np.diff(values.real) > 0)
    assert np.abs(vectors.real.T @ vectors.real - np.eye(12)).max() > 1e-6
    for k in (2, 3, 5, 9):
        check_pca_on_spectrum(X, spectrum, k)


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("n_components", [0, -1, 2.5, "3", True, None])
def test_bad_n_components_raises(n_components):
    with pytest.raises(ValueError, match="n_components"):
        PCA(n_components)


def test_n_components_larger_than_d_raises():
    with pytest.raises(ValueError, match="1..D = 1..3"):
        PCA(4).fit(np.zeros((10, 3)))


@pytest.mark.parametrize("X, match", [
    (np.zeros(10), "2-D"),
    (np.zeros((4, 1, 28, 28)), "flatten"),
    (np.zeros((10, 3), dtype=np.uint8), "float"),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), "NaN"),
    (np.zeros((1, 3)), "at least 2 samples"),
])
def test_bad_data_raises(X, match):
    with pytest.raises(ValueError, match=match):
        PCA(1).fit(X)


def test_use_before_fit_and_wrong_widths_raise():
    pca = PCA(2)
    for method in (pca.encode, pca.decode, pca.reconstruction_error):
        with pytest.raises(ValueError, match="fit"):
            method(np.zeros((3, 4)))
    pca.fit(np.random.default_rng(0).standard_normal((20, 4)))
    with pytest.raises(ValueError, match="4 features"):
        pca.encode(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="2 features"):
        pca.decode(np.zeros((3, 3)))


def test_constant_data_has_zero_ratios():
    pca = PCA(2).fit(np.ones((5, 3)))
    np.testing.assert_array_equal(pca.explained_variance_ratio_, [0.0, 0.0])
    assert pca.reconstruction_error(np.ones((5, 3))) == 0.0


# ---------------------------------------------------------------- principal angles


def test_principal_angle_of_known_subspaces():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3, 7))
    assert largest_principal_angle(A, random_rotation(rng, 3) @ A) < 1e-7  # same span
    e = np.eye(3)
    assert largest_principal_angle(e[:1], e[1:2]) == pytest.approx(np.pi / 2)
    theta = 0.3
    tilted = np.array([[np.cos(theta), np.sin(theta), 0.0]])
    assert largest_principal_angle(e[:1], tilted) == pytest.approx(theta, abs=1e-12)
    assert largest_principal_angle(e[:1], np.array([[1.0, 1e-9, 0.0]])) == pytest.approx(1e-9)


# ---------------------------------------------------------------- gradient descent finds PCA


def test_linear_autoencoder_spans_the_pca_subspace():
    """Adam on the notes' objective mean_n ‖WᵀW x̄_n − x̄_n‖² lands on the leading eigenspace:
    D = 10, k = 3, eigenvalue gap 4 -> 1 between the kept and the discarded directions."""
    rng = np.random.default_rng(0)
    X = spread_data(rng, N=500, variances=[10, 6, 4, 1, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1], shift=3.0)
    pca = PCA(3).fit(X)
    ae = LinearAutoencoder(10, 3, rng=np.random.default_rng(1), dtype=np.float64)
    before = largest_principal_angle(ae.weight.data, pca.components_)
    history = fit(ae.center(X), optim.Adam(ae.parameters(), lr=3e-2), X, X, epochs=600,
                  batch_size=len(X), log=lambda *_: None)  # full batch: an epoch is one step
    losses = [h["train_loss"] for h in history]
    after = largest_principal_angle(ae.weight.data, pca.components_)
    assert before > 0.3, "the random start should not already be the answer"
    assert after < 1e-2, f"largest principal angle {after:.2e} rad"
    W = ae.weight.data
    np.testing.assert_allclose(W @ W.T, np.eye(3), atol=1e-3)         # WᵀW is a projector
    assert losses[-1] == pytest.approx(pca.reconstruction_error(X), rel=1e-6)
    assert losses[-1] < losses[0]


def test_linear_autoencoder_minibatches_and_float32():
    rng = np.random.default_rng(3)
    X = spread_data(rng, N=400, variances=[8, 4, 1, 0.5, 0.25, 0.1]).astype(np.float32)
    pca = PCA(2).fit(X)
    ae = LinearAutoencoder(6, 2, rng=rng)
    assert ae.weight.dtype == np.float32
    fit(ae.center(X), optim.Adam(ae.parameters(), lr=1e-2), X, X, epochs=115, batch_size=64,
        seed=3, log=lambda *_: None)  # 7 steps an epoch: 805 steps
    assert largest_principal_angle(ae.weight.data, pca.components_) < 0.1  # SGD noise: looser
    z = ae.encode(X[:5])
    assert z.shape == (5, 2) and ae(X[:5]).shape == (5, 6)
    assert [name for name, _ in ae.named_parameters()] == ["weight"]


def test_linear_autoencoder_bad_sizes_raise():
    with pytest.raises(ValueError, match="1 <= k <= D"):
        LinearAutoencoder(3, 4)
    with pytest.raises(ValueError, match="3 features"):
        LinearAutoencoder(3, 2).center(np.zeros((5, 4)))
