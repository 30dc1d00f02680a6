"""Densities against torch.distributions / scipy / 50-digit mpmath; the discretised likelihoods
sum to one, match a direct CDF difference, and stay finite (with finite gradients) at extremes."""

from __future__ import annotations

import math

import mpmath  # a dependency of torch (through sympy), so always installed beside it
import pytest
import torch
from scipy import stats
from torch.distributions import Bernoulli, Categorical, Independent, Normal

from genlib.prob import (
    LOG_SCALE_MIN,
    log_bernoulli,
    log_categorical,
    log_discretized_gaussian,
    log_discretized_logistic,
    log_normal,
    log_normal_diag,
    sum_except_batch,
)

DTYPES = [torch.float32, torch.float64]
SHAPES = [(5,), (4, 3), (2, 3, 4, 5)]
DISCRETISED = [log_discretized_gaussian, log_discretized_logistic]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12,
                                                                        "atol": 1e-12}


# ---------------------------------------------------------------------- continuous densities
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_log_normal_diag_matches_torch_independent_normal(shape, dtype):
    g = gen(1)
    x, mu = (torch.randn(shape, generator=g, dtype=dtype) for _ in range(2))
    logvar = 2 * torch.randn(shape, generator=g, dtype=dtype)
    expected = Independent(Normal(mu, torch.exp(0.5 * logvar)), len(shape) - 1).log_prob(x)
    got = log_normal_diag(x, mu, logvar)
    assert got.shape == (shape[0],) and got.dtype == dtype
    torch.testing.assert_close(got, expected, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_normal_diag_broadcasts_parameters_and_defaults_to_standard_normal(dtype):
    g = gen(2)
    z = torch.randn(6, 4, generator=g, dtype=dtype)
    mu, logvar = torch.randn(4, generator=g, dtype=dtype), torch.randn(4, generator=g, dtype=dtype)
    expected = Independent(Normal(mu.expand(6, 4), torch.exp(0.5 * logvar).expand(6, 4)), 1)
    torch.testing.assert_close(log_normal_diag(z, mu, logvar), expected.log_prob(z), **tol(dtype))
    standard = Independent(Normal(torch.zeros_like(z), torch.ones_like(z)), 1).log_prob(z)
    torch.testing.assert_close(log_normal_diag(z), standard, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_normal_is_elementwise_and_broadcasts(dtype):
    g = gen(3)
    x = torch.randn(5, 1, generator=g, dtype=dtype)
    mu = torch.randn(1, 3, generator=g, dtype=dtype)
    sigma = torch.rand(1, 3, generator=g, dtype=dtype) + 0.1
    got = log_normal(x, mu, sigma)
    assert got.shape == (5, 3)
    torch.testing.assert_close(got, Normal(mu, sigma).log_prob(x), **tol(dtype))
    ref = stats.norm(mu.double().numpy(), sigma.double().numpy()).logpdf(x.double().numpy())
    torch.testing.assert_close(got.double(), torch.from_numpy(ref), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_log_normal_rejects_non_positive_sigma(bad):
    sigma = torch.tensor([1.0, bad])
    with pytest.raises(ValueError, match=rf"sigma must be > 0.*{bad}"):
        log_normal(torch.zeros(2), torch.zeros(2), sigma)
    with pytest.raises(ValueError, match="sigma"):
        log_normal(torch.zeros(2), 0.0, bad)


def test_log_normal_diag_rejects_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match=r"logvar \(3,\)"):
        log_normal_diag(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match=r"mu \(4, 5\)"):
        log_normal_diag(torch.zeros(4, 2), torch.zeros(4, 5), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="batch dimension"):
        log_normal_diag(torch.tensor(0.0), 0.0, 0.0)


# ---------------------------------------------------------------------------- discrete data
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_log_bernoulli_matches_torch_bernoulli(shape, dtype):
    g = gen(4)
    logits = 3 * torch.randn(shape, generator=g, dtype=dtype)
    x = (torch.rand(shape, generator=g, dtype=dtype) < 0.5).to(dtype)
    expected = Independent(Bernoulli(logits=logits), len(shape) - 1).log_prob(x)
    got = log_bernoulli(x, logits)
    assert got.shape == (shape[0],)
    torch.testing.assert_close(got, expected, **tol(dtype))
    # integer and bool data give the same values
    torch.testing.assert_close(log_bernoulli(x.long(), logits), got)
    torch.testing.assert_close(log_bernoulli(x.bool(), logits), got)


def test_log_bernoulli_is_stable_for_saturated_logits():
    """log(sigmoid(-100)) rounds to -inf in float32; the BCE-with-logits form gives -100."""
    logits = torch.tensor([[-100.0], [100.0], [-100.0], [100.0]])
    x = torch.tensor([[1.0], [0.0], [0.0], [1.0]])
    got = log_bernoulli(x, logits)
    torch.testing.assert_close(got, torch.tensor([-100.0, -100.0, 0.0, 0.0]))
    assert torch.log(torch.sigmoid(torch.tensor(-200.0))).isinf()   # what the naive form does


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0])
def test_log_bernoulli_rejects_non_binary_x(bad):
    with pytest.raises(ValueError, match=rf"x must hold only 0s and 1s.*{bad}"):
        log_bernoulli(torch.tensor([[0.0, bad]]), torch.zeros(1, 2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6,), (3, 4), (2, 3, 4)])
