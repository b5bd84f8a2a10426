"""Keep freed memory for the next step: glibc's malloc told not to hand large buffers back.

By default glibc serves an allocation above its mmap threshold (128 KiB, rising with use) by a
fresh mapping, and gives the top of its heap back to the system once 128 KiB of it are free. A
training step allocates and frees the same ~10 MB activations every step, so each step's arrays
land on new pages, and the kernel zeroes and maps every one of them on first touch: thousands of
page faults a step (benchmarks/bench_pixelvae_step.py counts them). Raising both thresholds keeps
the freed buffers in the process, where the next step's arrays reuse them.

    M_MMAP_THRESHOLD  32 MiB, glibc's largest: arrays below it come from the heap
    M_TRIM_THRESHOLD  1 GiB: the heap's free top is kept unless that much of it is free

The cost is memory the process keeps: its peak heap, which the next step needs anyway. Only
where the C library is glibc (Linux); elsewhere nothing changes. Results are not touched: only
where the bytes live.
"""
import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from glibc's malloc.h
MMAP_THRESHOLD = 32 * 2**20  # glibc's maximum for it on 64-bit systems
TRIM_THRESHOLD = 2**30


def keep_freed_memory() -> bool:
    """Set the two thresholds; True if the C library took them (glibc), False otherwise."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc: no mallopt to call
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
