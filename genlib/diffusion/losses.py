r"""The DDPM training loss and the pieces of its variational bound, one value per example.

:func:`diffusion_loss` is the "simple" objective of Ho et al. (2020, eq. 14): draw a timestep
and a noise, noise the data with :func:`~genlib.diffusion.process.q_sample`, and regress the
network's output on what it should predict (the noise for ``"eps"``, the clean data for
``"x0"``, the velocity for ``"v"``; Salimans & Ho 2022).

The variational bound (ELBO) behind it is a sum over steps of
:math:`\mathrm{KL}(q(x_{t-1} \mid x_t, x_0) \,\|\, p_\theta(x_{t-1} \mid x_t))` (Ho et al. 2020,
eq. 5; Sohl-Dickstein et al. 2015). With Gaussian reverse steps of fixed variance
:math:`\sigma_t^2` and the mean written through the noise prediction, each KL is a weighted
noise MSE (Ho et al. 2020, eq. 12):

.. math::  \mathrm{KL}_t = \lambda_t \,\|\epsilon - \hat\epsilon_\theta(x_t, t)\|^2 + C_t, \qquad
           \lambda_t = \frac{\beta_t^2}{2 \sigma_t^2 \alpha_t (1 - \bar\alpha_t)}

:func:`elbo_weights` gives :math:`\lambda_t` and :func:`normal_kl` the KL between Gaussians, so
chapter 6 can show that the simple loss is the ELBO with the weights dropped.

Taught in chapter 6, "Training a DDPM" and "The ELBO, reweighted".
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from genlib.diffusion.process import (
    _check_data,
    _check_schedule,
    _randn_like,
    _same_shape,
    check_parameterization,
    check_timesteps,
    q_sample,
    v_from_x0_eps,
)
from genlib.diffusion.schedules import NoiseSchedule

__all__ = ["diffusion_loss", "normal_kl", "elbo_weights"]


def _draw_timesteps(B: int, T: int, like: torch.Tensor,
                    generator: torch.Generator | None) -> torch.Tensor:
    """``(B,)`` int64 timesteps uniform on ``[0, T-1]``, drawn on ``generator``'s device."""
    device = generator.device if generator is not None else like.device
    return torch.randint(T, (B,), generator=generator, device=device).to(like.device)


