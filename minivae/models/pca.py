"""Principal component analysis, in closed form and by gradient descent.

The lecture notes this library follows (not part of the repository: every equation used from
them is stated here and in docs/derivations.md) write PCA as the linear autoencoder

    z = W x̄,    x̂ = Wᵀ z,    Σ_n ‖Wᵀ W x̄_n − x̄_n‖² → min over W,

with x̄ = x − m the centred data, m the data mean and W of shape (k, D). Written out for data that
are not centred beforehand:

    encode:  z = W (x − m)          (k,)
    decode:  x̂ = Wᵀ z + m           (D,)

The minimum is reached when the rows of W are an orthonormal basis of the span of the k leading
eigenvectors of the data covariance C = (1/N) Σ_n x̄_n x̄_nᵀ (Eckart–Young), and then the mean
squared reconstruction error over the data is exactly the sum of the D − k discarded eigenvalues.
Two ways to get there:

- `PCA` solves it in closed form: eigendecomposition of C with `numpy.linalg.eigh` (C is
  symmetric, so eigh's real, sorted eigenvalues and orthonormal eigenvectors are the right tool;
  `eig` could return complex round-off and an unsorted, non-orthogonal basis).
- `LinearAutoencoder` minimises the same objective with minivae's autodiff, trained by
  train.fit like every other model (Adam; the whole data as one batch, or minibatches). It learns
  *a* basis of the same subspace — any W' = Q W with Q orthogonal (k, k) gives the same WᵀW —
  so compare the two by the principal angles between their row spaces
  (`largest_principal_angle`), not entry by entry.

Conventions:
- Inputs are 2-D float arrays (N, D); images are flattened by the caller:
  `x.reshape(len(x), -1)`. `fit` does not guess at image shapes.
- The covariance is normalised by N (the maximum-likelihood estimate), not N − 1, so that
  `reconstruction_error(X_fit) == eigenvalues_[k:].sum()` holds exactly. (scikit-learn's
  `explained_variance_` uses N − 1; multiply ours by N / (N − 1) to compare.)
- Each component's sign is fixed so that its entry of largest magnitude is positive: eigenvectors
  are defined only up to sign, and this makes fits reproducible across LAPACK builds.

References: K. Pearson (1901), "On lines and planes of closest fit to systems of points in space";
C. Eckart & G. Young (1936), "The approximation of one matrix by another of lower rank";
P. Baldi & K. Hornik (1989), "Neural networks and principal component analysis: learning from
examples without local minima".
"""
from __future__ import annotations

import numpy as np

from minivae import checks
from minivae import nn
from minivae.tensor import Tensor, as_tensor


def _check_2d_float(X, name: str, D: int | None = None) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (N, D), got shape {X.shape}; "
                         f"flatten images first with x.reshape(len(x), -1)")
    if not np.issubdtype(X.dtype, np.floating):
        raise ValueError(f"{name}: expected a float array, got dtype {X.dtype}; convert images "
                         f"with minivae.data.to_float (uint8 0..255 -> float 0..1) first")
    if D is not None and X.shape[1] != D:
        raise ValueError(f"{name}: expected {D} features per row, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name}: the input contains NaN or infinity")
    return X


