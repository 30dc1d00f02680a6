"""Autoregressive image models (chapter 3): an image is a sequence of pixels, each predicted from
the ones before it, and its likelihood is exact.

- :mod:`~genlib.autoregressive.masks`     :func:`causal_mask` (types A and B, channel groups),
  :class:`MaskedConv2d`
- :mod:`~genlib.autoregressive.models`    :class:`PixelCNN` (plain, with its blind spot, or
  gated, without; optionally class-conditional) and :class:`PixelRNN` (a GRU over the pixels),
  each from a config dataclass
- :mod:`~genlib.autoregressive.inference` exact :func:`log_prob` and :func:`nll` (with its standard
  error); :func:`sample`, one pixel at a time, with an explicit generator and a temperature

Training recipes: ``genlib train pixelcnn-mnist5k``, ``pixelrnn-mnist5k`` and
``pixelcnn-digits8x8`` (:mod:`genlib.recipes.autoregressive`).
"""

from genlib.autoregressive.inference import levels_of, log_prob, nll, receptive_rows, sample
from genlib.autoregressive.masks import MASK_TYPES, MaskedConv2d, causal_mask
from genlib.autoregressive.models import (
    KINDS,
    PixelCNN,
    PixelCNNConfig,
    PixelRNN,
    PixelRNNConfig,
)

__all__ = [
    "causal_mask", "MaskedConv2d", "MASK_TYPES",
    "PixelCNNConfig", "PixelCNN", "PixelRNNConfig", "PixelRNN", "KINDS",
    "log_prob", "nll", "sample", "levels_of", "receptive_rows",
]
