r"""GAN objectives as pure functions of the discriminator's outputs, one value per example.

The discriminator ``D`` outputs a real number per example: a *logit* ``a`` for the minimax,
non-saturating and hinge losses (``D(x) = sigmoid(a)`` is the probability "real"), an unbounded
*critic score* for the Wasserstein loss. ``r`` is the output on a real example, ``f`` on a
generated one; every function returns a tensor of per-example losses that both players
*minimise* (take ``.mean()`` for the batch loss).

============== =============================================== =================================
name           discriminator loss (per pair)                   generator loss (per fake)
============== =============================================== =================================
minimax        ``-log D(x) - log(1 - D(G(z)))``                ``log(1 - D(G(z)))`` (saturates)
               ``= softplus(-r) + softplus(f)``                ``= -softplus(f)``
nonsaturating  as minimax                                      ``-log D(G(z)) = softplus(-f)``
hinge          ``relu(1 - r) + relu(1 + f)``                   ``-f``
wasserstein    ``f - r`` (plus a gradient penalty)             ``-f``
============== =============================================== =================================

``softplus(a) = log(1 + e^a)`` is used instead of ``log(sigmoid(a))`` because it is exact for
large ``|a|`` (``-log sigmoid(a) = softplus(-a)``, ``-log(1 - sigmoid(a)) = softplus(a)``).

The minimax pair is Goodfellow et al. (2014); the non-saturating generator loss is their
practical fix; hinge is from Lim & Ye (2017) and Miyato et al. (2018); the Wasserstein critic
from Arjovsky et al. (2017) and the gradient penalty from Gulrajani et al. (2017).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

__all__ = ["LOSSES", "check_loss", "discriminator_loss", "generator_loss", "interpolate",
           "gradient_penalty", "optimal_discriminator", "minimax_value"]

LOSSES = ("minimax", "nonsaturating", "hinge", "wasserstein")


def check_loss(loss: object, arg: str = "loss") -> str:
    """Return ``loss`` if it names a GAN loss, else a ValueError listing the valid names."""
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"{arg} must be one of {', '.join(map(repr, LOSSES))}; got {loss!r}")
    return loss


def _pair(real_out: torch.Tensor, fake_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r, f = real_out.reshape(real_out.shape[0], -1), fake_out.reshape(fake_out.shape[0], -1)
    if r.shape[1] != 1 or f.shape[1] != 1:
        raise ValueError(f"real_out and fake_out must hold one output per example, shapes (B,) "
                         f"or (B, 1); got {tuple(real_out.shape)} and {tuple(fake_out.shape)}")
    if r.shape[0] != f.shape[0]:
        raise ValueError(f"real_out and fake_out must have the same batch size (the losses pair "
                         f"them); got {r.shape[0]} and {f.shape[0]}")
    return r[:, 0], f[:, 0]


_D_LOSS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "minimax": lambda r, f: F.softplus(-r) + F.softplus(f),
    "nonsaturating": lambda r, f: F.softplus(-r) + F.softplus(f),
    "hinge": lambda r, f: F.relu(1.0 - r) + F.relu(1.0 + f),
    "wasserstein": lambda r, f: f - r,
}

_G_LOSS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "minimax": lambda f: -F.softplus(f),
    "nonsaturating": lambda f: F.softplus(-f),
    "hinge": lambda f: -f,
    "wasserstein": lambda f: -f,
}


def discriminator_loss(real_out: torch.Tensor, fake_out: torch.Tensor,
                       loss: str = "nonsaturating") -> torch.Tensor:
    """Per-example discriminator loss ``(B,)`` for outputs on ``B`` real and ``B`` fake examples.

    Args:
        real_out, fake_out: ``(B,)`` or ``(B, 1)`` logits (critic scores for ``"wasserstein"``).
        loss: one of :data:`LOSSES` (the module table).
    """
    check_loss(loss)
    r, f = _pair(real_out, fake_out)
    return _D_LOSS[loss](r, f)


def generator_loss(fake_out: torch.Tensor, loss: str = "nonsaturating") -> torch.Tensor:
    """Per-example generator loss ``(B,)`` from the discriminator's outputs on fakes.

    ``"minimax"`` is the saturating ``log(1 - D(G(z)))``: its gradient vanishes exactly when the
    discriminator confidently rejects the fakes, early in training.
    """
    check_loss(loss)
    f = fake_out.reshape(fake_out.shape[0], -1)
    if f.shape[1] != 1:
        raise ValueError(f"fake_out must hold one output per example, shape (B,) or (B, 1); got "
                         f"{tuple(fake_out.shape)}")
    return _G_LOSS[loss](f[:, 0])


def interpolate(real: torch.Tensor, fake: torch.Tensor, *,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random points on the segments between paired real and fake examples.

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U(0, 1)`` per example, drawn on
    ``generator`` (Gulrajani et al. 2017, Algorithm 1). Returns ``(x_hat, eps)``, ``eps`` of
    shape ``(B,)``.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape; got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    kw = {"device": generator.device} if generator is not None else {"device": real.device}
    eps = torch.rand(real.shape[0], generator=generator, dtype=real.dtype, **kw).to(real.device)
    w = eps.reshape(-1, *([1] * (real.ndim - 1)))
    return w * real + (1.0 - w) * fake, eps


def gradient_penalty(critic: Callable[..., torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, *, generator: torch.Generator | None = None,
                     target: float = 1.0, **critic_kwargs) -> torch.Tensor:
    r"""Per-example WGAN-GP penalty ``(||grad_x critic(x_hat)|| - target)^2`` ``(B,)``.

    ``x_hat`` is :func:`interpolate` of the pair; the gradient is taken with
    ``create_graph=True`` so the penalty can itself be differentiated with respect to the
    critic's weights. A 1-Lipschitz critic whose gradient has norm 1 everywhere (for example
    ``w . x`` with ``||w|| = 1``) has zero penalty. ``critic_kwargs`` (e.g. ``labels=``) are passed
    to the critic. The fake examples are detached: the penalty trains only the critic.
    """
    x_hat, _ = interpolate(real.detach(), fake.detach(), generator=generator)
    x_hat.requires_grad_(True)
    out = critic(x_hat, **critic_kwargs)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = grad.reshape(grad.shape[0], -1).norm(dim=1)
    return (norm - target) ** 2


def optimal_discriminator(p_data: torch.Tensor, p_model: torch.Tensor) -> torch.Tensor:
    r"""The discriminator that maximises ``V(D, G)`` for fixed densities:
    ``D*(x) = p_data(x) / (p_data(x) + p_model(x))`` (0.5 where both are 0)."""
    if p_data.shape != p_model.shape:
        raise ValueError(f"p_data and p_model must have the same shape; got "
                         f"{tuple(p_data.shape)} and {tuple(p_model.shape)}")
    if (p_data < 0).any() or (p_model < 0).any():
        raise ValueError("p_data and p_model must be densities (>= 0); got negative values")
    total = p_data + p_model
    return torch.where(total > 0, p_data / torch.where(total > 0, total, 1.0),
                       torch.full_like(total, 0.5))


def minimax_value(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    r"""Monte Carlo estimate of ``V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))]`` from the
    discriminator's *probabilities* on real and fake examples. At the optimum of both players
    (``p_model = p_data``, ``D = 1/2``) it equals ``-log 4``."""
    for name, d in (("d_real", d_real), ("d_fake", d_fake)):
        if d.numel() == 0:
            raise ValueError(f"{name} must be a non-empty tensor of probabilities in [0, 1]; "
                             f"got an empty tensor")
        if d.isnan().any() or (d < 0).any() or (d > 1).any():
            raise ValueError(f"{name} must be a non-empty tensor of probabilities in [0, 1] "
                             f"(apply sigmoid to logits first); got values in "
                             f"[{float(d.min())}, {float(d.max())}]")
    return torch.log(d_real).mean() + torch.log1p(-d_fake).mean()
