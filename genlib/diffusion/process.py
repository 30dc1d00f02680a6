r"""The forward (noising) process of DDPM, its posterior, the three things a network may predict,
and the score view.

With a :class:`~genlib.diffusion.schedules.NoiseSchedule` (0-based ``t``, float64 tables):

- :func:`q_sample`: a draw of :math:`q(x_t \mid x_0)`,
  :math:`x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon`
  (Ho et al. 2020, eq. 4); :func:`q_mean_variance` its moments.
- :func:`q_posterior_mean_variance`: :math:`q(x_{t-1} \mid x_t, x_0)` (Ho et al. 2020, eqs. 6-7),
  the target that every reverse step imitates.
- :func:`convert` between the parameterisations :data:`PARAMETERIZATIONS` of a network's output:
  the noise ``"eps"`` (Ho et al. 2020), the clean image ``"x0"``, or the velocity ``"v"``
  :math:`v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1 - \bar\alpha_t}\, x_0` (Salimans & Ho 2022,
  sec. 4). Given :math:`x_t`, any one determines the other two.
- The score view: :math:`\nabla_{x_t} \log q(x_t \mid x_0) = -\epsilon / \sqrt{1 - \bar\alpha_t}`,
  so a noise predictor is a scaled score model (:func:`score_from_eps`; Song et al. 2021,
  "Score-based generative modeling through SDEs"), and Tweedie's formula
  :math:`\mathbb E[x_0 \mid x_t] = (x_t + (1 - \bar\alpha_t)\nabla \log p_t(x_t))
  / \sqrt{\bar\alpha_t}` (Efron 2011) turns the score into the best guess of the clean image
  (:func:`tweedie_x0`).

**Shapes.** Data tensors are ``(B, ...)`` (``(B, D)`` points, ``(B, C, H, W)`` images); ``t`` is
``(B,)`` int64 (or one integer for the whole batch). Per-step scalars are gathered in float64 and
cast to the data's dtype and device, then broadcast as ``(B, 1, ..., 1)``.

**Argument order.** The ``q_*`` functions take the schedule first (they are the process); the
pointwise conversions take their tensors, then ``t``, then the schedule, as :func:`convert` and
:func:`score_from_eps` do.

Taught in chapter 6, "The forward process in closed form" and "The score view".
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import torch

from genlib.diffusion.schedules import NoiseSchedule

__all__ = ["PARAMETERIZATIONS", "check_timesteps", "check_parameterization", "q_sample",
           "q_mean_variance", "q_posterior_mean_variance", "convert", "x0_from_eps",
           "eps_from_x0", "v_from_x0_eps", "x0_from_v", "eps_from_v", "score_from_eps",
           "tweedie_x0"]

PARAMETERIZATIONS = ("eps", "x0", "v")

_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


# ------------------------------------------------------------------------------------- checks


def check_timesteps(t: torch.Tensor | int | Sequence[int], T: int, arg: str = "t"
                    ) -> torch.Tensor:
    """``t`` as an int64 tensor (same device, same shape), checked to lie in ``[0, T-1]``.

    Raises a TypeError for non-integer timesteps (float tensors included: diffusion timesteps
    are indices; flow matching's continuous ``t`` is :mod:`genlib.diffusion.flow`'s) and a
    ValueError naming ``arg``, the offending values and the valid range otherwise.
    """
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ValueError(f"T must be an integer >= 1; got {T!r}")
    if isinstance(t, bool):
        raise TypeError(f"{arg} must hold integer timesteps in [0, T-1] = [0, {T - 1}]; got {t!r}")
    if isinstance(t, torch.Tensor):
        if t.dtype not in _INT_DTYPES:
            raise TypeError(f"{arg} must hold integer timesteps in [0, T-1] = [0, {T - 1}] "
                            f"(an integer tensor); got dtype {t.dtype}")
        tt = t.to(torch.int64)
    else:
        try:
            tt = torch.as_tensor(t)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{arg} must hold integer timesteps in [0, T-1] = [0, {T - 1}]; "
                            f"got {t!r}") from None
        if tt.dtype not in _INT_DTYPES:
            raise TypeError(f"{arg} must hold integer timesteps in [0, T-1] = [0, {T - 1}]; "
                            f"got {t!r}")
        tt = tt.to(torch.int64)
    bad = tt[(tt < 0) | (tt >= T)]
    if bad.numel():
        raise ValueError(f"{arg} must lie in [0, T-1] = [0, {T - 1}]; got {bad[:5].tolist()}"
                         + (f" and {bad.numel() - 5} more" if bad.numel() > 5 else ""))
    return tt


def check_parameterization(parameterization: object, arg: str = "parameterization") -> str:
    """Return ``parameterization`` if it is one of :data:`PARAMETERIZATIONS`, else a ValueError
    listing them."""
    if not isinstance(parameterization, str) or parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"{arg} must be one of {', '.join(map(repr, PARAMETERIZATIONS))}; got "
                         f"{parameterization!r}")
    return parameterization


def _check_schedule(schedule: object) -> NoiseSchedule:
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule (see make_schedule); got "
                        f"{type(schedule).__name__}")
    return schedule


def _check_data(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 1:
        got = (f"dtype {x.dtype}, shape {tuple(x.shape)}" if isinstance(x, torch.Tensor)
               else type(x).__name__)
        raise ValueError(f"{name} must be a floating-point tensor of shape (B, ...); got {got}")
    return x


def _same_shape(name: str, x: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    _check_data(name, x)
    if x.shape != ref.shape:
        raise ValueError(f"{name} must have the shape of {ref_name}, {tuple(ref.shape)}; got "
                         f"{tuple(x.shape)}")


def _batch_t(t: torch.Tensor | int | Sequence[int], x: torch.Tensor, T: int,
             arg: str = "t") -> torch.Tensor:
    """``t`` checked and made ``(B,)`` on ``x``'s device (one integer is repeated B times)."""
    tt = check_timesteps(t, T, arg)
    B = x.shape[0]
    if tt.ndim == 0:
        tt = tt.expand(B)
    if tt.shape != (B,):
        raise ValueError(f"{arg} must have shape (B,) = ({B},) (one timestep per example) or be "
                         f"one integer; got shape {tuple(tt.shape)}")
    return tt.to(x.device)


