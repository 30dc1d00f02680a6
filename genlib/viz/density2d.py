"""Two-dimensional samples and densities: the toy2d pictures of every chapter.

:func:`density_grid` evaluates a log-density on the centres of an ``n x n`` grid of cells
covering the box ``xlim x ylim``; :func:`plot_density_2d` shows ``exp(log p)`` as an image
whose pixels are exactly those cells (so ``sum(p) * cell_area`` approximates the mass inside
the box) and/or as contours; :func:`plot_samples_2d` scatters points ``(N, 2)`` on the same
axes so a model's density and its samples can be compared by eye.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from matplotlib.axes import Axes

LogProbFn = Callable[[torch.Tensor], torch.Tensor]


def _check_points(points: torch.Tensor | np.ndarray, name: str = "points") -> np.ndarray:
    if isinstance(points, torch.Tensor):
        arr = points.detach().cpu()
        if not (arr.is_floating_point() or arr.dtype in (torch.int32, torch.int64)):
            raise ValueError(f"{name} must hold real numbers; got dtype {points.dtype}")
        arr = arr.to(torch.float64).numpy()
    elif isinstance(points, np.ndarray):
        if points.dtype.kind not in "fiu":
            raise ValueError(f"{name} must hold real numbers; got dtype {points.dtype}")
        arr = points.astype(np.float64)
    else:
        raise TypeError(
            f"{name} must be a torch.Tensor or np.ndarray of shape (N, 2); "
            f"got {type(points).__name__}"
        )
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(
            f"{name} must have shape (N, 2) (one 2D point per row); got shape {tuple(arr.shape)}"
        )
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ValueError(f"{name} must be finite; got {bad} of {arr.shape[0]} rows with NaN or inf")
    return arr


def _check_lim(lim: tuple[float, float], name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in lim)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of numbers; got {lim!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be finite with low < high; got {lim!r}")
    return lo, hi


def plot_samples_2d(
    points: torch.Tensor | np.ndarray,
    ax: Axes | None = None,
    title: str | None = None,
    s: float = 4.0,
    alpha: float = 0.5,
    color: str | None = None,
    *,
    label: str | None = None,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
) -> Axes:
    """Scatter 2D points ``(N, 2)``; equal aspect so circles look round. Returns the Axes.

    ``s`` is the marker area in points^2, ``alpha`` its opacity (lower it for many points);
    ``label`` adds a legend entry (e.g. "data" vs "model").
    """
    arr = _check_points(points, "points")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
    ax.scatter(arr[:, 0], arr[:, 1], s=s, alpha=alpha, color=color, label=label, linewidths=0)
    if xlim is not None:
        ax.set_xlim(_check_lim(xlim, "xlim"))
    if ylim is not None:
        ax.set_ylim(_check_lim(ylim, "ylim"))
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if label is not None:
        ax.legend(loc="upper right", markerscale=3)
    if title:
        ax.set_title(title)
    return ax


def density_grid(
    log_prob_fn: LogProbFn,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    n: int = 200,
    *,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate ``p = exp(log_prob_fn(x))`` at the centres of an ``n x n`` grid of cells.

    The box ``xlim x ylim`` is cut into ``n`` cells per axis of width
    ``dx = (x_hi - x_lo) / n``; the centres are ``xs[j] = x_lo + (j + 1/2) dx`` (likewise
    ``ys``). ``log_prob_fn`` receives a tensor ``(n * n, 2)`` (in chunks of ``batch_size``
    rows if given) on ``device`` with ``dtype``, under ``torch.no_grad()``, and must return
    ``(n * n,)`` log-densities (``(n * n, 1)`` is accepted). Returns ``(xs, ys, p)`` as numpy
    float64 with ``p[i, j] = p(xs[j], ys[i])``: rows follow y, columns follow x.
    """
    if not callable(log_prob_fn):
        raise TypeError(f"log_prob_fn must be callable; got {type(log_prob_fn).__name__}")
    x_lo, x_hi = _check_lim(xlim, "xlim")
    y_lo, y_hi = _check_lim(ylim, "ylim")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"n (grid cells per axis) must be an int >= 2; got {n!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be None or an int >= 1; got {batch_size!r}")
    n = int(n)
    xs = x_lo + (np.arange(n) + 0.5) * (x_hi - x_lo) / n
    ys = y_lo + (np.arange(n) + 0.5) * (y_hi - y_lo) / n
    gx, gy = np.meshgrid(xs, ys, indexing="xy")  # gx[i, j] = xs[j], gy[i, j] = ys[i]
    pts = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=dtype, device=device)

    chunk = pts.shape[0] if batch_size is None else batch_size
    outs = []
    with torch.no_grad():
        for start in range(0, pts.shape[0], chunk):
            x = pts[start : start + chunk]
            out = torch.as_tensor(log_prob_fn(x))
            if out.shape not in ((x.shape[0],), (x.shape[0], 1)):
                raise ValueError(
                    f"log_prob_fn must map points ({x.shape[0]}, 2) to log-densities "
                    f"({x.shape[0]},); got shape {tuple(out.shape)}"
                )
            outs.append(out.reshape(-1).detach().cpu().to(torch.float64))
    log_p = torch.cat(outs).numpy().reshape(n, n)
    if np.isnan(log_p).any() or (log_p == np.inf).any():
        bad = int((np.isnan(log_p) | (log_p == np.inf)).sum())
        raise ValueError(
            f"log_prob_fn returned NaN or +inf at {bad} of {n * n} grid points in "
            f"xlim={xlim}, ylim={ylim}"
        )
    return xs, ys, np.exp(log_p)


