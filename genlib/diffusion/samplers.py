r"""Samplers for discrete-time diffusion: ancestral DDPM and DDIM, one signature for both.

Every sampler is a function of the network, in the style of k-diffusion's samplers::

    x0 = sampler(model, x_T, *, schedule, steps=None, parameterization="eps", generator=None,
                 callback=None, clip_x0=True, <sampler's own options>)

- ``model(x_t, t) -> prediction`` with ``x_t`` ``(B, ...)`` and ``t`` ``(B,)`` int64; it never
  sees the schedule. Put it in ``eval()`` mode first; sampling runs under ``torch.no_grad()``.
- ``x_T`` ``(B, ...)``: the starting noise, usually ``torch.randn(shape, generator=g)``.
- ``steps``: the number of network evaluations. Fewer than ``schedule.T`` runs the sampler on
  :func:`~genlib.diffusion.schedules.respace` of the schedule at :func:`timestep_subsequence`;
  the network is asked about the original timesteps.
- ``callback(info)`` is called once per step with the dict ``{"i": step number from 0, "t":
  the network's timestep (int), "x": x_t before the step, "x0_pred": the clean-data estimate}``,
  so a notebook can plot the trajectory without touching the sampler.
- ``clip_x0``: clamp the clean-data estimate to ``[-1, 1]`` (data scaled to ``[-1, 1]``, as
  images are here); turn it off for data that is not.

One step of each is a pure function of a prediction (:func:`ddpm_step`, :func:`ddim_step`), as
diffusers' ``scheduler.step``: the samplers are the loop around it, written out.

Taught in chapter 6, "Sampling: DDPM" and "Fast sampling: DDIM".
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import torch

from genlib.diffusion.process import (
    _batch_t,
    _check_data,
    _check_schedule,
    _gather,
    _randn_like,
    _same_shape,
    check_parameterization,
    convert,
    eps_from_x0,
)
from genlib.diffusion.schedules import NoiseSchedule, respace

__all__ = ["VARIANCES", "StepOutput", "timestep_subsequence", "ddpm_step", "ddim_step",
           "sample_ddpm", "sample_ddim"]

VARIANCES = ("posterior", "beta")

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[dict[str, Any]], Any]


class StepOutput(NamedTuple):
    """One reverse step: ``x_prev = mean + std * noise``; every field ``(B, ...)``."""

    x_prev: torch.Tensor  # the sample at the previous step (the mean when no noise was given)
    x0_pred: torch.Tensor  # the clean-data estimate the step used (after clipping)
    mean: torch.Tensor
    std: torch.Tensor


def _check_int(name: str, value: object, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}] ({what}); got {value!r}")
    return int(value)


def timestep_subsequence(T: int, steps: int) -> torch.Tensor:
    r"""``steps`` evenly spaced timesteps of ``[0, T-1]``, increasing, int64 ``(steps,)``.

    :math:`t_k = \mathrm{round}\big((k + 1)\, T / \mathrm{steps}\big) - 1`, ``k = 0 .. steps-1``
    (round half to even): the last is always ``T - 1``, the noisiest step, where ``x_T`` is
    closest to pure noise, and the spacing is ``T / steps``. This is diffusers'
    ``timestep_spacing="trailing"``, recommended by Lin et al. (2024, table 2) over schemes that
    never visit ``T - 1``. ``steps = T`` gives ``arange(T)``.
    """
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ValueError(f"T must be an integer >= 1; got {T!r}")
    steps = _check_int("steps", steps, 1, int(T), "the number of sampling steps, at most T")
    k = torch.arange(1, steps + 1, dtype=torch.float64)
    return torch.round(k * (T / steps)).to(torch.int64) - 1


def _sampling_schedule(schedule: NoiseSchedule, steps: int | None) -> NoiseSchedule:
    _check_schedule(schedule)
    if steps is None:
        return schedule
    steps = _check_int("steps", steps, 1, schedule.T, "the number of sampling steps, at most T")
    if steps == schedule.T:
        return schedule
    return respace(schedule, timestep_subsequence(schedule.T, steps))


def _x0_eps(pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, schedule: NoiseSchedule,
            parameterization: str, clip_x0: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean-data and noise estimates of a prediction. With clipping, the noise is re-derived
    from the clipped ``x0`` so the two stay consistent with ``x_t`` (improved-diffusion; diffusers'
    ``use_clipped_model_output=True``)."""
    x0 = convert(pred, x_t=x_t, t=t, schedule=schedule, source=parameterization, target="x0")
    if clip_x0:
        x0 = x0.clamp(-1.0, 1.0)
        eps = eps_from_x0(x_t, x0, t, schedule)
    else:
        eps = convert(pred, x_t=x_t, t=t, schedule=schedule, source=parameterization,
                      target="eps")
    return x0, eps


