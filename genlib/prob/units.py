r"""Units of information: nats, bits and bits per dimension.

Likelihoods in this book are natural logarithms (nats). Papers report image likelihoods in
*bits per dimension*: the negative log-likelihood in base 2 divided by the number of
dimensions (sub-pixels, :math:`D = C \cdot H \cdot W`),

.. math::  \mathrm{bpd} = \frac{-\log p(x)}{D \ln 2},

the average number of bits a lossless code built on the model would spend per sub-pixel: 8 for
a model that knows nothing about 8-bit images (uniform over 256 levels), less for a good one.
The NLL must be of the *discrete* data (e.g. from :func:`~genlib.prob.log_discretized_logistic`
over the levels 0..255); a continuous density on rescaled pixels needs the discretisation
correction first (chapter 2, "Maximum likelihood", section "Nats, bits and bits per dimension";
chapter 3).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

__all__ = ["bits_per_dim", "bits_to_nats", "nats_to_bits"]

_LN2 = math.log(2.0)

Value = torch.Tensor | float


def _check_value(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, torch.Tensor | numbers.Real):
        raise TypeError(f"{name} must be a tensor or a real number, got {value!r}")


def nats_to_bits(nats: Value) -> Value:
    """``nats / ln 2`` (one nat is 1.4427 bits); tensors stay tensors, numbers stay numbers."""
    _check_value(nats, "nats")
    return nats / _LN2


def bits_to_nats(bits: Value) -> Value:
    """``bits * ln 2``; the inverse of :func:`nats_to_bits`."""
    _check_value(bits, "bits")
    return bits * _LN2


def bits_per_dim(nll_nats: Value, dim: int | Sequence[int]) -> Value:
    r"""Bits per dimension :math:`\mathrm{NLL} / (D \ln 2)` of a negative log-likelihood in nats.

    Args:
        nll_nats: ``-log p(x)`` in nats, per example ``(B,)`` or already averaged.
        dim: the number of dimensions ``D`` of one example, or its shape, e.g. ``(1, 28, 28)``.

    Example: a model that is uniform over 17 values in each of 64 dimensions has
    ``nll = 64 ln 17`` nats and ``bits_per_dim(nll, 64) = log2(17) = 4.09``.
    """
    _check_value(nll_nats, "nll_nats")
    if isinstance(dim, Sequence) and not isinstance(dim, str):
        if not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1
                   for d in dim) or len(dim) == 0:
            raise ValueError(f"dim must be a positive integer or a shape of positive integers, "
                             f"got {dim!r}")
        dim = math.prod(int(d) for d in dim)
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
        raise ValueError(f"dim must be a positive integer (the number of dimensions D), got "
                         f"{dim!r}")
    return nll_nats / (int(dim) * _LN2)
