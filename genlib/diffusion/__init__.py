"""Diffusion models and flow matching (chapter 6): noise data step by step in closed form, learn
to undo one step, then sample by undoing all of them.

- :mod:`~genlib.diffusion.schedules` :class:`NoiseSchedule` (float64 tables of betas, alpha_bars,
  posterior coefficients) from :func:`make_schedule` (``"linear"``, ``"cosine"``); the
  conversions :func:`alpha_bars_from_betas` / :func:`betas_from_alpha_bars`; :func:`respace`
- :mod:`~genlib.diffusion.process`   the forward process :func:`q_sample`, :func:`q_mean_variance`,
  the posterior :func:`q_posterior_mean_variance`; the parameterisations ``"eps"``, ``"x0"``,
  ``"v"`` and :func:`convert`; the score view :func:`score_from_eps`, :func:`tweedie_x0`
- :mod:`~genlib.diffusion.losses`    per-example :func:`diffusion_loss`; :func:`normal_kl` and
  :func:`elbo_weights` for the variational bound
- :mod:`~genlib.diffusion.samplers`  :func:`sample_ddpm` and :func:`sample_ddim` (one signature,
  with a callback), their single steps :func:`ddpm_step`, :func:`ddim_step`, and
  :func:`timestep_subsequence`
- :mod:`~genlib.diffusion.flow`      flow matching: :func:`flow_path`,
  :func:`flow_matching_loss`, :func:`sample_euler`, :func:`sample_heun` (here ``x0`` is noise
  and ``x1`` data: read the module docstring)

Networks never see the schedule: a model is any ``model(x_t, t) -> prediction``.
"""

from genlib.diffusion.flow import flow_matching_loss, flow_path, sample_euler, sample_heun
from genlib.diffusion.losses import diffusion_loss, elbo_weights, normal_kl
from genlib.diffusion.process import (
    PARAMETERIZATIONS,
    check_parameterization,
    check_timesteps,
    convert,
    eps_from_v,
    eps_from_x0,
    q_mean_variance,
    q_posterior_mean_variance,
    q_sample,
    score_from_eps,
    tweedie_x0,
    v_from_x0_eps,
    x0_from_eps,
    x0_from_v,
)
from genlib.diffusion.samplers import (
    VARIANCES,
    StepOutput,
    ddim_step,
    ddpm_step,
    sample_ddim,
    sample_ddpm,
    timestep_subsequence,
)
from genlib.diffusion.schedules import (
    SCHEDULES,
    NoiseSchedule,
    alpha_bars_from_betas,
    betas_from_alpha_bars,
    make_schedule,
    respace,
)

__all__ = [
    "SCHEDULES", "NoiseSchedule", "make_schedule", "alpha_bars_from_betas",
    "betas_from_alpha_bars", "respace",
    "PARAMETERIZATIONS", "check_timesteps", "check_parameterization", "q_sample",
    "q_mean_variance", "q_posterior_mean_variance", "convert", "x0_from_eps", "eps_from_x0",
    "v_from_x0_eps", "x0_from_v", "eps_from_v", "score_from_eps", "tweedie_x0",
    "diffusion_loss", "normal_kl", "elbo_weights",
    "VARIANCES", "StepOutput", "timestep_subsequence", "ddpm_step", "ddim_step", "sample_ddpm",
    "sample_ddim",
    "flow_path", "flow_matching_loss", "sample_euler", "sample_heun",
]
