"""Variational autoencoders (chapter 4).

- :mod:`~genlib.vae.model`       :class:`VAEConfig`, :class:`VAE`: MLP or convolutional
  encoder/decoder, Bernoulli / Gaussian / categorical pixels, optionally conditional on a label
- :mod:`~genlib.vae.objectives`  per-example ELBO terms, the beta-VAE loss, the IWAE bound and
  the IWAE estimate of the test NLL with its standard error
- :mod:`~genlib.vae.helpers`     samples, reconstructions, interpolations (``slerp``), latent
  traversals, the KL per latent dimension and the active units
- :mod:`~genlib.vae.linear_gaussian` :class:`LinearGaussian`, a latent-variable model with an
  exact likelihood and posterior, to check bounds against

Training recipes: ``genlib train vae-mnist5k`` and ``genlib train vae-digits8x8``
(:mod:`genlib.recipes.vae`).
"""

from genlib.vae.helpers import (
    active_units,
    encode_mean,
    interpolate,
    kl_per_dimension,
    latent_traversal,
    reconstruct,
    sample_images,
    slerp,
)
from genlib.vae.linear_gaussian import LinearGaussian
from genlib.vae.model import ARCHITECTURES, DECODERS, VAE, VAEConfig, pixel_log_prob
from genlib.vae.objectives import (
    ELBOTerms,
    elbo_terms,
    iwae_bound,
    iwae_log_weights,
    iwae_loss,
    iwae_nll,
    kl_to_prior,
    vae_loss,
)

__all__ = [
    "VAEConfig", "VAE", "DECODERS", "ARCHITECTURES", "pixel_log_prob",
    "ELBOTerms", "elbo_terms", "vae_loss", "kl_to_prior", "iwae_log_weights", "iwae_bound",
    "iwae_loss", "iwae_nll",
    "sample_images", "reconstruct", "interpolate", "latent_traversal", "encode_mean", "slerp",
    "kl_per_dimension", "active_units",
    "LinearGaussian",
]
