"""Shared test settings.

Property tests (hypothesis) draw their examples from a fixed seed, so every run of the suite,
CI's included, checks the same cases and a failure reproduces exactly. To hunt for new edge cases
locally, set ``GENLIB_HYPOTHESIS=explore``.
"""

import os

from hypothesis import settings

settings.register_profile("genlib", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("GENLIB_HYPOTHESIS", "genlib"))
