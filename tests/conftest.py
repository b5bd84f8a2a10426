"""Shared test configuration: one deterministic Hypothesis profile for every test file.

'ci' (the default) derandomizes, so CI and every developer run the same examples; print_blob shows
how to reproduce a failure. Set HYPOTHESIS_PROFILE=dev to explore new random examples locally.
Each test sizes its own `max_examples`; the profiles only say how examples are drawn.
"""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", derandomize=False, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
