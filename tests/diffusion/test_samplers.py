"""genlib.diffusion.samplers: DDIM with eta = 1 is DDPM, DDIM with eta = 0 is deterministic,
samplers with the exact noise predictor of Gaussian data recover that data's mean and variance,
one step of each equals diffusers' scheduler step, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from genlib.diffusion import (
    PARAMETERIZATIONS,
    SCHEDULES,
    VARIANCES,
    convert,
    ddim_step,
    ddpm_step,
    make_schedule,
    q_posterior_mean_variance,
    respace,
    sample_ddim,
    sample_ddpm,
    timestep_subsequence,
    x0_from_eps,
)

MU = torch.tensor([0.5, -1.0], dtype=torch.float64)
SD = torch.tensor([0.6, 0.45], dtype=torch.float64)


def gaussian_eps_model(schedule, mu=MU, sd=SD, parameterization="eps"):
    """The exact noise predictor E[eps | x_t] for data N(mu, diag sd^2): x_t ~ N(sqrt(a) mu,
    a sd^2 + 1 - a) and E[eps | x_t] = sqrt(1 - a) (x_t - sqrt(a) mu) / (a sd^2 + 1 - a).
    ``schedule`` is the full schedule: the model is called with its timesteps."""
    abar = schedule.alpha_bars

    def model(x, t):
        a = abar[t].to(x.dtype)[:, None]
        eps = (1 - a).sqrt() * (x - a.sqrt() * mu) / (a * sd**2 + 1 - a)
        return convert(eps, x_t=x, t=t, schedule=schedule, source="eps", target=parameterization)

    return model


# ------------------------------------------------------------------------------ timesteps


@pytest.mark.parametrize("T,steps", [(1000, 50), (1000, 1), (1000, 7), (10, 4), (10, 10), (1, 1)])
def test_timestep_subsequence_even_and_ends_at_T_minus_1(T, steps):
    ts = timestep_subsequence(T, steps)
    assert ts.dtype == torch.int64 and ts.shape == (steps,)
    assert ts[-1].item() == T - 1 and ts[0].item() >= 0
    assert (ts.diff() > 0).all()
    # each kept step is the rounded multiple (k + 1) T / steps, minus one
    expected = [round((k + 1) * T / steps) - 1 for k in range(steps)]  # Python rounds half to even
    assert ts.tolist() == expected
    if steps == T:
        torch.testing.assert_close(ts, torch.arange(T))


# ------------------------------------------------------------------------- DDIM versus DDPM


@pytest.mark.parametrize("name", SCHEDULES)
def test_ddim_eta1_step_is_the_ddpm_posterior_at_every_step(name):
    s = make_schedule(name, 1000)
    g = torch.Generator().manual_seed(0)
    t = torch.arange(1000)  # every step of the full schedule at once, one example each
    x_t = torch.randn(1000, 3, generator=g, dtype=torch.float64)
    pred = torch.randn(1000, 3, generator=g, dtype=torch.float64)
    for clip in (False, True):
        ddim = ddim_step(pred, x_t, t, schedule=s, eta=1.0, clip_x0=clip)
        ddpm = ddpm_step(pred, x_t, t, schedule=s, clip_x0=clip)
        torch.testing.assert_close(ddim.std**2, s.posterior_variance[:, None].expand(1000, 3),
                                   rtol=1e-10, atol=1e-300)
        torch.testing.assert_close(ddim.mean, ddpm.mean, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(ddim.x0_pred, ddpm.x0_pred)
    # and DDPM's mean is the posterior mean at the predicted x0 (Ho et al. 2020, eq. 11 / eq. 7)
    x0_hat = x0_from_eps(x_t, pred, t, s)
    post_mean, post_var, _ = q_posterior_mean_variance(s, x0_hat, x_t, t)
    out = ddpm_step(pred, x_t, t, schedule=s, clip_x0=False)
    torch.testing.assert_close(out.mean, post_mean)
    torch.testing.assert_close(out.std**2, post_var)
    alpha = s.alphas[:, None]
    eq11 = (x_t - s.betas[:, None] / (1 - s.alpha_bars[:, None]).sqrt() * pred) / alpha.sqrt()
    torch.testing.assert_close(out.mean, eq11)
    # "beta": variance beta_t at t >= 1, no noise at t = 0
    big = ddpm_step(pred, x_t, t, schedule=s, variance="beta")
    torch.testing.assert_close(big.std[1:, 0] ** 2, s.betas[1:])
    assert (big.std[0] == 0).all()


def test_ddim_eta1_sampler_equals_ddpm_sampler():
    s = make_schedule("linear", 100, beta_start=1e-3, beta_end=0.2)
    model = gaussian_eps_model(s)
    x_T = torch.randn(256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for steps in (None, 13):
        a = sample_ddpm(model, x_T, schedule=s, steps=steps, clip_x0=False,
                        generator=torch.Generator().manual_seed(2))
        b = sample_ddim(model, x_T, schedule=s, steps=steps, eta=1.0, clip_x0=False,
                        generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_ddim_eta0_is_deterministic_and_eta_positive_is_not():
    s = make_schedule("cosine", 100)
    model = gaussian_eps_model(s)
    x_T = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    kw = dict(schedule=s, steps=20, clip_x0=False)
    a = sample_ddim(model, x_T, generator=torch.Generator().manual_seed(0), **kw)
    b = sample_ddim(model, x_T, generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(a, b)
    c = sample_ddim(model, x_T, eta=0.5, generator=torch.Generator().manual_seed(0), **kw)
    d = sample_ddim(model, x_T, eta=0.5, generator=torch.Generator().manual_seed(1), **kw)
    assert (c - d).abs().min() > 0


# ------------------------------------------------------------------------ recovering the data


@pytest.mark.parametrize("sampler,kw", [(sample_ddpm, {}), (sample_ddpm, {"steps": 3}),
                                        (sample_ddim, {"steps": 1}), (sample_ddim, {"eta": 0.7})])
@pytest.mark.parametrize("parameterization", PARAMETERIZATIONS)
def test_point_mass_data_is_recovered_exactly(sampler, kw, parameterization):
    """With data x0 = c, the exact predictor gives x0_hat = c at every step, and every sampler,
    with any number of steps, ends exactly at c (the last step's x0 coefficient is 1)."""
    s = make_schedule("linear", 200, beta_start=5e-4, beta_end=0.1)
    c = torch.tensor([0.3, -0.8], dtype=torch.float64)
    model = gaussian_eps_model(s, mu=c, sd=torch.zeros(2, dtype=torch.float64),
                               parameterization=parameterization)
    x_T = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    out = sampler(model, x_T, schedule=s, parameterization=parameterization,
                  generator=torch.Generator().manual_seed(5), clip_x0=False, **kw)
    torch.testing.assert_close(out, c.expand(16, 2), rtol=0, atol=1e-9)


@pytest.mark.parametrize("sampler,kw", [
    # DDPM with the posterior variance slightly underestimates the variance (it drops the
    # uncertainty of x0 given x_t; Bao et al. 2022): exactly -0.7% / -0.9% here
    (sample_ddpm, {}),
    # DDIM is a first-order solver of the probability-flow ODE: -1.1% / -1.4% at 250 steps
    (sample_ddim, {"steps": 250}),
])
def test_samplers_with_the_exact_predictor_produce_the_gaussian_data(sampler, kw):
    """Data N(mu, diag sd^2) in 2-D: samples have its mean and variance within Monte Carlo
    tolerance (4.5 standard errors); the samplers' bias in the variance, computed exactly for these
    settings by propagating the linear-Gaussian steps, is below one standard error (1.4%)."""
    s = make_schedule("cosine", 1000)
    n = 10_000
    g = torch.Generator().manual_seed(6)
    x_T = torch.randn(n, 2, dtype=torch.float64, generator=g)
    x = sampler(gaussian_eps_model(s), x_T, schedule=s, clip_x0=False, generator=g, **kw)
    z_mean = (x.mean(0) - MU) / (SD / math.sqrt(n))
    assert (z_mean.abs() < 4.5).all(), z_mean
    rel_var = x.var(0) / SD**2 - 1
    assert (rel_var.abs() < 4.5 * math.sqrt(2 / n)).all(), rel_var
    # sanity of the check itself: the noise it started from fails it
    assert not ((x_T.var(0) / SD**2 - 1).abs() < 4.5 * math.sqrt(2 / n)).all()


@pytest.mark.parametrize("sampler", [sample_ddpm, sample_ddim])
def test_samplers_do_not_depend_on_the_parameterization(sampler):
    s = make_schedule("cosine", 100)
    x_T = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    outs = [sampler(gaussian_eps_model(s, parameterization=p), x_T, schedule=s, steps=20,
                    parameterization=p, generator=torch.Generator().manual_seed(8))
            for p in PARAMETERIZATIONS]
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], rtol=1e-8, atol=1e-8)


