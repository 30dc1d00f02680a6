r"""Recipes ``pixelcnn-mnist5k``, ``pixelrnn-mnist5k`` and ``pixelcnn-digits8x8`` (chapter 3).

One step::

    x    = next(batches)                          # (B, 1, H, W) grey images in [0, 1]
    x    = binarize(x, generator=g)               # mnist5k: a fresh 0/1 draw every batch
    loss = -log_prob(model, x).mean()             # exact NLL in nats per image
    backward_and_step(loss, opt); sched.step(); ema.update(model)

**Protocols.** As in chapter 4: ``mnist5k`` digits are binarised (training draws a new
binarisation of every batch; the test NLL is exact on the fixed binarised test split
``genlib.data.binarized(load("mnist5k", "test"))``), ``digits8x8`` follows Tomczak's protocol
(1,000 train / 350 validation / 447 test, 17 grey levels, a 17-way softmax per pixel). The NLL is
exact (no bound): nats per image with its standard error over test images, and bits per
dimension. EMA weights are evaluated.

``metrics.json`` also records the wall time of drawing ``sample_n`` images (64 by default) with
:func:`genlib.autoregressive.sample`, one pixel at a time.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlib.autoregressive import PixelCNN, PixelCNNConfig, PixelRNN, PixelRNNConfig, log_prob, nll
from genlib.autoregressive import sample as ar_sample
from genlib.data import BatchIterator, binarize, binarized, load
from genlib.recipes._common import (
    lr_factor,
    model_state,
    newest_checkpoint,
    recipe_maker,
    schedule_steps,
)
from genlib.train import EMA, Budget, backward_and_step, fit

__all__ = ["PixelCNNTrainConfig", "PixelRNNTrainConfig", "Digits8x8PixelCNNConfig", "RECIPES",
           "train", "load_model", "sample", "build_model"]

DATASETS = ("mnist5k", "digits8x8")


def _mnist_pixelcnn() -> PixelCNNConfig:
    return PixelCNNConfig(kind="plain", channels=64, n_layers=2, first_kernel=25)


@dataclass(frozen=True)
class PixelCNNTrainConfig:
    """Hyper-parameters of ``pixelcnn-mnist5k`` (``net``: the model; the rest: training).

    The default network is a *plain* PixelCNN whose type-A first layer is 25 x 25: it sees the
    12 rows above a pixel and 12 pixels either side, most of a 28 x 28 digit, in one layer, so
    two cheap residual blocks suffice. On 2 CPU cores this reached a lower test NLL in 5 minutes
    than deeper stacks of 3 x 3 layers, plain or gated, which see less per unit of compute (the
    sweep is in the chapter and in bench/bench_autoregressive.py).
    """

    dataset: str = "mnist5k"
    net: PixelCNNConfig | PixelRNNConfig = field(default_factory=_mnist_pixelcnn)
    batch_size: int = 32
    lr: float = 5e-3                # peak Adam learning rate (linear warm-up, cosine decay)
    warmup_steps: int = 50
    schedule_steps: int | None = None   # cosine length; None: the budget's steps
    ema_decay: float = 0.998        # the EMA weights are evaluated and sampled
    grad_clip: float | None = 1.0
    sample_n: int = 64              # images drawn (and timed) after training; 0: skip

    def __post_init__(self) -> None:
        if isinstance(self.net, dict):  # from JSON: the keys say which model
            net = dict(self.net)
            cls = PixelRNNConfig if "hidden" in net else PixelCNNConfig
            object.__setattr__(self, "net", cls(**net))
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(map(repr, DATASETS))}; got "
                             f"{self.dataset!r}")
        if not isinstance(self.net, PixelCNNConfig | PixelRNNConfig):
            raise ValueError(f"net must be a PixelCNNConfig or PixelRNNConfig, got "
                             f"{type(self.net).__name__}")
        for name in ("batch_size",):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("warmup_steps", "sample_n"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip!r}")
        want = {"mnist5k": ((1, 28, 28), 2), "digits8x8": ((1, 8, 8), 17)}[self.dataset]
        if (self.net.image_shape, self.net.levels) != want:
            raise ValueError(f"net: dataset {self.dataset!r} needs image_shape={want[0]} and "
                             f"levels={want[1]}, got image_shape={self.net.image_shape} and "
                             f"levels={self.net.levels}")


@dataclass(frozen=True)
class PixelRNNTrainConfig(PixelCNNTrainConfig):
    """Defaults of ``pixelrnn-mnist5k``: a GRU (128 units) over the 784 pixels in raster
    order."""

    net: PixelCNNConfig | PixelRNNConfig = field(default_factory=PixelRNNConfig)
    batch_size: int = 64


@dataclass(frozen=True)
class Digits8x8PixelCNNConfig(PixelCNNTrainConfig):
    """Defaults of ``pixelcnn-digits8x8``: a gated PixelCNN (64 channels, 4 layers after a
    5 x 5 first layer; no blind spot) with a 17-way softmax per pixel."""

    dataset: str = "digits8x8"
    net: PixelCNNConfig | PixelRNNConfig = field(default_factory=lambda: PixelCNNConfig(
        image_shape=(1, 8, 8), levels=17, kind="gated", channels=64, n_layers=4,
        first_kernel=5))
    batch_size: int = 64
    lr: float = 2e-3


def build_model(net: PixelCNNConfig | PixelRNNConfig) -> PixelCNN | PixelRNN:
    return PixelRNN(net) if isinstance(net, PixelRNNConfig) else PixelCNN(net)


def evaluation_data(dataset: str, split: str = "test") -> torch.Tensor:
    """The fixed binarised mnist5k split, or the 8x8 digits as they are."""
    if dataset == "mnist5k":
        return binarized(load("mnist5k", split)).images
    return load("digits8x8", split).images


def train(config: PixelCNNTrainConfig, run_dir: Path | None, *, budget: Budget,
          device: str = "cpu", seed: int = 0, resume: bool = False,
          progress: bool = True) -> dict[str, Any]:
    """Train under ``budget`` and return the test metrics.

    Returns:
        ``test_nll_nats`` (exact) with ``test_nll_stderr``, ``test_bits_per_dim``,
        ``train_nll_nats`` (1,000 training images, binarised once), ``sample_seconds`` for
        ``sample_n`` images, ``steps``, ``images_seen``, ``train_seconds``, ``n_params``,
        ``protocol``.
    """
    train_set = load(config.dataset, "train")
    torch.manual_seed(seed)
    model = build_model(config.net).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    total = schedule_steps(config, budget)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, warmup_steps=config.warmup_steps, total_steps=total))
    ema = EMA(model, config.ema_decay, warmup=True)
    batches = BatchIterator(train_set.images, batch_size=config.batch_size, seed=seed,
                            device=device)
    noise = torch.Generator().manual_seed(seed + 1)
    binary = config.dataset == "mnist5k"

    def step_fn(step: int) -> dict[str, Any]:
        x = next(batches)
        if binary:
            x = binarize(x, generator=noise)
        loss = -log_prob(model, x).mean()
        backward_and_step(loss, opt, clip_grad_norm=config.grad_clip)
        sched.step()
        ema.update(model)
        return {"loss": loss, "images": x.shape[0]}

    model.train()
    history = fit(step_fn, budget=budget,
                  state={"model": model, "opt": opt, "sched": sched, "ema": ema,
                         "batches": batches, "noise": noise},
                  run_dir=run_dir, resume=resume, config=config, progress=progress,
                  checkpoint_every=250 if run_dir is not None else None,
                  desc=f"{'pixelrnn' if isinstance(config.net, PixelRNNConfig) else 'pixelcnn'}"
                       f"-{config.dataset}")
    train_seconds = float(history.records[-1]["time"]) if len(history) else 0.0

    ema.copy_to(model)
    model.eval()
    test = nll(model, evaluation_data(config.dataset, "test").to(device))
    x_train = train_set.images[:1000]
    if binary:
        x_train = binarize(x_train, seed=seed)
    train_nll = nll(model, x_train.to(device)).mean
    dim = math.prod(config.net.image_shape)
    out: dict[str, Any] = {
        "test_nll_nats": test.mean, "test_nll_stderr": test.stderr,
        "test_bits_per_dim": test.mean / (dim * math.log(2)), "train_nll_nats": train_nll,
        "n_test": test.n,
    }
    if config.sample_n:
        t = time.perf_counter()
        ar_sample(model, config.sample_n, generator=torch.Generator().manual_seed(seed))
        out["sample_seconds"] = time.perf_counter() - t
        out["sample_n"] = config.sample_n
    out.update({
        "steps": len(history), "images_seen": len(history) * config.batch_size,
        "train_seconds": train_seconds,
        "n_params": sum(p.numel() for p in model.parameters()),
        "protocol": ("EMA weights; exact NLL on the fixed binarised mnist5k test split "
                     "(genlib.data.binarized, seed 0; 1,000 digits), nats per image; trained on "
                     "the 4,000 train digits, re-binarised every batch"
                     if binary else
                     "EMA weights; exact NLL on Tomczak's digits8x8 test split (last 447 of "
                     "1,797; 17 levels), nats per image; trained on the first 1,000"),
    })
    return out


def _config_from_dict(cfg: dict[str, Any]) -> PixelCNNTrainConfig:
    return PixelCNNTrainConfig(**cfg)


def load_model(run_dir: str | os.PathLike, config: PixelCNNTrainConfig | None = None, *,
               ema: bool = True, device: str = "cpu") -> PixelCNN | PixelRNN:
    """The model of the newest complete checkpoint in ``run_dir`` (EMA weights by default), in
    eval mode."""
    ckpt = newest_checkpoint(run_dir)
    config = config or _config_from_dict(dict(ckpt["config"]))
    model = build_model(config.net)
    model.load_state_dict(model_state(ckpt, ema=ema))
    return model.to(device).eval()


def sample(run_dir: str | os.PathLike, n: int, *, seed: int = 0, device: str = "cpu",
           config: PixelCNNTrainConfig | None = None) -> dict[str, np.ndarray]:
    """``n`` samples as uint8 images ``(n, 1, H, W)`` (levels scaled to 0..255)."""
    model = load_model(run_dir, config, device=device)
    x = ar_sample(model, n, generator=torch.Generator().manual_seed(seed)).cpu()
    return {"images": torch.round(x * 255).to(torch.uint8).numpy()}


_recipe = recipe_maker(3, train, sample)

RECIPES = [
    _recipe("pixelcnn-mnist5k", "plain PixelCNN (25x25 type-A layer, 2 residual blocks) on "
            "binarised mnist5k; exact test NLL in nats and bits/dim", PixelCNNTrainConfig,
            quick=Budget(steps=150), full=Budget(steps=2650)),
    _recipe("pixelrnn-mnist5k", "a GRU reading binarised mnist5k pixel by pixel; exact test NLL",
            PixelRNNTrainConfig, quick=Budget(steps=40), full=Budget(steps=600)),
    _recipe("pixelcnn-digits8x8", "gated PixelCNN with 17 levels on 8x8 digits (Tomczak's "
            "protocol); exact test NLL", Digits8x8PixelCNNConfig, quick=Budget(steps=100),
            full=Budget(steps=400)),
]
