r"""Generator and discriminator networks, built from one :class:`GANConfig`.

Two architectures:

- ``arch="mlp"`` for points (``data_shape=(D,)``, the 2D toys): the generator is
  ``z -> [Linear, ReLU] x depth -> Linear`` onto ``R^D``; the discriminator
  ``x -> [Linear, LeakyReLU(0.2)] x depth -> Linear`` onto one logit.
- ``arch="dcgan"`` for images (``data_shape=(C, H, W)`` with ``H, W`` divisible by 4), after
  Radford et al. (2016): the generator projects ``z`` to a ``4c x H/4 x W/4`` tensor and doubles
  the resolution twice with stride-2 transposed convolutions (batch norm and ReLU between them),
  ending in ``tanh``: images live in ``[-1, 1]`` (:func:`to_unit` maps them to ``[0, 1]``). The
  discriminator halves the resolution twice with stride-2 convolutions and LeakyReLU(0.2), then a
  linear layer gives one logit. It has no batch norm, so that each example's output depends on it
  alone, which the gradient penalty needs.

Options that change the *discriminator* (the usual cures for unstable training):

- ``spectral_norm``: divide each weight matrix by its largest singular value, estimated by one
  power iteration per step (Miyato et al. 2018), so each layer is 1-Lipschitz.
- ``pack``: judge ``pack`` examples at once, stacked along the channels (PacGAN, Lin et al.
  2018): a batch of ``B`` examples gives ``B / pack`` outputs, and a generator that repeats
  itself is easier to catch in a pack than alone.
- ``minibatch_std``: append the average over features of the per-feature standard deviation
  across the batch as one more input of the last layer (Karras et al. 2018), so a batch of
  identical fakes is easy to spot: a simple defence against mode collapse.

Class-conditional models (``n_classes > 0``): the generator reads ``[z, one_hot(y)]``; the
discriminator adds a *projection* term ``<embed(y), h(x)>`` to its output, where ``h`` is its
last hidden features (Miyato & Koyama 2018).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GANConfig", "Generator", "Discriminator", "ARCHS", "to_unit", "from_unit",
           "minibatch_stddev", "sample_latent"]

ARCHS = ("mlp", "dcgan")


def _pos_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class GANConfig:
    """Architecture of a GAN's two networks.

    Attributes:
        data_shape: ``(D,)`` for ``"mlp"``; ``(C, H, W)``, ``H`` and ``W`` divisible by 4, for
            ``"dcgan"``.
        arch: ``"mlp"`` or ``"dcgan"``.
        latent_dim: size of ``z ~ N(0, I)``.
        hidden: MLP width (both networks).
        depth: MLP hidden layers (both networks).
        g_channels, d_channels: DCGAN base widths ``c`` (the generator's widest layer has
            ``4c``, the discriminator's ``2c`` channels).
        n_classes: 0, or ``K`` for a class-conditional pair.
        spectral_norm, minibatch_std, pack: discriminator options (module docstring).
    """

    data_shape: tuple[int, ...] = (2,)
    arch: str = "mlp"
    latent_dim: int = 16
    hidden: int = 128
    depth: int = 3
    g_channels: int = 32
    d_channels: int = 32
    n_classes: int = 0
    spectral_norm: bool = False
    minibatch_std: bool = False
    pack: int = 1

    def __post_init__(self) -> None:
        shape = self.data_shape
        if isinstance(shape, list):
            object.__setattr__(self, "data_shape", tuple(shape))
            shape = self.data_shape
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(map(repr, ARCHS))}; got "
                             f"{self.arch!r}")
        ok = isinstance(shape, tuple) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in shape)
        if self.arch == "mlp" and not (ok and len(shape) == 1):
            raise ValueError(f"data_shape must be (D,) for arch='mlp'; got {shape!r}")
        if self.arch == "dcgan" and not (ok and len(shape) == 3 and shape[1] % 4 == 0
                                         and shape[2] % 4 == 0):
            raise ValueError(f"data_shape must be (C, H, W) with H and W divisible by 4 for "
                             f"arch='dcgan'; got {shape!r}")
        for name in ("latent_dim", "hidden", "depth", "g_channels", "d_channels"):
            _pos_int(name, getattr(self, name))
        _pos_int("n_classes", self.n_classes, minimum=0)
        _pos_int("pack", self.pack)
        if self.pack > 1 and self.n_classes:
            raise ValueError(f"pack must be 1 for a class-conditional model (n_classes="
                             f"{self.n_classes}); got pack={self.pack}")
        if self.n_classes == 1:
            raise ValueError("n_classes must be 0 (unconditional) or >= 2, got 1")


def _check_labels(labels: torch.Tensor | None, n: int, n_classes: int) -> torch.Tensor | None:
    if n_classes == 0:
        if labels is not None:
            raise ValueError("labels: this model is unconditional (n_classes=0); pass "
                             "labels=None")
        return None
    if labels is None:
        raise ValueError(f"labels: this model is class-conditional (n_classes={n_classes}); "
                         f"pass an integer tensor of {n} labels in 0..{n_classes - 1}")
    if labels.shape != (n,) or labels.is_floating_point():
        raise ValueError(f"labels must be an integer tensor of shape ({n},); got "
                         f"{labels.dtype} {tuple(labels.shape)}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}; got values "
                         f"{int(labels.min())}..{int(labels.max())}")
    return labels


def _sn(layer: nn.Module, enabled: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(layer) if enabled else layer


def minibatch_stddev(h: torch.Tensor) -> torch.Tensor:
    """The average over features of each feature's standard deviation across the batch, as a
    ``(B, 1)`` column (the same value for every example)."""
    flat = h.reshape(h.shape[0], -1)
    sd = (flat.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    return sd.expand(h.shape[0], 1)


class Generator(nn.Module):
    """``G(z, labels) -> x``: points ``(B, D)`` or images ``(B, C, H, W)`` in ``[-1, 1]``."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        inp = c.latent_dim + c.n_classes
        if c.arch == "mlp":
            layers: list[nn.Module] = []
            width = inp
            for _ in range(c.depth):
                layers += [nn.Linear(width, c.hidden), nn.ReLU()]
                width = c.hidden
            layers.append(nn.Linear(width, c.data_shape[0]))
            self.net = nn.Sequential(*layers)
        else:
            ch, h, w = c.data_shape
            k = c.g_channels
            self._base = (4 * k, h // 4, w // 4)
            self.project = nn.Sequential(nn.Linear(inp, 4 * k * (h // 4) * (w // 4)),
                                         nn.BatchNorm1d(4 * k * (h // 4) * (w // 4)), nn.ReLU())
            self.net = nn.Sequential(
                nn.ConvTranspose2d(4 * k, 2 * k, 4, stride=2, padding=1),
                nn.BatchNorm2d(2 * k), nn.ReLU(),
                nn.ConvTranspose2d(2 * k, ch, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        if z.ndim != 2 or z.shape[1] != c.latent_dim:
            raise ValueError(f"z must have shape (B, latent_dim={c.latent_dim}); got "
                             f"{tuple(z.shape)}")
        labels = _check_labels(labels, z.shape[0], c.n_classes)
        if labels is not None:
            z = torch.cat([z, F.one_hot(labels, c.n_classes).to(z.dtype)], dim=1)
        if c.arch == "mlp":
            return self.net(z)
        return self.net(self.project(z).reshape(-1, *self._base))

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` samples for ``z`` drawn on ``generator`` (no gradient)."""
        device = next(self.parameters()).device
        z = sample_latent(n, self.config.latent_dim, generator=generator, device=device)
        with torch.no_grad():
            return self(z, None if labels is None else labels.to(device))


class Discriminator(nn.Module):
    """``D(x, labels) -> (B,)`` logits (critic scores for the Wasserstein loss); with
    ``pack > 1``, ``(B / pack,)``: one per pack of consecutive examples."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        sn = c.spectral_norm
        extra = 1 if c.minibatch_std else 0
        if c.arch == "mlp":
            layers: list[nn.Module] = []
            width = c.data_shape[0] * c.pack
            for _ in range(c.depth):
                layers += [_sn(nn.Linear(width, c.hidden), sn), nn.LeakyReLU(0.2)]
                width = c.hidden
            self.features = nn.Sequential(*layers)
            feat = c.hidden
        else:
            ch, h, w = c.data_shape
            k = c.d_channels
            self.features = nn.Sequential(
                _sn(nn.Conv2d(ch * c.pack, k, 4, stride=2, padding=1), sn), nn.LeakyReLU(0.2),
                _sn(nn.Conv2d(k, 2 * k, 4, stride=2, padding=1), sn), nn.LeakyReLU(0.2),
                nn.Flatten())
            feat = 2 * k * (h // 4) * (w // 4)
        self.head = _sn(nn.Linear(feat + extra, 1), sn)
        self.embed = _sn(nn.Embedding(c.n_classes, feat), sn) if c.n_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        if tuple(x.shape[1:]) != c.data_shape:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, c.data_shape))}); got "
                             f"{tuple(x.shape)}")
        labels = _check_labels(labels, x.shape[0], c.n_classes)
        if c.pack > 1:
            if x.shape[0] % c.pack:
                raise ValueError(f"x: a batch of {x.shape[0]} examples cannot be split into "
                                 f"packs of {c.pack}; use a multiple of {c.pack}")
            x = x.reshape(x.shape[0] // c.pack, c.pack * x.shape[1], *x.shape[2:])
        h = self.features(x)
        inp = torch.cat([h, minibatch_stddev(h)], dim=1) if c.minibatch_std else h
        out = self.head(inp)[:, 0]
        if labels is not None:
            out = out + (self.embed(labels) * h).sum(dim=1)
        return out


def sample_latent(n: int, latent_dim: int, *, generator: torch.Generator | None = None,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """``(n, latent_dim)`` draws of ``N(0, I)`` on ``generator`` (moved to ``device``)."""
    _pos_int("n", n, minimum=0)
    _pos_int("latent_dim", latent_dim)
    gdev = generator.device if generator is not None else device
    z = torch.randn(n, latent_dim, generator=generator, device=gdev)
    return z.to(device) if device is not None else z


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Images from the generator's ``[-1, 1]`` to pixel intensities in ``[0, 1]``."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


def from_unit(x: torch.Tensor) -> torch.Tensor:
    """Pixel intensities in ``[0, 1]`` to the generator's ``[-1, 1]``."""
    return x * 2.0 - 1.0
