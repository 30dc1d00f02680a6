"""genlib.diffusion.flow: the straight path's endpoints, the loss at the exact conditional field,
ODE solvers on fields they integrate exactly and on their orders of accuracy, Gaussian data
recovered with the exact marginal field, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from genlib.diffusion import flow_matching_loss, flow_path, sample_euler, sample_heun

F64 = torch.float64


def test_flow_path_endpoints_midpoint_and_velocity():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(4, 3, 2, generator=g, dtype=F64), torch.randn(4, 3, 2, generator=g,
                                                                       dtype=F64)
    x_t, u = flow_path(x0, x1, 0.0)
    torch.testing.assert_close(x_t, x0)
    torch.testing.assert_close(u, x1 - x0)
    torch.testing.assert_close(flow_path(x0, x1, 1.0)[0], x1)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=F64)
    x_t, _ = flow_path(x0, x1, t)
    for i, ti in enumerate(t.tolist()):
        torch.testing.assert_close(x_t[i], (1 - ti) * x0[i] + ti * x1[i])
    # u is the time derivative of the path
    h = 1e-6
    fd = (flow_path(x0, x1, 0.3 + h)[0] - flow_path(x0, x1, 0.3 - h)[0]) / (2 * h)
    torch.testing.assert_close(fd, x1 - x0, rtol=1e-6, atol=1e-8)


def test_loss_is_zero_for_the_exact_field_of_a_single_point():
    """Data = {c}: given x_t and t, the noise is x0 = (x_t - t c) / (1 - t), so the marginal
    field is u(x, t) = c - x0 = (c - x) / (1 - t) and its loss is 0; any other field's is not."""
    c = torch.tensor([1.5, -0.5, 2.0], dtype=F64)
    x1 = c.expand(256, 3)
    g = torch.Generator().manual_seed(1)
    exact = lambda x, t: (c - x) / (1 - t)[:, None]  # noqa: E731
    loss = flow_matching_loss(exact, x1, generator=g)
    assert loss.shape == (256,)
    torch.testing.assert_close(loss, torch.zeros(256, dtype=F64), rtol=0, atol=1e-20)
    wrong = lambda x, t: 1.01 * (c - x) / (1 - t)[:, None]  # noqa: E731
    assert (flow_matching_loss(wrong, x1, generator=g) > 0).all()


def test_loss_is_the_hand_written_mse_with_reproducible_draws():
    x1 = torch.randn(5, 2, 2, dtype=F64)
    t = torch.rand(5, dtype=F64)
    noise = torch.randn(5, 2, 2, dtype=F64)
    model = lambda x, t: torch.sin(x) * t[:, None, None]  # noqa: E731
    x_t = (1 - t)[:, None, None] * noise + t[:, None, None] * x1
    expected = ((model(x_t, t) - (x1 - noise)) ** 2).mean(dim=(1, 2))
    torch.testing.assert_close(flow_matching_loss(model, x1, t=t, noise=noise), expected)
    # default draws: t ~ U[0, 1) first, then the noise, on the generator
    g = torch.Generator().manual_seed(2)
    t_g = torch.rand(5, generator=g, dtype=F64)
    noise_g = torch.randn(5, 2, 2, generator=g, dtype=F64)
    torch.testing.assert_close(
        flow_matching_loss(model, x1, generator=torch.Generator().manual_seed(2)),
        flow_matching_loss(model, x1, t=t_g, noise=noise_g))


