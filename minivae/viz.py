"""Pictures of models and training runs, written to PNG files, and the graph behind a loss.

Every figure function takes plain numpy arrays and a `path`, writes one PNG at `DPI` dots per inch
and returns the path it wrote. Images are (N, H, W) or (N, 1, H, W) with values in [0, 1] (28 × 28
for MNIST); values outside [0, 1] — a PCA reconstruction, say — are clipped for display.

    image_grid(images, path)              samples in a grid
    reconstructions(x, x_hat, path)       inputs above their reconstructions
    latent_scatter(z, labels, path)       codes coloured by class (PCA-projected if dim z > 2)
    prior_density(z, labels, priors, path) 2-D codes over contours of one or more priors' density
    manifold(decode, path)                Kingma & Welling (2014), Figure 4: decoded latent grid
    interpolations(rows, path)            image sequences, one per row
    loss_curves(history, path)            train/test losses per epoch
    eigen_images(components, path)        PCA components as images
    explained_variance(ratio, path)       cumulative explained variance of PCA
    graph(tensor, path, names)            the ops and parameters that produced a tensor: Graphviz
                                          DOT text, rendered to SVG/PNG when `dot` is installed

matplotlib is imported only when a function runs (it is an optional dependency). The figures are
`matplotlib.figure.Figure` objects drawn by the Agg canvas directly, never through pyplot: nothing
switches the global backend of a user's session, and no figure stays open in pyplot's registry
(each one is freed when the function returns).

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
from minivae.tensor import Tensor, graph_inputs, no_grad, topological_order

DPI = 100
_PAD = 2  # pixels of background between the images of a mosaic


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


# ---------------------------------------------------------------- shared plumbing


def _figure(width: float, height: float, layout: str | None = None):
    """A Figure of width × height inches drawn by the Agg canvas (no pyplot, no global backend)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            'minivae.viz needs matplotlib: pip install "minivae[examples]"') from error
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> str:
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    fig.clear()  # drop the artists now; the Figure was never registered with pyplot
    return path


def _images(images, name: str, lead: int = 1) -> np.ndarray:
    """(lead axes..., H, W) or (lead axes..., 1, H, W) -> float (lead axes..., H, W)."""
    images = np.asarray(images)
    if images.ndim == lead + 3 and images.shape[lead] == 1:
        images = images.reshape(images.shape[:lead] + images.shape[lead + 1:])
    if images.ndim != lead + 2 or 0 in images.shape:
        lead_axes = "N" if lead == 1 else "R, S"
        raise ValueError(f"{name}: expected images of shape ({lead_axes}, H, W) or "
                         f"({lead_axes}, 1, H, W), got {images.shape}")
    return images.astype(np.float64)


def _tile(images: np.ndarray, fill: float) -> np.ndarray:
    """(R, C, H, W) -> one (R·(H+pad)+pad, C·(W+pad)+pad) mosaic with `fill` between images."""
    R, C, H, W = images.shape
    mosaic = np.full((R * (H + _PAD) + _PAD, C * (W + _PAD) + _PAD), fill)
    for i in range(R):
        for j in range(C):
            top, left = _PAD + i * (H + _PAD), _PAD + j * (W + _PAD)
            mosaic[top:top + H, left:left + W] = images[i, j]
    return mosaic


