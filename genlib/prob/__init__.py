"""Probability foundations (chapter 2): densities, divergences, sampling, Monte Carlo.

One module per concept:

- :mod:`~genlib.prob.densities`           per-example log-densities: Gaussian, Bernoulli,
  categorical, discretised Gaussian and logistic; ``sum_except_batch``
- :mod:`~genlib.prob.kl`                  ``kl_normal_diag``, the closed-form Gaussian KL
- :mod:`~genlib.prob.divergences`         entropy, cross-entropy, KL and JS of probability
  vectors; Wasserstein-1 and MMD from samples
- :mod:`~genlib.prob.montecarlo`          ``Estimate`` (mean, standard error, interval),
  ``mc_mean``, ``monte_carlo``
- :mod:`~genlib.prob.sampling`            inverse-CDF and rejection sampling, ``reparameterize``
- :mod:`~genlib.prob.change_of_variables` densities pushed through invertible maps
- :mod:`~genlib.prob.units`               nats, bits, bits per dimension

Conventions: natural logarithms (nats); per-example values are ``(B,)``, summed over every
dimension but the first; every stochastic function takes an explicit ``generator``.
"""

from genlib.prob.change_of_variables import log_abs_det_jacobian, pushforward_log_prob
from genlib.prob.densities import (
    LOG_SCALE_MIN,
    log_bernoulli,
    log_categorical,
    log_discretized_gaussian,
    log_discretized_logistic,
    log_normal,
    log_normal_diag,
    sum_except_batch,
)
from genlib.prob.divergences import (
    cross_entropy,
    entropy,
    js_divergence,
    kl_divergence,
    mmd,
    wasserstein_1d,
)
from genlib.prob.kl import kl_normal_diag
from genlib.prob.montecarlo import Estimate, mc_mean, monte_carlo
from genlib.prob.sampling import rejection_sample, reparameterize, sample_inverse_cdf
from genlib.prob.units import bits_per_dim, bits_to_nats, nats_to_bits

__all__ = [
    "LOG_SCALE_MIN",
    "log_bernoulli",
    "log_categorical",
    "log_discretized_gaussian",
    "log_discretized_logistic",
    "log_normal",
    "log_normal_diag",
    "sum_except_batch",
    "kl_normal_diag",
    "cross_entropy",
    "entropy",
    "js_divergence",
    "kl_divergence",
    "mmd",
    "wasserstein_1d",
    "Estimate",
    "mc_mean",
    "monte_carlo",
    "rejection_sample",
    "reparameterize",
    "sample_inverse_cdf",
    "log_abs_det_jacobian",
    "pushforward_log_prob",
    "bits_per_dim",
    "bits_to_nats",
    "nats_to_bits",
]