def test_log_categorical_matches_torch_categorical(shape, dtype):
    K = 7
    g = gen(5)
    logits = 2 * torch.randn(shape[0], K, *shape[1:], generator=g, dtype=dtype)   # (B, K, ...)
    x = torch.randint(0, K, shape, generator=g)
    cat = Categorical(logits=logits.movedim(1, -1))                              # classes last
    expected = cat.log_prob(x)
    expected = expected if expected.ndim == 1 else expected.flatten(1).sum(1)
    got = log_categorical(x, logits)
    assert got.shape == (shape[0],)
    torch.testing.assert_close(got, expected, **tol(dtype))
    torch.testing.assert_close(log_categorical(x.to(dtype), logits), got)   # whole-number floats


def test_log_categorical_rejects_bad_indices_and_shapes():
    logits = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r"class indices in 0..2.*\[3\]"):
        log_categorical(torch.tensor([[0, 1, 2, 3], [0, 0, 0, 0]]), logits)
    with pytest.raises(ValueError, match=r"\[-1\]"):
        log_categorical(torch.tensor([[0, 1, 2, -1], [0, 0, 0, 0]]), logits)
    with pytest.raises(ValueError, match=r"logits \(2, 3, 4\) and x \(2, 5\)"):
        log_categorical(torch.zeros(2, 5, dtype=torch.long), logits)
    with pytest.raises(ValueError, match="whole numbers"):
        log_categorical(torch.full((2, 4), 0.5), logits)


def test_sum_except_batch():
    t = torch.arange(24.0).reshape(2, 3, 4)
    torch.testing.assert_close(sum_except_batch(t), torch.tensor([66.0, 210.0]))
    v = torch.tensor([1.0, 2.0])
    assert sum_except_batch(v) is v
    assert sum_except_batch(torch.zeros(0, 3)).shape == (0,)
    with pytest.raises(ValueError, match="batch dimension"):
        sum_except_batch(torch.tensor(1.0))


# ------------------------------------------------------------------ discretised likelihoods
def per_level(fn, mu, log_scale, L):
    """(P, L) matrix of log P(k): every entry its own example (no summing)."""
    P = mu.shape[0]
    k = torch.arange(L).repeat(P)                                       # (P * L,)
    out = fn(k, mu.repeat_interleave(L), log_scale.repeat_interleave(L), L)  # (P * L,)
    return out.reshape(P, L)


def edge_cases(dtype):
    """Random mu/scales plus mu at and beyond the edges and on bin edges, tiny and huge scales."""
    g = gen(6)
    mu_r = 1.6 * torch.rand(40, generator=g, dtype=dtype) - 0.3
    ls_r = 8 * torch.rand(40, generator=g, dtype=dtype) - 7
    grid_mu = torch.tensor([-1e3, -0.2, 0.0, 1e-4, 0.5, 0.5 + 1 / 510, 0.999, 1.0, 1.2, 1e3],
                           dtype=dtype)
    grid_ls = torch.tensor([-80.0, LOG_SCALE_MIN, -12.0, -6.0, -3.0, 0.0, 4.0, 30.0, 90.0],
                           dtype=dtype)
    mu_g, ls_g = torch.cartesian_prod(grid_mu, grid_ls).unbind(1)
    return torch.cat([mu_r, mu_g]), torch.cat([ls_r, ls_g])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L", [2, 16, 256])
@pytest.mark.parametrize("fn", DISCRETISED)
def test_discretised_probabilities_sum_to_one_and_are_finite(fn, L, dtype):
    mu, ls = edge_cases(dtype)
    log_p = per_level(fn, mu, ls, L)                                   # (P, L)
    assert torch.isfinite(log_p).all()
    assert (log_p <= 1e-6).all()
    total = log_p.exp().sum(1)
    torch.testing.assert_close(total, torch.ones_like(total),
                               atol=2e-5 if dtype == torch.float32 else 1e-12, rtol=0)


