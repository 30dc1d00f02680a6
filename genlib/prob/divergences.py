r"""Divergences between distributions: from probability vectors, and from samples.

**Discrete distributions** are probability vectors on the last dimension, ``(..., K)``: entries
``>= 0`` that sum to one. All values are in nats, with the convention :math:`0 \log 0 = 0`.

.. math::

   H(p) = -\sum_k p_k \log p_k, \qquad
   H(p, q) = -\sum_k p_k \log q_k, \qquad
   \mathrm{KL}(p \,\|\, q) = \sum_k p_k \log\frac{p_k}{q_k} = H(p, q) - H(p),

   \mathrm{JS}(p, q) = \tfrac12 \mathrm{KL}(p \,\|\, m) + \tfrac12 \mathrm{KL}(q \,\|\, m),
   \quad m = \tfrac12 (p + q), \qquad 0 \le \mathrm{JS} \le \log 2.

KL is ``+inf`` when ``q`` puts zero mass where ``p`` does not; JS never is (it is the divergence
the original GAN minimises, chapter 5).

**Samples.** When only samples are available (a generator's outputs, chapter 8):

- :func:`wasserstein_1d`: the earth mover's distance between two 1D empirical distributions,
  :math:`W_1 = \int |F_x(t) - F_y(t)|\,dt`.
- :func:`mmd`: the squared maximum mean discrepancy with a Gaussian (RBF) kernel
  (Gretton et al. 2012), the statistic behind KID.

Taught in chapter 2 ("Entropy, KL and other divergences").
"""

from __future__ import annotations

import torch

from genlib.prob._checks import broadcast_shape

__all__ = [
    "cross_entropy",
    "entropy",
    "js_divergence",
    "kl_divergence",
    "mmd",
    "wasserstein_1d",
]


# ------------------------------------------------------------------- probability vectors
def _sum_tolerance(dtype: torch.dtype) -> float:
    """How far from 1 a sum of probabilities may be: ``sqrt(eps)`` of the dtype (``3.5e-4`` for
    float32, ``1.5e-8`` for float64) but at least ``1e-6``: room for rounding, none for a bug."""
    return max(torch.finfo(dtype).eps ** 0.5, 1e-6)


def _check_probs(p: torch.Tensor, name: str) -> torch.Tensor:
    """``p`` must be a floating tensor ``(..., K)`` of probability vectors."""
    if not isinstance(p, torch.Tensor) or not p.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor of probability vectors (..., K), got "
                        f"{getattr(p, 'dtype', type(p).__name__)}")
    if p.ndim < 1 or p.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., K) with K >= 1, got {tuple(p.shape)}")
    if not bool(((p >= 0) & (p <= 1)).all()):
        bad = p[~((p >= 0) & (p <= 1))].flatten()[:3].tolist()
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values such as {bad}")
    sums = p.sum(-1)
    off = (sums - 1).abs() > _sum_tolerance(p.dtype)
    if bool(off.any()):
        bad = sums[off].flatten()[:3].tolist()
        raise ValueError(f"{name} must sum to 1 over its last dimension (K={p.shape[-1]}), got "
                         f"sums such as {bad}; normalise with {name} / {name}.sum(-1, "
                         f"keepdim=True) or use softmax")
    return p


def _check_pair(p: torch.Tensor, q: torch.Tensor) -> None:
    _check_probs(p, "p")
    _check_probs(q, "q")
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(f"p and q must have the same number of outcomes K on the last "
                         f"dimension, got p {tuple(p.shape)} and q {tuple(q.shape)}")
    broadcast_shape(p=p, q=q)


