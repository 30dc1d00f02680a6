"""Inception-v3 features for colour images (CIFAR-10, shapes), through a well-kept library.

The published FID numbers (CIFAR-10: DDPM 3.17, ...) are computed on the 2048-dimensional pool3
features of the TensorFlow Inception-v3 of 2015 (``pt_inception-2015-12-05``), fed images
resized to 299 x 299 the TensorFlow way. Reimplementing that faithfully is a project of its
own, and a "close" network gives numbers that do not compare with the published ones; so the
kit does not ship one. :func:`inception_features` uses whichever of these is installed:

- ``torch-fidelity`` (``pip install torch-fidelity``): ``FeatureExtractorInceptionV3`` with the
  bit-exact TensorFlow resize, the reference for the numbers in papers (torchmetrics' FID uses
  it too: ``pip install torchmetrics[image]`` brings it);
- ``pytorch-fid`` (``pip install pytorch-fid``): ``InceptionV3`` with the same weights
  (it needs a torchvision that imports beside the installed torch).

Both download their weights (about 100 MB) from GitHub on first use and cache them under
``~/.cache/torch/hub``; without internet, copy the file there by hand. None of them is a
dependency of genlib: :func:`inception_backend` says which is installed, and
:func:`inception_features` raises a clear error naming what to install when none is. For the
kit's 28 x 28 digits, use :func:`genlib.metrics.features.digit_features` instead. Chapter 8.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from typing import Any

import numpy as np
import torch

__all__ = ["INCEPTION_BACKENDS", "inception_backend", "require_inception_backend",
           "inception_features"]

#: Supported packages, in order of preference: module name -> pip package name.
INCEPTION_BACKENDS: dict[str, str] = {"torch_fidelity": "torch-fidelity",
                                      "pytorch_fid": "pytorch-fid"}


def inception_backend() -> str | None:
    """The module name of the first installed backend of :data:`INCEPTION_BACKENDS`, or None.
    Looks the packages up without importing them."""
    for module in INCEPTION_BACKENDS:
        if importlib.util.find_spec(module) is not None:
            return module
    return None


def require_inception_backend() -> str:
    """:func:`inception_backend`, or a ``ModuleNotFoundError`` saying what to install and that
    the weights are downloaded on first use."""
    backend = inception_backend()
    if backend is None:
        raise ModuleNotFoundError(_missing_message())
    return backend


def _missing_message() -> str:
    return ("Inception features for colour images need torch-fidelity or pytorch-fid, and "
            "neither is installed. Install one (`pip install torch-fidelity`, the reference "
            "for published FIDs; or `pip install pytorch-fid`); its Inception-v3 weights "
            "(about 100 MB, pt_inception-2015-12-05) are downloaded from GitHub on first use "
            "into ~/.cache/torch/hub, so the first run needs internet. genlib does not depend "
            "on either. For 28 x 28 digits use features='digits' (shipped with genlib).")


@functools.lru_cache(maxsize=2)
def _network(backend: str, device: str) -> torch.nn.Module:
    if backend == "torch_fidelity":
        module = importlib.import_module("torch_fidelity.feature_extractor_inceptionv3")
        net = module.FeatureExtractorInceptionV3(name="inception-v3-compat",
                                                 features_list=["2048"])
    else:
        module = importlib.import_module("pytorch_fid.inception")
        block = module.InceptionV3.BLOCK_INDEX_BY_DIM[2048]
        net = module.InceptionV3([block], resize_input=True, normalize_input=True)
    return net.to(device).eval()


def _as_rgb_float(images: Any) -> torch.Tensor:
    """(N, 3, H, W) float32 in [0, 1] from uint8 0..255 or float [0, 1]; grey is repeated."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be (N, 3, H, W) or (N, 1, H, W), got {got}")
    if images.dtype == torch.uint8:
        x = images.to(torch.float32) / 255.0
    elif images.is_floating_point():
        x = images.to(torch.float32)
        if x.numel() and not (torch.isfinite(x).all() and x.min() >= -1e-4 and x.max() <= 1 + 1e-4):
            raise ValueError("float images must hold finite values in [0, 1]")
        x = x.clamp(0, 1)
    else:
        raise TypeError(f"images must be uint8 0..255 or float in [0, 1], got {images.dtype}")
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def inception_features(images: Any, *, batch_size: int = 100,
                       device: str | torch.device | None = None,
                       backend: str | None = None) -> torch.Tensor:
    """Inception-v3 pool3 features ``(N, 2048)`` float64 on the CPU.

    Args:
        images: ``(N, 3, H, W)`` (or grey ``(N, 1, H, W)``, repeated to 3 channels) uint8
            0..255 or float in ``[0, 1]``; the backend resizes to 299 x 299.
        batch_size: images per forward pass.
        device: where to run the network (default: the CPU; use a GPU if you have one).
        backend: ``"torch_fidelity"`` or ``"pytorch_fid"``; default :func:`inception_backend`.

    Raises:
        ModuleNotFoundError: no backend is installed (the message says what to install and that
            the weights are downloaded on first use).
    """
    if backend is None:
        backend = require_inception_backend()
    elif backend not in INCEPTION_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, INCEPTION_BACKENDS))}, "
                         f"got {backend!r}")
    elif importlib.util.find_spec(backend) is None:
        raise ModuleNotFoundError(f"backend {backend!r} is not installed: pip install "
                                  f"{INCEPTION_BACKENDS[backend]}. " + _missing_message())
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    x = _as_rgb_float(images)
    device = str(torch.device(device)) if device is not None else "cpu"
    net = _network(backend, device)
    out = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size].to(device)
            if backend == "torch_fidelity":          # expects uint8 0..255
                feats = net((xb * 255).round().to(torch.uint8))[0]
            else:                                    # expects float in [0, 1]
                feats = net(xb)[0]                   # (B, 2048, 1, 1)
            out.append(feats.reshape(xb.shape[0], -1).to("cpu", torch.float64))
    return torch.cat(out) if out else torch.empty(0, 2048, dtype=torch.float64)
