r"""The kit's feature network for judging generated digits (chapter 8, "Evaluating generative
models").

FID, KID, precision/recall and the Inception Score compare images through a *feature network*.
The usual one, Inception-v3 trained on ImageNet, needs weights downloaded at run time and was
never shown a 28 x 28 handwritten digit: its features of an upsampled MNIST digit say little
about whether the stroke is a plausible "7". So the kit ships its own judge: a small CNN trained
on the 4,000 ``mnist5k`` training digits (recipe ``digit-classifier``,
:mod:`genlib.recipes.classifier`: 600 steps of 128 digits, 1.5 minutes on 2 CPU cores), 98.7%
accurate on the 1,000 ``mnist5k`` test digits it never saw (every class at least 95%).

Architecture (:class:`DigitClassifier`, default :class:`ClassifierConfig`)::

    x        (B, 1, 28, 28)  in [0, 1]
    stage 1  conv3x3(1 -> c1)  BN ReLU                       max-pool -> (B, c1, 14, 14)
    stage 2  conv3x3(c1 -> c2) BN ReLU, conv3x3(c2 -> c2) BN ReLU, max-pool -> (B, c2, 7, 7)
    stage 3  conv3x3(c2 -> c3) BN ReLU                                 (B, c3, 7, 7)
    features global average pool                                       (B, D = c3)
    logits   dropout, linear(D -> 10)                                  (B, 10)

**Why the penultimate layer.** :meth:`DigitClassifier.features` returns the globally
average-pooled activations that feed the final linear layer: the same place Inception's
``pool3`` features come from in FID (Heusel et al., 2017). Earlier layers describe strokes and
positions, not digits; the logits keep only the 10 class scores, so two sets of images with the
same class frequencies but different style look alike there. The pooled layer sits between: the
classifier needs it to separate all 10 classes linearly, so it encodes what makes a digit that
digit; and each of its 128 coordinates averages 49 positions, a smoother quantity than any
single activation, which suits the Gaussian fit behind the Frechet distance. The logits give an
Inception-style score and class histograms (:func:`digit_logits`).

The shipped weights live in ``genlib/metrics/weights/`` (``digit_classifier.safetensors``, and
``digit_classifier.json`` with their SHA-256, the config, the recipe, seed and budget that
produced them, the measured test accuracy and the torch version). :func:`load_digit_classifier`
checks the SHA-256 before loading, and loads with safetensors: no code runs on load.

Nothing happens at import time. The first call of :func:`digit_features` or :func:`digit_logits`
loads the network (a few milliseconds) and keeps, for the process, an inference copy with each
BatchNorm folded into its convolution (the same function up to float rounding, about twice as
fast): 10,000 digits take about 3-5 s on one CPU core (``bench/bench_classifier.py``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "ClassifierConfig",
    "DigitClassifier",
    "WEIGHTS_DIR",
    "WEIGHTS_FILE",
    "INFO_FILE",
    "check_digit_images",
    "as_digit_images",
    "file_sha256",
    "digit_classifier_info",
    "load_digit_classifier",
    "digit_features",
    "digit_logits",
]

WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_FILE = "digit_classifier.safetensors"
INFO_FILE = "digit_classifier.json"
DIGIT_SHAPE = (1, 28, 28)
_RANGE_TOL = 1e-4  # float inputs may stray this far outside [0, 1] (rounding); they are clamped


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture of :class:`DigitClassifier`.

    Attributes:
        channels: ``(c1, c2, c3)``, the widths of the three stages (28x28, 14x14, 7x7); ``c3`` is
            the feature dimension ``D``. (32, 64, 128) has 131k parameters (513 KB as float32).
        dropout: dropout on the features before the last linear layer (training only); it keeps
            the classifier from leaning on a few feature coordinates, which 4,000 images invite.
        n_classes: number of classes (10 digits).
    """

    channels: tuple[int, int, int] = (32, 64, 128)
    dropout: float = 0.2
    n_classes: int = 10

    def __post_init__(self) -> None:
        channels = self.channels
        if isinstance(channels, list):  # from JSON
            channels = tuple(channels)
            object.__setattr__(self, "channels", channels)
        if (not isinstance(channels, tuple) or len(channels) != 3
                or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0
                           for c in channels)):
            raise ValueError(f"channels must be three positive ints (c1, c2, c3), got "
                             f"{self.channels!r}")
        if isinstance(self.dropout, bool) or not (0.0 <= float(self.dropout) < 1.0):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int) \
                or self.n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2, got {self.n_classes!r}")

    @property
    def feature_dim(self) -> int:
        """``D``: the width of :meth:`DigitClassifier.features`."""
        return self.channels[-1]


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    # no conv bias: the BatchNorm shift that follows plays its role
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def check_digit_images(x: Any, *, name: str = "x") -> None:
    """Raise a clear error unless ``x`` is a float tensor ``(B, 1, 28, 28)`` with values in
    ``[0, 1]`` (up to 1e-4 of rounding).

    The messages name the usual mix-ups: uint8 pixels 0..255, floats in 0..255 or [-1, 1],
    8 x 8 digits, RGB images, a missing channel axis.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (B, 1, 28, 28), got {type(x).__name__}")
    _check_shape(tuple(x.shape), name)
    if x.dtype == torch.uint8:
        raise ValueError(f"{name} has dtype uint8 (values 0..255); the network takes floats in "
                         "[0, 1]: divide by 255 (digit_features/digit_logits convert for you)")
    if not x.is_floating_point():
        raise TypeError(f"{name} must hold floats in [0, 1] (or uint8 0..255 for digit_features),"
                        f" got dtype {x.dtype}")
    if x.numel():
        _check_range(float(x.min()), float(x.max()), name)


def _check_shape(shape: tuple[int, ...], name: str) -> None:
    if len(shape) == 4 and shape[1:] == DIGIT_SHAPE:
        return
    hint = ""
    if len(shape) == 3 and shape[1:] == (28, 28):
        hint = "; add the channel axis: x[:, None]"
    elif len(shape) == 2 and shape[1] == 784:
        hint = "; reshape flat pixels: x.reshape(-1, 1, 28, 28)"
    elif len(shape) == 4 and shape[2:] == (8, 8):
        hint = "; 8 x 8 digits (digits8x8) cannot be judged by this network"
    elif len(shape) == 4 and shape[1] == 3:
        hint = "; RGB images: the network judges greyscale digits only"
    elif len(shape) == 4 and shape[-1] == 1 and shape[1:3] == (28, 28):
        hint = "; channels-last images: x.permute(0, 3, 1, 2)"
    raise ValueError(f"{name} has shape {shape}; the shipped digit network needs (N, 1, 28, 28) "
                     f"greyscale digits{hint}")


def _check_range(lo: float, hi: float, name: str) -> None:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} holds NaN or infinite values")
    if lo >= -_RANGE_TOL and hi <= 1 + _RANGE_TOL:
        return
    if lo >= 0 and hi <= 255:
        hint = "; looks like pixels 0..255 stored as floats: divide by 255"
    elif lo >= -1 - _RANGE_TOL and hi <= 1 + _RANGE_TOL:
        hint = "; looks like images in [-1, 1]: map them with (x + 1) / 2"
    else:
        hint = ""
    raise ValueError(f"{name} must hold values in [0, 1], got values in [{lo:.4g}, {hi:.4g}]"
                     f"{hint}")


class DigitClassifier(nn.Module):
    """A small CNN for 28 x 28 digits whose pooled penultimate layer gives evaluation features.

    Args:
        config: the architecture (default :class:`ClassifierConfig`).

    Shapes: input ``(B, 1, 28, 28)`` float in ``[0, 1]``; :meth:`features` ``(B, D)``;
    :meth:`forward` ``(B, n_classes)`` logits. Inputs are validated (:func:`check_digit_images`).
    """

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        self.config = config = config if config is not None else ClassifierConfig()
        if not isinstance(config, ClassifierConfig):
            raise TypeError(f"config must be a ClassifierConfig, got {type(config).__name__}")
        c1, c2, c3 = config.channels
        self.stage1 = _conv_bn_relu(1, c1)                                        # 28x28
        self.stage2 = nn.Sequential(_conv_bn_relu(c1, c2), _conv_bn_relu(c2, c2))  # 14x14
        self.stage3 = _conv_bn_relu(c2, c3)                                       # 7x7
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(c3, config.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: globally average-pooled stage-3 activations, ``(B, D)``."""
        check_digit_images(x)
        h = F.max_pool2d(self.stage1(x), 2)          # (B, c1, 14, 14)
        h = F.max_pool2d(self.stage2(h), 2)          # (B, c2, 7, 7)
        h = self.stage3(h)                           # (B, c3, 7, 7)
        return h.mean(dim=(2, 3))                    # (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, n_classes)``."""
        return self.head(self.dropout(self.features(x)))


