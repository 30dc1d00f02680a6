"""Named training recipes, shared by the chapter notebooks and the ``genlib`` command.

A recipe bundles what ``genlib train NAME --out RUN_DIR`` needs: a default config (a frozen
dataclass), a quick and a full :class:`~genlib.train.Budget`, a ``train`` function that runs the
chapter's step under :func:`genlib.train.fit` and returns the recipe's own evaluation (written to
``RUN_DIR/metrics.json``), and a ``sample`` function behind ``genlib sample RUN_DIR``.

A run folder holds ``recipe.json`` (recipe, config, seed, budget, device, versions),
``checkpoints/`` (atomic, code-free), ``history.json`` and ``metrics.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlib.train import Budget, atomic_write, config_dict

RUN_FILE = "recipe.json"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class Recipe:
    """A named way to train and sample one model.

    Attributes:
        name: registry name, e.g. ``"gmm-digits8x8"``.
        summary: one line for ``genlib train --list``.
        chapter: the chapter that teaches it.
        config_cls: frozen dataclass of hyper-parameters; ``config_cls()`` is the default.
        quick, full: training budgets for quick mode (``GENLIB_QUICK=1`` / ``--quick``) and
            full mode.
        train: ``train(config, run_dir, *, budget, device, seed, resume, progress) -> metrics``.
        sample: ``sample(run_dir, n, *, seed, device) -> dict of arrays`` (``images`` uint8
            ``(N, C, H, W)``, or ``points`` float32 ``(N, D)``; plus ``labels``/``captions``
            for conditional models).
    """

    name: str
    summary: str
    chapter: int
    config_cls: type
    quick: Budget
    full: Budget
    train: Callable[..., dict[str, Any]]
    sample: Callable[..., dict[str, np.ndarray]]


def _registry() -> dict[str, Recipe]:
    # Imported here so that importing genlib.recipes stays cheap.
    from genlib.recipes import autoregressive, classifier, diffusion, gan, gmm, vae

    recipes = [*gmm.RECIPES, *classifier.RECIPES, *autoregressive.RECIPES, *vae.RECIPES,
               *gan.RECIPES, *diffusion.RECIPES]
    return {r.name: r for r in recipes}


def list_recipes() -> list[Recipe]:
    """Every recipe, by chapter then name."""
    return sorted(_registry().values(), key=lambda r: (r.chapter, r.name))


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name raises ``KeyError`` listing the valid ones."""
    recipes = _registry()
    if name not in recipes:
        raise KeyError(f"unknown recipe {name!r}; valid recipes: {', '.join(sorted(recipes))}")
    return recipes[name]


def write_run_info(run_dir: Path, recipe: Recipe, config: Any, *, seed: int, budget: Budget,
                   device: str) -> Path:
    """Write ``RUN_DIR/recipe.json``: what was trained, how, and with which versions."""
    import genlib

    info = {
        "recipe": recipe.name,
        "config": config_dict(config),
        "seed": seed,
        "budget": {"steps": budget.steps, "images": budget.images, "seconds": budget.seconds},
        "device": device,
        "versions": {"genlib": genlib.__version__, "torch": torch.__version__},
    }
    return atomic_write(Path(run_dir) / RUN_FILE, json.dumps(info, indent=2, sort_keys=True))


def read_run_info(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``RUN_DIR/recipe.json``; a folder without one is not a run folder (clear error)."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"run_dir: {run_dir} is not a genlib run folder (no {RUN_FILE}); make one with "
            f"`genlib train RECIPE --out {run_dir}`"
        )
    return json.loads(path.read_text())


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> Path:
    return atomic_write(Path(run_dir) / METRICS_FILE,
                        json.dumps(metrics, indent=2, sort_keys=True))


def train_cached(name: str, *, root: str | os.PathLike, config: Any = None,
                 budget: Budget | None = None, seed: int = 0, device: str = "cpu",
                 progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Train recipe ``name`` into a run folder under ``root``, or reuse the finished run with
    the same config, budget and seed; return ``(run_dir, metrics)``.

    What the chapter notebooks call: a second execution loads the run instead of training again,
    an interrupted one resumes. The run folder is the one ``genlib train`` makes
    (``recipe.json``, ``checkpoints/``, ``history.json``, ``metrics.json``), named after the
    recipe and a hash of ``{config, budget, seed}`` by :func:`genlib.train.load_or_train`.

    Args:
        name: a recipe name (``genlib train --list``).
        root: the folder that holds run folders; nothing is written outside it.
        config: the recipe's config; default ``config_cls()``.
        budget: default: the recipe's quick or full budget, by the kit's mode
            (:func:`genlib.train.budget`).
        seed, device, progress: passed to the recipe's ``train``.
    """
    from genlib.train import budget as pick_budget
    from genlib.train import config_dict, load_or_train

    recipe = get_recipe(name)
    config = recipe.config_cls() if config is None else config
    if not isinstance(config, recipe.config_cls):
        raise ValueError(f"config: recipe {name!r} takes a {recipe.config_cls.__name__}, got "
                         f"{type(config).__name__}")
    chosen = budget if budget is not None else pick_budget(recipe.quick, recipe.full)
    key = {"config": config_dict(config), "seed": seed,
           "budget": {"steps": chosen.steps, "images": chosen.images,
                      "seconds": chosen.seconds}}

    def train_fn(run_dir: Path) -> None:
        write_run_info(run_dir, recipe, config, seed=seed, budget=chosen, device=device)
        metrics = recipe.train(config, run_dir, budget=chosen, device=device, seed=seed,
                               resume=True, progress=progress)
        write_metrics(run_dir, {"recipe": name, "seed": seed, **metrics,
                                "config": config_dict(config)})

    run_dir = load_or_train(name, key, train_fn, root=root)
    metrics = json.loads((Path(run_dir) / METRICS_FILE).read_text())
    return Path(run_dir), metrics


__all__ = ["Recipe", "list_recipes", "get_recipe", "write_run_info", "read_run_info",
           "write_metrics", "train_cached", "RUN_FILE", "METRICS_FILE"]
