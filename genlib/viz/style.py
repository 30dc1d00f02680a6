"""The book's figure style: legible fonts, crisp images, no chart junk.

Nothing here runs at import time. :func:`use_book_style` changes matplotlib's global
``rcParams`` only when a notebook calls it (the first code cell of a chapter does);
:func:`book_style` applies the same settings inside a ``with`` block and restores them after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import MappingProxyType

import matplotlib as mpl

#: The settings :func:`use_book_style` applies (read-only).
BOOK_RC = MappingProxyType(
    {
        "figure.dpi": 110,  # on screen: large enough to read, small enough to fit a page
        "savefig.dpi": 150,  # PNGs written by the book and the CLI
        "font.size": 11,
        "axes.titlesize": 12,
        "axes.labelsize": 11,
        "xtick.labelsize": 10,
        "ytick.labelsize": 10,
        "legend.fontsize": 10,
        "figure.titlesize": 13,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": False,  # grids off: they cut through images
        "image.interpolation": "nearest",  # one data pixel = one crisp square
        "image.origin": "upper",
        "lines.linewidth": 1.6,
    }
)


def use_book_style() -> None:
    """Apply :data:`BOOK_RC` to matplotlib's global settings (call once per notebook)."""
    mpl.rcParams.update(BOOK_RC)


@contextmanager
def book_style() -> Iterator[None]:
    """Use the book's style inside a ``with`` block only; previous settings return after it."""
    with mpl.rc_context(dict(BOOK_RC)):
        yield
