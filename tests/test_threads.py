"""minivae's worker threads (kernels/fast/threads.py): the split of the work, the BLAS setting around
it, errors, and the products shared out among the workers."""
import os
import threading
import time

import numpy as np
import pytest

from minivae.kernels.fast import threads

needs_openblas = pytest.mark.skipif(threads._openblas is None, reason="NumPy's BLAS is not an OpenBLAS ctypes can find")


@pytest.fixture
def workers():
    """Set the number of workers for one test, and put it back after."""
    before = threads.get_num_threads()
    yield threads.set_num_threads
    threads.set_num_threads(before)


@needs_openblas
@pytest.mark.parametrize("n", [1, 2, 3])
def test_run_calls_every_worker_once_and_the_caller_is_worker_0(workers, n):
    workers(n)
    seen = {}

    def work(worker, n_workers):
        seen[worker] = (n_workers, threading.get_ident())

    threads.run(work)
    assert sorted(seen) == list(range(n))
    assert {n_workers for n_workers, _ in seen.values()} == {n}
    assert seen[0][1] == threading.get_ident()
    assert all(ident != threading.get_ident() for w, (_, ident) in seen.items() if w > 0)


@pytest.mark.parametrize("n", [1, 2])
def test_a_worker_error_reaches_the_caller(workers, n):
    workers(n)
    finished = []

    def work(worker, n_workers):
        if worker == n_workers - 1:
            raise RuntimeError(f"worker {worker} failed")
        finished.append(worker)

    with pytest.raises(RuntimeError, match=f"worker {threads.get_num_threads() - 1} failed"):
        threads.run(work)
    assert finished == list(range(threads.get_num_threads() - 1))


def test_run_inside_a_worker_runs_there_instead_of_waiting_forever(workers):
    workers(2)
    inner = []

    def work(worker, n_workers):
        threads.run(lambda w, n: inner.append((worker, w, n)))

    threads.run(work)
    assert sorted(inner) == [(w, 0, 1) for w in range(threads.get_num_threads())]


def test_set_num_threads_refuses_zero():
    with pytest.raises(ValueError, match="at least one thread"):
        threads.set_num_threads(0)


@needs_openblas
def test_blas_is_held_to_one_thread_inside_and_restored_after(workers):
    workers(2)
    set_, get = threads._openblas
    before = get()
    inside = []
    threads.run(lambda w, n: inside.append(get()))
    assert inside == [1, 1]
    assert get() == before

    def fail(worker, n_workers):
        raise ValueError("boom")

    with pytest.raises(ValueError):
        threads.run(fail)
    assert get() == before


@needs_openblas
def test_blocks_entered_from_two_threads_restore_the_first_setting():
    """A enters, B enters, A leaves, B leaves: BLAS stays at one thread until B has left too."""
    _, get = threads._openblas
    before = get()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with threads.one_blas_thread():
            a_in.set()
            b_in.wait()
        a_out.set()

    def b():
        a_in.wait()
        with threads.one_blas_thread():
            b_in.set()
            a_out.wait()
            seen["after a left"] = get()

    ts = [threading.Thread(target=a), threading.Thread(target=b)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert seen["after a left"] == 1
    assert get() == before


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", [((300, 200), (200, 150)), ((5, 7), (7, 3)), ((3, 40, 50), (50, 60)),
                                    ((2, 1, 4, 5), (3, 5, 6))])
def test_matmul_is_numpys_product(workers, n, dtype, shapes):
    workers(n)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(shape).astype(dtype) for shape in shapes)
    y = threads.matmul(a, b)
    assert y.dtype == dtype and y.shape == (a @ b).shape
    # another split of the sum rounds differently: allow the standard bound K·ε·(|a| @ |b|)
    bound = a.shape[-1] * np.finfo(dtype).eps * (np.abs(a) @ np.abs(b))
    assert (np.abs(y - a @ b) <= bound).all()


def test_matmul_takes_transposed_views(workers):
    workers(2)
    rng = np.random.default_rng(1)
    a_bar, x = rng.standard_normal((128, 400)), rng.standard_normal((128, 784))
    np.testing.assert_allclose(threads.matmul(a_bar.T, x), a_bar.T @ x, rtol=1e-12)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_workers_of_its_own(workers):
    """After fork the child has none of the parent's threads; its kernels must still run (and not
    wait forever on a pool whose threads stayed behind)."""
    workers(2)
    a, b = np.ones((200, 100)), np.ones((100, 200))
    threads.run(lambda w, n: None)  # the parent's pool has started its threads
    pid = os.fork()
    if pid == 0:  # the child: do some pooled work, report by exit code
        try:
            seen = []
            threads.run(lambda w, n: seen.append(w))
            ok = sorted(seen) == [0, 1] and np.array_equal(threads.matmul(a, b), a @ b)
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    pytest.fail("the forked child's pooled work did not finish in 30 s")


def _train_a_few_steps(name, n_workers, steps=3):
    """Every parameter after `steps` training steps on real digits, with n_workers workers."""
    from minivae import data, optim
    from minivae.models.aae import AAE
    from minivae.models.ae import AE
    from minivae.models.vae import VAE
    from minivae.tensor import Tensor

    threads.set_num_threads(n_workers)
    (x_train, _), _ = data.load("mnist-5k")
    x = data.to_float(x_train[:128 * steps])
    rng = np.random.default_rng(0)
    if name == "aae":
        model = AAE.mlp(rng=rng)
        optimizers = model.optimizers()
        for batch in data.batches(x, 128):
            model.step(batch, optimizers, rng)
    else:
        model = {"conv-vae": VAE.conv, "conv-ae": AE.conv, "mlp-vae": VAE.mlp}[name](rng=rng)
        optimizer = optim.Adam(model.parameters())
        for batch in data.batches(x, 128):
            loss, _ = model.loss(Tensor(batch), rng)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return {name: p.data.copy() for name, p in model.named_parameters()}


@needs_openblas
@pytest.mark.parametrize("model", ["conv-vae", "conv-ae", "aae", "mlp-vae"])
def test_training_is_bit_identical_for_one_and_two_workers(workers, model, open_door):
    """So a run resumed on a machine with another number of cores continues exactly."""
    open_door("fast")  # the door with workers
    one, two = _train_a_few_steps(model, 1), _train_a_few_steps(model, 2)
    differ = [name for name in one if not np.array_equal(one[name], two[name])]
    assert not differ, f"{model}: parameters differ between 1 and 2 workers: {differ}"
