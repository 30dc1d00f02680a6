"""kl_normal_diag against torch.distributions, against a Monte Carlo estimate, and its
properties (>= 0, zero exactly at q == p, accurate when q and p are close)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Independent, Normal, kl_divergence

from genlib.prob import kl_normal_diag, log_normal_diag, monte_carlo, reparameterize


def gaussian(mu, logvar, event_dims):
    return Independent(Normal(mu, torch.exp(0.5 * logvar)), event_dims)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 4, 5)])
def test_matches_torch_kl_divergence(shape, dtype):
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p = (torch.randn(shape, generator=g, dtype=dtype) for _ in range(2))
    lv_q, lv_p = (2 * torch.randn(shape, generator=g, dtype=dtype) for _ in range(2))
    expected = kl_divergence(gaussian(mu_q, lv_q, len(shape) - 1),
                             gaussian(mu_p, lv_p, len(shape) - 1))
    got = kl_normal_diag(mu_q, lv_q, mu_p, lv_p)
    assert got.shape == (shape[0],) and got.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol)


def test_default_prior_is_standard_normal():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)
    zeros = torch.zeros_like(mu)
    torch.testing.assert_close(kl_normal_diag(mu, logvar), kl_normal_diag(mu, logvar, zeros, zeros))
    expected = kl_divergence(gaussian(mu, logvar, 1), gaussian(zeros, zeros, 1))
    torch.testing.assert_close(kl_normal_diag(mu, logvar), expected)
    # the VAE textbook form -1/2 sum(1 + logvar - mu^2 - exp(logvar))
    textbook = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)
    torch.testing.assert_close(kl_normal_diag(mu, logvar), textbook)


def test_agrees_with_a_monte_carlo_estimate():
    """KL(q || p) = E_q[log q(z) - log p(z)]: the closed form lies within 4 standard errors."""
    g = torch.Generator().manual_seed(2)
    mu_q, lv_q = torch.randn(1, 3, generator=g, dtype=torch.float64), torch.tensor(
        [[0.3, -0.5, 1.0]], dtype=torch.float64)
    mu_p, lv_p = torch.tensor([[0.5, 0.0, -1.0]], dtype=torch.float64), torch.tensor(
        [[0.0, 0.4, 0.2]], dtype=torch.float64)
    exact = kl_normal_diag(mu_q, lv_q, mu_p, lv_p).item()

    def sample(n, generator):
        return reparameterize(mu_q.expand(n, 3), lv_q.expand(n, 3), generator=generator)

    def log_ratio(z):
        return log_normal_diag(z, mu_q, lv_q) - log_normal_diag(z, mu_p, lv_p)

    est = monte_carlo(log_ratio, sample, 200_000, generator=torch.Generator().manual_seed(3))
    assert abs(est.mean - exact) < 4 * est.stderr, (est, exact)
    assert est.stderr < 0.01 * exact                                    # a meaningful check


def test_accurate_when_q_is_close_to_p():
    """exp(t) - 1 - t in float32 loses most digits for t ~ 1e-4; expm1(t) - t keeps them."""
    t = torch.tensor([[1e-4, -2e-4, 3e-4]])
    got = kl_normal_diag(torch.zeros(1, 3), t)                          # float32
    exact = kl_normal_diag(torch.zeros(1, 3, dtype=torch.float64), t.double())
    torch.testing.assert_close(got.double(), exact, rtol=5e-3, atol=0)
    naive = 0.5 * (t.exp() - 1 - t).sum()
    assert abs(naive.item() - exact.item()) > 0.1 * exact.item()       # what is avoided


finite = st.floats(-3, 3, allow_nan=False, width=64)


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.tuples(finite, finite, finite, finite), min_size=1, max_size=6), st.booleans())
def test_kl_is_nonnegative_and_zero_exactly_when_equal(params, same):
    p = torch.tensor(params, dtype=torch.float64).T[:, None, :]          # (4, 1, D)
    mu_q, lv_q, mu_p, lv_p = p
    if same:
        mu_p, lv_p = mu_q, lv_q
    kl = kl_normal_diag(mu_q, lv_q, mu_p, lv_p).item()
    assert kl >= 0
    differ = max((mu_q - mu_p).abs().max().item(), (lv_q - lv_p).abs().max().item())
    if differ == 0:
        assert kl == 0
    elif differ > 1e-2:
        assert kl > 1e-8
    # KL = 1/2 sum (e^t - 1 - t) + 1/2 sum (mu_q - mu_p)^2 / var_p, and e^t - 1 - t >= 0
    gap = 0.5 * ((mu_q - mu_p) ** 2 * torch.exp(-lv_p)).sum().item()
    assert kl >= gap - 1e-12


def test_rejects_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match=r"logvar_q \(3,\)"):
        kl_normal_diag(torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match=r"mu_p \(5, 2\)"):
        kl_normal_diag(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(5, 2))
