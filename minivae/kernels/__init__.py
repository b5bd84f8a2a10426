"""Numba kernels: ndarray in, ndarray out. They never see a Tensor.

Every kernel has a short NumPy twin in `reference.py`; tests pin the two together. Set
NUMBA_DISABLE_JIT=1 to step through a kernel in pdb as plain Python.
"""
