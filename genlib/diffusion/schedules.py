r"""Noise schedules of discrete-time diffusion: every quantity of the forward process, per step.

A schedule is the sequence :math:`\beta_t` of noise variances added at each step; the rest
follows from it (Ho et al. 2020, eqs. 4, 6, 7):

.. math::  \alpha_t = 1 - \beta_t, \qquad \bar\alpha_t = \prod_{s \le t} \alpha_s, \qquad
           q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\, x_0,\ (1 - \bar\alpha_t) I\big)

.. math::  q(x_{t-1} \mid x_t, x_0) = \mathcal N\big(\tilde\mu_t, \tilde\beta_t I\big), \quad
           \tilde\mu_t = \underbrace{\frac{\beta_t \sqrt{\bar\alpha_{t-1}}}{1 - \bar\alpha_t}}
           _{\texttt{posterior\_mean\_coef1}} x_0
           + \underbrace{\frac{(1 - \bar\alpha_{t-1}) \sqrt{\alpha_t}}{1 - \bar\alpha_t}}
           _{\texttt{posterior\_mean\_coef2}} x_t, \quad
           \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t} \beta_t

**Indexing.** Timesteps are 0-based, as in improved-diffusion and diffusers: index ``t`` in
``[0, T-1]`` is the paper's step ``t + 1``. So ``alpha_bars[0] = 1 - betas[0]`` (one step of noise)
and ``alpha_bars_prev[0] = 1`` (the step before the first is the clean image: the posterior at
``t = 0`` is a point mass on ``x0``, with variance 0).

**Precision.** All tensors are float64 on the CPU and are cast to the data's dtype and device only
at use (:mod:`genlib.diffusion.process`). In float32 the products :math:`\bar\alpha_t` of a
thousand factors near 1 and the differences :math:`1 - \bar\alpha_t` near ``t = 0`` lose digits
that the posterior coefficients need. The products are formed as sums of logs
(:func:`alpha_bars_from_betas`) and inverted with ``expm1`` (:func:`betas_from_alpha_bars`), so the
two conversions invert each other to about 1e-15.

Two families (:func:`make_schedule`):

- ``"linear"``: :math:`\beta_t` evenly spaced from ``beta_start = 1e-4`` to ``beta_end = 0.02``
  over ``T = 1000`` steps (Ho et al. 2020, sec. 4).
- ``"cosine"``: :math:`\bar\alpha(t) = f(t) / f(0)`, :math:`f(t) = \cos^2\big(\frac{t/T + s}{1 + s}
  \frac{\pi}{2}\big)` with ``s = 0.008``, and :math:`\beta_t = \min(1 - \bar\alpha(t+1) /
  \bar\alpha(t),\ \text{max\_beta})` (Nichol & Dhariwal 2021, eq. 17; the clipping at 0.999
  keeps the last step from being all noise, :math:`\beta = 1`). This is diffusers'
  ``"squaredcos_cap_v2"``.

:func:`respace` keeps a subsequence of the steps, for sampling in fewer steps (Nichol & Dhariwal
2021, sec. 4). Taught in chapter 6, "Noise schedules".
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["SCHEDULES", "NoiseSchedule", "make_schedule", "alpha_bars_from_betas",
           "betas_from_alpha_bars", "respace"]

SCHEDULES = ("linear", "cosine")


def _as_float64_vector(name: str, values: torch.Tensor | Sequence[float]) -> torch.Tensor:
    # a list of Python floats must become float64 directly (as_tensor would round to float32)
    v = values if isinstance(values, torch.Tensor) else torch.as_tensor(values,
                                                                        dtype=torch.float64)
    if v.is_complex() or not (v.is_floating_point() or v.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must hold real numbers; got dtype {v.dtype}")
    v = v.detach().to(device="cpu", dtype=torch.float64)
    if v.ndim != 1 or v.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of shape (T,); got shape "
                         f"{tuple(v.shape)}")
    return v


def alpha_bars_from_betas(betas: torch.Tensor | Sequence[float]) -> torch.Tensor:
    r""":math:`\bar\alpha_t = \prod_{s \le t} (1 - \beta_s)`, float64 ``(T,)``.

    Computed as ``exp(cumsum(log1p(-betas)))``: the sum of logs keeps the relative precision of
    each tiny :math:`\beta_s` (``1 - 1e-4`` rounds; ``log1p(-1e-4)`` does not).

    Args:
        betas: ``(T,)`` noise variances, each in ``(0, 1)``.
    """
    b = _as_float64_vector("betas", betas)
    if not bool(((b > 0) & (b < 1)).all()):
        raise ValueError(f"betas must all lie in (0, 1); got values in [{b.min().item():.6g}, "
                         f"{b.max().item():.6g}]")
    return torch.exp(torch.cumsum(torch.log1p(-b), dim=0))


def betas_from_alpha_bars(alpha_bars: torch.Tensor | Sequence[float]) -> torch.Tensor:
    r"""Invert :func:`alpha_bars_from_betas`: :math:`\beta_t = 1 - \bar\alpha_t / \bar\alpha_{t-1}`
    with :math:`\bar\alpha_{-1} = 1`, float64 ``(T,)``.

    Computed as ``-expm1(log abar_t - log abar_{t-1})`` so a ratio close to 1 keeps its digits.

    Args:
        alpha_bars: ``(T,)`` strictly decreasing values in ``(0, 1)``.
    """
    a = _as_float64_vector("alpha_bars", alpha_bars)
    if not bool(((a > 0) & (a < 1)).all()):
        raise ValueError(f"alpha_bars must all lie in (0, 1); got values in "
                         f"[{a.min().item():.6g}, {a.max().item():.6g}]")
    if a.numel() > 1 and not bool((a[1:] < a[:-1]).all()):
        i = int(torch.nonzero(a[1:] >= a[:-1])[0, 0]) + 1
        raise ValueError(f"alpha_bars must be strictly decreasing (every beta in (0, 1)); got "
                         f"alpha_bars[{i}] = {a[i].item():.6g} >= alpha_bars[{i - 1}] = "
                         f"{a[i - 1].item():.6g}")
    log_a = torch.log(a)
    log_prev = torch.cat([torch.zeros(1, dtype=torch.float64), log_a[:-1]])
    return -torch.expm1(log_a - log_prev)


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    r"""Every per-step quantity of a discrete diffusion, float64 ``(T,)`` tensors on the CPU.

    Build one with :func:`make_schedule`, :meth:`from_betas` or :func:`respace`; the fields are
    derived from ``betas`` and are not meant to be set one by one. Index ``t`` runs over
    ``[0, T-1]`` (the module docstring explains the 0-based convention).

    Attributes:
        betas: :math:`\beta_t`, the variance of the noise added at step ``t``.
        alphas: :math:`\alpha_t = 1 - \beta_t`.
        alpha_bars: :math:`\bar\alpha_t = \prod_{s \le t} \alpha_s`, the signal kept from ``x0``.
        alpha_bars_prev: :math:`\bar\alpha_{t-1}`, with ``alpha_bars_prev[0] = 1``.
        posterior_variance: :math:`\tilde\beta_t` of :math:`q(x_{t-1} \mid x_t, x_0)` (0 at
            ``t = 0``).
        posterior_log_variance_clipped: :math:`\log\tilde\beta_t` with the ``t = 0`` entry
            replaced by :math:`\log\tilde\beta_1` (improved-diffusion's clipping: the log of 0
            is not finite; the value is only used where the ``t = 0`` variance is a modelling
            choice, as in :func:`genlib.diffusion.losses.elbo_weights`). With ``T = 1`` there is
            no :math:`\tilde\beta_1` and the entry is :math:`\log\beta_0`.
        posterior_mean_coef1: the coefficient of ``x0`` in :math:`\tilde\mu_t`.
        posterior_mean_coef2: the coefficient of ``x_t`` in :math:`\tilde\mu_t`.
        timesteps: int64 ``(T,)``: the timestep that a *network* is given at each step. For a
            schedule from :func:`make_schedule` it is ``arange(T)``; after :func:`respace` it
            holds the kept steps of the original schedule, so a network trained on the full
            schedule is asked about the noise level it was trained on (no hidden remapping).
    """

    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bars: torch.Tensor
    alpha_bars_prev: torch.Tensor
    posterior_variance: torch.Tensor
    posterior_log_variance_clipped: torch.Tensor
    posterior_mean_coef1: torch.Tensor
    posterior_mean_coef2: torch.Tensor
    timesteps: torch.Tensor

    def __post_init__(self) -> None:
        T = self.betas.shape[0] if self.betas.ndim == 1 else -1
        for name in ("betas", "alphas", "alpha_bars", "alpha_bars_prev", "posterior_variance",
                     "posterior_log_variance_clipped", "posterior_mean_coef1",
                     "posterior_mean_coef2", "timesteps"):
            v = getattr(self, name)
            want = torch.int64 if name == "timesteps" else torch.float64
            if not isinstance(v, torch.Tensor) or v.dtype != want or v.shape != (T,) or T < 1:
                got = (f"{v.dtype} {tuple(v.shape)}" if isinstance(v, torch.Tensor)
                       else type(v).__name__)
                raise ValueError(f"NoiseSchedule.{name} must be a {want} tensor of shape (T,) "
                                 f"like betas; got {got} (build schedules with make_schedule or "
                                 f"NoiseSchedule.from_betas)")

    @classmethod
    def from_betas(cls, betas: torch.Tensor | Sequence[float],
                   timesteps: torch.Tensor | Sequence[int] | None = None) -> NoiseSchedule:
        """The schedule of the noise variances ``betas`` ``(T,)``, each in ``(0, 1)``.

        ``timesteps`` (default ``arange(T)``) are the network's timesteps of the steps (see the
        class docstring).
        """
        b = _as_float64_vector("betas", betas)
        alpha_bars = alpha_bars_from_betas(b)
        T = b.shape[0]
        if timesteps is None:
            ts = torch.arange(T, dtype=torch.int64)
        else:
            ts = torch.as_tensor(timesteps).to(device="cpu")
            if ts.dtype not in (torch.int32, torch.int64) or ts.shape != (T,):
                raise ValueError(f"timesteps must be T = {T} integers; got dtype {ts.dtype}, "
                                 f"shape {tuple(ts.shape)}")
            ts = ts.to(torch.int64)
        alphas = 1.0 - b
        alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
        # 1 - abar_t is exact in float64 where abar_t >= 1/2 (Sterbenz): no expm1 needed
        one_minus = 1.0 - alpha_bars
        one_minus_prev = torch.cat([torch.zeros(1, dtype=torch.float64), one_minus[:-1]])
        post_var = b * one_minus_prev / one_minus
        clipped = post_var[1:2] if T > 1 else b[:1]
        return cls(
            betas=b,
            alphas=alphas,
            alpha_bars=alpha_bars,
            alpha_bars_prev=alpha_bars_prev,
            posterior_variance=post_var,
            posterior_log_variance_clipped=torch.log(torch.cat([clipped, post_var[1:]])),
            posterior_mean_coef1=b * torch.sqrt(alpha_bars_prev) / one_minus,
            posterior_mean_coef2=one_minus_prev * torch.sqrt(alphas) / one_minus,
            timesteps=ts,
        )

    @property
    def T(self) -> int:
        """The number of steps."""
        return int(self.betas.shape[0])

    def _index(self, t: torch.Tensor | int | Sequence[int] | None) -> torch.Tensor:
        if t is None:
            return torch.arange(self.T)
        from genlib.diffusion.process import check_timesteps  # process imports this module

        return check_timesteps(t, self.T).cpu()

    def snr(self, t: torch.Tensor | int | Sequence[int] | None = None) -> torch.Tensor:
        r"""Signal-to-noise ratio :math:`\bar\alpha_t / (1 - \bar\alpha_t)` at timesteps ``t``
        (all ``T`` when None), float64 of ``t``'s shape. Strictly decreasing in ``t``
        (Kingma et al. 2021, "Variational diffusion models", eq. 2)."""
        a = self.alpha_bars[self._index(t)]
        return a / (1.0 - a)

    def log_snr(self, t: torch.Tensor | int | Sequence[int] | None = None) -> torch.Tensor:
        r""":math:`\log \bar\alpha_t - \log(1 - \bar\alpha_t)` at ``t`` (all when None), float64,
        computed without forming the ratio (finite even where the SNR under- or overflows)."""
        a = self.alpha_bars[self._index(t)]
        return torch.log(a) - torch.log1p(-a)


def _check_T(T: object) -> int:
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ValueError(f"T must be an integer >= 1 (the number of diffusion steps); got {T!r}")
    return int(T)


def _cosine_alpha_bar(u: torch.Tensor, s: float) -> torch.Tensor:
    """``f(u) / f(0)``, ``f(u) = cos^2(((u + s) / (1 + s)) pi / 2)``, ``u = t / T`` in [0, 1]."""
    f = torch.cos((u + s) / (1 + s) * (math.pi / 2)) ** 2
    f0 = math.cos(s / (1 + s) * (math.pi / 2)) ** 2
    return f / f0


def make_schedule(name: str = "linear", T: int = 1000, *, beta_start: float = 1e-4,
                  beta_end: float = 0.02, s: float = 0.008,
                  max_beta: float = 0.999) -> NoiseSchedule:
    r"""A :class:`NoiseSchedule` of ``T`` steps from one of :data:`SCHEDULES`.

    Args:
        name: ``"linear"`` (Ho et al. 2020) or ``"cosine"`` (Nichol & Dhariwal 2021); see the
            module docstring for the formulas.
        T: number of steps, >= 1.
        beta_start, beta_end: first and last :math:`\beta` of ``"linear"``,
            ``0 < beta_start <= beta_end < 1``. Ho et al. chose them for ``T = 1000``; with far
            fewer steps, scale them up (by ``1000 / T``) or the last step is not close to noise.
        s: offset of ``"cosine"``, ``>= 0``: keeps :math:`\beta` away from 0 near ``t = 0``.
        max_beta: clipping of ``"cosine"``'s betas, in ``(0, 1)``.
    """
    if not isinstance(name, str) or name not in SCHEDULES:
        raise ValueError(f"name must be one of {', '.join(map(repr, SCHEDULES))}; got {name!r}")
    T = _check_T(T)
    if name == "linear":
        if not (0.0 < beta_start <= beta_end < 1.0):
            raise ValueError(f"beta_start and beta_end must satisfy 0 < beta_start <= beta_end "
                             f"< 1; got beta_start={beta_start!r}, beta_end={beta_end!r}")
        betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    else:
        if not (0.0 < max_beta < 1.0):
            raise ValueError(f"max_beta must lie in (0, 1); got {max_beta!r}")
        if not (s >= 0.0 and math.isfinite(s)):
            raise ValueError(f"s must be a finite offset >= 0; got {s!r}")
        u = torch.arange(T + 1, dtype=torch.float64) / T
        abar = _cosine_alpha_bar(u, s)
        betas = torch.clamp(1.0 - abar[1:] / abar[:-1], max=max_beta)
    return NoiseSchedule.from_betas(betas)


def respace(schedule: NoiseSchedule,
            timesteps: torch.Tensor | Sequence[int]) -> NoiseSchedule:
    r"""The schedule that jumps straight between the kept steps ``timesteps`` of ``schedule``.

    Keeping :math:`\bar\alpha` at the kept steps fixes every :math:`q(x_t \mid x_0)` the network
    was trained on; the new betas are :math:`\beta'_i = 1 - \bar\alpha_{t_i} / \bar\alpha_{t_{i-1}}`
    (with :math:`\bar\alpha_{t_{-1}} = 1`), so ancestral sampling on the new schedule takes
    ``len(timesteps)`` steps (Nichol & Dhariwal 2021, sec. 4, "Improving sampling speed").
    The result's ``timesteps`` field holds the original timesteps (composed when respacing a
    respaced schedule), which samplers pass to the network.

    Args:
        schedule: the schedule to thin.
        timesteps: strictly increasing indices into ``schedule``, in ``[0, T-1]``, at least one
            (for example :func:`genlib.diffusion.samplers.timestep_subsequence`).
    """
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule; got {type(schedule).__name__}")
    ts = torch.as_tensor(timesteps)
    if ts.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
        raise ValueError(f"timesteps must be integers (indices into the schedule); got dtype "
                         f"{ts.dtype}")
    ts = ts.to(device="cpu", dtype=torch.int64)
    if ts.ndim != 1 or ts.numel() == 0:
        raise ValueError(f"timesteps must be a non-empty 1-D sequence; got shape "
                         f"{tuple(ts.shape)}")
    bad = ts[(ts < 0) | (ts >= schedule.T)]
    if bad.numel():
        raise ValueError(f"timesteps must lie in [0, T-1] = [0, {schedule.T - 1}]; got "
                         f"{bad[:5].tolist()}")
    if ts.numel() > 1 and not bool((ts[1:] > ts[:-1]).all()):
        i = int(torch.nonzero(ts[1:] <= ts[:-1])[0, 0]) + 1
        raise ValueError(f"timesteps must be strictly increasing; got timesteps[{i - 1}] = "
                         f"{int(ts[i - 1])}, timesteps[{i}] = {int(ts[i])}")
    betas = betas_from_alpha_bars(schedule.alpha_bars[ts])
    return NoiseSchedule.from_betas(betas, timesteps=schedule.timesteps[ts])
