r"""A latent-variable model whose likelihood and posterior are exact: the linear-Gaussian model.

.. math::  z \sim \mathcal N(0, I_d), \qquad x \mid z \sim \mathcal N(W z + b, \sigma^2 I_n).

Everything a VAE must approximate is available in closed form here (probabilistic PCA,
Tipping and Bishop 1999):

- the marginal :math:`p(x) = \mathcal N(b, W W^\top + \sigma^2 I)`;
- the posterior :math:`p(z \mid x) = \mathcal N(m, S)` with
  :math:`S = (I + W^\top W / \sigma^2)^{-1}`, :math:`m = S W^\top (x - b) / \sigma^2`;
- the ELBO of any Gaussian :math:`q(z) = \mathcal N(\mu, \Sigma)`,

  .. math::  \mathrm{ELBO} = \log \mathcal N(x; W\mu + b, \sigma^2 I)
             - \frac{\operatorname{tr}(W^\top W \Sigma)}{2\sigma^2}
             - \mathrm{KL}\big(\mathcal N(\mu, \Sigma) \,\|\, \mathcal N(0, I)\big),

  which equals :math:`\log p(x)` exactly when :math:`q` is the posterior.

Chapter 4 checks the ELBO's inequality, its gap and the IWAE bound against these formulas.
Computations run in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["LinearGaussian"]


@dataclass(frozen=True)
class LinearGaussian:
    """``x = W z + b + sigma * noise`` with ``z ~ N(0, I)``.

    Attributes:
        W: ``(n, d)`` loading matrix; b: ``(n,)`` offset; sigma: noise standard deviation > 0.
    """

    W: torch.Tensor
    b: torch.Tensor
    sigma: float

    def __post_init__(self) -> None:
        if not isinstance(self.W, torch.Tensor) or self.W.ndim != 2:
            raise ValueError(f"W must be an (n, d) tensor, got {getattr(self.W, 'shape', self.W)}")
        if not isinstance(self.b, torch.Tensor) or tuple(self.b.shape) != (self.W.shape[0],):
            raise ValueError(f"b must have shape ({self.W.shape[0]},), got "
                             f"{getattr(self.b, 'shape', self.b)}")
        if not float(self.sigma) > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma!r}")
        object.__setattr__(self, "W", self.W.double())
        object.__setattr__(self, "b", self.b.double())

    @classmethod
    def random(cls, n: int, d: int, *, sigma: float = 0.5, seed: int = 0) -> LinearGaussian:
        """A model with ``W``'s entries and ``b``'s drawn from ``N(0, 1)`` with ``seed``."""
        g = torch.Generator().manual_seed(seed)
        return cls(torch.randn(n, d, generator=g, dtype=torch.float64),
                   torch.randn(n, generator=g, dtype=torch.float64), sigma)

    @property
    def n(self) -> int:
        return self.W.shape[0]

    @property
    def d(self) -> int:
        return self.W.shape[1]

    def sample(self, m: int, *, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """``m`` draws ``(x, z)``: ``(m, n)`` and ``(m, d)``."""
        z = torch.randn(m, self.d, generator=generator, dtype=torch.float64)
        x = z @ self.W.T + self.b + self.sigma * torch.randn(m, self.n, generator=generator,
                                                             dtype=torch.float64)
        return x, z

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)`` per row of ``x`` ``(m, n)``: ``(m,)``."""
        cov = self.W @ self.W.T + self.sigma ** 2 * torch.eye(self.n, dtype=torch.float64)
        dist = torch.distributions.MultivariateNormal(self.b, covariance_matrix=cov)
        return dist.log_prob(x.double())

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact ``p(z | x)``: means ``(m, d)`` and the covariance ``(d, d)`` (the same for
        every ``x``)."""
        s2 = self.sigma ** 2
        S = torch.linalg.inv(torch.eye(self.d, dtype=torch.float64) + self.W.T @ self.W / s2)
        m = (x.double() - self.b) @ self.W @ S.T / s2
        return m, S

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(x, z) = log p(x | z) + log p(z)``; ``x`` ``(..., n)``, ``z`` ``(..., d)``."""
        r = x.double() - z.double() @ self.W.T - self.b
        log_px_z = (-0.5 * (r / self.sigma) ** 2).sum(-1) - self.n * (
            math.log(self.sigma) + 0.5 * math.log(2 * math.pi))
        log_pz = (-0.5 * z.double() ** 2).sum(-1) - 0.5 * self.d * math.log(2 * math.pi)
        return log_px_z + log_pz

    def elbo(self, x: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
        """Closed-form ELBO of ``q(z | x) = N(mu, cov)`` per row: ``x`` ``(m, n)``, ``mu``
        ``(m, d)``, ``cov`` ``(d, d)`` or ``(m, d, d)``; returns ``(m,)``."""
        x, mu, cov = x.double(), mu.double(), cov.double()
        s2 = self.sigma ** 2
        r = x - mu @ self.W.T - self.b
        expected_rec = (-0.5 * (r ** 2).sum(-1) / s2
                        - 0.5 * torch.einsum("ij,...ji->...", self.W.T @ self.W, cov) / s2
                        - self.n * (math.log(self.sigma) + 0.5 * math.log(2 * math.pi)))
        kl = 0.5 * (torch.einsum("...ii->...", cov) + (mu ** 2).sum(-1) - self.d
                    - torch.logdet(cov))
        return expected_rec - kl
