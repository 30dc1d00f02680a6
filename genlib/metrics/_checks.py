"""Argument checks shared by the modules of :mod:`genlib.metrics` (private).

Each helper raises a ``ValueError`` (``TypeError`` for a wrong type) whose message names the
argument, the value received and what was expected.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

# One integer check for the library: genlib.prob and genlib.metrics share it.
from genlib.prob._checks import positive_int as check_int


def as_features(x: Any, name: str, *, min_rows: int = 2) -> torch.Tensor:
    """``x`` as a float64 tensor ``(N, D)`` with finite entries and ``N >= min_rows``.

    Accepts a ``torch.Tensor`` or a ``numpy.ndarray`` of real numbers; stays on its device.
    """
    if isinstance(x, np.ndarray):
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise TypeError(f"{name} must hold real numbers (N, D), got a numpy array of dtype "
                            f"{x.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor or numpy array of features (N, D), got "
                        f"{type(x).__name__}")
    if x.ndim != 2:
        hint = "; one feature vector per row: x.reshape(len(x), -1)" if x.ndim > 2 else ""
        raise ValueError(f"{name} must have shape (N, D), got {tuple(x.shape)}{hint}")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} must hold at least {min_rows} rows (samples), got "
                         f"N={x.shape[0]}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have at least one feature column, got shape "
                         f"{tuple(x.shape)}")
    x = x.detach().to(torch.float64)
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise ValueError(f"{name} holds NaN or infinite values in {bad} of its {x.shape[0]} rows")
    return x


def same_dim(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> None:
    """Two feature sets must have the same width ``D``."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same feature dimension D, got "
                         f"{names[0]} {tuple(a.shape)} and {names[1]} {tuple(b.shape)}")


def check_n_boot(value: object, name: str = "n_boot") -> int:
    """0 (no interval) or at least 20 resamples (fewer give meaningless 2.5% quantiles)."""
    n = check_int(value, name, minimum=0)
    if 0 < n < 20:
        raise ValueError(f"{name} must be 0 (no interval) or at least 20 (percentile intervals "
                         f"from fewer resamples are noise), got {n}")
    return n


def check_level(level: object) -> float:
    """A coverage level in (0, 1)."""
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), e.g. 0.95, got {level!r}")
    return float(level)


def make_generator(generator: torch.Generator | None) -> torch.Generator:
    """The CPU generator a metric draws its resamples from: ``generator`` itself (its state
    advances), or a fresh one seeded with 0 so that a call without one is reproducible."""
    if generator is None:
        return torch.Generator().manual_seed(0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got "
                        f"{type(generator).__name__}")
    if generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU generator (resample indices are drawn on the "
                         f"CPU), got one on {generator.device}")
    return generator


def bootstrap_interval(reps: torch.Tensor, value: float, level: float, *,
                       lower: float | None = None, upper: float | None = None
                       ) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates ``reps (R,)``, recentred on ``value``.

    ``value + (q - mean(reps))`` for the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles
    ``q``, clipped to ``[lower, upper]`` (the metric's range).

    Why recentred: FID, recall and coverage depend on how many *distinct* samples they see, and a
    bootstrap resample holds only about 63% of them; so the replicates sit off ``value`` by a
    resampling bias (FID above, recall below), and the plain percentile interval can miss
    ``value`` altogether. Their *spread* still tracks how the metric varies from one draw of
    samples to the next, so the interval keeps the spread and drops the shift: it says where the
    metric of another draw of the same number of samples would fall.
    """
    r = reps.to(torch.float64).cpu()
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    lo, hi = (torch.quantile(r, q) - r.mean() + value).tolist()
    if lower is not None:
        lo, hi = max(lo, lower), max(hi, lower)
    if upper is not None:
        lo, hi = min(lo, upper), min(hi, upper)
    return (lo, hi)
