r"""Flow matching with the straight (rectified-flow) path: learn a velocity field that carries
noise to data, then integrate it.

**Convention (that of Lipman et al. 2023 and of facebookresearch/flow_matching).** Time runs
from noise to data: :math:`x_0 \sim \mathcal N(0, I)` is the *noise*, :math:`x_1` the *data*,
:math:`t \in [0, 1]`, and

.. math::  x_t = (1 - t)\, x_0 + t\, x_1, \qquad u_t = \frac{d x_t}{dt} = x_1 - x_0,

the conditional optimal-transport path of Lipman et al. (2023, eq. 20 with
:math:`\sigma_{\min} = 0`), which is also the rectified flow of Liu et al. (2023). A network
:math:`v_\theta(x_t, t)` regresses :math:`u_t` (:func:`flow_matching_loss`); its minimiser is
the marginal field :math:`\mathbb E[x_1 - x_0 \mid x_t]`, whose ODE
:math:`\dot x = v_\theta(x, t)` carries :math:`\mathcal N(0, I)` at ``t = 0`` to the data at
``t = 1`` (:func:`sample_euler`, :func:`sample_heun`).

**Against the diffusion notation of the rest of this package**, two things flip: here
``x0`` is *noise* and ``x1`` is data (in DDPM, ``x0`` is data and ``x_T`` noise), and ``t``
grows towards the data (in DDPM it grows towards noise). The path is a Gaussian path like
DDPM's, with signal scale ``t`` and noise scale ``1 - t`` in place of :math:`\sqrt{\bar\alpha}`
and :math:`\sqrt{1 - \bar\alpha}`: a DDPM :math:`x_t` with :math:`\bar\alpha` is, divided by
:math:`\sqrt{\bar\alpha} + \sqrt{1 - \bar\alpha}`, the flow's point at time
:math:`t = \sqrt{\bar\alpha} / (\sqrt{\bar\alpha} + \sqrt{1 - \bar\alpha})` (same signal-to-noise
ratio). A velocity prediction gives the other estimates: data
:math:`\hat x_1 = x_t + (1 - t)\, v` and noise :math:`\hat x_0 = x_t - t\, v`.

Models are ``model(x_t, t) -> velocity`` with ``x_t`` ``(B, ...)`` and ``t`` a ``(B,)`` *float*
tensor in ``[0, 1]`` (of ``x_t``'s dtype). Taught in chapter 6, "Flow matching".
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch

from genlib.diffusion.process import _check_data, _randn_like, _same_shape

__all__ = ["flow_path", "flow_matching_loss", "sample_euler", "sample_heun"]

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[dict[str, Any]], Any]


def _flow_t(t: torch.Tensor | float, x: torch.Tensor, arg: str = "t") -> torch.Tensor:
    """``t`` as ``(B,)`` of ``x``'s dtype and device, checked to lie in [0, 1]."""
    if isinstance(t, bool):
        raise TypeError(f"{arg} must be a time in [0, 1] (a float or a (B,) float tensor); got "
                        f"{t!r}")
    if isinstance(t, torch.Tensor):
        if not t.is_floating_point():
            raise TypeError(f"{arg} must be a float tensor of times in [0, 1]; got dtype "
                            f"{t.dtype} (integer timesteps are for DDPM/DDIM)")
        tt = t.to(device=x.device, dtype=x.dtype)
    elif isinstance(t, numbers.Real):
        tt = torch.tensor(float(t), device=x.device, dtype=x.dtype)
    else:
        raise TypeError(f"{arg} must be a time in [0, 1] (a float or a (B,) float tensor); got "
                        f"{type(t).__name__}")
    B = x.shape[0]
    if tt.ndim == 0:
        tt = tt.expand(B)
    if tt.shape != (B,):
        raise ValueError(f"{arg} must have shape (B,) = ({B},) or be one number; got shape "
                         f"{tuple(tt.shape)}")
    if not bool(((tt >= 0) & (tt <= 1)).all()):
        bad = tt[~((tt >= 0) & (tt <= 1))]
        raise ValueError(f"{arg} must lie in [0, 1]; got {bad[:5].tolist()}")
    return tt


def _col(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, *([1] * (x.ndim - 1)))  # (B,) -> (B, 1, ..., 1)


