"""genlib.viz.density2d: the grid a density is evaluated on, its orientation, mass and checks."""

import math

import numpy as np
import pytest
import torch

from genlib.viz.density2d import density_grid, plot_density_2d, plot_samples_2d


def gaussian_log_prob(mu=(0.0, 0.0), sigma=1.0):
    mu_t = torch.tensor(mu)

    def log_prob(x):  # x (M, 2) -> (M,)
        return -((x - mu_t) ** 2).sum(-1) / (2 * sigma**2) - math.log(2 * math.pi * sigma**2)

    return log_prob


def test_function_is_called_on_the_cell_centres_it_reports():
    seen = []

    def log_prob(x):
        seen.append(x.clone())
        return torch.zeros(x.shape[0])

    xs, ys, p = density_grid(log_prob, (-1.0, 3.0), (0.0, 2.0), n=4)
    np.testing.assert_allclose(xs, [-0.5, 0.5, 1.5, 2.5])  # cells of width 1, centres
    np.testing.assert_allclose(ys, [0.25, 0.75, 1.25, 1.75])
    (pts,) = seen
    assert pts.shape == (16, 2) and pts.dtype == torch.float32
    # row i of the grid is y = ys[i]; column j is x = xs[j]
    grid_pts = pts.reshape(4, 4, 2).double().numpy()
    np.testing.assert_allclose(grid_pts[..., 0], np.broadcast_to(xs, (4, 4)), atol=1e-6)
    np.testing.assert_allclose(grid_pts[..., 1], np.broadcast_to(ys[:, None], (4, 4)), atol=1e-6)
    np.testing.assert_array_equal(p, np.ones((4, 4)))


def test_standard_gaussian_peaks_at_the_centre_and_integrates_to_one():
    n = 101
    ax = plot_density_2d(gaussian_log_prob(), (-5, 5), (-5, 5), n=n, dtype=torch.float64)
    (im,) = ax.images
    p = np.asarray(im.get_array())
    assert p.shape == (n, n)
    assert np.unravel_index(np.argmax(p), p.shape) == (50, 50)
    np.testing.assert_allclose(p[50, 50], 1 / (2 * math.pi), rtol=1e-12)
    cell = (10 / n) ** 2
    assert abs(p.sum() * cell - 1.0) < 1e-3  # mass outside the box is ~1e-6
    assert tuple(im.get_extent()) == (-5, 5, -5, 5) and im.origin == "lower"


def test_image_orientation_maps_the_peak_back_to_its_location():
    mu = (1.5, -2.0)
    xlim, ylim, n = (-4.0, 4.0), (-3.0, 1.0), 160
    ax = plot_density_2d(gaussian_log_prob(mu, sigma=0.3), xlim, ylim, n=n)
    im = ax.images[0]
    p = np.asarray(im.get_array())
    i, j = np.unravel_index(np.argmax(p), p.shape)
    x0, x1, y0, y1 = im.get_extent()
    # origin="lower": row i spans y0 + [i, i + 1] * dy, column j spans x0 + [j, j + 1] * dx
    x = x0 + (j + 0.5) * (x1 - x0) / n
    y = y0 + (i + 0.5) * (y1 - y0) / n
    assert abs(x - mu[0]) <= (x1 - x0) / n and abs(y - mu[1]) <= (y1 - y0) / n
    assert ax.get_xlim() == xlim and ax.get_ylim() == ylim
    assert ax.get_xlabel() == "$x_1$" and ax.get_ylabel() == "$x_2$"


def test_batch_size_chunks_the_calls_without_changing_the_result():
    calls = []
    base = gaussian_log_prob((0.3, 0.1))

    def log_prob(x):
        calls.append(x.shape[0])
        return base(x)

    _, _, whole = density_grid(log_prob, (-2, 2), (-2, 2), n=30)
    calls.clear()
    _, _, chunked = density_grid(log_prob, (-2, 2), (-2, 2), n=30, batch_size=256)
    assert calls == [256] * 3 + [900 - 3 * 256]
    np.testing.assert_array_equal(whole, chunked)


def test_column_output_is_accepted_and_minus_inf_is_zero_density():
    def log_prob(x):
        out = torch.zeros(x.shape[0], 1)
        out[x[:, 0] < 0] = -float("inf")  # no mass on the left half
        return out

    xs, _, p = density_grid(log_prob, (-1, 1), (-1, 1), n=10)
    assert np.all(p[:, xs < 0] == 0) and np.all(p[:, xs > 0] == 1)


@pytest.mark.parametrize(
    ("fn", "kwargs", "match"),
    [
        (lambda x: x, {}, r"log_prob_fn must map points \(100, 2\) .* got shape \(100, 2\)"),
        (lambda x: torch.full((x.shape[0],), float("nan")), {}, "log_prob_fn returned NaN"),
        (lambda x: x[:, 0], {"xlim": (1, -1)}, "xlim must be finite with low < high"),
        (lambda x: x[:, 0], {"ylim": (0, "a")}, "ylim must be a pair"),
        (lambda x: x[:, 0], {"n": 1}, r"n \(grid cells per axis\) must be an int >= 2"),
        (lambda x: x[:, 0], {"kind": "surface"}, "kind must be one of"),
    ],
)
def test_bad_density_arguments(fn, kwargs, match):
    args = {"xlim": (-1, 1), "ylim": (-1, 1), "n": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        plot_density_2d(fn, **args)


def test_contour_and_colorbar():
    ax = plot_density_2d(gaussian_log_prob(), (-3, 3), (-3, 3), n=50, kind="both", colorbar=True)
    assert len(ax.images) == 1
    assert len(ax.collections) >= 1  # the ContourSet
    assert len(ax.figure.axes) == 2  # plus the colorbar
    ax2 = plot_density_2d(gaussian_log_prob(), (-3, 3), (-3, 3), n=50, kind="contour")
    assert len(ax2.images) == 0 and len(ax2.collections) >= 1


def test_plot_samples_2d_draws_the_points():
    pts = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    ax = plot_samples_2d(pts, title="data", s=6, alpha=0.3, color="C1", label="data")
    (sc,) = ax.collections
    np.testing.assert_allclose(sc.get_offsets(), pts.numpy(), rtol=1e-6)
    assert sc.get_alpha() == 0.3 and list(sc.get_sizes()) == [6]
    assert ax.get_title() == "data" and ax.get_aspect() == 1.0
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["data"]
    # drawn on top of a density on the same axes
    ax = plot_density_2d(gaussian_log_prob(), (-3, 3), (-3, 3), n=20)
    assert plot_samples_2d(pts.numpy(), ax=ax, xlim=(-3, 3)) is ax
    assert len(ax.images) == 1 and len(ax.collections) == 1


@pytest.mark.parametrize(
    ("points", "exc", "match"),
    [
        (torch.zeros(10, 3), ValueError, r"points must have shape \(N, 2\).*\(10, 3\)"),
        (np.zeros(10), ValueError, r"points must have shape \(N, 2\).*\(10,\)"),
        (torch.tensor([[0.0, float("nan")], [1.0, 1.0]]), ValueError, "1 of 2 rows with NaN"),
        ([[0.0, 1.0]], TypeError, "points must be a torch.Tensor or np.ndarray"),
        (np.array([["a", "b"]]), ValueError, "points must hold real numbers"),
    ],
)
def test_bad_points(points, exc, match):
    with pytest.raises(exc, match=match):
        plot_samples_2d(points)
