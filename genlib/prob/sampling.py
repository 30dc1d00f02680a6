r"""Three ways to turn uniform random numbers into samples of a distribution.

- :func:`sample_inverse_cdf`: if :math:`U \sim \mathcal U(0, 1)` then
  :math:`F^{-1}(U)` has CDF :math:`F` (the *inverse transform*); exact whenever the inverse CDF
  is available in closed form (exponential, logistic, Cauchy, ...).
- :func:`rejection_sample`: draw :math:`x \sim q`, keep it with probability
  :math:`\tilde p(x) / (M q(x))`; the kept points follow :math:`p \propto \tilde p` exactly as
  long as :math:`\tilde p \le M q` everywhere, and a fraction :math:`Z_p / M` is kept
  (:math:`1/M` when :math:`\tilde p` is normalised).
- :func:`reparameterize`: :math:`z = \mu + \sigma \epsilon`, :math:`\epsilon \sim \mathcal N(0, I)`,
  the sample written as a differentiable function of the parameters (Kingma & Welling 2014),
  which is what lets a VAE's encoder be trained by backpropagation (chapter 4).

Every function takes an explicit ``torch.Generator``, so a seed reproduces its draws exactly.
Taught in chapter 2 ("Sampling").
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from genlib.prob._checks import as_tensor, broadcast_shape, positive_int

__all__ = ["rejection_sample", "reparameterize", "sample_inverse_cdf"]


def sample_inverse_cdf(icdf: Callable[[torch.Tensor], torch.Tensor], n: int, *,
                       generator: torch.Generator | None = None,
                       device: torch.device | str | None = None,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""``n`` samples ``icdf(U)`` with ``U ~ Uniform(0, 1)``: inverse-transform sampling.

    Example: ``sample_inverse_cdf(lambda u: -torch.log1p(-u) / rate, n)`` draws
    ``Exponential(rate)`` (:math:`F^{-1}(u) = -\log(1 - u)/\lambda`).

    ``torch.rand`` returns values in ``[0, 1)``; a 0 (probability ``2^-24`` per draw in
    float32: it does happen in a million draws) is replaced by the smallest positive float, so
    ``U`` lies in the open interval ``(0, 1)`` and inverse CDFs with an infinite tail, such as
    the normal's, never return ``-inf``.

    Args:
        icdf: the inverse CDF :math:`F^{-1}`, applied elementwise to a ``(n,)`` tensor.
        n: number of samples (>= 1).
        generator: source of the uniforms (on ``device``).
        device, dtype: of the uniforms (and usually of the samples).

    Returns:
        ``(n,)`` samples (whatever ``icdf`` returns for a ``(n,)`` input).
    """
    n = positive_int(n, "n")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    u = torch.rand(n, generator=generator, device=device, dtype=dtype)
    u = u.clamp(min=torch.finfo(dtype).tiny)
    return icdf(u)


