r"""Building blocks of image networks: an MLP, a residual block that reads a time embedding,
down- and upsampling, and spatial self-attention.

These are the pieces of the diffusion U-Net (:mod:`genlib.nn.unet`, after Ho et al. 2020 and
Nichol & Dhariwal 2021), taught in chapter 6:

- :func:`mlp`: ``Linear -> SiLU -> ... -> Linear``.
- :class:`ResBlock`: ``GroupNorm -> SiLU -> conv3x3``, the embedding added per channel, then
  ``GroupNorm -> SiLU -> dropout -> conv3x3``, plus a skip path (a 1x1 conv when the number of
  channels changes). With ``scale_shift=True`` the embedding instead modulates the second
  normalisation, ``GroupNorm(h) * (1 + scale) + shift`` ("adaptive group norm", Dhariwal &
  Nichol 2021, section 3).
- :class:`Downsample` (stride-2 conv) and :class:`Upsample` (nearest-neighbour x2 then conv).
- :class:`SelfAttention2d`: every pixel attends to every pixel,
  ``softmax(Q K^T / sqrt(d)) V`` per head (Vaswani et al. 2017, eq. 1), with a residual path.

All blocks keep each example separate (group norm, not batch norm): an example's output never
depends on the rest of the batch.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["mlp", "ResBlock", "Downsample", "Upsample", "SelfAttention2d"]


def _pos_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_groups(groups: object, **channels: int) -> int:
    groups = _pos_int("groups", groups)
    for name, ch in channels.items():
        if ch % groups:
            raise ValueError(f"groups={groups} must divide {name}={ch} (GroupNorm splits the "
                             f"channels into equal groups)")
    return groups


def _check_dropout(dropout: object) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not (
            0 <= dropout < 1):
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    return float(dropout)


def _check_image(name: str, x: object, channels: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != channels:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape (B, {channels}, H, W), got {got}")
    return x


def mlp(sizes: Sequence[int], *, dropout: float = 0.0) -> nn.Sequential:
    """``Linear(sizes[0], sizes[1]) -> SiLU [-> Dropout] -> ... -> Linear(.., sizes[-1])``.

    No activation after the last layer. ``(B, sizes[0]) -> (B, sizes[-1])``.
    """
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise ValueError(f"sizes must be a sequence of at least two widths, got {sizes!r}")
    sizes = [_pos_int(f"sizes[{i}]", s) for i, s in enumerate(sizes)]
    dropout = _check_dropout(dropout)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    r"""Residual block conditioned on an embedding: ``x (B, in_ch, H, W), emb (B, emb_dim) ->
    (B, out_ch, H, W)``.

    .. code-block:: text

        h = conv1(SiLU(GroupNorm(x)))                        (B, out_ch, H, W)
        a = Linear(SiLU(emb))                                (B, out_ch) or (B, 2 out_ch)
        shift:        h = GroupNorm(h + a)
        scale-shift:  h = GroupNorm(h) * (1 + a_scale) + a_shift
        out = skip(x) + conv2(dropout(SiLU(h)))

    ``skip`` is the identity when ``in_ch == out_ch`` and a 1x1 conv otherwise, so with
    ``conv2`` zeroed the block is exactly its skip path. In shift mode the second GroupNorm
    removes each group's mean of the shift, so the embedding acts through the differences
    between channels of a group: ``groups == out_ch`` (one channel per group) would cancel it
    and is refused.

    Args:
        in_ch, out_ch: channels in and out (both divisible by ``groups``).
        emb_dim: size of the embedding (time, plus class where conditional).
        groups: GroupNorm groups.
        dropout: dropout rate before the second conv (training only).
        scale_shift: the embedding gives a scale and a shift of the second normalisation
            (adaptive group norm) instead of a shift added before it.
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, *, groups: int = 8,
                 dropout: float = 0.0, scale_shift: bool = False) -> None:
        super().__init__()
        self.in_ch = _pos_int("in_ch", in_ch)
        self.out_ch = _pos_int("out_ch", out_ch)
        self.emb_dim = _pos_int("emb_dim", emb_dim)
        groups = _check_groups(groups, in_ch=self.in_ch, out_ch=self.out_ch)
        self.scale_shift = bool(scale_shift)
        if groups == self.out_ch and not self.scale_shift:
            # one channel per group: the group mean absorbs a per-channel shift entirely
            raise ValueError(f"groups={groups} equals out_ch={self.out_ch}: GroupNorm would "
                             f"subtract the embedding's shift exactly; use fewer groups or "
                             f"scale_shift=True")
        self.norm1 = nn.GroupNorm(groups, self.in_ch)
        self.conv1 = nn.Conv2d(self.in_ch, self.out_ch, 3, padding=1)
        self.emb_proj = nn.Linear(self.emb_dim, self.out_ch * (2 if self.scale_shift else 1))
        self.norm2 = nn.GroupNorm(groups, self.out_ch)
        self.dropout = nn.Dropout(_check_dropout(dropout))
        self.conv2 = nn.Conv2d(self.out_ch, self.out_ch, 3, padding=1)
        self.skip: nn.Module = (nn.Identity() if self.in_ch == self.out_ch
                                else nn.Conv2d(self.in_ch, self.out_ch, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        _check_image("x", x, self.in_ch)
        if not isinstance(emb, torch.Tensor) or emb.shape != (x.shape[0], self.emb_dim):
            got = tuple(emb.shape) if isinstance(emb, torch.Tensor) else type(emb).__name__
            raise ValueError(f"emb must have shape (B, emb_dim) = ({x.shape[0]}, "
                             f"{self.emb_dim}), got {got}")
        h = self.conv1(F.silu(self.norm1(x)))                      # (B, out_ch, H, W)
        a = self.emb_proj(F.silu(emb))[:, :, None, None]           # (B, out_ch or 2 out_ch, 1, 1)
        if self.scale_shift:
            scale, shift = a.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + a)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h

    def extra_repr(self) -> str:
        return f"scale_shift={self.scale_shift}"


class Downsample(nn.Module):
    """Halve the resolution with a 3x3 stride-2 conv: ``(B, ch, H, W) -> (B, ch, ceil(H/2),
    ceil(W/2))``."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.ch = _pos_int("ch", ch)
        self.conv = nn.Conv2d(self.ch, self.ch, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(_check_image("x", x, self.ch))


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour x2, then a 3x3 conv: ``(B, ch, H, W) ->
    (B, ch, 2H, 2W)``."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.ch = _pos_int("ch", ch)
        self.conv = nn.Conv2d(self.ch, self.ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image("x", x, self.ch)
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class SelfAttention2d(nn.Module):
    r"""Multi-head self-attention over the ``N = H W`` pixels, with a residual path:
    ``(B, ch, H, W) -> (B, ch, H, W)``.

    .. code-block:: text

        q, k, v = split(conv1x1_qkv(GroupNorm(x)))           each (B, heads, N, d), d = ch/heads
        o = softmax(q k^T / sqrt(d)) v                        (B, heads, N, d)
        out = x + conv1x1_out(o reshaped to (B, ch, H, W))

    Head ``j`` uses channels ``j*d .. (j+1)*d - 1`` of each of q, k and v. The attention itself
    is :func:`torch.nn.functional.scaled_dot_product_attention` (a fused kernel; the formula
    above is what it computes). Permuting the pixels of ``x`` permutes the output the same way:
    attention has no notion of position, the convolutions around it do.

    Args:
        ch: channels (divisible by ``heads`` and by ``groups``).
        heads: number of attention heads.
        groups: GroupNorm groups.
    """

    def __init__(self, ch: int, heads: int = 1, *, groups: int = 8) -> None:
        super().__init__()
        self.ch = _pos_int("ch", ch)
        self.heads = _pos_int("heads", heads)
        if self.ch % self.heads:
            raise ValueError(f"heads={self.heads} must divide ch={self.ch}")
        self.norm = nn.GroupNorm(_check_groups(groups, ch=self.ch), self.ch)
        self.qkv = nn.Conv2d(self.ch, 3 * self.ch, 1)
        self.proj = nn.Conv2d(self.ch, self.ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image("x", x, self.ch)
        B, C, H, W = x.shape
        nh, d = self.heads, C // self.heads
        qkv = self.qkv(self.norm(x)).reshape(B, 3, nh, d, H * W)   # (B, 3, nh, d, N)
        q, k, v = qkv.transpose(-1, -2).unbind(dim=1)               # each (B, nh, N, d)
        o = F.scaled_dot_product_attention(q, k, v)                 # (B, nh, N, d)
        o = o.transpose(-1, -2).reshape(B, C, H, W)                 # (B, C, H, W)
        return x + self.proj(o)

    def extra_repr(self) -> str:
        return f"ch={self.ch}, heads={self.heads}"
