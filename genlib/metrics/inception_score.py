r"""The Inception Score from a classifier's predictions (Salimans et al. 2016).

.. math::  \mathrm{IS} = \exp\Big(\mathbb E_x\, \mathrm{KL}\big(p(y \mid x) \,\Vert\, p(y)\big)
           \Big), \qquad p(y) = \mathbb E_x\, p(y \mid x).

It is high when each sample is classified confidently (``p(y|x)`` peaked) *and* the samples
spread over the classes (``p(y)`` flat): between 1 (every sample predicted the same way) and the
number of classes ``K`` (confident and uniform). It never looks at real data, so it cannot see
samples that are confidently wrong-looking or copies of the training set. As in the original,
the samples are cut into ``n_splits`` consecutive groups and the score's spread over groups is
reported. Here the classifier is the kit's digit classifier (``digit_logits``); with Inception's
ImageNet classes it is the published IS. Chapter 8.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from genlib.metrics._checks import check_int
from genlib.metrics.result import MetricResult

__all__ = ["inception_score"]


def inception_score(logits: Any, *, n_splits: int = 10, probs: bool = False) -> MetricResult:
    """Inception Score of samples given their class predictions.

    Args:
        logits: ``(N, K)`` class logits (or, with ``probs=True``, probabilities whose rows sum
            to 1), as a tensor or array.
        n_splits: consecutive groups the samples are cut into (``N // n_splits`` or one more
            each, as Salimans et al.); shuffle first if the samples are ordered by class.
        probs: read ``logits`` as probabilities.

    Returns:
        :class:`MetricResult` named ``"IS"``: ``value`` the mean score over the groups, ``sd``
        their standard deviation (``N`` denominator, as the original code); ``n_b`` is None.
    """
    if isinstance(logits, np.ndarray):
        logits = torch.from_numpy(np.ascontiguousarray(logits))
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a (N, K) tensor of class scores, got {got}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point (N, K), got dtype {logits.dtype}; for "
                        "class labels use class_histogram")
    n, k = logits.shape
    if k < 2:
        raise ValueError(f"logits must score at least 2 classes, got K={k}")
    n_splits = check_int(n_splits, "n_splits", minimum=1)
    if n < n_splits:
        raise ValueError(f"need at least n_splits={n_splits} samples, got N={n}")
    x = logits.detach().to(torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError("logits hold NaN or infinite values")
    if probs:
        if float(x.min()) < 0 or not torch.allclose(x.sum(1), torch.ones_like(x[:, 0]),
                                                      atol=1e-6):
            raise ValueError("with probs=True every row of logits must be a probability vector "
                             "(entries >= 0 summing to 1); pass logits with probs=False")
        p = x
    else:
        p = torch.softmax(x, dim=1)
    scores = []
    for i in range(n_splits):
        part = p[i * n // n_splits:(i + 1) * n // n_splits]        # (n_i, K)
        py = part.mean(dim=0, keepdim=True)                          # (1, K): p(y)
        # KL(p(y|x) || p(y)) per sample; xlogy gives 0 log 0 = 0 for impossible classes
        kl = (torch.special.xlogy(part, part) - torch.special.xlogy(part, py)).sum(dim=1)
        scores.append(math.exp(float(kl.mean())))
    s = torch.tensor(scores, dtype=torch.float64)
    sd = float(s.std(correction=0)) if n_splits > 1 else None
    return MetricResult("IS", float(s.mean()), n, None, sd=sd,
                        method=f"sd over {n_splits} splits")
