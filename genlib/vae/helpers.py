"""Using a trained VAE: samples, reconstructions, interpolations and latent traversals.

Every helper runs without gradients in eval mode (restoring the model's mode after) and returns
the decoder's *mean* image ``E[x | z]`` in ``[0, 1]`` by default: the picture of what the model
believes, without the per-pixel noise of a draw from ``p(x | z)`` (``mean=False`` draws).
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any

import torch

from genlib.vae.model import VAE

__all__ = ["sample_images", "reconstruct", "interpolate", "latent_traversal", "encode_mean",
           "slerp", "kl_per_dimension", "active_units"]


def _eval_no_grad(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(model: VAE, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(model, VAE):
            raise ValueError(f"model must be a genlib.vae.VAE, got {type(model).__name__}")
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return fn(model, *args, **kwargs)
        finally:
            model.train(was_training)
    return wrapper


def _device(model: VAE) -> torch.device:
    return next(model.parameters()).device


def _output(model: VAE, params: torch.Tensor, mean: bool,
            generator: torch.Generator | None) -> torch.Tensor:
    return model.mean(params) if mean else model.sample_x(params, generator)


@_eval_no_grad
def sample_images(model: VAE, n: int, y: torch.Tensor | None = None, *, mean: bool = True,
                  temperature: float = 1.0, generator: torch.Generator | None = None
                  ) -> torch.Tensor:
    """``n`` new images: ``z ~ N(0, temperature^2 I)``, then the decoder (``(n, C, H, W)``).

    ``y`` (``(n,)`` labels) is required for a conditional VAE. ``temperature < 1`` draws ``z``
    nearer the prior's centre: cleaner, less varied images.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not (isinstance(temperature, numbers.Real) and temperature >= 0):
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")
    d = model.config.latent_dim
    z = torch.randn(n, d, generator=generator) * temperature
    dev = _device(model)
    params = model.decode(z.to(dev), None if y is None else y.to(dev))
    return _output(model, params, mean, generator)


@_eval_no_grad
def encode_mean(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, *,
                batch_size: int = 500) -> torch.Tensor:
    """The encoder's means ``mu(x)``, ``(N, latent_dim)`` on the CPU (batched)."""
    dev = _device(model)
    out = []
    for i in range(0, x.shape[0], batch_size):
        yb = None if y is None else y[i:i + batch_size].to(dev)
        out.append(model.encode(x[i:i + batch_size].to(dev), yb)[0].cpu())
    return torch.cat(out)


