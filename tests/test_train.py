"""train.fit against bad arguments, bad data, divergence and shared or unwritable output folders
(issue 14). Each test names the bug or weak point it covers; runs are tiny (512 images, an MLP
VAE with 32 hidden units), so the file takes seconds.
"""
import ctypes
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from minivae import data, files, optim
from minivae.models.aae import AAE
from minivae.models.vae import VAE
from minivae.train import fit, open_run

QUIET = dict(log=lambda *_: None)


@pytest.fixture(scope="module")
def digits():
    (x_train, _), (x_test, _) = data.load("mnist-5k")
    return data.to_float(x_train[:512]), data.to_float(x_test[:256])


def small(seed=3):
    return VAE.mlp(latent_dim=4, hidden=32, rng=np.random.default_rng(seed))


def train(out, digits, epochs=1, resume=False, lr=1e-3, batch_size=64, x_train=None, **kw):
    model = small()
    history = fit(model, optim.Adam(model.parameters(), lr=lr),
                  digits[0] if x_train is None else x_train, digits[1], epochs=epochs,
                  batch_size=batch_size, seed=3, out=out, resume=resume, **QUIET, **kw)
    return model, history


# ---------------------------------------------------------------- arguments and data


def with_nan(x, where):
    x = x.copy()
    x[where] = np.nan
    return x


@pytest.mark.parametrize("change, message", [
    (dict(batch_size=0), "fit: batch_size must be a positive integer, got 0"),  # was a
    (dict(batch_size=-5), "batch_size must be a positive integer, got -5"),  # ZeroDivisionError
    (dict(batch_size=2.5), "batch_size must be a positive integer, got 2.5"),
    (dict(epochs=0), "fit: epochs must be a positive integer, got 0"),
    (dict(epochs=-1), "epochs must be a positive integer, got -1"),
    (dict(epochs=True), "epochs must be a positive integer, got True"),
    (dict(seed=-1), r"fit: seed must be an integer ≥ 0, got -1"),
    (dict(x_train=lambda x: x[:0]), r"fit: x_train is empty \(shape \(0, 1, 28, 28\)\)"),
    (dict(x_test=lambda x: x[:0]), r"fit: x_test is empty"),
    (dict(x_train=lambda x: (x * 255).astype(np.uint8)), "x_train holds uint8 pixels.*to_float"),
    (dict(x_train=lambda x: x.astype(np.float16)), "float16; minivae computes in float32 or "
                                                   "float64 only"),
    (dict(x_train=lambda x: with_nan(x, (7, 0, 3, 4))), r"x_train holds nan at index "
                                                        r"\(7, 0, 3, 4\)"),
    (dict(x_test=lambda x: with_nan(x, (200, 0, 27, 0))), r"x_test holds nan at index "
                                                          r"\(200, 0, 27, 0\)"),
    (dict(x_test=lambda x: np.where(x > 0.99, np.inf, x)), "x_test holds inf at index"),
])
def test_fit_refuses_bad_arguments_and_data_before_the_first_epoch(change, message, digits,
                                                                   tmp_path):
    """A NaN injected in the training data or in the test set is named before anything runs
    (before the fix, NaN data gave a NaN loss at some step, or a NaN test loss checkpointed as
    good); nothing is written into `out`."""
    model = small()
    call = dict(x_train=digits[0], x_test=digits[1], epochs=1, batch_size=64, seed=0)
    for key, value in change.items():
        call[key] = value(call[key]) if callable(value) else value
    x_train, x_test = call.pop("x_train"), call.pop("x_test")
    with pytest.raises(ValueError, match=message):
        fit(model, optim.Adam(model.parameters()), x_train, x_test, out=str(tmp_path / "run"),
            **call, **QUIET)
    assert not (tmp_path / "run").exists()


def test_fit_refuses_bad_arguments_for_the_aae_too(digits):
    model = AAE.mlp(hidden=8, rng=np.random.default_rng(0))
    for change, message in [(dict(batch_size=0), "fit: batch_size must be a positive"),
                            (dict(epochs=0), "fit: epochs must be a positive"),
                            (dict(x_test=digits[1][:0]), "fit: x_test is empty")]:
        call = {**dict(x_train=digits[0], x_test=digits[1], epochs=1), **change}
        with pytest.raises(ValueError, match=message):
            fit(model, model.optimizers(), call.pop("x_train"), call.pop("x_test"),
                step=model.step, evaluation=model.evaluate, **call, **QUIET)
    with pytest.raises(ValueError, match="AAE: mmd_n must be an integer ≥ 2"):
        AAE.mlp(hidden=8, mmd_n=1)


# ---------------------------------------------------------------- the NaN guards say what is kept


def poison_at(model, epoch):
    """An on_step hook that fills the decoder's bias with NaN from the first step of `epoch`."""
    def hook(epochs_done):  # epochs done after this step: epoch − 1 + step / steps
        if epochs_done > epoch - 1:
            model.decoder[-2].bias.data[:] = np.nan
    return hook


