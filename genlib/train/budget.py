"""Training budgets and the quick/full switch.

Every chapter trains twice over: a *quick* budget (CI, a first run on a laptop: minutes on two CPU
cores) and a *full* budget (the published book, a GPU). One environment variable chooses:
``GENLIB_QUICK=1``. :func:`budget` picks the budget for the current mode and prints one line, so
every executed notebook shows which mode produced its figures.

A :class:`Budget` is a limit in optimizer steps, images seen and/or wall-clock seconds; training
stops at whichever comes first. Step and image budgets are reproducible; a seconds budget is not
(how many steps fit in 60 s depends on the machine and its load), so use it for exploration and
quote results with the steps or images they reached.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

__all__ = ["Budget", "budget", "quick_mode", "QUICK_ENV"]

QUICK_ENV = "GENLIB_QUICK"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def quick_mode() -> bool:
    """Whether the environment asks for quick mode: ``GENLIB_QUICK`` in ``1/true/yes/on``.

    Unset, empty or ``0/false/no/off`` mean full mode (case-insensitive).

    Raises:
        ValueError: ``GENLIB_QUICK`` holds anything else (a typo should not silently pick a mode).
    """
    raw = os.environ.get(QUICK_ENV)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"environment variable {QUICK_ENV}={raw!r} is not understood; expected one of "
        f"{list(_TRUE)} for quick mode or {[v for v in _FALSE if v]} (or unset) for full mode"
    )


@dataclass(frozen=True)
class Budget:
    """How long to train: whichever limit is reached first.

    Attributes:
        steps: optimizer steps (calls of the step function).
        images: training images seen (the sum of the ``"images"`` metric of each step).
        seconds: wall-clock seconds of training (summed over resumed sessions). Not
            reproducible: the number of steps it allows depends on the machine.
    """

    steps: int | None = None
    images: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.steps is None and self.images is None and self.seconds is None:
            raise ValueError("Budget needs at least one limit: steps, images or seconds")
        for name in ("steps", "images"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Budget {name} must be an int or None, got {value!r}")
            if value <= 0:
                raise ValueError(f"Budget {name} must be positive, got {value}")
        if self.seconds is not None:
            if isinstance(self.seconds, bool) or not isinstance(self.seconds, int | float):
                raise TypeError(f"Budget seconds must be a number or None, got {self.seconds!r}")
            if not (math.isfinite(self.seconds) and self.seconds > 0):
                raise ValueError(f"Budget seconds must be positive and finite, got {self.seconds}")

    def exhausted(self, step: int, images_seen: int = 0, elapsed: float = 0.0) -> bool:
        """True once any limit is reached.

        Args:
            step: steps completed so far.
            images_seen: images seen so far.
            elapsed: seconds of training so far.
        """
        return (
            (self.steps is not None and step >= self.steps)
            or (self.images is not None and images_seen >= self.images)
            or (self.seconds is not None and elapsed >= self.seconds)
        )

    @property
    def reproducible(self) -> bool:
        """False when a seconds limit can stop training at a machine-dependent step."""
        return self.seconds is None

    def describe(self) -> str:
        """Human-readable limits, e.g. ``"300 steps"`` or ``"2,000 steps or 60 s"``."""
        parts = []
        if self.steps is not None:
            parts.append(f"{self.steps:,} steps")
        if self.images is not None:
            parts.append(f"{self.images:,} images")
        if self.seconds is not None:
            parts.append(f"{self.seconds:g} s")
        text = " or ".join(parts)
        return text + (", whichever comes first" if len(parts) > 1 else "")


def budget(
    quick: Budget,
    full: Budget,
    *,
    mode: Literal["quick", "full"] | None = None,
    verbose: bool = True,
) -> Budget:
    """Pick the quick or the full budget and say which.

    Args:
        quick: the budget for quick mode (CI, first runs on a laptop).
        full: the budget for full mode (the published numbers).
        mode: force a mode (``"quick"`` or ``"full"``, e.g. from a ``--quick`` flag); ``None``
            reads ``GENLIB_QUICK`` through :func:`quick_mode`.
        verbose: print one line such as ``genlib: quick mode (GENLIB_QUICK=1): 300 steps``.
    """
    for name, b in (("quick", quick), ("full", full)):
        if not isinstance(b, Budget):
            raise TypeError(f"{name} must be a Budget, got {type(b).__name__}")
    if mode is None:
        is_quick = quick_mode()
        raw = os.environ.get(QUICK_ENV)
        why = f"{QUICK_ENV}={raw}" if raw is not None else f"{QUICK_ENV} unset"
    elif mode in ("quick", "full"):
        is_quick = mode == "quick"
        why = f"mode={mode!r}"
    else:
        raise ValueError(f"mode must be 'quick', 'full' or None, got {mode!r}")
    chosen = quick if is_quick else full
    if verbose:
        print(f"genlib: {'quick' if is_quick else 'full'} mode ({why}): {chosen.describe()}")
    return chosen