def _grid(images: np.ndarray, ncol: int, fill: float) -> np.ndarray:
    """(N, H, W) -> (R, ncol, H, W), the last row padded with `fill`."""
    N, H, W = images.shape
    nrow = -(-N // ncol)
    padded = np.full((nrow * ncol, H, W), fill)
    padded[:N] = images
    return padded.reshape(nrow, ncol, H, W)


def _mosaic_figure(mosaic: np.ndarray, title: str | None, row_labels=(), axis_labels=None):
    """Show a mosaic at an integer zoom (1-3 screen pixels per image pixel, so digits stay crisp)
    in a figure sized around it: a title strip on top, optional labels on the left.

    row_labels: [(mosaic row in pixels, text)]; axis_labels: (xlabel, ylabel) to keep the axes'
    ticks and labels (set by the caller) instead of hiding them."""
    h, w = mosaic.shape
    zoom = int(np.clip(640 // max(h, w), 1, 3))
    top = 30 if title else 4
    left = 84 if row_labels else (60 if axis_labels else 4)
    bottom = 44 if axis_labels else 4
    right = 16 if axis_labels else 4             # room for the last tick label
    if title:  # widen a narrow figure so its title fits (about 6.5 px a character at 10 pt)
        spare = max(0, int(6.5 * len(title)) + 16 - (left + w * zoom + right))
        left, right = left + spare // 2, right + spare - spare // 2
    width, height = left + w * zoom + right, top + h * zoom + bottom
    fig = _figure(width / DPI, height / DPI)
    ax = fig.add_axes((left / width, bottom / height, w * zoom / width, h * zoom / height))
    ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    if axis_labels:
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
        ax.tick_params(labelsize=8)
    else:
        ax.set_axis_off()
    for row, text in row_labels:
        ax.text(-6, row, text, ha="right", va="center", fontsize=9)
    if title:
        fig.text(0.5, 1 - 6 / height, title, ha="center", va="top", fontsize=10)
    return fig, ax


def _onto_principal_plane(z: np.ndarray):
    """The projection a -> (a − m) Vᵀ onto the first two principal axes V (2, d) of the codes z
    (N, d), m their mean: PCA's encoder (models/pca.py), here by the SVD of the centred codes, each
    axis signed so that its largest entry is positive, as PCA's are."""
    m = z.mean(axis=0)
    _, _, vt = np.linalg.svd(z - m, full_matrices=False)
    V = vt[:2] * np.sign(vt[:2][np.arange(2), np.abs(vt[:2]).argmax(axis=1)])[:, None]  # (2, d)
    return lambda a: (a - m) @ V.T


# ---------------------------------------------------------------- the figures


def image_grid(images, path, nrow: int | None = None, title: str | None = None) -> str:
    """Images (N, H, W) or (N, 1, H, W) in [0, 1] in a grid. `nrow` is the number of images in
    each row, as in torchvision's make_grid (default ⌈√N⌉)."""
    images = _images(images, "image_grid")
    ncol = math.ceil(math.sqrt(len(images))) if nrow is None else int(nrow)
    if ncol < 1:
        raise ValueError(f"image_grid: nrow must be at least 1, got {nrow}")
    ncol = min(ncol, len(images))
    fig, _ = _mosaic_figure(_tile(_grid(images, ncol, fill=0.5), fill=0.5), title)
    return _save(fig, path)


def reconstructions(x, x_hat, path, n: int = 8, title: str | None = None) -> str:
    """The first n inputs x with their reconstructions x_hat directly beneath them, up to 8 per
    row pair. Both (N, H, W) or (N, 1, H, W) in [0, 1], of one shape."""
    x, x_hat = _images(x, "reconstructions"), _images(x_hat, "reconstructions")
    if x.shape != x_hat.shape:
        raise ValueError(f"reconstructions: x and x_hat differ in shape: {x.shape} vs "
                         f"{x_hat.shape}")
    if n < 1:
        raise ValueError(f"reconstructions: n must be at least 1, got {n}")
    n = min(n, len(x))
    ncol = min(n, 8)
    top, bottom = _grid(x[:n], ncol, fill=0.5), _grid(x_hat[:n], ncol, fill=0.5)  # (P, ncol, H, W)
    pairs = np.stack([top, bottom], axis=1).reshape(-1, *top.shape[1:])  # (2P, ncol, H, W)
    H = x.shape[1]
    labels = [(_PAD + i * (H + _PAD) + H / 2, "input" if i % 2 == 0 else "reconstr.")
              for i in range(len(pairs))]
    fig, _ = _mosaic_figure(_tile(pairs, fill=0.5), title, row_labels=labels)
    return _save(fig, path)


def interpolations(rows, path, title: str | None = None) -> str:
    """Image sequences (R, S, H, W) or (R, S, 1, H, W) in [0, 1], one sequence per row."""
    rows = _images(rows, "interpolations", lead=2)
    fig, _ = _mosaic_figure(_tile(rows, fill=0.5), title)
    return _save(fig, path)


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


# Keys of a history dict that loss_curves plots: a split prefix and a quantity.
_SPLITS = {"train": "-", "val": "-.", "test": "--"}


def loss_curves(history, path, title: str | None = None) -> str:
    """Per-epoch curves from `history`, a list of dicts (one per epoch) such as
    {'epoch': 3, 'train_loss': 101.2, 'test_loss': 103.5, 'test_rec': 80.1, 'test_kl': 23.4}.

    Plotted: every key '<split>_<quantity>' with split train, val or test and a number (or None,
    a gap) as value, except timings ('..._seconds', '..._time'). One colour per quantity, one line
    style per split. The x axis is 'epoch' when present, else 1, 2, ..."""
    if not isinstance(history, (list, tuple)) or not history or \
            not all(isinstance(h, dict) for h in history):
        raise ValueError("loss_curves: history must be a non-empty list of dicts, one per epoch")
    keys = []
    for h in history:
        for key, value in h.items():
            split, _, quantity = key.partition("_")
            if (split in _SPLITS and quantity and key not in keys
                    and not key.endswith(("_seconds", "_time"))
                    and isinstance(value, (int, float, np.number)) and not isinstance(value, bool)):
                keys.append(key)
    if not keys:
        raise ValueError("loss_curves: no key of the form train_*/val_*/test_* with numbers "
                         f"in history (keys: {sorted(history[0])})")
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    quantities = list(dict.fromkeys(key.partition("_")[2] for key in keys))

    fig = _figure(6.0, 4.0, layout="constrained")
    ax = fig.add_subplot()
    for key in keys:
        split, _, quantity = key.partition("_")
        values = [h.get(key) for h in history]
        values = [np.nan if v is None else float(v) for v in values]
        ax.plot(epochs, values, _SPLITS[split], color=f"C{quantities.index(quantity) % 10}",
                marker="o" if len(history) <= 30 else None, ms=3, label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("per image")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    ax.set_title(title or "training curves", fontsize=11)
    return _save(fig, path)


def eigen_images(components, path, n: int = 16, mean=None, title: str | None = None) -> str:
    """The first n PCA components (k, D), D = side², as images on a diverging colormap symmetric
    about 0 (red positive, blue negative, one scale for all), optionally after the mean image."""
    components = np.asarray(components, dtype=np.float64)
    if components.ndim != 2 or components.shape[0] < 1:
        raise ValueError(f"eigen_images: expected components of shape (k, D), "
                         f"got {components.shape}")
    side = math.isqrt(components.shape[1])
    if side * side != components.shape[1]:
        raise ValueError(f"eigen_images: D = {components.shape[1]} is not a square number of "
                         "pixels")
    if mean is not None:
        mean = np.asarray(mean, dtype=np.float64)
        if mean.size != side * side:
            raise ValueError(f"eigen_images: mean has {mean.size} values, expected {side * side}")
    if n < 1:
        raise ValueError(f"eigen_images: n must be at least 1, got {n}")
    n = min(n, len(components))
    panels = n + (mean is not None)
    ncol = min(panels, 8)
    nrow = -(-panels // ncol)

    # Laid out by hand in inches (constrained layout takes ~1 s for 17 panels): cells of
    # 1.1 × 1.15 with a 0.9 × 0.9 image under a panel title, a title strip of 0.4 on top, and a
    # colorbar after the last column.
    width, height = max(1.1 * ncol + 0.9, 3.6), 1.15 * nrow + 0.5  # 3.6: room for the title
    fig = _figure(width, height)
    vmax = float(np.abs(components[:n]).max()) or 1.0
    panels = ([("mean", mean.reshape(side, side), "gray", 0.0, 1.0)] if mean is not None else [])
    panels += [(f"PC {i + 1}", image, "RdBu_r", -vmax, vmax)
               for i, image in enumerate(components[:n].reshape(n, side, side))]
    for i, (name, image, cmap, vmin, vmax_i) in enumerate(panels):
        row, col = divmod(i, ncol)
        left, bottom = 0.05 + 1.1 * col + 0.1, height - 0.4 - 1.15 * (row + 1) + 0.05
        ax = fig.add_axes((left / width, bottom / height, 0.9 / width, 0.9 / height))
        shown = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax_i)
        ax.set_axis_off()
        ax.set_title(name, fontsize=8, pad=3)
        if cmap == "RdBu_r":
            diverging = shown
    bar = fig.add_axes(((0.05 + 1.1 * ncol + 0.1) / width, 0.25 / height,
                        0.12 / width, (height - 0.75) / height))
    fig.colorbar(diverging, cax=bar)
    bar.tick_params(labelsize=8)
    fig.text(0.5, 1 - 0.08 / height, title or "principal components (eigen-images)",
             ha="center", va="top", fontsize=11)
    return _save(fig, path)


def explained_variance(ratio, path, title: str | None = None) -> str:
    """The cumulative explained-variance ratio against the number of components, from PCA's
    `explained_variance_ratio_` (k,), marked and labelled at 10, 50 and 100 components."""
    ratio = np.asarray(ratio, dtype=np.float64)
    if ratio.ndim != 1 or len(ratio) < 1:
        raise ValueError(f"explained_variance: expected a 1-D array of ratios, got {ratio.shape}")
    if np.any(ratio < 0) or ratio.sum() > 1 + 1e-6:
        raise ValueError("explained_variance: ratios must be non-negative and sum to at most 1")
    k = np.arange(1, len(ratio) + 1)
    cumulative = np.cumsum(ratio)

    fig = _figure(6.0, 4.0, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(k, cumulative, color="C0")
    for mark in (10, 50, 100):
        if mark <= len(ratio):
            ax.plot(mark, cumulative[mark - 1], "o", color="C3", ms=5)
            ax.annotate(f"{mark}: {cumulative[mark - 1]:.3f}", (mark, cumulative[mark - 1]),
                        textcoords="offset points", xytext=(6, -14), fontsize=9)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, len(ratio) + 1)
    ax.set_xlabel("number of components k")
    ax.set_ylabel("cumulative explained variance")
    ax.grid(alpha=0.3)
    ax.set_title(title or "PCA: variance explained by the first k components", fontsize=11)
    return _save(fig, path)


# ---------------------------------------------------------------- the computation graph

_RENDERED = {".svg": "svg", ".png": "png", ".pdf": "pdf"}


def graph(tensor: Tensor, path=None, names=None) -> str:
    """The graph that produced `tensor`, as Graphviz DOT text: one node per op, labelled with the
    op's Function and its output shape, one per leaf that requires a gradient (a parameter by its
    `state_dict` name when `names` is given: a Module, or a dict or pairs of name -> Tensor), and
    an edge from each input to the op that read it (twice for x * x). These are the nodes and
    edges `backward()` walks; constants and data that need no gradient are left out.

    With `path`, also write it: '.dot' or '.gv' the text itself (no dependency), '.svg', '.png' or
    '.pdf' rendered by Graphviz's `dot` program (apt-get install graphviz; without it a
    RuntimeError says so). Returns the DOT text."""
    if hasattr(names, "named_parameters"):
        names = names.named_parameters()
    elif isinstance(names, dict):
        names = names.items()
    name_of = {id(t): name for name, t in (names or ())}

    order = topological_order(tensor)  # inputs before the ops that read them, as backward()
    ids = {id(node): f"n{i}" for i, node in enumerate(order)}

    lines = ["digraph minivae {", '  node [fontname="Helvetica", fontsize=10];']
    for node in order:
        shape = str(tuple(node.shape))
        if node._ctx is None:  # a leaf: a parameter, or another tensor that wants a gradient
            label = f"{name_of.get(id(node), 'leaf')}\\n{shape}"
            style = 'shape=box, style=filled, fillcolor="lightblue"'
        else:
            label = f"{node._fn.__name__}\\n{shape}"
            style = 'shape=ellipse'
        if node is tensor:
            style += ', penwidth=2'
        lines.append(f'  {ids[id(node)]} [label="{_dot_escape(label)}", {style}];')
    for node in order:
        lines += [f"  {ids[id(x)]} -> {ids[id(node)]};" for x in graph_inputs(node)]
    lines.append("}")
    source = "\n".join(lines) + "\n"
    if path is not None:
        _write_graph(source, path)
    return source


def _dot_escape(label: str) -> str:
    return label.replace('"', '\\"')


def _write_graph(source: str, path) -> None:
    import shutil
    import subprocess

    from minivae import files

    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".dot", ".gv"):
        payload = source.encode()
    elif suffix in _RENDERED:
        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError(f"graph: rendering {path} needs Graphviz's `dot` program "
                               f"(apt-get install graphviz); a '.dot' path needs nothing")
        payload = subprocess.run([dot, f"-T{_RENDERED[suffix]}"], input=source.encode(),
                                 capture_output=True, check=True).stdout
    else:
        raise ValueError(f"graph: path must end in .dot, .gv, .svg, .png or .pdf, got {path!r}")
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with files.atomic_write(path) as f:
        f.write(payload)
