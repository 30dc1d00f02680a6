"""Choosing the device a notebook or recipe runs on.

``pick_device()`` prefers a CUDA GPU, then Apple's MPS, then the CPU, so the same notebook runs on
a laptop and on a GPU server. Asking for a device that is not there is an error that says what
*is* there, instead of a crash deep inside the first ``.to(device)``.
"""

from __future__ import annotations

import torch

__all__ = ["pick_device", "available_devices"]

_KINDS = ("cuda", "mps", "cpu")


def _cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    return bool(torch.backends.mps.is_available())


def available_devices() -> list[str]:
    """Names of the devices usable here, best first, e.g. ``["cuda:0", "cuda:1", "cpu"]``."""
    names = [f"cuda:{i}" for i in range(_cuda_count())]
    if _mps_available():
        names.append("mps")
    names.append("cpu")
    return names


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to run on.

    Args:
        prefer: ``None`` or ``"auto"``: the best available, CUDA > MPS > CPU. Otherwise a device
            name such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` (or a ``torch.device``),
            which must be available.

    Raises:
        ValueError: ``prefer`` names an unknown kind of device, or one that is not available here;
            the message lists the available devices.
    """
    if prefer is None or (isinstance(prefer, str) and prefer.strip().lower() == "auto"):
        if _cuda_count() > 0:
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")

    if not isinstance(prefer, str | torch.device):
        raise TypeError(
            f"prefer must be None, 'auto', a device name or a torch.device, got "
            f"{type(prefer).__name__}"
        )
    try:
        device = torch.device(prefer.strip().lower() if isinstance(prefer, str) else prefer)
    except RuntimeError as err:
        raise ValueError(
            f"prefer={prefer!r} is not a device name; expected 'auto' or one of "
            f"{list(_KINDS)} (optionally with an index, e.g. 'cuda:1')"
        ) from err
    if device.type not in _KINDS:
        raise ValueError(
            f"prefer={prefer!r}: device type {device.type!r} is not supported; expected 'auto' or "
            f"one of {list(_KINDS)}"
        )

    if device.type == "cuda":
        ok = _cuda_count() > (device.index or 0)
    elif device.type == "mps":
        ok = _mps_available()
    else:
        ok = True
    if not ok:
        raise ValueError(
            f"prefer={prefer!r} is not available on this machine; available devices: "
            f"{available_devices()}"
        )
    return device
