r"""Exact likelihood and sampling for the autoregressive models.

**Likelihood.** One forward pass gives every conditional at once (the masks guarantee that the
logits at pixel ``i`` saw only pixels ``< i``), so

.. math::  \log p(x) = \sum_i \log p(x_i \mid x_{<i})

is exact and costs one pass: :func:`log_prob` per image, :func:`nll` for a data set with its
standard error.

**Sampling** is sequential: pixel ``i`` can be drawn only after pixels ``< i``. :func:`sample`
draws ``H W`` times. For the gated PixelCNN it runs the vertical stack once per row (on the rows
it can see) and the horizontal stack on one row per pixel, which gives the same numbers as a full
forward pass at a fraction of the cost; the plain PixelCNN computes every layer at one position
per pixel from cached features of the earlier positions (one forward pass of work in all);
the pixel GRU carries its state from pixel to pixel.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch.nn import functional as F

from genlib.autoregressive.models import PixelCNN, PixelRNN
from genlib.prob import Estimate, mc_mean

__all__ = ["log_prob", "nll", "sample", "levels_of", "receptive_rows"]

Model = PixelCNN | PixelRNN


def _check_model(model: object) -> Model:
    if not isinstance(model, PixelCNN | PixelRNN):
        raise ValueError(f"model must be a genlib.autoregressive PixelCNN or PixelRNN, got "
                         f"{type(model).__name__}")
    return model


def levels_of(model: Model, x: torch.Tensor) -> torch.Tensor:
    """The integer level ``k`` of each pixel of ``x`` (values ``k / (levels - 1)``), checked."""
    levels = model.config.levels
    k = torch.round(x * (levels - 1))
    if not bool(((k - x * (levels - 1)).abs() < 1e-3).all()) or bool((k < 0).any()) \
            or bool((k > levels - 1).any()):
        raise ValueError(f"x: this model has {levels} grey levels; x must hold values "
                         f"k / {levels - 1} for integers k in 0..{levels - 1}"
                         + (" (binarise grey images with genlib.data.binarize)"
                            if levels == 2 else ""))
    return k.long()


def log_prob(model: Model, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Exact ``log p(x)`` per image, ``(B,)`` in nats (differentiable: the training loss is its
    negative mean)."""
    model = _check_model(model)
    model.check_x(x)
    k = levels_of(model, x)                                             # (B, C, H, W)
    logits = model(x, y) if isinstance(model, PixelCNN) else model(x)   # (B, C, L, H, W)
    logp = F.log_softmax(logits, dim=2)
    return logp.gather(2, k.unsqueeze(2)).squeeze(2).flatten(1).sum(1)


@torch.no_grad()
def nll(model: Model, x: torch.Tensor, y: torch.Tensor | None = None, *,
        batch_size: int = 250) -> Estimate:
    """Mean test negative log-likelihood in nats per image with its standard error (eval mode,
    batched, float64 accumulation). Divide by ``D log 2`` for bits per dimension."""
    model = _check_model(model)
    was = model.training
    model.eval()
    try:
        dev = next(model.parameters()).device
        parts = []
        for i in range(0, x.shape[0], batch_size):
            yb = None if y is None else y[i:i + batch_size].to(dev)
            parts.append(-log_prob(model, x[i:i + batch_size].to(dev), yb).double().cpu())
        values = torch.cat(parts)
    finally:
        model.train(was)
    if values.numel() < 2:
        raise ValueError(f"x: need at least 2 images for a standard error, got {values.numel()}")
    return mc_mean(values)


def receptive_rows(model: PixelCNN) -> int:
    """How many rows above a pixel can influence its logits (the pixel's own row not counted):
    ``first_kernel // 2 + n_layers * (kernel_size // 2)``, plus one for the gated model, whose
    vertical stack reaches the horizontal one shifted down a row."""
    cfg = model.config
    above = cfg.first_kernel // 2 + cfg.n_layers * (cfg.kernel_size // 2)
    return above + (1 if cfg.kind == "gated" else 0)


def _draw(logits: torch.Tensor, temperature: float, generator: torch.Generator | None
          ) -> torch.Tensor:
    """One categorical draw per row of ``logits`` ``(N, L)`` by inverse CDF from uniforms of
    ``generator`` (CPU): reproducible on any device."""
    probs = F.softmax(logits.float() / temperature, dim=-1).cpu()
    u = torch.rand(probs.shape[0], 1, generator=generator)
    k = (probs.cumsum(-1) < u).sum(-1).clamp_max(probs.shape[-1] - 1)
    return k.to(logits.device)