# ------------------------------------------------------------------------ callback, timesteps


@pytest.mark.parametrize("sampler", [sample_ddpm, sample_ddim])
def test_callback_sees_every_step_and_the_model_the_original_timesteps(sampler):
    s = make_schedule("linear", 1000)
    inner = gaussian_eps_model(s)
    seen_t = []

    def model(x, t):
        assert t.dtype == torch.int64 and t.shape == (x.shape[0],)
        seen_t.append(int(t[0]))
        return inner(x, t)

    infos = []
    x_T = torch.randn(4, 2, dtype=torch.float64)
    out = sampler(model, x_T, schedule=s, steps=10, callback=infos.append,
                  generator=torch.Generator().manual_seed(0))
    expected_t = timestep_subsequence(1000, 10).flip(0).tolist()
    assert seen_t == expected_t
    assert [i["i"] for i in infos] == list(range(10))
    assert [i["t"] for i in infos] == expected_t
    assert infos[0]["x"] is x_T
    assert all(i["x0_pred"].shape == (4, 2) for i in infos)
    # the last step returns the clipped x0 estimate (no noise at t = 0; abar_prev = 1)
    torch.testing.assert_close(out, infos[-1]["x0_pred"])
    assert infos[-1]["x0_pred"].abs().max() <= 1.0


