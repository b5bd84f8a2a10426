"""Pictures of the latent space: the decoded latent grid, codes as a scatter, codes over a
prior's density.

    manifold(decode, path)                Kingma & Welling (2014), Figure 4: decoded latent grid
    latent_scatter(z, labels, path)       codes coloured by class (PCA-projected if dim z > 2)
    prior_density(z, labels, priors, path) 2-D codes over contours of one or more priors' density
    prior_figures(model, x, labels, out)  the two above for a model with a prior

The manifold needs the inverse CDF of the standard normal, written here in NumPy
(`normal_ppf`: Acklam's rational approximation polished by one Halley step) so that minivae needs
no scipy.

References: D. P. Kingma & M. Welling (2014), "Auto-Encoding Variational Bayes", Figure 4;
P. J. Acklam (2003), "An algorithm for computing the inverse normal cumulative distribution
function".
"""
from __future__ import annotations

import math
import os

import numpy as np

from minivae.metrics import encode_all
from minivae.priors import StandardPrior
from minivae.tensor import Tensor, no_grad
from minivae.viz.canvas import _PAD, _figure, _images, _mosaic_figure, _save, _tile
from minivae.viz.images import image_grid

# ---------------------------------------------------------------- the inverse normal CDF

# Acklam's coefficients: x ≈ a(r) q / b(r) in the centre (q = p − ½, r = q²) and c(q) / d(q) in
# the tails (q = √(−2 ln p)); relative error below 1.15e-9 before refinement.
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01, 1.0)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00, 1.0)
_P_LOW = 0.02425  # below this the tail formula takes over

_erfc = np.frompyfunc(math.erfc, 1, 1)  # math.erfc, elementwise


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x) = ½ erfc(−x/√2); accurate to full relative precision in the lower tail."""
    return 0.5 * np.asarray(_erfc(-x / math.sqrt(2.0)), dtype=np.float64)


def normal_ppf(p) -> np.ndarray:
    """Φ⁻¹(p), the inverse CDF of the standard normal, elementwise, to about 1e-15.

    By symmetry Φ⁻¹(p) = −Φ⁻¹(1 − p), so only p ≤ ½ is computed (1 − p is exact in floating point
    for p ≥ ½, and the lower tail is where Φ has full relative precision). Acklam's rational
    approximation gives ~1e-9; one Halley step on Φ(x) − p = 0 makes it exact to round-off.
    p = 0 and p = 1 give −inf and +inf; p outside [0, 1] raises ValueError.
    """
    p = np.asarray(p, dtype=np.float64)
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("normal_ppf: probabilities must lie in [0, 1]")
    upper = p > 0.5
    q_low = np.where(upper, 1.0 - p, p)             # in [0, ½]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Acklam's approximation on the lower half.
        q = q_low - 0.5
        r = q * q
        centre = np.polyval(_A, r) * q / np.polyval(_B, r)
        t = np.sqrt(-2.0 * np.log(q_low))
        tail = np.polyval(_C, t) / np.polyval(_D, t)
        x = np.where(q_low < _P_LOW, tail, centre)

        # One Halley step: e = Φ(x) − p, u = e / φ(x), x <- x − u / (1 + x u / 2).
        # Skipped where φ(x) underflows (|x| > 37, p < 1e-300): there Acklam's 1e-9 stands.
        refine = np.isfinite(x) & (np.abs(x) < 37.0)
        e = _normal_cdf(np.where(refine, x, 0.0)) - q_low
        u = e * math.sqrt(2 * math.pi) * np.exp(0.5 * np.where(refine, x, 0.0) ** 2)
        x = np.where(refine, x - u / (1.0 + 0.5 * x * u), x)
    x = np.where(q_low == 0.0, -np.inf, x)
    return np.where(upper, -x, x)


def _onto_principal_plane(z: np.ndarray):
    """The projection a -> (a − m) Vᵀ onto the first two principal axes V (2, d) of the codes z
    (N, d), m their mean: PCA's encoder (models/pca.py), here by the SVD of the centred codes, each
    axis signed so that its largest entry is positive, as PCA's are."""
    m = z.mean(axis=0)
    _, _, vt = np.linalg.svd(z - m, full_matrices=False)
    V = vt[:2] * np.sign(vt[:2][np.arange(2), np.abs(vt[:2]).argmax(axis=1)])[:, None]  # (2, d)
    return lambda a: (a - m) @ V.T


