r"""A small U-Net for diffusion and flow matching: ``(x_t, t, labels) -> (B, C_out, H, W)``.

The network of Ho et al. (2020, appendix B), itself a PixelCNN++ / Wide-ResNet U-Net, in the
simplified form of Nichol & Dhariwal (2021), sized for 28x28 digits on a CPU. Taught in chapter 6
(class conditioning in chapter 7). It predicts whatever the training loss asks for (the noise
``eps``, ``x0`` or a velocity ``v_hat``): the network never knows its noise schedule.

.. code-block:: text

    t --sinusoids--> MLP --> emb (B, E)  (+ class embedding of labels, index n_classes = "null")
    x --conv3x3--> [ResBlock (+attn)] x num_res_blocks --Downsample-->   28x28, c * mults[0]
                   [ResBlock (+attn)] x num_res_blocks --Downsample-->   14x14, c * mults[1]
                   [ResBlock (+attn)] x num_res_blocks                    7x7,  c * mults[2]
                   middle: ResBlock, (attn), ResBlock
                   [concat skip, ResBlock (+attn)] x (num_res_blocks + 1) --Upsample-->  ...
                   ... back to 28x28 --> GroupNorm, SiLU, conv3x3 (zero-initialised) --> out

Every activation that enters the down path (the stem's output, each block's, each
downsampler's) is kept and concatenated, last in first out, onto the input of one block of the
up path. The final conv starts at zero, so an untrained network outputs exactly 0: for noise
prediction that is the mean of the target, a calm starting point.

Self-attention sits at the levels whose height, for ``image_size``-high images, is listed in
``attention_resolutions``: with the defaults (28, mults ``(1, 2, 2)``: heights 28, 14, 7) at the
7x7 level and in the middle. The network is convolutional, so it also runs on other sizes whose
height and width are divisible by ``2 ** (len(channel_mults) - 1)``; attention then stays on the
same levels.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from genlib.nn.blocks import Downsample, ResBlock, SelfAttention2d, Upsample
from genlib.nn.embeddings import TimeEmbedding

__all__ = ["UNetConfig", "UNet"]


def _pos_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a :class:`UNet`.

    Attributes:
        in_channels: channels ``C`` of ``x`` (1 for grey digits, 3 for colour).
        out_channels: channels of the output; None: ``in_channels`` (noise, ``x0`` or velocity
            prediction). Resolved by :attr:`output_channels`.
        base_channels: width ``c`` of the first level; level ``i`` has ``c * channel_mults[i]``.
        channel_mults: one multiplier per resolution level; ``L`` levels halve the resolution
            ``L - 1`` times, so ``H`` and ``W`` must be divisible by ``2 ** (L - 1)``.
        num_res_blocks: residual blocks per level on the way down (one more on the way up).
        attention_resolutions: heights (for ``image_size``-high images) of the levels that get
            self-attention; each must be one of :attr:`level_sizes`. Empty: no attention at all.
        emb_dim: width ``E`` of the time (and class) embedding; None: ``4 * base_channels``.
            Resolved by :attr:`embedding_dim`.
        dropout: dropout rate inside the residual blocks (training only).
        groups: GroupNorm groups; must divide every level's width.
        n_classes: 0 for an unconditional network; ``K > 0`` adds a learned class embedding to
            the time embedding, with ``K + 1`` rows: label ``K`` is the "null" class that
            classifier-free guidance trains on dropped labels and samples with.
        time_scale: multiplies ``t`` before the sinusoids: 1 for integer DDPM steps
            ``0..T-1``, 1000 for continuous ``t in [0, 1]`` (flow matching).
        image_size: height of the images the network is built for; it only places the
            attention (``attention_resolutions`` are heights at this size).
        attention_heads: heads of each self-attention block (must divide its width).
        scale_shift: residual blocks use the embedding as a scale and shift of their second
            normalisation (adaptive group norm) instead of an added shift.
    """

    in_channels: int = 1
    out_channels: int | None = None
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = (7,)
    emb_dim: int | None = None
    dropout: float = 0.0
    groups: int = 8
    n_classes: int = 0
    time_scale: float = 1.0
    image_size: int = 28
    attention_heads: int = 4
    scale_shift: bool = False

    def __post_init__(self) -> None:
        for name in ("channel_mults", "attention_resolutions"):  # from JSON: lists
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        _pos_int("in_channels", self.in_channels)
        if self.out_channels is not None:
            _pos_int("out_channels", self.out_channels)
        _pos_int("base_channels", self.base_channels)
        if not isinstance(self.channel_mults, tuple) or not self.channel_mults:
            raise ValueError(f"channel_mults must be a non-empty tuple of positive ints, got "
                             f"{self.channel_mults!r}")
        for i, m in enumerate(self.channel_mults):
            _pos_int(f"channel_mults[{i}]", m)
        _pos_int("num_res_blocks", self.num_res_blocks)
        if not isinstance(self.attention_resolutions, tuple):
            raise ValueError(f"attention_resolutions must be a tuple of heights, got "
                             f"{self.attention_resolutions!r}")
        if self.emb_dim is not None:
            _pos_int("emb_dim", self.emb_dim)
        if (isinstance(self.dropout, bool) or not isinstance(self.dropout, numbers.Real)
                or not 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        _pos_int("groups", self.groups)
        for i, m in enumerate(self.channel_mults):
            width = self.base_channels * m
            if width % self.groups:
                raise ValueError(f"groups={self.groups} must divide every level's width "
                                 f"base_channels * channel_mults[{i}] = {width}")
            if width == self.groups and not self.scale_shift:
                raise ValueError(f"groups={self.groups} equals the width {width} of level {i}: "
                                 f"one channel per group would cancel the time embedding's "
                                 f"shift; use fewer groups or scale_shift=True")
        _pos_int("n_classes", self.n_classes, minimum=0)
        if (isinstance(self.time_scale, bool) or not isinstance(self.time_scale, numbers.Real)
                or not math.isfinite(self.time_scale) or self.time_scale <= 0):
            raise ValueError(f"time_scale must be a finite number > 0, got "
                             f"{self.time_scale!r}")
        _pos_int("image_size", self.image_size)
        f = self.size_factor
        if self.image_size % f:
            raise ValueError(f"image_size={self.image_size} must be divisible by {f} = "
                             f"2 ** (len(channel_mults) - 1) for channel_mults="
                             f"{self.channel_mults}")
        sizes = self.level_sizes
        for r in self.attention_resolutions:
            if r not in sizes:
                raise ValueError(f"attention_resolutions: {r!r} is not the height of a level; "
                                 f"with image_size={self.image_size} and channel_mults="
                                 f"{self.channel_mults} the levels are {sizes} (use a subset "
                                 f"of them, or () for no attention)")
        _pos_int("attention_heads", self.attention_heads)
        for i in self.attention_levels:
            width = self.base_channels * self.channel_mults[i]
            if width % self.attention_heads:
                raise ValueError(f"attention_heads={self.attention_heads} must divide the "
                                 f"width {width} of attention level {i} (height {sizes[i]})")

    @property
    def output_channels(self) -> int:
        """Channels of the output: ``out_channels``, or ``in_channels`` when that is None."""
        return self.in_channels if self.out_channels is None else self.out_channels

    @property
    def embedding_dim(self) -> int:
        """Width ``E`` of the embedding: ``emb_dim``, or ``4 * base_channels`` when None."""
        return 4 * self.base_channels if self.emb_dim is None else self.emb_dim

    @property
    def size_factor(self) -> int:
        """``2 ** (len(channel_mults) - 1)``: ``H`` and ``W`` must be multiples of it."""
        return 2 ** (len(self.channel_mults) - 1)

    @property
    def level_sizes(self) -> tuple[int, ...]:
        """Height of each level for ``image_size``-high images, e.g. ``(28, 14, 7)``."""
        return tuple(self.image_size // 2 ** i for i in range(len(self.channel_mults)))

    @property
    def attention_levels(self) -> tuple[int, ...]:
        """Indices of the levels that get self-attention."""
        return tuple(i for i, s in enumerate(self.level_sizes)
                     if s in self.attention_resolutions)


class _Stage(nn.Module):
    """A :class:`ResBlock` followed, optionally, by :class:`SelfAttention2d`."""

    def __init__(self, in_ch: int, out_ch: int, c: UNetConfig, attention: bool) -> None:
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, c.embedding_dim, groups=c.groups, dropout=c.dropout,
                            scale_shift=c.scale_shift)
        self.attn = (SelfAttention2d(out_ch, c.attention_heads, groups=c.groups) if attention
                     else None)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.res(x, emb)
        return self.attn(h) if self.attn is not None else h


class UNet(nn.Module):
    """``UNet(config)(x, t, labels) -> (B, output_channels, H, W)``.

    Shapes: ``x (B, in_channels, H, W)`` float with ``H`` and ``W`` multiples of
    ``config.size_factor``; ``t (B,)`` integer steps or float times (multiplied by
    ``time_scale``); ``labels (B,)`` integers in ``0..n_classes`` (``n_classes`` is the null
    class) when ``n_classes > 0``, else None. Each example's output depends on that example
    alone (group norm, no batch statistics). Architecture in the module docstring.
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        config = UNetConfig() if config is None else config
        if not isinstance(config, UNetConfig):
            raise ValueError(f"config must be a UNetConfig, got {type(config).__name__}")
        self.config = c = config
        widths = [c.base_channels * m for m in c.channel_mults]
        n_levels = len(widths)
        attn = set(c.attention_levels)
        E = c.embedding_dim

        self.time_embed = TimeEmbedding(c.base_channels, E, scale=c.time_scale)
        self.class_embed = nn.Embedding(c.n_classes + 1, E) if c.n_classes else None
        self.stem = nn.Conv2d(c.in_channels, widths[0], 3, padding=1)

        # down path; skip_chs records the channels of every activation kept for the up path
        skip_chs = [widths[0]]
        ch = widths[0]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for i, w in enumerate(widths):
            stages = nn.ModuleList()
            for _ in range(c.num_res_blocks):
                stages.append(_Stage(ch, w, c, i in attn))
                ch = w
                skip_chs.append(ch)
            self.down.append(stages)
            if i < n_levels - 1:
                self.downsample.append(Downsample(ch))
                skip_chs.append(ch)

        self.mid = nn.ModuleList([_Stage(ch, ch, c, n_levels - 1 in attn),
                                  _Stage(ch, ch, c, False)])

        # up path: deepest level first, one more block per level than on the way down
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(n_levels)):
            stages = nn.ModuleList()
            for _ in range(c.num_res_blocks + 1):
                stages.append(_Stage(ch + skip_chs.pop(), widths[i], c, i in attn))
                ch = widths[i]
            self.up.append(stages)
            if i > 0:
                self.upsample.append(Upsample(ch))
        assert not skip_chs  # every kept activation is consumed exactly once

        self.out_norm = nn.GroupNorm(c.groups, ch)
        self.out_conv = nn.Conv2d(ch, c.output_channels, 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)  # the untrained network outputs exactly 0
        nn.init.zeros_(self.out_conv.bias)

    @property
    def null_label(self) -> int:
        """The label of the "null" class (``n_classes``) for classifier-free guidance."""
        return self.config.n_classes

    # -- checks -----------------------------------------------------------------------------
    def _check_inputs(self, x: torch.Tensor, t: torch.Tensor,
                      labels: torch.Tensor | None) -> None:
        c = self.config
        if (not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != c.in_channels
                or not x.is_floating_point()):
            got = (f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor)
                   else type(x).__name__)
            raise ValueError(f"x must be a float tensor of shape (B, in_channels={c.in_channels}"
                             f", H, W), got {got}")
        B, _, H, W = x.shape
        f = c.size_factor
        if H % f or W % f:
            raise ValueError(f"x: height and width must be divisible by {f} = 2 ** "
                             f"(len(channel_mults) - 1) for channel_mults={c.channel_mults}; "
                             f"got H={H}, W={W}")
        if not isinstance(t, torch.Tensor) or t.shape != (B,):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"t must be a tensor of shape (B,) = ({B},), one time per image of "
                             f"x, got {got}")
        if c.n_classes == 0:
            if labels is not None:
                raise ValueError("labels: this U-Net is unconditional (n_classes=0); pass "
                                 "labels=None")
            return
        if labels is None:
            raise ValueError(f"labels: this U-Net is class-conditional (n_classes="
                             f"{c.n_classes}); pass ({B},) integer labels in 0..{c.n_classes}, "
                             f"{c.n_classes} being the null class")
        if (not isinstance(labels, torch.Tensor) or labels.shape != (B,)
                or labels.is_floating_point() or labels.is_complex()
                or labels.dtype == torch.bool):
            got = (f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, torch.Tensor)
                   else type(labels).__name__)
            raise ValueError(f"labels must be an integer tensor of shape ({B},), got {got}")
        if B and not torch.compiler.is_compiling():
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi > c.n_classes:
                raise ValueError(f"labels must lie in 0..{c.n_classes} ({c.n_classes} = null "
                                 f"class), got values {lo}..{hi}")

    # -- the network --------------------------------------------------------------------------
    def embed(self, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The embedding ``(B, E)`` every residual block reads: time MLP (+ class embedding)."""
        emb = self.time_embed(t)
        if self.class_embed is not None and labels is not None:
            emb = emb + self.class_embed(labels.long())
        return emb

    def forward(self, x: torch.Tensor, t: torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, C_in, H, W)``, ``t (B,)``, ``labels (B,)`` or None -> ``(B, C_out, H, W)``."""
        self._check_inputs(x, t, labels)
        emb = self.embed(t, labels)                               # (B, E)

        h = self.stem(x)                                          # (B, c*m0, H, W)
        skips = [h]
        for i, stages in enumerate(self.down):
            for stage in stages:
                h = stage(h, emb)
                skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)                         # halve H and W
                skips.append(h)

        for stage in self.mid:
            h = stage(h, emb)

        for j, stages in enumerate(self.up):
            for stage in stages:
                h = stage(torch.cat([h, skips.pop()], dim=1), emb)  # last in, first out
            if j < len(self.upsample):
                h = self.upsample[j](h)                           # double H and W

        return self.out_conv(F.silu(self.out_norm(h)))            # (B, C_out, H, W)
