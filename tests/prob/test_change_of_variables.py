"""Change of variables: pushed-forward densities match known distributions and integrate to 1
on a grid; log|det J| by autograd matches the analytic value, with gradients."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from genlib.prob import log_abs_det_jacobian, log_normal, log_normal_diag, pushforward_log_prob

F64 = torch.float64


def std_normal_1d(z):
    return log_normal(z, 0.0, 1.0)


def std_normal_2d(z):
    return log_normal_diag(z)


# --------------------------------------------------------------------------------------- 1D
def test_exp_of_a_gaussian_is_log_normal_and_integrates_to_one():
    x = torch.exp(torch.linspace(-12, 7, 4001, dtype=F64))               # (0, 1100], dense near 0
    log_p = pushforward_log_prob(std_normal_1d, torch.log, x)
    ref = torch.from_numpy(stats.lognorm(s=1.0).logpdf(x.numpy()))
    torch.testing.assert_close(log_p, ref, rtol=1e-12, atol=1e-12)
    assert torch.trapezoid(log_p.exp(), x).item() == pytest.approx(1.0, abs=1e-5)


def test_affine_map_of_a_gaussian():
    # X = 2 Z + 1  ->  N(1, 4); f^{-1}(x) = (x - 1) / 2, log|det| = -log 2
    x = torch.linspace(-15, 17, 4001, dtype=F64)
    log_p = pushforward_log_prob(std_normal_1d, lambda t: (t - 1) / 2, x)
    torch.testing.assert_close(log_p, log_normal(x, 1.0, 2.0))
    torch.testing.assert_close(log_abs_det_jacobian(lambda t: (t - 1) / 2, x),
                               torch.full_like(x, -math.log(2)))
    assert torch.trapezoid(log_p.exp(), x).item() == pytest.approx(1.0, abs=1e-9)


def test_sigmoid_and_logit_pair():
    # X = sigmoid(Z), Z ~ N(0, 1.5^2): the logit-normal on (0, 1); f^{-1} = logit
    x = torch.linspace(1e-9, 1 - 1e-9, 200_001, dtype=F64)
    log_p = pushforward_log_prob(lambda z: log_normal(z, 0.0, 1.5), torch.logit, x)
    expected = log_normal(torch.logit(x), 0.0, 1.5) - torch.log(x) - torch.log1p(-x)
    torch.testing.assert_close(log_p, expected)
    assert torch.trapezoid(log_p.exp(), x).item() == pytest.approx(1.0, abs=1e-6)
    # X = logit(U), U ~ Uniform(0, 1): the standard logistic; f^{-1} = sigmoid. Its autograd
    # derivative sigma (1 - sigma) loses relative precision as sigma -> 1 (and is 0 beyond
    # |t| ~ 37 in float64), so compare on |t| <= 15; the mass beyond |t| = 30 is below e^-30.
    t = torch.linspace(-30, 30, 60_001, dtype=F64)
    log_q = pushforward_log_prob(torch.zeros_like, torch.sigmoid, t)
    inner = t.abs() <= 15
    torch.testing.assert_close(log_q[inner],
                               torch.from_numpy(stats.logistic.logpdf(t[inner].numpy())))
    assert torch.trapezoid(log_q.exp(), t).item() == pytest.approx(1.0, abs=1e-9)


# --------------------------------------------------------------------------------------- 2D
A = torch.tensor([[1.5, 0.8], [-0.4, 0.7]], dtype=F64)       # not diagonal, det = 1.37
B = torch.tensor([0.5, -1.0], dtype=F64)


def grid_2d(lo, hi, n):
    t = torch.linspace(lo, hi, n, dtype=F64)
    xx, yy = torch.meshgrid(t, t, indexing="ij")
    return t, torch.stack([xx.flatten(), yy.flatten()], 1)


def integrate_2d(t, density):
    """Trapezoid rule over a square grid: integrate over y, then over x."""
    n = t.shape[0]
    return torch.trapezoid(torch.trapezoid(density.reshape(n, n), t, dim=1), t).item()


def test_2d_affine_map_matches_the_gaussian_it_should_be_and_integrates_to_one():
    t, x = grid_2d(-9, 9, 301)
    inverse = lambda v: (v - B) @ torch.linalg.inv(A).T                # noqa: E731
    log_p = pushforward_log_prob(std_normal_2d, inverse, x)
    ref = stats.multivariate_normal(B.numpy(), (A @ A.T).numpy()).logpdf(x.numpy())
    torch.testing.assert_close(log_p, torch.from_numpy(ref))
    assert integrate_2d(t, log_p.exp()) == pytest.approx(1.0, abs=1e-6)


def coupling(z):
    """x1 = z1, x2 = z2 exp(s(z1)) + t(z1): an affine coupling layer (RealNVP) with
    s = 0.5 tanh, t = z1^2 / 2. Its inverse and log-det are known in closed form."""
    z1, z2 = z[:, 0], z[:, 1]
    return torch.stack([z1, z2 * torch.exp(0.5 * torch.tanh(z1)) + 0.5 * z1**2], 1)


def coupling_inverse(x):
    x1, x2 = x[:, 0], x[:, 1]
    return torch.stack([x1, (x2 - 0.5 * x1**2) * torch.exp(-0.5 * torch.tanh(x1))], 1)


def test_nonlinear_coupling_map():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(50, 2, generator=g, dtype=F64)
    torch.testing.assert_close(coupling_inverse(coupling(z)), z)
    x = coupling(z)
    # analytic: log|det J_f(z)| = s(z1), log|det J_{f^-1}(x)| = -s(x1)
    torch.testing.assert_close(log_abs_det_jacobian(coupling, z), 0.5 * torch.tanh(z[:, 0]))
    torch.testing.assert_close(log_abs_det_jacobian(coupling_inverse, x),
                               -0.5 * torch.tanh(x[:, 0]))
    # the density integrates to one (the banana reaches x2 ~ 40 at x1 = 9)
    t, grid = grid_2d(-10, 55, 651)
    log_p = pushforward_log_prob(std_normal_2d, coupling_inverse, grid)
    assert integrate_2d(t, log_p.exp()) == pytest.approx(1.0, abs=1e-4)
    # and log p_X(f(z)) = log p_Z(z) - log|det J_f(z)|
    torch.testing.assert_close(pushforward_log_prob(std_normal_2d, coupling_inverse, x),
                               std_normal_2d(z) - 0.5 * torch.tanh(z[:, 0]))


@pytest.mark.parametrize("D", [2, 3, 6])
def test_log_abs_det_jacobian_of_an_affine_map_is_log_abs_det_of_its_matrix(D):
    g = torch.Generator().manual_seed(D)
    M = torch.randn(D, D, generator=g, dtype=F64)
    x = torch.randn(7, D, generator=g, dtype=F64)
    got = log_abs_det_jacobian(lambda v: v @ M.T + 1.0, x)
    torch.testing.assert_close(got, torch.full((7,), torch.det(M).abs().log().item(), dtype=F64))


def test_gradient_flows_to_parameters_of_the_map():
    """d log|det M| / dM = M^{-T}: training a flow needs this gradient."""
    M = torch.tensor([[2.0, 0.3], [0.1, 1.0]], dtype=F64, requires_grad=True)
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    log_abs_det_jacobian(lambda v: v @ M.T, x).sum().backward()
    torch.testing.assert_close(M.grad, 3 * torch.linalg.inv(M.detach()).T)


def test_bad_input():
    with pytest.raises(ValueError, match=r"x must have shape \(B, D\).*\(2, 2, 2\)"):
        log_abs_det_jacobian(torch.exp, torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match=r"fn must map a batch.*\(1, 3\)"):
        log_abs_det_jacobian(lambda v: torch.cat([v, v], 1), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"base_log_prob must return one value per point.*"
                                         r"\[4, 2\]"):
        pushforward_log_prob(lambda z: z, torch.exp, torch.zeros(4, 2))
    with pytest.raises(TypeError, match="floating"):
        log_abs_det_jacobian(torch.exp, torch.zeros(4, 2, dtype=torch.long))
