r"""Gaussian mixtures fitted by expectation-maximisation: chapter 1's first generative model.

A mixture of :math:`K` Gaussians is the simplest model that is both a density and a sampler:

.. math::  p_\theta(x) = \sum_{k=1}^K \pi_k \, \mathcal N(x \mid \mu_k, \Sigma_k)

Sampling is ancestral (draw a component :math:`k \sim \mathrm{Cat}(\pi)`, then
:math:`x \sim \mathcal N(\mu_k, \Sigma_k)`), and the log-likelihood is exact, computed with
log-sum-exp over components. Fitting uses EM (Dempster, Laird & Rubin, 1977), which never lowers
the training log-likelihood: each :meth:`GaussianMixture.em_step` is one E-step
(responsibilities :math:`r_{nk} = p(k \mid x_n)`) and one M-step (closed-form weighted means and
covariances). A floor ``min_var`` is added to every variance so that no component collapses onto
a single point (where the likelihood is unbounded).

Taught in chapter 1, section "A first generative model"; tested in ``tests/test_mixture.py``.
Shapes: ``x`` is ``(B, D)``; ``K`` components.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

Covariance = Literal["diag", "full"]
COVARIANCES = ("diag", "full")


class GaussianMixture(nn.Module):
    """A mixture of ``n_components`` Gaussians in ``dim`` dimensions.

    Args:
        n_components: number of components ``K`` (>= 1).
        dim: data dimension ``D`` (>= 1).
        covariance: ``"diag"`` (a variance per dimension: ``K * D`` numbers) or ``"full"``
            (a covariance matrix per component: ``K * D * (D + 1) / 2`` numbers).
        min_var: variance floor added in every M-step (> 0).

    Parameters live in buffers (EM does not use gradients), so ``state_dict()`` holds them all:
    ``logits (K,)``, ``means (K, D)`` and ``var (K, D)`` or ``scale_tril (K, D, D)``.
    """

    def __init__(self, n_components: int, dim: int, covariance: Covariance = "diag",
                 min_var: float = 1e-3):
        super().__init__()
        if not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components must be an integer >= 1, got {n_components!r}")
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        if covariance not in COVARIANCES:
            raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
        if not min_var > 0:
            raise ValueError(f"min_var must be > 0, got {min_var!r}")
        self.n_components, self.dim = n_components, dim
        self.covariance, self.min_var = covariance, float(min_var)
        self.register_buffer("logits", torch.zeros(n_components))
        self.register_buffer("means", torch.zeros(n_components, dim))
        if covariance == "diag":
            self.register_buffer("var", torch.ones(n_components, dim))
        else:
            self.register_buffer("scale_tril", torch.eye(dim).repeat(n_components, 1, 1))

    # ----------------------------------------------------------------- densities
    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"x must have shape (B, {self.dim}), got {tuple(x.shape)}; flatten images "
                f"first, e.g. x.flatten(1)"
            )
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or infinite values")
        return x.to(self.means.dtype)

    def joint_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log pi_k + log N(x | mu_k, Sigma_k)`` for every component: ``(B, D) -> (B, K)``."""
        x = self._check_x(x)
        log_pi = torch.log_softmax(self.logits, dim=0)
        diff = x[:, None, :] - self.means[None]                        # (B, K, D)
        if self.covariance == "diag":
            maha = (diff**2 / self.var).sum(-1)                            # (B, K)
            logdet = self.var.log().sum(-1)                                # (K,)
        else:
            # Solve L y = diff for y, so that ||y||^2 = diff^T Sigma^{-1} diff.
            L = self.scale_tril.expand(x.shape[0], -1, -1, -1)            # (B, K, D, D)
            y = torch.linalg.solve_triangular(L, diff[..., None], upper=False)[..., 0]
            maha = (y**2).sum(-1)
            logdet = 2 * self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        log_normal = -0.5 * (self.dim * math.log(2 * math.pi) + logdet + maha)
        return log_pi + log_normal

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)`` in nats, per example: ``(B, D) -> (B,)`` (log-sum-exp over k)."""
        return torch.logsumexp(self.joint_log_prob(x), dim=1)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior ``p(k | x)`` (the E-step): ``(B, D) -> (B, K)``, rows sum to one."""
        return torch.softmax(self.joint_log_prob(x), dim=1)

    def covariances(self) -> torch.Tensor:
        """Covariance matrices ``(K, D, D)`` (diagonal ones for ``covariance="diag"``)."""
        if self.covariance == "diag":
            return torch.diag_embed(self.var)
        return self.scale_tril @ self.scale_tril.transpose(-1, -2)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral sampling: ``k ~ Cat(pi)``, then ``x ~ N(mu_k, Sigma_k)``.

        Returns ``(x, k)`` of shapes ``(n, D)`` and ``(n,)``.
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        device = self.means.device
        probs = torch.softmax(self.logits, dim=0)
        k = torch.multinomial(probs.cpu(), n, replacement=True, generator=generator).to(device)
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.means.dtype)
        eps = eps.to(device)
        if self.covariance == "diag":
            x = self.means[k] + self.var[k].sqrt() * eps
        else:
            x = self.means[k] + (self.scale_tril[k] @ eps[..., None])[..., 0]
        return x, k

    # ----------------------------------------------------------------------- EM
    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Start EM: means at ``K`` distinct random data points, equal weights, and every
        component's covariance equal to the data's (diagonal or full)."""
        x = self._check_x(x)
        if x.shape[0] < self.n_components:
            raise ValueError(
                f"x must hold at least n_components={self.n_components} points to initialise "
                f"from, got {x.shape[0]}"
            )
        idx = torch.randperm(x.shape[0], generator=generator)[: self.n_components]
        self.means.copy_(x[idx.to(x.device)])
        self.logits.zero_()
        centred = x - x.mean(0)
        if self.covariance == "diag":
            self.var.copy_((centred.pow(2).mean(0) + self.min_var).expand_as(self.var))
        else:
            cov = centred.T @ centred / x.shape[0] + self.min_var * torch.eye(self.dim)
            self.scale_tril.copy_(torch.linalg.cholesky(cov).expand_as(self.scale_tril))

    @torch.no_grad()
    def em_step(self, x: torch.Tensor) -> torch.Tensor:
        """One EM iteration on the batch ``x (B, D)``.

        Returns the mean log-likelihood per example *before* the update (nats); EM guarantees
        the value after the update is at least as high (up to the variance floor).
        """
        x = self._check_x(x)
        joint = self.joint_log_prob(x)                                   # (B, K)
        log_lik = torch.logsumexp(joint, dim=1)                          # (B,)
        r = torch.softmax(joint, dim=1)                                  # E-step, (B, K)
        nk = r.sum(0) + 1e-10                                            # (K,)
        # M-step: the weighted maximum-likelihood estimates, in closed form.
        self.logits.copy_(torch.log(nk / nk.sum()))
        means = (r.T @ x) / nk[:, None]                                  # (K, D)
        self.means.copy_(means)
        if self.covariance == "diag":
            var = (r.T @ x.pow(2)) / nk[:, None] - means.pow(2)
            self.var.copy_(var.clamp_min(0) + self.min_var)
        else:
            diff = x[None, :, :] - means[:, None, :]                     # (K, B, D)
            weighted = diff * r.T[:, :, None]                            # (K, B, D)
            cov = weighted.transpose(1, 2) @ diff / nk[:, None, None]    # (K, D, D)
            cov = cov + self.min_var * torch.eye(self.dim, dtype=cov.dtype, device=cov.device)
            self.scale_tril.copy_(torch.linalg.cholesky(cov))
        return log_lik.mean()

    def extra_repr(self) -> str:
        return (f"n_components={self.n_components}, dim={self.dim}, "
                f"covariance={self.covariance!r}, min_var={self.min_var}")
