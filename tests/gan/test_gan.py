"""genlib.gan: losses at known logits, the gradient penalty's zeros, uniform interpolation,
the optimal discriminator against a numerical optimum, network shapes, the two-player step,
and clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from genlib.data import toy2d, toy2d_modes
from genlib.gan import (
    LOSSES,
    Discriminator,
    GANConfig,
    Generator,
    discriminator_loss,
    discriminator_step,
    from_unit,
    generator_loss,
    generator_step,
    gradient_penalty,
    interpolate,
    minibatch_stddev,
    minimax_value,
    mode_coverage,
    optimal_discriminator,
    sample_latent,
    to_unit,
)

# ---------------------------------------------------------------------------------- losses


def test_losses_at_known_logits():
    r = torch.tensor([0.0, 2.0, -1.0])
    f = torch.tensor([0.0, -3.0, 0.5])
    sig = torch.sigmoid
    expected_d = -torch.log(sig(r)) - torch.log(1 - sig(f))
    for loss in ("minimax", "nonsaturating"):
        torch.testing.assert_close(discriminator_loss(r, f, loss), expected_d)
    torch.testing.assert_close(generator_loss(f, "minimax"), torch.log(1 - sig(f)))
    torch.testing.assert_close(generator_loss(f, "nonsaturating"), -torch.log(sig(f)))
    # both at D = 1/2: log 4 for the discriminator, -log 2 / log 2 for the generators
    assert discriminator_loss(r[:1], f[:1], "minimax").item() == pytest.approx(math.log(4))
    torch.testing.assert_close(discriminator_loss(r, f, "hinge"),
                               torch.tensor([1.0 + 1.0, 0.0 + 0.0, 2.0 + 1.5]))
    torch.testing.assert_close(generator_loss(f, "hinge"), -f)
    torch.testing.assert_close(discriminator_loss(r, f, "wasserstein"), f - r)
    torch.testing.assert_close(generator_loss(f, "wasserstein"), -f)


def test_softplus_forms_are_exact_for_large_logits():
    # log(sigmoid(-100)) underflows in float32; the softplus form gives the exact 100
    f = torch.tensor([100.0])
    assert discriminator_loss(torch.tensor([-100.0]), f).item() == pytest.approx(200.0)
    assert generator_loss(torch.tensor([-100.0]), "nonsaturating").item() == pytest.approx(100.0)


def test_saturating_gradient_vanishes_where_nonsaturating_does_not():
    a = torch.tensor([-8.0, 0.0, 8.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(generator_loss(a, "minimax").sum(), a)
    (g_ns,) = torch.autograd.grad(generator_loss(a, "nonsaturating").sum(), a)
    torch.testing.assert_close(g_mm, -torch.sigmoid(a.detach()))
    torch.testing.assert_close(g_ns, -(1 - torch.sigmoid(a.detach())))
    assert abs(g_mm[0]) < 1e-3 < abs(g_ns[0])  # D rejects the fake: only NS still learns


def test_losses_accept_column_outputs_and_reject_mismatches():
    r, f = torch.zeros(4, 1), torch.ones(4, 1)
    assert discriminator_loss(r, f).shape == (4,)
    assert generator_loss(f).shape == (4,)
    with pytest.raises(ValueError, match="same batch size"):
        discriminator_loss(torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match="one output per example"):
        discriminator_loss(torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="one output per example"):
        generator_loss(torch.zeros(4, 3))


@pytest.mark.parametrize("fn", [lambda n: discriminator_loss(torch.zeros(2), torch.zeros(2), n),
                                lambda n: generator_loss(torch.zeros(2), n)])
def test_unknown_loss_lists_the_valid_ones(fn):
    with pytest.raises(ValueError, match="loss must be one of") as e:
        fn("wgan")
    for name in LOSSES:
        assert repr(name) in str(e.value)


# ---------------------------------------------------------------------- gradient penalty


def test_interpolation_weights_are_uniform_on_unit_interval():
    real, fake = torch.ones(20_000, 3), torch.zeros(20_000, 3)
    x_hat, eps = interpolate(real, fake, generator=torch.Generator().manual_seed(0))
    assert eps.min() >= 0 and eps.max() <= 1
    # x_hat = eps * 1 + (1 - eps) * 0 in every coordinate
    torch.testing.assert_close(x_hat, eps[:, None].expand(-1, 3))
    # moments of U(0, 1): mean 1/2, variance 1/12 (5 sd tolerances); deciles flat
    assert abs(eps.mean().item() - 0.5) < 5 * math.sqrt(1 / 12 / 20_000)
    assert abs(eps.var().item() - 1 / 12) < 0.003
    counts = torch.histc(eps, bins=10, min=0, max=1)
    assert (counts - 2000).abs().max() < 5 * math.sqrt(2000)


def test_interpolate_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        interpolate(torch.zeros(2, 3), torch.zeros(2, 4))


def test_gradient_penalty_zero_for_unit_norm_linear_critic():
    torch.manual_seed(0)
    w = torch.randn(5)
    w = w / w.norm()
    critic = nn.Linear(5, 1, bias=True)
    with torch.no_grad():
        critic.weight.copy_(w[None])
    real, fake = torch.randn(64, 5), torch.randn(64, 5)
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(1))
    assert gp.shape == (64,)
    torch.testing.assert_close(gp, torch.zeros(64), atol=1e-10, rtol=0)
    # weight of norm s: gradient norm s everywhere, penalty (s - 1)^2 for every example
    with torch.no_grad():
        critic.weight.mul_(3.0)
    gp = gradient_penalty(critic, real, fake)
    torch.testing.assert_close(gp, torch.full((64,), 4.0))


def test_gradient_penalty_positive_for_nonlinear_critic_and_differentiable():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    gp = gradient_penalty(critic, real, fake)
    assert (gp > 0).all()
    gp.mean().backward()  # second-order path to the critic's weights
    assert critic[0].weight.grad is not None and critic[0].weight.grad.abs().sum() > 0


def test_gradient_penalty_matches_finite_differences_of_the_critic():
    critic = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    real, fake = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    gp = gradient_penalty(critic, real, fake, generator=g)
    x_hat, _ = interpolate(real, fake, generator=torch.Generator().manual_seed(3))
    h = 1e-6
    grads = torch.stack([(critic(x_hat + h * e) - critic(x_hat - h * e))[:, 0] / (2 * h)
                         for e in torch.eye(3, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(gp.detach(), (grads.norm(dim=1) - 1) ** 2)


# ------------------------------------------------------------------ optimal discriminator


def test_optimal_discriminator_matches_numerical_optimum():
    # maximise a log y + b log(1 - y) over a grid of y for several density pairs (a, b)
    a = torch.tensor([0.3, 1.0, 2.5, 0.0, 0.7], dtype=torch.float64)
    b = torch.tensor([0.9, 1.0, 0.5, 1.2, 0.0], dtype=torch.float64)
    y = torch.linspace(1e-6, 1 - 1e-6, 200_001, dtype=torch.float64)
    value = a[:, None] * torch.log(y) + b[:, None] * torch.log1p(-y)
    best = y[value.argmax(dim=1)]
    torch.testing.assert_close(optimal_discriminator(a, b), best, atol=1e-5, rtol=0)
    assert optimal_discriminator(torch.zeros(1), torch.zeros(1)).item() == 0.5


def test_trained_discriminator_approaches_the_optimal_one():
    # data N(1, 0.5^2), model N(-1, 1): a logistic-quadratic D can represent D* exactly
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    feats = lambda x: torch.cat([x, x ** 2], dim=1)  # noqa: E731
    D = nn.Linear(2, 1)
    opt = torch.optim.Adam(D.parameters(), lr=0.05)
    for _ in range(600):
        real = 1 + 0.5 * torch.randn(512, 1, generator=g)
        fake = -1 + torch.randn(512, 1, generator=g)
        loss = discriminator_loss(D(feats(real)), D(feats(fake))).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.linspace(-1.5, 2.0, 50)[:, None]
    normal = lambda x, m, s: torch.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))  # noqa: E731
    d_star = optimal_discriminator(normal(x, 1, 0.5), normal(x, -1, 1.0))[:, 0]
    d_hat = torch.sigmoid(D(feats(x)))[:, 0].detach()
    assert (d_hat - d_star).abs().max() < 0.05


def test_minimax_value_at_the_optimum_is_minus_log_4():
    half = torch.full((10,), 0.5)
    assert minimax_value(half, half).item() == pytest.approx(-math.log(4))


# ------------------------------------------------------------------------------ networks


def test_shapes_mlp_and_dcgan():
    cfg = GANConfig(data_shape=(2,), latent_dim=3, hidden=16, depth=2)
    G, D = Generator(cfg), Discriminator(cfg)
    x = G(torch.randn(5, 3))
    assert x.shape == (5, 2) and D(x).shape == (5,)
    cfg = GANConfig(data_shape=(1, 28, 28), arch="dcgan", latent_dim=8, g_channels=4,
                    d_channels=4, n_classes=10, minibatch_std=True, spectral_norm=True)
    G, D = Generator(cfg), Discriminator(cfg)
    y = torch.arange(6) % 10
    x = G(torch.randn(6, 8), y)
    assert x.shape == (6, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert D(x, y).shape == (6,)
    cfg = GANConfig(data_shape=(3, 32, 32), arch="dcgan", g_channels=4, d_channels=4)
    assert Generator(cfg)(torch.randn(2, 16)).shape == (2, 3, 32, 32)


def test_projection_discriminator_depends_on_the_label():
    torch.manual_seed(0)
    cfg = GANConfig(data_shape=(2,), hidden=8, depth=1, n_classes=3)
    D = Discriminator(cfg)
    x = torch.randn(4, 2)
    a, b = D(x, torch.zeros(4, dtype=torch.long)), D(x, torch.ones(4, dtype=torch.long))
    h = D.features(x)
    torch.testing.assert_close(b - a, ((D.embed.weight[1] - D.embed.weight[0]) * h).sum(1))


def test_minibatch_stddev_feature():
    h = torch.tensor([[0.0, 2.0], [2.0, 2.0]])
    # per-feature sd (population): 1 and 0; average 0.5 (+ the tiny epsilon)
    torch.testing.assert_close(minibatch_stddev(h), torch.full((2, 1), 0.5), atol=1e-4, rtol=0)
    # identical examples are flagged by a near-zero feature
    assert minibatch_stddev(torch.ones(3, 4)).max() < 1e-3


def test_unit_conversions_invert():
    x = torch.rand(3, 1, 4, 4)
    torch.testing.assert_close(to_unit(from_unit(x)), x)


def test_sample_latent_reproducible():
    a = sample_latent(4, 3, generator=torch.Generator().manual_seed(0))
    b = sample_latent(4, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b)
    assert a.shape == (4, 3)


def test_bad_configs_and_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="arch must be one of 'mlp', 'dcgan'; got 'resnet'"):
        GANConfig(arch="resnet")
    with pytest.raises(ValueError, match="divisible by 4"):
        GANConfig(data_shape=(1, 30, 30), arch="dcgan")
    with pytest.raises(ValueError, match=r"data_shape must be \(D,\)"):
        GANConfig(data_shape=(1, 28, 28))
    with pytest.raises(ValueError, match="latent_dim must be an integer >= 1, got 0"):
        GANConfig(latent_dim=0)
    with pytest.raises(ValueError, match="n_classes"):
        GANConfig(n_classes=1)
    G = Generator(GANConfig(latent_dim=4))
    with pytest.raises(ValueError, match=r"z must have shape \(B, latent_dim=4\); got \(3, 5\)"):
        G(torch.randn(3, 5))
    with pytest.raises(ValueError, match="unconditional"):
        G(torch.randn(3, 4), torch.zeros(3, dtype=torch.long))
    D = Discriminator(GANConfig(n_classes=3))
    with pytest.raises(ValueError, match="class-conditional"):
        D(torch.randn(2, 2))
    with pytest.raises(ValueError, match=r"labels must lie in 0..2"):
        D(torch.randn(2, 2), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        D(torch.randn(2, 3), torch.tensor([0, 1]))


# ------------------------------------------------------------------- the two-player step


def test_steps_equal_the_step_written_out():
    cfg = GANConfig(latent_dim=2, hidden=8, depth=1)
    torch.manual_seed(0)
    G, D = Generator(cfg), Discriminator(cfg)
    G2, D2 = Generator(cfg), Discriminator(cfg)
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (G, D, G2, D2)]
    real = toy2d("ring", 16, seed=0)
    discriminator_step(G, D, opts[1], real, noise=torch.Generator().manual_seed(5))
    generator_step(G, D, opts[0], 16, noise=torch.Generator().manual_seed(6))
    # by hand
    z = torch.randn(16, 2, generator=torch.Generator().manual_seed(5))
    loss_d = (F.softplus(-D2(real)) + F.softplus(D2(G2(z).detach()))).mean()
    opts[3].zero_grad()
    loss_d.backward()
    opts[3].step()
    z = torch.randn(16, 2, generator=torch.Generator().manual_seed(6))
    loss_g = F.softplus(-D2(G2(z))).mean()
    opts[2].zero_grad()
    loss_g.backward()
    opts[2].step()
    for a, b in ((G, G2), (D, D2)):
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            torch.testing.assert_close(p, q)


def test_generator_step_leaves_the_discriminator_alone():
    cfg = GANConfig(latent_dim=2, hidden=8, depth=1)
    G, D = Generator(cfg), Discriminator(cfg)
    before = [p.clone() for p in D.parameters()]
    out = generator_step(G, D, torch.optim.Adam(G.parameters()), 8)
    assert set(out) == {"loss_g"}
    for p, q in zip(D.parameters(), before, strict=True):
        assert torch.equal(p, q) and p.requires_grad and p.grad is None


def test_discriminator_step_reports_penalty_and_rejects_negative_weight():
    cfg = GANConfig(latent_dim=2, hidden=8, depth=1)
    G, D = Generator(cfg), Discriminator(cfg)
    opt = torch.optim.Adam(D.parameters())
    out = discriminator_step(G, D, opt, torch.randn(8, 2), loss="wasserstein", gp_weight=10.0)
    assert out["gp"].item() > 0
    with pytest.raises(ValueError, match="gp_weight must be >= 0"):
        discriminator_step(G, D, opt, torch.randn(8, 2), gp_weight=-1.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        discriminator_step(G, D, opt, torch.randn(8, 2), loss="bce")


def test_short_run_moves_generator_towards_the_data():
    torch.manual_seed(0)
    cfg = GANConfig(latent_dim=2, hidden=64, depth=2, minibatch_std=True)
    G, D = Generator(cfg), Discriminator(cfg)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    noise, data = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    probe = torch.Generator().manual_seed(3)
    radius = lambda: G.sample(1000, generator=probe).norm(dim=1)  # noqa: E731
    start = (radius() - 2).abs().mean().item()  # the ring has radius 2; G starts near 0
    for _ in range(400):
        discriminator_step(G, D, opt_d, toy2d("ring", 64, generator=data), noise=noise)
        generator_step(G, D, opt_g, 64, noise=noise)
    end = (radius() - 2).abs().mean().item()
    assert end < 0.5 * start


# ------------------------------------------------------------------------ mode coverage


def test_mode_coverage_of_the_data_and_of_a_collapsed_sampler():
    modes = toy2d_modes("ring")
    data = toy2d("ring", 8000, seed=0)
    m = mode_coverage(data, modes, 0.05)
    assert m["modes_covered"] == 8
    # 2D Gaussian: P(|x - mu| <= 3 sd) = 1 - exp(-9/2)
    assert m["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.005)
    collapsed = modes[0] + 0.05 * torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    m = mode_coverage(collapsed, modes, 0.05)
    assert m["modes_covered"] == 1 and m["counts"][0] == sum(m["counts"])
    between = torch.zeros(100, 2)  # the centre is 2 away from every mode
    assert mode_coverage(between, modes, 0.05)["high_quality"] == 0.0
    # a mode with a few strays is not covered: 1/4 of the fair share is needed
    few = torch.cat([modes[0].expand(990, 2), modes[1].expand(10, 2)])
    assert mode_coverage(few, modes[:2], 0.05)["modes_covered"] == 1
    with pytest.raises(ValueError, match="must share D"):
        mode_coverage(torch.zeros(3, 2), torch.zeros(2, 3), 0.05)


def test_packed_discriminator_judges_consecutive_examples_together():
    torch.manual_seed(0)
    cfg = GANConfig(data_shape=(2,), hidden=8, depth=1, pack=2)
    D = Discriminator(cfg)
    x = torch.randn(6, 2)
    out = D(x)
    assert out.shape == (3,)
    # the pack (x0, x1) is the 4-vector [x0, x1]: same as an unpacked D on concatenated inputs
    flat = Discriminator(GANConfig(data_shape=(4,), hidden=8, depth=1))
    flat.load_state_dict(D.state_dict())
    torch.testing.assert_close(out, flat(x.reshape(3, 4)))
    img = Discriminator(GANConfig(data_shape=(1, 8, 8), arch="dcgan", d_channels=4, pack=4))
    assert img(torch.randn(8, 1, 8, 8)).shape == (2,)
    with pytest.raises(ValueError, match="cannot be split into packs of 2"):
        D(torch.randn(5, 2))
    with pytest.raises(ValueError, match="pack must be 1 for a class-conditional model"):
        GANConfig(n_classes=10, pack=2)


def test_helpers_refuse_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        optimal_discriminator(torch.ones(3), torch.ones(2))
    with pytest.raises(ValueError, match="densities"):
        optimal_discriminator(torch.tensor([-0.1]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"d_real must be a non-empty tensor of probabilities"):
        minimax_value(torch.tensor([1.5]), torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"d_fake must be"):
        minimax_value(torch.tensor([0.5]), torch.tensor([-2.0]))


def test_generator_step_keeps_a_callers_frozen_parameters_frozen():
    cfg = GANConfig(latent_dim=2, hidden=8, depth=1)
    G, D = Generator(cfg), Discriminator(cfg)
    D.head.weight.requires_grad_(False)
    generator_step(G, D, torch.optim.Adam(G.parameters()), 8)
    assert not D.head.weight.requires_grad and D.head.bias.requires_grad
