"""The floating-point state the fast door computes in: subnormal floats flushed to zero.

A float32 below 1.2e-38 (float64: 2.2e-308) is subnormal, and x86 cores compute with one on a
slow path, many times slower. Training makes them. Adam's moving average m <- β1·m of a weight
whose gradient stays 0 - one reading a pixel that is black in every image - falls below 1e-38
after about 800 steps, and there, rounded to nearest, it never reaches 0: a few units of the last
place times 0.9 round back to themselves, and every later step takes the slow path on it.
Far-negative logits do the same in σ(l) = e^l / (1 + e^l) and in its gradient.

So the fast door computes with two bits of the SSE control register (MXCSR) set, as TensorFlow
does in its CPU thread pools and torch.set_flush_denormal(True) does for a whole thread: FTZ (a
result too small to be normal becomes 0) and DAZ (a subnormal input is read as 0). They are set
inside each of the door's calls (kernels/fast/__init__.py wraps every one in flush_subnormals) and
put back as they were afterwards, so the code between them - the user's, and the ops' own NumPy
lines - sees its own state; threads.run gives each worker the caller's bits for the time of the
work, so a worker computes exactly as the caller would (and results do not depend on the number
of workers).

    @flush_subnormals      decorator: run the function with FTZ and DAZ on in the calling thread
    get_mode()             the calling thread's two bits (FLUSH when both are on, 0 when off)
    with_mode(mode, fn)    fn() with the calling thread's bits set to `mode`, then put back

Elsewhere than x86 (ARM, and NUMBA_DISABLE_JIT=1, where no intrinsic can run) these do nothing.
Reference: Intel 64 and IA-32 Architectures Software Developer's Manual, vol. 1, 10.2.3 (MXCSR).
"""
import functools
import platform

import numpy as np
from numba import config, njit, types

FTZ, DAZ = 1 << 15, 1 << 6  # MXCSR bits: flush results to zero, read inputs as zero
FLUSH = FTZ | DAZ

X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
ACTIVE = X86 and not config.DISABLE_JIT  # whether minivae sets the bits at all

if ACTIVE:
    from llvmlite import ir
    from numba.core import cgutils
    from numba.extending import intrinsic

    def _mxcsr_call(builder, name, slot):
        """call void @llvm.x86.sse.<name>(ptr slot): stmxcsr stores MXCSR there, ldmxcsr loads
        it."""
        i8_ptr = ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8_ptr]),
                                            f"llvm.x86.sse.{name}")
        builder.call(fn, [builder.bitcast(slot, i8_ptr)])

    @intrinsic
    def _stmxcsr(typingctx):
        def codegen(context, builder, signature, args):
            slot = cgutils.alloca_once(builder, ir.IntType(32))
            _mxcsr_call(builder, "stmxcsr", slot)
            return builder.load(slot)
        return types.uint32(), codegen

    @intrinsic
    def _ldmxcsr(typingctx, value):
        def codegen(context, builder, signature, args):
            _mxcsr_call(builder, "ldmxcsr", cgutils.alloca_once_value(builder, args[0]))
            return context.get_dummy_value()
        return types.void(types.uint32), codegen

    @njit(cache=True)  # keeps the GIL: releasing it for so short a call means waiting to take it back
    def _exchange(mode):
        """Set the FTZ and DAZ bits to those of `mode`; return what they were. One call, so that
        entering and leaving cost one kernel call each."""
        mxcsr = _stmxcsr()
        _ldmxcsr(np.uint32((mxcsr & ~np.uint32(FLUSH)) | (np.uint32(mode) & np.uint32(FLUSH))))
        return np.int64(mxcsr & np.uint32(FLUSH))

    @njit(cache=True)
    def _read():
        return np.int64(_stmxcsr() & np.uint32(FLUSH))
else:
    def _exchange(mode):
        """No MXCSR to set: answer as if it were set already, so callers change nothing."""
        return FLUSH

    def _read():
        return 0


def get_mode() -> int:
    """FTZ | DAZ as they are in the calling thread: FLUSH when both are on."""
    return int(_read())


def with_mode(mode: int, fn):
    """fn() run with the calling thread's FTZ and DAZ bits set as in `mode`, restored after."""
    before = _exchange(mode)
    try:
        return fn()
    finally:
        _exchange(before)


def flush_subnormals(fn):
    """Decorator: fn runs with subnormals flushed to zero in the calling thread, and the thread's
    own setting is back when it returns or raises. Inside an already flushing call it costs one
    kernel call and changes nothing."""
    @functools.wraps(fn)
    def flushing(*args, **kwargs):
        before = _exchange(FLUSH)
        if before == FLUSH:  # nested inside another minivae call: nothing to put back
            return fn(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        finally:
            _exchange(before)
    return flushing
