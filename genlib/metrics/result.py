"""One metric value with its uncertainty and sample sizes: :class:`MetricResult`.

A sample-quality number is an *estimate* computed from ``n_a`` generated and ``n_b`` reference
samples; drawn again, the samples would give another number. So no metric in this package
returns a bare float: each comes with an interval (a bootstrap percentile interval) or a
standard deviation (over random subsets), and with the sample sizes it was computed from,
because several of these metrics (FID, precision/recall) also *shift* with the sample size.
Chapter 8 ("metrics as estimators") builds on this.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["MetricResult"]


@dataclass(frozen=True)
class MetricResult:
    """A metric's value with its uncertainty.

    Attributes:
        name: e.g. ``"FID"``, ``"KID"``, ``"precision"``.
        value: the estimate computed from all samples.
        n_a: number of evaluated (generated) samples.
        n_b: number of reference samples, or None for one-sample metrics (Inception Score).
        ci: ``(lo, hi)`` interval of coverage ``level``, or None.
        sd: standard deviation of the estimate's replicates (bootstrap resamples or subsets),
            or None.
        level: the coverage of ``ci`` (0.95: 95%).
        method: how ``ci`` / ``sd`` were obtained, in words (printed beside the number).
    """

    name: str
    value: float
    n_a: int
    n_b: int | None = None
    ci: tuple[float, float] | None = None
    sd: float | None = None
    level: float = 0.95
    method: str = ""

    def __post_init__(self) -> None:
        if self.ci is not None:
            lo, hi = self.ci
            if not lo <= hi:
                raise ValueError(f"ci must be an interval (lo, hi) with lo <= hi, got {self.ci}")
            object.__setattr__(self, "ci", (float(lo), float(hi)))
        if self.sd is not None and not self.sd >= 0:
            raise ValueError(f"sd must be >= 0 or None, got {self.sd}")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (``ci`` as a list)."""
        d = asdict(self)
        d["ci"] = list(self.ci) if self.ci is not None else None
        return d

    def __str__(self) -> str:
        """e.g. ``FID 12.34 [11.81, 12.97] (95% percentile bootstrap, 100 resamples; n=10,000 vs
        4,000)``; numbers rounded to two significant digits of their uncertainty."""
        spread = None
        if self.ci is not None:
            spread = (self.ci[1] - self.ci[0]) / 2
        elif self.sd is not None:
            spread = self.sd
        fmt = _formatter(spread, self.value)
        text = f"{self.name} {fmt(self.value)}"
        if self.ci is not None:
            text += f" [{fmt(self.ci[0])}, {fmt(self.ci[1])}]"
        elif self.sd is not None:
            text += f" ± {fmt(self.sd)} (sd)"
        sizes = f"n={self.n_a:,}" + (f" vs {self.n_b:,}" if self.n_b is not None else "")
        how = (f"{self.level:.0%} " if self.ci is not None else "") + self.method
        return f"{text} ({how.strip()}; {sizes})" if how.strip() else f"{text} ({sizes})"


def _formatter(spread: float | None, value: float):
    """Two significant digits of the spread (more would be noise); 4 significant digits of the
    value when there is no spread to go by."""
    if spread is not None and math.isfinite(spread) and spread > 0:
        decimals = min(max(0, 1 - math.floor(math.log10(spread))), 12)
        return lambda v: f"{v:.{decimals}f}"
    return lambda v: f"{v:.4g}"
