"""genlib.diffusion.losses: the simple loss against a hand-written MSE, its random draws, the
Gaussian KL against torch.distributions, the ELBO weights against the KL they stand for, and a
short training run that learns."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlib.data import toy2d
from genlib.diffusion import (
    PARAMETERIZATIONS,
    SCHEDULES,
    diffusion_loss,
    elbo_weights,
    make_schedule,
    normal_kl,
    q_posterior_mean_variance,
    q_sample,
    respace,
    x0_from_eps,
)


class Recorder:
    """A fixed nonlinear 'network' that remembers the timesteps it was given."""

    def __init__(self):
        self.seen: list[torch.Tensor] = []

    def __call__(self, x, t):
        self.seen.append(t)
        return torch.tanh(x) * 0.5 + 1e-3 * t.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


@pytest.mark.parametrize("parameterization", PARAMETERIZATIONS)
def test_loss_is_the_hand_written_mse(parameterization):
    s = make_schedule("cosine", 100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(8, 1, 3, 3, generator=g, dtype=torch.float64)
    noise = torch.randn(8, 1, 3, 3, generator=g, dtype=torch.float64)
    t = torch.randint(100, (8,), generator=g)
    model = Recorder()
    loss = diffusion_loss(model, s, x0, parameterization=parameterization, t=t, noise=noise)
    a = s.alpha_bars[t][:, None, None, None]
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
    target = {"eps": noise, "x0": x0, "v": a.sqrt() * noise - (1 - a).sqrt() * x0}
    expected = ((model(x_t, t) - target[parameterization]) ** 2).mean(dim=(1, 2, 3))
    assert loss.shape == (8,)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(model.seen[0], t)


def test_respaced_schedule_gives_the_model_original_timesteps():
    s = make_schedule("linear", 1000)
    r = respace(s, torch.arange(9, 1000, 10))  # 100 steps
    x0, noise = torch.randn(3, 2), torch.randn(3, 2)
    model = Recorder()
    loss_r = diffusion_loss(model, r, x0, t=torch.tensor([0, 50, 99]), noise=noise)
    torch.testing.assert_close(model.seen[0], torch.tensor([9, 509, 999]))
    loss_s = diffusion_loss(model, s, x0, t=torch.tensor([9, 509, 999]), noise=noise)
    torch.testing.assert_close(loss_r, loss_s)


def test_drawn_timesteps_are_uniform_and_noise_standard_normal():
    T, B = 10, 40_000
    s = make_schedule("linear", T, beta_start=1e-3, beta_end=0.2)
    model = Recorder()
    x0 = torch.zeros(B, 1)
    # a model that predicts eps = 0 has loss noise^2: mean 1, variance 2 (chi-square, 1 dof)
    loss = diffusion_loss(lambda x, t: model(x, t) * 0, s, x0,
                          generator=torch.Generator().manual_seed(3))
    assert abs(loss.mean().item() - 1) < 5 * math.sqrt(2 / B)
    counts = torch.bincount(model.seen[0], minlength=T).double()
    assert counts.shape == (T,) and ((counts - B / T).abs() < 5 * math.sqrt(B / T)).all()
    # t is drawn first, then the noise, both on the generator: reproducible
    g = torch.Generator().manual_seed(3)
    t = torch.randint(T, (B,), generator=g)
    noise = torch.randn(B, 1, generator=g)
    torch.testing.assert_close(loss, diffusion_loss(lambda x, t: x * 0, s, x0, t=t, noise=noise))


# ------------------------------------------------------------------------ KL and ELBO weights


def test_normal_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(4)
    m1, m2 = torch.randn(50, generator=g, dtype=torch.float64), torch.randn(50, generator=g,
                                                                            dtype=torch.float64)
    lv1, lv2 = (torch.randn(50, generator=g, dtype=torch.float64),
                torch.randn(50, generator=g, dtype=torch.float64))
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(m1, (0.5 * lv1).exp()),
        torch.distributions.Normal(m2, (0.5 * lv2).exp()))
    torch.testing.assert_close(normal_kl(m1, lv1, m2, lv2), expected)
    assert (normal_kl(m1, lv1, m2, lv2) >= 0).all()
    assert (normal_kl(m1, lv1, m1, lv1) == 0).all()
    # nearly equal variances: expm1 keeps the second-order term d^2 / 4
    d = torch.tensor([1e-6], dtype=torch.float64)
    assert normal_kl(torch.zeros(1, dtype=torch.float64), d, torch.zeros(1, dtype=torch.float64),
                     torch.zeros(1, dtype=torch.float64)).item() == pytest.approx(1e-12 / 4,
                                                                                  rel=1e-5)


@pytest.mark.parametrize("name", SCHEDULES)
def test_elbo_weights_turn_the_eps_mse_into_the_kl(name):
    """KL(q(x_{t-1} | x_t, x0) || p_theta(x_{t-1} | x_t)) = lambda_t * (eps - eps_hat)^2 per
    coordinate, with p_theta's mean the posterior mean at x0_hat(eps_hat) and its variance the
    posterior variance (Ho et al. 2020, eq. 12), for every t >= 1."""
    s = make_schedule(name, 1000)
    lam = elbo_weights(s)
    assert lam.shape == (1000,) and lam.dtype == torch.float64 and (lam > 0).all()
    g = torch.Generator().manual_seed(5)
    B = 999
    t = torch.arange(1, 1000)
    x0 = torch.randn(B, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(B, 4, generator=g, dtype=torch.float64)
    eps_hat = eps + 0.1 * torch.randn(B, 4, generator=g, dtype=torch.float64)
    x_t = q_sample(s, x0, t, eps)
    mean_q, _, logvar_q = q_posterior_mean_variance(s, x0, x_t, t)
    mean_p, _, logvar_p = q_posterior_mean_variance(s, x0_from_eps(x_t, eps_hat, t, s), x_t, t)
    kl = normal_kl(mean_q, logvar_q, mean_p, logvar_p).mean(dim=1)
    mse = diffusion_loss(lambda x, tt: eps_hat, s, x0, t=t, noise=eps)
    torch.testing.assert_close(kl, lam[1:] * mse, rtol=1e-6, atol=0)


def test_elbo_weight_at_t0_is_the_gaussian_decoders():
    """At t = 0: -log N(x0; x0_hat, sigma_0^2) with sigma_0^2 = tilde beta_1 depends on eps_hat
    through lambda_0 (eps - eps_hat)^2."""
    s = make_schedule("linear", 1000)
    g = torch.Generator().manual_seed(6)
    x0, eps = torch.randn(20, generator=g, dtype=torch.float64), torch.randn(20, generator=g,
                                                                              dtype=torch.float64)
    eps_hat = eps + torch.randn(20, generator=g, dtype=torch.float64)
    t = torch.zeros(20, dtype=torch.int64)
    x_1 = q_sample(s, x0, t, eps)  # the paper's x_1: one step of noise
    sigma = s.posterior_log_variance_clipped[0].exp().sqrt()
    nll = -torch.distributions.Normal(x0_from_eps(x_1, eps_hat, t, s), sigma).log_prob(x0)
    nll_best = -torch.distributions.Normal(x0, sigma).log_prob(x0)
    torch.testing.assert_close(nll - nll_best, elbo_weights(s)[0] * (eps - eps_hat) ** 2)


# ------------------------------------------------------------------------------ a short run


class TinyEps(nn.Module):
    def __init__(self, T: int):
        super().__init__()
        self.T = T
        self.net = nn.Sequential(nn.Linear(3, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(),
                                 nn.Linear(64, 2))

    def forward(self, x, t):
        return self.net(torch.cat([x, (t.to(x.dtype) / self.T)[:, None]], dim=1))


def test_a_short_run_lowers_the_loss():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    s = make_schedule("cosine", 100)
    data = toy2d("ring", 4096, generator=g) / 2  # radius 1
    model = TinyEps(100)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(200):
        x0 = data[torch.randint(len(data), (128,), generator=g)]
        loss = diffusion_loss(model, s, x0, generator=g).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    # seeds 0-4 gave last / first = 0.64-0.69 (about 0.63 -> 0.41; predicting eps = 0 scores 1)
    assert last < 0.8 * first, (first, last)


# ------------------------------------------------------------------------------- bad input


def test_loss_errors():
    s = make_schedule("linear", 10)
    x0 = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="parameterization must be one of") as e:
        diffusion_loss(lambda x, t: x, s, x0, parameterization="score")
    assert all(repr(p) in str(e.value) for p in PARAMETERIZATIONS)
    with pytest.raises(ValueError, match=r"model must return a prediction of x0's shape "
                                         r"\(4, 2\); got \(4, 1\)"):
        diffusion_loss(lambda x, t: x[:, :1], s, x0)
    with pytest.raises(ValueError, match=r"t must lie in \[0, T-1\] = \[0, 9\]; got \[10\]"):
        diffusion_loss(lambda x, t: x, s, x0, t=torch.tensor([0, 1, 2, 10]))
    with pytest.raises(ValueError, match=r"t must have shape \(B,\) = \(4,\); got \(2,\)"):
        diffusion_loss(lambda x, t: x, s, x0, t=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"noise must have the shape of x0"):
        diffusion_loss(lambda x, t: x, s, x0, noise=torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"mean1, logvar1, mean2, logvar2 must broadcast"):
        normal_kl(torch.zeros(3), torch.zeros(3), torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match=r"logvar2 must be a floating-point tensor; got float"):
        normal_kl(torch.zeros(3), torch.zeros(3), torch.zeros(3), 0.0)
    with pytest.raises(TypeError, match="schedule must be a NoiseSchedule"):
        elbo_weights(None)
