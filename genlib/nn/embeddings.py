r"""Time embeddings: how a network that denoises at many noise levels is told which one.

A diffusion or flow-matching network :math:`\epsilon_\theta(x_t, t)` receives the time ``t`` as a
number per example. A single scalar is a poor input for a deep network, so ``t`` is first spread
over many sinusoids of geometrically spaced frequencies (Vaswani et al. 2017, section 3.5; Ho et
al. 2020, appendix B), then passed through a small MLP whose output is added inside every
residual block of the U-Net (:mod:`genlib.nn.unet`). Taught in chapter 6.

Convention (the one of Ho et al.'s code and of improved-diffusion): with ``half = dim // 2``,

.. math::

    \omega_i = \text{max\_period}^{-i / \text{half}}, \quad i = 0, \dots, \text{half} - 1,
    \qquad e(t) = [\cos(s t \omega_0), \dots, \cos(s t \omega_{\text{half}-1}),
                   \sin(s t \omega_0), \dots, \sin(s t \omega_{\text{half}-1})]

where ``s = scale``: the first half holds cosines, the second sines; the fastest frequency is 1
radian per unit of ``s t`` and the slowest is just above ``1 / max_period``. An odd ``dim`` gets
one extra column of zeros at the end. Integer DDPM steps ``t in {0, ..., 999}`` use ``scale=1``;
continuous times ``t in [0, 1]`` (flow matching) use ``scale=1000`` so that they see the same
frequencies.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from genlib.nn.blocks import mlp

__all__ = ["sinusoidal_embedding", "TimeEmbedding"]


def _check_positive(name: str, value: object) -> float:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value <= 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_dim(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def sinusoidal_embedding(t: torch.Tensor, dim: int, *, max_period: float = 10000.0,
                         scale: float = 1.0) -> torch.Tensor:
    r"""Sinusoidal features of time steps: ``(B,)`` -> ``(B, dim)``.

    ``e(t) = [cos(scale * t * w_i) for i < half] + [sin(scale * t * w_i) for i < half]`` with
    ``w_i = max_period ** (-i / half)`` and ``half = dim // 2`` (module docstring); an odd ``dim``
    ends with a zero column. Every row has squared norm ``half`` whatever ``t``.

    Args:
        t: ``(B,)`` integer steps or float times (any real values).
        dim: number of features, >= 2.
        max_period: sets the slowest frequency, just above ``1 / max_period``.
        scale: multiplies ``t`` first: 1 for integer DDPM steps, 1000 for ``t in [0, 1]``.

    Returns:
        ``(B, dim)``, float32 (float64 if ``t`` is float64), on ``t``'s device.
    """
    if not isinstance(t, torch.Tensor) or t.ndim != 1:
        got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"t must be a 1-D tensor of shape (B,), got {got}")
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"t must hold integer or real time steps, got dtype {t.dtype}")
    dim = _check_dim("dim", dim, 2)
    max_period = _check_positive("max_period", max_period)
    scale = _check_positive("scale", scale)
    dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
    half = dim // 2
    # w_i = max_period^(-i / half), i = 0 .. half-1
    freqs = torch.exp(-math.log(max_period) / half
                      * torch.arange(half, dtype=dtype, device=t.device))
    args = (t.to(dtype) * scale)[:, None] * freqs[None, :]  # (B, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)  # (B, 2 * half)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=1)  # (B, dim)
    return emb


class TimeEmbedding(nn.Module):
    """``t (B,) -> (B, hidden)``: sinusoidal features then ``Linear -> SiLU -> Linear``.

    The output has no final activation; each :class:`~genlib.nn.blocks.ResBlock` applies SiLU
    and its own linear projection to it.

    Args:
        dim: number of sinusoidal features (:func:`sinusoidal_embedding`).
        hidden: width of the MLP and of the output.
        scale: multiplies ``t`` before the sinusoids (1 for integer steps, 1000 for ``[0, 1]``).
        max_period: slowest period of the sinusoids.
    """

    def __init__(self, dim: int, hidden: int, *, scale: float = 1.0,
                 max_period: float = 10000.0) -> None:
        super().__init__()
        self.dim = _check_dim("dim", dim, 2)
        self.hidden = _check_dim("hidden", hidden, 1)
        self.scale = _check_positive("scale", scale)
        self.max_period = _check_positive("max_period", max_period)
        self.mlp = mlp([self.dim, self.hidden, self.hidden])

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``t (B,)`` integer or float -> ``(B, hidden)`` in the dtype of the MLP's weights."""
        emb = sinusoidal_embedding(t, self.dim, max_period=self.max_period, scale=self.scale)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, hidden={self.hidden}, scale={self.scale:g}"
