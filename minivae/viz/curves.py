"""Curves: the losses of a training run epoch by epoch, and PCA's cumulative explained variance.

    loss_curves(history, path)            train/test losses per epoch
    explained_variance(ratio, path)       cumulative explained variance of PCA
"""
from __future__ import annotations

import numpy as np

from minivae.viz.canvas import _figure, _save

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
