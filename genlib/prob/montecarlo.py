r"""Monte Carlo estimates with their standard errors: every number in this book is one.

An expectation :math:`\mu = \mathbb E[f(X)]` is estimated by the sample mean of
:math:`N` independent draws,

.. math::  \hat\mu = \frac1N \sum_{i=1}^N f(x_i), \qquad
           \operatorname{se}(\hat\mu) = \frac{s}{\sqrt N}, \qquad
           s^2 = \frac{1}{N-1} \sum_i \big(f(x_i) - \hat\mu\big)^2,

and by the central limit theorem :math:`\hat\mu \pm z_{(1+\ell)/2}\operatorname{se}` covers
:math:`\mu` with probability close to :math:`\ell` (1.96 standard errors for 95%). The error
shrinks like :math:`1/\sqrt N` whatever the dimension: four times the samples for half the error.
:class:`Estimate` carries the three numbers and prints as ``1.234 ± 0.005 (n=1,000)``.
Taught in chapter 2 ("Monte Carlo estimation"); chapter 8 treats metrics as such estimators.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import torch

from genlib.prob._checks import positive_int

__all__ = ["Estimate", "mc_mean", "monte_carlo"]


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo estimate: the sample ``mean``, its standard error and the sample size.

    Attributes:
        mean: the sample mean :math:`\\hat\\mu`.
        stderr: the standard error :math:`s / \\sqrt n` (an estimate of the spread of ``mean``
            over repeated experiments).
        n: the number of samples.
    """

    mean: float
    stderr: float
    n: int

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """Normal-approximation confidence interval ``mean -+ z * stderr``, with ``z`` the
        ``(1 + level) / 2`` quantile of the standard normal (1.96 for ``level=0.95``)."""
        if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
            raise ValueError(f"level must be a number in (0, 1), got {level!r}")
        z = NormalDist().inv_cdf((1 + level) / 2)
        return (self.mean - z * self.stderr, self.mean + z * self.stderr)

    def __str__(self) -> str:
        """``mean ± stderr (n=...)``, the mean rounded where the standard error's first
        significant digit sits (more digits would be noise)."""
        if math.isfinite(self.stderr) and self.stderr > 0:
            decimals = min(max(0, -math.floor(math.log10(self.stderr))), 15)
            return f"{self.mean:.{decimals}f} ± {self.stderr:.{decimals}f} (n={self.n:,})"
        return f"{self.mean:.6g} ± {self.stderr:.2g} (n={self.n:,})"


def _check_values(values: torch.Tensor, name: str = "values") -> torch.Tensor:
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"{name} must be a tensor (N,), got {type(values).__name__}")
    if values.ndim != 1:
        raise ValueError(f"{name} must have shape (N,), got {tuple(values.shape)}; for one "
                         f"estimate per column, call mc_mean on each column")
    if values.shape[0] < 2:
        raise ValueError(f"{name} must hold at least 2 values to estimate a standard error, got "
                         f"N={values.shape[0]}")
    return values.detach().to(torch.float64)


def mc_mean(values: torch.Tensor) -> Estimate:
    r"""The sample mean of ``values (N,)`` and its standard error ``s / sqrt(N)`` (``s`` with the
    ``N - 1`` denominator), computed in float64."""
    v = _check_values(values)
    n = v.shape[0]
    return Estimate(mean=v.mean().item(), stderr=(v.std(correction=1) / math.sqrt(n)).item(), n=n)


def monte_carlo(f: Callable[[torch.Tensor], torch.Tensor],
                sample_fn: Callable[[int, torch.Generator | None], torch.Tensor], n: int, *,
                generator: torch.Generator | None = None, batch_size: int | None = None
                ) -> Estimate:
    r"""Estimate :math:`\mathbb E[f(X)]` from ``n`` draws ``X = sample_fn(n, generator)``.

    Args:
        f: maps a batch of samples ``(b, ...)`` to values ``(b,)``.
        sample_fn: ``sample_fn(b, generator)`` returns ``b`` independent draws ``(b, ...)``.
        n: number of samples (>= 2).
        generator: passed to ``sample_fn``; the same seed gives the same estimate.
        batch_size: if given, draw and evaluate in batches of at most this size (memory stays
            ``O(batch_size)``); the batches are merged with Chan et al.'s (1979) pairwise update
            of the mean and the sum of squared deviations, which, unlike ``sum(x^2) - n mean^2``,
            does not cancel catastrophically when the mean is large compared to the spread.

    Returns:
        An :class:`Estimate` (no gradients: ``f`` runs under ``torch.no_grad``).
    """
    n = positive_int(n, "n", minimum=2)
    b = n if batch_size is None else positive_int(batch_size, "batch_size")
    count, mean, m2 = 0, 0.0, 0.0                      # running n, mean, sum of squared deviations
    with torch.no_grad():
        while count < n:
            size = min(b, n - count)
            values = f(sample_fn(size, generator))
            if not isinstance(values, torch.Tensor) or values.shape != (size,):
                raise ValueError(f"f must return one value per sample, shape ({size},), got "
                                 f"{getattr(values, 'shape', type(values).__name__)}")
            v = values.detach().to(torch.float64)
            mean_b = v.mean().item()
            m2_b = ((v - mean_b) ** 2).sum().item()
            delta = mean_b - mean
            total = count + size
            mean += delta * size / total
            m2 += m2_b + delta**2 * count * size / total
            count = total
    return Estimate(mean=mean, stderr=math.sqrt(m2 / (n - 1) / n), n=n)