@pytest.mark.parametrize("fn", DISCRETISED)
def test_discretised_gradients_are_finite_at_extremes(fn):
    mu, ls = edge_cases(torch.float32)
    mu.requires_grad_(True)
    ls.requires_grad_(True)
    per_level(fn, mu, ls, 256).sum().backward()
    assert torch.isfinite(mu.grad).all() and torch.isfinite(ls.grad).all()


def direct_probs(cdf, mu, log_scale, L):
    """float64 P(k) = F(upper) - F(lower) with F(-inf) = 0, F(+inf) = 1: (P, L)."""
    k = torch.arange(L, dtype=torch.float64)
    delta = 1 / (L - 1)
    s = torch.exp(log_scale)[:, None]
    upper = cdf(((k + 0.5) * delta - mu[:, None]) / s)
    lower = cdf(((k - 0.5) * delta - mu[:, None]) / s)
    upper[:, -1], lower[:, 0] = 1.0, 0.0
    return upper - lower


CDFS = {log_discretized_gaussian: torch.special.ndtr, log_discretized_logistic: torch.sigmoid}


@pytest.mark.parametrize("L", [2, 16, 256])
@pytest.mark.parametrize("fn", DISCRETISED)
def test_discretised_matches_direct_cdf_difference_where_that_is_stable(fn, L):
    g = gen(7)
    mu = 1.4 * torch.rand(60, generator=g, dtype=torch.float64) - 0.2
    ls = 6 * torch.rand(60, generator=g, dtype=torch.float64) - 6
    direct = direct_probs(CDFS[fn], mu, ls, L)
    stable = direct > 1e-6                 # a difference of CDFs near 1e-16 is mostly rounding
    got64 = per_level(fn, mu, ls, L).exp()
    torch.testing.assert_close(got64[stable], direct[stable], rtol=1e-9, atol=0)
    got32 = per_level(fn, mu.float(), ls.float(), L).exp().double()
    torch.testing.assert_close(got32[stable], direct[stable], rtol=2e-4, atol=1e-7)


def test_discretised_logistic_matches_scipy_logistic():
    L, mu, s = 16, 0.37, 0.08
    edges = (torch.arange(L + 1, dtype=torch.float64) - 0.5) / (L - 1)
    cdf = torch.from_numpy(stats.logistic(mu, s).cdf(edges.numpy()))
    cdf[0], cdf[-1] = 0.0, 1.0
    got = log_discretized_logistic(torch.arange(L), torch.tensor(mu, dtype=torch.float64),
                                   torch.tensor(math.log(s), dtype=torch.float64), L).exp()
    torch.testing.assert_close(got, cdf[1:] - cdf[:-1], rtol=1e-10, atol=1e-15)


def mp_log_mass(kind: str, k: int, mu: float, log_scale: float, L: int) -> float:
    """The exact log-probability of level k with 50 significant digits."""
    mpmath.mp.dps = 50
    F = mpmath.ncdf if kind == "gaussian" else (lambda z: 1 / (1 + mpmath.exp(-z)))
    s, delta = mpmath.exp(mpmath.mpf(log_scale)), mpmath.mpf(1) / (L - 1)
    lo = (k - mpmath.mpf(0.5)) * delta
    hi = (k + mpmath.mpf(0.5)) * delta
    upper = 1 if k == L - 1 else F((hi - mu) / s)
    lower = 0 if k == 0 else F((lo - mu) / s)
    return float(mpmath.log(upper - lower))


# (k, mu, log_scale): deep tails (mass ~ e^-5000), a bin 20 sigmas away, huge scales (the bin is
# a sliver: a naive difference of CDFs cancels completely) and the open edge bins.
TAIL_CASES = [(0, 0.9, -5.0), (3, 0.95, -6.0), (200, 0.1, -7.0), (128, 0.5, 8.0),
              (17, 0.3, 25.0), (254, 0.02, -3.0), (255, 0.0, -4.0), (0, 1.0, -4.5),
              (100, 0.2, -4.2), (60, 0.25, -8.5)]


