r"""Closed-form KL divergence between diagonal Gaussians: the VAE's regulariser.

For :math:`q = \mathcal N(\mu_q, \operatorname{diag}\sigma_q^2)` and
:math:`p = \mathcal N(\mu_p, \operatorname{diag}\sigma_p^2)` the divergence is a sum over
coordinates of the one-dimensional formula

.. math::  \mathrm{KL}(q \,\|\, p) = \frac12 \sum_d \Big[\log\frac{\sigma_{p,d}^2}{\sigma_{q,d}^2}
           + \frac{\sigma_{q,d}^2 + (\mu_{q,d} - \mu_{p,d})^2}{\sigma_{p,d}^2} - 1\Big]

(Kingma & Welling 2014, appendix B, for :math:`p = \mathcal N(0, I)`). Derived in chapter 2
("Entropy, KL and other divergences") and used by the VAE of chapter 4 and the diffusion loss
of chapter 6.
"""

from __future__ import annotations

import torch

from genlib.prob._checks import as_tensor, broadcast_shape, need_batch_dim
from genlib.prob.densities import sum_except_batch

__all__ = ["kl_normal_diag"]


def kl_normal_diag(mu_q: torch.Tensor, logvar_q: torch.Tensor,
                   mu_p: torch.Tensor | float = 0.0, logvar_p: torch.Tensor | float = 0.0
                   ) -> torch.Tensor:
    r"""``KL(q || p)`` between diagonal Gaussians given by means and log-variances, per example.

    .. math::  \tfrac12 \sum_d \big[e^{t_d} - 1 - t_d + (\mu_{q,d} - \mu_{p,d})^2
               e^{-\mathrm{logvar}_{p,d}}\big], \qquad t = \mathrm{logvar}_q - \mathrm{logvar}_p

    The variance ratio :math:`e^t` is one ``exp`` of a difference (no overflow when both
    log-variances are large), and :math:`e^t - 1 - t` is computed as ``expm1(t) - t``: when
    ``q`` and ``p`` are close, ``exp(t) - 1`` would lose every digit that the result keeps.
    The defaults give ``KL(q || N(0, I))``.

    Args:
        mu_q, logvar_q: ``(B, ...)`` parameters of ``q`` (e.g. the encoder's outputs ``(B, D)``).
        mu_p, logvar_p: parameters of ``p``; broadcast against ``mu_q``.

    Returns:
        ``(B,)`` divergences in nats (``>= 0``, zero exactly when ``q == p``).
    """
    mu_q = as_tensor(mu_q, "mu_q")
    logvar_q = as_tensor(logvar_q, "logvar_q", mu_q)
    mu_p, logvar_p = as_tensor(mu_p, "mu_p", mu_q), as_tensor(logvar_p, "logvar_p", mu_q)
    need_batch_dim(broadcast_shape(mu_q=mu_q, logvar_q=logvar_q, mu_p=mu_p, logvar_p=logvar_p),
                   "mu_q, logvar_q, mu_p, logvar_p")
    t = logvar_q - logvar_p
    kl = 0.5 * (torch.expm1(t) - t + (mu_q - mu_p) ** 2 * torch.exp(-logvar_p))
    return sum_except_batch(kl)
