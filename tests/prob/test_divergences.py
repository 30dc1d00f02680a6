"""Entropy, cross-entropy, KL and JS against torch/scipy and their defining properties;
Wasserstein-1 against scipy; MMD against its definition and its null/alternative behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon  # the square root of JS
from torch.distributions import Categorical
from torch.distributions import kl_divergence as torch_kl

from genlib.prob import (
    cross_entropy,
    entropy,
    js_divergence,
    kl_divergence,
    mc_mean,
    mmd,
    wasserstein_1d,
)


def random_probs(*shape, seed=0, dtype=torch.float64, zeros=False):
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(*shape, generator=g, dtype=dtype) ** 3
    if zeros:
        w = w * (torch.rand(*shape, generator=g, dtype=dtype) > 0.3)
        w[..., 0] += 0.1                                               # keep every row non-empty
    return w / w.sum(-1, keepdim=True)


# ------------------------------------------------------------------- probability vectors
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(5,), (3, 7), (2, 4, 10)])
def test_discrete_divergences_match_torch_categorical(shape, dtype):
    p, q = random_probs(*shape, seed=1, dtype=dtype), random_probs(*shape, seed=2, dtype=dtype)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12,
                                                                       "atol": 1e-12}
    cp, cq = Categorical(probs=p), Categorical(probs=q)
    assert entropy(p).shape == shape[:-1]
    torch.testing.assert_close(entropy(p), cp.entropy(), **tol)
    torch.testing.assert_close(kl_divergence(p, q), torch_kl(cp, cq), **tol)
    torch.testing.assert_close(cross_entropy(p, q), -(p * q.log()).sum(-1), **tol)


def test_match_scipy_entropy_and_jensenshannon():
    p, q = random_probs(6, 9, seed=3, zeros=True), random_probs(6, 9, seed=4)
    pn, qn = p.numpy(), q.numpy()
    torch.testing.assert_close(entropy(p), torch.from_numpy(stats.entropy(pn, axis=-1)))
    torch.testing.assert_close(kl_divergence(p, q), torch.from_numpy(stats.entropy(pn, qn,
                                                                                   axis=-1)))
    js = np.array([jensenshannon(a, b) ** 2 for a, b in zip(pn, qn, strict=True)])
    torch.testing.assert_close(js_divergence(p, q), torch.from_numpy(js))


def test_zero_probabilities():
    """0 log 0 = 0; KL is +inf where q misses mass p has; JS stays finite (log 2 when disjoint)."""
    p = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
    q = torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64)
    assert entropy(p).item() == pytest.approx(math.log(2))
    assert kl_divergence(p, q).item() == math.inf
    assert math.isfinite(js_divergence(p, q).item())
    disjoint = js_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    assert disjoint.item() == pytest.approx(math.log(2))
    assert entropy(torch.tensor([0.0, 1.0, 0.0])).item() == 0
    uniform = torch.full((8,), 1 / 8, dtype=torch.float64)
    assert entropy(uniform).item() == pytest.approx(math.log(8))


def test_gradients_are_finite_with_zero_probabilities():
    logits = torch.tensor([0.0, 1.0, 2.0], requires_grad=True)
    q = torch.softmax(logits, 0)
    p = torch.tensor([0.0, 0.3, 0.7])
    (kl_divergence(p, q) + js_divergence(p, q)).backward()
    assert torch.isfinite(logits.grad).all()


def prob_vectors(k: int):
    return st.lists(st.floats(0, 1, allow_nan=False), min_size=k, max_size=k).filter(
        lambda w: sum(w) > 1e-3).map(lambda w: torch.tensor(w, dtype=torch.float64) / sum(w))


@st.composite
def pairs(draw):
    k = draw(st.integers(1, 8))
    p = draw(prob_vectors(k))
    q = p.clone() if draw(st.booleans()) else draw(prob_vectors(k))
    return p, q


@settings(max_examples=80, deadline=None, database=None)
@given(pairs())
def test_kl_js_cross_entropy_properties(pq):
    p, q = pq
    kl, js = kl_divergence(p, q).item(), js_divergence(p, q).item()
    tv = 0.5 * (p - q).abs().sum().item()
    # >= 0 up to rounding: p and q sum to 1 only to within float64 precision
    assert kl >= -1e-12 and js >= -1e-12
    assert kl >= 2 * tv**2 - 1e-12                                   # Pinsker's inequality
    if torch.equal(p, q):
        assert kl == 0 and js == 0
    assert js <= math.log(2) + 1e-12
    assert js == pytest.approx(js_divergence(q, p).item(), abs=1e-14)   # symmetric
    assert js <= 0.5 * kl + 1e-12 or math.isinf(kl)    # JS <= KL/2 by convexity of KL
    if math.isfinite(kl):
        assert cross_entropy(p, q).item() == pytest.approx(entropy(p).item() + kl, abs=1e-12)
    else:
        assert cross_entropy(p, q).item() == math.inf


def test_probability_checks_name_the_argument_and_value():
    good = torch.tensor([0.5, 0.5])
    with pytest.raises(ValueError, match=r"p must hold probabilities in \[0, 1\].*-0.2"):
        entropy(torch.tensor([1.2, -0.2]))
    with pytest.raises(ValueError, match=r"q must sum to 1.*0.8"):
        kl_divergence(good, torch.tensor([0.4, 0.4]))
    with pytest.raises(ValueError, match=r"p must sum to 1.*1.5"):
        cross_entropy(torch.tensor([1.0, 0.5]), good)
    with pytest.raises(ValueError, match=r"same number of outcomes.*\(3,\)"):
        js_divergence(good, torch.tensor([0.2, 0.3, 0.5]))
    with pytest.raises(ValueError, match="do not broadcast"):
        kl_divergence(random_probs(3, 2), random_probs(4, 2))
    with pytest.raises(TypeError, match="floating"):
        entropy(torch.tensor([0, 1]))


# ------------------------------------------------------------------------- Wasserstein-1
@pytest.mark.parametrize("shift", [-2.5, 0.0, 0.7])
def test_wasserstein_of_a_shifted_sample_is_the_shift(shift):
    x = torch.randn(500, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert wasserstein_1d(x, x + shift).item() == pytest.approx(abs(shift), abs=1e-12)


@pytest.mark.parametrize("n, m", [(1, 1), (7, 3), (100, 257), (1000, 999)])
def test_wasserstein_matches_scipy_for_unequal_sizes(n, m):
    g = torch.Generator().manual_seed(n + m)
    x = torch.randn(n, generator=g, dtype=torch.float64)
    y = 0.5 + 2 * torch.rand(m, generator=g, dtype=torch.float64)
    expected = stats.wasserstein_distance(x.numpy(), y.numpy())
    assert wasserstein_1d(x, y).item() == pytest.approx(expected, rel=1e-10, abs=1e-12)


@settings(max_examples=50, deadline=None, database=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=30),
       st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=30))
def test_wasserstein_is_symmetric_nonnegative_and_matches_scipy(xs, ys):
    x, y = torch.tensor(xs, dtype=torch.float64), torch.tensor(ys, dtype=torch.float64)
    w = wasserstein_1d(x, y).item()
    assert w >= 0
    assert w == pytest.approx(wasserstein_1d(y, x).item(), rel=1e-12, abs=1e-9)
    assert w == pytest.approx(stats.wasserstein_distance(xs, ys), rel=1e-9, abs=1e-9)
    assert wasserstein_1d(x, x).item() == 0


def test_wasserstein_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"x must have shape \(N,\).*\(3, 2\)"):
        wasserstein_1d(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match=r"y must have shape \(N,\).*\(0,\)"):
        wasserstein_1d(torch.zeros(3), torch.zeros(0))


# ---------------------------------------------------------------------------------- MMD
def mmd_reference(x, y, h, unbiased):
    """MMD^2 by the definition, with explicit loops over pairs (small samples only)."""
    def k(a, b):
        return math.exp(-float(((a - b) ** 2).sum()) / (2 * h * h))

    def mean_k(a, b, skip_diagonal):
        vals = [k(a[i], b[j]) for i in range(len(a)) for j in range(len(b))
                if not (skip_diagonal and i == j)]
        return sum(vals) / len(vals)

    return (mean_k(x, x, unbiased) + mean_k(y, y, unbiased) - 2 * mean_k(x, y, False))


@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd_matches_the_definition(unbiased):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(9, 3, generator=g, dtype=torch.float64)
    y = torch.randn(6, 3, generator=g, dtype=torch.float64) + 0.5
    for h in (0.5, 2.0):
        got = mmd(x, y, bandwidth=h, unbiased=unbiased).item()
        assert got == pytest.approx(mmd_reference(x, y, h, unbiased), rel=1e-10, abs=1e-12)
    # bandwidth=None is the median distance between distinct pooled points
    pooled = torch.cat([x, y])
    d = torch.cdist(pooled, pooled)
    i, j = torch.triu_indices(15, 15, offset=1)
    median = d[i, j].median().item()
    got = mmd(x, y, unbiased=unbiased).item()
    assert got == pytest.approx(mmd_reference(x, y, median, unbiased), rel=1e-8)
    # 1D samples may be given as (N,)
    assert mmd(x[:, 0], y[:, 0], bandwidth=1.0).item() == pytest.approx(
        mmd(x[:, :1], y[:, :1], bandwidth=1.0).item())


def test_mmd_unbiased_is_centred_at_zero_and_biased_is_positive_under_the_null():
    g = torch.Generator().manual_seed(7)
    unb, bia = [], []
    for _ in range(60):
        x, y = torch.randn(40, 2, generator=g), torch.randn(40, 2, generator=g)
        unb.append(mmd(x, y, bandwidth=1.0).item())
        bia.append(mmd(x, y, bandwidth=1.0, unbiased=False).item())
    est = mc_mean(torch.tensor(unb))
    assert abs(est.mean) < 4 * est.stderr, est
    assert min(unb) < 0 < max(unb)                           # the U-statistic can be negative
    assert min(bia) > 0
    est_b = mc_mean(torch.tensor(bia))
    assert est_b.mean > 10 * est_b.stderr                    # biased upwards, clearly


def test_mmd_is_clearly_positive_for_different_distributions():
    g = torch.Generator().manual_seed(8)
    null = [mmd(torch.randn(100, 2, generator=g), torch.randn(100, 2, generator=g)).item()
            for _ in range(20)]
    x = torch.randn(100, 2, generator=g)
    y = torch.randn(100, 2, generator=g) * torch.tensor([1.0, 2.0]) + torch.tensor([0.8, 0.0])
    alt = mmd(x, y).item()
    spread = torch.tensor(null).std().item()
    assert alt > max(null) and alt > 10 * spread


def test_mmd_rejects_bad_input():
    x = torch.zeros(5, 2)
    with pytest.raises(ValueError, match=r"same dimension D.*\(5, 2\).*\(5, 3\)"):
        mmd(x, torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"at least 2 samples.*M=1"):
        mmd(torch.randn(5, 2), torch.randn(1, 2))
    with pytest.raises(ValueError, match=r"bandwidth must be a number > 0.*-1"):
        mmd(torch.randn(5, 2), torch.randn(5, 2), bandwidth=-1.0)
    with pytest.raises(ValueError, match="median distance"):
        mmd(x, x)
    with pytest.raises(ValueError, match=r"\(N, D\).*\(5, 2, 2\)"):
        mmd(torch.zeros(5, 2, 2), x)


def test_js_is_finite_for_subnormal_probabilities():
    # half of the smallest subnormal rounds to zero: m = (p + q) / 2 must not be formed
    p = torch.tensor([0.0, 1.0], dtype=torch.float64)
    q = torch.tensor([4.9407e-324, 1.0], dtype=torch.float64)
    js = js_divergence(p, q).item()
    assert 0.0 <= js <= math.log(2)
