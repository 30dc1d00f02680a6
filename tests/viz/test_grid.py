"""genlib.viz.grid: exact grid layout, input checks, and the size and content of saved PNGs."""

import math

import numpy as np
import pytest
import torch
from matplotlib.axes import Axes
from PIL import Image

from genlib.viz.grid import (
    RANGE_TOL,
    TITLE_INCHES,
    as_image_batch,
    grid_figsize,
    make_grid,
    save_grid,
    show_images,
)


def test_make_grid_tiny_known_batch():
    # three 2x2 greyscale images, 2 per row, 1 pixel of padding valued 0.5
    a = [[0.1, 0.2], [0.3, 0.4]]
    b = [[0.6, 0.7], [0.8, 0.9]]
    c = [[0.0, 1.0], [1.0, 0.0]]
    images = np.array([a, b, c], dtype=np.float32)  # (N, H, W)
    P = 0.5
    expected = np.array(
        [
            [P, P, P, P, P, P, P],
            [P, 0.1, 0.2, P, 0.6, 0.7, P],
            [P, 0.3, 0.4, P, 0.8, 0.9, P],
            [P, P, P, P, P, P, P],
            [P, 0.0, 1.0, P, P, P, P],  # image 2 at row 1, col 0; the last cell stays empty
            [P, 1.0, 0.0, P, P, P, P],
            [P, P, P, P, P, P, P],
        ],
        dtype=np.float32,
    )
    grid = make_grid(images, nrow=2, padding=1, pad_value=P)
    assert isinstance(grid, np.ndarray) and grid.dtype == np.float32
    assert grid.shape == (1, 7, 7)
    np.testing.assert_array_equal(grid[0], expected)


@pytest.mark.parametrize(
    ("n", "c", "h", "w", "nrow", "padding"),
    [(7, 1, 5, 4, 3, 2), (5, 3, 3, 6, 8, 0), (12, 3, 4, 4, 4, 3), (1, 1, 2, 2, 1, 1)],
)
def test_make_grid_places_image_k_at_row_k_div_cols(n, c, h, w, nrow, padding):
    g = torch.Generator().manual_seed(n * 100 + nrow)
    # values in [0.01, 0.99] so no image pixel equals pad_value = 1.0
    x = 0.01 + 0.98 * torch.rand(n, c, h, w, generator=g)
    grid = make_grid(x, nrow=nrow, padding=padding, pad_value=1.0)
    assert isinstance(grid, torch.Tensor) and grid.dtype == torch.float32
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    assert grid.shape == (c, rows * (h + padding) + padding, cols * (w + padding) + padding)
    covered = torch.zeros(grid.shape[1:], dtype=torch.bool)
    for k in range(n):
        top = padding + (k // cols) * (h + padding)
        left = padding + (k % cols) * (w + padding)
        torch.testing.assert_close(grid[:, top : top + h, left : left + w], x[k])
        covered[top : top + h, left : left + w] = True
    # every pixel not covered by an image is padding (this includes empty trailing cells)
    assert torch.all(grid[:, ~covered] == 1.0)


def test_make_grid_uint8_and_float_give_the_same_grid():
    g = torch.Generator().manual_seed(0)
    x8 = torch.randint(0, 256, (6, 3, 5, 5), generator=g, dtype=torch.uint8)
    xf = x8.float() / 255
    grid8 = make_grid(x8, nrow=4)
    gridf = make_grid(xf, nrow=4)
    torch.testing.assert_close(grid8, gridf, rtol=0, atol=1e-7)
    # numpy in -> numpy out, same values
    np.testing.assert_allclose(make_grid(x8.numpy(), nrow=4), gridf.numpy(), atol=1e-7)
    assert float(grid8.max()) <= 1.0 and float(grid8.min()) >= 0.0


def test_greyscale_three_dim_equals_one_channel_and_rgb_keeps_channels():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, 6, 6, generator=g)
    torch.testing.assert_close(make_grid(x, nrow=2), make_grid(x[:, None], nrow=2))
    assert make_grid(x, nrow=2).shape[0] == 1
    # RGB: each channel of the grid is the grid of that channel alone (no mixing)
    rgb = torch.rand(5, 3, 6, 6, generator=g)
    grid = make_grid(rgb, nrow=2)
    assert grid.shape[0] == 3
    for ch in range(3):
        torch.testing.assert_close(grid[ch], make_grid(rgb[:, ch], nrow=2)[0])