def plot_density_2d(
    log_prob_fn: LogProbFn,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    n: int = 200,
    ax: Axes | None = None,
    *,
    kind: Literal["image", "contour", "both"] = "image",
    title: str | None = None,
    cmap: str = "viridis",
    levels: int = 8,
    colorbar: bool = False,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Axes:
    """Show the density ``exp(log_prob_fn(x))`` over the box ``xlim x ylim``; returns the Axes.

    ``kind="image"`` draws the ``n x n`` cell values of :func:`density_grid` as an image with
    ``extent = (*xlim, *ylim)`` and ``origin="lower"`` (pixel ``[i, j]`` is the cell around
    ``(xs[j], ys[i])``); ``"contour"`` draws ``levels`` contour lines; ``"both"`` draws lines
    over the image. ``log_prob_fn`` takes a tensor ``(M, 2)`` and returns ``(M,)``.
    """
    if kind not in ("image", "contour", "both"):
        raise ValueError(f"kind must be one of 'image', 'contour', 'both'; got {kind!r}")
    xs, ys, p = density_grid(
        log_prob_fn, xlim, ylim, n, batch_size=batch_size, device=device, dtype=dtype
    )
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
    (x_lo, x_hi), (y_lo, y_hi) = _check_lim(xlim, "xlim"), _check_lim(ylim, "ylim")
    mappable = None
    if kind in ("image", "both"):
        mappable = ax.imshow(
            p,
            origin="lower",
            extent=(x_lo, x_hi, y_lo, y_hi),
            cmap=cmap,
            interpolation="nearest",
            aspect="equal",
        )
    if kind in ("contour", "both"):
        cs = ax.contour(
            xs,
            ys,
            p,
            levels=levels,
            colors="white" if kind == "both" else None,
            cmap=None if kind == "both" else cmap,
            linewidths=0.8,
        )
        mappable = mappable or cs
        ax.set_aspect("equal", adjustable="box")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if colorbar and mappable is not None:
        ax.figure.colorbar(mappable, ax=ax, shrink=0.8, label="density $p(x)$")
    if title:
        ax.set_title(title)
    return ax