@torch.no_grad()
def sample(model: Model, n: int, y: torch.Tensor | None = None, *, temperature: float = 1.0,
           generator: torch.Generator | None = None,
           callback: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Draw ``n`` images one pixel at a time: ``(n, C, H, W)`` with values ``k / (levels - 1)``.

    Args:
        model: a :class:`PixelCNN` or :class:`PixelRNN` (run in eval mode; its mode is restored).
        n: number of images.
        y: ``(n,)`` labels for a class-conditional PixelCNN.
        temperature: divides the logits; < 1 sharpens each conditional (cleaner, less varied
            images), > 1 flattens it.
        generator: CPU generator for the uniforms behind every draw (same seed, same images).
        callback: ``callback(row, images_so_far)`` after each finished row (for pictures of the
            image filling in).
    """
    model = _check_model(model)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not (isinstance(temperature, numbers.Real) and temperature > 0
            and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    was = model.training
    model.eval()
    try:
        if isinstance(model, PixelRNN):
            return _sample_rnn(model, int(n), float(temperature), generator, callback)
        return _sample_cnn(model, int(n), y, float(temperature), generator, callback)
    finally:
        model.train(was)


def _sample_cnn(model: PixelCNN, n: int, y: torch.Tensor | None, temperature: float,
                generator: torch.Generator | None,
                callback: Callable[[int, torch.Tensor], None] | None) -> torch.Tensor:
    cfg = model.config
    c, hgt, w = cfg.image_shape
    dev = next(model.parameters()).device
    scale = cfg.levels - 1
    if y is not None:
        y = y.to(dev)
    x = torch.zeros(n, c, hgt, w, device=dev)
    rows = receptive_rows(model)
    cache = _PlainCache(model, n) if cfg.kind == "plain" else None
    for i in range(hgt):
        top = max(0, i - rows)
        if cfg.kind == "gated":
            links = [lk[:, :, -1:] for lk in model.vertical(x[:, :, top:i + 1], y)]
            for j in range(w):
                logits = model.horizontal(x[:, :, i:i + 1, :j + 1],
                                          [lk[..., :j + 1] for lk in links], y)
                k = _draw(logits[:, 0, :, 0, j], temperature, generator)
                x[:, 0, i, j] = k.to(x.dtype) / scale
        else:
            for j in range(w):
                for ch in range(c):          # channels in order: ch sees channels < ch
                    logits = cache.logits_at(i, j)                       # (n, C, L)
                    k = _draw(logits[:, ch], temperature, generator)
                    x[:, ch, i, j] = k.to(x.dtype) / scale
                    cache.set_pixel(i, j, x[:, :, i, j])
        if callback is not None:
            callback(i, x)
    return x


class _PlainCache:
    """Pixel-by-pixel evaluation of a plain PixelCNN that computes every layer at one position
    per step, like a transformer's key/value cache.

    Every feature at position ``q`` depends only on pixels before ``q`` (the type-A first layer
    never sees ``q`` itself, and type-B layers only pass on what is below them). So once the
    pixels before ``q`` are drawn, the features at ``q`` are final, and the ``k x k`` layers find
    the features they need at earlier positions already computed. The buffers hold each
    ``k x k`` layer's zero-padded input; a step reads one ``k x k`` window per layer. In all,
    sampling does the work of one forward pass instead of ``H W`` of them.
    """

    def __init__(self, model: PixelCNN, n: int) -> None:
        self.model = model
        first = model.first
        dev = first.weight.device
        _, hgt, w = model.config.image_shape
        self.k0 = first.kernel_size[0]
        self.inp = torch.zeros(n, first.in_channels, hgt + self.k0 - 1, w + self.k0 - 1,
                               device=dev)
        self.mids = []
        for block in model.blocks:
            conv = block.net[3]
            k = conv.kernel_size[0]
            self.mids.append(torch.zeros(n, conv.in_channels, hgt + k - 1, w + k - 1,
                                         device=dev))

    @staticmethod
    def _at(conv: torch.nn.Conv2d, window: torch.Tensor) -> torch.Tensor:
        """``conv`` at one position from its ``(n, C_in, k, k)`` input window: ``(n, C_out)``."""
        weight = (conv.weight * conv.mask).flatten(1)                   # (C_out, C_in k k)
        return torch.addmm(conv.bias, window.flatten(1), weight.t())

    def set_pixel(self, i: int, j: int, value: torch.Tensor) -> None:
        """Record the drawn pixel ``(n, C)`` at ``(i, j)`` (as the model's input, in [-1, 1])."""
        p = self.k0 // 2
        self.inp[:, :, i + p, j + p] = self.model._inputs(value)

    def logits_at(self, i: int, j: int) -> torch.Tensor:
        """Logits ``(n, C, levels)`` at pixel ``(i, j)``; fills the buffers at ``(i, j)``."""
        m = self.model
        h = self._at(m.first, self.inp[:, :, i:i + self.k0, j:j + self.k0])     # (n, h)
        for block, mid in zip(m.blocks, self.mids, strict=True):
            _, conv_in, _, conv_k, _, conv_out = block.net
            k = conv_k.kernel_size[0]
            a = F.relu(self._at(conv_in, F.relu(h)[:, :, None, None]))
            mid[:, :, i + k // 2, j + k // 2] = a
            b = F.relu(self._at(conv_k, mid[:, :, i:i + k, j:j + k]))
            h = h + self._at(conv_out, b[:, :, None, None])
        _, head1, _, head2 = m.head
        hid = F.relu(self._at(head1, F.relu(h)[:, :, None, None]))
        out = self._at(head2, hid[:, :, None, None])
        c, L = m.config.image_shape[0], m.config.levels
        return out.view(-1, c, L)


def _sample_rnn(model: PixelRNN, n: int, temperature: float, generator: torch.Generator | None,
                callback: Callable[[int, torch.Tensor], None] | None) -> torch.Tensor:
    cfg = model.config
    _, hgt, w = cfg.image_shape
    dev = next(model.parameters()).device
    tokens = torch.empty(n, model.n, dtype=torch.long, device=dev)
    prev = torch.full((n,), cfg.levels, dtype=torch.long, device=dev)     # start token
    state = None
    for t in range(model.n):
        out, state = model.gru(model.step_inputs(prev, t)[:, None], state)
        prev = _draw(model.out(out[:, 0]), temperature, generator)
        tokens[:, t] = prev
        if callback is not None and (t + 1) % w == 0:
            callback(t // w, _as_images(tokens, cfg, upto=t + 1))
    return _as_images(tokens, cfg, upto=model.n)


def _as_images(tokens: torch.Tensor, cfg, *, upto: int) -> torch.Tensor:
    _, hgt, w = cfg.image_shape
    x = torch.zeros_like(tokens, dtype=torch.float32)
    x[:, :upto] = tokens[:, :upto].float() / (cfg.levels - 1)
    return x.view(-1, 1, hgt, w)