# ------------------------------------------------------------------------- diffusers steps


def _diffusers_betas(name):
    return {"linear": "linear", "cosine": "squaredcos_cap_v2"}[name]


_PRED_TYPE = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}


def _with_our_alpha_bars(sch, s):
    """diffusers keeps alpha_bars in float32, where 1 - alpha_bar near t = 0 keeps only about
    three digits (cosine: alpha_bar_0 = 1 - 4e-5), which is why ours are float64. After checking
    its betas and alpha_bars agree with ours to float32 precision, hand it ours in float64, so
    that the comparison tests the step formulas rather than float32 rounding."""
    torch.testing.assert_close(sch.betas, s.betas.float())
    torch.testing.assert_close(sch.alphas_cumprod, s.alpha_bars.float(), rtol=1e-5, atol=1e-9)
    sch.alphas_cumprod = s.alpha_bars.clone()
    return sch


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("parameterization", PARAMETERIZATIONS)
@pytest.mark.parametrize("variance", VARIANCES)
def test_ddpm_step_equals_diffusers(name, parameterization, variance):
    """DDPMScheduler with the same betas ("squaredcos_cap_v2" is our cosine), clip_sample =
    clip_x0, variance_type "fixed_small" = "posterior" / "fixed_large" = "beta"; timesteps
    "trailing" = timestep_subsequence for the respaced case. diffusers works in float32."""
    diffusers = pytest.importorskip("diffusers")
    s = make_schedule(name, 1000)
    g = torch.Generator().manual_seed(0)
    for steps in (None, 20):
        sch = diffusers.DDPMScheduler(
            num_train_timesteps=1000, beta_schedule=_diffusers_betas(name),
            prediction_type=_PRED_TYPE[parameterization], clip_sample=True,
            variance_type={"posterior": "fixed_small", "beta": "fixed_large"}[variance],
            timestep_spacing="trailing")
        _with_our_alpha_bars(sch, s)
        if steps is None:
            ours, checked = s, [999, 998, 500, 10, 1, 0]
        else:
            sch.set_timesteps(steps)
            ours = respace(s, timestep_subsequence(1000, steps))
            torch.testing.assert_close(sch.timesteps, ours.timesteps.flip(0))
            checked = list(range(steps))
            if variance == "beta":  # diffusers adds beta noise at the last kept step (t > 0)
                checked = checked[1:]
        for i in checked:
            t_model = int(ours.timesteps[i])
            x_t = torch.randn(2, 3, 4, generator=g)
            pred = torch.randn(2, 3, 4, generator=g)
            ref = sch.step(pred, t_model, x_t, generator=torch.Generator().manual_seed(i))
            noise = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(i))
            out = ddpm_step(pred, x_t, i, schedule=ours, parameterization=parameterization,
                            variance=variance, noise=noise if i > 0 else None)
            torch.testing.assert_close(out.x0_pred, ref.pred_original_sample)
            torch.testing.assert_close(out.x_prev, ref.prev_sample)


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("parameterization", PARAMETERIZATIONS)
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_step_equals_diffusers(name, parameterization, eta):
    """DDIMScheduler with timestep_spacing="trailing" (= timestep_subsequence),
    set_alpha_to_one=True (our alpha_bar before the first step is 1, so the last step returns
    x0_hat), steps_offset=0, and use_clipped_model_output=True when clipping (we re-derive eps
    from the clipped x0, as improved-diffusion does)."""
    diffusers = pytest.importorskip("diffusers")
    s = make_schedule(name, 1000)
    g = torch.Generator().manual_seed(1)
    for clip in (True, False):
        sch = diffusers.DDIMScheduler(
            num_train_timesteps=1000, beta_schedule=_diffusers_betas(name),
            prediction_type=_PRED_TYPE[parameterization], clip_sample=clip,
            set_alpha_to_one=True, steps_offset=0, timestep_spacing="trailing")
        _with_our_alpha_bars(sch, s)
        sch.set_timesteps(50)
        ours = respace(s, timestep_subsequence(1000, 50))
        torch.testing.assert_close(sch.timesteps, ours.timesteps.flip(0))
        for i in (49, 30, 1, 0):
            t_model = int(ours.timesteps[i])
            x_t = torch.randn(2, 5, generator=g)
            pred = torch.randn(2, 5, generator=g)
            noise = torch.randn(2, 5, generator=g)
            ref = sch.step(pred, t_model, x_t, eta=eta, use_clipped_model_output=clip,
                           variance_noise=noise)
            out = ddim_step(pred, x_t, i, schedule=ours, parameterization=parameterization,
                            eta=eta, clip_x0=clip, noise=noise)
            torch.testing.assert_close(out.x0_pred, ref.pred_original_sample)
            torch.testing.assert_close(out.x_prev, ref.prev_sample)


