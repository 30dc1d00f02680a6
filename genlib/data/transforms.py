"""Transforms of image data that models of several chapters share.

- :func:`binarize`: draw black-and-white images from grey ones, each pixel ``1`` with probability
  equal to its grey level (*stochastic binarisation*, the protocol behind the "binarised MNIST"
  likelihoods of the VAE and PixelCNN papers).
- :func:`binarized`: a whole :class:`~genlib.data.ImageData` split binarised once with a fixed
  seed: ``binarized(load("mnist5k", "test"))`` is *the* binarised mnist5k test split that every
  likelihood in the book is measured on.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from genlib.data._checks import make_generator
from genlib.data.containers import ImageData

__all__ = ["binarize", "binarized", "BINARIZE_SEED"]

BINARIZE_SEED = 0
"""The seed of the fixed binarisation of evaluation splits (:func:`binarized`)."""


def binarize(images: torch.Tensor, *, seed: int | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic binarisation: pixel ``x`` becomes ``1`` with probability ``x``, else ``0``.

    Args:
        images: grey images with values in ``[0, 1]``, any shape.
        seed, generator: the randomness (a CPU generator; at most one of the two; neither: seed 0).
            Training loops pass their own generator so that every epoch sees a fresh draw (a
            cheap data augmentation); evaluation uses a fixed seed.

    Returns:
        a tensor of ``0.0`` / ``1.0`` with the shape, dtype and device of ``images``.
    """
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise ValueError(f"images must be a floating-point tensor in [0, 1], got "
                         f"{getattr(images, 'dtype', type(images).__name__)}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(f"images must lie in [0, 1] (they are probabilities here), got values "
                         f"in [{float(images.min()):.3g}, {float(images.max()):.3g}]")
    gen = make_generator(seed, generator)
    u = torch.rand(images.shape, generator=gen, dtype=torch.float32).to(images.device)
    return (u < images).to(images.dtype)


def binarized(data: ImageData, *, seed: int = BINARIZE_SEED) -> ImageData:
    """``data`` with its images binarised once by :func:`binarize` with ``seed`` (``levels=2``).

    ``binarized(load("mnist5k", "test"))`` is the fixed binarised test split of the book:
    the same 0/1 pixels on every machine and in every chapter.
    """
    if not isinstance(data, ImageData):
        raise ValueError(f"data must be an ImageData (from genlib.data.load), got "
                         f"{type(data).__name__}")
    return replace(data, images=binarize(data.images, seed=seed), levels=2)