def _step_inputs(pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor | int,
                 schedule: NoiseSchedule, parameterization: str,
                 noise: torch.Tensor | None) -> torch.Tensor:
    check_parameterization(parameterization)
    _check_schedule(schedule)
    _check_data("x_t", x_t)
    _same_shape("pred", pred, "x_t", x_t)
    if noise is not None:
        _same_shape("noise", noise, "x_t", x_t)
    return _batch_t(t, x_t, schedule.T)


def ddpm_step(pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor | int, *,
              schedule: NoiseSchedule, parameterization: str = "eps", clip_x0: bool = True,
              variance: Literal["posterior", "beta"] = "posterior",
              noise: torch.Tensor | None = None) -> StepOutput:
    r"""One ancestral step :math:`x_t \to x_{t-1}` of DDPM (Ho et al. 2020, Algorithm 2):

    1. the clean-data estimate :math:`\hat x_0` from the prediction (clamped to ``[-1, 1]`` with
       ``clip_x0``);
    2. the mean of the posterior at it, :math:`\mu = \tilde\mu_t(\hat x_0, x_t)` (eq. 7), which
       for ``"eps"`` without clipping is eq. 11,
       :math:`\frac{1}{\sqrt{\alpha_t}}(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\hat\epsilon)`;
    3. :math:`x_{t-1} = \mu + \sigma_t z` with :math:`\sigma_t^2 = \tilde\beta_t` (``"posterior"``)
       or :math:`\beta_t` (``"beta"``), the two choices of sec. 3.2; no noise at ``t = 0``.

    Args:
        pred: ``(B, ...)`` the network's output at ``(x_t, t)``.
        x_t: ``(B, ...)`` the current sample.
        t: index of the step in ``schedule`` (int, or ``(B,)`` int64).
        schedule: the (possibly respaced) schedule.
        parameterization: what ``pred`` is, one of ``PARAMETERIZATIONS``.
        clip_x0: clamp :math:`\hat x_0` to ``[-1, 1]``.
        variance: one of :data:`VARIANCES`.
        noise: ``(B, ...)`` standard normal :math:`z`; None adds none (``x_prev = mean``).
    """
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {', '.join(map(repr, VARIANCES))}; got "
                         f"{variance!r}")
    tt = _step_inputs(pred, x_t, t, schedule, parameterization, noise)
    x0 = convert(pred, x_t=x_t, t=tt, schedule=schedule, source=parameterization, target="x0")
    if clip_x0:
        x0 = x0.clamp(-1.0, 1.0)
    mean = (_gather(schedule.posterior_mean_coef1, tt, x_t) * x0
            + _gather(schedule.posterior_mean_coef2, tt, x_t) * x_t)
    if variance == "posterior":
        var = schedule.posterior_variance  # 0 at t = 0 by itself
    else:
        var = torch.cat([torch.zeros(1, dtype=torch.float64), schedule.betas[1:]])
    std = _gather(var.sqrt(), tt, x_t).expand_as(x_t)
    x_prev = mean if noise is None else mean + std * noise
    return StepOutput(x_prev, x0, mean, std)


def ddim_step(pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor | int, *,
              schedule: NoiseSchedule, parameterization: str = "eps", clip_x0: bool = True,
              eta: float = 0.0, noise: torch.Tensor | None = None) -> StepOutput:
    r"""One DDIM step :math:`x_t \to x_{t-1}` (Song et al. 2021, "Denoising diffusion implicit
    models", eq. 12), between consecutive steps of ``schedule`` (respace it to skip steps):

    .. math::  x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,\hat x_0
               + \sqrt{1 - \bar\alpha_{t-1} - \sigma_t^2}\,\hat\epsilon + \sigma_t z, \qquad
               \sigma_t = \eta \sqrt{\tfrac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}}
               \sqrt{1 - \tfrac{\bar\alpha_t}{\bar\alpha_{t-1}}}

    (eq. 16). :math:`\eta = 0` is deterministic (the probability-flow-like DDIM); :math:`\eta = 1`
    makes :math:`\sigma_t^2` the posterior variance :math:`\tilde\beta_t` and the step DDPM's.
    :math:`\bar\alpha_{-1} = 1`, so the last step returns :math:`\hat x_0` (diffusers'
    ``set_alpha_to_one=True``). With ``clip_x0`` the noise estimate is re-derived from the clamped
    :math:`\hat x_0`.

    Args:
        pred, x_t, t, schedule, parameterization, clip_x0, noise: as :func:`ddpm_step`.
        eta: in ``[0, 1]``, the amount of fresh noise.
    """
    if not isinstance(eta, numbers.Real) or not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must be a number in [0, 1] (0: deterministic DDIM, 1: DDPM's "
                         f"variance); got {eta!r}")
    tt = _step_inputs(pred, x_t, t, schedule, parameterization, noise)
    x0, eps = _x0_eps(pred, x_t, tt, schedule, parameterization, clip_x0)
    abar, abar_prev = schedule.alpha_bars, schedule.alpha_bars_prev
    sigma = float(eta) * torch.sqrt((1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev))
    c_eps = torch.sqrt((1.0 - abar_prev - sigma**2).clamp(min=0.0))
    mean = _gather(abar_prev.sqrt(), tt, x_t) * x0 + _gather(c_eps, tt, x_t) * eps
    std = _gather(sigma, tt, x_t).expand_as(x_t)
    x_prev = mean if noise is None else mean + std * noise
    return StepOutput(x_prev, x0, mean, std)


