"""genlib.vae: the ELBO and the IWAE bound against exact likelihoods, the KL term against Monte
Carlo, decoders against torch.distributions, shapes of every config, helpers, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from genlib.data import binarized, load
from genlib.prob import mc_mean
from genlib.vae import (
    VAE,
    LinearGaussian,
    VAEConfig,
    active_units,
    elbo_terms,
    interpolate,
    iwae_bound,
    iwae_log_weights,
    iwae_nll,
    kl_per_dimension,
    kl_to_prior,
    latent_traversal,
    reconstruct,
    sample_images,
    slerp,
    vae_loss,
)

# ---------------------------------------------------------------------------------------------
# The linear-Gaussian model: exact log p(x) and posterior


@pytest.fixture(scope="module")
def lg() -> LinearGaussian:
    return LinearGaussian.random(6, 2, sigma=0.5, seed=0)


def test_linear_gaussian_posterior_is_bayes(lg):
    """p(z | x) from the formula equals p(x, z) / p(x) at random points."""
    g = torch.Generator().manual_seed(1)
    x, _ = lg.sample(5, generator=g)
    m, S = lg.posterior(x)
    z = torch.randn(5, 2, generator=g, dtype=torch.float64)
    post = torch.distributions.MultivariateNormal(m, covariance_matrix=S).log_prob(z)
    assert torch.allclose(post, lg.log_joint(x, z) - lg.log_marginal(x), atol=1e-10)


def test_elbo_below_log_likelihood_and_tight_at_posterior(lg):
    g = torch.Generator().manual_seed(2)
    x, _ = lg.sample(50, generator=g)
    log_px = lg.log_marginal(x)
    m, S = lg.posterior(x)
    assert torch.allclose(lg.elbo(x, m, S), log_px, atol=1e-10)          # equality
    # any other q is strictly worse: shifted means, the diagonal of S, a wider covariance
    for mu, cov in [(m + 0.3, S), (m, torch.diag(torch.diag(S))), (m, 2 * S),
                    (torch.zeros_like(m), torch.eye(2, dtype=torch.float64))]:
        gap = log_px - lg.elbo(x, mu, cov)
        assert (gap > 1e-6).all()
        # the gap is KL(q || posterior), computed independently by torch.distributions
        q = torch.distributions.MultivariateNormal(mu, covariance_matrix=cov.expand(50, 2, 2))
        p = torch.distributions.MultivariateNormal(m, covariance_matrix=S.expand(50, 2, 2))
        assert torch.allclose(gap, torch.distributions.kl_divergence(q, p), atol=1e-9)


def test_closed_form_elbo_matches_monte_carlo(lg):
    g = torch.Generator().manual_seed(3)
    x, _ = lg.sample(1, generator=g)
    mu = torch.tensor([[0.2, -0.4]], dtype=torch.float64)
    cov = torch.tensor([[0.3, 0.05], [0.05, 0.2]], dtype=torch.float64)
    q = torch.distributions.MultivariateNormal(mu[0], covariance_matrix=cov)
    z = q.sample((200_000,))
    est = mc_mean(lg.log_joint(x, z) - q.log_prob(z))
    assert abs(est.mean - float(lg.elbo(x, mu, cov))) < 4 * est.stderr


def _iwae_lg(lg, x, mu, cov, k, reps, g):
    """IWAE bound of the linear-Gaussian model with proposal N(mu, cov), `reps` draws."""
    q = torch.distributions.MultivariateNormal(mu, covariance_matrix=cov)
    z = q.sample((reps, k))                                              # (reps, k, d)
    logw = lg.log_joint(x, z) - q.log_prob(z)
    return torch.logsumexp(logw, 1) - math.log(k)                       # (reps,)


def test_iwae_increases_with_k_towards_log_likelihood(lg):
    torch.manual_seed(4)
    x, _ = lg.sample(1, generator=torch.Generator().manual_seed(4))
    m, S = lg.posterior(x)
    mu, cov = m[0] + 0.5, 3 * S                                          # a poor proposal
    log_px = float(lg.log_marginal(x))
    means = []
    for k in (1, 4, 16, 64, 256):
        est = mc_mean(_iwae_lg(lg, x, mu, cov, k, 4000, None))
        means.append(est)
        assert est.mean < log_px + 4 * est.stderr                        # a lower bound
    for a, b in zip(means, means[1:], strict=False):                     # increasing in k
        assert b.mean > a.mean + 2 * math.hypot(a.stderr, b.stderr)
    assert log_px - means[-1].mean < 0.05 * (log_px - means[0].mean)     # closes the gap


# ---------------------------------------------------------------------------------------------
# A tiny VAE with a 1-D latent: log p(x) by quadrature


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = VAE(VAEConfig(image_shape=(1, 2, 2), latent_dim=1, arch="mlp", hidden=(16,)))
    with torch.no_grad():  # a sharper decoder: the posterior is narrow, the ELBO gap nats wide
        for p in model.dec_head.parameters():
            p.mul_(4)
    model.eval()
    x = torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 1]],
                     dtype=torch.float32).view(3, 1, 2, 2)
    # log p(x) = log  integral p(x | z) N(z; 0, 1) dz  on a fine grid (trapezoid, float64)
    z = torch.linspace(-10, 10, 20001, dtype=torch.float64)
    with torch.no_grad():
        params = model.decode(z[:, None].float())                      # (G, 1, 2, 2)
        log_pxz = model.log_px(x, params[:, None].expand(-1, 3, -1, -1, -1)).double()  # (G, 3)
    log_f = log_pxz - 0.5 * z[:, None] ** 2 - 0.5 * math.log(2 * math.pi)
    dz = float(z[1] - z[0])
    w = torch.full_like(z, dz)
    w[0] = w[-1] = dz / 2
    log_px = torch.logsumexp(log_f + w.log()[:, None], 0)               # (3,)
    return model, x, log_px


def test_vae_elbo_and_iwae_against_quadrature(tiny):
    model, x, log_px = tiny
    g = torch.Generator().manual_seed(0)

    def draws(reps: int, k: int | None) -> torch.Tensor:
        """(reps, 3): independent ELBO (k None) or IWAE-k draws for the three images."""
        xs = x.repeat(reps, 1, 1, 1)
        with torch.no_grad():
            out = (elbo_terms(model, xs, generator=g).elbo.double() if k is None
                   else iwae_bound(model, xs, k=k, batch_size=3000, generator=g))
        return out.view(reps, 3)

    def se(d: torch.Tensor) -> torch.Tensor:
        return d.std(0) / math.sqrt(d.shape[0])

    elbos = draws(4000, None)
    gap1 = log_px - elbos.mean(0)
    assert (gap1 > 1.0).all()                      # the ELBO is well below log p(x) here
    prev, prev_se = elbos.mean(0), se(elbos)
    for k in (10, 100):
        d = draws(2000, k)
        b = d.mean(0)
        assert (b > prev + 3 * (se(d) ** 2 + prev_se ** 2).sqrt()).all()   # increases with k
        assert (b < log_px + 4 * se(d)).all()                              # below log p(x)
        prev, prev_se = b, se(d)
    assert (log_px - prev < 0.1 * gap1).all()      # k = 100 closes > 90% of the gap
    big = iwae_bound(model, x, k=20000, chunk=5000, generator=g)
    assert torch.allclose(big, log_px, atol=0.05)
    # k = 1 is the ELBO in expectation (same estimator, different draws)
    one = draws(4000, 1)
    assert ((one.mean(0) - elbos.mean(0)).abs() < 4 * (se(one) ** 2 + se(elbos) ** 2).sqrt()).all()


def test_kl_term_equals_monte_carlo():
    g = torch.Generator().manual_seed(5)
    mu = torch.randn(4, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(4, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(100_000, 4, 3, generator=g, dtype=torch.float64)
    z = mu + (0.5 * logvar).exp() * eps
    log_q = (-0.5 * eps ** 2 - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_p = (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    diff = log_q - log_p                                                 # (S, 4)
    kl = kl_to_prior(mu, logvar)
    se = diff.std(0) / math.sqrt(diff.shape[0])
    assert ((diff.mean(0) - kl).abs() < 4 * se).all()
    assert torch.allclose(kl_to_prior(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_iwae_log_weights_match_definition(tiny):
    """log w = log p(x|z) + log N(z; 0, I) - log N(z; mu, sigma^2), recomputed by torch."""
    model, x, _ = tiny
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    with torch.no_grad():
        logw = iwae_log_weights(model, x, k=6, generator=g1)             # (6, 3)
        mu, logvar = model.encode(x)
        eps = torch.randn(6, *mu.shape, generator=g2)
        z = mu + (0.5 * logvar).exp() * eps
        q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
        p = torch.distributions.Normal(0.0, 1.0)
        params = model.decode(z.reshape(-1, 1)).view(6, 3, 1, 2, 2)
        lpx = torch.distributions.Bernoulli(logits=params).log_prob(x).flatten(2).sum(-1)
        want = lpx + p.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
    assert torch.allclose(logw, want, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Decoders against torch.distributions


def test_decoder_log_probs_match_torch_distributions():
    torch.manual_seed(0)
    b = VAE(VAEConfig(image_shape=(1, 4, 4), arch="mlp", latent_dim=3, hidden=(8,)))
    x = torch.bernoulli(torch.full((5, 1, 4, 4), 0.4))
    params = torch.randn(5, 1, 4, 4)
    want = torch.distributions.Bernoulli(logits=params).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(b.log_px(x, params), want, atol=1e-5)

    gcfg = VAEConfig(image_shape=(2, 4, 4), arch="mlp", latent_dim=3, hidden=(8,),
                     decoder="gaussian")
    gm = VAE(gcfg)
    with torch.no_grad():
        gm.log_std.copy_(torch.tensor([-1.0, -2.0]))
    x = torch.rand(5, 2, 4, 4)
    mean = torch.rand(5, 2, 4, 4)
    std = torch.tensor([-1.0, -2.0]).exp()[:, None, None]
    want = torch.distributions.Normal(mean, std).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(gm.log_px(x, mean), want, atol=1e-4)

    ccfg = VAEConfig(image_shape=(1, 4, 4), arch="mlp", latent_dim=3, hidden=(8,),
                     decoder="categorical", levels=17)
    cm = VAE(ccfg)
    k = torch.randint(0, 17, (5, 1, 4, 4))
    logits = torch.randn(5, 1, 17, 4, 4)
    want = torch.distributions.Categorical(logits=logits.movedim(2, -1)).log_prob(k)
    assert torch.allclose(cm.log_px(k / 16, logits), want.flatten(1).sum(1), atol=1e-5)


def test_decoder_means_and_samples_lie_in_unit_interval():
    torch.manual_seed(0)
    for cfg in _configs():
        m = VAE(cfg)
        y = torch.arange(4) % 10 if cfg.n_classes else None
        x = sample_images(m, 4, y, mean=False, generator=torch.Generator().manual_seed(0))
        assert x.min() >= 0 and x.max() <= 1
        if cfg.decoder == "bernoulli":
            assert set(x.unique().tolist()) <= {0.0, 1.0}
        if cfg.decoder == "categorical":
            assert torch.allclose(x * 16, (x * 16).round())


# ---------------------------------------------------------------------------------------------
# Shapes of every config


def _configs() -> list[VAEConfig]:
    out = []
    for shape, chans in (((1, 28, 28), (16, 32)), ((1, 8, 8), (8, 16)), ((3, 16, 16), (8, 8, 8))):
        for arch in ("mlp", "conv"):
            for decoder, levels in (("bernoulli", 2), ("gaussian", 2), ("categorical", 17)):
                for k in (0, 10):
                    out.append(VAEConfig(image_shape=shape, latent_dim=5, arch=arch,
                                         hidden=(32,), channels=chans, decoder=decoder,
                                         levels=levels, n_classes=k))
    return out


def _data_for(cfg: VAEConfig, n: int) -> torch.Tensor:
    x = torch.rand(n, *cfg.image_shape)
    if cfg.decoder == "bernoulli":
        return x.round()
    if cfg.decoder == "categorical":
        return (x * (cfg.levels - 1)).round() / (cfg.levels - 1)
    return x


@pytest.mark.parametrize("cfg", _configs(), ids=lambda c: f"{c.arch}-{c.decoder}-"
                         f"{'x'.join(map(str, c.image_shape))}-k{c.n_classes}")
def test_shapes_of_every_config(cfg):
    torch.manual_seed(0)
    m = VAE(cfg)
    x = _data_for(cfg, 3)
    y = torch.tensor([0, 4, 9]) if cfg.n_classes else None
    mu, logvar = m.encode(x, y)
    assert mu.shape == logvar.shape == (3, 5)
    params = m.decode(mu, y)
    c, h, w = cfg.image_shape
    want = (3, c, cfg.levels, h, w) if cfg.decoder == "categorical" else (3, c, h, w)
    assert params.shape == want
    assert m.mean(params).shape == (3, c, h, w)
    t = elbo_terms(m, x, y)
    assert t.reconstruction.shape == t.kl.shape == t.elbo.shape == (3,)
    assert (t.kl >= 0).all()
    if cfg.decoder != "gaussian":                       # discrete: log-probabilities <= 0
        assert (t.reconstruction <= 0).all()
    assert iwae_bound(m, x, y, k=7, chunk=3).shape == (3,)
    assert reconstruct(m, x, y).shape == (3, c, h, w)
    y1 = None if y is None else y[1]
    assert interpolate(m, x[0], x[1], 4, y1).shape == (4, c, h, w)
    assert latent_traversal(m, torch.zeros(5), [0, 4], torch.linspace(-1, 1, 3), y1).shape == \
        (2, 3, c, h, w)


# ---------------------------------------------------------------------------------------------
# Helpers


def test_helpers_are_reproducible_and_consistent():
    torch.manual_seed(0)
    m = VAE(VAEConfig(image_shape=(1, 8, 8), arch="mlp", latent_dim=4, hidden=(16,)))
    a = sample_images(m, 6, generator=torch.Generator().manual_seed(3))
    b = sample_images(m, 6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    x = torch.bernoulli(torch.full((2, 1, 8, 8), 0.3))
    path = interpolate(m, x[0], x[1], 5)
    rec = reconstruct(m, x)
    assert torch.allclose(path[0], rec[0], atol=1e-6)
    assert torch.allclose(path[-1], rec[1], atol=1e-6)
    sph = interpolate(m, x[0], x[1], 5, spherical=True)
    assert torch.allclose(sph[0], rec[0], atol=1e-5) and torch.allclose(sph[-1], rec[1], atol=1e-5)
    # a traversal of coordinate 2 at value v decodes z = e_2 * v
    grid = latent_traversal(m, torch.zeros(4), [2], torch.tensor([-1.5, 0.0, 2.0]))
    with torch.no_grad():
        want = m.mean(m.decode(torch.tensor([[0, 0, 2.0, 0]])))
    assert torch.allclose(grid[0, 2], want[0], atol=1e-6)
    assert m.training  # helpers restore the mode


def test_a_short_training_run_lowers_the_loss():
    torch.manual_seed(0)
    x = binarized(load("mnist5k", "train")).images[:256]
    m = VAE(VAEConfig(arch="mlp", hidden=(128,), latent_dim=8))
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        before = -elbo_terms(m, x, generator=g).elbo.mean()
    for _ in range(60):
        loss, _ = vae_loss(m, x[torch.randint(0, 256, (64,), generator=g)], generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = -elbo_terms(m, x, generator=g).elbo.mean()
    assert after < before - 100        # from ~543 nats (random) to well under 440


def test_beta_weights_the_kl_term():
    torch.manual_seed(0)
    m = VAE(VAEConfig(image_shape=(1, 4, 4), arch="mlp", latent_dim=3, hidden=(8,)))
    x = torch.bernoulli(torch.full((8, 1, 4, 4), 0.5))
    l0, t0 = vae_loss(m, x, beta=0.0, generator=torch.Generator().manual_seed(0))
    l2, t2 = vae_loss(m, x, beta=2.0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(l0, -t0.reconstruction.mean())
    assert torch.allclose(l2 - l0, 2 * t2.kl.mean(), atol=1e-5)


def test_iwae_nll_has_a_standard_error():
    torch.manual_seed(0)
    m = VAE(VAEConfig(image_shape=(1, 4, 4), arch="mlp", latent_dim=2, hidden=(8,)))
    x = torch.bernoulli(torch.full((40, 1, 4, 4), 0.5))
    est = iwae_nll(m, x, k=20, generator=torch.Generator().manual_seed(0))
    per = -iwae_bound(m, x, k=20, generator=torch.Generator().manual_seed(0))
    assert est.n == 40
    assert est.mean == pytest.approx(float(per.mean()))
    assert est.stderr == pytest.approx(float(per.std() / math.sqrt(40)))


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("kwargs, match", [
    ({"latent_dim": 0}, "latent_dim must be an integer >= 1, got 0"),
    ({"latent_dim": -3}, "latent_dim must be an integer >= 1"),
    ({"arch": "transformer"}, "arch must be one of 'mlp', 'conv'; got 'transformer'"),
    ({"decoder": "poisson"}, "decoder must be one of 'bernoulli', 'gaussian', 'categorical'"),
    ({"image_shape": (1, 28)}, "image_shape must be"),
    ({"image_shape": (1, 10, 10), "channels": (8, 8)}, "divisible by 4"),
    ({"decoder": "categorical", "levels": 1}, "levels must be an integer >= 2"),
    ({"levels": 17}, "levels must be 2 for decoder='bernoulli'"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ({"hidden": ()}, "hidden must be a non-empty tuple"),
    ({"n_classes": -1}, "n_classes must be an integer >= 0"),
])
def test_bad_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAEConfig(**kwargs)


def test_bad_inputs_are_refused():
    m = VAE(VAEConfig())
    with pytest.raises(ValueError, match=r"x: expected images of shape \(B, 1, 28, 28\).*"
                                         r"got \(2, 1, 32, 32\)"):
        m.encode(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"got \(2, 3, 28, 28\)"):
        m.encode(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"z: expected latents of shape \(B, 32\)"):
        m.decode(torch.zeros(2, 16))
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        iwae_bound(m, torch.zeros(2, 1, 28, 28), k=0)
    with pytest.raises(ValueError, match="values other than 0 and 1"):
        elbo_terms(m, torch.full((2, 1, 28, 28), 0.5))
    with pytest.raises(ValueError, match="unconditional"):
        m.encode(torch.zeros(2, 1, 28, 28), torch.tensor([1, 2]))
    c = VAE(VAEConfig(n_classes=10))
    with pytest.raises(ValueError, match="conditional"):
        c.encode(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"labels must be in 0..9"):
        c.encode(torch.zeros(2, 1, 28, 28), torch.tensor([3, 10]))
    cat = VAE(VAEConfig(image_shape=(1, 8, 8), decoder="categorical", levels=17,
                        channels=(8, 8)))
    with pytest.raises(ValueError, match="17 grey levels"):
        elbo_terms(cat, torch.full((2, 1, 8, 8), 0.3))
    with pytest.raises(ValueError, match="beta must be"):
        vae_loss(m, torch.zeros(2, 1, 28, 28), beta=-1)
    with pytest.raises(ValueError, match="steps must be an int >= 2"):
        interpolate(m, torch.zeros(1, 28, 28), torch.zeros(1, 28, 28), 1)


def test_bernoulli_loss_equals_binary_cross_entropy():
    """The reconstruction term is the familiar BCE summed over pixels (a sign convention check)."""
    torch.manual_seed(0)
    m = VAE(VAEConfig(arch="mlp", hidden=(16,), latent_dim=2))
    x = torch.bernoulli(torch.full((3, 1, 28, 28), 0.2))
    params = torch.randn(3, 1, 28, 28)
    bce = F.binary_cross_entropy_with_logits(params, x, reduction="sum") / 3
    assert torch.allclose(-m.log_px(x, params).mean(), bce, atol=1e-3)


def test_slerp_keeps_norms_and_ends():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, generator=g, dtype=torch.float64), \
        torch.randn(50, generator=g, dtype=torch.float64)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    path = slerp(a, b, t)
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b)
    # for equal norms the path stays on the sphere; the straight line cuts inside it
    b = b / b.norm() * a.norm()
    assert torch.allclose(slerp(a, b, t).norm(dim=1), a.norm().expand(11))
    assert torch.lerp(a, b, 0.5).norm() < 0.9 * a.norm()
    # consecutive points are equally spaced in angle
    p = slerp(a, b, t)
    cosines = (p[1:] * p[:-1]).sum(1) / (p[1:].norm(dim=1) * p[:-1].norm(dim=1))
    assert torch.allclose(cosines, cosines[0].expand(10))
    assert torch.allclose(slerp(a, a, t), a.expand(11, 50))
    with pytest.raises(ValueError, match="same shape"):
        slerp(a, b[:3], t)


def test_kl_per_dimension_sums_to_the_rate_and_active_units():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(500, 4, generator=g, dtype=torch.float64)
    mu[:, 2] = 0.05                                    # a collapsed dimension: constant mean
    mu[:, 3] *= 0.05                                   # barely used: variance 0.0025 < 0.01
    logvar = torch.randn(500, 4, generator=g, dtype=torch.float64) * 0.3
    per = kl_per_dimension(mu, logvar)
    assert torch.allclose(per.sum(), kl_to_prior(mu, logvar).mean())
    assert (per >= 0).all()
    assert active_units(mu).tolist() == [True, True, False, False]
    assert active_units(mu, threshold=0.001).tolist() == [True, True, False, True]