# ---------------------------------------------------------------------------------------------
# Inputs from samplers: uint8 or float, tensors or arrays


def as_digit_images(images: Any, *, name: str = "images") -> torch.Tensor:
    """``images`` as a float32 tensor ``(N, 1, 28, 28)`` in ``[0, 1]``, validated.

    Accepts a ``torch.Tensor`` or ``numpy.ndarray`` holding uint8 pixels 0..255 (divided by 255,
    as in ``genlib.data``) or floats in ``[0, 1]`` (values within 1e-4 outside are clamped).
    The result stays on the tensor's device (numpy arrays: the CPU).
    """
    if isinstance(images, np.ndarray):
        if images.dtype == np.uint8 or np.issubdtype(images.dtype, np.floating):
            images = torch.from_numpy(np.ascontiguousarray(images))
        else:
            raise TypeError(f"{name} must hold uint8 pixels 0..255 or floats in [0, 1], got a "
                            f"numpy array of dtype {images.dtype}")
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray (N, 1, 28, 28), got "
                        f"{type(images).__name__}")
    _check_shape(tuple(images.shape), name)
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 255.0      # the same conversion as genlib.data
    if not images.is_floating_point():
        raise TypeError(f"{name} must hold uint8 pixels 0..255 or floats in [0, 1], got dtype "
                        f"{images.dtype}")
    if images.numel():
        _check_range(float(images.min()), float(images.max()), name)
    return images.to(torch.float32).clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# The shipped weights


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def digit_classifier_info(weights_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The record beside the shipped weights (``digit_classifier.json``): ``sha256``,
    ``config``, ``recipe``, ``seed``, ``budget``, ``test_accuracy``, ``feature_dim``,
    ``torch_version`` and more.

    Args:
        weights_dir: folder holding the two files; default :data:`WEIGHTS_DIR` (the shipped ones).
    """
    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    path = folder / INFO_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no {INFO_FILE} in {folder}; the digit classifier's weights are missing (a broken "
            "install?). Retrain them with `genlib train digit-classifier --out RUN_DIR` and "
            "genlib.recipes.classifier.export_weights(RUN_DIR, FOLDER)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def load_digit_classifier(device: str | torch.device = "cpu", *,
                          weights_dir: str | os.PathLike | None = None) -> DigitClassifier:
    """The shipped digit classifier, in eval mode, on ``device``.

    The SHA-256 of the weights file is checked against ``digit_classifier.json`` before anything
    is read from it, and the file is read with safetensors (plain tensors, no code).

    Args:
        device: where to put the network.
        weights_dir: folder holding ``digit_classifier.safetensors`` and ``.json``; default
            :data:`WEIGHTS_DIR`.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: the weights file's SHA-256 differs from the one recorded (damaged or
            replaced).
    """
    from safetensors.torch import load

    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    info = digit_classifier_info(folder)
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {WEIGHTS_FILE} in {folder}")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != info.get("sha256"):
        raise ValueError(
            f"{path} has SHA-256 {digest}, but {INFO_FILE} records {info.get('sha256')}: the "
            "weights file is damaged or was replaced; reinstall genlib or retrain with "
            "`genlib train digit-classifier` and export_weights"
        )
    model = DigitClassifier(ClassifierConfig(**info["config"]))
    model.load_state_dict(load(data))
    return model.to(device).eval()


def _fold_batchnorm(model: DigitClassifier) -> DigitClassifier:
    """An inference copy of ``model`` (in eval mode) with each BatchNorm folded into the
    convolution before it and the weights in channels-last memory order.

    In eval mode BatchNorm is the affine map ``gamma (h - mu) / sigma + beta`` with its running
    statistics, so ``conv`` then BN equals one convolution with weights ``w gamma / sigma`` and
    bias ``beta - mu gamma / sigma``. Same function up to float rounding (about 1e-6 relative);
    one pass over the largest activations fewer, and channels-last convolutions, make it about
    twice as fast on the CPU (``bench/bench_classifier.py``).
    """
    fused = DigitClassifier(model.config)
    fused.load_state_dict(model.state_dict())
    for block in (fused.stage1, fused.stage2[0], fused.stage2[1], fused.stage3):
        conv, bn = block[0], block[1]
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)                 # (C_out,)
        folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                           padding=conv.padding, bias=True)
        with torch.no_grad():
            folded.weight.copy_(conv.weight * scale[:, None, None, None])
            folded.bias.copy_(bn.bias - bn.running_mean * scale)
        block[0], block[1] = folded, nn.Identity()
    fused = fused.to(next(model.parameters()).device, memory_format=torch.channels_last)
    return fused.eval().requires_grad_(False)


@functools.lru_cache(maxsize=4)
def _cached_classifier(device: str) -> DigitClassifier:
    # One shared, frozen inference copy per device for digit_features/digit_logits (never
    # handed out, so nobody can change it).
    return _fold_batchnorm(load_digit_classifier(device))


def _run(images: Any, batch_size: int, device: str | torch.device | None,
         output: str) -> torch.Tensor:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    x = as_digit_images(images)                                  # (N, 1, 28, 28) float32
    device = torch.device(device) if device is not None else x.device
    model = _cached_classifier(str(device))
    out = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size].to(device).contiguous(
                memory_format=torch.channels_last)
            yb = model.features(xb) if output == "features" else model(xb)
            out.append(yb.to("cpu", torch.float64))
    if not out:
        width = model.config.feature_dim if output == "features" else model.config.n_classes
        return torch.empty(0, width, dtype=torch.float64)
    return torch.cat(out)


def digit_features(images: Any, *, batch_size: int = 500,
                   device: str | torch.device | None = None) -> torch.Tensor:
    """Features of the shipped digit classifier (its pooled penultimate layer), for FID etc.

    Args:
        images: ``(N, 1, 28, 28)`` digits: uint8 0..255 or float in ``[0, 1]``, as a tensor or
            a numpy array (the ``images`` of a ``genlib sample`` file work as they are).
        batch_size: images per forward pass.
        device: where to run the network; default the tensor's device (numpy: the CPU).

    Returns:
        ``(N, D)`` float64 on the CPU (``D = 128`` for the shipped network); no gradient.
    """
    return _run(images, batch_size, device, "features")


def digit_logits(images: Any, *, batch_size: int = 500,
                 device: str | torch.device | None = None) -> torch.Tensor:
    """Class logits of the shipped digit classifier: ``softmax`` gives ``p(y | x)`` for the
    Inception-style score and class histograms; ``argmax`` the predicted digit.

    Args: as :func:`digit_features`.

    Returns:
        ``(N, 10)`` float64 on the CPU; no gradient.
    """
    return _run(images, batch_size, device, "logits")