def manifold(decode, path, n: int = 20, title: str | None = None) -> str:
    """Kingma & Welling (2014), Figure 4: decode an n × n grid of 2-D latent codes.

    The grid is evenly spaced in probability, u = (i + ½)/n for i = 0..n−1 on both axes, and
    mapped through the standard normal's inverse CDF, z = Φ⁻¹(u), so that each cell covers equal
    mass of the prior N(0, I). `decode` maps z, a float32 array (n², 2), to images (n², H, W) or
    (n², 1, H, W) in [0, 1], as an array or a minivae Tensor (it runs under no_grad), e.g.
    `lambda z: F.sigmoid(model.decode(Tensor(z)))`. z₁ grows to the right, z₂ upwards."""
    if n < 1:
        raise ValueError(f"manifold: n must be at least 1, got {n}")
    z_axis = normal_ppf((np.arange(n) + 0.5) / n)   # (n,), increasing
    z1, z2 = np.meshgrid(z_axis, z_axis[::-1])      # (n, n): rows top to bottom = z₂ falling
    z = np.stack([z1.ravel(), z2.ravel()], axis=1).astype(np.float32)  # (n², 2)
    with no_grad():                                 # a decoder of Tensors need not record a graph
        images = decode(z)
    images = images.data if isinstance(images, Tensor) else np.asarray(images)
    if images.ndim not in (3, 4) or images.shape[0] != n * n:
        raise ValueError(f"manifold: decode(z) with z of shape {z.shape} must return "
                         f"({n * n}, H, W) or ({n * n}, 1, H, W) images, got {images.shape}")
    images = _images(images, "manifold")            # (n², H, W)
    H, W = images.shape[1:]
    fig, ax = _mosaic_figure(_tile(images.reshape(n, n, H, W), fill=0.5),
                             title or "decoded latent grid, z = Φ⁻¹(u) for u on a grid in (0, 1)²",
                             axis_labels=("z₁", "z₂"))
    # A few ticks, placed symmetrically (z is symmetric about 0): 4 for even n, 5 for odd n.
    shown = np.unique(np.linspace(0, n - 1, min(n, 4 + n % 2)).round().astype(int))
    ax.set_xticks(_PAD + shown * (W + _PAD) + (W - 1) / 2, [f"{v:.2f}" for v in z_axis[shown]])
    ax.set_yticks(_PAD + shown * (H + _PAD) + (H - 1) / 2,
                  [f"{v:.2f}" for v in z_axis[::-1][shown]])
    for side in ax.spines.values():
        side.set_visible(False)
    return _save(fig, path)


