r"""The Frechet distance between Gaussians fitted to features, and FID as an estimator.

FID (Heusel et al. 2017) fits a Gaussian :math:`\mathcal N(\mu, \Sigma)` to the features of each
image set and reports the squared 2-Wasserstein (Frechet) distance between the two Gaussians:

.. math::  d^2 = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}
           \Sigma_2 - 2 \operatorname{tr}\big(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}\big)^{1/2}

(Dowson & Landau 1982). The last trace is often written :math:`\operatorname{tr}
(\Sigma_1\Sigma_2)^{1/2}`; the two agree because :math:`\Sigma_1\Sigma_2` is similar to the
symmetric :math:`\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}`, so they share their eigenvalues.

It is an *estimator*: computed from ``n`` samples it is biased upwards, by roughly ``c / n``
(Chong & Forsyth 2020), and it varies from one draw of samples to the next. :func:`fid` gives a
bootstrap interval for the second; :func:`fid_infinity` measures the first.
Taught in chapter 8 ("Evaluating generative models").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
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
from genlib.metrics._threads import cpu_threads
from genlib.metrics.result import MetricResult

__all__ = [
    "gaussian_stats",
    "sqrtm_psd",
    "trace_sqrt_product",
    "frechet_distance",
    "fid",
    "FIDInfinity",
    "fid_infinity",
]


def gaussian_stats(feat: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (``N - 1`` denominator) of features ``(N, D)``,
    in float64."""
    x = as_features(feat, "feat")
    mu = x.mean(dim=0)
    xc = x - mu
    return mu, xc.T @ xc / (x.shape[0] - 1)


def _clamped(w: torch.Tensor, name: str) -> torch.Tensor:
    """Eigenvalues of a symmetric matrix that should be positive semi-definite, clamped.

    Numerical care, once for the package: a covariance is PSD in exact arithmetic, but rounding
    makes the eigenvalues of a singular or ill-conditioned one come out as tiny negatives
    (about ``-1e-16 * largest``), whose square roots would be NaN. ``eigh`` / ``eigvalsh`` of
    the symmetrised matrix give real eigenvalues; negatives within rounding of zero are set to
    0; clearly negative ones mean the input is not a covariance and raise.
    """
    scale = float(w.abs().max()) if w.numel() else 0.0
    if w.numel() and float(w.min()) < -1e-8 * max(scale, 1e-300):
        raise ValueError(f"{name} must be positive semi-definite (a covariance), but its smallest "
                         f"eigenvalue is {float(w.min()):.3g} (largest {scale:.3g})")
    return w.clamp_min(0.0)


