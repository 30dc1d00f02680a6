"""shapes: pixels, captions and attributes say the same thing."""

import math

import pytest
import torch

from genlib.data.shapes import (
    COLOUR_NAMES,
    COLOUR_RGB,
    POSITION_NAMES,
    SHAPE_NAMES,
    SHAPES_VOCAB,
    SIZE_NAMES,
    render_shapes,
    shape_area,
    shape_caption,
    shapes,
)


@pytest.fixture(scope="module")
def sample():
    return shapes(400, size=32, seed=11)


def _coverage(images: torch.Tensor) -> torch.Tensor:
    """Coverage of each pixel (B, H, W): every colour has max channel 1 on a black background."""
    return images.amax(dim=1)


def test_output_types_and_reproducibility(sample):
    assert sample.images.shape == (400, 3, 32, 32) and sample.images.dtype == torch.float32
    assert sample.images.min() >= 0 and sample.images.max() <= 1
    assert len(sample.captions) == 400 and sample.levels is None
    assert sample.vocab == SHAPES_VOCAB
    assert torch.equal(sample.labels, sample.attributes["shape"])
    again = shapes(400, size=32, seed=11)
    assert torch.equal(again.images, sample.images) and again.captions == sample.captions
    assert not torch.equal(shapes(400, size=32, seed=12).images, sample.images)
    g = torch.Generator().manual_seed(11)
    assert torch.equal(shapes(400, size=32, generator=g).images, sample.images)


def test_captions_agree_with_attributes(sample):
    a = sample.attributes
    for i, caption in enumerate(sample.captions):
        s, c, z, p = (int(a[k][i]) for k in ("shape", "colour", "size", "position"))
        assert (
            caption
            == f"a {SIZE_NAMES[z]} {COLOUR_NAMES[c]} {SHAPE_NAMES[s]} at the " + (POSITION_NAMES[p])
        )
    assert shape_caption(0, 0, 0, 0) == "a small red circle at the top left"
    assert shape_caption(2, 6, 1, 4) == "a large white triangle at the center"
    # every value of every attribute occurs in 400 draws
    for key, names in SHAPES_VOCAB.items():
        assert set(a[key].tolist()) == set(range(len(names)))


def test_pixels_agree_with_attributes(sample):
    a = sample.attributes
    cov = _coverage(sample.images)
    cell = 32 / 3
    for i in range(len(sample)):
        x, y = a["centre"][i].tolist()
        # the colour at the centre is the caption's colour
        centre_pixel = sample.images[i, :, int(y), int(x)]
        assert centre_pixel.max() > 0.8
        rgb = torch.tensor(COLOUR_RGB[int(a["colour"][i])])
        assert torch.allclose(centre_pixel / centre_pixel.max(), rgb)
        # the shape lies inside the cell of its position (antialiasing: half a pixel margin)
        rows, cols = torch.nonzero(cov[i] > 0, as_tuple=True)
        row, col = divmod(int(a["position"][i]), 3)
        assert rows.min() >= math.floor(row * cell - 0.5) and rows.max() < (row + 1) * cell + 0.5
        assert cols.min() >= math.floor(col * cell - 0.5) and cols.max() < (col + 1) * cell + 0.5
    # sizes do not overlap: every large shape covers more than any small one of its kind
    area = cov.sum(dim=(1, 2))
    for s in range(len(SHAPE_NAMES)):
        kind = a["shape"] == s
        large, small = area[kind & (a["size"] == 1)], area[kind & (a["size"] == 0)]
        assert large.min() > 1.5 * small.max()


@pytest.mark.parametrize("shape", range(len(SHAPE_NAMES)))
def test_a_known_shape_has_its_colour_area_and_centre(shape):
    radius, centre = 8.0, (16.0, 16.0)
    image = render_shapes(
        torch.tensor([shape]), torch.tensor([0]), torch.tensor([centre]), torch.tensor([radius])
    )[0]
    assert torch.equal(image[:, 15, 15], torch.tensor([1.0, 0.0, 0.0]))  # red at the centre
    assert torch.equal(image[:, 16, 16], torch.tensor([1.0, 0.0, 0.0]))
    assert image[1:].abs().max() == 0  # red only
    assert image[:, :4, :4].abs().max() == 0 and image[:, -4:, -4:].abs().max() == 0
    cov = image[0].double()
    # antialiased coverage integrates to the exact area
    exact = shape_area(torch.tensor([shape]), torch.tensor([radius], dtype=torch.float64))
    assert abs(cov.sum().item() / exact.item() - 1) < 0.015
    # the centroid of every shape (the triangle's included) is its centre
    grid = torch.arange(32, dtype=torch.float64) + 0.5
    cx = (cov.sum(dim=0) * grid).sum() / cov.sum()
    cy = (cov.sum(dim=1) * grid).sum() / cov.sum()
    assert abs(cx - 16) < 0.05 and abs(cy - 16) < 0.05
    # the triangle points up: 5/9 of its area lies below its centroid (y grows downwards)
    below = cov[16:].sum() / cov.sum()
    assert abs(below.item() - (5 / 9 if SHAPE_NAMES[shape] == "triangle" else 0.5)) < 0.01


def test_shapes_differ_where_their_outlines_differ():
    r, centre = 8.0, torch.tensor([[16.0, 16.0]])
    images = {
        name: render_shapes(torch.tensor([i]), torch.tensor([6]), centre, torch.tensor([r]))[0, 0]
        for i, name in enumerate(SHAPE_NAMES)
    }
    # square corners (16 +- r/sqrt 2) are covered; the diamond's corners point along the axes
    assert images["square"][20, 20] == 1 and images["diamond"][20, 20] == 0
    assert images["diamond"][16, 22] == 1 and images["square"][16, 22] == 0
    assert images["circle"][16, 22] == 1


def test_any_size_from_16(sample):
    small = shapes(20, size=16, seed=0)
    assert small.images.shape == (20, 3, 16, 16)
    assert torch.equal(small.attributes["shape"], shapes(20, size=48, seed=0).attributes["shape"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, r"n must be an integer >= 1; got 0"),
        ({"n": 5, "size": 15}, r"size must be an integer >= 16; got 15"),
        ({"n": 5, "seed": -2}, r"seed must be an integer >= 0; got -2"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        shapes(**kwargs)


def test_render_rejects_bad_indices():
    with pytest.raises(ValueError, match=r"colour indices must be in 0..6"):
        render_shapes(torch.tensor([0]), torch.tensor([7]), torch.tensor([[8.0, 8.0]]), [3.0])
    with pytest.raises(ValueError, match=r"shapes \(N,\), \(N,\), \(N, 2\), \(N,\)"):
        render_shapes(torch.tensor([0, 1]), torch.tensor([0]), torch.tensor([[8.0, 8.0]]), [3.0])
