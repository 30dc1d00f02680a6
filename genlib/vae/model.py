r"""Encoders and decoders of a variational autoencoder, built from one config.

A VAE is two networks and two distributions:

- the **encoder** maps an image ``x`` (and a label ``y`` for a conditional VAE) to the mean and
  log-variance of a diagonal Gaussian :math:`q_\phi(z \mid x) = \mathcal N(\mu, \mathrm{diag}\,
  e^{\log\sigma^2})`;
- the **decoder** maps a latent ``z`` (and ``y``) to the parameters of :math:`p_\theta(x \mid z)`,
  one distribution per pixel: Bernoulli logits for black-and-white images, a Gaussian mean for
  grey ones, or ``levels`` logits for images with a few integer grey levels;
- the prior is :math:`p(z) = \mathcal N(0, I)`.

:class:`VAEConfig` picks the architecture (``"mlp"`` or ``"conv"``), the sizes and the decoder
distribution; :class:`VAE` builds both networks from it and checks every input against it.
The objectives (ELBO terms, the importance-weighted bound) are pure functions in
:mod:`genlib.vae.objectives`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from genlib.nn import mlp

__all__ = ["VAEConfig", "VAE", "DECODERS", "ARCHITECTURES"]

DECODERS = ("bernoulli", "gaussian", "categorical")
ARCHITECTURES = ("mlp", "conv")


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class VAEConfig:
    """Architecture and likelihood of a :class:`VAE`.

    Attributes:
        image_shape: ``(C, H, W)`` of the images, e.g. ``(1, 28, 28)``.
        latent_dim: size of ``z``.
        arch: ``"mlp"`` (fully connected, any image size) or ``"conv"`` (strided 4x4
            convolutions; ``H`` and ``W`` must be divisible by ``2 ** len(channels)``).
        hidden: widths of the fully connected layers. ``"mlp"``: the encoder's hidden layers
            (the decoder mirrors them); ``"conv"``: the layers between the flattened feature map
            and ``z`` (``hidden[-1]`` only is used).
        channels: ``"conv"`` only: channels after each stride-2 convolution of the encoder (the
            decoder mirrors them with transposed convolutions).
        decoder: ``"bernoulli"`` (pixels in {0, 1}), ``"gaussian"`` (pixels in [0, 1], a density)
            or ``"categorical"`` (``levels`` integer grey levels, one softmax per pixel).
        levels: number of grey levels of the ``"categorical"`` decoder (17 for ``digits8x8``).
        gaussian_std: ``"gaussian"`` only: a fixed pixel standard deviation, or None to learn
            one per channel.
        n_classes: 0 for a plain VAE; ``K > 0`` makes it conditional: a one-hot label enters the
            encoder (beside the image features) and the decoder (beside ``z``).
        dropout: dropout rate on the fully connected hidden layers (training only).
    """

    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 32
    arch: Literal["mlp", "conv"] = "conv"
    hidden: tuple[int, ...] = (256,)
    channels: tuple[int, ...] = (32, 64)
    decoder: Literal["bernoulli", "gaussian", "categorical"] = "bernoulli"
    levels: int = 2
    gaussian_std: float | None = None
    n_classes: int = 0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("image_shape", "hidden", "channels"):  # from JSON: lists
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if (not isinstance(self.image_shape, tuple) or len(self.image_shape) != 3
                or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
                       for v in self.image_shape)):
            raise ValueError(f"image_shape must be (C, H, W) of positive ints, got "
                             f"{self.image_shape!r}")
        _positive_int("latent_dim", self.latent_dim)
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {', '.join(map(repr, ARCHITECTURES))}; "
                             f"got {self.arch!r}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(map(repr, DECODERS))}; "
                             f"got {self.decoder!r}")
        if not isinstance(self.hidden, tuple) or not self.hidden:
            raise ValueError(f"hidden must be a non-empty tuple of widths, got {self.hidden!r}")
        for i, h in enumerate(self.hidden):
            _positive_int(f"hidden[{i}]", h)
        if self.arch == "conv":
            if not isinstance(self.channels, tuple) or not self.channels:
                raise ValueError(f"channels must be a non-empty tuple for arch='conv', got "
                                 f"{self.channels!r}")
            for i, c in enumerate(self.channels):
                _positive_int(f"channels[{i}]", c)
            _, h, w = self.image_shape
            f = 2 ** len(self.channels)
            if h % f or w % f:
                raise ValueError(
                    f"image_shape {self.image_shape}: arch='conv' with {len(self.channels)} "
                    f"stride-2 stages needs H and W divisible by {f}; use fewer channels "
                    f"stages or arch='mlp'")
        if self.decoder == "bernoulli" and self.levels != 2:
            raise ValueError(f"levels must be 2 for decoder='bernoulli', got {self.levels!r}")
        if self.decoder == "categorical":
            _positive_int("levels", self.levels, minimum=2)
        if self.gaussian_std is not None and not (
                isinstance(self.gaussian_std, numbers.Real) and self.gaussian_std > 0):
            raise ValueError(f"gaussian_std must be a positive number or None, got "
                             f"{self.gaussian_std!r}")
        _positive_int("n_classes", self.n_classes, minimum=0)
        if not (isinstance(self.dropout, numbers.Real) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def n_pixels(self) -> int:
        """``C * H * W``: the dimension of ``x``."""
        c, h, w = self.image_shape
        return c * h * w

    @property
    def out_channels(self) -> int:
        """Channels of the decoder's output: one parameter per pixel, ``levels`` for
        ``"categorical"``."""
        c = self.image_shape[0]
        return c * self.levels if self.decoder == "categorical" else c


class VAE(nn.Module):
    """Encoder and decoder of a VAE from a :class:`VAEConfig`.

    Shapes (``B`` a batch, ``D = latent_dim``, ``(C, H, W) = image_shape``):

    - :meth:`encode`: ``x (B, C, H, W)``, ``y (B,)`` -> ``mu, logvar (B, D)``
    - :meth:`decode`: ``z (B, D)``, ``y (B,)`` -> decoder parameters ``(B, C, H, W)``
      (``(B, C, levels, H, W)`` logits for ``"categorical"``)
    - :meth:`log_px` : ``log p(x | z)`` per example ``(B,)`` from ``x`` and those parameters
    - :meth:`mean` : the decoder's mean image in ``[0, 1]`` from its parameters
    """

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__()
        config = config or VAEConfig()
        if not isinstance(config, VAEConfig):
            raise ValueError(f"config must be a VAEConfig, got {type(config).__name__}")
        self.config = config
        c, h, w = config.image_shape
        k, d = config.n_classes, config.latent_dim
        top = config.hidden[-1]
        if config.arch == "mlp":
            self.enc_body = nn.Identity()
            feat = c * h * w
            self.enc_head = mlp([feat + k, *config.hidden, 2 * d], dropout=config.dropout)
            self.dec_head = mlp([d + k, *reversed(config.hidden), config.out_channels * h * w],
                                dropout=config.dropout)
            self._dec_map: tuple[int, int, int] = (config.out_channels, h, w)
            self.dec_body: nn.Module = nn.Identity()
        else:
            chans = [c, *config.channels]
            enc: list[nn.Module] = []
            for a, b in zip(chans[:-1], chans[1:], strict=True):
                enc += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.SiLU()]
            self.enc_body = nn.Sequential(*enc)
            f = 2 ** len(config.channels)
            self._dec_map = (chans[-1], h // f, w // f)
            feat = math.prod(self._dec_map)
            self.enc_head = mlp([feat + k, top, 2 * d], dropout=config.dropout)
            self.dec_head = nn.Sequential(mlp([d + k, top, feat], dropout=config.dropout),
                                          nn.SiLU())
            dec: list[nn.Module] = []
            rev = chans[::-1]
            for i, (a, b) in enumerate(zip(rev[:-1], rev[1:], strict=True)):
                last = i == len(rev) - 2
                dec.append(nn.ConvTranspose2d(a, config.out_channels if last else b, 4,
                                              stride=2, padding=1))
                if not last:
                    dec.append(nn.SiLU())
            self.dec_body = nn.Sequential(*dec)
        if config.decoder == "gaussian" and config.gaussian_std is None:
            # learned per-channel log standard deviation, started at log(0.1)
            self.log_std = nn.Parameter(torch.full((c,), math.log(0.1)))
        else:
            self.register_parameter("log_std", None)

    # -- checks ---------------------------------------------------------------------------
    def _check_x(self, x: torch.Tensor) -> None:
        shape = self.config.image_shape
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != shape:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected images of shape (B, {shape[0]}, {shape[1]}, "
                             f"{shape[2]}) for this VAEConfig.image_shape, got {got}")

    def _one_hot(self, y: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        k = self.config.n_classes
        if k == 0:
            if y is not None:
                raise ValueError("y: this VAE is unconditional (n_classes=0); pass y=None")
            return None
        if y is None:
            raise ValueError(f"y: this VAE is conditional (n_classes={k}); pass labels (B,)")
        if y.shape != (batch,) or y.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"y: expected ({batch},) integer labels, got shape "
                             f"{tuple(y.shape)} dtype {y.dtype}")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
            raise ValueError(f"y: labels must be in 0..{k - 1}, got values in "
                             f"{int(y.min())}..{int(y.max())}")
        return F.one_hot(y.long(), k).to(torch.get_default_dtype())

    # -- the two networks -------------------------------------------------------------------
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z | x, y)``: mean and log-variance, each ``(B, latent_dim)``."""
        self._check_x(x)
        feats = self.enc_body(x).flatten(1)
        onehot = self._one_hot(y, x.shape[0])
        if onehot is not None:
            feats = torch.cat([feats, onehot.to(feats)], 1)
        mu, logvar = self.enc_head(feats).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Parameters of ``p(x | z, y)`` per pixel: logits (Bernoulli), means (Gaussian) or
        ``(B, C, levels, H, W)`` logits (categorical)."""
        d = self.config.latent_dim
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != d:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z: expected latents of shape (B, {d}) (latent_dim={d}), got {got}")
        onehot = self._one_hot(y, z.shape[0])
        if onehot is not None:
            z = torch.cat([z, onehot.to(z)], 1)
        out = self.dec_body(self.dec_head(z).view(-1, *self._dec_map))
        c, h, w = self.config.image_shape
        if self.config.decoder == "categorical":
            return out.view(-1, c, self.config.levels, h, w)
        if self.config.decoder == "gaussian":
            return torch.sigmoid(out)  # means in (0, 1)
        return out

    # -- the decoder's distribution ---------------------------------------------------------
    def pixel_std(self) -> torch.Tensor:
        """``"gaussian"`` decoder: the per-channel standard deviation ``(C,)``."""
        if self.config.decoder != "gaussian":
            raise ValueError(f"pixel_std: only a 'gaussian' decoder has one; this one is "
                             f"{self.config.decoder!r}")
        if self.log_std is not None:
            return self.log_std.exp()
        return torch.full((self.config.image_shape[0],), float(self.config.gaussian_std))

    def log_px(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``log p(x | z)`` per example, summed over pixels, ``(B,)``, in nats (``params`` may
        carry leading sample dimensions, ``(K, B, ...)`` -> ``(K, B)``).

        ``x`` must suit the decoder: ``{0, 1}`` pixels for ``"bernoulli"``, values ``k / (levels
        - 1)`` for ``"categorical"``, anything real for ``"gaussian"`` (a density, so the value
        can be positive and is not comparable with the two discrete decoders).
        """
        return pixel_log_prob(self.config, x, params, self.pixel_std()
                              if self.config.decoder == "gaussian" else None)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image ``E[x | z]`` in ``[0, 1]``, ``(B, C, H, W)``."""
        kind = self.config.decoder
        if kind == "bernoulli":
            return torch.sigmoid(params)
        if kind == "gaussian":
            return params
        levels = self.config.levels
        grid = torch.arange(levels, dtype=params.dtype, device=params.device) / (levels - 1)
        return (params.softmax(2) * grid[:, None, None]).sum(2)

    def sample_x(self, params: torch.Tensor, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """One draw of ``x ~ p(x | z)`` per example, ``(B, C, H, W)`` in ``[0, 1]``."""
        kind = self.config.decoder
        if kind == "bernoulli":
            u = torch.rand(params.shape, generator=generator).to(params.device)
            return (u < torch.sigmoid(params)).to(params.dtype)
        if kind == "gaussian":
            std = self.pixel_std().to(params)[:, None, None]
            eps = torch.randn(params.shape, generator=generator).to(params.device)
            return (params + std * eps).clamp(0, 1)
        levels = self.config.levels
        probs = params.softmax(2).movedim(2, -1).reshape(-1, levels)
        k = torch.multinomial(probs.cpu(), 1, generator=generator).to(params.device)
        b, c, _, h, w = params.shape
        return k.view(b, c, h, w).to(params.dtype) / (levels - 1)


def pixel_log_prob(config: VAEConfig, x: torch.Tensor, params: torch.Tensor,
                   std: torch.Tensor | None = None) -> torch.Tensor:
    """``log p(x | params)`` summed over pixels, per example ``(B,)`` (see :meth:`VAE.log_px`).

    ``params`` may carry extra leading dimensions (``(K, B, ...)`` for ``K`` latent samples per
    image); ``x`` ``(B, C, H, W)`` broadcasts against them.
    """
    kind = config.decoder
    if kind == "bernoulli":
        if not bool(((x == 0) | (x == 1)).all()):
            raise ValueError("x: the 'bernoulli' decoder models black-and-white pixels; x holds "
                             "values other than 0 and 1 (binarise it with "
                             "genlib.data.binarize, or use decoder='gaussian')")
        x = x.expand_as(params)
        lp = -F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return lp.flatten(-3).sum(-1)
    if kind == "gaussian":
        assert std is not None
        s = std.to(params)[:, None, None]
        lp = -0.5 * ((x - params) / s) ** 2 - torch.log(s) - 0.5 * math.log(2 * math.pi)
        return lp.flatten(-3).sum(-1)
    levels = config.levels
    k = torch.round(x * (levels - 1))
    if not bool(((k - x * (levels - 1)).abs() < 1e-3).all()) or bool((k < 0).any()) \
            or bool((k > levels - 1).any()):
        raise ValueError(f"x: the 'categorical' decoder models {levels} grey levels; x must "
                         f"hold values k / {levels - 1} for integers k in 0..{levels - 1}")
    logp = params.log_softmax(-3)                                   # (..., B, C, L, H, W)
    idx = k.long().unsqueeze(-3).expand(*params.shape[:-3], 1, *params.shape[-2:])
    return logp.gather(-3, idx).squeeze(-3).flatten(-3).sum(-1)