@pytest.mark.parametrize("kind", ["gaussian", "logistic"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_discretised_tails_match_50_digit_arithmetic(kind, dtype):
    fn = log_discretized_gaussian if kind == "gaussian" else log_discretized_logistic
    L = 256
    for k, mu, ls in TAIL_CASES:
        got = fn(torch.tensor([k]), torch.tensor(mu, dtype=dtype),
                 torch.tensor(ls, dtype=dtype), L).item()
        # compare at the parameters as the dtype holds them (mu = 0.9 is not exact in float32)
        ref = mp_log_mass(kind, k, float(torch.tensor(mu, dtype=dtype)),
                          float(torch.tensor(ls, dtype=dtype)), L)
        # float32: (k/255 - mu) rounds at 3e-8 before 1/scale (up to e^8.5) magnifies it; that
        # conditioning, not the algorithm, limits float32 to a few 1e-6 relative here
        rel = 1e-11 if dtype == torch.float64 else 1e-5
        assert abs(got - ref) <= rel * max(1.0, abs(ref)), (k, mu, ls, got, ref)


def test_discretised_gaussian_huge_scale_bins_are_exact_not_zero():
    """A scale of e^25 puts ~1e-13 mass on an interior bin: a plain CDF difference in float64
    gives 0 or a multiple of 1e-16 (all rounding); the log-domain version gives the value."""
    mu, ls = torch.tensor(0.5, dtype=torch.float64), torch.tensor(25.0, dtype=torch.float64)
    got = log_discretized_gaussian(torch.tensor([100]), mu, ls).item()
    h = 0.5 / 255 / math.exp(25.0)
    expected = math.log(2 * h) - 0.5 * math.log(2 * math.pi)      # midpoint rule, exact here
    assert abs(got - expected) < 1e-9
    direct = direct_probs(torch.special.ndtr, mu[None], ls[None], 256)[0, 100].item()
    assert direct == 0.0 or abs(math.log(direct) - expected) > 1e-3


@pytest.mark.parametrize("fn", DISCRETISED)
def test_tiny_scale_is_a_point_mass_on_the_nearest_level(fn):
    L = 256
    k = torch.tensor([0, 37, 128, 255])
    mu = k.double() / (L - 1) + 0.3 / (L - 1)          # inside bin k, away from its edges
    got = fn(k, mu, torch.full((4,), -12.0, dtype=torch.float64), L)
    torch.testing.assert_close(got, torch.zeros(4, dtype=torch.float64), atol=1e-12, rtol=0)
    # the next level's nearest edge is 0.2 bin widths = 0.2 / 255 * e^12 ~ 128 scales away
    other = torch.where(k < L - 1, k + 1, k - 1)
    far = fn(other, mu, torch.full((4,), -12.0, dtype=torch.float64), L)
    assert (far < -100).all()


@pytest.mark.parametrize("fn", DISCRETISED)
def test_discretised_sums_over_pixels_per_example(fn):
    g = gen(8)
    x = torch.randint(0, 256, (3, 1, 4, 4), generator=g)
    mu = torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64)
    ls = -3 + torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64)
    got = fn(x, mu, ls)
    assert got.shape == (3,)
    per_pixel = fn(x.flatten(), mu.flatten(), ls.flatten()).reshape(3, -1).sum(1)
    torch.testing.assert_close(got, per_pixel)
    # float images holding whole levels, e.g. (x01 * 255).round(), are accepted
    torch.testing.assert_close(fn(x.double(), mu, ls), got)
    # a scalar log_scale and a number mu broadcast
    assert fn(x, 0.5, torch.tensor(-2.0)).shape == (3,)


@pytest.mark.parametrize("fn", DISCRETISED)
def test_discretised_gradcheck(fn):
    g = gen(9)
    x = torch.tensor([0, 3, 7, 8, 15])
    mu = (torch.rand(5, generator=g, dtype=torch.float64) * 1.2 - 0.1).requires_grad_()
    ls = (torch.rand(5, generator=g, dtype=torch.float64) * 4 - 5).requires_grad_()
    assert torch.autograd.gradcheck(lambda m, s: fn(x, m, s, 16), (mu, ls))


@pytest.mark.parametrize("fn", DISCRETISED)
def test_discretised_rejects_bad_levels_and_arguments(fn):
    mu, ls = torch.zeros(2), torch.zeros(2)
    with pytest.raises(ValueError, match=r"levels in 0..255.*\[256\]"):
        fn(torch.tensor([0, 256]), mu, ls)
    with pytest.raises(ValueError, match=r"levels in 0..15.*\[-1\]"):
        fn(torch.tensor([-1, 3]), mu, ls, n_levels=16)
    with pytest.raises(ValueError, match=r"whole numbers.*0.5"):
        fn(torch.tensor([0.5, 3.0]), mu, ls)
    with pytest.raises(ValueError, match=r"n_levels must be an integer >= 2, got 1"):
        fn(torch.tensor([0, 0]), mu, ls, n_levels=1)
    with pytest.raises(ValueError, match=r"log_scale \(3,\)"):
        fn(torch.tensor([0, 1]), mu, torch.zeros(3))
