"""genlib: the tested reference code behind *Generative Image Models, Hands-On*.

One module per concept (see ``book/notation.md`` for the names used everywhere):

- :mod:`genlib.data`     embedded datasets, online loaders, batch iterators
- :mod:`genlib.prob`     densities, divergences, sampling, Monte Carlo with standard errors
- :mod:`genlib.metrics`  sample-quality metrics as estimators, with a shipped digit classifier
- :mod:`genlib.train`    seeding, devices, the training loop, EMA, checkpoints, DDP
- :mod:`genlib.viz`      image grids, curves, 2D densities, widgets with static twins
- :mod:`genlib.mixture`  Gaussian mixtures fitted by EM (chapter 1's first model)
- :mod:`genlib.nn`       building blocks: time embeddings, residual and attention blocks, U-Net
- :mod:`genlib.autoregressive`, :mod:`genlib.vae`, :mod:`genlib.gan`, :mod:`genlib.diffusion`
                         one package per model family (chapters 3 to 6)
- :mod:`genlib.course`   exercise checks that explain a wrong answer
- :mod:`genlib.recipes`  named training recipes shared by the notebooks and the CLI

Importing genlib does no work and touches no network: submodules load on use.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("autoregressive", "cli", "course", "data", "diffusion", "gan", "metrics", "mixture",
               "nn", "prob", "recipes", "train", "vae", "viz")


def __getattr__(name: str):
    """``genlib.train`` etc. work after a bare ``import genlib``: submodules load on first use."""
    if name in _SUBMODULES:
        return importlib.import_module(f"genlib.{name}")
    raise AttributeError(f"module 'genlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBMODULES])
