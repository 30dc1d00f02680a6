"""Procedural coloured shapes with captions: the captioned dataset of chapter 7 (text-to-image).

Each image shows one shape on a black background, described by four attributes and a caption:

    shape     circle | square | triangle | diamond
    colour    red | green | blue | yellow | magenta | cyan | white   (pure RGB, max channel 1)
    size      small | large
    position  one cell of a 3 x 3 grid: top left, top, top right, left, center, right,
              bottom left, bottom, bottom right        (index = 3 * row + column)

    caption   "a small red circle at the top left"

Geometry, in pixel units with ``x`` to the right and ``y`` down (pixel ``(i, j)`` covers
``[j, j + 1) x [i, i + 1)``): every shape is inscribed in a circle of radius ``r`` around its
centre: a disc of radius ``r``; an axis-aligned square and a diamond (a square turned 45 degrees)
with vertices at distance ``r``; an equilateral triangle pointing up with circumradius ``r``.
Their areas are ``pi r^2``, ``2 r^2``, ``2 r^2`` and ``(3 sqrt(3) / 4) r^2``.
With ``cell = size / 3``, ``r = 0.40 cell`` (large) or ``0.24 cell`` (small), times a jitter
``U(0.9, 1.1)``, and the centre is the cell's centre plus ``U(-0.05, 0.05) cell`` in each
direction, so every shape stays inside its cell.

Edges are antialiased with a signed distance ``d`` (negative inside): a pixel's coverage is
``clamp(0.5 - d, 0, 1)``, a one-pixel ramp across the edge; the pixel is
``coverage * colour`` on the black background.
"""

from __future__ import annotations

import math

import torch

from genlib.data._checks import check_int, make_generator
from genlib.data.containers import ImageData

__all__ = [
    "SHAPE_NAMES",
    "COLOUR_NAMES",
    "COLOUR_RGB",
    "SIZE_NAMES",
    "POSITION_NAMES",
    "SHAPES_VOCAB",
    "shape_caption",
    "shape_area",
    "render_shapes",
    "shapes",
]

SHAPE_NAMES = ("circle", "square", "triangle", "diamond")
COLOUR_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan", "white")
COLOUR_RGB = (
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),
    (1.0, 1.0, 0.0),
    (1.0, 0.0, 1.0),
    (0.0, 1.0, 1.0),
    (1.0, 1.0, 1.0),
)
SIZE_NAMES = ("small", "large")
POSITION_NAMES = (
    "top left", "top", "top right",
    "left", "center", "right",
    "bottom left", "bottom", "bottom right",
)  # fmt: skip
SHAPES_VOCAB = {
    "shape": SHAPE_NAMES,
    "colour": COLOUR_NAMES,
    "size": SIZE_NAMES,
    "position": POSITION_NAMES,
}

_RADIUS = (0.24, 0.40)  # r / cell for small, large
_RADIUS_JITTER = 0.10  # r is multiplied by U(1 - j, 1 + j)
_CENTRE_JITTER = 0.05  # the centre moves by U(-j, j) cell in x and in y
_CHUNK = 2048  # images rendered at once: bounds the (chunk, H, W) distance buffers


def shape_caption(shape: int, colour: int, size: int, position: int) -> str:
    """The caption of one image from its attribute indices.

    >>> shape_caption(0, 0, 0, 0)
    'a small red circle at the top left'
    """
    return (
        f"a {SIZE_NAMES[size]} {COLOUR_NAMES[colour]} {SHAPE_NAMES[shape]} "
        f"at the {POSITION_NAMES[position]}"
    )


