"""Tests for minivae.data: shipped mnist-5k, IDX reader, search order, downloads, batches, helpers.

Every test is offline. Downloads go to an HTTP server on 127.0.0.1 that the test starts, and an
autouse fixture points the real mirrors at a closed local port, so a test that reached for the
network by mistake fails instead of contacting anyone. HOME, MINIVAE_DATA and the system folder
are replaced by temporary ones, so the developer's own files are never read or touched.
"""
import functools
import gzip
import hashlib
import http.server
import io
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minivae import data, download

# SHA-256 over the raw bytes of x_train, y_train, x_test, y_test (see minivae/datasets/README.md).
MNIST_5K_SHA256 = "d0df6dcf9d8da12822c4549a36c47ab5f7ce8dbc279f645b243c1a8e21a9c40a"
# The same for the real Fashion-MNIST, as Debian's dataset-fashion-mnist installs it.
FASHION_MNIST_SHA256 = "ece172613115fb18b120bec8f6c02271af90b8b8f0a5af5c51cbd5ceed68e619"

DTYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
               np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def arrays_sha256(*arrays):
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def idx_bytes(a):
    """An IDX file written by hand from the spec, independently of the reader under test."""
    header = bytes([0, 0, DTYPE_CODES[a.dtype], a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write_idx(path, a, gz=True):
    raw = idx_bytes(a)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def write_set(folder, n_train=6, n_test=4, tag=0, gz=True):
    """A tiny fake data set; `tag` is the first training label, so tests can tell copies apart."""
    rng = np.random.default_rng(tag)
    folder.mkdir(parents=True, exist_ok=True)
    for images, labels, n in [(data.TRAIN_IMAGES, data.TRAIN_LABELS, n_train),
                              (data.TEST_IMAGES, data.TEST_LABELS, n_test)]:
        y = rng.integers(0, 10, n).astype(np.uint8)
        if images == data.TRAIN_IMAGES:
            y[0] = tag
        suffix = ".gz" if gz else ""
        x = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        write_idx(folder / (images + suffix), x, gz)
        write_idx(folder / (labels + suffix), y, gz)
    return folder


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """Fresh HOME, no MINIVAE_DATA, an empty system folder, and mirrors nobody listens on."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MINIVAE_DATA", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    dead = f"http://127.0.0.1:{closed_port()}/"
    monkeypatch.setattr(download, "MIRRORS", {name: (dead,) for name in download.MIRRORS})
    return tmp_path


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/served; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


# ----------------------------------------------------------------------------- mnist-5k


def test_mnist_5k_ships_with_exact_shapes_dtypes_digits_and_checksum():
    (x_train, y_train), (x_test, y_test) = data.load("mnist-5k")
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert x_train.dtype == x_test.dtype == np.uint8
    assert y_train.dtype == y_test.dtype == np.int64
    assert np.bincount(y_train).tolist() == [400] * 10
    assert np.bincount(y_test).tolist() == [100] * 10
    assert arrays_sha256(x_train, y_train, x_test, y_test) == MNIST_5K_SHA256
    assert len(np.unique(np.concatenate([x_train, x_test]).reshape(5000, -1), axis=0)) == 5000


def test_mnist_5k_is_shuffled_not_sorted_by_label():
    (_, y_train), _ = data.load("mnist-5k")
    assert len(np.unique(y_train[:64])) == 10  # a first batch in file order already mixes digits


def test_unknown_name_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"unknown data set 'mnsit'.*mnist-5k, mnist, fashion-mn"):
        data.load("mnsit")


# ----------------------------------------------------------------------------- IDX reader


@settings(max_examples=30)
@given(a=hnp.arrays(st.sampled_from(list(DTYPE_CODES)),
                    hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)),
       gz=st.booleans())
def test_idx_round_trips_gzipped_and_raw(tmp_path_factory, a, gz):
    path = write_idx(tmp_path_factory.mktemp("idx") / "a-idx", a, gz)
    b = data.read_idx(path)
    assert b.dtype == a.dtype and b.shape == a.shape and b.flags.writeable
    np.testing.assert_array_equal(b, a)


def test_idx_accepts_the_dotted_and_unpacked_file_names(tmp_path):
    write_set(tmp_path / "set", gz=False)
    for f in (tmp_path / "set").iterdir():  # train-images.idx3-ubyte, as some copies name them
        f.rename(f.with_name(f.name.replace("-idx", ".idx")))
    (x_train, y_train), (x_test, _) = data.load("mnist", root=tmp_path / "set")
    assert x_train.shape == (6, 28, 28) and x_test.shape == (4, 28, 28)
    assert y_train.dtype == np.int64


def good_images(tmp_path):
    return write_idx(tmp_path / "images.gz", np.zeros((3, 28, 28), np.uint8))


@pytest.mark.parametrize("corrupt, message", [
    (lambda raw: raw[: len(raw) // 2], "corrupt or truncated gzip"),
    (lambda raw: raw[:20] + bytes(b ^ 0xFF for b in raw[20:40]) + raw[40:],
     "corrupt or truncated gzip"),
    (lambda raw: gzip.compress(b"\x00\x00\x08\x02" + gzip.decompress(raw)[4:]),
     "wrong IDX magic number 0x00000802"),  # a 2-d uint8 file where 3-d images belong
    (lambda raw: gzip.compress(b"PK\x03\x04" + gzip.decompress(raw)[4:]), "not an IDX file"),
    (lambda raw: gzip.compress(gzip.decompress(raw)[:-5]), "header promises"),
    (lambda raw: gzip.compress(gzip.decompress(raw)[:9]), "truncated IDX header"),
    (lambda raw: gzip.decompress(raw)[:-1], "header promises"),  # raw, not gzipped
], ids=["truncated-gzip", "corrupt-gzip", "wrong-magic", "not-idx", "short-payload", "short-header",
        "short-raw"])
def test_idx_rejects_corruption_and_names_the_file(tmp_path, corrupt, message):
    path = good_images(tmp_path)
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(data.DataError, match=message) as info:
        data.read_idx(path, data.IMAGES_MAGIC)
    assert str(path) in str(info.value)


def test_image_and_label_counts_must_match(tmp_path):
    folder = write_set(tmp_path / "set")
    write_idx(folder / (data.TEST_LABELS + ".gz"), np.zeros(3, np.uint8))  # 4 images, 3 labels
    with pytest.raises(data.DataError, match=r"holds 4 images but .*t10k-labels.* holds 3 labels"):
        data.load("mnist", root=folder)
    assert (folder / (data.TEST_LABELS + ".gz")).exists()  # a user's own files are never deleted


def test_a_corrupt_file_in_the_cache_is_named_and_removed(tmp_path):
    cache = write_set(data.cache_dir("mnist"))
    bad = cache / (data.TRAIN_IMAGES + ".gz")
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(data.DataError, match="removed .*train-images-idx3-ubyte.gz from the cache"):
        data.load("mnist")
    assert not bad.exists() and (cache / (data.TRAIN_LABELS + ".gz")).exists()  # only the bad one


# ----------------------------------------------------------------------------- search order


def first_label(name="mnist", root=None):
    (_, y_train), _ = data.load(name, root=root)
    return int(y_train[0])


def test_search_order_root_then_env_then_cache_then_system(tmp_path, monkeypatch):
    write_set(tmp_path / "root", tag=1)
    write_set(tmp_path / "env" / "mnist", tag=2)
    write_set(data.cache_dir("mnist"), tag=3)
    write_set(tmp_path / "system" / "mnist", tag=4)
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "env"))
    assert first_label(root=tmp_path / "root") == 1
    assert first_label(root=tmp_path / "nowhere") == 2  # root= comes first, not alone
    monkeypatch.delenv("MINIVAE_DATA")
    assert first_label() == 3
    for f in data.cache_dir("mnist").iterdir():
        f.unlink()
    assert first_label() == 4
    assert Path.home() == tmp_path / "home"  # the real home was never in play


def test_root_may_hold_a_folder_named_after_the_data_set(tmp_path):
    write_set(tmp_path / "root" / "fashion-mnist", tag=7)
    assert first_label("fashion-mnist", root=tmp_path / "root") == 7


def test_an_incomplete_folder_is_skipped_and_reported(tmp_path):
    folder = write_set(tmp_path / "root", tag=1)
    (folder / (data.TEST_LABELS + ".gz")).unlink()
    write_set(tmp_path / "system" / "mnist", tag=4)
    assert first_label(root=folder) == 4


def test_offline_error_names_every_place_searched_and_how_to_get_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as info:
        data.load("fashion-mnist", root=tmp_path / "root")
    message = str(info.value)
    for place in [tmp_path / "root", tmp_path / "env" / "fashion-mnist",
                  data.cache_dir("fashion-mnist"), tmp_path / "system" / "fashion-mnist",
                  download.MIRRORS["fashion-mnist"][0]]:
        assert str(place) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "train-images-idx3-ubyte" in message
    assert not data.cache_dir("fashion-mnist").parent.exists()  # not even an empty folder


# ----------------------------------------------------------------------------- downloads


def test_download_with_good_checksum_caches_the_file(server, tmp_path):
    served, url = server
    payload = np.random.default_rng(0).bytes(300_000)
    (served / "f.gz").write_bytes(payload)
    dest = tmp_path / "cache" / "f.gz"
    log = io.StringIO()
    data.download(url + "f.gz", dest, hashlib.sha256(payload).hexdigest(), stream=log)
    assert dest.read_bytes() == payload
    assert [p.name for p in dest.parent.iterdir()] == ["f.gz"]  # no temporary file left over
    assert "\r" not in log.getvalue() and "100%" in log.getvalue()  # plain lines off a terminal


def test_download_with_bad_checksum_raises_and_leaves_nothing(server, tmp_path):
    served, url = server
    (served / "f.gz").write_bytes(b"not what was promised")
    dest = tmp_path / "cache" / "f.gz"
    with pytest.raises(data.DataError, match=r"f\.gz: SHA-256 mismatch .*discarded"):
        data.download(url + "f.gz", dest, "0" * 64, stream=io.StringIO())
    assert list(dest.parent.iterdir()) == []


def test_load_downloads_missing_files_into_the_cache(server, monkeypatch, capsys):
    served, url = server
    write_set(served, tag=5)
    sums = {base: hashlib.sha256((served / (base + ".gz")).read_bytes()).hexdigest()
            for base in data.FILES}
    monkeypatch.setattr(download, "MIRRORS", {"mnist": (f"http://127.0.0.1:{closed_port()}/", url)})
    monkeypatch.setattr(download, "SHA256", {"mnist": sums})
    assert first_label() == 5  # the first mirror is down; the second serves
    cached = sorted(p.name for p in data.cache_dir("mnist").iterdir())
    assert cached == sorted(f + ".gz" for f in data.FILES)
    assert "downloading" in capsys.readouterr().err
    (served / (data.TRAIN_IMAGES + ".gz")).unlink()
    assert first_label() == 5  # read from the cache this time


def test_load_with_a_bad_checksum_raises_and_leaves_the_cache_empty(server, monkeypatch):
    served, url = server
    write_set(served)
    monkeypatch.setattr(download, "MIRRORS", {"mnist": (url,)})
    monkeypatch.setattr(download, "SHA256", {"mnist": {base: "f" * 64 for base in data.FILES}})
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte.gz: SHA-256 mismatch"):
        data.load("mnist")
    assert not data.cache_dir("mnist").exists()


def test_progress_bar_redraws_in_place_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    bar = download._download_progress("http://127.0.0.1/x.gz", 1000, out)
    bar.update(400)
    bar.update(600)
    bar.close()
    first, bar, end = out.getvalue().split("\n")
    assert first == "downloading http://127.0.0.1/x.gz (0.0 MB)"
    assert bar.startswith("\rx.gz [") and bar.count("\r") == 2 and bar.endswith("100% 0.0 MB")
    assert end == ""


# ----------------------------------------------------------------------------- crafted files (14)


def overflowing_header(ndim=3, side=2**22):
    """An IDX images header of `ndim` dimensions of `side`: 2^66 values, which wrap to 0 in int64."""
    return bytes([0, 0, 0x08, ndim]) + struct.pack(f">{ndim}I", *[side] * ndim)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_an_idx_header_whose_size_overflows_int64_is_refused_naming_the_file(tmp_path, gz):
    """Before the fix, np.prod in int64 wrapped 2^66 bytes to 0, the empty payload passed the
    size check and reshape failed with a ValueError that named no file."""
    path = tmp_path / "images"
    raw = overflowing_header()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(data.DataError, match=r"header promises \(4194304, 4194304, 4194304\) "
                                             r"values of uint8 \(73786976294838206464 bytes\)"
                       ) as info:
        data.read_idx(path, data.IMAGES_MAGIC)
    assert str(path) in str(info.value)


def test_an_overflowing_header_in_the_cache_is_removed(tmp_path):
    """Before the fix the plain ValueError escaped the cache's clean-up: the bad copy stayed."""
    cache = write_set(data.cache_dir("mnist"))
    bad = cache / (data.TRAIN_IMAGES + ".gz")
    bad.write_bytes(gzip.compress(overflowing_header()))
    with pytest.raises(data.DataError, match="removed .*train-images-idx3-ubyte.gz from the cache"):
        data.load("mnist")
    assert not bad.exists()


class CountingGzip(gzip.GzipFile):
    inflated = 0

    def read(self, size=-1):
        chunk = super().read(size)
        CountingGzip.inflated += len(chunk)
        return chunk


@pytest.mark.parametrize("payload, message, inflated", [
    (lambda: b"PK\x03\x04" + bytes(20_000_000), "not an IDX file", 4),  # a zip's magic, 20 MB
    (lambda: bytes([0, 0, 8, 3]) + struct.pack(">3I", 2000, 28, 28) + bytes(5_000_000),
     "file holds more than 1568000 bytes", 16 + 1_568_001),  # trailing data, never inflated
    (lambda: bytes([0, 0, 8, 3]) + struct.pack(">3I", 10**6, 100, 100) + bytes(1000),
     "more than this file can hold", 16),  # 10 GB promised by a file of a few kB
], ids=["not-idx", "trailing-data", "impossible-size"])
def test_idx_headers_are_read_before_the_whole_file_is_inflated(tmp_path, monkeypatch, payload,
                                                                message, inflated):
    """Before the fix, every file was inflated whole (gzip.decompress) before its header was
    read."""
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(payload(), compresslevel=1))
    CountingGzip.inflated = 0
    monkeypatch.setattr(gzip, "open", lambda p, mode: CountingGzip(p, mode))
    monkeypatch.setattr(gzip, "decompress", lambda raw: pytest.fail("inflated the whole file"))
    with pytest.raises(data.DataError, match=message):
        data.read_idx(path)
    assert CountingGzip.inflated <= inflated


# ----------------------------------------------------------------------------- hostile servers (14)


@pytest.fixture
def serve(tmp_path):
    """serve(handler) -> base URL: a server on 127.0.0.1 whose GET runs handler(request)."""
    servers = []

    def start(handle):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                try:
                    handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should

            def log_message(self, *args):
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def trickle(payload, pause, length=True):
    """A handler that sends `payload` a byte at a time, `pause` seconds apart."""
    def handle(request):
        request.send_response(200)
        if length:
            request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        for byte in payload:
            request.wfile.write(bytes([byte]))
            request.wfile.flush()
            time.sleep(pause)
    return handle


def test_a_trickling_download_stops_at_its_deadline_and_leaves_nothing(serve, tmp_path,
                                                                       monkeypatch):
    """A byte every 20 ms never trips the 30 s per-read timeout; before the fix nothing else
    bounded a download (this one would have taken 8 s, a real file weeks)."""
    payload = bytes(400)
    url = serve(trickle(payload, 0.02))
    monkeypatch.setattr(download, "DEADLINE", 0.5)
    dest = tmp_path / "cache" / "f.gz"
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"f.gz: not finished after 0 s"):
        data.download(url + "f.gz", dest, hashlib.sha256(payload).hexdigest(), stream=io.StringIO())
    assert time.monotonic() - start < 3
    assert list(dest.parent.iterdir()) == []


