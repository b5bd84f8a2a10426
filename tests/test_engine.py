"""The engine in tensor.py: backward(), accumulation, fan-out, no_grad, detach, unbroadcast."""
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minivae import functional as F
from minivae.tensor import Tensor, is_grad_enabled, no_grad, unbroadcast


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ---------------------------------------------------------------- backward()


def test_a_chain_10000_ops_deep_backpropagates():
    assert sys.getrecursionlimit() < 10_000  # so a recursive graph walk would fail here
    x = leaf(0.5)
    y = x
    for _ in range(5_000):  # 10,000 ops: y <- 1.0001·y + 0.001, each step a mul and an add
        y = y * 1.0001 + 0.001
    y.backward()
    np.testing.assert_allclose(x.grad, 1.0001 ** 5_000, rtol=1e-12)  # dy/dx = 1.0001^5000
    np.testing.assert_allclose(y.data, 0.5 * 1.0001**5000 + 0.001 * (1.0001**5000 - 1) / 1e-4)
    del y  # freeing a deep graph must not overflow the C stack either


def test_gradients_accumulate_across_two_backward_calls():
    x = leaf([1.0, -2.0, 3.0])
    y = (x * x).sum()
    y.backward()
    y.backward()  # the same graph again: it is not freed after the first call
    np.testing.assert_array_equal(x.grad, 2 * (2 * x.data))
    (3 * x).sum().backward()  # a different graph adds to the same .grad
    np.testing.assert_array_equal(x.grad, 4 * x.data + 3)


def test_fan_out_sums_the_gradients():
    x = leaf([1.5, -2.0])
    (x * x).sum().backward()  # x used twice by one op
    np.testing.assert_array_equal(x.grad, 2 * x.data)
    x.grad = None
    a, b = x * 2, x * 3  # a diamond: x -> a, b -> a·b
    (a * b).sum().backward()
    np.testing.assert_array_equal(x.grad, 12 * x.data)
    x.grad = None
    (x + x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3, 3])


def test_upstream_gradient_is_used_and_constants_get_none():
    x, c = leaf([1.0, 2.0]), Tensor([3.0, 4.0])
    (x * c).backward(np.array([10.0, -1.0]))
    np.testing.assert_array_equal(x.grad, [30, -4])
    assert c.grad is None and not c.requires_grad


def test_backward_on_a_leaf_sets_its_gradient():
    x = leaf([1.0, 2.0])
    x.backward(np.array([5.0, 6.0]))
    np.testing.assert_array_equal(x.grad, [5, 6])


def test_backward_on_a_non_scalar_without_a_gradient_raises_naming_the_shape():
    y = leaf(np.ones((2, 3))) * 2
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        y.backward(np.ones((3, 2)))
    leaf(np.ones((1, 1))).sum(axis=0).backward()  # one element of any shape is a scalar


def test_no_grad_records_no_graph():
    x = leaf([1.0, 2.0])
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2 + 1
    assert is_grad_enabled()
    assert not y.requires_grad and y._fn is None and y._ctx is None
    np.testing.assert_array_equal(y.data, [3, 5])
    with pytest.raises(KeyError), no_grad():  # the flag is restored after an exception too
        raise KeyError
    assert is_grad_enabled()
    with no_grad():
        with no_grad():
            pass
        assert not is_grad_enabled()  # nested blocks restore the outer state


