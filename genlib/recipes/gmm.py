r"""Recipes ``gmm-digits8x8`` and ``gmm-toy2d``: chapter 1's Gaussian mixtures, fitted by EM.

One training step is one EM iteration on the whole training split (:meth:`GaussianMixture.em_step`).

**Likelihood of discrete pixels.** ``digits8x8`` pixels are integers :math:`k \in \{0..16\}`, so
a density cannot be evaluated on them directly (it could pile infinite density on the grid). We
*dequantise*: :math:`y = (k + u) / 17` with :math:`u \sim U[0, 1)^D`, fit the density to
:math:`y`, and report

.. math::  -\log P(k) \le \mathbb E_u[-\log p(y)] + D \log 17 ,

an upper bound in nats on the discrete negative log-likelihood (Theis et al., 2016), comparable
with the uniform model's :math:`D \log 17 = 181.3` nats and with chapter 3's and 4's numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from genlib.data import load
from genlib.mixture import GaussianMixture
from genlib.recipes._common import model_state, newest_checkpoint, recipe_maker
from genlib.train import Budget, fit

__all__ = ["GMMConfig", "RECIPES", "build_model", "load_model", "dequantize",
           "discrete_nll_nats", "train", "sample"]


@dataclass(frozen=True)
class GMMConfig:
    """Hyper-parameters of a Gaussian mixture recipe."""

    dataset: str = "digits8x8"   # "digits8x8" or a "toy2d-*" set
    n_components: int = 20       # K: more components fit better but overfit 1,000 images
    covariance: Literal["diag", "full"] = "diag"  # diag: 64 variances per component
    min_var: float = 1e-3        # variance floor; keeps components from collapsing on a point
    n_eval_draws: int = 10       # dequantisation draws averaged in the test NLL


DIGITS_LEVELS = 17


def _is_images(config: GMMConfig) -> bool:
    return not config.dataset.startswith("toy2d-")


def build_model(config: GMMConfig) -> GaussianMixture:
    dim = 64 if _is_images(config) else 2
    return GaussianMixture(config.n_components, dim, config.covariance, config.min_var).double()


def dequantize(levels: torch.Tensor, generator: torch.Generator, n_levels: int = DIGITS_LEVELS
               ) -> torch.Tensor:
    """``y = (k + u) / n_levels`` with ``u ~ U[0, 1)``: integer levels ``(B, D)`` -> ``[0, 1)``."""
    u = torch.rand(levels.shape, generator=generator, dtype=torch.float64)
    return (levels.to(torch.float64) + u) / n_levels


def discrete_nll_nats(model: GaussianMixture, levels: torch.Tensor, generator: torch.Generator,
                      n_draws: int = 10, n_levels: int = DIGITS_LEVELS) -> float:
    """Upper bound on ``-log P(k)`` per image (nats), averaged over ``n_draws`` dequantisations."""
    dim = levels.shape[1]
    draws = [model.log_prob(dequantize(levels, generator, n_levels)).mean() for _ in range(n_draws)]
    return float(-torch.stack(draws).mean() + dim * math.log(n_levels))


def _training_data(config: GMMConfig, split: str, seed: int) -> torch.Tensor:
    if _is_images(config):
        if config.dataset != "digits8x8":
            raise ValueError(f"dataset must be 'digits8x8' or a 'toy2d-*' set for the GMM "
                             f"recipes, got {config.dataset!r}")
        return load("digits8x8", split).int_pixels().flatten(1).to(torch.float64)
    return load(config.dataset, split, seed=seed).points.to(torch.float64)


def train(config: GMMConfig, run_dir: Path | None, *, budget: Budget, device: str = "cpu",
          seed: int = 0, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Fit the mixture by EM under ``budget`` (one step = one EM iteration); return metrics.

    ``run_dir=None`` trains in memory (no checkpoints): what a notebook that only needs the
    numbers does.
    """
    if device != "cpu":
        print(f"genlib: EM for a small mixture runs on the CPU (asked for {device!r})")
    x = _training_data(config, "train", seed)
    noise = torch.Generator().manual_seed(seed)
    model = build_model(config)
    y0 = dequantize(x, noise) if _is_images(config) else x
    model.init_from_data(y0, generator=noise)

    def step_fn(step: int) -> dict[str, Any]:
        y = dequantize(x, noise) if _is_images(config) else x
        log_lik = model.em_step(y)
        return {"loss": -log_lik.item()}       # EM's objective is the log-likelihood itself

    history = fit(step_fn, budget=budget, state={"model": model, "noise": noise},
                  run_dir=run_dir, resume=resume, config=config, progress=progress,
                  checkpoint_every=max(1, (budget.steps or 50) // 5) if run_dir else None,
                  desc=config.dataset)
    return evaluate(model, config, seed=seed, steps=len(history))


@torch.no_grad()
def evaluate(model: GaussianMixture, config: GMMConfig, *, seed: int = 0, steps: int | None = None
             ) -> dict[str, Any]:
    """The recipe's metrics: test (and train) NLL in nats per example and bits per dimension."""
    g = torch.Generator().manual_seed(10_000 + seed)
    metrics: dict[str, Any] = {"dataset": config.dataset, "n_components": config.n_components,
                               "covariance": config.covariance}
    if steps is not None:
        metrics["em_steps"] = steps
    for split in ("train", "test"):
        x = _training_data(config, split, seed)
        if _is_images(config):
            nll = discrete_nll_nats(model, x, g, config.n_eval_draws)
        else:
            nll = float(-model.log_prob(x).mean())
        metrics[f"{split}_nll_nats"] = nll
        metrics[f"{split}_bits_per_dim"] = nll / (math.log(2) * x.shape[1])
    if _is_images(config):
        metrics["uniform_nll_nats"] = 64 * math.log(DIGITS_LEVELS)
        metrics["protocol"] = ("digits8x8 test split (last 447 images), 17 levels, dequantised "
                               f"upper bound averaged over {config.n_eval_draws} draws")
    return metrics


def load_model(run_dir: str | Path, config: GMMConfig) -> GaussianMixture:
    """The mixture from the newest complete checkpoint in ``run_dir``."""
    model = build_model(config)
    model.load_state_dict(model_state(newest_checkpoint(run_dir), ema=False))
    return model


def sample(run_dir: str | Path, n: int, *, config: GMMConfig, seed: int = 0,
           device: str = "cpu") -> dict[str, np.ndarray]:
    """``n`` samples: digits as uint8 images ``(n, 1, 8, 8)``, toy sets as points ``(n, 2)``."""
    model = load_model(run_dir, config)
    x, k = model.sample(n, generator=torch.Generator().manual_seed(seed))
    if not _is_images(config):
        return {"points": x.to(torch.float32).numpy(), "components": k.numpy()}
    levels = (x * DIGITS_LEVELS).floor().clamp(0, DIGITS_LEVELS - 1)        # back to 0..16
    images = torch.round(levels * 255 / (DIGITS_LEVELS - 1)).to(torch.uint8)
    return {"images": images.reshape(n, 1, 8, 8).numpy(), "components": k.numpy()}


_recipe = recipe_maker(1, train, sample)


@dataclass(frozen=True)
class ToyGMMConfig(GMMConfig):
    """Defaults for the 2D toy sets: full covariances, one component per ring mode."""

    dataset: str = "toy2d-ring"
    n_components: int = 8
    covariance: Literal["diag", "full"] = "full"
    min_var: float = 1e-4


RECIPES = [
    _recipe("gmm-digits8x8", "Gaussian mixture (20 diagonal components) fitted by EM to 8x8 "
            "digits; test NLL in nats", GMMConfig, quick=Budget(steps=30), full=Budget(steps=150)),
    _recipe("gmm-toy2d", "Gaussian mixture (8 full components) fitted by EM to a 2D toy set",
            ToyGMMConfig, quick=Budget(steps=30), full=Budget(steps=150)),
]
