"""Monte Carlo estimates: known expectations within 4 standard errors, 95% intervals that cover
the truth about 95% of the time, batching that merges exactly, and the printed form."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from genlib.prob import Estimate, mc_mean, monte_carlo


def exponential(rate):
    def sample(n, generator):
        return -torch.log1p(-torch.rand(n, generator=generator, dtype=torch.float64)) / rate
    return sample


def normal(mu, sigma):
    def sample(n, generator):
        return mu + sigma * torch.randn(n, generator=generator, dtype=torch.float64)
    return sample


@pytest.mark.parametrize("batch_size", [None, 999])
def test_known_expectations_lie_within_four_standard_errors(batch_size):
    g = torch.Generator().manual_seed(0)
    # E[X] = 1 / rate for X ~ Exponential(rate)
    est = monte_carlo(lambda x: x, exponential(2.0), 20_000, generator=g, batch_size=batch_size)
    assert abs(est.mean - 0.5) < 4 * est.stderr and est.n == 20_000
    assert est.stderr == pytest.approx(0.5 / math.sqrt(20_000), rel=0.05)   # sd = 1 / rate
    # E[exp(X)] = exp(mu + sigma^2 / 2) for X ~ N(mu, sigma^2) (log-normal mean)
    est = monte_carlo(torch.exp, normal(0.3, 0.5), 50_000, generator=g, batch_size=batch_size)
    assert abs(est.mean - math.exp(0.3 + 0.125)) < 4 * est.stderr
    # E[X^2] = mu^2 + sigma^2
    est = monte_carlo(lambda x: x**2, normal(1.0, 2.0), 50_000, generator=g,
                      batch_size=batch_size)
    assert abs(est.mean - 5.0) < 4 * est.stderr


def test_95_percent_intervals_cover_the_truth_about_95_percent_of_the_time():
    g = torch.Generator().manual_seed(1)
    covered = 0
    for _ in range(400):
        lo, hi = monte_carlo(lambda x: x, exponential(1.0), 400, generator=g).ci(0.95)
        covered += lo <= 1.0 <= hi
    assert 0.90 <= covered / 400 <= 0.99, covered


def test_batches_merge_exactly_even_with_a_large_mean():
    """Chan's update gives the same mean and standard error as one pass over all the values,
    also when the mean (1e8) dwarfs the spread (1), where sum(x^2) - n mean^2 would cancel."""
    values = 1e8 + torch.randn(10_000, generator=torch.Generator().manual_seed(2),
                               dtype=torch.float64)
    chunks = iter(values.split(777))
    est = monte_carlo(lambda x: x, lambda n, generator: next(chunks)[:n], 10_000,
                      batch_size=777)
    ref = mc_mean(values)
    assert est.mean == pytest.approx(ref.mean, rel=1e-15)
    assert est.stderr == pytest.approx(ref.stderr, rel=1e-9)
    naive_var = ((values**2).sum() - 10_000 * values.mean() ** 2) / 9_999
    assert abs(naive_var.item() - 1.0) > 0.1 or naive_var.item() < 0   # what is avoided


def test_same_generator_seed_same_estimate():
    f, s = (lambda x: x**2), normal(0.0, 1.0)
    a = monte_carlo(f, s, 1000, generator=torch.Generator().manual_seed(3))
    b = monte_carlo(f, s, 1000, generator=torch.Generator().manual_seed(3))
    assert a == b


def test_mc_mean_matches_numpy():
    v = torch.rand(1234, generator=torch.Generator().manual_seed(4))
    est = mc_mean(v)
    arr = v.double().numpy()
    assert est.mean == pytest.approx(arr.mean(), rel=1e-12)
    assert est.stderr == pytest.approx(arr.std(ddof=1) / np.sqrt(1234), rel=1e-12)
    assert est.n == 1234 and isinstance(est.mean, float) and isinstance(est.stderr, float)


def test_estimate_interval_and_printing():
    est = Estimate(mean=1.2341, stderr=0.0049, n=1000)
    assert str(est) == "1.234 ± 0.005 (n=1,000)"
    lo, hi = est.ci()
    assert (lo, hi) == pytest.approx((1.2341 - 1.959964 * 0.0049, 1.2341 + 1.959964 * 0.0049))
    lo99, hi99 = est.ci(0.99)
    assert lo99 == pytest.approx(1.2341 - 2.575829 * 0.0049)
    assert str(Estimate(-3.14159, 0.02, 50)) == "-3.14 ± 0.02 (n=50)"
    assert str(Estimate(1234.4, 12.0, 100)) == "1234 ± 12 (n=100)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.mean = 0.0


def test_bad_input():
    s = normal(0.0, 1.0)
    with pytest.raises(ValueError, match=r"n must be an integer >= 2, got 0"):
        monte_carlo(lambda x: x, s, 0)
    with pytest.raises(ValueError, match=r"n must be an integer >= 2, got -5"):
        monte_carlo(lambda x: x, s, -5)
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1, got 0"):
        monte_carlo(lambda x: x, s, 10, batch_size=0)
    with pytest.raises(ValueError, match=r"f must return one value per sample, shape \(10,\)"):
        monte_carlo(lambda x: x[:, None], s, 10)
    with pytest.raises(ValueError, match=r"values must have shape \(N,\), got \(3, 2\)"):
        mc_mean(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"at least 2 values.*N=1"):
        mc_mean(torch.zeros(1))
    with pytest.raises(ValueError, match=r"level must be a number in \(0, 1\), got 95"):
        Estimate(0.0, 1.0, 10).ci(95)
