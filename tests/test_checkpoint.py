"""Checkpoints against crafted files, interrupted writes and bad states (issue 14).

Every bad file is made by hand here: truncated, corrupt, pickled, of another kind, a state.json
that is missing or not JSON, a random-generator state of another generator. Loading any of them
raises CheckpointError naming the file and leaves model, optimiser and generator as they were.
A subprocess killed in the middle of a write shows that the target survives and the leftover is
swept.
"""
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import minivae
from minivae import files, nn, optim
from minivae.checkpoint import CheckpointError, load_training, save_training
from minivae.tensor import Tensor
from minivae.files import write_json
from minivae.train import open_run


def tiny(seed=0):
    return nn.Sequential(nn.Linear(3, 4, rng=np.random.default_rng(seed)), nn.ReLU(),
                         nn.Linear(4, 2, rng=np.random.default_rng(seed + 1)))


def trained(seed=0):
    """A model and an Adam that has taken one step (so its buffers are not zeros)."""
    model = tiny(seed)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    x = Tensor(np.random.default_rng(seed).standard_normal((5, 3)).astype(np.float32))
    (model(x) ** 2).sum().backward()
    opt.step()
    return model, opt


def snapshot(model, opt, rng):
    return model.state_dict(), opt.state_dict(), rng.bit_generator.state


