"""genlib: the tested reference code behind *Generative Image Models, Hands-On*.

One module per concept (see ``book/notation.md`` for the names used everywhere):

- :mod:`genlib.data`     embedded datasets, online loaders, batch iterators
- :mod:`genlib.train`    seeding, devices, the training loop, EMA, checkpoints, DDP
- :mod:`genlib.viz`      image grids, curves, 2D densities, widgets with static twins
- :mod:`genlib.mixture`  Gaussian mixtures fitted by EM (chapter 1's first model)
- :mod:`genlib.course`   exercise checks that explain a wrong answer
- :mod:`genlib.recipes`  named training recipes shared by the notebooks and the CLI

Importing genlib does no work and touches no network: submodules load on use.
"""

__version__ = "0.1.0"