def test_nan_in_the_first_epoch_says_no_checkpoint_was_written(tmp_path, digits):
    """Before the fix: 'the last good checkpoint … is kept', when there was none."""
    model = small()
    model.decoder[-2].bias.data[:] = np.nan
    with pytest.raises(FloatingPointError) as info:
        fit(model, optim.Adam(model.parameters()), *digits, epochs=2, batch_size=64,
            out=str(tmp_path / "run"), **QUIET)
    assert "loss is nan at epoch 1, step 1; no checkpoint was written yet" in str(info.value)
    assert "last good" not in str(info.value)
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_nan_in_a_new_run_leaves_an_earlier_runs_checkpoint_and_says_whose_it_is(tmp_path,
                                                                                 digits):
    """Before the fix, another run's checkpoint was called this run's 'last good' one."""
    out = str(tmp_path / "run")
    train(out, digits)
    checkpoint = os.path.join(out, "checkpoint.npz")
    earlier = open(checkpoint, "rb").read()
    model = small()
    model.decoder[-2].bias.data[:] = np.nan
    with pytest.raises(FloatingPointError) as info:
        fit(model, optim.Adam(model.parameters()), *digits, epochs=2, batch_size=64, out=out,
            overwrite=True, **QUIET)
    assert (f"no checkpoint of this run was written yet ({checkpoint} is an earlier run's, left "
            f"as it was)") in str(info.value)
    assert open(checkpoint, "rb").read() == earlier


def test_nan_later_names_this_runs_last_checkpoint_and_its_epoch(tmp_path, digits):
    out = str(tmp_path / "run")
    model = small()
    with pytest.raises(FloatingPointError, match=r"loss is nan at epoch 2, step 1; the last good "
                                                 r"checkpoint, of epoch 1, is kept in .*run"):
        fit(model, optim.Adam(model.parameters()), *digits, epochs=3, batch_size=64, out=out,
            on_step=poison_at(model, 2), **QUIET)
    saved = json.loads(open(os.path.join(out, "history.json")).read())
    assert [r["epoch"] for r in saved] == [1]


def test_a_non_finite_test_loss_stops_training_before_its_epoch_is_saved(tmp_path, digits):
    """Adam at lr 1e6, one step per epoch: the steps' losses stay finite while the parameters
    run off to infinity. Before the fix the NaN test loss of epoch 3 was checkpointed as good, and
    the next epoch's guard named that checkpoint 'the last good' one. Now training stops there,
    and the checkpoint kept has a finite test loss."""
    out = str(tmp_path / "run")
    x_train = digits[0][:64]
    with pytest.raises(FloatingPointError) as info, np.errstate(all="ignore"):
        train(out, digits, epochs=5, lr=1e6, x_train=x_train)
    message = str(info.value)
    assert message.startswith("test loss is nan after epoch 3")
    assert "this epoch is not saved; the last good checkpoint, of epoch 2, is kept in" in message
    saved = json.loads(open(os.path.join(out, "history.json")).read())
    assert [r["epoch"] for r in saved] == [1, 2]
    assert all(np.isfinite(r["test_loss"]) for r in saved)


def test_a_non_finite_aae_test_value_stops_training_too(monkeypatch):
    model = AAE.mlp(latent_dim=2, hidden=8, input_shape=(2,), rng=np.random.default_rng(0),
                    mmd_n=32)
    x = np.random.default_rng(0).random((64, 2)).astype(np.float32)
    real = AAE.evaluate
    monkeypatch.setattr(AAE, "evaluate", lambda *a, **k: {**real(*a, **k), "mmd": float("nan")})
    with pytest.raises(FloatingPointError, match="test mmd is nan after epoch 1"):
        fit(model, model.optimizers(), x, x, epochs=2, step=model.step, evaluation=model.evaluate,
            **QUIET)


# ---------------------------------------------------------------- one run per folder


HOLDER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from minivae import optim
    from minivae.models.vae import VAE
    from minivae.train import open_run
    model = VAE.mlp(latent_dim=4, hidden=32, rng=np.random.default_rng(3))
    open_run(sys.argv[1], False, model, optim.Adam(model.parameters()), np.random.default_rng(0),
             log=lambda *_: None)
    print("running", flush=True)
    time.sleep(120)