def shape_area(shape: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Exact area in pixels of shapes ``shape`` (indices, ``(N,)``) of circumradius ``radius``."""
    factor = torch.tensor([math.pi, 2.0, 3.0 * math.sqrt(3.0) / 4.0, 2.0], dtype=radius.dtype)
    return factor.to(radius.device)[shape] * radius**2


def _box_sdf(u: torch.Tensor, v: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """Exact signed distance to the axis-aligned square ``|u|, |v| <= half``."""
    qu, qv = u.abs() - half, v.abs() - half
    outside = torch.sqrt(qu.clamp(min=0) ** 2 + qv.clamp(min=0) ** 2)
    inside = torch.maximum(qu, qv).clamp(max=0)
    return outside + inside


def _signed_distance(
    shape: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor
) -> torch.Tensor:
    """Signed distance (pixels, negative inside) of offsets ``(dx, dy)`` ``(B, H, W)`` from the
    centres of shapes ``shape`` ``(B,)`` with circumradius ``r`` ``(B, 1, 1)``."""
    d = torch.empty_like(dx)
    sel = shape == 0  # circle
    d[sel] = torch.sqrt(dx[sel] ** 2 + dy[sel] ** 2) - r[sel]
    sel = shape == 1  # square, half side r / sqrt(2)
    d[sel] = _box_sdf(dx[sel], dy[sel], r[sel] / math.sqrt(2.0))
    sel = shape == 3  # diamond: the square in coordinates turned by 45 degrees
    u, v = (dx[sel] + dy[sel]) / math.sqrt(2.0), (dy[sel] - dx[sel]) / math.sqrt(2.0)
    d[sel] = _box_sdf(u, v, r[sel] / math.sqrt(2.0))
    sel = shape == 2  # triangle: max over its three edges of (outward normal . offset) - inradius
    s3 = math.sqrt(3.0) / 2.0
    x, y = dx[sel], dy[sel]
    edges = torch.stack([y, s3 * x - 0.5 * y, -s3 * x - 0.5 * y]).amax(dim=0)
    d[sel] = edges - r[sel] / 2.0  # exact inside and across edges; slightly small near corners
    return d


def render_shapes(
    shape: torch.Tensor,
    colour: torch.Tensor,
    centre: torch.Tensor,
    radius: torch.Tensor,
    *,
    image_size: int = 32,
) -> torch.Tensor:
    """Render one shape per image, antialiased, on a black background.

    Args:
        shape: ``(N,)`` indices into :data:`SHAPE_NAMES`.
        colour: ``(N,)`` indices into :data:`COLOUR_NAMES`.
        centre: ``(N, 2)`` centres ``(x, y)`` in pixels (the image spans ``[0, image_size]``).
        radius: ``(N,)`` circumradius in pixels, > 0.
        image_size: height and width in pixels, >= 16.

    Returns:
        ``(N, 3, image_size, image_size)`` float32 in ``[0, 1]``.
    """
    image_size = check_int("image_size", image_size, minimum=16)
    shape, colour = torch.as_tensor(shape).long(), torch.as_tensor(colour).long()
    centre = torch.as_tensor(centre, dtype=torch.float32)
    radius = torch.as_tensor(radius, dtype=torch.float32)
    n = shape.shape[0]
    if shape.ndim != 1 or colour.shape != (n,) or centre.shape != (n, 2) or radius.shape != (n,):
        raise ValueError(
            "shape, colour, centre, radius must have shapes (N,), (N,), (N, 2), (N,); got "
            f"{tuple(shape.shape)}, {tuple(colour.shape)}, {tuple(centre.shape)}, "
            f"{tuple(radius.shape)}"
        )
    if n and (shape.min() < 0 or shape.max() >= len(SHAPE_NAMES)):
        raise ValueError(f"shape indices must be in 0..{len(SHAPE_NAMES) - 1}; got {shape}")
    if n and (colour.min() < 0 or colour.max() >= len(COLOUR_NAMES)):
        raise ValueError(f"colour indices must be in 0..{len(COLOUR_NAMES) - 1}; got {colour}")
    if n and radius.min() <= 0:
        raise ValueError(f"radius must be > 0; got min {radius.min().item()}")
    palette = torch.tensor(COLOUR_RGB, dtype=torch.float32)
    pixel = torch.arange(image_size, dtype=torch.float32) + 0.5  # pixel centres
    out = torch.empty(n, 3, image_size, image_size, dtype=torch.float32)
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        dx = pixel[None, None, :] - centre[lo:hi, 0, None, None]  # (B, 1, W)
        dy = pixel[None, :, None] - centre[lo:hi, 1, None, None]  # (B, H, 1)
        dx, dy = torch.broadcast_tensors(dx, dy)  # (B, H, W)
        d = _signed_distance(shape[lo:hi], dx, dy, radius[lo:hi, None, None])
        coverage = (0.5 - d).clamp(0.0, 1.0)  # (B, H, W)
        out[lo:hi] = coverage[:, None] * palette[colour[lo:hi], :, None, None]
    return out


def shapes(
    n: int,
    *,
    size: int = 32,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> ImageData:
    """Draw ``n`` captioned images of coloured shapes (attributes uniform and independent).

    Args:
        n: number of images, >= 1.
        size: image height and width in pixels, >= 16.
        seed: seed of a fresh CPU generator (0 when neither seed nor generator is given).
        generator: a CPU generator to draw from instead (its state advances).
        device: where the images and attribute tensors go (default CPU).

    Returns:
        ImageData (``name="shapes"``, ``split="generated"``) with images
        ``(n, 3, size, size)`` float32 in ``[0, 1]``, ``captions`` (n strings), ``attributes``
        ``{"shape", "colour", "size", "position"}`` as int64 ``(n,)`` indices into ``vocab``
        plus the geometry ``"centre"`` ``(n, 2)`` (x, y pixels) and ``"radius"`` ``(n,)``,
        ``vocab`` = :data:`SHAPES_VOCAB`, and ``labels`` = the shape index.
    """
    n = check_int("n", n, minimum=1)
    size = check_int("size", size, minimum=16)
    g = make_generator(seed, generator)
    if g.device.type != "cpu":
        raise ValueError(f"generator must be a CPU generator; got one on {g.device}")
    attrs = {
        key: torch.randint(len(names), (n,), generator=g) for key, names in SHAPES_VOCAB.items()
    }
    cell = size / 3.0
    row, col = attrs["position"] // 3, attrs["position"] % 3
    jitter = (2.0 * torch.rand(n, 2, generator=g) - 1.0) * _CENTRE_JITTER
    centre = (torch.stack([col, row], dim=1).float() + 0.5 + jitter) * cell  # (n, 2) = (x, y)
    scale = 1.0 + (2.0 * torch.rand(n, generator=g) - 1.0) * _RADIUS_JITTER
    radius = torch.tensor(_RADIUS)[attrs["size"]] * scale * cell
    images = render_shapes(attrs["shape"], attrs["colour"], centre, radius, image_size=size)
    captions = tuple(
        shape_caption(*(int(attrs[k][i]) for k in ("shape", "colour", "size", "position")))
        for i in range(n)
    )
    attributes = {**attrs, "centre": centre, "radius": radius}
    return ImageData(
        images=images.to(device),
        labels=attrs["shape"].to(device, copy=True),
        captions=captions,
        name="shapes",
        split="generated",
        levels=None,
        attributes={k: v.to(device) for k, v in attributes.items()},
        classes=SHAPE_NAMES,
        vocab=dict(SHAPES_VOCAB),
    )
