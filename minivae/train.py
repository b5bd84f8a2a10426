"""The training loop shared by the models: epochs of minibatch steps, evaluation, checkpoints.

A model trained here has a method `loss(x, rng) -> (loss, parts)`: `loss` is the scalar Tensor
to minimise (nats per image for the likelihood models) and `parts` a dict of floats reported
beside it (for a VAE, 'rec' and 'kl'). One `numpy.random.Generator` drives shuffling, sampling
and binarisation, and its state goes into every checkpoint, so the same seed gives a
bit-identical loss history and a resumed run continues exactly where it stopped.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
import zlib

import numpy as np

from minivae import checks, data
from minivae.checkpoint import load_training, save_training
from minivae.files import STALE, TEMP_PREFIX, FolderLock, check_writable, strict_json, sweep, write_json
from minivae.tensor import Tensor, no_grad


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


def run_settings(model, optimizer, x_train: np.ndarray, x_test: np.ndarray, **settings) -> dict:
    """What fixes a run's course: the model's kind and config, the optimiser's kind and
    hyperparameters, the data (shape and CRC-32) and `settings` (batch size, seed, epochs, ...). Every checkpoint records them, and a resumed run must bring the same (a
    change of epochs is reported, not refused: it makes a run longer or shorter)."""
    config = getattr(model, "config", None)
    record = {"model": type(model).__name__,
              "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else None,
              "optimizer": _describe_optimizer(optimizer),
              "data": {name: {"shape": list(x.shape), "dtype": str(x.dtype),
                              "crc32": zlib.crc32(np.ascontiguousarray(x).data)}
                       for name, x in (("train", x_train), ("test", x_test)) if x is not None},
              **settings}
    return json.loads(json.dumps(strict_json(record)[0]))  # as it reads back from the checkpoint


def _describe_optimizer(optimizer) -> dict:
    """kind and hyperparameters (lr, betas, momentum, ...) of an optimiser; or of each of a group
    of them (the AAE's one per phase)."""
    if hasattr(optimizer, "params"):
        hyper = {k: v for k, v in vars(optimizer).items()
                 if k != "t" and isinstance(v, (int, float, tuple))}
        return {"kind": type(optimizer).__name__, **hyper}
    return {name: _describe_optimizer(part) for name, part in vars(optimizer).items()}


def _differences(saved, now, at="") -> list[str]:
    if isinstance(saved, dict) and isinstance(now, dict):
        return [line for key in dict.fromkeys([*saved, *now])
                for line in _differences(saved.get(key), now.get(key), f"{at}{key}.")]
    return [] if saved == now else [f"{at[:-1]}: {saved} then, {now} now"]


def open_run(out: str | None, resume: bool, model, optimizer, rng: np.random.Generator,
             log=print, settings: dict | None = None) -> tuple[str | None, list[dict]]:
    """The checkpoint path under `out` (None without one) and the history so far: empty, or, with
    `resume` and a checkpoint present, the saved one, with model, optimiser and rng restored (all
    or nothing: see checkpoint.load_training).

    Before any work: `out` must be writable (else OSError naming it); no other run may be writing
    into it (BlockingIOError; the lock lasts until `close_run`, or until the process ends however
    it ends); the temporary files of killed writes are removed. `settings` (see run_settings) go
    into every checkpoint; resuming with other settings is refused, naming each difference, as
    the resumed run would no longer continue the saved one."""
    if not out:
        return None, []
    check_writable(out)
    FolderLock(out)
    sweep(out, TEMP_PREFIX + "*", older_than=STALE)  # left by killed writes
    checkpoint = os.path.join(out, "checkpoint.npz")
    if not os.path.exists(checkpoint):
        return checkpoint, []
    if not resume:
        log(f"{out} holds an earlier run's checkpoint: starting afresh, it is replaced after "
            f"epoch 1 (resume=True, --resume in the examples, continues it instead)")
        return checkpoint, []

    def same_settings(state):
        saved = state.get("settings")
        if saved is None or settings is None:
            log(f"{checkpoint} or this run records no settings: they cannot be compared")
            return
        differences = _differences(saved, settings)
        if saved.get("epochs") != settings.get("epochs"):  # more epochs: a longer run, say so
            log(f"note: {checkpoint} was saved by a run of {saved.get('epochs')} epochs, "
                f"this one has {settings.get('epochs')} (a schedule over the epochs changes)")
            differences = [d for d in differences if not d.startswith("epochs:")]
        if differences:
            close_run(out)
            raise ValueError(f"cannot resume from {checkpoint}: this run's settings differ from "
                             f"the saved run's ({'; '.join(differences)}). A resumed run "
                             f"continues the saved one only with the same settings: pass those, "
                             f"or choose another output folder to start afresh")

    try:
        state = load_training(checkpoint, model, optimizer, rng, check=same_settings)
    except BaseException:
        close_run(out)
        raise
    log(f"resumed from {checkpoint} after epoch {len(state['history'])}")
    return checkpoint, state["history"]


def save_run(checkpoint: str, model, optimizer, rng: np.random.Generator, history: list,
             settings: dict | None = None) -> None:
    """Everything a resumed run needs (with the run's settings, for open_run to compare), and
    history.json beside it."""
    save_training(checkpoint, model, optimizer, {"history": history, "rng": rng.bit_generator.state,
                                                 "settings": settings})
    write_json(os.path.join(os.path.dirname(checkpoint), "history.json"), history)


def close_run(out: str | None) -> None:
    """Release `out` for other runs (open_run locked it)."""
    if out:
        lock = FolderLock._held.get(os.path.realpath(out))
        if lock is not None:
            lock.release()


def stopped(what: str, checkpoint: str | None, saved_epoch: int) -> FloatingPointError:
    """The error that stops a run on a non-finite loss, saying truthfully what is on disk."""
    if not checkpoint:
        kept = ""
    elif saved_epoch:
        kept = f"; the last good checkpoint, of epoch {saved_epoch}, is kept in {checkpoint}"
    elif os.path.exists(checkpoint):
        kept = (f"; no checkpoint of this run was written yet ({checkpoint} is an earlier "
                f"run's, left as it was)")
    else:
        kept = "; no checkpoint was written yet"
    close_run(os.path.dirname(checkpoint) if checkpoint else None)
    return FloatingPointError(what + kept)


def fit(model, optimizer, x_train: np.ndarray, x_test: np.ndarray, *, epochs: int,
        batch_size: int = 128, seed: int = 0, out: str | None = None, resume: bool = False,
        binarize: bool = False, on_step=None, log=print) -> list[dict]:
    """Train for `epochs` epochs; return the history, one dict per epoch.

    x_train, x_test: float32 images in [0, 1]. With `binarize`, every training batch is a fresh
    Bernoulli draw of its pixels (dynamic binarisation) and the test set is binarised once, with
    a fixed seed. With `out`, the checkpoint `out/checkpoint.npz` and `out/history.json` are
    written after every epoch; `resume=True` continues from that checkpoint. A NaN or infinite
    loss stops training with FloatingPointError, a non-finite test loss too (before its epoch is
    saved); the last good checkpoint stays in place. Two runs cannot write into one `out` at once,
    and a resumed run must have the settings of the saved one (see open_run).
    `on_step(epochs)`, if given, is called before every step with the epochs done after it
    (fractional: 0.25 a quarter into the first epoch), for schedules such as a KL warm-up
    (PixelVAE.schedule); it depends on nothing else, so a resumed run schedules alike."""
    epochs = checks.integer(epochs, "epochs", "fit")
    batch_size = checks.integer(batch_size, "batch_size", "fit")
    seed = checks.integer(seed, "seed", "fit", minimum=0)
    x_train, x_test = checks.data(x_train, "x_train", "fit"), checks.data(x_test, "x_test", "fit")
    settings = run_settings(model, optimizer, x_train, x_test, batch_size=batch_size, seed=seed,
                            binarize=bool(binarize), epochs=epochs)
    rng = np.random.default_rng(seed)
    if binarize:
        x_test = data.binarize(x_test, np.random.default_rng([seed, 1]))
    checkpoint, history = open_run(out, resume, model, optimizer, rng, log, settings)
    saved_epoch = len(history)  # of this run's last checkpoint (a resumed run's is its own)

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
                raise stopped(f"loss is {value} at epoch {epoch}, step {step}", checkpoint,
                              saved_epoch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, seen = total + value * len(x), seen + len(x)
            progress.update(step, total / seen)
        progress.close()
        seconds = time.perf_counter() - start
        test = evaluate(model, x_test, np.random.default_rng([seed, 2, epoch]))
        if not all(math.isfinite(value) for value in test.values()):
            values = ", ".join(f"{name} {value}" for name, value in test.items())
            raise stopped(f"test loss is {test['loss']} after epoch {epoch} ({values}); this "
                          f"epoch is not saved", checkpoint, saved_epoch)
        record = {"epoch": epoch, "train_loss": total / seen,
                  **{f"test_{name}": value for name, value in test.items()}, "seconds": seconds}
        history.append(record)
        parts = "  ".join(f"{name} {value:.2f}" for name, value in test.items() if name != "loss")
        log(f"epoch {epoch:3d}  train {record['train_loss']:.2f}  test {test['loss']:.2f}"
            f"  ({parts})  {seconds:.1f}s")
        if checkpoint:
            save_run(checkpoint, model, optimizer, rng, history, settings)
            saved_epoch = epoch
    close_run(out)
    return history