def test_as_image_batch_clips_within_tolerance_only():
    x = torch.full((2, 1, 3, 3), 0.5)
    x[0, 0, 0, 0] = 1 + RANGE_TOL / 2
    x[1, 0, 0, 0] = -RANGE_TOL / 2
    out = as_image_batch(x)
    assert out.max() == 1.0 and out.min() == 0.0
    x[0, 0, 0, 0] = 1 + 10 * RANGE_TOL
    with pytest.raises(ValueError, match="images"):
        as_image_batch(x)


@pytest.mark.parametrize(
    ("images", "fragments"),
    [
        (torch.rand(4, 4), ["images", "(N, C, H, W)", "(4, 4)", "x[None]"]),
        (torch.rand(2, 1, 1, 4, 4), ["images", "(N, C, H, W)", "(2, 1, 1, 4, 4)"]),
        (torch.rand(2, 2, 4, 4), ["images", "C in {1, 3}", "(2, 2, 4, 4)"]),
        (torch.rand(2, 8, 8, 3), ["images", "channels-last", "permute(0, 3, 1, 2)"]),
        (torch.rand(2, 1, 4, 4) * 2 - 1, ["images", "[0, 1]", "(x + 1) / 2", "torch.float32"]),
        (np.full((2, 1, 4, 4), 200.0), ["images", "[0, 1]", "200", "x / 255"]),
        (torch.zeros(0, 1, 4, 4), ["images", "at least one", "(0, 1, 4, 4)"]),
        (torch.randint(0, 255, (2, 1, 4, 4)), ["images", "uint8", "torch.int64"]),
        (np.zeros((2, 1, 4, 4), dtype=bool), ["images", "uint8", "bool"]),
    ],
)
def test_bad_images_raise_value_error_saying_what_came_and_what_is_expected(images, fragments):
    with pytest.raises(ValueError) as err:
        make_grid(images)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_nan_and_inf_are_refused_with_counts():
    x = torch.rand(3, 1, 4, 4)
    x[0, 0, 0, 0] = float("nan")
    x[1, 0, 0, 0] = float("nan")
    x[2, 0, 1, 1] = float("inf")
    with pytest.raises(ValueError, match=r"images must be finite; got 2 NaN and 1 infinite"):
        show_images(x)


def test_non_array_input_is_a_type_error():
    with pytest.raises(TypeError, match="images must be a torch.Tensor or np.ndarray"):
        make_grid([[0.0, 1.0]])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"nrow": 0}, "nrow"), ({"padding": -1}, "padding"), ({"pad_value": 2.0}, "pad_value")],
)
def test_bad_layout_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_grid(torch.rand(2, 1, 3, 3), **kwargs)