def _eigh_psd(c: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (clamped, see :func:`_clamped`) and eigenvectors of a PSD matrix."""
    w, v = torch.linalg.eigh((c + c.T) / 2)               # exactly symmetric for eigh
    return _clamped(w, name), v


def _eigvals_psd(c: torch.Tensor, name: str) -> torch.Tensor:
    """The eigenvalues alone (``eigvalsh``: several times faster than ``eigh``), clamped."""
    return _clamped(torch.linalg.eigvalsh((c + c.T) / 2), name)


def sqrtm_psd(c: torch.Tensor) -> torch.Tensor:
    r"""The symmetric PSD square root :math:`C^{1/2} = V \operatorname{diag}(\sqrt\lambda) V^T`
    of a covariance ``(D, D)``, via ``eigh`` with tiny negative eigenvalues clamped to 0."""
    c = _check_matrix(c, "c")
    w, v = _eigh_psd(c, "c")
    return (v * w.sqrt()) @ v.T


def trace_sqrt_product(cov1: torch.Tensor, cov2: torch.Tensor, *,
                       sqrt_cov1: torch.Tensor | None = None) -> float:
    r""":math:`\operatorname{tr}(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}` in float64.

    The symmetric form keeps every step in symmetric PSD matrices, where ``eigvalsh`` is
    accurate and the eigenvalues are real; the textbook ``sqrtm(cov1 @ cov2)`` (scipy) works on a
    non-symmetric product and returns complex round-off for singular covariances. Pass
    ``sqrt_cov1`` (from :func:`sqrtm_psd`) to reuse it across many ``cov2`` (bootstrap).
    """
    s1 = sqrtm_psd(cov1) if sqrt_cov1 is None else sqrt_cov1
    m = s1 @ cov2.to(s1.dtype) @ s1                       # (D, D), symmetric PSD
    w = _eigvals_psd(m, "sqrt(cov1) @ cov2 @ sqrt(cov1)")
    return float(w.sqrt().sum())


def _check_matrix(c: Any, name: str, d: int | None = None) -> torch.Tensor:
    if isinstance(c, np.ndarray):
        c = torch.from_numpy(np.ascontiguousarray(c))
    if not isinstance(c, torch.Tensor):
        raise TypeError(f"{name} must be a (D, D) tensor or array, got {type(c).__name__}")
    if c.ndim != 2 or c.shape[0] != c.shape[1] or (d is not None and c.shape[0] != d):
        want = f"({d}, {d})" if d is not None else "(D, D)"
        raise ValueError(f"{name} must be a square matrix {want}, got shape {tuple(c.shape)}")
    c = c.detach().to(torch.float64)
    if not torch.isfinite(c).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    asym = float((c - c.T).abs().max()) if c.numel() else 0.0
    if asym > 1e-6 * max(float(c.abs().max()), 1e-300):
        raise ValueError(f"{name} must be symmetric (a covariance), but |{name} - {name}.T| "
                         f"reaches {asym:.3g}")
    return c


def _check_vector(mu: Any, name: str) -> torch.Tensor:
    if isinstance(mu, np.ndarray):
        mu = torch.from_numpy(np.ascontiguousarray(mu))
    if not isinstance(mu, torch.Tensor) or mu.ndim != 1:
        got = tuple(mu.shape) if isinstance(mu, torch.Tensor) else type(mu).__name__
        raise ValueError(f"{name} must be a mean vector (D,), got {got}")
    mu = mu.detach().to(torch.float64)
    if not torch.isfinite(mu).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return mu


def frechet_distance(mu1: Any, cov1: Any, mu2: Any, cov2: Any) -> float:
    r"""Squared Frechet (2-Wasserstein) distance between :math:`\mathcal N(\mu_1, \Sigma_1)` and
    :math:`\mathcal N(\mu_2, \Sigma_2)` (module docstring), in float64.

    Args:
        mu1, mu2: means ``(D,)``.
        cov1, cov2: covariances ``(D, D)``, symmetric positive semi-definite (singular allowed).

    Returns:
        ``d^2 >= 0`` as a float (rounding below 0 is clamped: the exact value is never negative).
    """
    mu1, mu2 = _check_vector(mu1, "mu1"), _check_vector(mu2, "mu2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 must have the same shape (D,), got {tuple(mu1.shape)} and "
                         f"{tuple(mu2.shape)}")
    d = mu1.shape[0]
    cov1, cov2 = _check_matrix(cov1, "cov1", d), _check_matrix(cov2, "cov2", d)
    mu2, cov2 = mu2.to(mu1.device), cov2.to(mu1.device)
    with cpu_threads(1):                              # see _threads.py
        return _frechet(mu1, cov1, mu2, cov2, sqrtm_psd(cov1))


def _frechet(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor,
             sqrt_cov1: torch.Tensor) -> float:
    diff = mu1 - mu2
    value = (float(diff @ diff) + float(cov1.trace()) + float(cov2.trace())
             - 2 * trace_sqrt_product(cov1, cov2, sqrt_cov1=sqrt_cov1))
    return max(value, 0.0)


def _check_enough(x: torch.Tensor, name: str) -> None:
    n, d = x.shape
    if n <= d:
        raise ValueError(
            f"{name}: FID needs more samples than feature dimensions, got N={n} samples of D={d} "
            f"features; their covariance has rank <= N - 1 = {n - 1} < D, so it is singular and "
            f"the Gaussian fit meaningless. Pass at least D + 1 = {d + 1} samples (in practice "
            f"several thousand: FID's bias shrinks like 1/N)")


def fid(feat_a: Any, feat_b: Any, *, n_boot: int = 100, level: float = 0.95,
        generator: torch.Generator | None = None) -> MetricResult:
    """Frechet distance between Gaussians fitted to two feature sets, with a bootstrap interval.

    Args:
        feat_a: features of the evaluated samples ``(N_a, D)``; the bootstrap resamples these.
        feat_b: features of the reference set ``(N_b, D)`` (real data), held fixed: the interval
            answers "how much would the number move if I drew my ``N_a`` samples again?".
        n_boot: bootstrap resamples (0: no interval; else >= 20). Each costs one weighted
            ``(D, D)`` covariance and one ``eigh``; ``sqrt(cov_b)`` is computed once.
        level: coverage of the percentile interval.
        generator: draws the resamples (None: seeded with 0, reproducible).

    Returns:
        :class:`MetricResult` named ``"FID"``: ``value`` from all samples, ``sd`` the standard
        deviation of the resampled FIDs and ``ci`` their percentile interval recentred on
        ``value`` (resampled FIDs sit above ``value``: a resample holds about 63% distinct
        samples and FID grows as samples shrink; see ``_checks.bootstrap_interval``). ``ci``
        says where the FID of another ``N_a`` samples would fall; it is *not* an interval for
        the FID of infinitely many samples, which lies below (:func:`fid_infinity`).
    """
    a, b = as_features(feat_a, "feat_a"), as_features(feat_b, "feat_b")
    same_dim(a, b, ("feat_a", "feat_b"))
    _check_enough(a, "feat_a")
    _check_enough(b, "feat_b")
    n_boot, level = check_n_boot(n_boot), check_level(level)
    b = b.to(a.device)
    g = make_generator(generator) if n_boot else None
    with cpu_threads(1):                              # see _threads.py
        return _fid(a, b, n_boot, level, g)


def _fid(a: torch.Tensor, b: torch.Tensor, n_boot: int, level: float,
         g: torch.Generator | None) -> MetricResult:
    mu_a, cov_a = gaussian_stats(a)
    mu_b, cov_b = gaussian_stats(b)
    sqrt_b = sqrtm_psd(cov_b)
    value = _frechet(mu_b, cov_b, mu_a, cov_a, sqrt_b)
    ci = sd = None
    if n_boot:
        n = a.shape[0]
        ac = a - mu_a                                     # centred once: no cancellation below
        reps = torch.empty(n_boot, dtype=torch.float64)
        for r in range(n_boot):
            counts = torch.bincount(torch.randint(n, (n,), generator=g), minlength=n)
            w = counts.to(a.device, torch.float64)        # (N_a,) multiplicity of each sample
            m = w @ ac / n                                # resample mean (centred)
            cov = (ac.T * w) @ ac / (n - 1) - torch.outer(m, m) * (n / (n - 1))
            reps[r] = _frechet(mu_b, cov_b, mu_a + m, cov, sqrt_b)
        ci = bootstrap_interval(reps, value, level, lower=0.0)
        sd = float(reps.std(correction=1))
    method = f"recentred percentile bootstrap, {n_boot} resamples" if n_boot else ""
    return MetricResult("FID", value, a.shape[0], b.shape[0], ci=ci, sd=sd, level=level,
                        method=method)


@dataclass(frozen=True)
class FIDInfinity:
    """FID's dependence on the sample size, measured and extrapolated (Chong & Forsyth 2020).

    ``FID_n ~ value + slope / n``: ``value`` estimates the FID of infinitely many generated
    samples against the reference set; ``slope`` (> 0 in practice) is the bias a set of ``n``
    samples adds, ``slope / n``.

    Attributes:
        value: the intercept of the line fitted to ``(1/n, FID_n)``, i.e. at ``1/n -> 0``.
        slope: its slope.
        ns: the subset sizes used.
        fids: FID of a random subset of each size against the full reference set.
        n_real: the number of reference samples (their own finite-sample bias stays in
            ``value``).
    """

    value: float
    slope: float
    ns: tuple[int, ...]
    fids: tuple[float, ...]
    n_real: int

    def predict(self, n: int) -> float:
        """The fitted line at ``n`` samples: ``value + slope / n``."""
        return self.value + self.slope / check_int(n, "n", minimum=1)

    def __str__(self) -> str:
        return (f"FID_inf {self.value:.4g} (FID_n = {self.value:.4g} + {self.slope:.4g} / n, "
                f"fitted on n = {self.ns[0]:,}..{self.ns[-1]:,}; n_real={self.n_real:,})")


def fit_inverse_n(ns: Any, values: Any) -> tuple[float, float]:
    """Least-squares line ``values ~ intercept + slope / ns``; returns ``(intercept, slope)``."""
    x = 1.0 / np.asarray(ns, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(np.unique(x)) < 2:
        raise ValueError(f"ns and values must be two sequences of the same length with at least "
                         f"2 distinct sizes, got ns={list(ns)!r} and {len(y)} values")
    design = np.stack([np.ones_like(x), x], axis=1)       # (K, 2)
    (intercept, slope), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(intercept), float(slope)


def fid_infinity(feat_gen: Any, feat_real: Any, *, ns: Any = None, n_points: int = 10,
                 generator: torch.Generator | None = None) -> FIDInfinity:
    """Measure FID's bias with the sample size and extrapolate it away (Chong & Forsyth 2020).

    For each size ``n`` in ``ns`` a random subset of ``n`` generated samples (without
    replacement) is compared with the full reference set; a line in ``1/n`` is fitted to the
    points and its value at ``1/n -> 0`` returned. Comparing models by this value removes the
    advantage of evaluating on more samples; the points themselves show how large the bias is.

    Args:
        feat_gen: generated-sample features ``(N, D)``.
        feat_real: reference features ``(N_real, D)``.
        ns: subset sizes (each in ``D + 1 .. N``); default ``n_points`` sizes evenly spaced in
            ``1/n`` from ``max(2 D, N / 5)`` to ``N``.
        n_points: number of default sizes (>= 2).
        generator: draws the subsets (None: seeded with 0).
    """
    a, b = as_features(feat_gen, "feat_gen"), as_features(feat_real, "feat_real")
    same_dim(a, b, ("feat_gen", "feat_real"))
    _check_enough(b, "feat_real")
    n, d = a.shape
    if ns is None:
        n_points = check_int(n_points, "n_points", minimum=2)
        lo = max(2 * d, n // 5)
        if lo >= n:
            raise ValueError(f"feat_gen: fid_infinity needs N > 2 D samples to fit a line over "
                             f"several sizes, got N={n} with D={d}; pass at least {2 * d + 1} "
                             f"(or explicit ns)")
        inv = np.linspace(1.0 / lo, 1.0 / n, n_points)   # even in 1/n, as the fit
        ns = sorted({int(round(1.0 / v)) for v in inv})
    else:
        ns = sorted({check_int(v, "ns[i]", minimum=1) for v in ns})
        if len(ns) < 2 or ns[0] <= d or ns[-1] > n:
            raise ValueError(f"ns must hold at least 2 distinct sizes in {d + 1}..{n} (more "
                             f"samples than the D={d} features, at most N={n}), got {ns}")
    g = make_generator(generator)
    b = b.to(a.device)
    fids = []
    with cpu_threads(1):                              # see _threads.py
        mu_b, cov_b = gaussian_stats(b)
        sqrt_b = sqrtm_psd(cov_b)
        for size in ns:
            idx = torch.randperm(n, generator=g)[:size].to(a.device)
            mu, cov = gaussian_stats(a[idx])
            fids.append(_frechet(mu_b, cov_b, mu, cov, sqrt_b))
    value, slope = fit_inverse_n(ns, fids)
    return FIDInfinity(value=value, slope=slope, ns=tuple(ns), fids=tuple(fids), n_real=len(b))
