"""Subnormal floats are flushed to zero wherever the fast door computes (kernels/fast/fpenv.py), on
its worker threads too, and the user's own code gets its floating-point state back. Nothing here
is timed: the tests read the state itself, and look for subnormals where training used to make
them. The ops and models run through the fast door here, whichever door the suite runs."""
import numpy as np
import pytest

import minivae
from minivae import functional as F
from minivae import kernels, nn, optim
from minivae.kernels import fast
from minivae.kernels.fast import fpenv, threads
from minivae.tensor import Tensor

pytestmark = pytest.mark.skipif(not fpenv.ACTIVE, reason="no MXCSR to set (not x86, or no JIT)")
TINY = np.finfo(np.float32).tiny  # the smallest normal float32


@pytest.fixture(autouse=True)
def fast_door(open_door):
    open_door("fast")


def subnormals(a: np.ndarray) -> int:
    return int(np.count_nonzero((a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)))


def test_every_function_of_the_fast_door_flushes_inside():
    """Each is fpenv.flush_subnormals around the kernel: it runs in FLUSH, the caller's mode back after."""
    for name in kernels.INTERFACE:
        fn = getattr(fast, name)
        assert getattr(fn, "__wrapped__", None) is not None, f"fast.{name} does not flush"
    seen = []
    inner = fpenv.flush_subnormals(lambda: seen.append(fpenv.get_mode()))
    assert fpenv.get_mode() == 0  # what Python starts with
    inner()
    assert seen == [fpenv.FLUSH] and fpenv.get_mode() == 0
    # and the user's own NumPy still has its subnormals
    assert np.float32(1e-39) * np.float32(1) == np.float32(1e-39)


def test_a_subnormal_input_reads_as_zero_in_a_kernel():
    x = Tensor(np.array([[1e-39, 1.0]], np.float32))
    w = np.eye(2, dtype=np.float32)
    np.testing.assert_array_equal(F.linear(x, w).data, [[0, 1]])


def test_the_users_state_is_back_after_a_kernel_raises():
    with pytest.raises(ValueError):
        kernels.matmul(np.ones((2, 3)), np.ones((2, 3)))
    assert fpenv.get_mode() == 0


@pytest.fixture
def two_workers():
    before = threads.get_num_threads()
    threads.set_num_threads(2)
    yield
    threads.set_num_threads(before)


@pytest.mark.skipif(threads._openblas is None, reason="one worker only without OpenBLAS")
@pytest.mark.parametrize("caller_mode", [0, fpenv.FLUSH])
def test_every_worker_computes_in_the_callers_mode(two_workers, caller_mode):
    seen = {}

    def work(worker, n_workers):
        seen[worker] = fpenv.get_mode()

    fpenv.with_mode(caller_mode, lambda: threads.run(work))
    assert seen == {0: caller_mode, 1: caller_mode}
    seen.clear()
    threads.run(work)  # and a worker keeps no mode from one task to the next
    assert seen == {0: 0, 1: 0}


def test_adams_moments_never_turn_subnormal():
    """A weight whose gradient is 0 after the first step: m <- 0.9 m falls below 1e-38 after about
    800 steps and, unflushed, sticks there a few units of the last place above 0."""
    p = nn.Parameter(np.ones(4, np.float32))
    adam = optim.Adam([p], lr=1e-3)
    p.grad = np.ones(4, np.float32)
    adam.step()
    for _ in range(1000):
        p.grad = np.zeros(4, np.float32)
        adam.step()
    m = adam.buffers["m"][0]
    assert subnormals(m) == 0 and (m == 0).all(), m


def test_no_subnormal_in_the_gradient_of_far_negative_logits():
    """σ(−100) = 3.7e-44 is subnormal in float32: the BCE gradient of a background pixel."""
    logits = Tensor(np.full((4, 8), -100.0, np.float32), requires_grad=True)
    target = np.zeros((4, 8), np.float32)
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
    loss.backward()
    assert subnormals(loss.data) == 0 and subnormals(logits.grad) == 0


def test_a_training_run_leaves_no_subnormal_in_parameters_gradients_or_moments():
    """A small MLP on data with an always-zero input column, 900 steps: the column's weights get
    zero gradients, so unflushed their Adam moments end subnormal."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(6, 16, rng=rng), nn.ReLU(), nn.Linear(16, 6, rng=rng))
    adam = optim.Adam(model.parameters(), lr=1e-2)
    x = (rng.uniform(size=(32, 6)) > 0.5).astype(np.float32)
    x[:, 0] = 0
    for _ in range(900):
        loss = F.binary_cross_entropy_with_logits(model(minivae.Tensor(x)), x, reduction="sum")
        adam.zero_grad()
        loss.backward()
        adam.step()
    arrays = [p.data for p in model.parameters()] + [p.grad for p in model.parameters()]
    arrays += adam.buffers["m"] + adam.buffers["v"]
    assert sum(subnormals(a) for a in arrays) == 0