def diffusion_loss(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   schedule: NoiseSchedule, x0: torch.Tensor, *,
                   parameterization: str = "eps", t: torch.Tensor | None = None,
                   noise: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Per-example mean squared error of the network's prediction, ``(B,)`` (Ho et al. 2020,
    eq. 14, "L_simple"; Algorithm 1).

    .. math::  \mathcal L(x_0) = \tfrac1D \big\|\text{target} - \text{model}(x_t, t)\big\|^2,
               \quad x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon,
               \quad t \sim \mathcal U\{0, \dots, T-1\},\ \epsilon \sim \mathcal N(0, I)

    where the target is :math:`\epsilon`, :math:`x_0` or :math:`v` according to
    ``parameterization``, and :math:`D` the number of values per example (the mean over them
    keeps the loss's scale independent of the image size).

    Args:
        model: ``model(x_t, t) -> prediction`` with ``x_t`` ``(B, ...)`` and ``t`` ``(B,)`` int64;
            it is given ``schedule.timesteps[t]`` (``t`` itself unless the schedule was
            respaced).
        schedule: the noise schedule.
        x0: ``(B, ...)`` a batch of clean data.
        parameterization: what the model predicts, one of
            :data:`~genlib.diffusion.process.PARAMETERIZATIONS`.
        t: ``(B,)`` int64 timesteps in ``[0, T-1]``; drawn uniformly on ``generator`` when None.
        noise: ``(B, ...)`` the :math:`\epsilon`; drawn on ``generator`` when None.
        generator: source of ``t`` and ``noise`` (a CPU generator gives the same draws on any
            device). ``t`` is drawn before ``noise``.

    Returns:
        ``(B,)`` losses in ``x0``'s dtype; take ``.mean()`` for the batch loss.
    """
    check_parameterization(parameterization)
    _check_schedule(schedule)
    _check_data("x0", x0)
    B = x0.shape[0]
    if t is None:
        t = _draw_timesteps(B, schedule.T, x0, generator)
    else:
        t = check_timesteps(t, schedule.T)
        if t.shape != (B,):
            raise ValueError(f"t must have shape (B,) = ({B},); got {tuple(t.shape)}")
        t = t.to(x0.device)
    if noise is None:
        noise = _randn_like(x0, generator)
    _same_shape("noise", noise, "x0", x0)
    x_t = q_sample(schedule, x0, t, noise)
    pred = model(x_t, schedule.timesteps.to(x0.device)[t])
    if not isinstance(pred, torch.Tensor) or pred.shape != x0.shape:
        got = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
        raise ValueError(f"model must return a prediction of x0's shape {tuple(x0.shape)}; got "
                         f"{got}")
    if parameterization == "eps":
        target = noise
    elif parameterization == "x0":
        target = x0
    else:
        target = v_from_x0_eps(x0, noise, t, schedule)
    return (pred - target).pow(2).reshape(B, -1).mean(dim=1)


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor,
              logvar2: torch.Tensor) -> torch.Tensor:
    r"""Elementwise :math:`\mathrm{KL}(\mathcal N(\mu_1, \sigma_1^2) \,\|\, \mathcal N(\mu_2,
    \sigma_2^2))` in nats, from means and log-variances (broadcast together):

    .. math::  \tfrac12\big[e^{d} - 1 - d + (\mu_1 - \mu_2)^2 e^{-\log\sigma_2^2}\big],
               \qquad d = \log\sigma_1^2 - \log\sigma_2^2

    :math:`e^d - 1 - d` is formed as ``expm1(d) - d``, exact when the variances are close.
    Sum over the non-batch dimensions for the KL of diagonal Gaussians
    (:func:`genlib.prob.kl_normal_diag` does that per example).
    """
    for name, v in (("mean1", mean1), ("logvar1", logvar1), ("mean2", mean2),
                    ("logvar2", logvar2)):
        if not isinstance(v, torch.Tensor) or not v.is_floating_point():
            got = f"dtype {v.dtype}" if isinstance(v, torch.Tensor) else type(v).__name__
            raise ValueError(f"{name} must be a floating-point tensor; got {got}")
    try:
        torch.broadcast_shapes(mean1.shape, logvar1.shape, mean2.shape, logvar2.shape)
    except RuntimeError:
        raise ValueError(f"mean1, logvar1, mean2, logvar2 must broadcast together; got shapes "
                         f"{tuple(mean1.shape)}, {tuple(logvar1.shape)}, {tuple(mean2.shape)}, "
                         f"{tuple(logvar2.shape)}") from None
    d = logvar1 - logvar2
    return 0.5 * (torch.expm1(d) - d + (mean1 - mean2).pow(2) * torch.exp(-logvar2))


def elbo_weights(schedule: NoiseSchedule) -> torch.Tensor:
    r"""The weights :math:`\lambda_t = \beta_t^2 / (2 \sigma_t^2 \alpha_t (1 - \bar\alpha_t))` that
    turn the noise MSE into the ELBO's terms (Ho et al. 2020, eq. 12), float64 ``(T,)``.

    **Which** :math:`\sigma_t`. We take the reverse step's variance to be the posterior variance,
    :math:`\sigma_t^2 = \tilde\beta_t` (``exp(schedule.posterior_log_variance_clipped)``). Then
    the model's step :math:`p_\theta(x_{t-1} \mid x_t) = \mathcal N(\mu_\theta, \tilde\beta_t I)`
    has the same variance as :math:`q(x_{t-1} \mid x_t, x_0)`, the KL has no variance-mismatch
    constant, and for ``t >= 1``, per coordinate,

    .. math::  \mathrm{KL}\big(q(x_{t-1} \mid x_t, x_0) \,\|\, p_\theta(x_{t-1} \mid x_t)\big)
               = \lambda_t\, (\epsilon - \hat\epsilon_\theta)^2

    exactly (with :math:`\mu_\theta` the posterior mean at :math:`\hat x_0` from
    :math:`\hat\epsilon_\theta`). It is also the variance DDPM samples with by default
    (:func:`genlib.diffusion.samplers.sample_ddpm`), and the tighter of Ho et al.'s two choices
    when the data is a single point. With :math:`\sigma_t^2 = \beta_t` instead, the weights
    shrink by :math:`\tilde\beta_t / \beta_t` and a constant is added.

    **At t = 0** the posterior is a point mass (:math:`\tilde\beta_0 = 0`), there is no KL and the
    ELBO's term is the decoder's :math:`-\log p_\theta(x_0 \mid x_1)`. With the clipped variance
    :math:`\sigma_0^2 = \tilde\beta_1` (improved-diffusion's choice) for a continuous Gaussian
    decoder, :math:`\lambda_0 = \beta_0 / (2\tilde\beta_1\alpha_0)` is the weight of its
    :math:`\hat\epsilon`-dependent part, so the formula holds at every ``t`` (a discretised
    decoder, as for 8-bit images, needs its own term; Ho et al. 2020, eq. 13).
    """
    _check_schedule(schedule)
    sigma2 = torch.exp(schedule.posterior_log_variance_clipped)
    return schedule.betas.pow(2) / (2.0 * sigma2 * schedule.alphas * (1.0 - schedule.alpha_bars))