def _gather(table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``table[t]`` (float64, computed on the CPU) cast to ``like``'s dtype and device and
    shaped ``(B, 1, ..., 1)`` to broadcast against ``like`` ``(B, ...)``."""
    v = table[t.to(table.device)].to(device=like.device, dtype=like.dtype)
    return v.reshape(-1, *([1] * (like.ndim - 1)))


def _randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal draws of ``x``'s shape, dtype and device, drawn on ``generator``'s device
    (a CPU generator gives the same numbers on any device)."""
    if generator is None:
        return torch.randn(x.shape, dtype=x.dtype, device=x.device)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype,
                       device=generator.device).to(x.device)


# ---------------------------------------------------------------------------- forward process


def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor | int,
             noise: torch.Tensor) -> torch.Tensor:
    r"""Sample from :math:`q(x_t \mid x_0)`:
    :math:`x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon`
    (Ho et al. 2020, eq. 4).

    The noise is an explicit argument, so the function is deterministic: the training loss
    needs the same :math:`\epsilon` as its target, and a test can reproduce a draw. Draw it with
    ``torch.randn(x0.shape, generator=g)``.

    Args:
        schedule: the noise schedule.
        x0: ``(B, ...)`` clean data.
        t: ``(B,)`` int64 timesteps in ``[0, T-1]`` (or one integer for all).
        noise: :math:`\epsilon`, standard normal, the shape of ``x0``.

    Returns:
        ``x_t``, the shape and dtype of ``x0``.
    """
    _check_schedule(schedule)
    _check_data("x0", x0)
    _same_shape("noise", noise, "x0", x0)
    t = _batch_t(t, x0, schedule.T)
    return (_gather(schedule.alpha_bars.sqrt(), t, x0) * x0
            + _gather((1.0 - schedule.alpha_bars).sqrt(), t, x0) * noise)


