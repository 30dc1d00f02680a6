"""Frechet distance and FID: closed forms (identical, 1D, commuting covariances), agreement with
the scipy ``sqrtm`` formula, the bootstrap interval, and FID's 1/n bias (fid_infinity)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from genlib.metrics import (
    fid,
    fid_infinity,
    fit_inverse_n,
    frechet_distance,
    gaussian_stats,
    sqrtm_psd,
)


def random_spd(rng, d, cond):
    """Q diag(w) Q^T with eigenvalues spread log-evenly from 1 down to 1 / cond."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * np.logspace(0, -np.log10(cond), d)) @ q.T


def scipy_frechet(mu1, cov1, mu2, cov2):
    """The textbook formula (pytorch-fid, TTUR): trace of scipy's sqrtm of the product."""
    covmean = scipy.linalg.sqrtm(cov1 @ cov2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2)
                 - 2 * np.trace(covmean).real)


@pytest.mark.parametrize("cond", [1.0, 1e6, math.inf])
def test_identical_gaussians_are_at_distance_zero(cond):
    rng = np.random.default_rng(0)
    cov = random_spd(rng, 16, 1e6) if math.isfinite(cond) else np.diag([1.0] * 8 + [0.0] * 8)
    mu = rng.standard_normal(16)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("mu1, s1, mu2, s2", [(0.0, 1.0, 0.0, 1.0), (1.0, 2.0, -0.5, 0.3),
                                              (3.0, 0.0, 3.0, 4.0), (0.2, 1e-8, -1.0, 9.0)])
def test_one_dimension_matches_closed_form(mu1, s1, mu2, s2):
    expected = (mu1 - mu2) ** 2 + s1 + s2 - 2 * math.sqrt(s1 * s2)
    f64 = {"dtype": torch.float64}
    got = frechet_distance(torch.tensor([mu1], **f64), torch.tensor([[s1]], **f64),
                           torch.tensor([mu2], **f64), torch.tensor([[s2]], **f64))
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_commuting_covariances_match_closed_form_even_singular_and_ill_conditioned():
    # C1 = Q diag(a) Q^T, C2 = Q diag(b) Q^T: d^2 = |mu1 - mu2|^2 + sum (sqrt a - sqrt b)^2
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((24, 24)))
    a = np.concatenate([np.logspace(0, -12, 16), np.zeros(8)])          # rank 16 of 24
    b = rng.uniform(0.1, 1.0, 24) * np.logspace(-10, 1, 24)
    mu1, mu2 = rng.standard_normal(24), rng.standard_normal(24)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = frechet_distance(mu1, (q * a) @ q.T, mu2, (q * b) @ q.T)
    # the square root magnifies rounding near 0 (an eigenvalue off by 1e-15 moves its root by
    # 3e-8), so about 8 digits is what any method can promise here
    assert got == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("cond", [10.0, 1e4, 1e8])
def test_agrees_with_scipy_sqrtm_formula(cond):
    rng = np.random.default_rng(int(math.log10(cond)))
    for _ in range(3):
        c1, c2 = random_spd(rng, 20, cond), random_spd(rng, 20, cond)
        mu1, mu2 = rng.standard_normal(20), rng.standard_normal(20)
        assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(
            scipy_frechet(mu1, c1, mu2, c2), rel=1e-8)


def test_symmetric_in_its_two_gaussians():
    rng = np.random.default_rng(2)
    c1, c2 = random_spd(rng, 10, 100), random_spd(rng, 10, 1e5)
    mu1, mu2 = rng.standard_normal(10), rng.standard_normal(10)
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(
        frechet_distance(mu2, c2, mu1, c1), rel=1e-10)


