"""genlib.diffusion.process: q(x_t | x0) by Monte Carlo, the posterior against numerical Bayes on
a grid, the three parameterisations against their definitions, the score against autograd,
Tweedie against Gaussian conditioning, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from genlib.diffusion import (
    PARAMETERIZATIONS,
    SCHEDULES,
    check_timesteps,
    convert,
    eps_from_v,
    eps_from_x0,
    make_schedule,
    q_mean_variance,
    q_posterior_mean_variance,
    q_sample,
    respace,
    score_from_eps,
    tweedie_x0,
    v_from_x0_eps,
    x0_from_eps,
    x0_from_v,
)


def _abar(schedule, t: int) -> float:
    """alpha_bar_t as a Python product, independent of the library's log-sum route."""
    return math.prod(1.0 - b for b in schedule.betas[: t + 1].tolist())


# ---------------------------------------------------------------------------- forward process


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("t", [0, 300, 999])
def test_q_sample_moments_match_closed_form(name, t):
    s = make_schedule(name, 1000)
    n = 100_000
    x0 = torch.tensor([0.7, -1.2]).expand(n, 2)
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(t))
    x_t = q_sample(s, x0, torch.full((n,), t), noise)
    assert x_t.dtype == torch.float32 and x_t.shape == (n, 2)
    a = _abar(s, t)
    mean, var = math.sqrt(a) * x0[0], 1.0 - a
    se_mean = math.sqrt(var / n)
    assert ((x_t.mean(0) - mean).abs() < 5 * se_mean).all()
    assert ((x_t.var(0) / var - 1).abs() < 5 * math.sqrt(2 / n)).all()
    m, v, lv = q_mean_variance(s, x0[:3], t)
    torch.testing.assert_close(m, mean.expand(3, 2))
    torch.testing.assert_close(v, torch.full((3, 2), var))
    torch.testing.assert_close(lv, torch.full((3, 2), math.log(var)))


def test_q_sample_per_example_timesteps_and_scalar_t():
    s = make_schedule("cosine", 100)
    x0 = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    eps = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    t = torch.tensor([0, 5, 50, 99])
    x_t = q_sample(s, x0, t, eps)
    for i, ti in enumerate(t.tolist()):
        a = _abar(s, ti)
        torch.testing.assert_close(x_t[i], math.sqrt(a) * x0[i] + math.sqrt(1 - a) * eps[i])
    torch.testing.assert_close(q_sample(s, x0, 7, eps), q_sample(s, x0, torch.full((4,), 7), eps))


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("t", [1, 5, 100, 500, 999])
def test_posterior_matches_numerical_bayes_on_a_grid(name, t):
    """p(x_{t-1} | x_t, x0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x0), normalised on a fine grid."""
    s = make_schedule(name, 1000)
    beta = s.betas[t].item()
    a_prev = _abar(s, t - 1)
    x0 = 0.8
    x_t = math.sqrt(_abar(s, t)) * x0 + math.sqrt(1 - _abar(s, t)) * 0.37  # a typical x_t
    # the two Gaussian factors in y = x_{t-1}: prior N(sqrt(a_prev) x0, 1 - a_prev) and
    # likelihood N(x_t; sqrt(1 - beta) y, beta) = N(y; x_t / sqrt(1 - beta), beta / (1 - beta))
    m1, s1 = math.sqrt(a_prev) * x0, math.sqrt(1 - a_prev)
    m2, s2 = x_t / math.sqrt(1 - beta), math.sqrt(beta / (1 - beta))
    lo, hi = min(m1, m2) - 12 * max(s1, s2), max(m1, m2) + 12 * max(s1, s2)
    y = torch.linspace(lo, hi, 400_001, dtype=torch.float64)
    log_p = (-0.5 * (x_t - math.sqrt(1 - beta) * y) ** 2 / beta
             - 0.5 * (y - m1) ** 2 / (1 - a_prev))
    w = torch.softmax(log_p, 0)  # normalised weights of the grid points
    mean_num = (w * y).sum().item()
    var_num = (w * (y - mean_num) ** 2).sum().item()
    mean, var, log_var = q_posterior_mean_variance(
        s, torch.tensor([[x0]], dtype=torch.float64), torch.tensor([[x_t]], dtype=torch.float64),
        torch.tensor([t]))
    assert mean.item() == pytest.approx(mean_num, rel=1e-7, abs=1e-9)
    assert var.item() == pytest.approx(var_num, rel=1e-6)
    assert log_var.item() == pytest.approx(math.log(var_num), abs=1e-6)


