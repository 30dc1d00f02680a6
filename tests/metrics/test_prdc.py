"""Precision / recall / density / coverage: closed forms on toy sets (identical, disjoint, half
the modes dropped), equality with a direct full-matrix implementation, chunking, the bootstrap
intervals, and agreement with the ``prdc`` package where installed."""

from __future__ import annotations

import pytest
import torch

from genlib.metrics import knn_radii, prdc


def direct_prdc(gen, real, k):
    """The four definitions written on the full distance matrices (Naeem et al. 2020, eq. 1-4
    and Kynkaanniemi et al. 2019), float64, no chunking."""
    d_rr = torch.cdist(real, real)
    d_gg = torch.cdist(gen, gen)
    d_rg = torch.cdist(real, gen)                                     # (N, M)
    r = d_rr.sort(dim=1).values[:, k]                                 # k-th other neighbour
    s = d_gg.sort(dim=1).values[:, k]
    in_real = d_rg <= r[:, None]                                      # Y_j in B(X_i, r_i)
    return {"precision": in_real.any(0).double().mean().item(),
            "recall": (d_rg <= s[None, :]).any(1).double().mean().item(),
            "density": in_real.double().sum().item() / (k * gen.shape[0]),
            "coverage": in_real.any(1).double().mean().item()}


def mixture(n, modes, centres, g):
    idx = torch.tensor(modes)[torch.randint(len(modes), (n,), generator=g)]
    return centres[idx] + torch.randn(n, centres.shape[1], generator=g, dtype=torch.float64)


def values(result):
    return {name: m.value for name, m in result.as_dict().items()}


def test_identical_sets():
    # every sample is a real point: precision = recall = coverage = 1; each real ball holds
    # its centre and its k neighbours, so density = N (k + 1) / (k N) = (k + 1) / k exactly
    x = torch.randn(300, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for k in (1, 3, 5):
        v = values(prdc(x, x, k=k, n_boot=0))
        assert v == pytest.approx({"precision": 1.0, "recall": 1.0, "density": (k + 1) / k,
                                   "coverage": 1.0}, abs=1e-12)


def test_disjoint_far_sets_score_zero():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(200, 4, generator=g)
    gen = torch.randn(150, 4, generator=g) + 100.0
    assert values(prdc(gen, real, n_boot=0)) == {"precision": 0.0, "recall": 0.0,
                                                  "density": 0.0, "coverage": 0.0}


def test_half_the_modes_dropped_halves_recall_and_coverage_not_precision():
    g = torch.Generator().manual_seed(0)
    centres = 10 * torch.randn(10, 8, generator=g, dtype=torch.float64)
    real = mixture(2000, list(range(10)), centres, g)
    full = values(prdc(mixture(2000, list(range(10)), centres, g), real, n_boot=0))
    half = values(prdc(mixture(2000, list(range(5)), centres, g), real, n_boot=0))
    assert full["recall"] > 0.85 and full["coverage"] > 0.9
    assert half["recall"] == pytest.approx(0.5 * full["recall"], abs=0.07)
    assert half["coverage"] == pytest.approx(0.5 * full["coverage"], abs=0.07)
    assert half["precision"] > 0.85 and abs(half["precision"] - full["precision"]) < 0.05
    assert abs(half["density"] - full["density"]) < 0.15        # fidelity unchanged


@pytest.mark.parametrize("k", [1, 5])
def test_equals_the_direct_full_matrix_implementation(k):
    g = torch.Generator().manual_seed(2)
    real = torch.randn(400, 10, generator=g, dtype=torch.float64)
    gen = torch.randn(300, 10, generator=g, dtype=torch.float64) * 1.3 + 0.4
    expected = direct_prdc(gen, real, k)
    for chunk in (None, 7, 1000):
        assert values(prdc(gen, real, k=k, n_boot=0, chunk_size=chunk)) == expected


def test_knn_radii_against_sorting_and_with_duplicates():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(50, 3, generator=g, dtype=torch.float64)
    expected = torch.cdist(x, x).sort(dim=1).values[:, 4]           # 4-th other neighbour
    torch.testing.assert_close(knn_radii(x, 4, chunk_size=8), expected, atol=1e-5, rtol=1e-5)
    # each point has a twin at distance 0: float32 resolves it to about 1e-3 of the norm of the
    # centred features; without centring, the offset of 1000 would blur it to about 1
    twice = torch.cat([x, x]) + 1000.0
    assert float(knn_radii(twice, 1).max()) < 2e-3 * float(x.norm(dim=1).max())
    torch.testing.assert_close(knn_radii(twice, 2), knn_radii(x, 1).repeat(2), atol=2e-3,
                               rtol=0)


def test_bootstrap_intervals_bracket_the_values_and_stay_in_range():
    g = torch.Generator().manual_seed(4)
    centres = 6 * torch.randn(5, 6, generator=g, dtype=torch.float64)
    real = mixture(800, list(range(5)), centres, g)
    gen = mixture(600, list(range(5)), centres, g) * 1.05
    r = prdc(gen, real, n_boot=100, generator=torch.Generator().manual_seed(0))
    for name, m in r.as_dict().items():
        lo, hi = m.ci
        assert lo <= m.value <= hi and hi - lo > 0, name
        assert 0 <= lo and (name == "density" or hi <= 1), name
        assert (m.n_a, m.n_b, m.sd > 0) == (600, 800, True)
    again = prdc(gen, real, n_boot=100, generator=torch.Generator().manual_seed(0))
    assert again == r
    same = prdc(real, real, n_boot=50)                             # recall = 1 in every resample
    assert same.precision.ci == (1.0, 1.0)


def test_agrees_with_the_prdc_package():
    prdc_package = pytest.importorskip("prdc")
    g = torch.Generator().manual_seed(5)
    real = torch.randn(300, 5, generator=g, dtype=torch.float64)
    gen = torch.randn(250, 5, generator=g, dtype=torch.float64) + 0.3
    expected = prdc_package.compute_prdc(real_features=real.numpy(), fake_features=gen.numpy(),
                                         nearest_k=5)
    assert values(prdc(gen, real, k=5, n_boot=0)) == pytest.approx(expected, abs=1e-12)


def test_bad_inputs():
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="k must be smaller than both sample sizes"):
        prdc(x[:5], x, k=5)
    with pytest.raises(ValueError, match="same feature dimension"):
        prdc(x, x[:, :2])
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        prdc(x, x, k=0)
    with pytest.raises(ValueError, match="k must be smaller than the number of samples"):
        knn_radii(x, 20)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        prdc(x, x, chunk_size=0)
