r"""A time-conditioned residual MLP: the denoiser (or velocity field) for vectors.

Chapter 6 uses it twice: on 2D toy data, where every picture can be drawn, and on the
32-dimensional latent codes of the chapter 4 VAE, where a latent diffusion model makes sharp
digits within a laptop's CPU budget (:mod:`genlib.recipes.diffusion`).

.. code-block:: text

    e = TimeEmbedding(t)                                   (B, E)
    h = Linear(x)                                          (B, W)
    repeat depth times:   h = h + Linear(SiLU(Linear(SiLU(LayerNorm(h) + Linear(e)))))
    out = Linear(SiLU(LayerNorm(h)))                       (B, D)

Each block's last layer starts at zero, so at initialisation the network is a function of ``x``
alone through the input and output layers, and each block learns a correction (the same
start-as-identity idea as the U-Net's zero-initialised output convolution).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from genlib.nn.blocks import _check_dropout, _pos_int
from genlib.nn.embeddings import TimeEmbedding

__all__ = ["MLPDenoiserConfig", "MLPDenoiser"]


@dataclass(frozen=True)
class MLPDenoiserConfig:
    """Shape of an :class:`MLPDenoiser`.

    Attributes:
        dim: size ``D`` of the vectors (2 for the toys, the VAE's latent size for latents).
        width: hidden width ``W``.
        depth: number of residual blocks.
        emb_dim: width ``E`` of the time embedding (and its number of sinusoidal features).
        time_scale: multiplies ``t`` before the sinusoids: 1 for integer diffusion steps
            ``0..T-1``, 1000 for flow-matching times in ``[0, 1]``.
        dropout: dropout inside each block (0: none).
    """

    dim: int = 2
    width: int = 256
    depth: int = 3
    emb_dim: int = 128
    time_scale: float = 1.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _pos_int("dim", self.dim)
        _pos_int("width", self.width)
        _pos_int("depth", self.depth)
        _pos_int("emb_dim", self.emb_dim, minimum=2)
        if self.emb_dim % 2:
            raise ValueError(f"emb_dim must be even (sine and cosine pairs), got {self.emb_dim}")
        if (isinstance(self.time_scale, bool) or not isinstance(self.time_scale, numbers.Real)
                or not math.isfinite(self.time_scale) or self.time_scale <= 0):
            raise ValueError(f"time_scale must be a finite number > 0, got "
                             f"{self.time_scale!r}")
        _check_dropout(self.dropout)


class _Block(nn.Module):
    def __init__(self, width: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.emb = nn.Linear(emb_dim, width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        a = F.silu(self.norm(h) + self.emb(e))
        return h + self.fc2(self.dropout(F.silu(self.fc1(a))))


class MLPDenoiser(nn.Module):
    """``MLPDenoiser(config)(x, t) -> (B, D)``: ``x (B, D)`` float, ``t (B,)`` integer steps or
    float times (a scalar is broadcast). The output is whatever the training loss asks for:
    noise, clean data, ``v`` or a velocity."""

    def __init__(self, config: MLPDenoiserConfig | None = None) -> None:
        super().__init__()
        c = config if config is not None else MLPDenoiserConfig()
        if not isinstance(c, MLPDenoiserConfig):
            raise TypeError(f"config must be an MLPDenoiserConfig, got {type(c).__name__}")
        self.config = c
        self.time = TimeEmbedding(c.emb_dim, c.emb_dim, scale=c.time_scale)
        self.inp = nn.Linear(c.dim, c.width)
        self.blocks = nn.ModuleList(_Block(c.width, c.emb_dim, c.dropout)
                                    for _ in range(c.depth))
        self.out_norm = nn.LayerNorm(c.width)
        self.out = nn.Linear(c.width, c.dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        d = self.config.dim
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != d:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (B, {d}) (config.dim={d}), got {got}")
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},) to match x, got "
                             f"{tuple(t.shape)}")
        e = self.time(t)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, e)
        return self.out(F.silu(self.out_norm(h)))
