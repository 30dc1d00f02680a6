"""Building blocks of the image networks (chapter 6 onwards), and the diffusion U-Net.

- :mod:`~genlib.nn.embeddings` :func:`sinusoidal_embedding` of time steps and the
  :class:`TimeEmbedding` MLP on top of it
- :mod:`~genlib.nn.blocks`     :func:`mlp`, :class:`ResBlock` (conditioned on an embedding),
  :class:`Downsample`, :class:`Upsample`, :class:`SelfAttention2d`
- :mod:`~genlib.nn.denoiser`   :class:`MLPDenoiser` from a :class:`MLPDenoiserConfig`:
  ``(x_t, t) -> (B, D)``, a residual MLP for 2D toys and latent codes
- :mod:`~genlib.nn.unet`       :class:`UNet` from a :class:`UNetConfig`:
  ``(x_t, t, labels) -> (B, C, H, W)``, the network of the diffusion and flow-matching chapters
"""

from genlib.nn.blocks import Downsample, ResBlock, SelfAttention2d, Upsample, mlp
from genlib.nn.denoiser import MLPDenoiser, MLPDenoiserConfig
from genlib.nn.embeddings import TimeEmbedding, sinusoidal_embedding
from genlib.nn.unet import UNet, UNetConfig

__all__ = [
    "sinusoidal_embedding", "TimeEmbedding",
    "mlp", "ResBlock", "Downsample", "Upsample", "SelfAttention2d",
    "UNetConfig", "UNet", "MLPDenoiserConfig", "MLPDenoiser",
]
