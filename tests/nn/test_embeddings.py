"""genlib.nn.embeddings: the sinusoids' closed form ([cos, sin] halves, known frequencies, values
at t = 0, constant norm), distinct codes for distinct steps, integer steps against scaled float
times, the time MLP against a hand-written one, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from genlib.nn import TimeEmbedding, sinusoidal_embedding


def test_values_at_zero_are_cos_one_and_sin_zero():
    e = sinusoidal_embedding(torch.zeros(3, dtype=torch.long), 8)
    torch.testing.assert_close(e, torch.tensor([[1.0] * 4 + [0.0] * 4] * 3))
    # odd dim: one zero column at the end
    e = sinusoidal_embedding(torch.zeros(2), 9)
    torch.testing.assert_close(e, torch.tensor([[1.0] * 4 + [0.0] * 5] * 2))


def test_closed_form_with_known_frequencies():
    t = torch.tensor([0.5, 1.0, 3.0, 250.0])
    dim, max_period = 10, 100.0
    half = dim // 2
    e = sinusoidal_embedding(t, dim, max_period=max_period)
    for b, tb in enumerate(t.tolist()):
        for i in range(half):
            w = max_period ** (-i / half)
            assert e[b, i].item() == pytest.approx(math.cos(tb * w), abs=1e-5)
            assert e[b, half + i].item() == pytest.approx(math.sin(tb * w), abs=1e-5)
    # the fastest frequency is exactly 1 radian per step: column 0 is cos(t), column half sin(t)
    torch.testing.assert_close(e[:, 0], torch.cos(t))
    torch.testing.assert_close(e[:, half], torch.sin(t))


def test_each_row_has_squared_norm_half():
    t = torch.randn(50, generator=torch.Generator().manual_seed(0)) * 300
    for dim in (2, 7, 32):
        e = sinusoidal_embedding(t, dim)
        torch.testing.assert_close((e**2).sum(1), torch.full((50,), float(dim // 2)))


def test_distinct_steps_get_distinct_codes():
    e = sinusoidal_embedding(torch.arange(1000), 32)
    dist = torch.cdist(e, e)
    dist.fill_diagonal_(float("inf"))
    # neighbours differ by at least |e^{i*1} - 1| = 2 sin(1/2) ~ 0.96 in the fastest pair alone
    assert dist.min() > 0.5


def test_integer_steps_match_scaled_float_times():
    t = torch.arange(0, 1000, 7)
    a = sinusoidal_embedding(t, 32)
    b = sinusoidal_embedding(t.float() / 1000, 32, scale=1000)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    # scale multiplies t before the sinusoids
    torch.testing.assert_close(sinusoidal_embedding(t.float(), 16, scale=2.5),
                               sinusoidal_embedding(t.float() * 2.5, 16))


def test_dtype_and_device():
    assert sinusoidal_embedding(torch.arange(3), 4).dtype == torch.float32
    assert sinusoidal_embedding(torch.arange(3.0, dtype=torch.float64), 4).dtype == torch.float64
    assert sinusoidal_embedding(torch.arange(3.0), 4).device == torch.device("cpu")


@pytest.mark.parametrize("kwargs, match", [
    (dict(t=torch.zeros(2, 3), dim=8), r"t must be a 1-D tensor of shape \(B,\), got \(2, 3\)"),
    (dict(t=[0, 1], dim=8), r"t must be a 1-D tensor .* got list"),
    (dict(t=torch.zeros(2, dtype=torch.bool), dim=8), "t must hold integer or real"),
    (dict(t=torch.zeros(2), dim=1), "dim must be an integer >= 2, got 1"),
    (dict(t=torch.zeros(2), dim=8.0), "dim must be an integer >= 2, got 8.0"),
    (dict(t=torch.zeros(2), dim=8, max_period=0), "max_period must be a finite number > 0"),
    (dict(t=torch.zeros(2), dim=8, scale=-1), "scale must be a finite number > 0, got -1"),
    (dict(t=torch.zeros(2), dim=8, scale=float("nan")), "scale must be a finite number > 0"),
])
def test_sinusoid_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sinusoidal_embedding(**kwargs)


def test_time_embedding_is_sinusoid_then_mlp():
    torch.manual_seed(0)
    te = TimeEmbedding(16, 24, scale=1000)
    t = torch.tensor([0.0, 0.25, 0.999])
    lin1, lin2 = te.mlp[0], te.mlp[2]
    e = sinusoidal_embedding(t * 1000, 16)
    expected = F.linear(F.silu(F.linear(e, lin1.weight, lin1.bias)), lin2.weight, lin2.bias)
    out = te(t)
    assert out.shape == (3, 24)
    torch.testing.assert_close(out, expected)
    # the same weights with scale 1 read integer steps the same way
    te1 = TimeEmbedding(16, 24, scale=1)
    te1.load_state_dict(te.state_dict())
    torch.testing.assert_close(te1(torch.tensor([0, 250, 999])), out, atol=1e-4, rtol=0)
    # it follows the MLP's dtype
    assert te.double()(t).dtype == torch.float64


def test_time_embedding_errors():
    with pytest.raises(ValueError, match="hidden must be an integer >= 1, got 0"):
        TimeEmbedding(8, 0)
    with pytest.raises(ValueError, match="scale must be a finite number > 0, got 0"):
        TimeEmbedding(8, 8, scale=0)
    with pytest.raises(ValueError, match="dim must be an integer >= 2"):
        TimeEmbedding(1, 8)