def test_a_download_is_capped_at_its_announced_size_or_at_max_bytes(serve, tmp_path, monkeypatch):
    """A server that announces no size and never stops; one that announces too much. Before the
    fix the first was read to the end (a full disk, from a hostile mirror)."""
    def endless(request):
        request.send_response(200)
        request.end_headers()
        for _ in range(400):  # 25 MB, unless the client hangs up first
            request.wfile.write(bytes(1 << 16))

    def huge(request):
        request.send_response(200)
        request.send_header("Content-Length", str(10**10))
        request.end_headers()

    monkeypatch.setattr(download, "MAX_BYTES", 1 << 20)
    dest = tmp_path / "cache" / "f.gz"
    with pytest.raises(data.DataError, match=r"f.gz: sent more than 1.0 MB; the download was "
                                             r"discarded"):
        data.download(serve(endless) + "f.gz", dest, "0" * 64, stream=io.StringIO())
    with pytest.raises(data.DataError, match=r"f.gz: announces 10000.0 MB, more than any"):
        data.download(serve(huge) + "f.gz", dest, "0" * 64, stream=io.StringIO())
    assert list(dest.parent.iterdir()) == []


def test_a_connection_cut_short_is_said_so_and_the_next_mirror_serves(serve, server,
                                                                      monkeypatch):
    """Before the fix, a body cut short of its Content-Length was reported as a SHA-256
    mismatch, and a chunked one cut short raised http.client's IncompleteRead, which escaped
    load() as a bare error before the other mirrors were tried."""
    served, good = server
    write_set(served, tag=6)
    sums = {base: hashlib.sha256((served / (base + ".gz")).read_bytes()).hexdigest()
            for base in data.FILES}

    def short(request):
        request.send_response(200)
        request.send_header("Content-Length", "100000")
        request.end_headers()
        request.wfile.write(bytes(10))  # then close

    def chunked(request):
        request.protocol_version = "HTTP/1.1"
        request.send_response(200)
        request.send_header("Transfer-Encoding", "chunked")
        request.end_headers()
        request.wfile.write(b"3e8\r\n" + bytes(10))  # a chunk of 1000 bytes promised, 10 sent
        request.close_connection = True

    with pytest.raises(OSError, match=r"f.gz: the connection closed after 10 of 100000 bytes"):
        data.download(serve(short) + "f.gz", data.cache_dir("x") / "f.gz", "0" * 64,
                      stream=io.StringIO())
    monkeypatch.setattr(download, "SHA256", {"mnist": sums})
    for cut in (short, chunked):
        for f in data.cache_dir("mnist").glob("*"):
            f.unlink()
        monkeypatch.setattr(download, "MIRRORS", {"mnist": (serve(cut), good)})
        assert first_label() == 6