@_eval_no_grad
def reconstruct(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, *,
                mean: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Decode each image's encoder mean: ``decoder(mu(x))``, ``(B, C, H, W)``."""
    dev = _device(model)
    yd = None if y is None else y.to(dev)
    mu, _ = model.encode(x.to(dev), yd)
    return _output(model, model.decode(mu, yd), mean, generator)


def slerp(z_a: torch.Tensor, z_b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    r"""Spherical interpolation between latents ``z_a`` and ``z_b`` (``(D,)``) at ``t`` ``(S,)``:

    .. math::  \frac{\sin((1 - t)\,\omega)}{\sin \omega}\, z_a +
               \frac{\sin(t\,\omega)}{\sin \omega}\, z_b, \qquad
               \cos \omega = \frac{z_a \cdot z_b}{\lVert z_a \rVert \lVert z_b \rVert}

    (White 2016). Unlike the straight line, the path keeps the norm between the two end norms,
    where a Gaussian prior in many dimensions puts its mass. Falls back to the straight line when
    the two directions (nearly) coincide. Returns ``(S, D)``.
    """
    if z_a.ndim != 1 or z_a.shape != z_b.shape:
        raise ValueError(f"z_a, z_b: expected two latents of the same shape (D,), got "
                         f"{tuple(z_a.shape)} and {tuple(z_b.shape)}")
    t = torch.as_tensor(t, dtype=z_a.dtype, device=z_a.device).reshape(-1)
    na, nb = z_a.norm(), z_b.norm()
    if na == 0 or nb == 0:
        return torch.lerp(z_a, z_b, t[:, None])
    cos = torch.dot(z_a / na, z_b / nb).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega < 1e-6:
        return torch.lerp(z_a, z_b, t[:, None])
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega)[:, None] * z_a
            + torch.sin(t * omega)[:, None] * z_b) / so


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(q(z_d | x) || N(0, 1))`` of each latent dimension averaged over the images:
    ``(D,)`` from encoder outputs ``(N, D)``; the entries sum to the mean KL term (the rate)."""
    if mu.ndim != 2 or mu.shape != logvar.shape:
        raise ValueError(f"mu, logvar: expected (N, D) each, got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}")
    return (0.5 * (mu ** 2 + torch.expm1(logvar) - logvar)).mean(0)


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> torch.Tensor:
    r"""Which latent dimensions the encoder uses: :math:`\mathrm{Cov}_x(\mathbb E_q[z_d]) >`
    ``threshold`` (Burda et al. 2016), from encoder means ``(N, D)``; returns a bool ``(D,)``.
    An inactive dimension has the same posterior mean for every image: the decoder cannot read
    anything from it (posterior collapse)."""
    if mu.ndim != 2 or mu.shape[0] < 2:
        raise ValueError(f"mu: expected encoder means of shape (N, D) with N >= 2, got "
                         f"{tuple(mu.shape)}")
    return mu.double().var(0, unbiased=True) > threshold


@_eval_no_grad
def interpolate(model: VAE, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 8,
                y: torch.Tensor | None = None, *, spherical: bool = False) -> torch.Tensor:
    """Decoded means along the path from ``mu(x_a)`` to ``mu(x_b)``: ``(steps, C, H, W)``.

    Args:
        x_a, x_b: one image each, ``(C, H, W)`` or ``(1, C, H, W)``.
        steps: points on the path, ends included (>= 2).
        y: one label (a 0-d or ``(1,)`` tensor) for a conditional VAE.
        spherical: interpolate on the great circle (keeps the norm of ``z`` typical of the
            prior) instead of the straight line.
    """
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 2:
        raise ValueError(f"steps must be an int >= 2, got {steps!r}")
    dev = _device(model)
    xs = torch.stack([x_a.reshape(model.config.image_shape),
                      x_b.reshape(model.config.image_shape)]).to(dev)
    y2 = None if y is None else y.reshape(1).repeat(2).to(dev)
    mu, _ = model.encode(xs, y2)
    t = torch.linspace(0, 1, steps, device=dev)
    z = slerp(mu[0], mu[1], t) if spherical else torch.lerp(mu[0], mu[1], t[:, None])
    ys = None if y is None else y.reshape(1).repeat(steps).to(dev)
    return model.mean(model.decode(z, ys))


@_eval_no_grad
def latent_traversal(model: VAE, z: torch.Tensor, dims: list[int] | tuple[int, ...],
                     values: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Move one latent coordinate at a time: ``(len(dims), len(values), C, H, W)`` decoded means.

    Row ``i`` sets ``z[dims[i]]`` to each of ``values`` in turn, every other coordinate fixed at
    ``z`` (``(latent_dim,)``, e.g. an encoder mean or zeros).
    """
    d = model.config.latent_dim
    if z.shape != (d,):
        raise ValueError(f"z: expected a latent of shape ({d},), got {tuple(z.shape)}")
    for i in dims:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not 0 <= i < d:
            raise ValueError(f"dims: each must be an int in 0..{d - 1}, got {i!r}")
    dev = _device(model)
    values = torch.as_tensor(values, dtype=z.dtype).reshape(-1)
    zs = z.to(dev).repeat(len(dims), len(values), 1)                   # (R, V, D)
    for r, i in enumerate(dims):
        zs[r, :, i] = values.to(dev)
    flat = zs.reshape(-1, d)
    yy = None if y is None else y.reshape(1).repeat(flat.shape[0]).to(dev)
    out = model.mean(model.decode(flat, yy))
    return out.reshape(len(dims), len(values), *out.shape[1:])