def test_detach_cuts_the_graph():
    x = leaf([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d._ctx is None
    np.testing.assert_array_equal(d.data, x.data)
    (x * (d * 3)).sum().backward()  # d·3 is a constant: only the first factor carries x
    np.testing.assert_array_equal(x.grad, 3 * x.data)


def test_only_tensors_that_need_it_record_a_graph():
    a = Tensor([1.0, 2.0])
    assert not (a * 2).requires_grad and (a * 2)._ctx is None
    assert (a * leaf([1.0, 1.0])).requires_grad


# ---------------------------------------------------------------- Tensor basics


def test_comparisons_return_plain_boolean_arrays():
    x = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
    for result, expected in [(x < 0, [1, 0, 0]), (x <= 0, [1, 1, 0]), (x > 0, [0, 0, 1]),
                             (x >= 0, [0, 1, 1]), (x == Tensor([-1.0, 5, 2]), [1, 0, 1]),
                             (x != np.array([-1.0, 5, 2]), [0, 1, 0])]:
        assert type(result) is np.ndarray and result.dtype == bool
        np.testing.assert_array_equal(result, np.array(expected, dtype=bool))
    assert len({x, x}) == 1  # still hashable, by identity


def test_tensor_wraps_numbers_and_arrays_as_floats():
    assert Tensor(3).dtype == np.float64 and Tensor([1, 2]).dtype == np.float64
    assert Tensor(np.ones(2, dtype=np.float32)).dtype == np.float32
    x = leaf([1.0, 2.0], np.float32)
    assert Tensor(x).data is x.data
    assert not Tensor(x).requires_grad
    assert (x.shape, x.ndim, x.size, len(x)) == ((2,), 1, 2, 2)
    assert x.numpy() is x.data and Tensor(2.5).item() == 2.5
    assert "requires_grad=True" in repr(x) and "float32" in repr(x)


def test_slicing_backward_puts_the_gradient_in_place():
    x = leaf(np.zeros((3, 4)))
    x[1:, ::2].backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(x.grad, [[0, 0, 0, 0], [1, 0, 2, 0], [3, 0, 4, 0]])
    x.grad = None
    x[-1, 2].backward(np.array(7.0))
    assert x.grad[2, 2] == 7 and x.grad.sum() == 7


def test_indexing_with_repeats_adds_the_gradients():
    x = leaf([10.0, 20.0, 30.0])
    x[[0, 0, 2, 0]].backward(np.array([1.0, 2.0, 3.0, 4.0]))  # np.add.at, not assignment
    np.testing.assert_array_equal(x.grad, [7, 0, 3])
    x.grad = None
    x[np.array([True, False, True])].sum().backward()
    np.testing.assert_array_equal(x.grad, [1, 0, 1])


# ---------------------------------------------------------------- unbroadcast


def test_unbroadcast_examples():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (2, 3, 4)), g)
    np.testing.assert_array_equal(unbroadcast(g, (3, 4)), g.sum(0))
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), g.sum(0).sum(1, keepdims=True))
    np.testing.assert_array_equal(unbroadcast(g, (1, 3, 1)), g.sum((0, 2), keepdims=True))
    np.testing.assert_array_equal(unbroadcast(g, ()), g.sum())
    np.testing.assert_array_equal(unbroadcast(g, (1,)), [g.sum()])


@settings(max_examples=50, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3),
       seed=st.integers(0, 2**32 - 1))
def test_unbroadcast_is_the_adjoint_of_broadcasting(shapes, seed):
    """⟨unbroadcast(g), v⟩ = ⟨g, broadcast(v)⟩ for every g and v: the definition of its job."""
    shape, big = shapes.input_shapes[0], shapes.result_shape
    rng = np.random.default_rng(seed)
    g, v = rng.standard_normal(big), rng.standard_normal(shape)
    folded = unbroadcast(g, shape)
    assert folded.shape == shape
    np.testing.assert_allclose(np.sum(folded * v), np.sum(g * np.broadcast_to(v, big)),
                               rtol=1e-10, atol=1e-10)


def test_a_broadcast_op_returns_gradients_of_the_input_shapes():
    a, b = leaf(np.ones((3, 1))), leaf(np.ones(4))
    F.add(a, b).backward(np.ones((3, 4)))
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_array_equal(a.grad, 4)
    np.testing.assert_array_equal(b.grad, 3)


def test_backward_follows_the_graph_as_recorded_even_if_requires_grad_changes():
    """Freezing a leaf after the forward pass (as the AAE's generator phase does) must not break
    the walk: the edges recorded at forward time are the ones followed."""
    w = Tensor(np.array([2.0, 3.0]), requires_grad=True)
    x = Tensor(np.array([1.0, -1.0]), requires_grad=True)
    loss = (w * x).sum()
    w.requires_grad = False
    loss.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 3.0])


def test_leaf_gradients_own_their_memory():
    """Leaves keep an op's fresh gradient without a copy, but never one they would share: here
    a.grad and b.grad are both y_bar itself as Add passes it on, c's comes through a read-only
    broadcast (Sum), and x's is the caller's own array."""
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    c = Tensor(np.ones((2, 3)), requires_grad=True)
    (a + b).backward(np.array([1.0, 2.0, 3.0]))
    c.sum().backward()
    g = np.array([5.0, 6.0, 7.0])
    x = Tensor(np.zeros(3), requires_grad=True)
    x.backward(g)
    grads = [a.grad, b.grad, c.grad, x.grad]
    assert all(grad.flags.writeable and grad.flags.c_contiguous for grad in grads)
    assert not np.shares_memory(a.grad, b.grad) and not np.shares_memory(x.grad, g)
    a.grad *= 0  # the user may scale a gradient in place without touching another
    np.testing.assert_array_equal(b.grad, [1, 2, 3])
    np.testing.assert_array_equal(c.grad, np.ones((2, 3)))
