"""genlib.diffusion.schedules: the linear and cosine formulas, the float64 tables against
their definitions, conversions that invert, respacing, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from genlib.diffusion import (
    SCHEDULES,
    NoiseSchedule,
    alpha_bars_from_betas,
    betas_from_alpha_bars,
    make_schedule,
    respace,
)

FIELDS = ("betas", "alphas", "alpha_bars", "alpha_bars_prev", "posterior_variance",
          "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2")


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("T", [1, 2, 10, 1000])
def test_betas_in_unit_interval_alpha_bars_decreasing_float64(name, T):
    s = make_schedule(name, T)
    assert s.T == T
    for f in FIELDS:
        v = getattr(s, f)
        assert v.dtype == torch.float64 and v.shape == (T,) and v.device.type == "cpu"
    assert ((s.betas > 0) & (s.betas < 1)).all()
    assert (s.alpha_bars[1:] < s.alpha_bars[:-1]).all()
    assert ((s.alpha_bars > 0) & (s.alpha_bars < 1)).all()
    torch.testing.assert_close(s.timesteps, torch.arange(T))


def test_linear_is_ho_et_al():
    s = make_schedule()  # the defaults are the paper's: T = 1000, 1e-4 .. 0.02
    assert s.T == 1000
    assert s.betas[0].item() == pytest.approx(1e-4, rel=1e-12)
    assert s.betas[-1].item() == pytest.approx(0.02, rel=1e-12)
    torch.testing.assert_close(s.betas.diff(), torch.full((999,), (0.02 - 1e-4) / 999,
                                                          dtype=torch.float64))
    # alpha_bar_T ~ 4e-5: x_T is almost pure noise (Ho et al. 2020, sec. 4)
    assert s.alpha_bars[-1].item() == pytest.approx(
        math.prod(1 - (1e-4 + i * (0.02 - 1e-4) / 999) for i in range(1000)), rel=1e-10)


@pytest.mark.parametrize("T", [10, 1000])
def test_cosine_alpha_bar_matches_its_formula(T):
    s_off = 0.008
    s = make_schedule("cosine", T)

    def f(u):
        return math.cos((u + s_off) / (1 + s_off) * math.pi / 2) ** 2

    expected = torch.tensor([f((i + 1) / T) / f(0) for i in range(T)], dtype=torch.float64)
    clipped = s.betas == 0.999
    # only the last step is clipped (its unclipped beta would be 1: abar(T) = 0)
    assert clipped.tolist() == [False] * (T - 1) + [True]
    torch.testing.assert_close(s.alpha_bars[:-1], expected[:-1], rtol=1e-12, atol=0)
    # the clipping leaves a tiny but positive alpha_bar at the end
    assert s.alpha_bars[-1].item() == pytest.approx(expected[-2].item() * (1 - 0.999))
    assert make_schedule("cosine", T, max_beta=0.5).betas.max().item() == 0.5


@pytest.mark.parametrize("name", SCHEDULES)
def test_posterior_tables_match_their_definitions(name):
    s = make_schedule(name, 50)
    ab = [math.prod(1 - b for b in s.betas[: i + 1].tolist()) for i in range(50)]
    prev = [1.0] + ab[:-1]
    b = s.betas.tolist()
    torch.testing.assert_close(s.alpha_bars, torch.tensor(ab, dtype=torch.float64))
    torch.testing.assert_close(s.alpha_bars_prev, torch.tensor(prev, dtype=torch.float64))
    tilde = [b[i] * (1 - prev[i]) / (1 - ab[i]) for i in range(50)]
    torch.testing.assert_close(s.posterior_variance, torch.tensor(tilde, dtype=torch.float64))
    assert s.posterior_variance[0].item() == 0.0  # q(x_{-1} | x_0, x_0) is a point mass
    torch.testing.assert_close(s.posterior_log_variance_clipped,
                               torch.tensor([math.log(tilde[1])] + [math.log(v) for v in tilde[1:]],
                                            dtype=torch.float64))
    torch.testing.assert_close(s.posterior_mean_coef1, torch.tensor(
        [b[i] * math.sqrt(prev[i]) / (1 - ab[i]) for i in range(50)], dtype=torch.float64))
    torch.testing.assert_close(s.posterior_mean_coef2, torch.tensor(
        [(1 - prev[i]) * math.sqrt(1 - b[i]) / (1 - ab[i]) for i in range(50)],
        dtype=torch.float64))
    # T = 1: no tilde beta_1 to clip to, the log-variance falls back to log beta_0
    one = make_schedule(name, 1)
    torch.testing.assert_close(one.posterior_log_variance_clipped, one.betas.log())


def test_conversions_invert_each_other():
    g = torch.Generator().manual_seed(0)
    for T in (1, 7, 1000):
        betas = 10 ** (-5 + 4.5 * torch.rand(T, generator=g, dtype=torch.float64))  # 1e-5..0.3
        abar = alpha_bars_from_betas(betas)
        torch.testing.assert_close(abar, torch.cumprod(1 - betas, 0), rtol=1e-12, atol=0)
        torch.testing.assert_close(betas_from_alpha_bars(abar), betas, rtol=1e-9, atol=0)
        torch.testing.assert_close(alpha_bars_from_betas(betas_from_alpha_bars(abar)), abar,
                                   rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", SCHEDULES)
def test_respace_with_every_timestep_is_the_identity(name):
    s = make_schedule(name, 1000)
    r = respace(s, torch.arange(1000))
    for f in FIELDS:
        torch.testing.assert_close(getattr(r, f), getattr(s, f), rtol=1e-9, atol=1e-15)
    torch.testing.assert_close(r.timesteps, s.timesteps)


def test_respace_keeps_alpha_bars_and_composes():
    s = make_schedule("linear", 100)
    keep = torch.tensor([3, 10, 50, 99])
    r = respace(s, keep)
    assert r.T == 4
    torch.testing.assert_close(r.alpha_bars, s.alpha_bars[keep], rtol=1e-12, atol=0)
    torch.testing.assert_close(r.timesteps, keep)
    # new beta_i = 1 - abar_{t_i} / abar_{t_{i-1}} (improved-diffusion's respacing)
    ab = s.alpha_bars[keep].tolist()
    expected = [1 - ab[0]] + [1 - ab[i] / ab[i - 1] for i in range(1, 4)]
    torch.testing.assert_close(r.betas, torch.tensor(expected, dtype=torch.float64))
    # respacing a respaced schedule keeps the original timesteps
    rr = respace(r, [1, 3])
    torch.testing.assert_close(rr.timesteps, torch.tensor([10, 99]))
    torch.testing.assert_close(rr.alpha_bars, s.alpha_bars[[10, 99]], rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", SCHEDULES)
def test_snr_strictly_decreasing_and_log_snr_consistent(name):
    s = make_schedule(name, 1000)
    snr = s.snr()
    assert (snr[1:] < snr[:-1]).all()
    torch.testing.assert_close(s.log_snr(), snr.log())
    t = torch.tensor([0, 10, 999])
    a = s.alpha_bars[t]
    torch.testing.assert_close(s.snr(t), a / (1 - a))
    assert s.snr(5).item() == pytest.approx(s.alpha_bars[5].item() / (1 - s.alpha_bars[5].item()))


def test_from_betas_builds_the_same_schedule():
    s = make_schedule("cosine", 30)
    r = NoiseSchedule.from_betas(s.betas.tolist())
    for f in FIELDS:
        torch.testing.assert_close(getattr(r, f), getattr(s, f))


# ------------------------------------------------------------------------------- bad input


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="name must be one of") as e:
        make_schedule("quadratic")
    for n in SCHEDULES:
        assert repr(n) in str(e.value)
    assert "'quadratic'" in str(e.value)


@pytest.mark.parametrize("T", [0, -3, 2.5, True, "10"])
def test_bad_T(T):
    with pytest.raises(ValueError, match=r"T must be an integer >= 1.*got"):
        make_schedule("linear", T)


@pytest.mark.parametrize("kw", [dict(beta_start=0.0), dict(beta_start=0.03, beta_end=0.02),
                                dict(beta_end=1.0), dict(beta_start=-1e-4)])
def test_bad_linear_beta_range(kw):
    with pytest.raises(ValueError, match=r"0 < beta_start <= beta_end < 1; got beta_start="):
        make_schedule("linear", 10, **kw)


def test_bad_cosine_parameters():
    with pytest.raises(ValueError, match=r"max_beta must lie in \(0, 1\); got 1.0"):
        make_schedule("cosine", 10, max_beta=1.0)
    with pytest.raises(ValueError, match=r"s must be a finite offset >= 0; got -0.1"):
        make_schedule("cosine", 10, s=-0.1)


def test_bad_betas_and_alpha_bars():
    with pytest.raises(ValueError, match=r"betas must all lie in \(0, 1\)"):
        alpha_bars_from_betas([0.1, 1.0])
    with pytest.raises(ValueError, match=r"betas must be a non-empty 1-D"):
        alpha_bars_from_betas(torch.zeros(2, 2) + 0.1)
    with pytest.raises(ValueError, match=r"alpha_bars must be strictly decreasing.*"
                                         r"alpha_bars\[2\] = 0.8 >= alpha_bars\[1\] = 0.8"):
        betas_from_alpha_bars([0.9, 0.8, 0.8])
    with pytest.raises(ValueError, match=r"alpha_bars must all lie in \(0, 1\)"):
        betas_from_alpha_bars([1.0, 0.5])
    with pytest.raises(ValueError, match=r"timesteps must be T = 2 integers"):
        NoiseSchedule.from_betas([0.1, 0.2], timesteps=[0])


def test_bad_respace_timesteps():
    s = make_schedule("linear", 10)
    with pytest.raises(ValueError, match=r"strictly increasing; got timesteps\[1\] = 5, "
                                         r"timesteps\[2\] = 5"):
        respace(s, [1, 5, 5])
    with pytest.raises(ValueError, match=r"strictly increasing"):
        respace(s, [5, 1])
    with pytest.raises(ValueError, match=r"timesteps must lie in \[0, T-1\] = \[0, 9\]; got "
                                         r"\[10\]"):
        respace(s, [0, 10])
    with pytest.raises(ValueError, match=r"timesteps must lie in \[0, T-1\].*\[-1\]"):
        respace(s, [-1, 3])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        respace(s, torch.tensor([], dtype=torch.int64))
    with pytest.raises(ValueError, match="timesteps must be integers"):
        respace(s, [0.0, 1.0])
    with pytest.raises(TypeError, match="schedule must be a NoiseSchedule"):
        respace(s.betas, [0, 1])


def test_snr_checks_timesteps():
    with pytest.raises(ValueError, match=r"t must lie in \[0, T-1\] = \[0, 9\]; got \[10\]"):
        make_schedule("linear", 10).snr(torch.tensor([3, 10]))
