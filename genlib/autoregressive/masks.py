r"""Causal masks and the masked convolution of PixelCNN.

An autoregressive image model orders the pixels in raster order (row by row, left to right; for
colour images the channels of one pixel in order) and predicts each from the ones before it,

.. math::  p(x) = \prod_{i=1}^{H W} p(x_i \mid x_{<i}).

A convolution sees a square around each pixel; a *mask* zeroes the weights that would look at the
pixel itself or at later pixels. Two kinds (van den Oord et al. 2016):

- **type A**, for the first layer: the centre pixel is excluded, so the output at pixel ``i``
  depends only on pixels ``< i`` of the input image;
- **type B**, for every later layer: the centre is included. Its input at pixel ``i`` already
  carries only information from pixels ``< i``, so it may look at itself.

With ``C > 1`` image channels, features are split into ``C`` groups, group ``c`` predicting
channel ``c``; at the centre, a type-A mask lets output group ``j`` see input groups ``c < j``, a
type-B mask groups ``c <= j``.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["causal_mask", "MaskedConv2d", "MASK_TYPES"]

MASK_TYPES = ("A", "B")


def _check_kernel(kernel_size: object) -> int:
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, numbers.Integral) \
            or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size must be an odd positive int (the mask needs a centre pixel; an even "
            f"kernel has none and would see the future or shift the image), got {kernel_size!r}")
    return int(kernel_size)


def _groups_of(channels: int, groups: int, name: str) -> torch.Tensor:
    """The group (0..groups-1) of each of ``channels`` features, in contiguous blocks."""
    if channels % groups:
        raise ValueError(f"{name} ({channels}) must be divisible by the number of image "
                         f"channels ({groups}): features are split into one group per channel")
    return torch.arange(channels) // (channels // groups)


def causal_mask(kernel_size: int, mask_type: str, in_channels: int, out_channels: int, *,
                image_channels: int = 1) -> torch.Tensor:
    """The 0/1 mask of a ``kernel_size`` x ``kernel_size`` causal convolution.

    Args:
        kernel_size: odd.
        mask_type: ``"A"`` (excludes the centre pixel's own group and later) or ``"B"``.
        in_channels, out_channels: of the convolution; multiples of ``image_channels``.
        image_channels: ``C`` of the images (1 for greyscale).

    Returns:
        ``(out_channels, in_channels, k, k)`` float tensor: rows above the centre all ones, the
        centre row ones left of the centre, the centre by channel group, the rest zero.
    """
    k = _check_kernel(kernel_size)
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    if isinstance(image_channels, bool) or not isinstance(image_channels, numbers.Integral) \
            or image_channels < 1:
        raise ValueError(f"image_channels must be a positive int, got {image_channels!r}")
    mask = torch.zeros(out_channels, in_channels, k, k)
    c = k // 2
    mask[:, :, :c, :] = 1.0                         # every row above the centre
    mask[:, :, c, :c] = 1.0                         # the centre row, left of the centre
    g_in = _groups_of(in_channels, image_channels, "in_channels")
    g_out = _groups_of(out_channels, image_channels, "out_channels")
    if mask_type == "A":
        centre = g_in[None, :] < g_out[:, None]
    else:
        centre = g_in[None, :] <= g_out[:, None]
    mask[:, :, c, c] = centre.to(mask.dtype)
    return mask


class MaskedConv2d(nn.Conv2d):
    """A same-size convolution whose weights are multiplied by a :func:`causal_mask`.

    ``MaskedConv2d(in_channels, out_channels, kernel_size, mask_type, image_channels=1)``;
    stride 1 and padding ``kernel_size // 2``, so the output has the input's height and width.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str,
                 *, image_channels: int = 1, bias: bool = True) -> None:
        k = _check_kernel(kernel_size)
        super().__init__(in_channels, out_channels, k, padding=k // 2, bias=bias)
        self.mask_type = mask_type
        self.register_buffer("mask", causal_mask(k, mask_type, in_channels, out_channels,
                                                 image_channels=image_channels),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mask_type={self.mask_type!r}"