def _loop(step: Callable[..., StepOutput], model: Model, x_T: torch.Tensor,
          schedule: NoiseSchedule, generator: torch.Generator | None,
          callback: Callback | None, noisy: bool, **step_kwargs: Any) -> torch.Tensor:
    """``x_T`` through ``step`` at ``t = T-1, ..., 0`` of ``schedule``; noise is drawn on
    ``generator`` for ``t > 0`` when ``noisy``."""
    _check_data("x_T", x_T)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None; got {type(callback).__name__}")
    B = x_T.shape[0]
    x = x_T
    for i, t in enumerate(reversed(range(schedule.T))):
        t_model = int(schedule.timesteps[t])
        pred = model(x, torch.full((B,), t_model, dtype=torch.int64, device=x.device))
        if not isinstance(pred, torch.Tensor) or pred.shape != x.shape:
            got = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
            raise ValueError(f"model must return a prediction of x_T's shape {tuple(x.shape)}; "
                             f"got {got}")
        noise = _randn_like(x, generator) if noisy and t > 0 else None
        out = step(pred.to(x.dtype), x, t, schedule=schedule, noise=noise, **step_kwargs)
        if callback is not None:
            callback({"i": i, "t": t_model, "x": x, "x0_pred": out.x0_pred})
        x = out.x_prev
    return x


@torch.no_grad()
def sample_ddpm(model: Model, x_T: torch.Tensor, *, schedule: NoiseSchedule,
                steps: int | None = None, parameterization: str = "eps",
                generator: torch.Generator | None = None, callback: Callback | None = None,
                clip_x0: bool = True,
                variance: Literal["posterior", "beta"] = "posterior") -> torch.Tensor:
    r"""Ancestral sampling (Ho et al. 2020, Algorithm 2): :func:`ddpm_step` from ``t = T-1`` down
    to 0, returning :math:`x_0` ``(B, ...)``.

    Args:
        model, x_T, schedule, parameterization, callback, clip_x0: see the module docstring.
        steps: None (all ``schedule.T`` steps) or a number in ``[1, T]``: then the schedule is
            respaced to :func:`timestep_subsequence` (Nichol & Dhariwal 2021, sec. 4).
        generator: source of the noise added at each step.
        variance: ``"posterior"`` (:math:`\tilde\beta_t`, the default; diffusers'
            ``"fixed_small"``) or ``"beta"`` (:math:`\beta_t`, ``"fixed_large"``).
    """
    check_parameterization(parameterization)
    sched = _sampling_schedule(schedule, steps)
    return _loop(ddpm_step, model, x_T, sched, generator, callback, True,
                 parameterization=parameterization, clip_x0=clip_x0, variance=variance)


@torch.no_grad()
def sample_ddim(model: Model, x_T: torch.Tensor, *, schedule: NoiseSchedule,
                steps: int | None = 50, parameterization: str = "eps",
                generator: torch.Generator | None = None, callback: Callback | None = None,
                clip_x0: bool = True, eta: float = 0.0) -> torch.Tensor:
    r"""DDIM sampling (Song et al. 2021): :func:`ddim_step` over ``steps`` evenly spaced
    timesteps (:func:`timestep_subsequence`), returning :math:`x_0` ``(B, ...)``.

    With ``eta = 0`` the result is a deterministic function of ``x_T`` (the generator is not
    used), so it can encode and interpolate; ``eta = 1`` is ancestral DDPM sampling.

    Very few steps with ``parameterization="eps"`` are badly conditioned: the first step
    recovers :math:`\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon) / \sqrt{\bar\alpha_t}`
    at a ``t`` near ``T``, where :math:`1 / \sqrt{\bar\alpha_t}` is large (about 20,000 at
    the last step of the cosine schedule with ``T = 1000``), so small errors in
    :math:`\hat\epsilon` become large errors in :math:`\hat x_0`. ``"v"`` (or ``"x0"``)
    prediction stays well conditioned.

    Args:
        model, x_T, schedule, parameterization, callback, clip_x0: see the module docstring.
        steps: number of steps in ``[1, T]`` (default 50), or None for all ``T``.
        generator: source of the noise when ``eta > 0``.
        eta: in ``[0, 1]``, see :func:`ddim_step`.
    """
    check_parameterization(parameterization)
    if not isinstance(eta, numbers.Real) or not 0.0 <= float(eta) <= 1.0:  # NaN fails too
        raise ValueError(f"eta must be a number in [0, 1] (0: deterministic DDIM, 1: DDPM's "
                         f"variance); got {eta!r}")
    sched = _sampling_schedule(schedule, steps)
    return _loop(ddim_step, model, x_T, sched, generator, callback, eta > 0,
                 parameterization=parameterization, clip_x0=clip_x0, eta=eta)
