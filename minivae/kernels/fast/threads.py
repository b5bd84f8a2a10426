"""minivae's worker threads, and NumPy's BLAS held to one thread while they run.

Why minivae runs threads of its own. OpenBLAS, the BLAS inside NumPy's wheels, splits each matrix
product over its own threads, and after every product those threads keep spinning for a while in
case another product follows. Any other work on the cores meanwhile - a Numba loop copying an
image into columns - runs beside a spinning thread, at half speed on a 2-core machine. So the
convolution kernels share the work differently: each worker takes whole chunks of the batch and
does everything for them - the Numba copies and NumPy's matrix product, which then runs on that
worker's thread alone. While the workers run, OpenBLAS is set to one thread
(`openblas_set_num_threads`, called through ctypes on the library NumPy loaded) and is set back
afterwards, so nothing spins.

Where NumPy's BLAS is not an OpenBLAS that ctypes can find (MKL, Apple's Accelerate), minivae does
not touch it: `run` then uses one worker, and the BLAS parallelises the products as it sees fit.

    run(work)          work(w, n_workers) for w = 0 .. n_workers - 1 at once; the caller is worker 0
    matmul(a, b)       a @ b with blocks of rows of the product shared out among the workers
    set_num_threads(n) the number of workers, by default the cores this process may use

Every matrix product in a training step goes through one of these, for a single product on
OpenBLAS's threads is enough to set them spinning beside the workers. The measurements behind all
this are in benchmarks/README.md.
"""
import ctypes
import glob
import numbers
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from minivae.kernels.fast import fpenv


def _find_openblas():
    """(set_num_threads, get_num_threads) of the OpenBLAS NumPy loaded, as ctypes functions, or
    None. NumPy's wheels carry it beside the package (numpy.libs, numpy/.dylibs) under a prefixed
    name such as scipy_openblas_set_num_threads64_; a distribution's NumPy links the system's
    libopenblas, which Linux lists in /proc/self/maps."""
    numpy_dir = os.path.dirname(np.__file__)
    paths = glob.glob(os.path.join(numpy_dir, "..", "numpy.libs", "*openblas*"))
    paths += glob.glob(os.path.join(numpy_dir, ".dylibs", "*openblas*"))
    if os.path.exists("/proc/self/maps"):
        with open("/proc/self/maps") as maps:
            paths += sorted({line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1]})
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in [("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", "")]:
            set_, get = (getattr(lib, f"{prefix}openblas_{verb}_num_threads{suffix}", None) for verb in ("set", "get"))
            if set_ is not None and get is not None:
                set_.argtypes, set_.restype, get.restype = [ctypes.c_int], None, ctypes.c_int
                return set_, get
    return None


_openblas = _find_openblas()
_workers = 1
_pool = None
_blas = {"lock": threading.Lock(), "users": 0, "before": 1}  # one_blas_thread's shared state
_local = threading.local()  # .busy is True inside a worker's work


def set_num_threads(n: int) -> None:
    """Use n worker threads for minivae's kernels; 1 runs everything in the calling thread, NumPy's
    matrix products included, which is also the way to step through a kernel in pdb. Results are
    the same to the last bit for every n."""
    global _workers, _pool
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"set_num_threads: need a positive integer, at least one thread, got "
                         f"{n!r}")
    _workers = int(n) if _openblas is not None else 1
    if _pool is not None:
        _pool.shutdown()
    _pool = None  # the next run starts n - 1 threads


def _started_pool() -> ThreadPoolExecutor:
    """The threads behind workers 1 .. n - 1 (worker 0 is the caller), started on first use."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_workers - 1, thread_name_prefix="minivae")
    return _pool


def _after_fork_in_child():
    """A forked process inherits the pool's bookkeeping but none of its threads (and perhaps a lock
    some thread held): start afresh, or the child's first convolution would wait forever."""
    global _pool
    _blas.update(lock=threading.Lock(), users=0)
    _pool = None


def get_num_threads() -> int:
    return _workers


@contextmanager
def one_blas_thread():
    """NumPy's matrix products run on the calling thread alone inside this block. Blocks entered
    from several threads at once share one setting, which the last to leave restores."""
    if _openblas is None:
        yield
        return
    set_, get = _openblas
    with _blas["lock"]:
        if _blas["users"] == 0:
            _blas["before"] = get()
            set_(1)
        _blas["users"] += 1
    try:
        yield
    finally:
        with _blas["lock"]:
            _blas["users"] -= 1
            if _blas["users"] == 0:
                set_(_blas["before"])


def _as_worker(work, worker, n_workers, fp_mode):
    """work(worker, n_workers) in this thread, in the caller's floating-point mode (fpenv.py)."""
    _local.busy = True
    try:
        fpenv.with_mode(fp_mode, lambda: work(worker, n_workers))
    finally:
        _local.busy = False


def run(work) -> None:
    """work(w, n_workers) for every worker w at once, the calling thread being worker 0; returns
    when all have finished and raises the first error any of them raised. Each worker picks its
    share of the tasks by its number (tasks w, w + n_workers, ...), so the split is the same on
    every run;
    the kernels cut their work into tasks that do not depend on n_workers, so every result is
    the same for any number of workers. Called from inside a worker, it runs work(0, 1) there:
    the pool's threads are busy, and waiting for them would never end. Every worker computes in
    the caller's floating-point mode: subnormals flushed to zero or not, as the caller has it."""
    n = _workers
    if getattr(_local, "busy", False):
        return work(0, 1)
    if n == 1:
        with one_blas_thread():
            return work(0, 1)
    fp_mode = fpenv.get_mode()
    with one_blas_thread():
        pool = _started_pool()
        others = [pool.submit(_as_worker, work, w, n, fp_mode) for w in range(1, n)]
        try:
            _as_worker(work, 0, n, fp_mode)
        finally:
            for future in others:
                future.exception()  # wait for every worker before anyone reads the results
        for future in others:
            future.result()


SPLIT_FLOPS = 2e6  # a smaller product runs in the calling thread: a hand-off to a worker costs ~20 µs
BLOCK_ROWS = 64  # about this many rows per block of a shared product


def row_blocks(M: int) -> list[slice]:
    """The rows of an (M, N) product cut into an even number of blocks of about BLOCK_ROWS rows.
    Never cut by the number of workers: OpenBLAS sums a row differently in a block of another
    height, so a split by workers would make the result depend on them."""
    n_blocks = 2 * -(-M // (2 * BLOCK_ROWS))  # even, so two workers get the same share
    return [slice(M * i // n_blocks, M * (i + 1) // n_blocks) for i in range(n_blocks)]


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b, with NumPy's broadcasting rules. For 2-D a (M, K) and b (K, N), the rows of the
    (M, N) product are cut into row_blocks(M), which the workers share, each on one BLAS thread;
    the same blocks on any number of workers, so the same result to the last bit."""
    if a.ndim != 2 or b.ndim != 2 or 2 * a.shape[0] * a.shape[1] * b.shape[1] < SPLIT_FLOPS:
        with one_blas_thread():
            return a @ b
    blocks = row_blocks(a.shape[0])
    y = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))

    def work(worker, n_workers):
        for rows in blocks[worker::n_workers]:
            np.matmul(a[rows], b, out=y[rows])

    run(work)
    return y


set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
