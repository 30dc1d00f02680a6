r"""The two-player training step, written out, and the 2D mode diagnostics.

One GAN step is two optimiser steps on two networks with opposite aims::

    # 1. discriminator: tell real from fake (the fakes are constants here)
    z     = randn(B, latent_dim)
    fake  = G(z).detach()
    loss_d = discriminator_loss(D(real), D(fake), loss).mean() (+ gp_weight * penalty)
    opt_d.zero_grad(); loss_d.backward(); opt_d.step()

    # 2. generator: fool the (now fixed) discriminator
    z     = randn(B, latent_dim)
    loss_g = generator_loss(D(G(z)), loss).mean()
    opt_g.zero_grad(); loss_g.backward(); opt_g.step()

:func:`discriminator_step` and :func:`generator_step` are exactly these two halves; the recipes
call the first ``n_critic`` times per call of the second (5 in the WGAN-GP paper, 2 in the kit's
``wgan-gp-mnist5k`` recipe, 1 otherwise). The
discriminator's weights are frozen (``requires_grad=False``) during the generator's half, so its
backward pass computes gradients only for the generator; their own flags are restored after.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from genlib.gan.losses import check_loss, discriminator_loss, generator_loss, gradient_penalty
from genlib.gan.models import sample_latent

__all__ = ["discriminator_step", "generator_step", "mode_coverage"]


def discriminator_step(G: nn.Module, D: nn.Module, opt_d: torch.optim.Optimizer,
                       real: torch.Tensor, *, loss: str = "nonsaturating",
                       noise: torch.Generator | None = None, labels: torch.Tensor | None = None,
                       gp_weight: float = 0.0) -> dict[str, Any]:
    """One optimiser step of ``D`` on a batch of ``real`` examples and as many fakes.

    Args:
        G, D: the networks (:class:`~genlib.gan.Generator`, :class:`~genlib.gan.Discriminator`).
        opt_d: the discriminator's optimiser.
        real: ``(B, ...)`` real examples, in the generator's output space.
        loss: one of :data:`~genlib.gan.LOSSES`.
        noise: generator of ``z`` and of the penalty's interpolation weights.
        labels: class labels of the real batch (conditional models); the fakes get the same.
        gp_weight: weight of :func:`~genlib.gan.gradient_penalty` (10 for WGAN-GP, 0: none).

    Returns:
        ``loss_d`` (without the penalty), ``gp`` (the mean penalty, 0 when unused), and the mean
        outputs ``d_real`` and ``d_fake``, all detached.
    """
    check_loss(loss)
    if not gp_weight >= 0:
        raise ValueError(f"gp_weight must be >= 0, got {gp_weight!r}")
    z = sample_latent(real.shape[0], G.config.latent_dim, generator=noise, device=real.device)
    with torch.no_grad():
        fake = G(z, labels)
    out_real, out_fake = D(real, labels), D(fake, labels)
    loss_d = discriminator_loss(out_real, out_fake, loss).mean()
    total = loss_d
    gp = torch.zeros((), device=real.device)
    if gp_weight > 0:
        gp = gradient_penalty(D, real, fake, generator=noise, labels=labels).mean()
        total = loss_d + gp_weight * gp
    opt_d.zero_grad(set_to_none=True)
    total.backward()
    opt_d.step()
    return {"loss_d": loss_d.detach(), "gp": gp.detach(),
            "d_real": out_real.detach().mean(), "d_fake": out_fake.detach().mean()}


def generator_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, batch_size: int,
                   *, loss: str = "nonsaturating", noise: torch.Generator | None = None,
                   labels: torch.Tensor | None = None) -> dict[str, Any]:
    """One optimiser step of ``G``: ``batch_size`` fakes scored by the fixed ``D``.

    Returns ``loss_g`` (detached). ``labels``: the classes to generate (conditional models).
    """
    check_loss(loss)
    device = next(G.parameters()).device
    z = sample_latent(batch_size, G.config.latent_dim, generator=noise, device=device)
    flags = [p.requires_grad for p in D.parameters()]
    D.requires_grad_(False)
    try:
        loss_g = generator_loss(D(G(z, labels), labels), loss).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
    finally:  # restore each parameter's own flag (a caller may have frozen some on purpose)
        for p, flag in zip(D.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    opt_g.step()
    return {"loss_g": loss_g.detach()}


def mode_coverage(points: torch.Tensor, modes: torch.Tensor, std: float, *, n_sd: float = 3.0,
                  min_fraction: float = 0.25) -> dict[str, Any]:
    r"""How well samples cover a mixture of ``K`` isotropic Gaussians (e.g. the ``ring`` toy).

    Each point is assigned to its nearest mode; it is *high quality* when it lies within
    ``n_sd * std`` of it (Srivastava et al. 2017). A mode is *covered* when it holds at least
    ``min_fraction`` of its fair share ``n / K`` of high-quality points (a quarter, by default),
    so a mode kept alive by a handful of stray points does not count.

    For the data itself about ``1 - exp(-n_sd^2 / 2)`` of the points are high quality in 2D
    (98.9% for 3 standard deviations), and every mode is covered.

    Returns:
        ``n``, ``high_quality`` (fraction), ``counts`` (high-quality points per mode), ``shares``
        (``counts / n``), ``modes_covered``, ``n_modes``, ``min_share``.
    """
    if points.ndim != 2 or modes.ndim != 2 or points.shape[1] != modes.shape[1]:
        raise ValueError(f"points (N, D) and modes (K, D) must share D; got "
                         f"{tuple(points.shape)} and {tuple(modes.shape)}")
    if not std > 0 or not n_sd > 0:
        raise ValueError(f"std and n_sd must be > 0; got std={std!r}, n_sd={n_sd!r}")
    p = points.detach().to("cpu", torch.float64)
    m = modes.detach().to("cpu", torch.float64)
    dist = torch.cdist(p, m)
    nearest_d, nearest = dist.min(dim=1)
    good = nearest_d <= n_sd * std
    k = m.shape[0]
    counts = torch.bincount(nearest[good], minlength=k)
    n = p.shape[0]
    shares = counts.double() / max(n, 1)
    covered = int((counts >= min_fraction * n / k).sum())
    return {"n": n, "high_quality": float(good.double().mean()) if n else math.nan,
            "counts": counts.tolist(), "shares": shares.tolist(), "modes_covered": covered,
            "n_modes": k, "min_share": float(shares.min())}
