"""The fast door keeps freed buffers for the next step (kernels/fast/memory.py): a 10 MB
activation comes from malloc's heap, not from a mapping of its own, and once freed it stays in the
heap for the next step's arrays instead of going back to the system (which would hand out fresh
pages, each a page fault, next time). Read from glibc's own accounting (mallinfo2), not timed."""
import ctypes
import ctypes.util
import platform

import numpy as np
import pytest

from minivae.kernels.fast.memory import keep_freed_memory

FIELDS = ["arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
          "fordblks", "keepcost"]


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS]


def mallinfo() -> MallInfo2:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc before 2.33 has no mallinfo2")
    libc.mallinfo2.restype = MallInfo2
    return libc.mallinfo2()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")
def test_a_freed_activation_stays_in_the_heap_for_the_next_step():
    assert keep_freed_memory()  # what the fast door does when it opens
    size = 10 * 2**20  # a PixelVAE activation at batch 100 is about this
    mapped = mallinfo().hblkhd
    x = np.ones(size // 8)  # float64
    assert mallinfo().hblkhd - mapped < size, "the array got a mapping of its own"
    del x
    assert mallinfo().fordblks >= size, "the freed array went back to the system"
