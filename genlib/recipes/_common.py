"""Pieces every training recipe shares: the learning-rate schedule, reading a run's newest
checkpoint, and building a :class:`~genlib.recipes.Recipe` whose ``sample`` reads the run's own
config."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genlib.train import Budget, latest_checkpoint

__all__ = ["lr_factor", "schedule_steps", "newest_checkpoint", "model_state", "recipe_maker"]


def lr_factor(step: int, *, warmup_steps: int, total_steps: int | None) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up to 1 over ``warmup_steps``, then a
    cosine decay to 0 at ``total_steps`` (constant 1 when ``total_steps`` is None)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if total_steps is None:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def schedule_steps(config: Any, budget: Budget) -> int | None:
    """Length of the cosine schedule: ``config.schedule_steps`` if set, else the budget's steps
    (or its images divided by ``config.batch_size``); None for a seconds-only budget. Shared by
    every recipe whose config has ``schedule_steps`` and ``batch_size``."""
    if config.schedule_steps is not None:
        return config.schedule_steps
    if budget.steps is not None:
        return budget.steps
    if budget.images is not None:
        return math.ceil(budget.images / config.batch_size)
    return None


def newest_checkpoint(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The newest complete checkpoint of a run folder (loaded code-free); a clear error when
    there is none."""
    found = latest_checkpoint(Path(run_dir) / "checkpoints")
    if found is None:
        raise FileNotFoundError(f"run_dir: no complete checkpoint in {run_dir}/checkpoints")
    return found[1]


def model_state(ckpt: dict[str, Any], *, ema: bool) -> dict[str, Any]:
    """The model weights of a checkpoint: the EMA shadow (``ema=True``) or the live weights."""
    state = ckpt["state"]
    return state["ema"]["shadow"] if ema else state["model"]


def recipe_maker(chapter: int, train: Callable[..., dict[str, Any]],
                 sample: Callable[..., dict[str, Any]]) -> Callable[..., Any]:
    """``make(name, summary, config_cls, quick, full) -> Recipe`` for one chapter's recipes.

    ``sample`` is called as ``sample(run_dir, n, config=..., seed=..., device=...)``; the
    recipe's ``sample`` reads the config from the run's ``recipe.json`` unless one is given.
    """

    def make(name: str, summary: str, config_cls: type, quick: Budget, full: Budget):
        from genlib.recipes import Recipe, read_run_info

        def sample_fn(run_dir, n, *, seed=0, device="cpu", config=None):
            cfg = config or config_cls(**read_run_info(run_dir)["config"])
            return sample(run_dir, n, config=cfg, seed=seed, device=device)

        return Recipe(name=name, summary=summary, chapter=chapter, config_cls=config_cls,
                      quick=quick, full=full, train=train, sample=sample_fn)

    return make
