"""KID: the unbiased MMD^2 estimator against a brute-force double sum, its unbiasedness (about
0 for one distribution), its sign for shifted ones, and agreement with torch-fidelity."""

from __future__ import annotations

import importlib
import itertools

import numpy as np
import pytest
import torch

from genlib.metrics import kid, mmd2_unbiased, polynomial_kernel


def brute_force_mmd2(x, y):
    """Binkowski et al.'s estimator written as the sums over index pairs it is defined by."""
    def k(a, b):
        return (float(a @ b) / len(a) + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_polynomial_kernel_formula():
    x = torch.tensor([[1.0, 2.0], [0.0, -1.0]], dtype=torch.float64)
    y = torch.tensor([[3.0, 1.0]], dtype=torch.float64)
    # (x.y / D + 1)^3 with D = 2: (5/2 + 1)^3 and (-1/2 + 1)^3
    torch.testing.assert_close(polynomial_kernel(x, y),
                               torch.tensor([[3.5**3], [0.5**3]], dtype=torch.float64))


def test_mmd2_unbiased_matches_brute_force_sums():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.randn(9, 4, generator=g, dtype=torch.float64) + 0.5
    assert mmd2_unbiased(x, y) == pytest.approx(brute_force_mmd2(x, y), rel=1e-12)


def test_unbiased_for_one_distribution_and_clearly_positive_for_shifted_ones():
    g = torch.Generator().manual_seed(1)
    # unbiasedness: the mean of many independent small-sample estimates is 0 within 3 se
    values = torch.tensor([mmd2_unbiased(torch.randn(20, 5, generator=g),
                                         torch.randn(20, 5, generator=g)) for _ in range(400)])
    se = float(values.std()) / np.sqrt(len(values))
    assert abs(float(values.mean())) < 3 * se
    assert (values < 0).any()                               # unbiased, hence sometimes < 0

    a = torch.randn(1500, 16, generator=g)
    b = torch.randn(1500, 16, generator=g)
    same = kid(a, b, n_subsets=50, subset_size=500)
    assert abs(same.value) < same.sd                        # about 0, within its spread
    shifted = kid(a + 0.3, b, n_subsets=50, subset_size=500)
    assert shifted.value > 10 * shifted.sd > 0
    assert (shifted.name, shifted.n_a, shifted.n_b) == ("KID", 1500, 1500)


def test_kid_is_the_mean_of_subset_estimates_and_reproducible():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(300, 8, generator=g), torch.randn(200, 8, generator=g) + 0.2
    # subset_size is capped at min(N_a, N_b) = 200
    r1 = kid(a, b, n_subsets=20, subset_size=10_000, generator=torch.Generator().manual_seed(3))
    r2 = kid(a, b, n_subsets=20, subset_size=10_000, generator=torch.Generator().manual_seed(3))
    assert r1 == r2 and "subsets of 200" in r1.method
    full = kid(a[:200], b, n_subsets=3, subset_size=200)    # subsets = the whole sets
    assert full.value == pytest.approx(mmd2_unbiased(a[:200], b), rel=1e-5)  # float32 Grams
    assert full.sd == pytest.approx(0.0, abs=1e-12)
    # subsets of a larger set: the mean of the subset estimates, subsets drawn a then b
    g = torch.Generator().manual_seed(4)
    expected = []
    for _ in range(4):
        ia, ib = torch.randperm(300, generator=g)[:150], torch.randperm(200, generator=g)[:150]
        expected.append(mmd2_unbiased(a[ia], b[ib]))
    r = kid(a, b, n_subsets=4, subset_size=150, generator=torch.Generator().manual_seed(4))
    assert r.value == pytest.approx(np.mean(expected), rel=1e-5)
    assert r.sd == pytest.approx(np.std(expected), rel=1e-4)


def test_agrees_with_torch_fidelity():
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 8)), rng.standard_normal((50, 8)) + 0.3
    expected = metric_kid.polynomial_mmd(x, y, degree=3, gamma=None, coef0=1)
    assert mmd2_unbiased(x, y) == pytest.approx(float(expected), rel=1e-10)


def test_bad_inputs():
    a = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="same feature dimension"):
        kid(a, a[:, :3])
    with pytest.raises(ValueError, match="n_subsets must be an integer >= 1"):
        kid(a, a, n_subsets=0)
    with pytest.raises(ValueError, match="subset_size must be an integer >= 2"):
        kid(a, a, subset_size=1)
    with pytest.raises(ValueError, match="at least 2 rows"):
        kid(a[:1], a)
    with pytest.raises(ValueError, match="NaN"):
        kid(a.masked_fill(a > 2, float("inf")), a)


def test_whole_kernel_and_per_subset_paths_agree(monkeypatch):
    kid_module = importlib.import_module("genlib.metrics.kid")

    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(400, 8, generator=g) + 0.1, torch.randn(300, 8, generator=g)
    whole = kid(a, b, n_subsets=12, subset_size=150, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(kid_module, "_FULL_KERNEL_MAX", 0)     # force one Gram per subset
    per_subset = kid(a, b, n_subsets=12, subset_size=150,
                     generator=torch.Generator().manual_seed(0))
    assert whole.value == pytest.approx(per_subset.value, rel=1e-5)
    assert whole.sd == pytest.approx(per_subset.sd, rel=1e-4)
    assert kid(a, b, n_subsets=1).sd is None