def rejection_sample(log_target: Callable[[torch.Tensor], torch.Tensor],
                     proposal_sample: Callable[[int, torch.Generator | None], torch.Tensor],
                     proposal_log_prob: Callable[[torch.Tensor], torch.Tensor],
                     log_M: float, n: int, *, generator: torch.Generator | None = None,
                     max_rounds: int = 1000, check_envelope: bool = True
                     ) -> tuple[torch.Tensor, float]:
    r"""Rejection sampling of ``n`` points from :math:`p(x) \propto \tilde p(x)`.

    Each round proposes a batch :math:`x_i \sim q` and accepts :math:`x_i` when

    .. math::  \log u_i < \log\tilde p(x_i) - \log M - \log q(x_i), \qquad u_i \sim \mathcal U(0,1)

    (von Neumann 1951). Accepted points are exact, independent draws from :math:`p` provided
    :math:`\tilde p(x) \le M q(x)` for every :math:`x`; the expected acceptance rate is
    :math:`Z / M` with :math:`Z = \int \tilde p`, i.e. :math:`1/M` for a normalised target.
    Batches are sized from the acceptance rate seen so far, so the number of rounds stays small.

    Args:
        log_target: :math:`\log\tilde p(x)`, ``(b, ...) -> (b,)``; may be unnormalised.
        proposal_sample: ``proposal_sample(b, generator) -> (b, ...)`` draws from ``q``.
        proposal_log_prob: :math:`\log q(x)`, ``(b, ...) -> (b,)``.
        log_M: :math:`\log M`, the envelope constant.
        n: number of samples wanted (>= 1).
        generator: used for the proposals (passed on) and for the uniforms (on the proposals'
            device).
        max_rounds: give up (RuntimeError) after this many batches.
        check_envelope: raise a ValueError if some proposal has
            :math:`\log\tilde p(x) - \log q(x) > \log M` (the bound is violated, so the samples
            would be wrong); a relative slack of ``1e-6`` allows for rounding.

    Returns:
        ``(samples, acceptance_rate)``: the first ``n`` accepted points ``(n, ...)`` and the
        fraction of all proposals that were accepted.
    """
    n = positive_int(n, "n")
    max_rounds = positive_int(max_rounds, "max_rounds")
    log_M = float(log_M)
    if not math.isfinite(log_M):
        raise ValueError(f"log_M must be a finite number, got {log_M}")
    accepted: list[torch.Tensor] = []
    n_accepted, n_proposed = 0, 0
    for _ in range(max_rounds):
        remaining = n - n_accepted
        rate = n_accepted / n_proposed if n_accepted else 0.0
        # propose about 1.2x what the observed rate needs (at most 100x the remaining number)
        size = remaining if rate == 0 else min(math.ceil(1.2 * remaining / rate) + 8,
                                               100 * remaining)
        x = proposal_sample(size, generator)
        log_ratio = log_target(x) - proposal_log_prob(x) - log_M          # (size,), <= 0
        if log_ratio.shape != (size,):
            raise ValueError(f"log_target and proposal_log_prob must return shape ({size},) for "
                             f"{size} proposals, got {tuple(log_ratio.shape)}")
        if check_envelope:
            worst = log_ratio.max().item()
            if worst > 1e-6 * max(1.0, abs(log_M)):
                raise ValueError(
                    f"log_M={log_M} is too small: log_target(x) - proposal_log_prob(x) reached "
                    f"{worst + log_M:.6g} for some proposals, so M q(x) does not bound the "
                    f"target; use log_M >= the maximum of log_target - proposal_log_prob")
        u = torch.rand(size, generator=generator, device=x.device, dtype=torch.float64)
        keep = torch.log(u) < log_ratio.to(torch.float64)
        n_proposed += size
        n_accepted += int(keep.sum())
        accepted.append(x[keep])
        if n_accepted >= n:
            return torch.cat(accepted)[:n], n_accepted / n_proposed
    raise RuntimeError(f"rejection_sample accepted only {n_accepted} of {n} points in "
                       f"max_rounds={max_rounds} rounds (acceptance rate "
                       f"{n_accepted / n_proposed:.3g}); a tighter proposal or a smaller log_M "
                       f"would help")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    r"""A sample :math:`z = \mu + e^{\mathrm{logvar}/2} \odot \epsilon`,
    :math:`\epsilon \sim \mathcal N(0, I)`, differentiable in ``mu`` and ``logvar``.

    Args:
        mu, logvar: tensors that broadcast (e.g. both ``(B, D)`` from an encoder).
        generator: source of ``eps`` (on ``mu``'s device); same seed, same ``z``.

    Returns:
        ``z`` of the broadcast shape, ``mu``'s dtype and device.
    """
    if not isinstance(mu, torch.Tensor):
        raise TypeError(f"mu must be a tensor, got {type(mu).__name__}")
    mu = as_tensor(mu, "mu")
    logvar = as_tensor(logvar, "logvar", mu)
    shape = broadcast_shape(mu=mu, logvar=logvar)
    eps = torch.randn(shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps
