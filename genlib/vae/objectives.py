r"""The VAE's objectives as pure functions of a model and a batch, per example.

For one image :math:`x` with encoder :math:`q(z \mid x) = \mathcal N(\mu, \mathrm{diag}\,\sigma^2)`,
prior :math:`p(z) = \mathcal N(0, I)` and decoder :math:`p(x \mid z)`:

.. math::

   \log p(x) \;\ge\; \mathrm{ELBO}(x) =
   \underbrace{\mathbb E_{q(z \mid x)}[\log p(x \mid z)]}_{\text{reconstruction}}
   - \underbrace{\mathrm{KL}\big(q(z \mid x)\,\|\,p(z)\big)}_{\text{rate}},

the reconstruction term estimated with one reparameterised sample
:math:`z = \mu + \sigma \odot \epsilon`, the KL term in closed form. The gap is
:math:`\mathrm{KL}(q(z \mid x) \,\|\, p(z \mid x))`.

The importance-weighted bound (IWAE, Burda et al. 2016) averages ``k`` importance weights
:math:`w_i = p(x, z_i) / q(z_i \mid x)` inside the log,

.. math::  \mathcal L_k(x) = \mathbb E\Big[\log \frac1k \sum_{i=1}^k w_i\Big], \qquad
           \mathcal L_1 = \mathrm{ELBO} \le \mathcal L_k \le \mathcal L_{k+1} \le \log p(x),

and :math:`\mathcal L_k \to \log p(x)` as :math:`k \to \infty`: with ``k = 500`` or more it is the
standard estimate of a VAE's test log-likelihood.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from genlib.prob import Estimate, kl_normal_diag, mc_mean
from genlib.vae.model import VAE

__all__ = ["ELBOTerms", "elbo_terms", "vae_loss", "kl_to_prior", "iwae_log_weights",
           "iwae_bound", "iwae_loss", "iwae_nll", "LOG_2PI"]

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class ELBOTerms:
    """Per-example terms of the ELBO, each ``(B,)`` in nats.

    Attributes:
        reconstruction: ``log p(x | z)`` at one sample ``z ~ q(z | x)``.
        kl: ``KL(q(z | x) || p(z))``, in closed form (the *rate*).
        elbo: ``reconstruction - kl``.
    """

    reconstruction: torch.Tensor
    kl: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        return self.reconstruction - self.kl


def kl_to_prior(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` per example, ``(B,)``:
    :math:`\\tfrac12 \\sum_d (\\mu_d^2 + \\sigma_d^2 - 1 - \\log \\sigma_d^2)`."""
    return kl_normal_diag(mu, logvar)


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be an integer >= 1 (importance samples per image), got {k!r}")
    return int(k)


def _eps(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None
         ) -> torch.Tensor:
    if generator is None:
        return torch.randn(shape, dtype=like.dtype, device=like.device)
    return torch.randn(shape, generator=generator, dtype=like.dtype,
                       device=generator.device).to(like.device)


def elbo_terms(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, *,
               generator: torch.Generator | None = None) -> ELBOTerms:
    """Reconstruction and KL terms of the ELBO of each image, one reparameterised sample each.

    Args:
        model: a :class:`~genlib.vae.VAE`.
        x: images ``(B, C, H, W)`` suited to the decoder (see :meth:`VAE.log_px`).
        y: labels ``(B,)`` for a conditional VAE, else None.
        generator: source of ``eps`` (a CPU generator makes it reproducible on any device).

    Returns:
        :class:`ELBOTerms`; differentiable in the model's parameters.
    """
    mu, logvar = model.encode(x, y)
    z = mu + torch.exp(0.5 * logvar) * _eps(tuple(mu.shape), mu, generator)
    return ELBOTerms(reconstruction=model.log_px(x, model.decode(z, y)),
                     kl=kl_to_prior(mu, logvar))


def vae_loss(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, *, beta: float = 1.0,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, ELBOTerms]:
    r"""The training loss :math:`-\frac1B \sum_b [\text{rec}_b - \beta\,\text{KL}_b]` and the terms.

    ``beta = 1`` is the negative ELBO; ``beta > 1`` is the beta-VAE (more weight on the rate:
    smoother, less detailed codes), ``beta < 1`` the opposite.
    """
    if not (isinstance(beta, numbers.Real) and beta >= 0):
        raise ValueError(f"beta must be a number >= 0, got {beta!r}")
    terms = elbo_terms(model, x, y, generator=generator)
    return -(terms.reconstruction - beta * terms.kl).mean(), terms


def iwae_log_weights(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, *, k: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    r"""``log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x)`` for ``k`` draws
    :math:`z_i \sim q(z \mid x)` per image: ``(k, B)``."""
    k = _check_k(k)
    mu, logvar = model.encode(x, y)                                  # (B, D)
    eps = _eps((k, *mu.shape), mu, generator)                        # (k, B, D)
    z = mu + torch.exp(0.5 * logvar) * eps
    b, d = mu.shape
    yk = None if y is None else y.repeat(k)
    params = model.decode(z.reshape(k * b, d), yk)
    params = params.view(k, b, *params.shape[1:])
    log_px = model.log_px(x, params)                                 # (k, B)
    log_pz = -0.5 * (z ** 2).sum(-1) - 0.5 * d * LOG_2PI
    log_qz = -0.5 * (eps ** 2).sum(-1) - 0.5 * logvar.sum(-1) - 0.5 * d * LOG_2PI
    return log_px + log_pz - log_qz


def iwae_loss(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, *, k: int,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Negative IWAE bound averaged over the batch: the IWAE training objective (``k = 1``:
    the negative ELBO)."""
    logw = iwae_log_weights(model, x, y, k=k, generator=generator)
    return -(torch.logsumexp(logw, 0) - math.log(logw.shape[0])).mean()


@torch.no_grad()
def iwae_bound(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, *, k: int = 500,
               batch_size: int = 100, chunk: int = 100,
               generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The importance-weighted lower bound :math:`\log \frac1k \sum_i w_i` of each
    :math:`\log p(x)`, ``(N,)`` in nats (one draw of the ``k`` samples per image).

    Runs without gradients, in eval mode (restores the model's mode after), ``batch_size`` images
    and ``chunk`` latent samples at a time, and accumulates in float64.
    """
    k = _check_k(k)
    for name, v in (("batch_size", batch_size), ("chunk", chunk)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    was_training = model.training
    model.eval()
    try:
        out = []
        for i in range(0, x.shape[0], batch_size):
            xb = x[i:i + batch_size]
            yb = None if y is None else y[i:i + batch_size]
            parts = []
            for j in range(0, k, chunk):
                parts.append(iwae_log_weights(model, xb, yb, k=min(chunk, k - j),
                                              generator=generator).double())
            logw = torch.cat(parts)                                  # (k, b)
            out.append(torch.logsumexp(logw, 0) - math.log(k))
        return torch.cat(out).cpu()
    finally:
        model.train(was_training)


def iwae_nll(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, *, k: int = 500,
             batch_size: int = 100, chunk: int = 100,
             generator: torch.Generator | None = None) -> Estimate:
    """Mean negative log-likelihood over the images (IWAE estimate with ``k`` samples) with its
    standard error over images: an upper bound on the true NLL in expectation, tight as ``k``
    grows."""
    nll = -iwae_bound(model, x, y, k=k, batch_size=batch_size, chunk=chunk, generator=generator)
    if nll.numel() < 2:
        raise ValueError(f"x: need at least 2 images for a standard error, got {nll.numel()}")
    return mc_mean(nll)
