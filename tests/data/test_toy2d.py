"""toy2d: each distribution is the one its table says, checked against closed forms."""

import math

import pytest
import torch

from genlib.data.toy2d import CURVE_STD, MODE_STD, TOY2D_NAMES, toy2d, toy2d_modes

HALF_NORMAL_MEAN = math.sqrt(2.0 / math.pi)  # E|Z| for Z ~ N(0, 1)


@pytest.mark.parametrize("name", TOY2D_NAMES)
def test_reproducible_with_a_seed_and_different_with_another(name):
    a = toy2d(name, 500, seed=7)
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, toy2d(name, 500, seed=7))
    assert not torch.equal(a, toy2d(name, 500, seed=8))
    assert torch.equal(toy2d(name, 50), toy2d(name, 50, seed=0))  # default seed is 0
    g = torch.Generator().manual_seed(7)
    first = toy2d(name, 500, generator=g)
    assert torch.equal(first, a)  # a generator seeded alike gives the same points
    assert not torch.equal(toy2d(name, 500, generator=g), first)  # and then moves on


def _check_binomial_counts(counts: torch.Tensor, n: int) -> None:
    """Each of K equally likely cells holds n/K points, within 5 binomial standard deviations."""
    k = len(counts)
    sd = math.sqrt(n * (1 / k) * (1 - 1 / k))
    assert counts.sum() == n
    assert (counts.float() - n / k).abs().max() < 5 * sd, counts


@pytest.mark.parametrize(("name", "k"), [("ring", 8), ("grid", 25)])
def test_mixtures_sit_on_their_modes(name, k):
    modes = toy2d_modes(name)
    assert modes.shape == (k, 2)
    if name == "ring":
        assert torch.allclose(modes.norm(dim=1), torch.full((k,), 2.0))
        assert torch.allclose(modes[2], torch.tensor([0.0, 2.0]), atol=1e-6)
    n = 20_000
    x = toy2d(name, n, seed=1)
    dist, nearest = torch.cdist(x, modes).min(dim=1)
    assert dist.max() < 6 * MODE_STD  # P(|N2| > 6 sigma) = exp(-18) per point
    # ||x - mu||^2 / sigma^2 ~ chi^2 with 2 degrees of freedom: mean 2, sd 2 / sqrt(n)
    assert abs((dist**2).mean().item() / MODE_STD**2 - 2.0) < 0.05
    _check_binomial_counts(torch.bincount(nearest, minlength=k), n)


def test_gaussian_is_standard_normal():
    x = toy2d("gaussian", 40_000, seed=2).double()
    assert x.mean(dim=0).abs().max() < 0.03  # sd of the mean: 0.005
    assert torch.allclose(torch.cov(x.T), torch.eye(2, dtype=torch.float64), atol=0.04)


def _arc_distance(x: torch.Tensor, centre: tuple[float, float], upper: bool) -> torch.Tensor:
    """Distance from points to the upper (y >= c_y) or lower half of the circle of radius 2."""
    c = torch.tensor(centre)
    d = x - c
    on_side = d[:, 1] >= 0 if upper else d[:, 1] <= 0
    to_circle = (d.norm(dim=1) - 2.0).abs()
    ends = torch.stack([c + torch.tensor([2.0, 0.0]), c - torch.tensor([2.0, 0.0])])
    to_ends = torch.cdist(x, ends).min(dim=1).values
    return torch.where(on_side, to_circle, to_ends)


def test_moons_lie_on_two_half_circles_with_the_stated_noise():
    n = 20_000
    x = toy2d("moons", n, seed=3)
    up = _arc_distance(x, (-1.0, -0.5), upper=True)
    down = _arc_distance(x, (1.0, 0.5), upper=False)
    dist = torch.minimum(up, down)
    assert dist.max() < 6 * CURVE_STD
    # isotropic noise of std s around a curve of radius >> s: the distance is half-normal
    assert abs(dist.mean().item() / (CURVE_STD * HALF_NORMAL_MEAN) - 1) < 0.05
    _check_binomial_counts(torch.bincount((up < down).long(), minlength=2), n)
    # the two moons interleave: each reaches into the other's x range
    assert x[up < down, 0].max() > 0.9 and x[up >= down, 0].min() < -0.9


def test_spiral_lies_on_two_arms_with_the_stated_noise():
    n = 3000
    x = toy2d("spiral", n, seed=4)
    theta = torch.linspace(0, 3 * math.pi, 6000)
    r = theta / math.pi
    arms = [
        torch.stack([r * torch.cos(theta + a), r * torch.sin(theta + a)], dim=1)
        for a in (0.0, math.pi)
    ]
    d0, d1 = (torch.cdist(x, arm).min(dim=1).values for arm in arms)
    dist = torch.minimum(d0, d1)
    assert dist.max() < 6 * CURVE_STD
    assert abs(dist.mean().item() / (CURVE_STD * HALF_NORMAL_MEAN) - 1) < 0.1
    _check_binomial_counts(torch.bincount((d1 < d0).long(), minlength=2), n)
    # uniform along the arc: the radius (arc length ~ r^2) has P(r <= 1.5) = (1.5 / 3)^2
    assert abs((x.norm(dim=1) <= 1.5).float().mean().item() - 0.25) < 0.03


def test_checkerboard_points_fall_in_black_squares_uniformly():
    n = 16_000
    x = toy2d("checkerboard", n, seed=5)
    assert x.min() >= -2 and x.max() <= 2
    cell = torch.floor(x).long()
    assert ((cell.sum(dim=1) % 2) == 0).all()  # black: floor(x) + floor(y) even
    square = (cell[:, 0] + 2) * 4 + (cell[:, 1] + 2)  # 0..15
    counts = torch.bincount(square, minlength=16)
    assert (counts[counts > 0].numel()) == 8
    _check_binomial_counts(counts[counts > 0], n)
    frac = (x - torch.floor(x)).double()  # uniform in the unit square: mean 1/2, var 1/12
    assert (frac.mean(dim=0) - 0.5).abs().max() < 0.01
    assert (frac.var(dim=0) - 1 / 12).abs().max() < 0.005


def test_device_argument_and_bad_inputs():
    assert toy2d("ring", 3, device="cpu").device.type == "cpu"
    with pytest.raises(ValueError, match=r"name .*must be one of .*'ring'.*got 'rings'"):
        toy2d("rings", 10)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=r"n must be an integer >= 1; got"):
            toy2d("ring", bad)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        toy2d("ring", 10, seed=-1)
    with pytest.raises(ValueError, match="either seed or generator"):
        toy2d("ring", 10, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match=r"name .*must be one of 'ring', 'grid'; got 'moons'"):
        toy2d_modes("moons")
