"""Generative adversarial networks (chapter 5): a generator learns to fool a discriminator that
learns to tell its samples from the data.

- :mod:`~genlib.gan.losses`   per-example :func:`discriminator_loss` and :func:`generator_loss`
  for the minimax, non-saturating, hinge and Wasserstein objectives; :func:`gradient_penalty`
  (WGAN-GP) and its :func:`interpolate`; the :func:`optimal_discriminator`
- :mod:`~genlib.gan.models`   :class:`Generator` and :class:`Discriminator` (MLP for points,
  DCGAN-style for images; spectral norm, minibatch standard deviation, class conditioning) from a
  :class:`GANConfig`
- :mod:`~genlib.gan.training` the two halves of a step, :func:`discriminator_step` and
  :func:`generator_step`; :func:`mode_coverage` for mixtures of Gaussians
- :mod:`~genlib.gan.clusters` self-conditioning: :func:`cluster_images` (k-means cluster ids to
  train a conditional pair on, no labels needed) and :class:`ClusterLabels`

Training recipes: ``genlib train gan-toy2d``, ``dcgan-mnist5k``, ``wgan-gp-mnist5k``,
``cgan-mnist5k`` and ``scgan-mnist5k`` (:mod:`genlib.recipes.gan`).
"""

from genlib.gan.clusters import ClusterLabels, cluster_images
from genlib.gan.losses import (
    LOSSES,
    check_loss,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    interpolate,
    minimax_value,
    optimal_discriminator,
)
from genlib.gan.models import (
    ARCHS,
    Discriminator,
    GANConfig,
    Generator,
    from_unit,
    minibatch_stddev,
    sample_latent,
    to_unit,
)
from genlib.gan.training import discriminator_step, generator_step, mode_coverage

__all__ = [
    "LOSSES", "check_loss", "discriminator_loss", "generator_loss", "gradient_penalty",
    "interpolate", "minimax_value", "optimal_discriminator",
    "ARCHS", "GANConfig", "Generator", "Discriminator", "sample_latent", "to_unit", "from_unit",
    "minibatch_stddev",
    "discriminator_step", "generator_step", "mode_coverage",
    "ClusterLabels", "cluster_images",
]
