"""Shared set-up of the diffusion tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread for every test here: on the shared 2-core machine two threads ran the
    Monte Carlo samplers 30 times slower than one (FACTS.md). Restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
