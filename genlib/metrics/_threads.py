"""Run a block of torch work on a given number of CPU threads, then restore the setting
(private).

Measured on the kit's 2-core machines while other processes ran: with torch's default two
OpenMP threads, a 128 x 128 ``eigvalsh`` took 640 ms instead of 0.7 ms, and KID over 10,000
samples 12 s instead of 2 s, because each thread waits for the other at every barrier while
the other is descheduled. Small linear algebra never gains from a second thread, and on a busy
2-core machine nothing does, so the metrics run their loops on one thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """``torch.set_num_threads(n)`` for the block, the caller's count restored afterwards;
    ``n=None`` leaves the setting alone."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
