"""EMA against its closed form, with and without warm-up; swapping; state round trip."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from genlib.train import EMA


class Tiny(nn.Module):
    """One float64 parameter vector, a float buffer and an integer buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3, dtype=torch.float64))
        self.register_buffer("stat", torch.zeros(2, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))


def _run(ema_kwargs: dict, n: int = 25):
    """Feed the parameter sequence theta_0 (initial), theta_1..theta_n through an EMA."""
    rng = np.random.default_rng(0)
    thetas = rng.normal(size=(n + 1, 3))
    model = Tiny()
    with torch.no_grad():
        model.w.copy_(torch.from_numpy(thetas[0]))
    ema = EMA(model, **ema_kwargs)
    for k in range(1, n + 1):
        with torch.no_grad():
            model.w.copy_(torch.from_numpy(thetas[k]))
            model.stat.fill_(float(k))
            model.count.fill_(k)
        ema.update(model)
    return ema, model, thetas


def test_matches_closed_form_without_warmup() -> None:
    beta, n = 0.9, 25
    ema, model, thetas = _run({"decay": beta}, n)
    # theta_ema_n = beta^n theta_0 + (1 - beta) sum_{k=1..n} beta^(n-k) theta_k
    k = np.arange(1, n + 1)
    expected = beta**n * thetas[0] + (1 - beta) * (beta ** (n - k)) @ thetas[1:]
    np.testing.assert_allclose(ema.shadow["w"].numpy(), expected, rtol=0, atol=1e-12)
    # buffers are copied, not averaged
    assert torch.equal(ema.shadow["stat"], model.stat) and int(ema.shadow["count"]) == n
    assert ema.num_updates == n


def test_matches_closed_form_with_warmup() -> None:
    beta, n = 0.99, 25
    ema, _, thetas = _run({"decay": beta, "warmup": True}, n)
    betas = np.minimum(beta, (1 + np.arange(n)) / (10 + np.arange(n)))  # beta used at update k
    # weight of theta_0 is prod_k beta_k; theta_k gets (1 - beta_k) prod_{j > k} beta_j
    weights = [(1 - betas[i]) * np.prod(betas[i + 1 :]) for i in range(n)]
    expected = np.prod(betas) * thetas[0] + np.asarray(weights) @ thetas[1:]
    np.testing.assert_allclose(ema.shadow["w"].numpy(), expected, rtol=0, atol=1e-12)
    assert np.isclose(np.prod(betas) + sum(weights), 1.0)  # an average: weights sum to one


def test_decay_zero_tracks_the_model_and_validation() -> None:
    ema, model, _ = _run({"decay": 0.0}, 3)
    assert torch.equal(ema.shadow["w"], model.w.detach())
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="decay"):
            EMA(Tiny(), decay=bad)


def test_averaged_swaps_in_and_back_even_on_error() -> None:
    ema, model, _ = _run({"decay": 0.9}, 5)
    live = model.w.detach().clone()
    with ema.averaged(model) as m:
        assert m is model and torch.equal(model.w.detach(), ema.shadow["w"])
    assert torch.equal(model.w.detach(), live)
    with pytest.raises(RuntimeError, match="boom"), ema.averaged(model):
        raise RuntimeError("boom")
    assert torch.equal(model.w.detach(), live)
    ema.copy_to(model)
    assert torch.equal(model.w.detach(), ema.shadow["w"])


def test_state_dict_round_trip_through_safe_loading() -> None:
    ema, _, _ = _run({"decay": 0.95, "warmup": True}, 7)
    buf = io.BytesIO()
    torch.save(ema.state_dict(), buf)
    buf.seek(0)
    other = EMA(Tiny(), decay=0.5)
    other.load_state_dict(torch.load(buf, weights_only=True))
    assert other.decay == 0.95 and other.warmup and other.num_updates == 7
    assert other.current_decay() == ema.current_decay()
    for k in ema.shadow:
        assert torch.equal(other.shadow[k], ema.shadow[k])


def test_mismatched_model_is_refused() -> None:
    ema = EMA(Tiny())
    with pytest.raises(KeyError, match="does not match"):
        ema.update(nn.Linear(2, 2))


def test_wrappers_are_looked_through() -> None:
    model = nn.Linear(2, 2)
    ema = EMA(nn.DataParallel(model), decay=0.5)
    assert set(ema.shadow) == {"weight", "bias"}  # not "module.weight"
    ema.update(model)  # the plain module fits the same shadow
