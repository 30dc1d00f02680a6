"""Which classes the samples fall into: the class histogram, the measure of mode dropping.

A generator that has collapsed onto a few modes can still score a decent FID on features that
average over classes; counting the classes a classifier assigns to the samples shows it
directly: the smallest class share (a balanced 10-class set gives 10%) and the classes that
never appear. The GAN target of the kit (every digit >= 7% of the samples) is read from here.
Chapter 5 (mode collapse) and chapter 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from genlib.metrics._checks import check_int

__all__ = ["ClassHistogram", "class_histogram"]


@dataclass(frozen=True)
class ClassHistogram:
    """Counts of predicted classes among ``n`` samples.

    Attributes:
        counts: samples per class, ``counts[c]`` for class ``c = 0..K-1``.
        class_names: a name per class (default ``"0"``, ``"1"``, ...).
    """

    counts: tuple[int, ...]
    class_names: tuple[str, ...]

    @property
    def n(self) -> int:
        """Number of samples."""
        return sum(self.counts)

    @property
    def shares(self) -> tuple[float, ...]:
        """Fraction of the samples in each class (sums to 1)."""
        n = self.n
        return tuple(c / n for c in self.counts)

    @property
    def min_share(self) -> float:
        """The smallest class share (0 when a class is missing)."""
        return min(self.shares)

    @property
    def min_class(self) -> str:
        """Name of the class with the smallest share (the first one on ties)."""
        return self.class_names[int(np.argmin(self.counts))]

    @property
    def max_share(self) -> float:
        """The largest class share."""
        return max(self.shares)

    @property
    def missing(self) -> tuple[str, ...]:
        """Names of the classes with no sample at all."""
        return tuple(name for name, c in zip(self.class_names, self.counts, strict=True)
                     if c == 0)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {"classes": list(self.class_names), "counts": list(self.counts),
                "shares": list(self.shares), "n": self.n, "min_share": self.min_share,
                "min_class": self.min_class, "max_share": self.max_share,
                "missing": list(self.missing)}

    def __str__(self) -> str:
        parts = ", ".join(f"{name}: {s:.1%}" for name, s in zip(self.class_names, self.shares,
                                                                 strict=True))
        missing = ", ".join(self.missing) or "none"
        return (f"classes of {self.n:,} samples: {parts}; smallest {self.min_share:.1%} "
                f"({self.min_class}); missing: {missing}")


def class_histogram(labels: Any, n_classes: int | None = None, *,
                    class_names: tuple[str, ...] | list[str] | None = None) -> ClassHistogram:
    """Histogram of class labels, or of a classifier's predictions.

    Args:
        labels: ``(N,)`` integer class indices, or ``(N, K)`` logits / probabilities (their
            ``argmax`` is taken and ``K`` is the number of classes); tensor, array or list.
        n_classes: number of classes ``K`` (needed for labels unless ``class_names`` is given:
            a class nobody predicted cannot be inferred from the labels).
        class_names: one name per class (default the indices as strings).
    """
    if isinstance(labels, list | tuple):
        labels = np.asarray(labels)
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(np.ascontiguousarray(labels))
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a tensor, array or list, got {type(labels).__name__}")
    if labels.ndim == 2:
        if not labels.is_floating_point():
            raise TypeError(f"(N, K) labels are read as logits and must be floating point, got "
                            f"dtype {labels.dtype}")
        if n_classes is not None and n_classes != labels.shape[1]:
            raise ValueError(f"n_classes={n_classes} but the logits score K={labels.shape[1]} "
                             "classes")
        n_classes = labels.shape[1]
        labels = labels.argmax(dim=1)
    elif labels.ndim != 1:
        raise ValueError(f"labels must be (N,) class indices or (N, K) logits, got shape "
                         f"{tuple(labels.shape)}")
    elif labels.is_floating_point():
        if not torch.equal(labels, labels.round()):
            raise ValueError("labels must be whole class indices; got fractional values such as "
                             f"{labels[labels != labels.round()][:3].tolist()}")
    elif labels.dtype == torch.bool:
        raise TypeError("labels must be integer class indices, got dtype torch.bool")
    if labels.shape[0] < 1:
        raise ValueError("labels is empty: there is nothing to count")
    if class_names is not None:
        class_names = tuple(str(c) for c in class_names)
        if n_classes is not None and len(class_names) != n_classes:
            raise ValueError(f"class_names must hold n_classes={n_classes} names, got "
                             f"{len(class_names)}")
        n_classes = len(class_names)
    if n_classes is None:
        raise ValueError("n_classes is required with (N,) labels (a class no sample falls into "
                         "cannot be seen in the labels); pass n_classes or class_names")
    n_classes = check_int(n_classes, "n_classes", minimum=1)
    labels = labels.long().cpu()
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"labels must be class indices in 0..{n_classes - 1}, got values in "
                         f"{lo}..{hi}")
    counts = torch.bincount(labels, minlength=n_classes).tolist()
    names = class_names if class_names is not None else tuple(str(c) for c in range(n_classes))
    return ClassHistogram(counts=tuple(int(c) for c in counts), class_names=names)