def test_show_images_draws_the_grid_with_title_and_labels():
    x = torch.rand(6, 1, 5, 5, generator=torch.Generator().manual_seed(2))
    ax = show_images(x, nrow=3, title="six digits", labels=[0, 1, 2, 3, 4, torch.tensor(5)])
    assert isinstance(ax, Axes)
    assert ax.get_title() == "six digits"
    assert not ax.axison
    (im,) = ax.images
    np.testing.assert_allclose(im.get_array(), make_grid(x, nrow=3)[0].numpy())
    assert im.get_cmap().name == "gray" and im.get_clim() == (0.0, 1.0)
    assert [t.get_text() for t in ax.texts] == ["0", "1", "2", "3", "4", "5"]
    # label k sits in the top-left corner of image k (row k // 3, column k % 3)
    for k, t in enumerate(ax.texts):
        x0, y0 = t.get_position()
        assert (x0 - 2.5, y0 - 2.5) == ((k % 3) * 7, (k // 3) * 7)


def test_show_images_rgb_on_a_given_axes():
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    x = np.random.default_rng(0).integers(0, 256, (4, 3, 4, 4), dtype=np.uint8)
    out = show_images(x, nrow=2, ax=ax)
    assert out is ax
    arr = ax.images[0].get_array()
    assert arr.shape == (2 * 6 + 2, 2 * 6 + 2, 3)
    np.testing.assert_allclose(arr, make_grid(x, nrow=2).transpose(1, 2, 0), atol=1e-7)


def test_labels_must_match_the_number_of_images():
    with pytest.raises(ValueError, match=r"labels must have one entry per image \(3\); got 2"):
        show_images(torch.rand(3, 1, 4, 4), labels=["a", "b"])


def test_save_grid_pixel_size_follows_figsize_and_dpi(tmp_path):
    x = torch.rand(4, 1, 8, 8)
    # grid 2 x 2 of 8x8 with padding 2: 22 x 22 grid pixels; 0.8 in / 8 px = 0.1 in per pixel
    path = save_grid(x, tmp_path / "g.png", nrow=2, cell_inches=0.8, dpi=100)
    assert Image.open(path).size == (220, 220)
    titled = save_grid(x, tmp_path / "t.png", nrow=2, cell_inches=0.8, dpi=100, title="t")
    assert Image.open(titled).size == (220, 220 + round(TITLE_INCHES * 100))
    assert grid_figsize(4, 8, 8, nrow=2, cell_inches=0.8) == pytest.approx((2.2, 2.2))


def test_save_grid_default_is_legible_and_capped_in_width(tmp_path):
    x = torch.rand(16, 1, 28, 28)
    # 4 x 4 MNIST digits: 122 grid pixels, each digit 1 inch = 150 px along its 28 pixels
    path = save_grid(x, tmp_path / "mnist.png", nrow=4, title="16 digits")
    w, h = Image.open(path).size
    assert w == round(122 / 28 * 150) == 654
    assert h == 654 + 60
    # 8 x 8 digits would be 8.6 inches and 20 per row 21.5 inches: both are shrunk to the
    # default cap of 7 inches (1050 px), the width of the book's text column, so a figure is
    # never scaled down (and its labels never shrink) when the book shows it
    square = save_grid(torch.rand(64, 1, 28, 28), tmp_path / "square.png")
    assert Image.open(square).size == (1050, 1050)
    wide = save_grid(torch.rand(100, 1, 28, 28), tmp_path / "wide.png", nrow=20)
    assert Image.open(wide).size[0] == 1050


def test_save_grid_pixels_are_the_grid_upscaled(tmp_path):
    # each grid pixel becomes a 10 x 10 block of the PNG; block centres hold its grey level
    x8 = torch.randint(0, 256, (4, 1, 8, 8), generator=torch.Generator().manual_seed(3))
    x8 = x8.to(torch.uint8)
    path = save_grid(x8, tmp_path / "g.png", nrow=2, cell_inches=0.8, dpi=100)
    png = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    grid = make_grid(x8, nrow=2)[0].numpy() * 255
    centres = png[5::10, 5::10]
    assert centres.shape == grid.shape
    np.testing.assert_allclose(centres, grid, atol=1.5)


def test_save_grid_refuses_other_formats_and_creates_folders(tmp_path):
    with pytest.raises(ValueError, match=r"path must end in \.png"):
        save_grid(torch.rand(2, 1, 4, 4), tmp_path / "g.jpg")
    out = save_grid(torch.rand(2, 1, 4, 4), tmp_path / "a" / "b" / "g.png")
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
