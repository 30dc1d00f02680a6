r"""Likelihoods as metrics: a test NLL in nats, bits and bits per dimension, with its uncertainty.

A test negative log-likelihood is a mean over test images, so it is an estimate like any other:

.. math::  \widehat{\mathrm{NLL}} = \frac1N \sum_{n=1}^N -\log p_\theta(x_n), \qquad
           \mathrm{se} = s / \sqrt N ,

and :func:`nll_summary` reports it with its standard error and normal-approximation interval in
all three units (the conversions live in :mod:`genlib.prob.units`; this module only adds the
uncertainty and the sample size). Taught in chapter 8, "The likelihood view".
"""

from __future__ import annotations

import math
from typing import Any

import torch

from genlib.metrics.result import MetricResult
from genlib.prob import bits_per_dim, bits_to_nats, mc_mean, nats_to_bits

__all__ = ["nll_summary", "nats_to_bits", "bits_to_nats", "bits_per_dim"]

_UNITS = ("nats", "bits", "bits/dim")


def nll_summary(nll_nats: Any, dim: int, *, level: float = 0.95) -> dict[str, MetricResult]:
    """Mean test NLL with its standard error, in nats, bits and bits per dimension.

    Args:
        nll_nats: per-example negative log-likelihoods in nats, shape ``(N,)`` with ``N >= 2``.
        dim: number of dimensions of one example (e.g. ``64`` for 8x8 digits, ``784`` for MNIST).
        level: coverage of the interval.

    Returns:
        ``{"nats": ..., "bits": ..., "bits/dim": ...}``, each a :class:`MetricResult` holding the
        mean, the interval ``mean +- z * se`` and ``sd`` = the standard error, with ``n_a = N``.
    """
    x = torch.as_tensor(nll_nats, dtype=torch.float64)
    if x.ndim != 1 or x.numel() < 2:
        raise ValueError(f"nll_nats must be a 1-D tensor of per-example NLLs with at least 2 "
                         f"values, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"nll_nats holds {bad} non-finite values (an example with probability "
                         f"0 has infinite NLL: smooth the model or report it separately)")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int (dimensions per example), got {dim!r}")
    est = mc_mean(x)
    lo, hi = est.ci(level)
    scales = {"nats": 1.0, "bits": 1.0 / math.log(2), "bits/dim": 1.0 / (dim * math.log(2))}
    return {
        unit: MetricResult(name=f"test NLL ({unit})", value=est.mean * s, n_a=est.n,
                           ci=(lo * s, hi * s), sd=est.stderr * s, level=level,
                           method="mean over test examples; sd is the standard error")
        for unit, s in scales.items()
    }