def flow_path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor | float
              ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The point and the velocity of the straight path from noise ``x0`` to data ``x1``:
    :math:`x_t = (1 - t) x_0 + t x_1`, :math:`u_t = x_1 - x_0`.

    Args:
        x0: ``(B, ...)`` noise.
        x1: ``(B, ...)`` data, shape of ``x0``.
        t: ``(B,)`` float times in ``[0, 1]``, or one number for all.

    Returns:
        ``(x_t, u_t)``, each ``(B, ...)``.
    """
    _check_data("x0", x0)
    _same_shape("x1", x1, "x0", x0)
    tt = _col(_flow_t(t, x0), x0)
    return (1.0 - tt) * x0 + tt * x1, x1 - x0


def flow_matching_loss(model: Model, x1: torch.Tensor, *, t: torch.Tensor | None = None,
                       noise: torch.Tensor | None = None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Per-example conditional flow matching loss, ``(B,)`` (Lipman et al. 2023, eq. 23;
    Liu et al. 2023, eq. 1):

    .. math::  \mathcal L(x_1) = \tfrac1D \big\| v_\theta(x_t, t) - (x_1 - x_0) \big\|^2, \quad
               t \sim \mathcal U[0, 1),\ x_0 \sim \mathcal N(0, I),\ x_t = (1 - t) x_0 + t x_1

    Args:
        model: ``model(x_t, t) -> velocity``, ``t`` a ``(B,)`` float tensor.
        x1: ``(B, ...)`` a batch of data.
        t: ``(B,)`` float times in ``[0, 1]``; drawn uniformly on ``generator`` when None.
        noise: ``(B, ...)`` the :math:`x_0`; drawn on ``generator`` when None (after ``t``).
        generator: source of ``t`` and ``noise``.

    Returns:
        ``(B,)`` losses; ``.mean()`` is the batch loss.
    """
    _check_data("x1", x1)
    B = x1.shape[0]
    if t is None:
        device = generator.device if generator is not None else x1.device
        t = torch.rand(B, generator=generator, device=device, dtype=x1.dtype).to(x1.device)
    t = _flow_t(t, x1)
    if noise is None:
        noise = _randn_like(x1, generator)
    _same_shape("noise", noise, "x1", x1)
    x_t, u = flow_path(noise, x1, t)
    pred = model(x_t, t)
    if not isinstance(pred, torch.Tensor) or pred.shape != x1.shape:
        got = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
        raise ValueError(f"model must return a velocity of x1's shape {tuple(x1.shape)}; got "
                         f"{got}")
    return (pred - u).pow(2).reshape(B, -1).mean(dim=1)


def _check_sampler_args(x_0: torch.Tensor, steps: object, callback: object) -> int:
    _check_data("x_0", x_0)
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1 (the number of ODE steps); got "
                         f"{steps!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None; got {type(callback).__name__}")
    return int(steps)


def _velocity(model: Model, x: torch.Tensor, t: float) -> torch.Tensor:
    v = model(x, torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device))
    if not isinstance(v, torch.Tensor) or v.shape != x.shape:
        got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        raise ValueError(f"model must return a velocity of x_0's shape {tuple(x.shape)}; got "
                         f"{got}")
    return v.to(x.dtype)


def _report(callback: Callback | None, i: int, t: float, x: torch.Tensor,
            v: torch.Tensor) -> None:
    if callback is not None:
        callback({"i": i, "t": t, "x": x, "v": v, "x1_pred": x + (1.0 - t) * v})


@torch.no_grad()
def sample_euler(model: Model, x_0: torch.Tensor, *, steps: int,
                 callback: Callback | None = None) -> torch.Tensor:
    r"""Integrate :math:`\dot x = v_\theta(x, t)` from ``t = 0`` to 1 with ``steps`` Euler steps
    of size :math:`h = 1 / \mathrm{steps}`: :math:`x_{t+h} = x_t + h\, v_\theta(x_t, t)`.

    Exact for a constant field (a straight path is one step: the point of rectified flow).

    Args:
        model: ``model(x, t) -> velocity``, ``t`` a ``(B,)`` float tensor.
        x_0: ``(B, ...)`` the starting noise.
        steps: number of steps (= network evaluations), >= 1.
        callback: called each step with ``{"i", "t" (float), "x", "v", "x1_pred"}``, where
            ``x1_pred = x + (1 - t) v`` is the data estimate (the counterpart of the diffusion
            samplers' ``x0_pred``).

    Returns:
        ``x_1`` ``(B, ...)``.
    """
    steps = _check_sampler_args(x_0, steps, callback)
    h = 1.0 / steps
    x = x_0
    for i in range(steps):
        t = i * h
        v = _velocity(model, x, t)
        _report(callback, i, t, x, v)
        x = x + h * v
    return x


@torch.no_grad()
def sample_heun(model: Model, x_0: torch.Tensor, *, steps: int,
                callback: Callback | None = None) -> torch.Tensor:
    r"""Integrate :math:`\dot x = v_\theta(x, t)` from ``t = 0`` to 1 with ``steps`` steps of
    Heun's method (the explicit trapezoidal rule; Karras et al. 2022, Algorithm 1):

    .. math::  \tilde x = x_t + h\, v_\theta(x_t, t), \qquad
               x_{t+h} = x_t + \tfrac h2 \big(v_\theta(x_t, t) + v_\theta(\tilde x, t + h)\big)

    Second order (its error falls like ``1 / steps**2``); exact for a field that depends on
    ``t`` alone and is affine in it; two network evaluations per step.
    Arguments and callback as :func:`sample_euler` (the callback sees the first evaluation).
    """
    steps = _check_sampler_args(x_0, steps, callback)
    h = 1.0 / steps
    x = x_0
    for i in range(steps):
        t = i * h
        t_next = 1.0 if i == steps - 1 else (i + 1) * h
        v = _velocity(model, x, t)
        _report(callback, i, t, x, v)
        v_next = _velocity(model, x + h * v, t_next)
        x = x + 0.5 * h * (v + v_next)
    return x