def latent_scatter(z, labels, path, title: str | None = None, prior=None) -> str:
    """Codes z (N, d), d ≥ 2, as a scatter coloured by integer class `labels` (N,) (or None).

    For d > 2 the codes are projected onto their first two principal components (the axis labels
    say so); `prior`, optional samples (M, d) from the prior, is drawn under the codes in faint
    grey, projected the same way."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2 or len(z) < 2:
        raise ValueError(f"latent_scatter: expected codes of shape (N, d) with N, d >= 2, "
                         f"got {z.shape}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(z),):
            raise ValueError(f"latent_scatter: labels must have shape ({len(z)},), "
                             f"got {labels.shape}")
    if prior is not None:
        prior = np.asarray(prior, dtype=np.float64)
        if prior.ndim != 2 or prior.shape[1] != z.shape[1]:
            raise ValueError(f"latent_scatter: prior samples must have shape (M, {z.shape[1]}), "
                             f"got {prior.shape}")

    d = z.shape[1]
    if d > 2:
        project = _onto_principal_plane(z)
        z = project(z)                              # (N, 2)
        prior = None if prior is None else project(prior)
        xlabel, ylabel = (f"PC {i} of z (PCA of the {d}-D codes)" for i in (1, 2))
    else:
        xlabel, ylabel = "z₁", "z₂"

    fig = _figure(6.4, 5.0, layout="constrained")
    ax = fig.add_subplot()
    if prior is not None:
        ax.scatter(prior[:, 0], prior[:, 1], s=3, c="0.6", alpha=0.25, linewidths=0,
                   label="prior samples", rasterized=True)
    order = np.random.default_rng(0).permutation(len(z))  # no class is drawn over all others
    size = float(np.clip(20000 / len(z), 3, 25))  # marker area: smaller for more points
    if labels is None:
        ax.scatter(z[order, 0], z[order, 1], s=size, alpha=0.7, linewidths=0, rasterized=True)
    else:
        classes = np.unique(labels)
        if len(classes) <= 10:
            import matplotlib
            from matplotlib.lines import Line2D
            tab10 = matplotlib.colormaps["tab10"]
            colours = tab10(np.searchsorted(classes, labels))
            ax.scatter(z[order, 0], z[order, 1], s=size, c=colours[order], alpha=0.7,
                       linewidths=0, rasterized=True)
            handles = [Line2D([], [], ls="", marker="o", ms=6, color=tab10(i), label=str(c))
                       for i, c in enumerate(classes)]
            if prior is not None:
                handles.append(Line2D([], [], ls="", marker="o", ms=6, color="0.6", alpha=0.5,
                                      label="prior"))
            ax.legend(handles=handles, title="label", loc="center left",
                      bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=9)
        else:  # many classes: a continuous colormap and a colorbar
            points = ax.scatter(z[order, 0], z[order, 1], s=size, c=labels[order],
                                cmap="viridis", alpha=0.7, linewidths=0, rasterized=True)
            fig.colorbar(points, ax=ax, label="label")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title or f"latent codes (N = {len(z)})", fontsize=11)
    return _save(fig, path)


def prior_density(z, labels, priors: dict, path, title: str | None = None, n: int = 200) -> str:
    """2-D codes z (N, 2), coloured by integer `labels` (N,) (or None), over the contours of each
    prior's density, one panel per entry of `priors`: {name: p} with p.log_prob mapping points
    (G, 2) to ln p (G,), as an array or a minivae Tensor (it runs under no_grad) - the priors of
    minivae.priors, say. The panels share one extent, the codes' and N(0, I)'s, so the priors
    can be compared: where a learned prior puts its mass against where the codes are. The grey
    levels are ln p in steps of one nat below each prior's peak."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != 2 or len(z) < 2:
        raise ValueError(f"prior_density: expected 2-D codes of shape (N, 2), got {z.shape}")
    if labels is not None and np.shape(labels) != (len(z),):
        raise ValueError(f"prior_density: labels must have shape ({len(z)},), "
                         f"got {np.shape(labels)}")
    if not priors:
        raise ValueError("prior_density: give at least one prior, {name: prior}")
    low = np.minimum(z.min(axis=0), -3)  # the codes, and where N(0, I) has its mass
    high = np.maximum(z.max(axis=0), 3)
    margin = 0.05 * (high - low)
    u, v = (np.linspace(low[i] - margin[i], high[i] + margin[i], n) for i in (0, 1))
    grid = np.stack(np.meshgrid(u, v), axis=-1).reshape(-1, 2)  # (n², 2)
    size = float(np.clip(8000 / len(z), 2, 12))

    aspect = float(np.clip((v[-1] - v[0]) / (u[-1] - u[0]), 0.4, 1.5))  # height / width
    fig = _figure(4.6 * len(priors), 4.6 * aspect + 0.9, layout="constrained")
    for i, (name, prior) in enumerate(priors.items()):
        ax = fig.add_subplot(1, len(priors), i + 1)
        with no_grad():
            log_p = prior.log_prob(grid.astype(np.float32))  # (n²,)
        log_p = log_p.data if isinstance(log_p, Tensor) else np.asarray(log_p)
        log_p = log_p.astype(np.float64).reshape(n, n)
        # Contours of ln p over the 8 nats below its peak: a density's peaks would hide the
        # broad mass of a learned mixture on a linear scale.
        peak = log_p.max()
        ax.contourf(u, v, np.maximum(log_p, peak - 8.0), levels=np.linspace(peak - 8.0, peak, 9),
                    cmap="Greys", alpha=0.8)
        colours = None if labels is None else np.asarray(labels)
        ax.scatter(z[:, 0], z[:, 1], s=size, c=colours, cmap="tab10", vmin=-0.5, vmax=9.5,
                   alpha=0.6, linewidths=0, rasterized=True)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("z₁")
        ax.set_ylabel("z₂")
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def prior_figures(model, x: np.ndarray, labels, out: str) -> list[str]:
    """The pictures of a latent model's prior, written into the folder `out`; the paths written.
    With a 2-D latent, prior_density.png: the codes E[z|x] of the images x over N(0, I) and, for a
    learned prior, over it too. With the VampPrior, pseudo_inputs.png: its pseudo-inputs u_k as
    images (clipped to [0, 1] for display; they are free parameters)."""
    name, written = model.config.prior, []
    if model.config.latent_dim == 2:
        shown = {"N(0, I)": StandardPrior(2)} | (
            {f"learned: {name}": model.prior} if name != "standard" else {})
        written.append(prior_density(encode_all(model, x).mu.data, labels, shown,
                                     os.path.join(out, "prior_density.png"),
                                     title="E[z|x] of test digits over the prior's density"))
    if name == "vamp":
        written.append(image_grid(np.clip(model.prior.pseudo_inputs.data, 0, 1),
                                  os.path.join(out, "pseudo_inputs.png"),
                                  title="the VampPrior's learned pseudo-inputs u_k"))
    return written
