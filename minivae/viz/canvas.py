"""The figures' shared plumbing: a Figure drawn by the Agg canvas (matplotlib imported only here,
when a figure is made; never pyplot), saving it, checking image arrays, and tiling images into one
mosaic shown at an integer zoom."""
from __future__ import annotations

import os
from typing import Literal

import numpy as np

DPI = 100
_PAD = 2  # pixels of background between the images of a mosaic


def _figure(width: float, height: float,
            layout: Literal["constrained", "compressed", "tight"] | None = None):
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
