r"""Autoregressive image models: PixelCNN (plain and gated) and a pixel-by-pixel GRU.

All three map an image ``x`` ``(B, C, H, W)`` with values ``k / (levels - 1)`` to logits
``(B, C, levels, H, W)``: at each pixel, a categorical distribution over its ``levels`` grey
levels *given every earlier pixel* in raster order. The exact log-likelihood is the sum of the
log-probabilities of the observed levels (:func:`genlib.autoregressive.log_prob`).

- :class:`PixelCNN` ``kind="plain"``: a type-A masked 7x7 convolution, then residual blocks of
  type-B masked convolutions (van den Oord et al. 2016, "Pixel recurrent neural networks"). Its
  receptive field has a *blind spot*: pixels up and to the right are never seen, however deep.
- :class:`PixelCNN` ``kind="gated"``: the gated PixelCNN (van den Oord et al. 2016, "Conditional
  image generation with PixelCNN decoders"): a vertical stack that sees every row above and a
  horizontal stack that sees the pixels to the left in the current row, joined by a 1x1 link from
  vertical to horizontal, with ``tanh(a) * sigmoid(b)`` gates. No blind spot. Optionally
  conditioned on a class label.
- :class:`PixelRNN`: a GRU reads the image as a sequence of ``H W`` pixels and predicts the next,
  as sequence models were first used for images.

The gated model also exposes its two stacks separately (:meth:`PixelCNN.vertical`,
:meth:`PixelCNN.horizontal`), which is what makes sampling fast: the vertical stack runs once per
row, the horizontal one on a single row per pixel (:func:`genlib.autoregressive.sample`).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from genlib.autoregressive.masks import MaskedConv2d, _check_kernel

__all__ = ["PixelCNNConfig", "PixelCNN", "PixelRNNConfig", "PixelRNN", "KINDS"]

KINDS = ("plain", "gated")


def _pos_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_shape(image_shape: object) -> tuple[int, int, int]:
    if isinstance(image_shape, list):
        image_shape = tuple(image_shape)
    if (not isinstance(image_shape, tuple) or len(image_shape) != 3
            or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
                   for v in image_shape)):
        raise ValueError(f"image_shape must be (C, H, W) of positive ints, got {image_shape!r}")
    return image_shape  # type: ignore[return-value]


@dataclass(frozen=True)
class PixelCNNConfig:
    """Architecture of a :class:`PixelCNN`.

    Attributes:
        image_shape: ``(C, H, W)``; the gated kind models greyscale images (``C = 1``).
        levels: grey levels per pixel (2 for binarised digits, 17 for ``digits8x8``).
        kind: ``"plain"`` or ``"gated"``.
        channels: feature channels (a multiple of ``C``).
        n_layers: residual blocks (plain) or gated layers after the first (gated).
        kernel_size: odd kernel of the type-B layers (gated: the stacks' width).
        first_kernel: odd kernel of the first, type-A layer.
        n_classes: 0, or ``K > 0`` for a class-conditional model (gated only).
    """

    image_shape: tuple[int, int, int] = (1, 28, 28)
    levels: int = 2
    kind: Literal["plain", "gated"] = "gated"
    channels: int = 64
    n_layers: int = 6
    kernel_size: int = 3
    first_kernel: int = 7
    n_classes: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", _check_shape(self.image_shape))
        _pos_int("levels", self.levels, 2)
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of 'plain', 'gated'; got {self.kind!r}")
        _pos_int("channels", self.channels)
        _pos_int("n_layers", self.n_layers, 0)
        _check_kernel(self.kernel_size)
        _check_kernel(self.first_kernel)
        _pos_int("n_classes", self.n_classes, 0)
        c = self.image_shape[0]
        if self.channels % c:
            raise ValueError(f"channels ({self.channels}) must be a multiple of the image "
                             f"channels ({c})")
        if self.kind == "gated" and c != 1:
            raise ValueError(f"kind='gated' models greyscale images (C = 1); image_shape "
                             f"{self.image_shape} has C = {c}: use kind='plain'")
        if self.kind == "plain" and self.n_classes:
            raise ValueError("n_classes > 0 (a class-conditional model) needs kind='gated'")


class _ResidualBlock(nn.Module):
    """ReLU, 1x1 (h -> h/2), ReLU, k x k type B, ReLU, 1x1 (h/2 -> h), plus the input."""

    def __init__(self, h: int, k: int, groups: int) -> None:
        super().__init__()
        mid = max(groups, (h // 2) // groups * groups)
        self.net = nn.Sequential(
            nn.ReLU(), MaskedConv2d(h, mid, 1, "B", image_channels=groups),
            nn.ReLU(), MaskedConv2d(mid, mid, k, "B", image_channels=groups),
            nn.ReLU(), MaskedConv2d(mid, h, 1, "B", image_channels=groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class _GatedLayer(nn.Module):
    """One layer of both stacks: vertical ``(k//2 + 1) x k`` and horizontal ``1 x (k//2 + 1)``
    convolutions, cropped so that they look only up (vertical, own row included) and only left
    (horizontal, own pixel included unless ``first``), joined by a 1x1 link."""

    def __init__(self, in_ch: int, h: int, k: int, *, first: bool, n_classes: int) -> None:
        super().__init__()
        self.k, self.first = k, first
        self.v_conv = nn.Conv2d(in_ch, 2 * h, (k // 2 + 1, k), padding=(k // 2, k // 2))
        self.h_conv = nn.Conv2d(in_ch, 2 * h, (1, k // 2 + 1), padding=(0, k // 2))
        self.link = nn.Conv2d(2 * h, 2 * h, 1)
        self.h_out = nn.Conv2d(h, h, 1)
        self.cond = nn.Embedding(n_classes, 4 * h) if n_classes else None

    def vertical(self, v: torch.Tensor, cond: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(v_next, link_in)``: the gated vertical output, and the pre-activations shifted
        down one row (row ``i`` carries rows ``< i``), the horizontal stack's view of the rows
        above."""
        height = v.shape[2]
        pre = self.v_conv(v)[:, :, :height, :]          # row i sees rows i - k//2 .. i
        link_in = F.pad(pre, (0, 0, 1, 0))[:, :, :height, :]   # shift down: rows < i
        if cond is not None:
            pre = pre + cond[:, : pre.shape[1], None, None]
        a, b = pre.chunk(2, 1)
        return torch.tanh(a) * torch.sigmoid(b), link_in

    def horizontal(self, h: torch.Tensor, link_in: torch.Tensor, cond: torch.Tensor | None
                   ) -> torch.Tensor:
        width = h.shape[3]
        pre = self.h_conv(h)[:, :, :, :width]           # column j sees j - k//2 .. j
        if self.first:                                   # type A: not the pixel itself
            pre = F.pad(pre, (1, 0, 0, 0))[:, :, :, :width]
        pre = pre + self.link(link_in)
        if cond is not None:
            pre = pre + cond[:, pre.shape[1]:, None, None]
        a, b = pre.chunk(2, 1)
        out = self.h_out(torch.tanh(a) * torch.sigmoid(b))
        return out if self.first else h + out


class PixelCNN(nn.Module):
    """PixelCNN from a :class:`PixelCNNConfig` (plain or gated).

    ``forward(x, y=None)``: ``x`` ``(B, C, H, W)`` in ``[0, 1]`` -> logits
    ``(B, C, levels, H, W)``; the logits at a pixel depend only on earlier pixels (raster order;
    checked by input gradients in the tests).
    """

    def __init__(self, config: PixelCNNConfig | None = None) -> None:
        super().__init__()
        config = config or PixelCNNConfig()
        if not isinstance(config, PixelCNNConfig):
            raise ValueError(f"config must be a PixelCNNConfig, got {type(config).__name__}")
        self.config = config
        c = config.image_shape[0]
        h, k, L = config.channels, config.kernel_size, config.levels
        if config.kind == "plain":
            self.first = MaskedConv2d(c, h, config.first_kernel, "A", image_channels=c)
            self.blocks = nn.Sequential(*[_ResidualBlock(h, k, c)
                                          for _ in range(config.n_layers)])
        else:
            self.layers = nn.ModuleList(
                [_GatedLayer(c, h, config.first_kernel, first=True, n_classes=config.n_classes)]
                + [_GatedLayer(h, h, k, first=False, n_classes=config.n_classes)
                   for _ in range(config.n_layers)])
        self.head = nn.Sequential(
            nn.ReLU(), MaskedConv2d(h, h, 1, "B", image_channels=c),
            nn.ReLU(), MaskedConv2d(h, c * L, 1, "B", image_channels=c))

    # -- input checks -----------------------------------------------------------------------
    def check_x(self, x: torch.Tensor, *, rows: bool = False, cols: bool = False) -> None:
        """``x`` must have this config's ``(C, H, W)`` (``rows``/``cols``: any height/width up
        to ``H``/``W``, for the stacks run on part of an image)."""
        c, hgt, w = self.config.image_shape
        ok = isinstance(x, torch.Tensor) and x.ndim == 4 and x.shape[1] == c and \
            (x.shape[2] == hgt or (rows and 1 <= x.shape[2] <= hgt)) and \
            (x.shape[3] == w or (cols and 1 <= x.shape[3] <= w))
        if not ok:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected images of shape (B, {c}, {hgt}, {w}) for this "
                             f"config's image_shape, got {got}")

    def _cond(self, y: torch.Tensor | None, batch: int) -> list[torch.Tensor | None]:
        k = self.config.n_classes
        if k == 0:
            if y is not None:
                raise ValueError("y: this PixelCNN is unconditional (n_classes=0); pass y=None")
            return [None] * (len(self.layers) if self.config.kind == "gated" else 0)
        if y is None or y.shape != (batch,):
            raise ValueError(f"y: this PixelCNN is conditional (n_classes={k}); pass ({batch},) "
                             f"labels, got {None if y is None else tuple(y.shape)}")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
            raise ValueError(f"y: labels must be in 0..{k - 1}, got {int(y.min())}.."
                             f"{int(y.max())}")
        return [layer.cond(y) for layer in self.layers]

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * x - 1.0          # levels k/(L-1) in [0, 1] -> [-1, 1]

    def _logits(self, feats: torch.Tensor) -> torch.Tensor:
        b, _, hgt, w = feats.shape
        c, L = self.config.image_shape[0], self.config.levels
        return self.head(feats).view(b, c, L, hgt, w)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.check_x(x)
        inp = self._inputs(x)
        if self.config.kind == "plain":
            return self._logits(self.blocks(self.first(inp)))
        conds = self._cond(y, x.shape[0])
        v, h = inp, inp
        for layer, cond in zip(self.layers, conds, strict=True):
            v, link_in = layer.vertical(v, cond)
            h = layer.horizontal(h, link_in, cond)
        return self._logits(h)

    # -- the two stacks apart (gated), for fast sampling -------------------------------------
    def vertical(self, x: torch.Tensor, y: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Gated only: every layer's link input ``(B, 2h, H', W)`` for images ``x`` of any
        height ``H'`` (row ``i`` depends on rows ``< i`` only)."""
        if self.config.kind != "gated":
            raise ValueError("vertical: only kind='gated' has separate stacks")
        self.check_x(x, rows=True)
        conds = self._cond(y, x.shape[0])
        v, links = self._inputs(x), []
        for layer, cond in zip(self.layers, conds, strict=True):
            v, link_in = layer.vertical(v, cond)
            links.append(link_in)
        return links

    def horizontal(self, x_rows: torch.Tensor, links: list[torch.Tensor],
                   y: torch.Tensor | None = None) -> torch.Tensor:
        """Gated only: logits ``(B, C, levels, R, W')`` of rows ``x_rows`` ``(B, C, R, W')`` given
        the link inputs of the same rows and columns (slices of :meth:`vertical`'s output);
        ``W' <= W``: column ``j`` depends on columns ``<= j`` only."""
        if self.config.kind != "gated":
            raise ValueError("horizontal: only kind='gated' has separate stacks")
        self.check_x(x_rows, rows=True, cols=True)
        conds = self._cond(y, x_rows.shape[0])
        h = self._inputs(x_rows)
        for layer, link_in, cond in zip(self.layers, links, conds, strict=True):
            h = layer.horizontal(h, link_in, cond)
        return self._logits(h)


@dataclass(frozen=True)
class PixelRNNConfig:
    """Architecture of a :class:`PixelRNN`: a GRU over the ``H W`` pixels in raster order.

    Attributes:
        image_shape: ``(1, H, W)`` (greyscale).
        levels: grey levels per pixel.
        hidden: GRU state size.
        n_layers: stacked GRU layers.
        embed: size of the embedding of each input pixel's level (and of its position).
    """

    image_shape: tuple[int, int, int] = (1, 28, 28)
    levels: int = 2
    hidden: int = 128
    n_layers: int = 1
    embed: int = 32

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", _check_shape(self.image_shape))
        if self.image_shape[0] != 1:
            raise ValueError(f"PixelRNN models greyscale images (C = 1), got image_shape "
                             f"{self.image_shape}")
        _pos_int("levels", self.levels, 2)
        for name in ("hidden", "n_layers", "embed"):
            _pos_int(name, getattr(self, name))


class PixelRNN(nn.Module):
    """A GRU that reads pixels ``x_1 .. x_{t-1}`` and predicts ``x_t``.

    Step ``t`` gets the embedding of the previous pixel's level (a start token at ``t = 1``)
    plus an embedding of the position ``t``, so the network knows where in the image it is.
    ``forward(x)`` -> logits ``(B, 1, levels, H, W)``.
    """

    def __init__(self, config: PixelRNNConfig | None = None) -> None:
        super().__init__()
        config = config or PixelRNNConfig()
        if not isinstance(config, PixelRNNConfig):
            raise ValueError(f"config must be a PixelRNNConfig, got {type(config).__name__}")
        self.config = config
        _, hgt, w = config.image_shape
        self.n = hgt * w
        self.level_embed = nn.Embedding(config.levels + 1, config.embed)   # + start token
        self.pos_embed = nn.Embedding(self.n, config.embed)
        self.gru = nn.GRU(config.embed, config.hidden, config.n_layers, batch_first=True)
        self.out = nn.Linear(config.hidden, config.levels)

    def check_x(self, x: torch.Tensor) -> None:
        c, hgt, w = self.config.image_shape
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (c, hgt, w):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected images of shape (B, {c}, {hgt}, {w}) for this "
                             f"config's image_shape, got {got}")

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x.flatten(1) * (self.config.levels - 1)).long()      # (B, n)

    def step_inputs(self, prev: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """GRU input for position ``t`` given the previous token ``prev`` ``(B,)`` (the start
        token is ``levels``)."""
        pos = torch.as_tensor(t, device=prev.device)
        return self.level_embed(prev) + self.pos_embed(pos)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_x(x)
        tok = self._tokens(x)                                               # (B, n)
        start = torch.full_like(tok[:, :1], self.config.levels)
        prev = torch.cat([start, tok[:, :-1]], 1)                           # shifted right
        pos = torch.arange(self.n, device=x.device)
        inp = self.level_embed(prev) + self.pos_embed(pos)[None]            # (B, n, E)
        out, _ = self.gru(inp)
        logits = self.out(out)                                              # (B, n, L)
        _, hgt, w = self.config.image_shape
        return logits.transpose(1, 2).reshape(x.shape[0], 1, self.config.levels, hgt, w)
