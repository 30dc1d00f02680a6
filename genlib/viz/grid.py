"""Image grids: many small images tiled into one picture.

Batches come as torch tensors or numpy arrays shaped ``(N, C, H, W)`` with ``C`` in {1, 3}
(greyscale or RGB), or ``(N, H, W)`` for greyscale; values are floats in [0, 1] or ``uint8`` in
0..255 (the format of the ``.npz`` sample files). Everything else is refused with a message that
says what came and what was expected, so a batch still in [-1, 1] or channels-last is caught
before it silently shows a wrong picture.

Layout (the same as torchvision's ``make_grid``, written out here so genlib needs no
torchvision): images fill rows of ``ncols = min(nrow, N)``; image ``k`` lands at grid row
``k // ncols`` and column ``k % ncols``, its top-left pixel at
``(padding + row * (H + padding), padding + col * (W + padding))``; everything else is
``pad_value``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Float pixels may overshoot [0, 1] by this much (rounding in ``(x + 1) / 2`` and the like);
#: they are clipped. Anything further out is an error, not something to clip silently.
RANGE_TOL = 1e-3

#: Height of the band above a saved grid that holds its title.
TITLE_INCHES = 0.4

ImageBatch = torch.Tensor | np.ndarray


def _describe(x: ImageBatch) -> str:
    kind = "tensor" if isinstance(x, torch.Tensor) else "array"
    return f"{kind} of shape {tuple(x.shape)}, dtype {x.dtype}"


def as_image_batch(images: ImageBatch, name: str = "images") -> np.ndarray:
    """Check an image batch and return it as float32 ``(N, C, H, W)`` in [0, 1].

    Accepts ``(N, C, H, W)`` with ``C`` in {1, 3} or ``(N, H, W)`` (greyscale), as a
    ``torch.Tensor`` (any device; detached) or ``np.ndarray``, either floating point in
    [0, 1] (within :data:`RANGE_TOL`, then clipped) or ``uint8`` in 0..255 (divided by 255).
    ``name`` is the argument name used in error messages.
    """
    if isinstance(images, torch.Tensor):
        t = images.detach().cpu()
        if t.dtype == torch.uint8:
            arr = t.numpy()
        elif t.is_floating_point():
            arr = t.to(torch.float32).numpy()
        else:
            arr = None
    elif isinstance(images, np.ndarray):
        arr = images if images.dtype == np.uint8 or images.dtype.kind == "f" else None
    else:
        raise TypeError(
            f"{name} must be a torch.Tensor or np.ndarray of shape (N, C, H, W) or (N, H, W); "
            f"got {type(images).__name__}"
        )
    if arr is None:
        raise ValueError(
            f"{name} must be floating point in [0, 1] or uint8 in 0..255; got "
            f"{_describe(images)}. Convert first, e.g. x.float() / 255 or x.to(torch.uint8)."
        )

    if arr.ndim == 3:  # (N, H, W) greyscale
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        hint = ""
        if arr.ndim == 4 and arr.shape[-1] in (1, 3):
            hint = (
                " It looks channels-last (N, H, W, C): use x.permute(0, 3, 1, 2) "
                "or np.transpose(x, (0, 3, 1, 2))."
            )
        elif arr.ndim == 2:
            hint = " A single greyscale image? Add a batch axis: x[None]."
        raise ValueError(
            f"{name} must have shape (N, C, H, W) with C in {{1, 3}} or (N, H, W); got "
            f"{_describe(images)}.{hint}"
        )
    n, _, h, w = arr.shape
    if n == 0 or h == 0 or w == 0:
        raise ValueError(f"{name} must hold at least one non-empty image; got {_describe(images)}")

    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0

    arr = arr.astype(np.float32, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int((~finite).sum()) - n_nan
        raise ValueError(
            f"{name} must be finite; got {n_nan} NaN and {n_inf} infinite values in "
            f"{_describe(images)}"
        )
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -RANGE_TOL or hi > 1 + RANGE_TOL:
        hint = ""
        if -1 - RANGE_TOL <= lo < 0 and hi <= 1 + RANGE_TOL:
            hint = " If they are in [-1, 1], pass (x + 1) / 2."
        elif lo >= 0 and 1.5 < hi <= 255:
            hint = " If they are in 0..255, pass x / 255 or x as uint8."
        raise ValueError(
            f"{name} must be floats in [0, 1] (or uint8 in 0..255); got values in "
            f"[{lo:.4g}, {hi:.4g}] in {_describe(images)}.{hint}"
        )
    return np.clip(arr, 0.0, 1.0)


def _check_layout(nrow: int, padding: int, pad_value: float) -> None:
    if isinstance(nrow, bool) or not isinstance(nrow, int | np.integer) or nrow < 1:
        raise ValueError(f"nrow (images per grid row) must be an int >= 1; got {nrow!r}")
    if isinstance(padding, bool) or not isinstance(padding, int | np.integer) or padding < 0:
        raise ValueError(f"padding (pixels between images) must be an int >= 0; got {padding!r}")
    if not isinstance(pad_value, int | float | np.number) or not 0.0 <= float(pad_value) <= 1.0:
        raise ValueError(f"pad_value must be a number in [0, 1]; got {pad_value!r}")


def _grid_shape(n: int, nrow: int) -> tuple[int, int]:
    """(rows, cols) of the grid for ``n`` images, ``nrow`` per row."""
    ncols = min(nrow, n)
    return math.ceil(n / ncols), ncols


@overload
def make_grid(
    images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0
) -> torch.Tensor: ...
@overload
def make_grid(
    images: np.ndarray, nrow: int = 8, padding: int = 2, pad_value: float = 1.0
) -> np.ndarray: ...
def make_grid(
    images: ImageBatch, nrow: int = 8, padding: int = 2, pad_value: float = 1.0
) -> ImageBatch:
    """Tile a batch ``(N, C, H, W)`` (or ``(N, H, W)``) into one image ``(C, Hg, Wg)``.

    ``nrow`` is the number of images per grid row (torchvision's name), so the grid has
    ``cols = min(nrow, N)`` columns and ``rows = ceil(N / cols)`` rows, and
    ``Hg = rows * (H + padding) + padding``, ``Wg = cols * (W + padding) + padding``.
    Image ``k`` sits at row ``k // cols``, column ``k % cols`` (see the module docstring for
    pixel offsets); padding and empty cells hold ``pad_value``.

    Returns float32 values in [0, 1] (``uint8`` input is divided by 255), as a CPU
    ``torch.Tensor`` for tensor input and an ``np.ndarray`` for array input.
    """
    batch = as_image_batch(images, "images")
    _check_layout(nrow, padding, pad_value)
    n, c, h, w = batch.shape
    rows, cols = _grid_shape(n, int(nrow))
    p = int(padding)
    grid = np.full((c, rows * (h + p) + p, cols * (w + p) + p), pad_value, dtype=np.float32)
    for k in range(n):
        top = p + (k // cols) * (h + p)
        left = p + (k % cols) * (w + p)
        grid[:, top : top + h, left : left + w] = batch[k]
    return torch.from_numpy(grid) if isinstance(images, torch.Tensor) else grid


def _check_labels(labels: Sequence[Any] | None, n: int) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str) or not hasattr(labels, "__len__"):
        raise ValueError(
            f"labels must be a sequence with one entry per image ({n}); got {type(labels).__name__}"
        )
    if len(labels) != n:
        raise ValueError(f"labels must have one entry per image ({n}); got {len(labels)} entries")
    out = []
    for lab in labels:
        if isinstance(lab, torch.Tensor | np.ndarray) and lab.ndim == 0:
            lab = lab.item()
        out.append(str(lab))
    return out


def _draw_grid(
    ax: Axes,
    batch: np.ndarray,
    nrow: int,
    padding: int,
    pad_value: float,
    labels: list[str] | None,
    title: str | None,
    cmap: str,
    label_fontsize: float,
) -> None:
    """Draw the checked batch (N, C, H, W) as one image on ``ax``; axis lines off."""
    grid = make_grid(batch, nrow=nrow, padding=padding, pad_value=pad_value)
    if grid.shape[0] == 1:
        ax.imshow(grid[0], cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(grid.transpose(1, 2, 0), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    if labels is not None:
        n, _, h, w = batch.shape
        _, cols = _grid_shape(n, nrow)
        for k, text in enumerate(labels):
            top = padding + (k // cols) * (h + padding)
            left = padding + (k % cols) * (w + padding)
            ax.text(
                left + 0.5,
                top + 0.5,
                text,
                ha="left",
                va="top",
                fontsize=label_fontsize,
                color="black",
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.75},
            )


def grid_figsize(
    n: int,
    height: int,
    width: int,
    nrow: int = 8,
    padding: int = 2,
    cell_inches: float = 1.0,
    max_width_inches: float = 7.0,
    title: bool = False,
) -> tuple[float, float]:
    """Figure size (inches) that :func:`save_grid` uses for ``n`` images of ``height x width``.

    Each image gets ``cell_inches`` along its longer side (``s = cell_inches / max(H, W)``
    inches per pixel, shrunk so the figure is at most ``max_width_inches`` wide); the figure is
    ``(Wg * s, Hg * s + 0.4 if title)`` where ``Hg, Wg`` is the grid size of :func:`make_grid`.
    A PNG saved at ``dpi`` is therefore ``round(size * dpi)`` pixels (matplotlib truncates to
    an int; the size is nudged so that rounding, not truncation, decides).
    """
    rows, cols = _grid_shape(n, nrow)
    hg = rows * (height + padding) + padding
    wg = cols * (width + padding) + padding
    s = cell_inches / max(height, width)
    if wg * s > max_width_inches:
        s = max_width_inches / wg
    return wg * s, hg * s + (TITLE_INCHES if title else 0.0)


def _label_fontsize(cell_points: float) -> float:
    return float(np.clip(0.2 * cell_points, 6.0, 11.0))


def grid_figure(
    images: ImageBatch,
    nrow: int = 8,
    *,
    title: str | None = None,
    labels: Sequence[Any] | None = None,
    cmap: str = "gray",
    padding: int = 2,
    pad_value: float = 1.0,
    cell_inches: float = 1.0,
    max_width_inches: float = 7.0,
    dpi: float = 150,
) -> Figure:
    """A standalone :class:`~matplotlib.figure.Figure` (not managed by pyplot) of the grid.

    The grid fills the figure edge to edge (size from :func:`grid_figsize`), with a band on
    top for ``title``. Nothing is displayed; :func:`save_grid` and the CLI use it.
    """
    batch = as_image_batch(images, "images")
    _check_layout(nrow, padding, pad_value)
    if not cell_inches > 0 or not max_width_inches > 0:
        raise ValueError(
            f"cell_inches and max_width_inches must be > 0; got {cell_inches!r}, "
            f"{max_width_inches!r}"
        )
    n, _, h, w = batch.shape
    lab = _check_labels(labels, n)
    fig_w, fig_h = grid_figsize(
        n, h, w, int(nrow), int(padding), cell_inches, max_width_inches, title=bool(title)
    )
    # matplotlib truncates inches * dpi to an int; half a pixel more makes that a rounding.
    fig = Figure(figsize=((round(fig_w * dpi) + 0.5) / dpi, (round(fig_h * dpi) + 0.5) / dpi))
    fig.set_dpi(dpi)
    grid_h = fig_h - (TITLE_INCHES if title else 0.0)
    ax = fig.add_axes((0.0, 0.0, 1.0, grid_h / fig_h))
    cell_points = 72.0 * fig_w / (min(int(nrow), n) * (w + padding) + padding) * h
    _draw_grid(
        ax,
        batch,
        int(nrow),
        int(padding),
        float(pad_value),
        lab,
        title,
        cmap,
        _label_fontsize(cell_points),
    )
    return fig


def show_images(
    images: ImageBatch,
    nrow: int = 8,
    title: str | None = None,
    ax: Axes | None = None,
    labels: Sequence[Any] | None = None,
    cmap: str = "gray",
    *,
    padding: int = 2,
    pad_value: float = 1.0,
    cell_inches: float = 1.0,
    max_width_inches: float = 7.0,
) -> Axes:
    """Show a batch ``(N, C, H, W)`` / ``(N, H, W)`` as one grid; returns the Axes.

    Without ``ax``, a new pyplot figure sized like :func:`grid_figsize` is created (so a
    notebook displays it). ``labels`` (one per image: class, caption word, score) are written
    in the top-left corner of each image. ``cmap`` applies to greyscale only; values map
    0 -> black, 1 -> white. Axis lines are off: pixel coordinates mean nothing to a reader.
    """
    batch = as_image_batch(images, "images")
    _check_layout(nrow, padding, pad_value)
    n, _, h, w = batch.shape
    lab = _check_labels(labels, n)
    if ax is None:
        import matplotlib.pyplot as plt

        fig_w, fig_h = grid_figsize(
            n, h, w, int(nrow), int(padding), cell_inches, max_width_inches, title=bool(title)
        )
        fig = plt.figure(figsize=(fig_w, fig_h))
        grid_h = fig_h - (TITLE_INCHES if title else 0.0)
        ax = fig.add_axes((0.0, 0.0, 1.0, grid_h / fig_h))
    bbox = ax.get_window_extent()
    cols = min(int(nrow), n)
    # points per image, from the axes width (the grid image fills it when aspect is equal)
    cell_points = bbox.width / ax.figure.dpi * 72.0 / (cols * (w + padding) + padding) * h
    _draw_grid(
        ax,
        batch,
        int(nrow),
        int(padding),
        float(pad_value),
        lab,
        title,
        cmap,
        _label_fontsize(cell_points),
    )
    return ax


def save_grid(
    images: ImageBatch,
    path: str | Path,
    nrow: int = 8,
    *,
    title: str | None = None,
    labels: Sequence[Any] | None = None,
    cmap: str = "gray",
    padding: int = 2,
    pad_value: float = 1.0,
    cell_inches: float = 1.0,
    max_width_inches: float = 7.0,
    dpi: float = 150,
) -> Path:
    """Write the grid of ``images`` to the PNG file ``path``; returns the path.

    The PNG is ``round(grid_figsize(...) * dpi)`` pixels: by default each image is 1 inch
    (150 pixels) along its longer side and the whole grid at most 12 inches wide, so 64 MNIST
    digits in rows of 8 give a 1,296 x 1,296 pixel image (plus 60 pixels for a title).
    Missing parent folders of ``path`` are created. Used by ``genlib data show NAME --out``.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png (save_grid writes PNG); got {str(path)!r}")
    if not dpi > 0:
        raise ValueError(f"dpi must be > 0; got {dpi!r}")
    fig = grid_figure(
        images,
        nrow,
        title=title,
        labels=labels,
        cmap=cmap,
        padding=padding,
        pad_value=pad_value,
        cell_inches=cell_inches,
        max_width_inches=max_width_inches,
        dpi=dpi,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png", bbox_inches=None, facecolor="white")
    return path
