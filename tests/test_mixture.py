import math

import pytest
import torch
from scipy.stats import multivariate_normal

from genlib.mixture import GaussianMixture


def random_mixture(K, D, cov, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = GaussianMixture(K, D, cov).double()
    m.logits.copy_(torch.randn(K, generator=g, dtype=torch.float64))
    m.means.copy_(3 * torch.randn(K, D, generator=g, dtype=torch.float64))
    if cov == "diag":
        m.var.copy_(torch.rand(K, D, generator=g, dtype=torch.float64) + 0.2)
    else:
        A = torch.randn(K, D, D, generator=g, dtype=torch.float64)
        m.scale_tril.copy_(torch.linalg.cholesky(A @ A.transpose(1, 2) + 0.5 * torch.eye(D)))
    return m


@pytest.mark.parametrize("cov", ["diag", "full"])
def test_log_prob_matches_scipy_mixture(cov):
    m = random_mixture(3, 4, cov)
    x = torch.randn(7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    pi = torch.softmax(m.logits, 0).numpy()
    covs = m.covariances().numpy()
    expected = [math.log(sum(pi[k] * multivariate_normal(m.means[k].numpy(), covs[k]).pdf(xi)
                             for k in range(3))) for xi in x.numpy()]
    torch.testing.assert_close(m.log_prob(x), torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("cov", ["diag", "full"])
def test_density_integrates_to_one_in_2d(cov):
    m = random_mixture(2, 2, cov, seed=3)
    m.means.mul_(0.3)
    t = torch.linspace(-12, 12, 601, dtype=torch.float64)
    xx, yy = torch.meshgrid(t, t, indexing="ij")
    grid = torch.stack([xx.flatten(), yy.flatten()], 1)
    mass = m.log_prob(grid).exp().sum() * (t[1] - t[0]) ** 2
    assert abs(mass.item() - 1) < 1e-3


@pytest.mark.parametrize("cov", ["diag", "full"])
def test_samples_have_the_mixture_moments(cov):
    m = random_mixture(3, 2, cov, seed=4)
    x, k = m.sample(200_000, generator=torch.Generator().manual_seed(0))
    pi = torch.softmax(m.logits, 0)
    mean = (pi[:, None] * m.means).sum(0)
    second = (pi[:, None, None] * (m.covariances() + m.means[:, :, None] * m.means[:, None, :])
              ).sum(0)
    cov_true = second - mean[:, None] * mean[None, :]
    torch.testing.assert_close(x.mean(0), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), cov_true, atol=0.08, rtol=0.02)
    freq = torch.bincount(k, minlength=3).double() / len(k)
    torch.testing.assert_close(freq, pi, atol=5e-3, rtol=0)


def test_sampling_reproduces_with_a_generator():
    m = random_mixture(3, 2, "full")
    a = m.sample(10, generator=torch.Generator().manual_seed(7))[0]
    b = m.sample(10, generator=torch.Generator().manual_seed(7))[0]
    assert torch.equal(a, b)


@pytest.mark.parametrize("cov", ["diag", "full"])
def test_em_never_lowers_the_likelihood_and_recovers_separated_clusters(cov):
    truth = random_mixture(3, 2, cov, seed=5)
    truth.means.copy_(torch.tensor([[-6.0, 0.0], [6.0, 0.0], [0.0, 8.0]], dtype=torch.float64))
    x, _ = truth.sample(3000, generator=torch.Generator().manual_seed(1))
    m = GaussianMixture(3, 2, cov, min_var=1e-6).double()
    m.init_from_data(x, generator=torch.Generator().manual_seed(2))
    lls = [m.em_step(x).item() for _ in range(60)]
    assert all(b >= a - 1e-9 for a, b in zip(lls, lls[1:], strict=False))
    found = sorted(m.means.tolist())
    torch.testing.assert_close(torch.tensor(found), torch.tensor(sorted(truth.means.tolist())),
                               atol=0.25, rtol=0)
    # the fitted likelihood is at least as good as the truth's on its own data
    assert m.log_prob(x).mean() >= truth.log_prob(x).mean() - 1e-3


def test_one_component_em_is_the_gaussian_mle():
    x = torch.randn(500, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = x @ torch.tensor([[1.0, 0, 0], [0.5, 2, 0], [0, 0.3, 0.5]], dtype=torch.float64)
    m = GaussianMixture(1, 3, "full", min_var=1e-12).double()
    m.init_from_data(x)
    m.em_step(x)
    torch.testing.assert_close(m.means[0], x.mean(0))
    torch.testing.assert_close(m.covariances()[0], torch.cov(x.T, correction=0))


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_components=0, dim=2), "n_components must be an integer >= 1, got 0"),
    (dict(n_components=2, dim=-1), "dim must be an integer >= 1, got -1"),
    (dict(n_components=2, dim=2, covariance="tied"), "covariance must be one of"),
    (dict(n_components=2, dim=2, min_var=0.0), "min_var must be > 0"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**kwargs)


def test_bad_input_shapes_and_values():
    m = GaussianMixture(2, 3)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3\), got \(4, 2\)"):
        m.log_prob(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="NaN"):
        m.log_prob(torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match="at least n_components=2"):
        m.init_from_data(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        m.sample(0)