class PCA:
    """PCA(n_components).fit(X): the k leading eigenvectors of the covariance of X (N, D).

    After `fit`:
        mean_                     (D,)   m, the data mean
        components_               (k, D) W, orthonormal rows, by eigenvalue descending
        eigenvalues_              (D,)   all eigenvalues of C = X̄ᵀX̄ / N, descending (clipped at 0)
        explained_variance_       (k,)   the k leading eigenvalues
        explained_variance_ratio_ (k,)   those divided by the total variance Σ of all D eigenvalues
    """

    def __init__(self, n_components: int):
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
            raise ValueError(f"PCA: n_components must be an integer, got {n_components!r}")
        if n_components < 1:
            raise ValueError(f"PCA: n_components must be at least 1, got {n_components}")
        self.n_components = int(n_components)
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> "PCA":
        X = _check_2d_float(X, "PCA.fit")
        N, D = X.shape
        k = self.n_components
        if N < 2:
            raise ValueError(f"PCA.fit: need at least 2 samples, got {N}")
        if k > D:
            raise ValueError(f"PCA.fit: n_components must be in 1..D = 1..{D}, got {k}")

        X = X.astype(np.float64)                    # the covariance in float64, whatever X's dtype
        m = X.mean(axis=0)                          # (D,)
        X_bar = X - m                               # (N, D)
        # exercise pca: the covariance, its eigendecomposition, the k leading directions
        C = X_bar.T @ X_bar / N                     # (D, D), normalised by N (see the docstring)
        eigenvalues, eigenvectors = np.linalg.eigh(C)  # ascending; eigenvectors in the columns
        order = np.argsort(eigenvalues)[::-1]       # descending
        eigenvalues = np.clip(eigenvalues[order], 0.0, None)  # C is PSD; clip −1e-17 round-off
        W = eigenvectors[:, order[:k]].T            # (k, D)
        # end exercise

        # Sign convention: the largest-magnitude entry of each component is positive.
        largest = np.argmax(np.abs(W), axis=1)      # (k,)
        W *= np.sign(W[np.arange(k), largest])[:, None]

        self.load_state_dict({"mean": m, "components": W, "eigenvalues": eigenvalues})
        return self

    # ------------------------------------------------------------ saving and loading
    @property
    def config(self) -> dict:
        """What from_config rebuilds it from: k and, once fitted, D."""
        D = None if self.components_ is None else self.components_.shape[1]
        return {"n_components": self.n_components, "dim": D}

    @classmethod
    def from_config(cls, config: dict, dtype=None) -> "PCA":
        """A PCA with the shapes a config says, all zeros until load_state_dict fills it (as
        runs.load_run does); `dtype` is unused (PCA computes in float64)."""
        pca, D = cls(config["n_components"]), config["dim"]
        pca.load_state_dict({"mean": np.zeros(D), "components": np.zeros((pca.n_components, D)),
                             "eigenvalues": np.zeros(D)})
        return pca

    def state_dict(self) -> dict[str, np.ndarray]:
        """m, W and all D eigenvalues: everything fit computes (checkpoint.save_model saves it)."""
        m, W = self._fitted("state_dict")
        return {"mean": m, "components": W, "eigenvalues": self.eigenvalues_}

    def load_state_dict(self, state: dict) -> None:
        m, W, eigenvalues = (np.asarray(state[k], np.float64)
                             for k in ("mean", "components", "eigenvalues"))
        k = self.n_components
        if W.shape != (k, len(m)) or eigenvalues.shape != m.shape:
            raise ValueError(f"PCA.load_state_dict: expected mean (D,), components ({k}, D) and "
                             f"eigenvalues (D,), got {m.shape}, {W.shape}, {eigenvalues.shape}")
        total = eigenvalues.sum()
        self.mean_, self.components_, self.eigenvalues_ = m, W, eigenvalues
        self.explained_variance_ = eigenvalues[:k].copy()
        self.explained_variance_ratio_ = (eigenvalues[:k] / total if total > 0
                                          else np.zeros(k))  # constant data: no variance at all

    def _fitted(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """m and W, once fit has computed them."""
        if self.mean_ is None or self.components_ is None:
            raise ValueError(f"PCA.{name}: call fit(X) first")
        return self.mean_, self.components_

    def encode(self, X: np.ndarray) -> np.ndarray:
        """z = W (x − m) for each row: (N, D) -> (N, k), in the dtype of X."""
        m, W = self._fitted("encode")
        X = _check_2d_float(X, "PCA.encode", D=W.shape[1])
        Z = (X - m) @ W.T                           # (N, k)
        return Z.astype(X.dtype, copy=False)

    def decode(self, Z: np.ndarray) -> np.ndarray:
        """x̂ = Wᵀ z + m for each row: (N, k) -> (N, D), in the dtype of Z."""
        m, W = self._fitted("decode")
        Z = _check_2d_float(Z, "PCA.decode", D=W.shape[0])
        X_hat = Z @ W + m                           # (N, D)
        return X_hat.astype(Z.dtype, copy=False)

    def reconstruction_error(self, X: np.ndarray) -> float:
        """(1/N) Σ_n ‖x_n − x̂_n‖²: the squared error per sample, summed over the D features."""
        _, W = self._fitted("reconstruction_error")
        X = _check_2d_float(X, "PCA.reconstruction_error", D=W.shape[1]).astype(np.float64)
        X_hat = self.decode(self.encode(X))         # (N, D)
        return float(np.mean(np.sum((X - X_hat) ** 2, axis=1)))

    def __repr__(self) -> str:
        return f"PCA(n_components={self.n_components})"


class LinearAutoencoder(nn.Module):
    """The notes' PCA objective trained by gradient descent: one weight W (k, D), tied encoder
    and decoder, z = W (x − m), x̂ = Wᵀ z + m, loss = (1/N) Σ_n ‖Wᵀ W x̄_n − x̄_n‖².

    The mean m is not learned: `center(X)` sets it to the data mean, as PCA.fit does; then
    train.fit trains W. The loss has no spurious local minima (Baldi & Hornik 1989): every
    minimum spans the leading eigenvectors, and there WᵀW is the orthogonal projector onto them,
    so the rows of W come out orthonormal too.

        ae = LinearAutoencoder(D, k, rng=rng).center(X)
        fit(ae, optim.Adam(ae.parameters(), lr=1e-2), X, X_test, epochs=300, batch_size=len(X))
    """

    def __init__(self, D: int, k: int, rng: np.random.Generator | None = None, dtype=np.float32):
        if not 1 <= k <= D:
            raise ValueError(f"LinearAutoencoder: need 1 <= k <= D, got k={k}, D={D}")
        rng = checks.generator(rng, "LinearAutoencoder")
        self.D, self.k = D, k
        # Rows of norm about 1: WᵀW starts close to a (random) projector's scale.
        self.weight = nn.Parameter((rng.standard_normal((k, D)) / np.sqrt(D)).astype(dtype))
        self.mean = np.zeros(D, dtype=dtype)        # a buffer, not a Parameter

    def center(self, X: np.ndarray) -> "LinearAutoencoder":
        """m = the mean of the data X (N, D), as PCA.fit sets it; returns the model."""
        X = _check_2d_float(X, "LinearAutoencoder.center", D=self.D)
        self.mean = X.mean(axis=0).astype(self.weight.dtype)  # (D,)
        return self

    def encode(self, x) -> Tensor:
        return (x - self.mean) @ self.weight.T      # (B, D) -> (B, k)

    def decode(self, z) -> Tensor:
        return z @ self.weight + self.mean          # (B, k) -> (B, D)

    def forward(self, x) -> Tensor:
        return self.decode(self.encode(x))          # (B, D)

    def loss(self, x, rng=None) -> tuple[Tensor, dict]:
        """(1/B) Σ_n ‖x̂_n − x_n‖², the squared reconstruction error per sample, for train.fit
        (`rng` is unused: the model is deterministic)."""
        x = as_tensor(x)
        return ((self(x) - x) ** 2).sum(axis=1).mean(), {}

    def extra_repr(self) -> str:
        return f"D={self.D}, k={self.k}"


def largest_principal_angle(A: np.ndarray, B: np.ndarray) -> float:
    """The largest principal angle (radians) between the row spaces of A (k, D) and B (k, D).

    With orthonormal bases Q_A, Q_B (D, k) of the two spaces it is arcsin ‖(I − Q_A Q_Aᵀ) Q_B‖₂:
    the sine form stays accurate for small angles, where arccos of the cosines would not.
    0 means the same subspace; π/2 means some direction of one is orthogonal to the other.
    """
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    if A.ndim != 2 or A.shape != B.shape:
        raise ValueError(f"largest_principal_angle: need two (k, D) arrays of one shape, "
                         f"got {A.shape} and {B.shape}")
    Q_A, _ = np.linalg.qr(A.T)                      # (D, k)
    Q_B, _ = np.linalg.qr(B.T)                      # (D, k)
    residual = Q_B - Q_A @ (Q_A.T @ Q_B)            # (D, k): the part of B's space outside A's
    sine = float(np.linalg.norm(residual, ord=2))
    return float(np.arcsin(min(sine, 1.0)))
