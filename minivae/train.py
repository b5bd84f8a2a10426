"""The one training loop, every model's: epochs of minibatch steps, evaluation, checkpoints.

    for each epoch:
        for each minibatch x (shuffled; with binarize, a fresh Bernoulli draw of its pixels):
            on_step(epochs done)                      schedules: a KL warm-up, the learning rates
            parts = step(x, optimizer, rng, y)        by default: loss → zero_grad → backward → step
        test = evaluation(x_test, y_test, rng)        by default: model.loss over the test set
        (valid = evaluation(x_valid, ...)             with a validation set: the best epoch kept)
        history.append(the epoch's means); checkpoint
    with a validation set: the model ends with the best epoch's parameters (best_epoch, keep_best)

A model trained by the default step (`gradient_step`) has a method `loss(x, rng) -> (loss,
parts)`: `loss` is the scalar Tensor to minimise (nats per image for the likelihood models) and
`parts` a dict of floats reported beside it (for a VAE, 'rec' and 'kl'). A model that learns
otherwise brings its own step: the adversarial autoencoder's three phases (`AAE.step`), with one
optimiser per phase (`optim.Optimizers`), its own evaluation (`AAE.evaluate`) and falling learning
rates (`linear_decay`). One `numpy.random.Generator` drives shuffling, sampling and binarisation,
and its state goes into every checkpoint, so the same seed gives a bit-identical loss history and
a resumed run continues exactly where it stopped.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
import zlib

import numpy as np

from minivae import checks, data
from minivae.checkpoint import (CheckpointError, load, load_training, read_state, save_model,
                                save_training)
from minivae.files import STALE, TEMP_PREFIX, FolderLock, check_writable, strict_json, sweep, write_json
from minivae.optim import Optimizers
from minivae.progress import Progress
from minivae.tensor import Tensor, no_grad


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


def run_settings(model, optimizer, x_train: np.ndarray, x_test: np.ndarray,
                 x_valid: np.ndarray | None = None, **settings) -> dict:
    """What fixes a run's course: the model's kind and config, the optimiser's kind and
    hyperparameters, the data (shape and CRC-32) and `settings` (batch size, seed, epochs, ...).
    Every checkpoint records them, and a resumed run must bring the same (a change of epochs is
    reported, not refused: it makes a run longer or shorter)."""
    config = getattr(model, "config", None)
    record = {"model": type(model).__name__,
              "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else None,
              "optimizer": _describe_optimizer(optimizer),
              "data": {name: {"shape": list(x.shape), "dtype": str(x.dtype),
                              "crc32": zlib.crc32(np.ascontiguousarray(x).data)}
                       for name, x in (("train", x_train), ("test", x_test), ("valid", x_valid))
                       if x is not None},
              **settings}
    return json.loads(json.dumps(strict_json(record)[0]))  # as it reads back from the checkpoint


def _describe_optimizer(optimizer) -> dict:
    """kind and hyperparameters (lr, betas, momentum, ...) of an optimiser; or of each of a group
    of them (optim.Optimizers: the AAE's one per phase)."""
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


def check_run_folder(out: str, resume: bool, overwrite: bool = False,
                     resumable: bool = True) -> str:
    """The checkpoint path in `out`, once sure that opening the run there loses nothing: a
    folder holding a run (finished or interrupted) is resumed (`resume`) or replaced
    (`overwrite`), never silently restarted over; `resume` needs a checkpoint to resume.
    Raises FileExistsError or FileNotFoundError naming the folder; the examples call it before
    they load any data."""
    checkpoint = os.path.join(out, "checkpoint.npz")
    if resume and overwrite:
        raise ValueError("resume and overwrite contradict each other: resume continues the run "
                         f"in {out}, overwrite replaces it")
    if resume and not os.path.exists(checkpoint):
        raise FileNotFoundError(f"{out} holds no checkpoint to resume ({checkpoint} does not "
                                f"exist): start it without --resume (resume=False)")
    if os.path.exists(checkpoint) and not (resume or overwrite):
        again = "continue it with --resume (resume=True), " if resumable else ""
        raise FileExistsError(f"{out} holds {_describe_run(checkpoint)}: {again}replace it with "
                              f"--overwrite (overwrite=True), or choose another folder with --out")
    return checkpoint


def epochs_saved(checkpoint: str) -> tuple[int, int | None]:
    """(epochs done, epochs planned) of the run a checkpoint saved; planned is None for a model
    fitted in closed form (PCA). CheckpointError or OSError if it cannot be read."""
    state = read_state(checkpoint)
    return len(state.get("history") or []), (state.get("settings") or {}).get("epochs")


def _describe_run(checkpoint: str) -> str:
    """'a finished run of 30 epochs' or 'an interrupted run, 12 of 30 epochs done'."""
    try:
        done, planned = epochs_saved(checkpoint)
    except (CheckpointError, OSError):
        return f"a checkpoint that cannot be read ({checkpoint})"
    if planned is None:
        return "a finished run"  # a model fitted in closed form (PCA)
    if done >= planned:
        return f"a finished run of {done} epoch{'s' * (done != 1)}"
    return f"an interrupted run, {done} of {planned} epochs done"


def open_run(out: str | None, resume: bool, model, optimizer, rng: np.random.Generator,
             log=print, settings: dict | None = None,
             overwrite: bool = False) -> tuple[str | None, list[dict]]:
    """The checkpoint path under `out` (None without one) and the history so far: empty, or, with
    `resume`, the saved one, with model, optimiser and rng restored (all or nothing: see
    checkpoint.load_training).

    Before any work: `out` must be writable (else OSError naming it) and hold no run unless it is
    resumed or overwritten (check_run_folder); no other run may be writing into it
    (BlockingIOError; the lock lasts until `close_run`, or until the process ends however it
    ends); the temporary files of killed writes are removed. `settings` (see run_settings) go
    into every checkpoint; resuming with other settings is refused, naming each difference, as
    the resumed run would no longer continue the saved one."""
    if not out:
        return None, []
    check_writable(out)
    checkpoint = check_run_folder(out, resume, overwrite)
    FolderLock(out)
    sweep(out, TEMP_PREFIX + "*", older_than=STALE)  # left by killed writes
    if not resume:
        if os.path.exists(checkpoint):
            log(f"{out} holds an earlier run: overwrite, so it is replaced after epoch 1")
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
            raise ValueError(f"cannot resume from {checkpoint}: this run's settings differ from "
                             f"the saved run's ({'; '.join(differences)}). A resumed run "
                             f"continues the saved one only with the same settings: pass those, "
                             f"or choose another output folder to start afresh")

    try:
        same_settings(read_state(checkpoint))  # first: a changed network is named, not its keys
        state = load_training(checkpoint, model, optimizer, rng)
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
        FolderLock.release_folder(out)


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
    return FloatingPointError(what + kept)


def descend(loss: Tensor, optimizer, what: str = "loss") -> None:
    """One step of `optimizer` down `loss`: zero_grad → backward → step. A NaN or infinite loss
    is not stepped (the caller reports it, and fit stops on it); a finite loss whose gradient is
    NaN or infinite raises FloatingPointError naming `what`, before the step. Either way no
    parameter and no optimiser state changes: the model in memory keeps the last good values."""
    if not math.isfinite(loss.item()):
        return
    optimizer.zero_grad()
    loss.backward()
    for p in optimizer.params:  # a sum is NaN or ±inf if any term is: one cheap pass each
        if p.grad is not None and not math.isfinite(p.grad.sum()) and \
                not np.isfinite(p.grad).all():  # (not merely a sum too large to hold)
            bad = p.grad[~np.isfinite(p.grad)].flat[0]
            raise FloatingPointError(f"the gradient of {what} is {bad} (the {what} itself is "
                                     f"{loss.item():.6g})")
    optimizer.step()


def gradient_step(model, x: np.ndarray, optimizer, rng: np.random.Generator, y=None) -> dict:
    """The default step, one of gradient descent on model.loss (see `descend`). Returns {'loss':
    its value}; a non-finite loss changes nothing (fit stops the run on it), nor does a finite
    loss with a non-finite gradient (FloatingPointError). `y` (labels) is not used."""
    loss, _ = model.loss(Tensor(x), rng)
    descend(loss, optimizer)
    return {"loss": loss.item()}


def linear_decay(optimizer, final: float, epochs: int):
    """An on_step hook: the learning rate of `optimizer` (or of each in a group, optim.Optimizers)
    falls linearly, epoch by epoch, from its rate now at the first epoch to `final` times that at
    the last."""
    parts = list(optimizer) if isinstance(optimizer, Optimizers) else [optimizer]
    first = [part.lr for part in parts]

    def schedule(epochs_done: float) -> None:
        epoch = math.ceil(epochs_done)  # the epoch this step is in: 1, 2, ..., epochs
        factor = 1 + (final - 1) * (epoch - 1) / max(epochs - 1, 1)
        for part, lr in zip(parts, first):
            part.lr = lr * factor

    return schedule


def fit(model, optimizer, x_train: np.ndarray, x_test: np.ndarray, *, epochs: int,
        batch_size: int = 128, seed: int = 0, out: str | None = None, resume: bool = False,
        overwrite: bool = False, binarize: bool = False, y_train: np.ndarray | None = None,
        y_test: np.ndarray | None = None, x_valid: np.ndarray | None = None,
        y_valid: np.ndarray | None = None, step=None, on_step=None, evaluation=None,
        settings: dict | None = None, log=print) -> list[dict]:
    """Train for `epochs` epochs; return the history, one dict per epoch: `train_<part>`, the
    epoch's mean of each number the steps returned, `test_<part>` of the evaluation's, `seconds`.

    Model selection: with `x_valid` (images held out of the training set), every epoch is also
    evaluated on them (`valid_<part>`), the parameters of the epoch with the lowest validation
    loss so far are kept (in memory, and in `out/best.npz`), and at the end the model holds
    those: its test numbers are that epoch's (`best_epoch(history)`). The test set chooses
    nothing. Without `x_valid` the model is the last epoch's.

    x_train, x_test: float32 images in [0, 1] (or other items); y_train, y_test: their labels, cut
    into the same minibatches, for a model that needs them (the supervised AAE). With `binarize`,
    every training batch is a fresh Bernoulli draw of its pixels (dynamic binarisation) and the
    test set is binarised once, with a fixed seed. With `out`, the checkpoint
    `out/checkpoint.npz` and `out/history.json` are written after every epoch; `resume=True`
    continues from that checkpoint, `overwrite=True` replaces it; without either a folder that
    holds a run is refused (check_run_folder). A NaN or infinite loss (or gradient) stops
    training with FloatingPointError, a non-finite test number too (before its epoch is saved);
    the step that met it is not applied, so the model in memory keeps the last good parameters,
    and the last good checkpoint stays in place. Two runs cannot write into one `out` at once,
    and a resumed run must have the settings of the saved one (see open_run). `settings` adds to
    what the run records and compares on resume (the examples add the data set's name, for
    runs.load_run).

    The hooks, for what differs between models:
      step(x, optimizer, rng, y) -> dict of floats, the first the loss shown in the progress bar;
          default gradient_step(model, ...) on model.loss;
      on_step(epochs) is called before every step with the epochs done after it (fractional:
          0.25 a quarter into the first epoch), for schedules such as a KL warm-up
          (PixelVAE.schedule) or falling learning rates (linear_decay); it depends on nothing
          else, so a resumed run schedules alike;
      evaluation(x_test, y_test, rng) -> dict of floats, 'loss' first; default `evaluate` on
          model.loss."""
    epochs = checks.integer(epochs, "epochs", "fit")
    batch_size = checks.integer(batch_size, "batch_size", "fit")
    seed = checks.integer(seed, "seed", "fit", minimum=0)
    x_train, x_test = checks.data(x_train, "x_train", "fit"), checks.data(x_test, "x_test", "fit")
    if x_valid is not None:
        x_valid = checks.data(x_valid, "x_valid", "fit")
    if (y_train is None) != (y_test is None) or (x_valid is not None and
                                                  (y_train is None) != (y_valid is None)):
        raise ValueError("fit: give labels for every set (y_train, y_test and, with x_valid, "
                         "y_valid), or for none")
    step = functools.partial(gradient_step, model) if step is None else step
    evaluation = (lambda x, y, rng: evaluate(model, x, rng)) if evaluation is None else evaluation
    settings = run_settings(model, optimizer, x_train, x_test, x_valid, batch_size=batch_size,
                            seed=seed, binarize=bool(binarize), epochs=epochs, **(settings or {}))
    rng = np.random.default_rng(seed)
    if binarize:
        x_test = data.binarize(x_test, np.random.default_rng([seed, 1]))
        if x_valid is not None:
            x_valid = data.binarize(x_valid, np.random.default_rng([seed, 3]))
    checkpoint, history = open_run(out, resume, model, optimizer, rng, log, settings, overwrite)
    best_path = os.path.join(out, "best.npz") if out else None
    best_state = None  # the parameters of the best epoch on validation, once this run meets it
    try:  # the folder stays locked until the run ends, however it ends
        saved_epoch = len(history)  # of this run's last checkpoint (a resumed run's is its own)
        arrays = x_train if y_train is None else (x_train, np.asarray(y_train))
        for epoch in range(len(history) + 1, epochs + 1):
            start, sums, seen = time.perf_counter(), {}, 0
            steps = math.ceil(len(x_train) / batch_size)
            progress = Progress(steps, f"epoch {epoch}/{epochs}",
                                unit=lambda done: f"{done}/{steps}", transient=True)
            for i, batch in enumerate(data.batches(arrays, batch_size, rng), start=1):
                if on_step is not None:
                    on_step(epoch - 1 + i / steps)
                x, y = batch if y_train is not None else (batch, None)
                x = data.binarize(x, rng) if binarize else x
                try:
                    parts = step(x, optimizer, rng, y)
                except FloatingPointError as error:  # a non-finite gradient, before its step
                    progress.close()
                    raise stopped(f"{error} at epoch {epoch}, step {i}", checkpoint,
                                  saved_epoch) from None
                if _not_finite(parts):
                    progress.close()
                    raise stopped(f"{_not_finite(parts)} at epoch {epoch}, step {i}", checkpoint,
                                  saved_epoch)
                sums = {name: sums.get(name, 0.0) + v * len(x) for name, v in parts.items()}
                seen += len(x)
                loss = next(iter(parts))  # the first number a step returns
                progress.update(1, f"  {loss} {sums[loss] / seen:8.3f}")
            progress.close()
            seconds = time.perf_counter() - start
            evaluated = {"test": evaluation(x_test, y_test, np.random.default_rng([seed, 2, epoch]))}
            if x_valid is not None:
                evaluated["valid"] = evaluation(x_valid, y_valid,
                                                np.random.default_rng([seed, 3, epoch]))
            for name, numbers in evaluated.items():
                if _not_finite(numbers):
                    values = ", ".join(f"{k} {value}" for k, value in numbers.items())
                    raise stopped(f"{name} {_not_finite(numbers)} after epoch {epoch} ({values}); "
                                  f"this epoch is not saved", checkpoint, saved_epoch)
            train = {name: total / seen for name, total in sums.items()}
            history.append({"epoch": epoch, **{f"train_{k}": v for k, v in train.items()},
                            **{f"{name}_{k}": v for name, numbers in evaluated.items()
                               for k, v in numbers.items()}, "seconds": seconds})
            log(f"epoch {epoch:3d}  train {_summary(train)}  " + "  ".join(
                f"{name} {_summary(numbers)}" for name, numbers in evaluated.items())
                + f"  {seconds:.1f}s")
            if x_valid is not None and best_epoch(history)["epoch"] == epoch:
                best_state = {k: v.copy() for k, v in model.state_dict().items()}
                if best_path:
                    save_model(best_path, model, {"settings": settings, "history": history})
            if checkpoint:
                save_run(checkpoint, model, optimizer, rng, history, settings)
                saved_epoch = epoch
        if x_valid is not None:
            keep_best(model, history, best_state, best_path, log)
    finally:
        close_run(out)
    return history


def best_epoch(history: list[dict]) -> dict:
    """The epoch (its history entry) with the lowest validation loss, the first of equals; the
    last epoch when the run held out no validation set."""
    if not history or "valid_loss" not in history[-1]:
        return history[-1] if history else {}
    return min(history, key=lambda h: h["valid_loss"])


def keep_best(model, history: list[dict], best_state: dict | None, best_path: str | None,
              log=print) -> None:
    """Give the model the parameters of the best epoch on validation: those kept in memory if
    this run met that epoch, else those in best.npz (a resumed run whose best came before)."""
    best = best_epoch(history)
    if best_state is not None:
        model.load_state_dict(best_state)
    elif best_path and os.path.exists(best_path):
        load(model, best_path)
    else:
        raise FileNotFoundError(f"the best epoch's parameters ({best['epoch']}) are lost: "
                                f"{best_path} is missing")
    log(f"kept epoch {best['epoch']}, the best on validation (loss {best['valid_loss']:.2f})")


def _not_finite(values: dict) -> str:
    """'loss is nan' for the first value that is NaN or infinite; '' if all are finite."""
    return next((f"{name} is {v}" for name, v in values.items() if not math.isfinite(v)), "")


def _summary(values: dict) -> str:
    """'120.00  (rec 100.00  kl 20.00)': the first number (the loss), then the others by name."""
    show = lambda v: str(v) if isinstance(v, int) else f"{v:.2f}" if abs(v) >= 0.1 else f"{v:.3g}"
    (_, first), *others = values.items()
    rest = "  ".join(f"{name} {show(v)}" for name, v in others)
    return show(first) + (f"  ({rest})" if rest else "")
