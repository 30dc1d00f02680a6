"""The two containers every loader in :mod:`genlib.data` returns.

- :class:`ImageData`: images ``(N, C, H, W)`` float32 in ``[0, 1]`` with whatever goes with them
  (class labels, captions, attribute labels).
- :class:`PointData`: points ``(N, D)`` of a 2D toy distribution, with its mode centres when it is
  a mixture (chapter 1's first model, chapter 5's mode-coverage check).

Both are frozen: a dataset is a value, and a split never changes under a training loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ImageData", "PointData"]


@dataclass(frozen=True, kw_only=True, eq=False)
class ImageData:
    """An image dataset split held in memory.

    Attributes:
        images: ``(N, C, H, W)`` float32 in ``[0, 1]``.
        labels: ``(N,)`` int64 class indices, or None.
        captions: N strings (one per image), or None.
        name: registry name of the dataset, e.g. ``"mnist5k"``.
        split: ``"train"``, ``"test"``, ... as asked for.
        levels: number of intensity levels when every pixel is ``k / (levels - 1)`` for an
            integer ``k`` (256 for 8-bit images, 17 for ``digits8x8``); None when pixels are
            continuous (antialiased ``shapes``). See :meth:`int_pixels`.
        attributes: name -> ``(N,)`` (or ``(N, ...)``) tensor of per-image attribute values,
            or None.
        classes: class names, ``classes[labels[i]]`` names image i; or None.
        vocab: attribute name -> tuple of value names, ``vocab[a][attributes[a][i]]`` names the
            value of attribute ``a`` of image i; or None.
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    captions: tuple[str, ...] | None = None
    name: str
    split: str
    levels: int | None = None
    attributes: dict[str, torch.Tensor] | None = None
    classes: tuple[str, ...] | None = None
    vocab: dict[str, tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor) or self.images.ndim != 4:
            got = (
                tuple(self.images.shape)
                if isinstance(self.images, torch.Tensor)
                else type(self.images).__name__
            )
            raise ValueError(f"images must be a (N, C, H, W) tensor, got {got}")
        if not self.images.is_floating_point():
            raise ValueError(f"images must be floating point in [0, 1], got {self.images.dtype}")
        n = self.images.shape[0]
        if self.labels is not None and tuple(self.labels.shape) != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(self.labels.shape)}")
        if self.captions is not None and len(self.captions) != n:
            raise ValueError(f"captions must hold {n} strings, got {len(self.captions)}")
        if self.levels is not None and not (2 <= self.levels <= 256):
            raise ValueError(f"levels must be in 2..256 or None, got {self.levels}")
        for key, value in (self.attributes or {}).items():
            if value.shape[0] != n:
                raise ValueError(
                    f"attribute {key!r} must have {n} rows, got shape {tuple(value.shape)}"
                )

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one image, ``(C, H, W)``."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def int_pixels(self) -> torch.Tensor:
        """The integer pixel levels ``k = round(x * (levels - 1))``, uint8 ``(N, C, H, W)``.

        Exact for datasets stored as ``k / (levels - 1)`` (every dataset whose ``levels`` is set):
        the inputs of categorical decoders (chapters 3 and 4) and of likelihoods in bits/dim.
        """
        if self.levels is None:
            raise ValueError(
                f"dataset {self.name!r} has continuous pixels (levels=None): "
                "int_pixels() needs a dataset with discrete levels"
            )
        return torch.round(self.images * (self.levels - 1)).to(torch.uint8)


@dataclass(frozen=True, kw_only=True, eq=False)
class PointData:
    """Samples of a 2D toy distribution.

    Attributes:
        points: ``(N, 2)`` float32.
        name: registry name, e.g. ``"toy2d-ring"``.
        split: ``"train"`` or ``"test"``.
        modes: ``(K, 2)`` centres of the mixture components, or None when the distribution is
            not a mixture of well-separated modes.
        mode_std: standard deviation of each (isotropic) mode, or None.
    """

    points: torch.Tensor
    name: str
    split: str
    modes: torch.Tensor | None = None
    mode_std: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.points, torch.Tensor) or self.points.ndim != 2:
            raise ValueError("points must be a (N, D) tensor")

    def __len__(self) -> int:
        return self.points.shape[0]
