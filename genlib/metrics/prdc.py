r"""Precision, recall, density and coverage: fidelity and diversity apart, from k-NN balls.

FID folds two failures into one number: samples that look wrong (low fidelity) and samples
that miss part of the data (low diversity). These four metrics keep them apart. Around each
real feature vector :math:`X_i` put the ball :math:`B(X_i, r_i)` whose radius :math:`r_i` is the
distance to its ``k``-th nearest real neighbour; the union of the balls estimates the real
manifold. Likewise around each generated :math:`Y_j` with its own ``k``-NN radius :math:`s_j`.

- precision (Kynkaanniemi et al. 2019): the share of generated samples inside the real manifold,
  :math:`\frac1M \sum_j 1[\exists i: Y_j \in B(X_i, r_i)]` (fidelity);
- recall: the share of real samples inside the generated manifold,
  :math:`\frac1N \sum_i 1[\exists j: X_i \in B(Y_j, s_j)]` (diversity);
- density (Naeem et al. 2020): how many real balls hold each sample, over ``k``,
  :math:`\frac{1}{kM} \sum_j \sum_i 1[Y_j \in B(X_i, r_i)]`: about 1 when the two sets match,
  and, unlike precision, not fooled by one outlier real point with a huge ball;
- coverage (Naeem et al. 2020): the share of real balls holding at least one sample,
  :math:`\frac1N \sum_i 1[\exists j: Y_j \in B(X_i, r_i)]`: diversity measured on the real
  manifold only, so generated outliers cannot inflate it.

One ``k`` (default 5, Naeem et al.'s choice; Kynkaanniemi et al. used 3) serves all four.
Distances are computed in row chunks, so 10,000 x 10,000 sets need tens of MB, never the
800 MB of the full matrix, and in float32: deciding which of two distances is smaller needs
7 significant digits, not 16, and float32 halves the time and memory. The features are centred
(on the real mean, in float64) first: ``|x|^2 + |y|^2 - 2 x.y`` then cancels on the scale of
the features' spread, not of their offset, so distances are resolved to about 1e-3 of the
typical feature norm around the centre (two copies of a point come out about that close).

**Intervals.** The reference set is fixed data; what varies from one evaluation to the next is
the draw of ``M`` generated samples. So the bootstrap resamples the generated set (with
replacement) and recomputes each metric with the ``k``-NN radii held at their full-sample
values; a resample needs no new distances, only a weighted count, so 100 resamples cost less
than the distances themselves. The percentile interval is recentred on the full-sample value
(a resample holds about 63% distinct samples, which lowers recall and coverage; see
``_checks.bootstrap_interval``). Against fresh draws of a Gaussian mixture the bootstrap
standard deviations came within about 25% of the true ones; recall's was about 30% too
small, since the generated radii, which only recall uses, stay fixed. Chapter 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from genlib.metrics._checks import (
    as_features,
    bootstrap_interval,
    check_int,
    check_level,
    check_n_boot,
    make_generator,
    same_dim,
)
from genlib.metrics.result import MetricResult

__all__ = ["PRDC", "knn_radii", "prdc"]

_CHUNK_ELEMENTS = 4_000_000  # distances per chunk: 16 MB of float32


@dataclass(frozen=True)
class PRDC:
    """The four metrics of :func:`prdc`, each a :class:`MetricResult`, and the ``k`` used."""

    precision: MetricResult
    recall: MetricResult
    density: MetricResult
    coverage: MetricResult
    k: int

    def as_dict(self) -> dict[str, MetricResult]:
        """``{"precision": ..., "recall": ..., "density": ..., "coverage": ...}``."""
        return {"precision": self.precision, "recall": self.recall, "density": self.density,
                "coverage": self.coverage}

    def __str__(self) -> str:
        return "\n".join(str(m) for m in self.as_dict().values())


def _sq_dists(x: torch.Tensor, y: torch.Tensor, y_sq: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(n, m)`` from ``|x|^2 + |y|^2 - 2 x.y`` (one matmul),
    clamped at 0 against rounding."""
    return ((x * x).sum(1, keepdim=True) + y_sq[None, :] - 2 * x @ y.T).clamp_min_(0.0)