def _kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Unchecked ``sum_k p_k (log p_k - log q_k)`` with ``0 log 0 = 0``.

    Written as ``p * (log p - log q)`` rather than ``p log p - p log q`` so that nearly equal
    ``p`` and ``q`` give a nearly zero result instead of the difference of two large numbers.
    Terms with ``p_k = 0`` are masked *before* the log, so they carry no NaN into gradients.
    """
    pos = p > 0
    p_s, q_s = torch.where(pos, p, 1.0), torch.where(pos, q, 1.0)
    return torch.where(pos, p_s * (torch.log(p_s) - torch.log(q_s)), 0.0).sum(-1)


def entropy(p: torch.Tensor) -> torch.Tensor:
    r"""Shannon entropy :math:`H(p) = -\sum_k p_k \log p_k` in nats: ``(..., K) -> (...)``.

    Between 0 (a point mass) and :math:`\log K` (the uniform distribution).
    """
    _check_probs(p, "p")
    return -torch.xlogy(p, p).sum(-1)


def cross_entropy(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r"""Cross-entropy :math:`H(p, q) = -\sum_k p_k \log q_k = H(p) + \mathrm{KL}(p \| q)` in nats.

    The expected code length (in nats) of outcomes from ``p`` coded for ``q``; the
    maximum-likelihood loss is its empirical version. ``(..., K), (..., K) -> (...)`` with
    broadcasting.
    """
    _check_pair(p, q)
    return -torch.xlogy(p, q).sum(-1)


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(p \| q) = \sum_k p_k \log(p_k / q_k)`.

    ``>= 0`` (Gibbs' inequality), zero exactly when ``p == q``, not symmetric, ``+inf`` where
    ``q_k = 0 < p_k``. ``(..., K), (..., K) -> (...)`` in nats, with broadcasting.
    """
    _check_pair(p, q)
    return _kl(p, q)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r"""Jensen-Shannon divergence :math:`\tfrac12\mathrm{KL}(p\|m) + \tfrac12\mathrm{KL}(q\|m)`,
    :math:`m = (p+q)/2`.

    Symmetric, bounded by :math:`\log 2` (reached for disjoint supports), and finite even when
    the supports differ. ``(..., K), (..., K) -> (...)`` in nats.
    """
    _check_pair(p, q)
    # KL(p || m) = sum p log(2p / (p + q)). Written with s = p + q instead of m = s / 2: halving
    # the smallest subnormal number rounds it to 0, which would make a positive q meet m = 0 and
    # the divergence infinite (found by the property test).
    s = p + q
    kl_pm = (torch.xlogy(p, 2 * p) - torch.xlogy(p, s)).sum(-1)
    kl_qm = (torch.xlogy(q, 2 * q) - torch.xlogy(q, s)).sum(-1)
    return 0.5 * kl_pm + 0.5 * kl_qm


# ------------------------------------------------------------------------------- samples
def _check_samples_1d(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor of 1D samples (N,), got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != 1 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N,) with N >= 1, got {tuple(x.shape)}")
    return x


