"""Helpers used *inside* a training step: precision, the backward/update block, compile.

The step itself is written out in each chapter (the GAN's two optimizers included); these helpers
only remove the boilerplate that is the same everywhere::

    with autocast(device, precision):                  # bf16/fp16 matmuls where it is safe
        loss = loss_fn(model, batch).mean()
    backward_and_step(loss, opt, scaler=scaler, clip_grad_norm=1.0)

Precision (chapter 10, "Mixed precision"):

- ``"fp32"``: no autocast. The reference; the only choice that is bit-reproducible across GPUs.
- ``"bf16"``: autocast to bfloat16. Same exponent range as fp32, so no loss scaling is needed;
  the default for GPUs that support it. On the CPU it is used only when asked for explicitly
  (many CPUs have no fast bf16 and it is slower than fp32 there).
- ``"fp16"``: autocast to float16 with a :class:`torch.amp.GradScaler` to keep small gradients
  from underflowing (fp16's smallest normal number is about 6e-5). GPU only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn

__all__ = [
    "PRECISIONS",
    "Precision",
    "autocast",
    "grad_scaler",
    "default_precision",
    "backward_and_step",
    "maybe_compile",
    "unwrap_model",
]

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")


def _device_type(device: str | torch.device) -> str:
    return torch.device(device).type


def default_precision(device: str | torch.device) -> Precision:
    """``"bf16"`` on a CUDA GPU that supports it, else ``"fp32"`` (the CPU default)."""
    if _device_type(device) == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def autocast(
    device: str | torch.device, precision: Precision = "fp32"
) -> contextlib.AbstractContextManager:
    """A context in which the forward pass runs at ``precision`` on ``device``.

    Args:
        device: the device the model runs on.
        precision: ``"fp32"`` (no autocast), ``"bf16"`` or ``"fp16"`` (GPU only; pair it with
            :func:`grad_scaler`).

    Raises:
        ValueError: unknown precision, or fp16 on a CPU.
    """
    _check_precision(precision)
    kind = _device_type(device)
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and kind == "cpu":
        raise ValueError(
            "precision='fp16' is not supported on the CPU (no fast fp16 kernels, and it needs a "
            "loss scaler); use 'fp32', or 'bf16' if your CPU has bf16 support"
        )
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=kind, dtype=dtype)


def grad_scaler(
    device: str | torch.device, precision: Precision = "fp32"
) -> torch.amp.GradScaler | None:
    """A :class:`torch.amp.GradScaler` for fp16, ``None`` for fp32 and bf16 (they need none).

    Register the scaler with ``fit`` (it has ``state_dict``) so an exact resume restores its scale.
    """
    _check_precision(precision)
    if precision != "fp16":
        return None
    kind = _device_type(device)
    if kind == "cpu":
        raise ValueError("precision='fp16' is not supported on the CPU; use 'fp32' or 'bf16'")
    return torch.amp.GradScaler(kind)


def backward_and_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    scaler: torch.amp.GradScaler | None = None,
    clip_grad_norm: float | None = None,
    parameters: Iterable[torch.Tensor] | None = None,
    zero_grad: bool = True,
) -> torch.Tensor | None:
    """One update: (zero grads), backward, (unscale, clip), step, (update the loss scale).

    Args:
        loss: a scalar loss (already reduced over the batch).
        optimizer: the optimizer to step.
        scaler: a GradScaler for fp16 training, else None.
        clip_grad_norm: clip the global L2 norm of the gradients to this value (before the step,
            after unscaling); ``None`` for no clipping.
        parameters: the parameters to clip; default: all parameters of ``optimizer``.
        zero_grad: set the gradients of ``optimizer``'s parameters to None *before* the backward
            pass (so gradients left by another loss, such as a GAN's generator gradients from the
            discriminator loss, are not added in). Pass False to accumulate over several calls.

    Returns:
        The total gradient norm before clipping (a 0-d tensor, no host sync) when clipping, else
        None.
    """
    if loss.ndim != 0:
        raise ValueError(
            f"loss must be a scalar (0-d tensor), got shape {tuple(loss.shape)}; reduce it "
            "over the batch first (e.g. loss.mean())"
        )
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(f"clip_grad_norm must be positive or None, got {clip_grad_norm}")
    if zero_grad:
        optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
    else:
        loss.backward()
    norm = None
    if clip_grad_norm is not None:
        if scaler is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        if parameters is None:
            parameters = [p for group in optimizer.param_groups for p in group["params"]]
        norm = torch.nn.utils.clip_grad_norm_(parameters, clip_grad_norm)
    if scaler is not None:
        scaler.step(optimizer)  # skips the step if the gradients hold inf/NaN
        scaler.update()
    else:
        optimizer.step()
    return norm


def maybe_compile(model: nn.Module, enabled: bool = False, **compile_kwargs) -> nn.Module:
    """``torch.compile(model, **compile_kwargs)`` when ``enabled``, else ``model`` unchanged.

    Compilation is opt-in: it pays off on a GPU for long runs but costs tens of seconds up front
    and little on a CPU. The compiled module shares parameters with ``model``; use
    :func:`unwrap_model` to reach the original (for ``state_dict`` keys without ``_orig_mod.``).
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {enabled!r}")
    if not enabled:
        return model
    return torch.compile(model, **compile_kwargs)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel and/or ``torch.compile`` wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model