def test_posterior_at_t0_is_a_point_mass_on_x0():
    s = make_schedule("linear", 1000)
    x0, x_t = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    mean, var, log_var = q_posterior_mean_variance(s, x0, x_t, 0)
    torch.testing.assert_close(mean, x0)
    assert (var == 0).all()
    torch.testing.assert_close(log_var, s.posterior_log_variance_clipped[1].expand(5, 2))


# -------------------------------------------------------------------------- parameterisations


@pytest.mark.parametrize("name", SCHEDULES)
def test_conversions_recover_the_true_triple_for_every_pair(name):
    s = make_schedule(name, 1000)
    g = torch.Generator().manual_seed(1)
    B = 64
    x0 = torch.randn(B, 3, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(B, 3, 4, 4, generator=g, dtype=torch.float64)
    t = torch.randint(1000, (B,), generator=g)
    t[:3] = torch.tensor([0, 998, 999])  # the ends, where one of the two scales is tiny
    x_t = q_sample(s, x0, t, eps)
    a = torch.tensor([_abar(s, i) for i in t.tolist()], dtype=torch.float64)[:, None, None, None]
    v = a.sqrt() * eps - (1 - a).sqrt() * x0  # Salimans & Ho (2022), sec. 4
    truth = {"eps": eps, "x0": x0, "v": v}
    torch.testing.assert_close(v_from_x0_eps(x0, eps, t, s), v)
    for source in PARAMETERIZATIONS:
        for target in PARAMETERIZATIONS:
            out = convert(truth[source], x_t=x_t, t=t, schedule=s, source=source, target=target)
            torch.testing.assert_close(out, truth[target], rtol=1e-7, atol=1e-7,
                                       msg=f"{source} -> {target}")
            # and back, on arbitrary (not self-consistent) predictions
            pred = torch.randn(x_t.shape, generator=g, dtype=torch.float64)
            there = convert(pred, x_t=x_t, t=t, schedule=s, source=source, target=target)
            back = convert(there, x_t=x_t, t=t, schedule=s, source=target, target=source)
            torch.testing.assert_close(back, pred, rtol=1e-7, atol=1e-7)


def test_named_helpers_are_the_formulas():
    s = make_schedule("linear", 100)
    x_t, p = torch.randn(2, 5, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    t = torch.tensor([10, 90])
    a = torch.tensor([_abar(s, 10), _abar(s, 90)], dtype=torch.float64)[:, None]
    torch.testing.assert_close(x0_from_eps(x_t, p, t, s), (x_t - (1 - a).sqrt() * p) / a.sqrt())
    torch.testing.assert_close(eps_from_x0(x_t, p, t, s), (x_t - a.sqrt() * p) / (1 - a).sqrt())
    torch.testing.assert_close(x0_from_v(x_t, p, t, s), a.sqrt() * x_t - (1 - a).sqrt() * p)
    torch.testing.assert_close(eps_from_v(x_t, p, t, s), (1 - a).sqrt() * x_t + a.sqrt() * p)


def test_conversion_is_cast_to_the_data_dtype_and_respects_respacing():
    s = make_schedule("cosine", 1000)
    r = respace(s, torch.arange(0, 1000, 100))
    x_t, eps = torch.randn(2, 3), torch.randn(2, 3)
    out = x0_from_eps(x_t, eps, torch.tensor([1, 9]), r)
    assert out.dtype == torch.float32
    # index i of the respaced schedule has the noise level of timestep 100 i of the original
    torch.testing.assert_close(out, x0_from_eps(x_t, eps, torch.tensor([100, 900]), s))


# --------------------------------------------------------------------------------- score view


def test_score_from_true_eps_is_the_gradient_of_log_q():
    s = make_schedule("linear", 1000)
    x0 = torch.randn(6, 2, dtype=torch.float64)
    eps = torch.randn(6, 2, dtype=torch.float64)
    t = torch.tensor([0, 1, 10, 200, 600, 999])
    x_t = q_sample(s, x0, t, eps).requires_grad_(True)
    mean, var, _ = q_mean_variance(s, x0, t)
    log_q = torch.distributions.Normal(mean, var.sqrt()).log_prob(x_t).sum()
    (grad,) = torch.autograd.grad(log_q, x_t)
    torch.testing.assert_close(score_from_eps(eps, t, s), grad)


@pytest.mark.parametrize("name", SCHEDULES)
def test_tweedie_with_the_exact_score_is_the_gaussian_posterior_mean(name):
    """Data N(mu, s^2): x_t ~ N(sqrt(a) mu, a s^2 + 1 - a); E[x0 | x_t] by Gaussian conditioning."""
    sched = make_schedule(name, 1000)
    mu, sd = torch.tensor([0.5, -1.0], dtype=torch.float64), torch.tensor([0.3, 0.8],
                                                                          dtype=torch.float64)
    t = torch.tensor([0, 10, 250, 500, 900, 999])
    a = torch.tensor([_abar(sched, i) for i in t.tolist()], dtype=torch.float64)[:, None]
    x_t = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    var_t = a * sd**2 + 1 - a
    score = -(x_t - a.sqrt() * mu) / var_t
    posterior_mean = mu + a.sqrt() * sd**2 / var_t * (x_t - a.sqrt() * mu)
    torch.testing.assert_close(tweedie_x0(x_t, score, t, sched), posterior_mean)
    # the score view and the noise view agree: Tweedie of eps's score is x0_from_eps
    eps = torch.randn(6, 2, dtype=torch.float64)
    torch.testing.assert_close(tweedie_x0(x_t, score_from_eps(eps, t, sched), t, sched),
                               x0_from_eps(x_t, eps, t, sched))


# ------------------------------------------------------------------------------- bad input


def test_check_timesteps_accepts_integers_and_returns_int64():
    assert check_timesteps(3, 10).dtype == torch.int64
    torch.testing.assert_close(check_timesteps([0, 9], 10), torch.tensor([0, 9]))
    torch.testing.assert_close(check_timesteps(torch.tensor([1, 2], dtype=torch.int32), 10),
                               torch.tensor([1, 2]))


def test_check_timesteps_errors_name_t_values_and_range():
    with pytest.raises(ValueError, match=r"t must lie in \[0, T-1\] = \[0, 9\]; got \[10, -1\]"):
        check_timesteps(torch.tensor([0, 10, 3, -1]), 10)
    with pytest.raises(ValueError, match=r"and 2 more"):
        check_timesteps(torch.arange(10, 17), 10)
    with pytest.raises(TypeError, match=r"t must hold integer timesteps in \[0, T-1\] = "
                                        r"\[0, 9\].*float32"):
        check_timesteps(torch.tensor([0.5]), 10)
    with pytest.raises(TypeError, match=r"t must hold integer timesteps"):
        check_timesteps(0.5, 10)
    with pytest.raises(TypeError, match=r"t must hold integer timesteps"):
        check_timesteps(True, 10)
    with pytest.raises(ValueError, match=r"T must be an integer >= 1; got 0"):
        check_timesteps(0, 0)


def test_shape_and_type_errors_name_the_argument():
    s = make_schedule("linear", 10)
    x0 = torch.zeros(4, 2)
    with pytest.raises(ValueError, match=r"noise must have the shape of x0, \(4, 2\); got "
                                         r"\(4, 3\)"):
        q_sample(s, x0, 1, torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"t must have shape \(B,\) = \(4,\).*got shape \(3,\)"):
        q_sample(s, x0, torch.tensor([1, 2, 3]), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"x0 must be a floating-point tensor.*torch.int64"):
        q_sample(s, torch.zeros(4, 2, dtype=torch.int64), 1, torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"x_t must have the shape of x0"):
        q_posterior_mean_variance(s, x0, torch.zeros(4), 1)
    with pytest.raises(TypeError, match=r"schedule must be a NoiseSchedule.*Tensor"):
        q_sample(s.betas, x0, 1, x0)
    with pytest.raises(ValueError, match=r"t must lie in \[0, T-1\] = \[0, 9\]; got \[10\]"):
        q_mean_variance(s, x0, 10)
    with pytest.raises(ValueError, match=r"pred must have the shape of x_t"):
        convert(torch.zeros(4, 1), x_t=x0, t=1, schedule=s, source="eps", target="x0")


@pytest.mark.parametrize("arg", ["source", "target"])
def test_unknown_parameterization_lists_the_valid_ones(arg):
    kw = {"source": "eps", "target": "x0", arg: "score"}
    with pytest.raises(ValueError, match=f"{arg} must be one of") as e:
        convert(torch.zeros(2, 1), x_t=torch.zeros(2, 1), t=0, schedule=make_schedule("linear", 5),
                **kw)
    for p in PARAMETERIZATIONS:
        assert repr(p) in str(e.value)