def assert_unchanged(before, model, opt, rng):
    for a, b in zip(before[:2], (model.state_dict(), opt.state_dict())):
        assert list(a) == list(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert before[2] == rng.bit_generator.state


@pytest.fixture
def good(tmp_path):
    """A training checkpoint of another model and optimiser state, and its raw arrays."""
    model, opt = trained(seed=5)
    rng = np.random.default_rng(9)
    path = tmp_path / "checkpoint.npz"
    save_training(path, model, opt, {"history": [{"epoch": 1}], "rng": rng.bit_generator.state})
    with np.load(path) as f:
        arrays = {name: f[name] for name in f.files}
    return path, arrays


def rewrite(path, arrays):
    np.savez(path, **arrays)  # a file written by hand, not by minivae
    return path


def truncated(path, arrays):
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def flipped(path, arrays):
    """One byte of the model's first weight changed, inside the zip: a CRC mismatch."""
    raw = bytearray(path.read_bytes())
    data = raw.index(b"\x93NUMPY", raw.index(b"model/0.weight.npy")) + 128  # past the header
    raw[data + 5] ^= 0xFF
    path.write_bytes(bytes(raw))


def no_state(path, arrays):
    rewrite(path, {k: v for k, v in arrays.items() if k != "state.json"})


def bad_json(path, arrays):
    rewrite(path, {**arrays, "state.json": np.array("{'history': [], ")})


def other_generator(path, arrays):
    state = json.loads(str(arrays["state.json"]))
    state["rng"] = np.random.MT19937(0).state
    state["rng"]["state"]["key"] = state["rng"]["state"]["key"].tolist()
    rewrite(path, {**arrays, "state.json": np.array(json.dumps(state))})


def pickled(path, arrays):
    rewrite(path, {**arrays, "model/0.bias": np.array([{"evil": 1}] * 4, dtype=object)})


def not_a_zip(path, arrays):
    path.write_bytes(b"\x80\x04K\x01." + bytes(200))  # a pickle, where np.load would suggest
                                                     # allow_pickle=True


def misshaped_optimizer(path, arrays):
    rewrite(path, {**arrays, "optimizer/m.3": np.zeros(5, np.float32)})


def params_only(path, arrays):
    minivae.save(tiny(), path)


SPOILS = [
    (truncated, "not a minivae checkpoint \\(corrupt or truncated\\)"),
    (flipped, "not a minivae checkpoint \\(corrupt or truncated\\).*CRC"),
    (no_state, r"does not fit .*missing \['state.json'\]"),
    (bad_json, "not a minivae checkpoint.*state.json is not JSON"),
    (other_generator, "random-generator state does not fit this run's PCG64 .*MT19937"),
    (pickled, "not a minivae checkpoint.*'model/0.bias' holds object values.*never loads pickles"),
    (not_a_zip, "not a minivae checkpoint \\(corrupt or truncated\\)"),
    (misshaped_optimizer, r"'optimizer/m.3' has shape \(5,\), expected \(2,\)"),
    (params_only, "is not a training checkpoint .*minivae.load"),
]


@pytest.mark.parametrize("via", ["load_training", "open_run"])
@pytest.mark.parametrize("spoil, message", SPOILS, ids=[f.__name__ for f, _ in SPOILS])
def test_a_bad_training_checkpoint_is_named_and_changes_nothing(good, spoil, message, via):
    """Before the fix, a missing or corrupt state.json, or another generator's state, raised
    after the model and optimiser had been overwritten. Through load_training (no generator) and
    through train.open_run, which resumes a run (model, optimiser and generator)."""
    path, arrays = good
    if via == "load_training" and spoil is other_generator:
        pytest.skip("without a generator to restore, its state is not read")
    spoil(path, arrays)
    model, opt = trained(seed=0)
    rng = np.random.default_rng(1)
    before = snapshot(model, opt, rng)
    with pytest.raises(CheckpointError, match=message) as info:
        if via == "load_training":
            load_training(path, model, opt)
        else:
            open_run(str(path.parent), True, model, opt, rng, log=lambda *_: None)
    assert str(path) in str(info.value)
    assert "allow_pickle" not in str(info.value)
    assert_unchanged(before, model, opt, rng)


def test_a_refusing_check_or_a_failing_write_changes_nothing(good, monkeypatch):
    path, _ = good
    model, opt = trained(seed=0)
    rng = np.random.default_rng(1)
    before = snapshot(model, opt, rng)

    def refuse(state):
        raise ValueError("not this one")

    with pytest.raises(ValueError, match="not this one"):
        load_training(path, model, opt, rng, check=refuse)
    assert_unchanged(before, model, opt, rng)

    real = optim.Adam.load_state_dict
    calls = []

    def fail_once(self, state):  # the optimiser's write fails after the model's succeeded
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk on fire")
        real(self, state)

    monkeypatch.setattr(optim.Adam, "load_state_dict", fail_once, raising=False)
    with pytest.raises(OSError, match="disk on fire"):
        load_training(path, model, opt, rng)
    monkeypatch.undo()
    assert_unchanged(before, model, opt, rng)


def test_a_good_training_checkpoint_restores_everything(good):
    path, _ = good
    model, opt = trained(seed=0)
    rng = np.random.default_rng(1)
    state = load_training(path, model, opt, rng)
    source, source_opt = trained(seed=5)
    for (name, p), q in zip(source.named_parameters(), model.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    assert opt.t == source_opt.t == 1
    assert rng.bit_generator.state == np.random.default_rng(9).bit_generator.state
    assert state["history"] == [{"epoch": 1}]


def test_minivae_load_names_the_file_and_refuses_what_is_not_a_checkpoint(tmp_path):
    model = tiny()
    before = model.state_dict()
    for raw in (b"", b"PK\x03\x04garbage", b"\x80\x04K\x01."):
        path = tmp_path / "bad.npz"
        path.write_bytes(raw)
        with pytest.raises(CheckpointError, match="not a minivae checkpoint") as info:
            minivae.load(model, path)
        assert str(path) in str(info.value) and "allow_pickle" not in str(info.value)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match=r"does not fit this model: missing \['0.bias'"):
        minivae.load(model, tmp_path / "other.npz")
    for name, value in before.items():
        np.testing.assert_array_equal(model.state_dict()[name], value)
    with pytest.raises(FileNotFoundError):
        minivae.load(model, tmp_path / "absent.npz")


def test_nothing_is_inflated_before_the_names_are_checked(tmp_path, monkeypatch):
    """A crafted file whose names do not fit is refused from the zip's directory alone; a name
    that fits with a header promising another shape is refused from the header alone."""
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("huge.npy", bytes(50_000_000))  # 50 MB of zeros, 50 kB deflated
    reads = []
    original = zipfile.ZipExtFile.read
    monkeypatch.setattr(zipfile.ZipExtFile, "read",
                        lambda self, n=-1: reads.append(n) or original(self, n))
    with pytest.raises(CheckpointError, match=r"missing .*unexpected \['huge'\]"):
        minivae.load(tiny(), path)
    assert reads == []

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (4000, 4000)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in tiny().state_dict().items():
            if name == "0.weight":  # a header promising 64 MB, and the 64 MB
                archive.writestr(name + ".npy", header.getvalue() + bytes(64_000_000))
            else:
                buffer = io.BytesIO()
                np.save(buffer, value)
                archive.writestr(name + ".npy", buffer.getvalue())
    reads.clear()
    with pytest.raises(CheckpointError, match=r"'0.weight' has shape \(4000, 4000\), expected "
                                              r"\(4, 3\)"):
        minivae.load(tiny(), path)
    assert sum(n for n in reads if n > 0) < 10_000  # headers only, never the 64 MB


# ---------------------------------------------------------------- writes


def test_writes_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    minivae.save(tiny(), tmp_path / "m.npz")
    assert events[:2] == ["fsync", "replace"], events
    events.clear()
    write_json(tmp_path / "m.json", {"a": 1})
    assert events[:2] == ["fsync", "replace"], events


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_get_the_usual_mode(tmp_path, umask, mode):
    """mkstemp makes its files 0600; a checkpoint or a JSON file is an ordinary file."""
    before = os.umask(umask)
    try:
        model, opt = trained()
        minivae.save(model, tmp_path / "m.npz")
        save_training(tmp_path / "c.npz", model, opt, {"history": []})
        write_json(tmp_path / "h.json", [1, 2])
    finally:
        os.umask(before)
    for name in ("m.npz", "c.npz", "h.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_json_files_are_strict_json(tmp_path):
    """JSON has no NaN or Infinity: they are written as null, with a warning naming where."""
    path = tmp_path / "metrics.json"
    with pytest.warns(UserWarning, match="/loss, /parts/1"):
        write_json(path, {"loss": float("nan"), "parts": [1.0, float("inf")],
                                        "ok": 2.5})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "loss": None, "parts": [1.0, None], "ok": 2.5}
    model, opt = trained()
    save_training(tmp_path / "c.npz", model, opt, {"history": [{"loss": float("inf")}]})
    with np.load(tmp_path / "c.npz") as f:
        assert json.loads(str(f["state.json"]), parse_constant=pytest.fail) == {
            "history": [{"loss": None}]}


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from minivae.files import atomic_write
    with atomic_write(sys.argv[1]) as f:
        f.write(b"half of a new checkpoint")
        f.flush()
        print("writing", flush=True)
        time.sleep(60)  # killed here
        f.write(b" and the other half")
""")


def test_a_write_killed_midway_leaves_the_old_file_and_its_leftover_is_swept(tmp_path):
    target = tmp_path / "checkpoint.npz"
    target.write_bytes(b"the old checkpoint")
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert target.read_bytes() == b"the old checkpoint"
    leftovers = list(tmp_path.glob(".tmp-*"))
    assert len(leftovers) == 1 and leftovers[0].read_bytes() == b"half of a new checkpoint"
    assert files.sweep(tmp_path, ".tmp-*", older_than=files.STALE) == []  # could be live
    old = time.time() - 2 * files.STALE
    os.utime(leftovers[0], (old, old))
    assert files.sweep(tmp_path, ".tmp-*", older_than=files.STALE) == leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]
