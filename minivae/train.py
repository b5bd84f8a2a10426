"""The training loop shared by the models: epochs of minibatch steps, evaluation, checkpoints.

A model trained here has a method `loss(x, rng) -> (loss, parts)`: `loss` is the scalar Tensor
to minimise (nats per image for the likelihood models) and `parts` a dict of floats reported
beside it (for a VAE, 'rec' and 'kl'). One `numpy.random.Generator` drives shuffling, sampling
and binarisation, and its state goes into every checkpoint, so the same seed gives a
bit-identical loss history and a resumed run continues exactly where it stopped.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

from minivae import data
from minivae.checkpoint import atomic_write, load_training, save_training
from minivae.tensor import Tensor, no_grad


def write_json(path: str | os.PathLike, obj) -> None:
    """Write `obj` as indented JSON, atomically (temporary file, then rename)."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2)


class Progress:
    """A one-line progress bar on a terminal; silent when stderr is not a TTY (logs, CI)."""

    def __init__(self, total: int, label: str, stream=sys.stderr):
        self.total, self.label, self.stream = total, label, stream
        self.enabled = stream.isatty()
        self.start = time.perf_counter()

    def update(self, done: int, loss: float) -> None:
        if not self.enabled:
            return
        filled = int(30 * done / self.total)
        elapsed = time.perf_counter() - self.start
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total}"
                          f"  loss {loss:8.3f}  {elapsed:5.1f}s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()


def evaluate(model, x: np.ndarray, rng: np.random.Generator, batch_size: int = 500) -> dict:
    """Mean loss and parts over all of x, with no graph recorded."""
    totals: dict[str, float] = {}
    model.eval()
    with no_grad():
        for xb in data.batches(x, batch_size):
            loss, parts = model.loss(Tensor(xb), rng)
            for name, value in {"loss": loss.item(), **parts}.items():
                totals[name] = totals.get(name, 0.0) + float(value) * len(xb)
    model.train()
    return {name: total / len(x) for name, total in totals.items()}


def open_run(out: str | None, resume: bool, model, optimizer, rng: np.random.Generator,
             log=print) -> tuple[str | None, list[dict]]:
    """The checkpoint path under `out` (None without one) and the history so far: empty, or, with
    `resume` and a checkpoint present, the saved one, with model, optimiser and rng restored."""
    if not out:
        return None, []
    os.makedirs(out, exist_ok=True)
    checkpoint = os.path.join(out, "checkpoint.npz")
    if not (resume and os.path.exists(checkpoint)):
        return checkpoint, []
    state = load_training(checkpoint, model, optimizer)
    rng.bit_generator.state = state["rng"]
    log(f"resumed from {checkpoint} after epoch {len(state['history'])}")
    return checkpoint, state["history"]


def save_run(checkpoint: str, model, optimizer, rng: np.random.Generator, history: list) -> None:
    """Everything a resumed run needs, and history.json beside it."""
    save_training(checkpoint, model, optimizer, {"history": history, "rng": rng.bit_generator.state})
    write_json(os.path.join(os.path.dirname(checkpoint), "history.json"), history)


def fit(model, optimizer, x_train: np.ndarray, x_test: np.ndarray, *, epochs: int,
        batch_size: int = 128, seed: int = 0, out: str | None = None, resume: bool = False,
        binarize: bool = False, on_step=None, log=print) -> list[dict]:
    """Train for `epochs` epochs; return the history, one dict per epoch.

    x_train, x_test: float32 images in [0, 1]. With `binarize`, every training batch is a fresh
    Bernoulli draw of its pixels (dynamic binarisation) and the test set is binarised once, with
    a fixed seed. With `out`, the checkpoint `out/checkpoint.npz` and `out/history.json` are
    written after every epoch; `resume=True` continues from that checkpoint. A NaN or infinite
    loss stops training with FloatingPointError; the last good checkpoint stays in place.
    `on_step(epochs)`, if given, is called before every step with the epochs done after it
    (fractional: 0.25 a quarter into the first epoch), for schedules such as a KL warm-up
    (PixelVAE.schedule); it depends on nothing else, so a resumed run schedules alike."""
    rng = np.random.default_rng(seed)
    if binarize:
        x_test = data.binarize(x_test, np.random.default_rng([seed, 1]))
    checkpoint, history = open_run(out, resume, model, optimizer, rng, log)

    for epoch in range(len(history) + 1, epochs + 1):
        start, total, seen = time.perf_counter(), 0.0, 0
        steps = math.ceil(len(x_train) / batch_size)
        progress = Progress(steps, f"epoch {epoch}/{epochs}")
        for step, x in enumerate(data.batches(x_train, batch_size, rng), start=1):
            if on_step is not None:
                on_step(epoch - 1 + step / steps)
            x = data.binarize(x, rng) if binarize else x
            loss, _ = model.loss(Tensor(x), rng)
            value = loss.item()
            if not math.isfinite(value):
                progress.close()
                kept = f"; the last good checkpoint {checkpoint} is kept" if checkpoint else ""
                raise FloatingPointError(f"loss is {value} at epoch {epoch}, step {step}{kept}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, seen = total + value * len(x), seen + len(x)
            progress.update(step, total / seen)
        progress.close()
        seconds = time.perf_counter() - start
        test = evaluate(model, x_test, np.random.default_rng([seed, 2, epoch]))
        record = {"epoch": epoch, "train_loss": total / seen,
                  **{f"test_{name}": value for name, value in test.items()}, "seconds": seconds}
        history.append(record)
        parts = "  ".join(f"{name} {value:.2f}" for name, value in test.items() if name != "loss")
        log(f"epoch {epoch:3d}  train {record['train_loss']:.2f}  test {test['loss']:.2f}"
            f"  ({parts})  {seconds:.1f}s")
        if checkpoint:
            save_run(checkpoint, model, optimizer, rng, history)
    return history
