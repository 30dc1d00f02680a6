"""Training curves: metrics against steps, optionally smoothed and on a log scale.

A training history comes in one of two shapes, and :func:`history_series` turns both into
``{metric: (steps, values)}``:

- a mapping ``metric -> values`` (list, 1-D tensor or array): ``values[i]`` belongs to step
  ``i``, or to ``history["step"][i]`` when a ``"step"`` series of the same length is present;
  a series of ``(step, value)`` pairs, shape ``(T, 2)``, carries its own steps;
- a list of per-step records ``[{"step": 0, "loss": 1.3}, {"step": 1, "loss": 1.1, "fid": 40}]``:
  a metric missing (or ``None``) in a record is simply absent at that step, so evaluation
  metrics logged every 100 steps sit beside a loss logged every step.

Any object with an ``as_dict()`` method returning one of these is accepted too, and so is one
with ``names`` (a list, or a method returning one) and ``series(name) -> (steps, values)``,
which is the interface of the training loop's ``History``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.ticker as mticker
import numpy as np
import torch
from matplotlib.axes import Axes

Series = tuple[np.ndarray, np.ndarray]


def _scalar(v: Any) -> float | None:
    """A plain float from a number / 0-d tensor / 0-d array, None if it is not numeric."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, torch.Tensor | np.ndarray) and v.ndim == 0 and v.dtype != object:
        try:
            return float(v.item())
        except (TypeError, ValueError):
            return None
    return None


def _as_float_array(values: Any) -> np.ndarray | None:
    """The numeric contents of one series, None if it holds something non-numeric."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().to(torch.float64).numpy()
    if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray):
        return None
    out = []
    for v in values:
        f = _scalar(v)
        if f is not None:
            out.append(f)
        elif isinstance(v, Sequence | np.ndarray | torch.Tensor) and not isinstance(v, str):
            pair = [_scalar(u) for u in v] if len(v) == 2 else [None]
            if None in pair:
                return None
            out.append(pair)
        else:
            return None
    try:
        return np.asarray(out, dtype=np.float64)
    except ValueError:  # ragged mixture of scalars and pairs
        return None


def history_series(history: Any, step_key: str = "step") -> dict[str, Series]:
    """``{metric: (steps, values)}`` (float64 arrays) from any history shape above.

    Non-numeric entries (a phase name, a file path) are left out; ``step_key`` is the x axis,
    not a metric.
    """
    if hasattr(history, "as_dict") and callable(history.as_dict):
        history = history.as_dict()
    elif callable(getattr(history, "series", None)) and hasattr(history, "names"):
        names = history.names() if callable(history.names) else history.names
        out: dict[str, Series] = {}
        for name in names:
            if name == step_key:
                continue
            try:
                steps, values = history.series(name)
                out[str(name)] = (
                    np.asarray(steps, dtype=np.float64),
                    np.asarray(values, dtype=np.float64),
                )
            except (TypeError, ValueError):  # a non-numeric entry such as a phase name
                continue
        return out

    series: dict[str, Series] = {}
    if isinstance(history, Mapping):
        steps = history.get(step_key)
        steps_arr = _as_float_array(steps) if steps is not None else None
        for key, values in history.items():
            if key == step_key:
                continue
            arr = _as_float_array(values)
            if arr is None:
                continue
            if arr.ndim == 2 and arr.shape[1] == 2:
                series[str(key)] = (arr[:, 0], arr[:, 1])
            elif arr.ndim == 1 or arr.size == 0:
                arr = arr.reshape(-1)
                if steps_arr is not None and steps_arr.ndim == 1 and len(steps_arr) == len(arr):
                    x = steps_arr
                else:
                    x = np.arange(len(arr), dtype=np.float64)
                series[str(key)] = (x, arr)
        return series

    if isinstance(history, Sequence) and not isinstance(history, str):
        xs: dict[str, list[float]] = {}
        ys: dict[str, list[float]] = {}
        non_numeric: set[str] = set()
        for i, record in enumerate(history):
            if not isinstance(record, Mapping):
                raise TypeError(
                    f"history as a list must hold one dict per step; history[{i}] is "
                    f"{type(record).__name__}"
                )
            step = _scalar(record[step_key]) if step_key in record else float(i)
            if step is None:
                raise ValueError(
                    f"history[{i}][{step_key!r}] must be a number; got {record[step_key]!r}"
                )
            for key, v in record.items():
                key = str(key)
                if key == step_key or v is None:
                    continue
                f = _scalar(v)
                if f is None:
                    non_numeric.add(key)
                    continue
                xs.setdefault(key, []).append(step)
                ys.setdefault(key, []).append(f)
        return {k: (np.asarray(xs[k]), np.asarray(ys[k])) for k in xs if k not in non_numeric}

    raise TypeError(
        "history must be a mapping metric -> values, a list of per-step dicts, or an object "
        f"with as_dict(); got {type(history).__name__}"
    )


def ema_smooth(
    values: np.ndarray | Sequence[float],
    weight: float,
    steps: np.ndarray | Sequence[float] | None = None,
    step_unit: float | None = None,
) -> np.ndarray:
    """Debiased exponential moving average, the smoothing TensorBoard shows.

    ``m_t = w_t * m_{t-1} + (1 - w_t) * x_t`` and ``c_t = w_t * c_{t-1} + (1 - w_t)`` from
    ``m_0 = c_0 = 0``, reported as ``m_t / c_t`` so the start is not pulled towards zero; with
    a constant ``w_t = weight`` this is ``m_t / (1 - weight^t)``. Given ``steps``, the weight
    follows the gap since the previous value, ``w_t = weight ** max(gap / step_unit, 1)``
    (``step_unit`` defaults to the smallest positive gap; the first value takes the second's
    gap, so evenly spaced values reduce to the constant-weight case): a metric logged every
    200 steps is smoothed over as many *steps* as one logged every step, not 200 times as many.
    ``weight = 0`` returns the values; NaNs are skipped (NaN in the output, the average
    carries on).
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smooth (EMA weight) must be in [0, 1); got {weight!r}")
    x = np.asarray(values, dtype=np.float64)
    if steps is None:
        w = np.full(len(x), float(weight))
    else:
        s = np.asarray(steps, dtype=np.float64)
        if s.shape != x.shape:
            raise ValueError(f"steps must have one entry per value {x.shape}; got shape {s.shape}")
        gaps = np.diff(s)
        gaps = np.concatenate([gaps[:1], gaps])  # the first value weighs as if evenly spaced
        if step_unit is None:
            positive = gaps[gaps > 0]
            step_unit = float(positive.min()) if positive.size else 1.0
        if not step_unit > 0:
            raise ValueError(f"step_unit must be > 0; got {step_unit!r}")
        w = float(weight) ** np.maximum(gaps / step_unit, 1.0)
    out = np.full_like(x, np.nan)
    m = c = 0.0
    for i, v in enumerate(x):
        if np.isnan(v):
            continue
        m = w[i] * m + (1.0 - w[i]) * v
        c = w[i] * c + (1.0 - w[i])
        out[i] = m / c
    return out


