r"""Class-count noise: why a perfect unconditional generator cannot reach a stratified floor.

The real-data floor of :func:`genlib.metrics.real_floor` scores the mnist5k test split, which
holds exactly 100 digits of each class. ``n`` samples drawn independently from a generator, even
from the data distribution itself, hold *random* class counts :math:`c \sim
\operatorname{Multinomial}(n, p)`. On features whose class means lie far apart (the digit
classifier's), the counts move the fitted mean and covariance, and so the FID, by more than the
images' own variation does. The expected excess of the mean term alone has a closed form: with
class means :math:`m_k`, proportions :math:`p_k` and :math:`\bar m = \sum_k p_k m_k`,

.. math::  \mathbb E \Big\lVert \sum_k \big(\tfrac{c_k}{n} - p_k\big) m_k \Big\rVert^2
           = \frac1n \sum_k p_k \lVert m_k - \bar m \rVert^2,

since :math:`\operatorname{Cov}(c/n) = (\operatorname{diag} p - p p^\top)/n`. The covariance term
adds more; :func:`class_count_noise` measures the whole excess by resampling real features: FIDs
of class-stratified resamples (fixed counts, like the test split) against resamples with
multinomial counts (like independent samples), both drawn with replacement within each class so
that they differ only in the counts. Chapter 6 ("With a GPU: back to pixels") and chapter 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from genlib.metrics._checks import as_features, check_int, make_generator, same_dim
from genlib.metrics._threads import cpu_threads
from genlib.metrics.frechet import _check_enough, _frechet, gaussian_stats, sqrtm_psd

__all__ = ["ClassCountNoise", "class_count_noise", "fid_with_class_counts", "stratified_counts",
           "mean_term_excess"]


@dataclass(frozen=True)
class ClassCountNoise:
    """What :func:`class_count_noise` measured.

    Attributes:
        n: samples per resample; reps: resamples of each kind.
        stratified, stratified_sd: mean and sd of the FIDs with fixed class counts.
        iid, iid_sd: the same with multinomial class counts.
        excess, excess_se: ``iid - stratified`` and its standard error; add ``excess`` to a
            floor measured on a stratified set to get the floor of ``n`` independent samples.
        mean_term: the closed-form expected excess of the mean term (:func:`mean_term_excess`).
    """

    n: int
    reps: int
    stratified: float
    stratified_sd: float
    iid: float
    iid_sd: float
    excess: float
    excess_se: float
    mean_term: float


def stratified_counts(p: Any, n: int) -> torch.Tensor:
    """``n`` split into integer class counts proportional to ``p`` (largest remainders): the
    counts a class-stratified sample of size ``n`` holds; they sum to ``n``."""
    n = check_int(n, "n", minimum=1)
    p = torch.as_tensor(p, dtype=torch.float64)
    if p.ndim != 1 or len(p) == 0 or not torch.isfinite(p).all() or (p < 0).any() \
            or not p.sum() > 0:
        raise ValueError(f"p must be non-negative class weights (K,) with a positive sum, got "
                         f"{p.tolist() if p.numel() <= 20 else tuple(p.shape)}")
    exact = p / p.sum() * n
    counts = exact.floor().long()
    rest = n - int(counts.sum())
    counts[torch.argsort(exact - counts, descending=True, stable=True)[:rest]] += 1
    return counts


def mean_term_excess(feat: Any, labels: Any, n: int) -> float:
    r"""The closed form :math:`\frac1n \sum_k p_k \lVert m_k - \bar m\rVert^2` of the module
    docstring: the expected squared shift of the feature mean that multinomial class counts
    cause, with ``p`` and the class means ``m_k`` taken from ``feat`` and its ``labels``."""
    x = as_features(feat, "feat")
    y = _labels(labels, len(x))
    n = check_int(n, "n", minimum=1)
    classes, counts = torch.unique(y, return_counts=True)
    p = counts.double() / len(y)
    means = torch.stack([x[y == k].mean(0) for k in classes])
    centre = p @ means
    return float((p * ((means - centre) ** 2).sum(1)).sum() / n)


def _labels(labels: Any, n_rows: int) -> torch.Tensor:
    y = torch.as_tensor(labels)
    if y.shape != (n_rows,) or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"labels must be {n_rows} integers (one class per feature row), got "
                         f"shape {tuple(y.shape)}, dtype {y.dtype}")
    return y.long()


class _Resampler:
    """Real features redrawn with chosen class counts (with replacement within each class),
    scored by FID against a fixed reference."""

    def __init__(self, feat: Any, labels: Any, feat_ref: Any) -> None:
        self.x, ref = as_features(feat, "feat"), as_features(feat_ref, "feat_ref")
        same_dim(self.x, ref, ("feat", "feat_ref"))
        _check_enough(ref, "feat_ref")
        self.y = _labels(labels, len(self.x))
        classes, sizes = torch.unique(self.y, return_counts=True)
        self.pools = [torch.nonzero(self.y == k).flatten() for k in classes]
        self.p = sizes.double() / len(self.y)
        with cpu_threads(1):                              # see _threads.py
            self.mu_r, self.cov_r = gaussian_stats(ref)
            self.sqrt_r = sqrtm_psd(self.cov_r)

    def check_n(self, n: int) -> int:
        if n <= self.x.shape[1]:
            raise ValueError(f"n must exceed the feature dimension D={self.x.shape[1]} (FID needs "
                             f"a non-singular covariance), got {n}")
        return n

    def score(self, counts: torch.Tensor, g: torch.Generator) -> float:
        rows = [pool[torch.randint(len(pool), (int(c),), generator=g)]
                for pool, c in zip(self.pools, counts, strict=True) if c > 0]
        with cpu_threads(1):
            mu, cov = gaussian_stats(self.x[torch.cat(rows)])
            return _frechet(self.mu_r, self.cov_r, mu, cov, self.sqrt_r)


def fid_with_class_counts(feat: Any, labels: Any, feat_ref: Any, counts: Any, *,
                          reps: int = 100,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """FIDs of ``reps`` resamples of real features holding exactly ``counts`` rows of each class:
    what real data would score in a generator's class proportions.

    Args:
        feat, labels, feat_ref: as for :func:`class_count_noise`.
        counts: ``(K,)`` non-negative integers, one per distinct label in increasing order
            (``counts[k]`` rows of digit ``k`` for labels ``0..9``); their sum is the resample
            size and must exceed ``D``.
        reps: resamples, >= 1; generator: draws them (None: seeded with 0).

    Returns:
        ``(reps,)`` float64 FIDs. Each resample draws with replacement within a class, which
        raises FID a little: compare with resamples at the data's own counts, as
        :func:`class_count_noise` does, rather than with a floor of distinct rows.
    """
    r = _Resampler(feat, labels, feat_ref)
    c = torch.as_tensor(counts)
    if (c.shape != (len(r.pools),) or c.dtype.is_floating_point or c.dtype == torch.bool
            or (c < 0).any()):
        raise ValueError(f"counts must be {len(r.pools)} non-negative integers (one per class), "
                         f"got shape {tuple(c.shape)}, dtype {c.dtype}")
    r.check_n(int(c.sum()))
    reps = check_int(reps, "reps", minimum=1)
    g = make_generator(generator)
    return torch.tensor([r.score(c, g) for _ in range(reps)], dtype=torch.float64)


def class_count_noise(feat: Any, labels: Any, feat_ref: Any, *, n: int | None = None,
                      reps: int = 100,
                      generator: torch.Generator | None = None) -> ClassCountNoise:
    """How much random class counts raise the FID of ``n`` samples (module docstring).

    Args:
        feat: features ``(N, D)`` of real samples whose ``labels`` ``(N,)`` are known (the
            test split); the class proportions ``p`` are theirs.
        feat_ref: the reference features ``(M, D)`` (the training split), held fixed.
        n: samples per resample (None: ``N``); more than ``D``.
        reps: resamples of each kind, >= 2.
        generator: draws the resamples (None: seeded with 0, reproducible).

    Each stratified resample draws :func:`stratified_counts` ``(p, n)`` rows of each class with
    replacement; each independent one first draws its counts from ``Multinomial(n, p)``.
    """
    r = _Resampler(feat, labels, feat_ref)
    n = r.check_n(len(r.x) if n is None else check_int(n, "n", minimum=1))
    reps = check_int(reps, "reps", minimum=2)
    g = make_generator(generator)
    fixed = stratified_counts(r.p, n)
    strat, iid = [], []
    for _ in range(reps):
        strat.append(r.score(fixed, g))
        draws = torch.multinomial(r.p, n, replacement=True, generator=g)
        iid.append(r.score(torch.bincount(draws, minlength=len(r.p)), g))
    s, i = torch.tensor(strat, dtype=torch.float64), torch.tensor(iid, dtype=torch.float64)
    return ClassCountNoise(
        n=n, reps=reps, stratified=float(s.mean()), stratified_sd=float(s.std()),
        iid=float(i.mean()), iid_sd=float(i.std()), excess=float(i.mean() - s.mean()),
        excess_se=float((s.var() / reps + i.var() / reps).sqrt()),
        mean_term=mean_term_excess(r.x, r.y, n))
