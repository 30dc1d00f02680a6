r"""The change-of-variables formula: the density of :math:`X = f(Z)` for an invertible ``f``.

If :math:`Z` has density :math:`p_Z` and :math:`f` is invertible and differentiable, then

.. math::  p_X(x) = p_Z\big(f^{-1}(x)\big)\,\Big|\det \frac{\partial f^{-1}}{\partial x}(x)\Big|,
           \qquad
           \log p_X(x) = \log p_Z(f^{-1}(x)) + \log\Big|\det J_{f^{-1}}(x)\Big|

(equivalently :math:`- \log|\det J_f(z)|` at :math:`z = f^{-1}(x)`): the Jacobian determinant
measures how much ``f`` stretches volume, and density is mass per volume. Normalising flows are
built on it; the VAE and diffusion chapters use it implicitly.

Here the Jacobian is computed by automatic differentiation (``torch.func.jacrev``, vectorised
over the batch with ``torch.func.vmap``): ``D`` backward passes and a ``D x D`` determinant per
example, fine for the 1D and 2D examples of chapter 2, too slow for images (flows use maps whose
determinant is cheap by construction). ``log|det|`` comes from ``torch.linalg.slogdet``, which
works from an LU factorisation and never forms the determinant itself, so it neither overflows
nor underflows in high dimension. Autograd differentiates the map as written, so the result is
as accurate as that: ``torch.sigmoid``'s derivative :math:`\sigma(1-\sigma)` loses relative
precision as :math:`\sigma \to 1` and is exactly 0 beyond :math:`|x| \approx 37` in float64
(``log|det| = -inf`` there), where a closed-form log-determinant would not be.
Taught in chapter 2 ("Change of variables").
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import jacrev, vmap

__all__ = ["log_abs_det_jacobian", "pushforward_log_prob"]


def _check_points(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating tensor (B, D) or (B,), got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim not in (1, 2):
        raise ValueError(f"x must have shape (B, D) (or (B,) for a 1D map), got "
                         f"{tuple(x.shape)}; flatten first, e.g. x.flatten(1)")
    return x


def _value_and_jacobian(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``fn(x)`` and the per-example Jacobians ``(B, D, D)`` (``(B,)`` derivatives for 1D ``x``).

    ``fn`` works on batches; it is applied here to one example at a time (a batch of one,
    ``x_i[None]``) inside ``vmap``, so ``fn`` must treat examples independently.
    """
    def single(xi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        yi = fn(xi[None])
        if not isinstance(yi, torch.Tensor) or yi.shape != (1, *xi.shape):
            raise ValueError(f"fn must map a batch (b, D) to (b, D) (or (b,) to (b,)), got "
                             f"output shape {getattr(yi, 'shape', type(yi).__name__)} for "
                             f"input shape {(1, *xi.shape)}")
        return yi[0], yi[0]

    jac, y = vmap(jacrev(single, has_aux=True))(x)
    return y, jac


def _log_abs_det(jac: torch.Tensor, ndim: int) -> torch.Tensor:
    if ndim == 1:
        return torch.log(jac.abs())                                     # 1D: log |f'(x)|
    return torch.linalg.slogdet(jac).logabsdet


def log_abs_det_jacobian(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
                         ) -> torch.Tensor:
    r""":math:`\log|\det \partial\,\mathrm{fn} / \partial x|` at each row of ``x``, by autograd.

    Args:
        fn: an elementwise-in-the-batch map ``(b, D) -> (b, D)`` (or ``(b,) -> (b,)`` for a 1D
            map; e.g. ``torch.exp``).
        x: ``(B, D)`` points (``(B,)`` for a 1D map).

    Returns:
        ``(B,)``; ``-inf`` where the Jacobian is singular. Differentiable in ``x`` and in
        parameters ``fn`` closes over (so a flow can be trained through it).
    """
    x = _check_points(x)
    _, jac = _value_and_jacobian(fn, x)
    return _log_abs_det(jac, x.ndim)


def pushforward_log_prob(base_log_prob: Callable[[torch.Tensor], torch.Tensor],
                         inverse: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
                         ) -> torch.Tensor:
    r"""Log-density of :math:`X = f(Z)` at ``x``, from the base density and :math:`f^{-1}`.

    .. math::  \log p_X(x) = \log p_Z\big(f^{-1}(x)\big) + \log\big|\det J_{f^{-1}}(x)\big|

    Args:
        base_log_prob: :math:`\log p_Z`, ``(B, D) -> (B,)`` (``(B,) -> (B,)`` in 1D).
        inverse: :math:`f^{-1}`, a batch map ``(b, D) -> (b, D)``.
        x: ``(B, D)`` points (``(B,)`` in 1D).

    Returns:
        ``(B,)`` log-densities in nats.
    """
    x = _check_points(x)
    z, jac = _value_and_jacobian(inverse, x)
    log_pz = base_log_prob(z)
    if not isinstance(log_pz, torch.Tensor) or log_pz.shape != x.shape[:1]:
        raise ValueError(f"base_log_prob must return one value per point, shape "
                         f"({x.shape[0]},), got {getattr(log_pz, 'shape', type(log_pz).__name__)}")
    return log_pz + _log_abs_det(jac, x.ndim)