def test_drawn_times_are_uniform():
    seen = []

    def model(x, t):
        seen.append(t)
        return x * 0

    n = 40_000
    flow_matching_loss(model, torch.zeros(n, 1), generator=torch.Generator().manual_seed(3))
    t = seen[0]
    assert t.dtype == torch.float32 and t.min() >= 0 and t.max() < 1
    assert abs(t.mean().item() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    counts = torch.histc(t, bins=10, min=0, max=1)
    assert ((counts - n / 10).abs() < 5 * math.sqrt(n / 10)).all()


# ------------------------------------------------------------------------------- solvers


@pytest.mark.parametrize("sampler", [sample_euler, sample_heun])
@pytest.mark.parametrize("steps", [1, 3, 8])
def test_constant_field_is_integrated_exactly(sampler, steps):
    c = torch.tensor([[0.3, -2.0]], dtype=F64)
    x_0 = torch.randn(6, 2, dtype=F64)
    out = sampler(lambda x, t: c.expand_as(x), x_0, steps=steps)
    torch.testing.assert_close(out, x_0 + c, rtol=0, atol=1e-14)


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_heun_is_exact_for_a_field_affine_in_t_and_euler_is_first_order(steps):
    """dx/dt = a + b t: x(1) = x(0) + a + b / 2. Heun (trapezoid) is exact; Euler's left sums
    give a + b (1 - h) / 2, an error of exactly -b h / 2."""
    a = torch.tensor([[1.0, -0.5]], dtype=F64)
    b = torch.tensor([[2.0, 3.0]], dtype=F64)
    x_0 = torch.randn(4, 2, dtype=F64)

    def field(x, t):
        return a + b * t[:, None]

    torch.testing.assert_close(sample_heun(field, x_0, steps=steps), x_0 + a + b / 2,
                               rtol=0, atol=1e-14)
    h = 1.0 / steps
    torch.testing.assert_close(sample_euler(field, x_0, steps=steps), x_0 + a + b / 2 - b * h / 2,
                               rtol=0, atol=1e-14)


def test_orders_of_accuracy_on_a_linear_ode():
    """dx/dt = -x, x(1) = x(0) / e: halving h halves Euler's error and quarters Heun's."""
    x_0 = torch.ones(1, 1, dtype=F64)
    field = lambda x, t: -x  # noqa: E731

    def err(sampler, n):
        return (sampler(field, x_0, steps=n) - math.exp(-1)).abs().item()

    assert err(sample_euler, 40) / err(sample_euler, 80) == pytest.approx(2.0, rel=0.02)
    assert err(sample_heun, 40) / err(sample_heun, 80) == pytest.approx(4.0, rel=0.02)


@pytest.mark.parametrize("sampler,steps", [(sample_heun, 20), (sample_euler, 200)])
def test_exact_marginal_field_carries_noise_to_gaussian_data(sampler, steps):
    """Data N(mu, diag sd^2): x_t ~ N(t mu, (1 - t)^2 + t^2 sd^2) and the marginal field is
    E[x1 - x0 | x_t] = mu + (t sd^2 - (1 - t)) (x_t - t mu) / var_t. Its flow maps N(0, I) to the
    data (samples within 4.5 standard errors of mean and variance)."""
    mu = torch.tensor([0.5, -1.0], dtype=F64)
    sd = torch.tensor([0.3, 0.8], dtype=F64)

    def field(x, t):
        t = t[:, None]
        var = (1 - t) ** 2 + t**2 * sd**2
        return mu + (t * sd**2 - (1 - t)) * (x - t * mu) / var

    n = 20_000
    x_0 = torch.randn(n, 2, dtype=F64, generator=torch.Generator().manual_seed(4))
    x = sampler(field, x_0, steps=steps)
    assert (((x.mean(0) - mu) / (sd / math.sqrt(n))).abs() < 4.5).all()
    assert ((x.var(0) / sd**2 - 1).abs() < 4.5 * math.sqrt(2 / n)).all()


@pytest.mark.parametrize("sampler,evals", [(sample_euler, 1), (sample_heun, 2)])
def test_callback_and_model_times(sampler, evals):
    times, infos = [], []

    def field(x, t):
        assert t.dtype == x.dtype and t.shape == (x.shape[0],)
        times.append(t[0].item())
        return torch.ones_like(x)

    x_0 = torch.zeros(3, 2)
    sampler(field, x_0, steps=4, callback=infos.append)
    assert len(times) == 4 * evals
    assert times[::evals] == [0.0, 0.25, 0.5, 0.75]
    if evals == 2:
        assert times[1::2] == [0.25, 0.5, 0.75, 1.0]
    assert [i["i"] for i in infos] == [0, 1, 2, 3]
    assert [i["t"] for i in infos] == [0.0, 0.25, 0.5, 0.75]
    # x1_pred = x + (1 - t) v: for a constant unit field it is the final point, 1, at every step
    for info in infos:
        torch.testing.assert_close(info["x1_pred"], torch.ones(3, 2))
        assert info["v"].shape == info["x"].shape == (3, 2)


# ------------------------------------------------------------------------------- bad input


def test_flow_errors():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]; got \[1.5"):
        flow_path(x, x, torch.tensor([0.0, 0.5, 1.5]))
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        flow_path(x, x, -0.1)
    with pytest.raises(TypeError, match=r"t must be a float tensor of times in \[0, 1\]; got "
                                        r"dtype torch.int64"):
        flow_path(x, x, torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match=r"t must have shape \(B,\) = \(3,\)"):
        flow_path(x, x, torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"x1 must have the shape of x0, \(3, 2\); got \(3, 1\)"):
        flow_path(x, torch.zeros(3, 1), 0.5)
    with pytest.raises(ValueError, match=r"model must return a velocity of x1's shape"):
        flow_matching_loss(lambda x, t: t, x)
    with pytest.raises(ValueError, match=r"noise must have the shape of x1, \(3, 2\); got \(3,\)"):
        flow_matching_loss(lambda x, t: x, x, noise=torch.zeros(3))
    for sampler in (sample_euler, sample_heun):
        for steps in (0, -1, 2.5, True):
            with pytest.raises(ValueError, match=r"steps must be an integer >= 1.*got"):
                sampler(lambda x, t: x, x, steps=steps)
        with pytest.raises(ValueError, match=r"model must return a velocity of x_0's shape "
                                             r"\(3, 2\); got \(3,\)"):
            sampler(lambda x, t: t, x, steps=2)
        with pytest.raises(ValueError, match=r"x_0 must be a floating-point tensor"):
            sampler(lambda x, t: x, torch.zeros(3, 2, dtype=torch.int64), steps=2)
        with pytest.raises(TypeError, match=r"callback must be callable or None"):
            sampler(lambda x, t: x, x, steps=2, callback=1)