def q_mean_variance(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor | int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Mean, variance and log-variance of :math:`q(x_t \mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}
    x_0, (1 - \bar\alpha_t) I)`, each broadcast to ``x0``'s shape ``(B, ...)``."""
    _check_schedule(schedule)
    _check_data("x0", x0)
    t = _batch_t(t, x0, schedule.T)
    mean = _gather(schedule.alpha_bars.sqrt(), t, x0) * x0
    one_minus = 1.0 - schedule.alpha_bars
    var = _gather(one_minus, t, x0).expand_as(x0)
    log_var = _gather(torch.log(one_minus), t, x0).expand_as(x0)
    return mean, var, log_var


def q_posterior_mean_variance(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor,
                              t: torch.Tensor | int
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Mean, variance and clipped log-variance of the forward process's posterior
    :math:`q(x_{t-1} \mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I)`
    (Ho et al. 2020, eqs. 6-7; the schedules module gives the coefficients).

    At ``t = 0`` the "previous" step is ``x0`` itself: the mean is ``x0`` and the variance 0;
    the log-variance is clipped to :math:`\log\tilde\beta_1` there (it would be :math:`-\infty`).

    Args:
        schedule: the noise schedule.
        x0: ``(B, ...)`` clean data (or a network's estimate of it).
        x_t: ``(B, ...)`` the noisy data at step ``t``, shape of ``x0``.
        t: ``(B,)`` int64 timesteps in ``[0, T-1]`` (or one integer).

    Returns:
        ``(mean, variance, log_variance_clipped)``, each ``(B, ...)``.
    """
    _check_schedule(schedule)
    _check_data("x0", x0)
    _same_shape("x_t", x_t, "x0", x0)
    t = _batch_t(t, x0, schedule.T)
    mean = (_gather(schedule.posterior_mean_coef1, t, x0) * x0
            + _gather(schedule.posterior_mean_coef2, t, x0) * x_t)
    var = _gather(schedule.posterior_variance, t, x0).expand_as(x0)
    log_var = _gather(schedule.posterior_log_variance_clipped, t, x0).expand_as(x0)
    return mean, var, log_var


# -------------------------------------------------------------------------- parameterisations
# With a = sqrt(abar_t), s = sqrt(1 - abar_t), a^2 + s^2 = 1, the pair (x_t, v) is the pair
# (x0, eps) rotated by the angle phi_t = atan(s / a) (Salimans & Ho 2022, fig. 1):
#   x_t = a x0 + s eps,    v = a eps - s x0    <=>    x0 = a x_t - s v,    eps = s x_t + a v.


def _a_s(schedule: NoiseSchedule, t: torch.Tensor | int, like: torch.Tensor
         ) -> tuple[torch.Tensor, torch.Tensor]:
    _check_schedule(schedule)
    tt = _batch_t(t, like, schedule.T)
    a = _gather(schedule.alpha_bars.sqrt(), tt, like)
    s = _gather((1.0 - schedule.alpha_bars).sqrt(), tt, like)
    return a, s


def x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | int,
                schedule: NoiseSchedule) -> torch.Tensor:
    r""":math:`x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon) / \sqrt{\bar\alpha_t}` (Ho et al.
    2020, eq. 15). ``x_t, eps``: ``(B, ...)``; returns ``(B, ...)``. Ill-conditioned where
    :math:`\bar\alpha_t \to 0` (the noisiest steps): errors in ``eps`` are multiplied by
    :math:`1 / \sqrt{\bar\alpha_t}`."""
    _check_data("x_t", x_t)
    _same_shape("eps", eps, "x_t", x_t)
    a, s = _a_s(schedule, t, x_t)
    return (x_t - s * eps) / a


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, t: torch.Tensor | int,
                schedule: NoiseSchedule) -> torch.Tensor:
    r""":math:`\epsilon = (x_t - \sqrt{\bar\alpha_t}\, x_0) / \sqrt{1 - \bar\alpha_t}`.
    ``x_t, x0``: ``(B, ...)``; returns ``(B, ...)``."""
    _check_data("x_t", x_t)
    _same_shape("x0", x0, "x_t", x_t)
    a, s = _a_s(schedule, t, x_t)
    return (x_t - a * x0) / s


def v_from_x0_eps(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | int,
                  schedule: NoiseSchedule) -> torch.Tensor:
    r""":math:`v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1 - \bar\alpha_t}\, x_0` (Salimans & Ho
    2022, sec. 4). ``x0, eps``: ``(B, ...)``; returns ``(B, ...)``."""
    _check_data("x0", x0)
    _same_shape("eps", eps, "x0", x0)
    a, s = _a_s(schedule, t, x0)
    return a * eps - s * x0


def x0_from_v(x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor | int,
              schedule: NoiseSchedule) -> torch.Tensor:
    r""":math:`x_0 = \sqrt{\bar\alpha_t}\, x_t - \sqrt{1 - \bar\alpha_t}\, v`: well conditioned at
    every ``t`` (no division), which is why v-prediction suits few-step sampling.
    ``x_t, v``: ``(B, ...)``; returns ``(B, ...)``."""
    _check_data("x_t", x_t)
    _same_shape("v", v, "x_t", x_t)
    a, s = _a_s(schedule, t, x_t)
    return a * x_t - s * v


def eps_from_v(x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor | int,
               schedule: NoiseSchedule) -> torch.Tensor:
    r""":math:`\epsilon = \sqrt{1 - \bar\alpha_t}\, x_t + \sqrt{\bar\alpha_t}\, v`.
    ``x_t, v``: ``(B, ...)``; returns ``(B, ...)``."""
    _check_data("x_t", x_t)
    _same_shape("v", v, "x_t", x_t)
    a, s = _a_s(schedule, t, x_t)
    return s * x_t + a * v


_TO_X0: dict[str, Callable[..., torch.Tensor]] = {
    "eps": x0_from_eps,
    "x0": lambda x_t, pred, t, schedule: pred,
    "v": x0_from_v,
}
_TO_EPS: dict[str, Callable[..., torch.Tensor]] = {
    "eps": lambda x_t, pred, t, schedule: pred,
    "x0": eps_from_x0,
    "v": eps_from_v,
}


def convert(pred: torch.Tensor, *, x_t: torch.Tensor, t: torch.Tensor | int,
            schedule: NoiseSchedule, source: str, target: str) -> torch.Tensor:
    r"""Turn a prediction of kind ``source`` into the equivalent prediction of kind ``target``.

    Both are one of :data:`PARAMETERIZATIONS`. Given ``x_t``, the pair :math:`(x_0, \epsilon)` is
    recovered from ``pred`` (:func:`x0_from_eps`, :func:`eps_from_x0`, :func:`x0_from_v`,
    :func:`eps_from_v`), then ``target`` is read off it (``v`` by :func:`v_from_x0_eps`).
    ``source == target`` returns ``pred`` unchanged.

    Args:
        pred: ``(B, ...)`` the prediction.
        x_t: ``(B, ...)`` the noisy input it was made from.
        t: ``(B,)`` int64 timesteps (or one integer).
        schedule: the noise schedule.
        source, target: the kinds of ``pred`` and of the result.
    """
    check_parameterization(source, "source")
    check_parameterization(target, "target")
    _check_data("x_t", x_t)
    _same_shape("pred", pred, "x_t", x_t)
    _check_schedule(schedule)
    check_timesteps(t, schedule.T)
    if source == target:
        return pred
    if target == "x0":
        return _TO_X0[source](x_t, pred, t, schedule)
    if target == "eps":
        return _TO_EPS[source](x_t, pred, t, schedule)
    x0 = _TO_X0[source](x_t, pred, t, schedule)
    eps = _TO_EPS[source](x_t, pred, t, schedule)
    return v_from_x0_eps(x0, eps, t, schedule)


# --------------------------------------------------------------------------------- score view


def score_from_eps(eps: torch.Tensor, t: torch.Tensor | int,
                   schedule: NoiseSchedule) -> torch.Tensor:
    r"""The score :math:`\nabla_{x_t}\log p_t(x_t) = -\epsilon / \sqrt{1 - \bar\alpha_t}` implied by
    a noise prediction (exact for :math:`q(x_t \mid x_0)` with the true noise; for the marginal
    :math:`p_t` with the optimal predictor :math:`\mathbb E[\epsilon \mid x_t]`; Song et al. 2021,
    "Score-based generative modeling through SDEs"). ``eps``: ``(B, ...)``; returns ``(B, ...)``.
    """
    _check_data("eps", eps)
    _, s = _a_s(schedule, t, eps)
    return -eps / s


def tweedie_x0(x_t: torch.Tensor, score: torch.Tensor, t: torch.Tensor | int,
               schedule: NoiseSchedule) -> torch.Tensor:
    r"""Tweedie's formula (Efron 2011): the posterior mean of the clean data,
    :math:`\mathbb E[x_0 \mid x_t] = (x_t + (1 - \bar\alpha_t)\,\nabla\log p_t(x_t)) /
    \sqrt{\bar\alpha_t}`, from the score of the noisy marginal.

    With :func:`score_from_eps` it is exactly :func:`x0_from_eps`: the denoiser, the noise
    predictor and the score model are one object. ``x_t, score``: ``(B, ...)``; returns
    ``(B, ...)``.
    """
    _check_data("x_t", x_t)
    _same_shape("score", score, "x_t", x_t)
    a, s = _a_s(schedule, t, x_t)
    return (x_t + s * s * score) / a
