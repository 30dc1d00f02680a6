"""Two-dimensional toy distributions: small enough to see every sample, hard enough to break
a model (chapter 1's first mixture, chapter 5's mode collapse, chapter 6's flows).

Every distribution has a closed description, fixed here once (all lengths in data units):

========== =====================================================================================
name       distribution
========== =====================================================================================
ring       8 Gaussians, std ``MODE_STD = 0.05``, centres on the circle of radius 2 at angles
           ``2 pi k / 8`` (Metz et al. 2017, *Unrolled GANs*), equal weights
grid       25 Gaussians, std ``MODE_STD``, centres at ``{-2, -1, 0, 1, 2}^2``, equal weights
gaussian   the standard normal ``N(0, I_2)``
moons      two interleaving half circles of radius 2: the upper half of the circle centred at
           ``(-1, -0.5)`` and the lower half of the one centred at ``(1, 0.5)``, angle uniform,
           plus isotropic noise of std ``CURVE_STD = 0.05``
spiral     two arms of the Archimedean spiral ``r = theta / pi``, ``theta`` in ``[0, 3 pi]``
           (1.5 turns, radius up to 3), the second arm turned by ``pi``; uniform along the arc,
           plus isotropic noise of std ``CURVE_STD``
checker-   uniform on the 8 "black" unit squares of a 4 x 4 board on ``[-2, 2]^2``, those with
board      ``floor(x) + floor(y)`` even
========== =====================================================================================

Samples are drawn with a CPU ``torch.Generator`` (seeded from ``seed``, 0 by default), so the
same seed gives the same points on every machine and every device.
"""

from __future__ import annotations

import math

import torch

from genlib.data._checks import check_choice, check_int, make_generator

__all__ = ["TOY2D_NAMES", "MODE_STD", "CURVE_STD", "toy2d", "toy2d_modes"]

TOY2D_NAMES = ("ring", "grid", "gaussian", "moons", "spiral", "checkerboard")
MODE_STD = 0.05  # std of each Gaussian of "ring" and "grid"
CURVE_STD = 0.05  # std of the noise around the curves of "moons" and "spiral"
RING_RADIUS = 2.0
SPIRAL_MAX_THETA = 3.0 * math.pi


def toy2d_modes(name: str) -> torch.Tensor:
    """Centres of the mixture components of ``name`` (``"ring"`` or ``"grid"``), ``(K, 2)``.

    Each component is ``N(centre, MODE_STD^2 I)`` with weight ``1 / K``.
    """
    check_choice("name", name, ("ring", "grid"), what="toy2d_modes (the mixtures)")
    if name == "ring":
        angle = 2.0 * math.pi * torch.arange(8, dtype=torch.float64) / 8
        modes = RING_RADIUS * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    else:
        axis = torch.arange(-2, 3, dtype=torch.float64)
        modes = torch.cartesian_prod(axis, axis)
    return modes.to(torch.float32)


def toy2d(
    name: str,
    n: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw ``n`` points of the toy distribution ``name`` (see the module table).

    Args:
        name: one of :data:`TOY2D_NAMES`.
        n: number of points, >= 1.
        seed: seed of a fresh CPU generator (0 when neither seed nor generator is given).
        generator: a generator to draw from instead (its state advances); the points are drawn
            on its device.
        device: where the result goes (default: the generator's device).

    Returns:
        ``(n, 2)`` float32 points.
    """
    check_choice("name", name, TOY2D_NAMES, what="toy2d")
    n = check_int("n", n, minimum=1)
    g = make_generator(seed, generator)
    kw = {"generator": g, "device": g.device}
    if name in ("ring", "grid"):
        modes = toy2d_modes(name).to(g.device)
        k = torch.randint(len(modes), (n,), **kw)
        x = modes[k] + MODE_STD * torch.randn(n, 2, **kw)
    elif name == "gaussian":
        x = torch.randn(n, 2, **kw)
    elif name == "moons":
        upper = torch.randint(2, (n,), **kw) == 0
        t = math.pi * torch.rand(n, **kw)
        # upper moon: (-1, -0.5) + 2 (cos t, sin t); lower moon: (1, 0.5) - 2 (cos t, sin t)
        sign = torch.where(upper, 1.0, -1.0)
        centre = torch.stack([-sign, -0.5 * sign], dim=1)
        x = centre + 2.0 * sign[:, None] * torch.stack([torch.cos(t), torch.sin(t)], dim=1)
        x = x + CURVE_STD * torch.randn(n, 2, **kw)
    elif name == "spiral":
        arm = torch.randint(2, (n,), **kw)
        # theta = theta_max sqrt(u) has density ~ theta, i.e. uniform along the arc (ds ~ r dtheta)
        theta = SPIRAL_MAX_THETA * torch.sqrt(torch.rand(n, **kw))
        r = theta / math.pi
        phase = theta + math.pi * arm
        x = r[:, None] * torch.stack([torch.cos(phase), torch.sin(phase)], dim=1)
        x = x + CURVE_STD * torch.randn(n, 2, **kw)
    else:  # checkerboard: pick one of the 8 black squares, then a uniform point inside it
        i, j = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
        black = torch.stack([i.flatten(), j.flatten()], dim=1)
        black = black[(black.sum(dim=1) % 2) == 0].to(g.device, torch.float32)  # (8, 2)
        k = torch.randint(len(black), (n,), **kw)
        x = black[k] - 2.0 + torch.rand(n, 2, **kw)
    return x.to(device=device if device is not None else g.device, dtype=torch.float32)