def _chunk_rows(m: int, chunk_size: int | None) -> int:
    if chunk_size is not None:
        return check_int(chunk_size, "chunk_size", minimum=1)
    return max(1, _CHUNK_ELEMENTS // max(m, 1))


def knn_radii(feat: Any, k: int, *, chunk_size: int | None = None) -> torch.Tensor:
    """Distance from each row of ``feat (N, D)`` to its ``k``-th nearest *other* row, ``(N,)``
    float64 (Euclidean; computed in float32 after centring, see the module docstring).
    Duplicated rows count as neighbours at distance about 0.

    Computed in chunks of ``chunk_size`` rows (default: about 4 million distances at a time).
    """
    x = as_features(feat, "feat")
    n = x.shape[0]
    k = check_int(k, "k", minimum=1)
    if k >= n:
        raise ValueError(f"k must be smaller than the number of samples, got k={k} with N={n}")
    x = (x - x.mean(dim=0)).float()                             # centred: see module docstring
    return _knn_sq_radii(x, k, _chunk_rows(n, chunk_size)).double().sqrt()


def _knn_sq_radii(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    n = x.shape[0]
    x_sq = (x * x).sum(1)
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        d2 = _sq_dists(x[start:stop], x, x_sq)            # (c, N)
        rows = torch.arange(stop - start, device=x.device)
        d2[rows, rows + start] = 0.0                      # self-distance exactly 0, not ~1e-13
        # the (k+1)-th smallest counts the point itself first: the k-th nearest other point
        out[start:stop] = d2.topk(k + 1, dim=1, largest=False).values[:, k]
    return out


def prdc(feat_gen: Any, feat_real: Any, *, k: int = 5, n_boot: int = 100, level: float = 0.95,
         generator: torch.Generator | None = None, chunk_size: int | None = None) -> PRDC:
    """Precision, recall, density and coverage of generated features against real ones.

    Args:
        feat_gen: generated-sample features ``(M, D)``.
        feat_real: real (reference) features ``(N, D)``.
        k: neighbours defining each ball's radius (``k < min(M, N)``).
        n_boot: bootstrap resamples of the generated set (0: no intervals); see the module
            docstring for what the interval covers.
        level: coverage of the percentile intervals.
        generator: draws the resamples (None: seeded with 0).
        chunk_size: rows of real features per distance chunk (default: about 4 million
            distances, 16 MB, at a time).

    Returns:
        :class:`PRDC` with four :class:`MetricResult` (``n_a = M``, ``n_b = N``).
    """
    y = as_features(feat_gen, "feat_gen")
    x = as_features(feat_real, "feat_real")
    same_dim(y, x, ("feat_gen", "feat_real"))
    k = check_int(k, "k", minimum=1)
    m, n = y.shape[0], x.shape[0]
    if k >= min(m, n):
        raise ValueError(f"k must be smaller than both sample sizes, got k={k} with "
                         f"{m} generated and {n} real samples")
    n_boot, level = check_n_boot(n_boot), check_level(level)
    x = x.to(y.device)
    centre = x.mean(dim=0)                                      # see module docstring
    x, y = (x - centre).float(), (y - centre).float()
    r2_real = _knn_sq_radii(x, k, _chunk_rows(n, chunk_size))   # (N,) squared radii
    r2_gen = _knn_sq_radii(y, k, _chunk_rows(m, chunk_size))    # (M,)

    if n_boot:
        g = make_generator(generator)
        draws = torch.randint(m, (n_boot, m), generator=g)      # (R, M) resampled indices
        offsets = (torch.arange(n_boot) * m)[:, None]
        counts = torch.bincount((draws + offsets).flatten(), minlength=n_boot * m)
        counts = counts.reshape(n_boot, m).to(y.device, torch.float32)   # (R, M) multiplicities
        present = (counts > 0).to(torch.float32).T.contiguous()         # (M, R)
        recall_boot = torch.zeros(n_boot, dtype=torch.float64, device=y.device)
        coverage_boot = torch.zeros(n_boot, dtype=torch.float64, device=y.device)

    in_real_balls = torch.zeros(m, dtype=torch.float64, device=y.device)  # sum_i 1[Y_j in B_i]
    recall_hit = torch.empty(n, dtype=torch.bool, device=y.device)
    coverage_hit = torch.empty(n, dtype=torch.bool, device=y.device)
    y_sq = (y * y).sum(1)
    chunk = _chunk_rows(m, chunk_size)
    for start in range(0, n, chunk):                            # rows: real points i
        stop = min(start + chunk, n)
        d2 = _sq_dists(x[start:stop], y, y_sq)                  # (c, M)
        in_b = d2 <= r2_real[start:stop, None]                  # Y_j in B(X_i, r_i)
        in_s = d2 <= r2_gen[None, :]                            # X_i in B(Y_j, s_j)
        in_real_balls += in_b.sum(0)
        recall_hit[start:stop] = in_s.any(1)
        coverage_hit[start:stop] = in_b.any(1)
        if n_boot:
            # a real point is covered (recalled) in a resample if one of its generated
            # neighbours was drawn at least once: count drawn neighbours with one matmul
            recall_boot += ((in_s.to(torch.float32) @ present) > 0).sum(0)
            coverage_boot += ((in_b.to(torch.float32) @ present) > 0).sum(0)
    precision_hit = (in_real_balls > 0).to(torch.float64)       # (M,)

    values = {"precision": float(precision_hit.mean()),
              "recall": float(recall_hit.double().mean()),
              "density": float(in_real_balls.sum()) / (k * m),
              "coverage": float(coverage_hit.double().mean())}
    reps: dict[str, torch.Tensor] = {}
    if n_boot:
        c64 = counts.to(torch.float64)
        reps = {"precision": c64 @ precision_hit / m,
                "recall": recall_boot / n,
                "density": c64 @ in_real_balls / (k * m),
                "coverage": coverage_boot / n}
    method = f"recentred percentile bootstrap, {n_boot} resamples" if n_boot else ""
    results = {}
    for name, value in values.items():
        ci = sd = None
        if n_boot:
            ci = bootstrap_interval(reps[name], value, level, lower=0.0,
                                    upper=None if name == "density" else 1.0)
            sd = float(reps[name].std(correction=1))
        results[name] = MetricResult(name, value, m, n, ci=ci, sd=sd, level=level,
                                     method=method + (f"; k={k}" if method else f"k={k}"))
    return PRDC(k=k, **results)
