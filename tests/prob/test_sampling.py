"""Sampling: inverse-CDF draws pass a KS test, rejection sampling hits the target's moments and
the 1/M acceptance rate, reparameterised draws have the right moments and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from genlib.prob import mc_mean, rejection_sample, reparameterize, sample_inverse_cdf


def test_inverse_cdf_samples_of_an_exponential_pass_a_ks_test():
    rate = 1.7
    x = sample_inverse_cdf(lambda u: -torch.log1p(-u) / rate, 20_000,
                           generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert x.shape == (20_000,) and x.dtype == torch.float64
    assert stats.kstest(x.numpy(), stats.expon(scale=1 / rate).cdf).pvalue > 0.001
    # and a test that can tell: the same draws are not Exponential(2 * rate)
    assert stats.kstest(x.numpy(), stats.expon(scale=0.5 / rate).cdf).pvalue < 1e-6


def test_inverse_cdf_uniforms_are_in_the_open_interval_and_reproducible():
    u = sample_inverse_cdf(lambda u: u, 100_000, generator=torch.Generator().manual_seed(1))
    assert u.dtype == torch.float32 and 0 < u.min() and u.max() < 1
    again = sample_inverse_cdf(lambda u: u, 100_000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(u, again)
    # the normal's inverse CDF never returns -inf
    z = sample_inverse_cdf(torch.special.ndtri, 100_000, generator=torch.Generator().manual_seed(2))
    assert torch.isfinite(z).all()


BETA_A, BETA_B = 2, 5
LOG_NORM = math.log(30.0)                      # 1 / B(2, 5) = 30
M = 30 * 0.2 * 0.8**4                          # max of the Beta(2, 5) density, at x = 1/5


def beta_log_target(x):
    return LOG_NORM + torch.log(x) + 4 * torch.log1p(-x)


def uniform_sample(n, generator):
    return torch.rand(n, generator=generator, dtype=torch.float64)


def uniform_log_prob(x):
    return torch.zeros_like(x)


def test_rejection_sampling_a_beta_from_uniform_proposals():
    x, rate = rejection_sample(beta_log_target, uniform_sample, uniform_log_prob, math.log(M),
                               20_000, generator=torch.Generator().manual_seed(3))
    assert x.shape == (20_000,)
    mean = BETA_A / (BETA_A + BETA_B)
    var = BETA_A * BETA_B / ((BETA_A + BETA_B) ** 2 * (BETA_A + BETA_B + 1))
    est = mc_mean(x)
    assert abs(est.mean - mean) < 4 * est.stderr
    assert x.var().item() == pytest.approx(var, rel=0.03)
    assert stats.kstest(x.numpy(), stats.beta(BETA_A, BETA_B).cdf).pvalue > 0.001
    # acceptance rate 1 / M (~0.407) to within ~4 binomial standard errors
    assert rate == pytest.approx(1 / M, abs=0.012)


def test_rejection_sampling_an_unnormalised_target_accepts_z_over_m():
    """With log_target = log(Z * p), Z = 1/5, and M = Z * max p, the rate is Z / M = 1/max p."""
    z = 0.2
    x, rate = rejection_sample(lambda t: math.log(z) + beta_log_target(t), uniform_sample,
                               uniform_log_prob, math.log(z * M), 5_000,
                               generator=torch.Generator().manual_seed(4))
    assert rate == pytest.approx(1 / M, abs=0.02)
    assert abs(mc_mean(x).mean - 2 / 7) < 4 * mc_mean(x).stderr


def test_rejection_sampling_a_gaussian_with_a_laplace_proposal():
    """Target N(0, 1) with Laplace(0, 1) proposals: M = sqrt(2e / pi) (a classic pairing)."""
    log_M = 0.5 * math.log(2 * math.e / math.pi)

    def laplace(n, generator):
        u = torch.rand(n, generator=generator, dtype=torch.float64) - 0.5
        return -torch.sign(u) * torch.log1p(-2 * u.abs())

    x, rate = rejection_sample(
        lambda t: -0.5 * t**2 - 0.5 * math.log(2 * math.pi), laplace,
        lambda t: -t.abs() - math.log(2), log_M, 10_000, generator=torch.Generator().manual_seed(5))
    assert stats.kstest(x.numpy(), stats.norm.cdf).pvalue > 0.001
    assert rate == pytest.approx(math.exp(-log_M), abs=0.015)


def test_rejection_sampling_reproduces_and_detects_a_violated_envelope():
    args = (beta_log_target, uniform_sample, uniform_log_prob, math.log(M), 100)
    a, _ = rejection_sample(*args, generator=torch.Generator().manual_seed(6))
    b, _ = rejection_sample(*args, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"log_M=0.0 is too small"):
        rejection_sample(beta_log_target, uniform_sample, uniform_log_prob, 0.0, 100,
                         generator=torch.Generator().manual_seed(7))
    with pytest.raises(RuntimeError, match="max_rounds=2"):
        rejection_sample(beta_log_target, uniform_sample, uniform_log_prob, math.log(1e6), 100,
                         generator=torch.Generator().manual_seed(8), max_rounds=2)
    with pytest.raises(ValueError, match=r"n must be an integer >= 1, got 0"):
        rejection_sample(*args[:4], 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reparameterize_has_mean_mu_and_variance_exp_logvar(dtype):
    mu = torch.tensor([0.5, -2.0, 3.0], dtype=dtype)
    logvar = torch.tensor([0.0, 1.0, -2.0], dtype=dtype)
    n = 100_000
    z = reparameterize(mu.expand(n, 3), logvar.expand(n, 3),
                       generator=torch.Generator().manual_seed(9))
    assert z.shape == (n, 3) and z.dtype == dtype
    for d in range(3):
        est = mc_mean(z[:, d])
        assert abs(est.mean - mu[d].item()) < 4 * est.stderr
        # the sample variance has standard error ~ var * sqrt(2 / n) for a Gaussian
        var = math.exp(logvar[d].item())
        assert abs(z[:, d].double().var().item() - var) < 4 * var * math.sqrt(2 / n)


def test_reparameterize_reproduces_and_is_differentiable():
    mu = torch.randn(4, 2, requires_grad=True)
    logvar = torch.randn(4, 2, requires_grad=True)
    z = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(10))
    again = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(10))
    assert torch.equal(z, again)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))                  # dz/dmu = 1
    torch.testing.assert_close(logvar.grad, 0.5 * (z - mu).detach())         # = sigma eps / 2
    # broadcasting: one logvar per dimension
    assert reparameterize(torch.zeros(5, 3), torch.zeros(3)).shape == (5, 3)


def test_bad_input():
    with pytest.raises(ValueError, match=r"logvar \(3,\)"):
        reparameterize(torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match=r"n must be an integer >= 1, got 0"):
        sample_inverse_cdf(lambda u: u, 0)
    with pytest.raises(ValueError, match=r"n must be an integer >= 1, got -3"):
        sample_inverse_cdf(lambda u: u, -3)
    with pytest.raises(TypeError, match=r"n must be an integer"):
        sample_inverse_cdf(lambda u: u, 2.5)
