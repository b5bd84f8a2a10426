"""Shared test configuration: one deterministic Hypothesis profile for every test file, the door
the tests run through, and `open_door`.

'ci' (the default) derandomizes, so CI and every developer run the same examples; print_blob shows
how to reproduce a failure. Set HYPOTHESIS_PROFILE=dev to explore new random examples locally;
'verdict' is 'ci' without shrinking, for the exercises' verdicts.
Each test sizes its own `max_examples`; the profiles only say how examples are drawn.

The ops and models run through the fast door unless MINIVAE_BACKEND=numpy or `--backend numpy`
says otherwise: `python -m pytest --backend numpy tests/test_ops.py tests/test_vae.py`.
"""
import os

import pytest
from hypothesis import Phase, settings

from minivae import kernels

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", derandomize=False, deadline=None, print_blob=True)
# The exercises' verdicts (minivae.exercises check, tools/prove_exercises.py) ask only whether a
# test fails: no shrinking.
settings.register_profile("verdict", derandomize=True, deadline=None, print_blob=True,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    parser.addoption("--backend", choices=kernels.BACKENDS, default=None,
                     help="the kernels' door the ops and models run through (default: "
                          "MINIVAE_BACKEND, else fast)")


def pytest_configure(config):
    if config.getoption("--backend"):
        kernels.set_backend(config.getoption("--backend"))


@pytest.fixture
def open_door():
    """open_door(name) opens that door for the rest of the test; the one open before is back after."""
    before = kernels.get_backend()
    yield kernels.set_backend
    kernels.set_backend(before)