# ------------------------------------------------------------------------------- bad input


def test_sampler_errors():
    s = make_schedule("linear", 20)
    x = torch.zeros(3, 2)
    model = lambda x, t: x  # noqa: E731
    for sampler in (sample_ddpm, sample_ddim):
        with pytest.raises(ValueError, match=r"steps must be an integer in \[1, 20\].*got 21"):
            sampler(model, x, schedule=s, steps=21)
        with pytest.raises(ValueError, match=r"steps must be an integer in \[1, 20\].*got 0"):
            sampler(model, x, schedule=s, steps=0)
        with pytest.raises(ValueError, match="parameterization must be one of") as e:
            sampler(model, x, schedule=s, steps=5, parameterization="score")
        assert all(repr(p) in str(e.value) for p in PARAMETERIZATIONS)
        with pytest.raises(ValueError, match=r"model must return a prediction of x_T's shape "
                                             r"\(3, 2\); got \(3, 1\)"):
            sampler(lambda x, t: x[:, :1], x, schedule=s, steps=5)
        with pytest.raises(ValueError, match=r"x_T must be a floating-point tensor"):
            sampler(model, torch.zeros(3, 2, dtype=torch.int64), schedule=s, steps=5)
        with pytest.raises(TypeError, match=r"callback must be callable or None"):
            sampler(model, x, schedule=s, steps=5, callback="print")
        with pytest.raises(TypeError, match=r"schedule must be a NoiseSchedule"):
            sampler(model, x, schedule=s.betas, steps=5)
    with pytest.raises(ValueError, match=r"variance must be one of 'posterior', 'beta'; got "
                                         r"'learned'"):
        sample_ddpm(model, x, schedule=s, variance="learned")
    for eta in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"eta must be a number in \[0, 1\]"):
            sample_ddim(model, x, schedule=s, steps=5, eta=eta)
    with pytest.raises(ValueError, match=r"steps must be an integer in \[1, 10\].*got 11"):
        timestep_subsequence(10, 11)
    with pytest.raises(ValueError, match=r"noise must have the shape of x_t"):
        ddpm_step(x, x, 3, schedule=s, noise=torch.zeros(3))
    with pytest.raises(ValueError, match=r"t must lie in \[0, T-1\] = \[0, 19\]; got \[20\]"):
        ddim_step(x, x, 20, schedule=s)