def wasserstein_1d(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Wasserstein-1 distance between the empirical distributions of two 1D samples.

    .. math::  W_1(\hat P_x, \hat P_y) = \int_{-\infty}^{\infty} |F_x(t) - F_y(t)|\,dt

    with :math:`F_x, F_y` the empirical CDFs (steps of height ``1/N`` and ``1/M``). Both CDFs are
    constant between consecutive points of the pooled sorted sample, so the integral is a finite
    sum over those gaps; sizes may differ. For equal sizes it reduces to
    ``mean(|sort(x) - sort(y)|)``. Differentiable in the sample values.

    Args:
        x: ``(N,)`` samples.
        y: ``(M,)`` samples.

    Returns:
        A scalar tensor (in the units of the samples).
    """
    x, y = _check_samples_1d(x, "x"), _check_samples_1d(y, "y")
    dtype = torch.promote_types(x.dtype, y.dtype)
    x, y = x.to(dtype), y.to(dtype)
    pooled, _ = torch.sort(torch.cat([x, y]))                          # (N + M,)
    gaps = pooled[1:] - pooled[:-1]                                    # (N + M - 1,)
    t = pooled[:-1].detach()                                           # left end of each gap
    # F(t) = #{samples <= t} / N, counted by binary search in the sorted sample
    cdf_x = torch.searchsorted(torch.sort(x.detach())[0], t, right=True).to(dtype) / x.shape[0]
    cdf_y = torch.searchsorted(torch.sort(y.detach())[0], t, right=True).to(dtype) / y.shape[0]
    return ((cdf_x - cdf_y).abs() * gaps).sum()


def _check_samples_nd(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor of samples (N, D) or (N,), got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D) or (N,), got {tuple(x.shape)}; "
                         f"flatten images first, e.g. x.flatten(1)")
    return x


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances ``(N, D), (M, D) -> (N, M)``, by
    ``|a|^2 + |b|^2 - 2 a.b`` (one matrix product); clamped at 0, where rounding can leave a
    tiny negative number for nearly equal points."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return sq.clamp_min(0)


def mmd(x: torch.Tensor, y: torch.Tensor, *, bandwidth: float | None = None,
        unbiased: bool = True) -> torch.Tensor:
    r"""Squared maximum mean discrepancy between two samples with a Gaussian (RBF) kernel.

    .. math::  k(a, b) = \exp\!\Big(-\frac{\|a - b\|^2}{2 h^2}\Big), \qquad
               \mathrm{MMD}^2 = \mathbb E\,k(x, x') + \mathbb E\,k(y, y') - 2\,\mathbb E\,k(x, y)

    (Gretton et al. 2012, eq. 3). It is zero exactly when the two distributions are equal (the
    RBF kernel is characteristic).

    - ``unbiased=True``: the U-statistic (their eq. 5), averaging ``k(x_i, x_j)`` over ``i != j``
      only. Its expectation is exactly ``MMD^2``, so it is about 0 (and often negative) for two
      samples of one distribution.
    - ``unbiased=False``: the V-statistic, which keeps the diagonal ``k(x_i, x_i) = 1``; it is the
      squared distance between the two mean embeddings, hence ``>= 0``, but biased upwards by
      about ``(1 - E k(x, x'))/N + (1 - E k(y, y'))/M``.

    Args:
        x: ``(N, D)`` samples (``(N,)`` is read as ``D = 1``).
        y: ``(M, D)`` samples.
        bandwidth: the kernel width ``h > 0``. ``None``: the median heuristic, ``h`` = the median
            distance between distinct points of the pooled sample (Gretton et al. 2012, sec. 8).
        unbiased: the U-statistic (True) or the V-statistic (False).

    Returns:
        A scalar tensor. Memory is ``O((N + M)^2)``: use a few thousand points at most.
    """
    x, y = _check_samples_nd(x, "x"), _check_samples_nd(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension D, got x {tuple(x.shape)} and "
                         f"y {tuple(y.shape)}")
    n, m = x.shape[0], y.shape[0]
    need = 2 if unbiased else 1
    if n < need or m < need:
        raise ValueError(f"mmd(unbiased={unbiased}) needs at least {need} samples in each of x "
                         f"and y, got N={n} and M={m}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    x, y = x.to(dtype), y.to(dtype)
    d_xx, d_yy, d_xy = _sq_dists(x, x), _sq_dists(y, y), _sq_dists(x, y)
    d_xx.fill_diagonal_(0)                                              # exactly, not ~1e-7
    d_yy.fill_diagonal_(0)
    if bandwidth is None:
        pooled = torch.cat([x, y])
        d = _sq_dists(pooled, pooled)
        i, j = torch.triu_indices(n + m, n + m, offset=1, device=d.device)
        h2 = d[i, j].median().detach()                                 # median squared distance
        if not h2 > 0:
            raise ValueError("bandwidth=None: the median distance between the pooled points is "
                             "0 (most points coincide); pass bandwidth > 0 explicitly")
    else:
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, int | float) or not (
                bandwidth > 0):
            raise ValueError(f"bandwidth must be a number > 0 or None, got {bandwidth!r}")
        h2 = torch.tensor(float(bandwidth) ** 2, dtype=dtype, device=x.device)
    k_xx, k_yy, k_xy = (torch.exp(-d / (2 * h2)) for d in (d_xx, d_yy, d_xy))
    if unbiased:
        # drop the diagonal k(x_i, x_i) = 1: average over the n (n - 1) pairs i != j
        e_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
        e_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    else:
        e_xx, e_yy = k_xx.mean(), k_yy.mean()
    return e_xx + e_yy - 2 * k_xy.mean()
