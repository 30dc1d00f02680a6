"""Argument checks shared by the modules of :mod:`genlib.prob` (private).

Each helper raises a ``ValueError`` (``TypeError`` for a wrong type) whose message names the
argument, the value received and what was expected.
"""

from __future__ import annotations

import numbers

import torch

Number = float | int


def as_tensor(value: torch.Tensor | Number, name: str, like: torch.Tensor | None = None
              ) -> torch.Tensor:
    """``value`` as a floating tensor (a Python number takes ``like``'s dtype and device)."""
    if isinstance(value, torch.Tensor):
        if not (value.is_floating_point() or value.dtype in _INT_DTYPES or value.dtype
                == torch.bool):
            raise TypeError(f"{name} must be a real tensor, got dtype {value.dtype}")
        if not value.is_floating_point():
            value = value.to(like.dtype if like is not None and like.is_floating_point()
                             else torch.get_default_dtype())
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a tensor or a real number, got {value!r} of type "
                        f"{type(value).__name__}")
    if like is not None:
        dtype = like.dtype if like.is_floating_point() else torch.get_default_dtype()
        return torch.tensor(float(value), dtype=dtype, device=like.device)
    return torch.tensor(float(value))


def broadcast_shape(**tensors: torch.Tensor) -> torch.Size:
    """The common broadcast shape of the named tensors, or a ValueError listing their shapes."""
    try:
        return torch.broadcast_shapes(*(t.shape for t in tensors.values()))
    except RuntimeError:
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items())
        raise ValueError(f"shapes do not broadcast: {shapes}") from None


def need_batch_dim(shape: torch.Size, names: str) -> None:
    """Per-example functions reduce over every dimension but the first, so one must exist."""
    if len(shape) == 0:
        raise ValueError(f"{names} must have a batch dimension (B, ...); got 0-d tensors. "
                         f"Use x.reshape(1) or x[None] for a single example")


def positive_int(value: object, name: str, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r} of type "
                        f"{type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def integer_levels(x: torch.Tensor, name: str, n: int, what: str = "levels") -> torch.Tensor:
    """``x`` as int64, checking that every entry is a whole number in ``0 .. n - 1``.

    Floating tensors are accepted when they hold whole numbers (``(x * 255).round()`` is fine).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of integer {what}, got {type(x).__name__}")
    if x.dtype == torch.bool:
        x = x.long()
    if x.is_floating_point():
        if not torch.equal(x, x.round()):
            bad = x[x != x.round()].flatten()[:3].tolist()
            raise ValueError(f"{name} must hold whole numbers ({what} 0..{n - 1}), got values "
                             f"such as {bad}")
    elif x.dtype not in _INT_DTYPES:
        raise TypeError(f"{name} must be an integer or floating tensor, got dtype {x.dtype}")
    if x.numel() and (x.min() < 0 or x.max() > n - 1):
        bad = x[(x < 0) | (x > n - 1)].flatten()[:3].tolist()
        raise ValueError(f"{name} must hold {what} in 0..{n - 1}, got values such as {bad}")
    return x.long()
