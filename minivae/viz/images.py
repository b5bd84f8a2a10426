"""Images in mosaics: samples in a grid, inputs above their reconstructions, image sequences,
and PCA's components as images.

    image_grid(images, path)              samples in a grid
    reconstructions(x, x_hat, path)       inputs above their reconstructions
    interpolations(rows, path)            image sequences, one per row
    eigen_images(components, path)        PCA components as images
"""
from __future__ import annotations

import math

import numpy as np

from minivae.viz.canvas import _PAD, _figure, _grid, _images, _mosaic_figure, _save, _tile


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
    n_panels = n + (mean is not None)
    ncol = min(n_panels, 8)
    nrow = -(-n_panels // ncol)

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