""")


def test_two_runs_cannot_write_into_one_folder_and_a_killed_run_leaves_no_lock(tmp_path,
                                                                               digits):
    """Before the fix, a second run into the same folder silently overwrote the first's
    checkpoints."""
    out = str(tmp_path / "run")
    other = subprocess.Popen([sys.executable, "-c", HOLDER, out], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert other.stdout.readline().strip() == "running"
        with pytest.raises(BlockingIOError, match=f"another run is writing into {out} "
                                                  f"\\(process {other.pid}"):
            train(out, digits)
        assert not os.path.exists(os.path.join(out, "checkpoint.npz"))
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait(10)
    _, history = train(out, digits)  # the killed run's lock went with it
    assert len(history) == 1


def test_runs_one_after_another_in_one_process_each_take_the_folder(tmp_path, digits):
    out = str(tmp_path / "run")
    model = small()
    model.decoder[-2].bias.data[:] = np.nan
    with pytest.raises(FloatingPointError):
        fit(model, optim.Adam(model.parameters()), *digits, epochs=1, out=out, **QUIET)
    train(out, digits)
    train(out, digits, epochs=2, resume=True)


# ---------------------------------------------------------------- resume checks the settings


@pytest.mark.parametrize("change, difference", [
    (dict(batch_size=32), "batch_size: 64 then, 32 now"),
    (dict(lr=1e-2), "optimizer.lr: 0.001 then, 0.01 now"),
    (dict(binarize=True), "binarize: False then, True now"),
    (dict(x_train=lambda x: x[:256]), "data.train.shape: [512, 1, 28, 28] then, "
                                      "[256, 1, 28, 28] now"),
    (dict(x_train=lambda x: x[::-1].copy()), "data.train.crc32:"),
])
def test_resume_refuses_other_settings_naming_each_difference(change, difference, tmp_path,
                                                              digits):
    """Before the fix, --resume with another batch size, learning rate or data set continued
    silently, and the run was neither the saved one nor a fresh one."""
    out = str(tmp_path / "run")
    train(out, digits)
    before = open(os.path.join(out, "checkpoint.npz"), "rb").read()
    change = {k: v(digits[0]) if callable(v) else v for k, v in change.items()}
    with pytest.raises(ValueError, match=f"cannot resume from .*checkpoint.npz: this run's "
                                         f"settings differ from the saved run's \\(.*"
                                         f"{difference.replace('[', '.').replace(']', '.')}"):
        train(out, digits, epochs=2, resume=True, **change)
    assert open(os.path.join(out, "checkpoint.npz"), "rb").read() == before
    train(out, digits, epochs=2, resume=True)  # the same settings, more epochs: fine


def test_resume_with_more_epochs_is_noted(tmp_path, digits):
    out = str(tmp_path / "run")
    train(out, digits)
    lines = []
    model = small()
    fit(model, optim.Adam(model.parameters()), *digits, epochs=2, batch_size=64, seed=3, out=out,
        resume=True, log=lines.append)
    assert any("was saved by a run of 1 epochs, this one has 2" in line for line in lines)
    assert any("resumed from" in line for line in lines)


# ---------------------------------------------------------------- read-only folders, leftovers


def without_root_powers():
    """For a child process: drop the capabilities that let root write anywhere, so a folder's
    permissions bind it as they bind everyone else (PR_CAPBSET_DROP on CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH and CAP_FOWNER)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):
        if libc.prctl(24, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


READ_ONLY_RUN = textwrap.dedent("""
    import sys
    import numpy as np
    from minivae import data, optim
    from minivae.models.vae import VAE
    from minivae.train import fit
    (x, _), _ = data.load("mnist-5k")
    x = data.to_float(x[:64])
    model = VAE.mlp(latent_dim=2, hidden=8, rng=np.random.default_rng(0))
    try:
        fit(model, optim.Adam(model.parameters()), x, x, epochs=1, out=sys.argv[1])
    except OSError as e:
        print("refused:", e)
""")


def can_drop_root_powers() -> bool:
    """Not root, or root with CAP_SETPCAP (bit 8 of CapEff), which PR_CAPBSET_DROP needs."""
    if os.geteuid() != 0:
        return True
    with open("/proc/self/status") as status:
        caps = next(line for line in status if line.startswith("CapEff:")).split()[1]
    return bool(int(caps, 16) >> 8 & 1)


@pytest.mark.skipif(not hasattr(os, "geteuid") or not can_drop_root_powers(),
                    reason="needs POSIX permissions that bind this process's children")
def test_a_read_only_output_folder_is_found_before_the_first_epoch(tmp_path):
    """Before the fix, a folder that exists but cannot be written into failed at the end of
    epoch 1, its work lost. Runs in a child process without root's override of permissions."""
    out = tmp_path / "read-only"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = subprocess.run([sys.executable, "-c", READ_ONLY_RUN, str(out)],
                                preexec_fn=without_root_powers, capture_output=True, text=True,
                                timeout=300)
    finally:
        out.chmod(0o755)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"refused: [Errno 13] cannot write into the folder {out}: Permission denied" in \
        result.stdout, result.stdout
    assert "epoch" not in result.stdout  # no epoch ran
    assert list(out.iterdir()) == []


def test_opening_a_run_sweeps_the_leftovers_of_killed_writes(tmp_path, digits):
    out = tmp_path / "run"
    out.mkdir()
    stale, fresh = out / ".tmp-killed", out / ".tmp-live"
    stale.write_bytes(b"half a checkpoint")
    fresh.write_bytes(b"a write in progress")
    old = time.time() - 2 * files.STALE
    os.utime(stale, (old, old))
    model = small()
    open_run(str(out), False, model, optim.Adam(model.parameters()), np.random.default_rng(0),
             **QUIET)
    assert not stale.exists() and fresh.exists()