def test_sqrtm_psd_squares_back_and_clamps_round_off():
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.standard_normal((5, 12)))
    c = x.T @ x                                             # rank 5 of 12: singular
    s = sqrtm_psd(c)
    assert torch.isfinite(s).all()
    torch.testing.assert_close(s @ s, c, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(s, s.T)


def test_gaussian_stats_match_numpy():
    x = np.random.default_rng(4).standard_normal((300, 7)) * 3 + 5
    mu, cov = gaussian_stats(x)
    np.testing.assert_allclose(mu.numpy(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(x, rowvar=False), rtol=1e-10)


def test_fid_is_the_frechet_distance_of_the_fitted_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(600, 8, generator=g, dtype=torch.float64) * 1.5 + 0.3
    b = torch.randn(900, 8, generator=g, dtype=torch.float64)
    r = fid(a, b, n_boot=0)
    assert r.value == pytest.approx(frechet_distance(*gaussian_stats(a), *gaussian_stats(b)),
                                    rel=1e-12)
    assert (r.name, r.n_a, r.n_b, r.ci, r.sd) == ("FID", 600, 900, None, None)


def test_fid_bootstrap_interval_brackets_the_value_and_tracks_the_sampling_spread():
    # the spread of FID over fresh draws of the samples vs the bootstrap's from one draw
    g = torch.Generator().manual_seed(1)
    d, n = 6, 400
    ref = torch.randn(3000, d, generator=g, dtype=torch.float64)

    def draw():
        return torch.randn(n, d, generator=g, dtype=torch.float64) * 1.2 + 0.2

    fresh = torch.tensor([fid(draw(), ref, n_boot=0).value for _ in range(60)])
    r = fid(draw(), ref, n_boot=200, generator=torch.Generator().manual_seed(5))
    lo, hi = r.ci
    assert lo <= r.value <= hi
    assert 0.5 < r.sd / float(fresh.std()) < 2.0
    assert 0.5 < (hi - lo) / (2 * 1.96 * float(fresh.std())) < 2.0
    # the same generator seed gives the same interval; another seed another one
    x = draw()
    r1, r2, r3 = (fid(x, ref, n_boot=50, generator=torch.Generator().manual_seed(s))
                  for s in (7, 7, 8))
    assert r1.ci == r2.ci != r3.ci and r1.value == r3.value


def test_fid_refuses_fewer_samples_than_features_and_says_how_many():
    g = torch.Generator().manual_seed(0)
    few, many = torch.randn(50, 64, generator=g), torch.randn(500, 64, generator=g)
    with pytest.raises(ValueError, match=r"N=50 samples of D=64.*at least D \+ 1 = 65"):
        fid(few, many)
    with pytest.raises(ValueError, match="feat_b"):
        fid(many, few)


@pytest.mark.parametrize("bad, match", [
    (lambda a: a[:, :5], "same feature dimension"),
    (lambda a: a.reshape(-1), r"shape \(N, D\)"),
    (lambda a: torch.where(a > 2, float("nan"), a), "NaN"),
    (lambda a: "features", "tensor or numpy array"),
])
def test_fid_bad_features(bad, match):
    a = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    with pytest.raises((ValueError, TypeError), match=match):
        fid(bad(a), a)


def test_fid_bad_options():
    a = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="n_boot must be 0"):
        fid(a, a, n_boot=5)
    with pytest.raises(ValueError, match="level"):
        fid(a, a, level=1.5)
    with pytest.raises(TypeError, match="generator"):
        fid(a, a, generator=0)


def test_frechet_distance_refuses_non_covariances():
    mu = np.zeros(3)
    with pytest.raises(ValueError, match="positive semi-definite"):
        frechet_distance(mu, np.diag([1.0, -1.0, 1.0]), mu, np.eye(3))
    with pytest.raises(ValueError, match="symmetric"):
        frechet_distance(mu, np.triu(np.ones((3, 3))), mu, np.eye(3))
    with pytest.raises(ValueError, match=r"square matrix \(3, 3\)"):
        frechet_distance(mu, np.eye(4), mu, np.eye(3))
    with pytest.raises(ValueError, match="same shape"):
        frechet_distance(mu, np.eye(3), np.zeros(4), np.eye(4))


def test_fit_inverse_n_recovers_a_line_in_one_over_n():
    ns = [100, 200, 400, 800]
    assert fit_inverse_n(ns, [2.0 + 50.0 / n for n in ns]) == pytest.approx((2.0, 50.0))
    with pytest.raises(ValueError, match="2 distinct sizes"):
        fit_inverse_n([100, 100], [1.0, 1.0])


def test_fid_infinity_removes_the_sample_size_bias():
    # N(0.1 * 1, I) against N(0, I) in D = 32: the true Frechet distance is 32 * 0.1^2 = 0.32,
    # and 2,000 samples add a bias of about 0.13 (of the order D^2 / 8n)
    g = torch.Generator().manual_seed(0)
    d = 32
    real = torch.randn(50_000, d, generator=g, dtype=torch.float64)
    gen = torch.randn(2000, d, generator=g, dtype=torch.float64) + 0.1
    truth = d * 0.1**2
    r = fid_infinity(gen, real, generator=torch.Generator().manual_seed(1))
    fid_n = fid(gen, real, n_boot=0).value
    assert fid_n - truth > 0.08                             # FID of 2,000 samples: biased up
    assert abs(r.value - truth) < (fid_n - truth) / 2       # the extrapolation removes most
    assert r.slope > 0 and r.ns[-1] == 2000 and len(r.fids) == len(r.ns) >= 5
    assert r.fids[0] > r.fids[-1]                           # fewer samples, larger FID
    assert r.predict(2000) == pytest.approx(r.value + r.slope / 2000)
    assert r.n_real == 50_000 and "FID_inf" in str(r)


def test_fid_infinity_bad_sizes():
    a = torch.randn(100, 20, generator=torch.Generator().manual_seed(0))
    b = torch.randn(400, 20, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="N > 2 D"):
        fid_infinity(a[:30], b)
    with pytest.raises(ValueError, match="distinct sizes in 21..100"):
        fid_infinity(a, b, ns=[10, 50])