class _PlainLogFormatter(mticker.LogFormatterSciNotation):
    """Log-axis labels as plain numbers (0.4, 3, 20) rather than 4 x 10^-1; same ticks."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


def plot_history(
    history: Any,
    keys: str | Sequence[str] | None = None,
    ax: Axes | None = None,
    smooth: float = 0.0,
    *,
    logy: bool = False,
    step_key: str = "step",
    exclude: Sequence[str] = ("time", "epoch"),
    title: str | None = None,
    xlabel: str = "step",
    ylabel: str | None = None,
    raw_alpha: float = 0.3,
) -> Axes:
    """Plot training curves, one line per metric, steps on x; returns the Axes.

    ``keys`` picks metrics (default: every numeric one in first-seen order, except those in
    ``exclude``: wall-clock ``time`` and ``epoch`` count up and would squash a loss). With
    ``smooth > 0`` each metric is drawn twice: the raw values faint (label starting with
    ``_``, so the legend skips them) and :func:`ema_smooth` of them on top, labelled with the
    metric's name; the EMA's step unit is the finest logging interval among the metrics, so
    ``smooth`` means the same time span for a loss logged every step and an evaluation logged
    every 1,000. ``logy`` puts y on a log scale (all values must then be > 0). The y label is
    the metric's name when there is one metric, else ``"value"`` with a legend.
    """
    series = history_series(history, step_key)
    if keys is None:
        keys = [k for k, (x, _) in series.items() if len(x) > 0 and k not in exclude]
        if not keys:
            raise ValueError("history holds no numeric metric to plot")
    elif isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    for k in keys:
        if k not in series:
            raise KeyError(f"keys: no metric {k!r} in history; valid keys: {sorted(series)}")
        if len(series[k][0]) == 0:
            raise ValueError(f"keys: metric {k!r} has no values")
    if isinstance(smooth, bool) or not isinstance(smooth, numbers.Real) or not 0 <= smooth < 1:
        raise ValueError(f"smooth (EMA weight) must be a number in [0, 1); got {smooth!r}")
    if logy:
        for k in keys:
            y = series[k][1]
            if np.nanmin(y) <= 0:
                raise ValueError(
                    f"logy=True needs positive values, but metric {k!r} reaches "
                    f"{np.nanmin(y):.4g}; plot it with logy=False"
                )

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    # one step unit for every metric: the finest logging interval among them
    gaps = np.concatenate([np.diff(series[k][0]) for k in keys])
    step_unit = float(gaps[gaps > 0].min()) if (gaps > 0).any() else 1.0
    for k in keys:
        x, y = series[k]
        if smooth > 0:
            (raw,) = ax.plot(x, y, alpha=raw_alpha, linewidth=1.0, label=f"_raw {k}")
            y_smooth = ema_smooth(y, float(smooth), steps=x, step_unit=step_unit)
            ax.plot(x, y_smooth, color=raw.get_color(), label=k)
        else:
            ax.plot(x, y, label=k)
    if logy:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(_PlainLogFormatter())
        ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel if ylabel is not None else (keys[0] if len(keys) == 1 else "value"))
    if len(keys) > 1:
        ax.legend()
    if title:
        ax.set_title(title)
    return ax