KILLED_DOWNLOAD = textwrap.dedent("""
    import io, sys
    from pathlib import Path
    from minivae import data
    data.download(sys.argv[1], Path(sys.argv[2]), "0" * 64, stream=sys.stdout)
""")


def test_a_download_killed_midway_leaves_a_part_file_that_the_next_one_sweeps(serve, tmp_path):
    payload = bytes(5000)
    url = serve(trickle(payload, 0.01)) + "f.gz"
    dest = tmp_path / "cache" / "f.gz"
    child = subprocess.Popen([sys.executable, "-c", KILLED_DOWNLOAD, url, str(dest)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().startswith("downloading")
    time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    parts = list(dest.parent.glob("f.gz.*.part"))
    assert len(parts) == 1 and not dest.exists()
    old = time.time() - 3600  # an hour without a byte: no live download's
    os.utime(parts[0], (old, old))
    fast = serve(trickle(b"ok", 0))
    data.download(fast + "f.gz", dest, hashlib.sha256(b"ok").hexdigest(), stream=io.StringIO())
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.gz"]


# ----------------------------------------------------------------------------- helpers


def test_to_float_gives_nchw_float32_in_unit_range():
    x = np.array([[[0, 255], [51, 102]]], np.uint8)  # (1, 2, 2)
    f = data.to_float(x)
    assert f.shape == (1, 1, 2, 2) and f.dtype == np.float32
    np.testing.assert_allclose(f[0, 0], [[0, 1], [0.2, 0.4]], rtol=1e-6)


def test_static_binarisation_is_a_threshold_and_never_changes():
    x = data.to_float(data.load("mnist-5k")[1][0][:100])
    a, b = data.binarize(x), data.binarize(x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, (x > 0.5).astype(np.float32))
    np.testing.assert_array_equal(data.binarize(data.load("mnist-5k")[1][0][:100][:, None]), a)


def test_dynamic_binarisation_draws_afresh_each_epoch_with_the_right_mean():
    x = data.to_float(data.load("mnist-5k")[1][0][:200])
    rng = np.random.default_rng(0)
    a, b = data.binarize(x, rng), data.binarize(x, rng)
    assert a.dtype == np.float32 and set(np.unique(a)) <= {0.0, 1.0}
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a[x == 0], 0)  # p = 0 never fires, p = 1 always does
    np.testing.assert_array_equal(a[x == 1], 1)
    assert abs(a.mean() - x.mean()) < 0.01  # E[Bernoulli(p)] = p
    again = data.binarize(x, np.random.default_rng(0))
    np.testing.assert_array_equal(again, a)  # same seed, same draw


@settings(max_examples=50)
@given(n=st.integers(0, 50), batch_size=st.integers(1, 17), seed=st.integers(0, 2**32 - 1),
       drop_last=st.booleans())
def test_batches_visit_every_index_exactly_once_per_epoch(n, batch_size, seed, drop_last):
    rng = np.random.default_rng(seed)
    x, y = np.arange(n), np.arange(n) * 10
    epoch = list(data.batches((x, y), batch_size, rng, drop_last))
    for xb, yb in epoch:
        np.testing.assert_array_equal(yb, xb * 10)  # index-aligned
        assert len(xb) == batch_size or (not drop_last and len(xb) < batch_size)
    seen = np.concatenate([xb for xb, _ in epoch]) if epoch else np.array([], int)
    if drop_last:
        assert len(seen) == n - n % batch_size and len(np.unique(seen)) == len(seen)
    else:
        assert sorted(seen.tolist()) == list(range(n))


def test_batches_shuffle_anew_each_epoch_only_when_given_a_generator():
    x = np.arange(100)
    rng = np.random.default_rng(0)
    first, second = (np.concatenate(list(data.batches(x, 32, rng))) for _ in range(2))
    assert not np.array_equal(first, second) and not np.array_equal(first, x)
    np.testing.assert_array_equal(np.concatenate(list(data.batches(x, 32))), x)
    assert [len(b) for b in data.batches(x, 32, drop_last=True)] == [32, 32, 32]
    with pytest.raises(ValueError, match="differ in length"):
        next(data.batches((x, x[:5]), 8))


# ----------------------------------------------------------------------------- real files


REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (REAL_FASHION / (data.TRAIN_IMAGES + ".gz")).exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_debian(monkeypatch):
    monkeypatch.setattr(data, "SYSTEM_DIR", REAL_FASHION.parent)
    (x_train, y_train), (x_test, y_test) = data.load("fashion-mnist")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert arrays_sha256(x_train, y_train, x_test, y_test) == FASHION_MNIST_SHA256
