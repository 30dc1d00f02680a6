"""genlib.nn.MLPDenoiser: the forward pass equals a hand-written one, blocks start as the
identity, bad shapes and configs are refused with clear messages."""

import pytest
import torch
from torch.nn import functional as F

from genlib.nn import MLPDenoiser, MLPDenoiserConfig, sinusoidal_embedding


def _perturb(net: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))


def _forward_by_hand(net: MLPDenoiser, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    c = net.config
    s = sinusoidal_embedding(t, c.emb_dim, scale=c.time_scale).to(x.dtype)
    lin1, lin2 = net.time.mlp[0], net.time.mlp[2]
    e = lin2(F.silu(lin1(s)))
    h = x @ net.inp.weight.T + net.inp.bias
    for b in net.blocks:
        mu = h.mean(-1, keepdim=True)
        var = h.var(-1, unbiased=False, keepdim=True)
        n = (h - mu) / torch.sqrt(var + b.norm.eps) * b.norm.weight + b.norm.bias
        a = F.silu(n + e @ b.emb.weight.T + b.emb.bias)
        h = h + F.silu(a @ b.fc1.weight.T + b.fc1.bias) @ b.fc2.weight.T + b.fc2.bias
    mu = h.mean(-1, keepdim=True)
    var = h.var(-1, unbiased=False, keepdim=True)
    n = (h - mu) / torch.sqrt(var + net.out_norm.eps) * net.out_norm.weight + net.out_norm.bias
    return F.silu(n) @ net.out.weight.T + net.out.bias


@pytest.mark.parametrize("time_scale", [1.0, 1000.0])
def test_forward_matches_hand_written(time_scale):
    torch.manual_seed(0)
    cfg = MLPDenoiserConfig(dim=5, width=16, depth=2, emb_dim=8, time_scale=time_scale)
    net = MLPDenoiser(cfg).double()
    _perturb(net)
    x = torch.randn(7, 5, dtype=torch.float64)
    t = torch.rand(7, dtype=torch.float64) if time_scale > 1 else torch.randint(0, 1000, (7,))
    torch.testing.assert_close(net(x, t), _forward_by_hand(net, x, t))


def test_blocks_start_as_identity_so_time_is_ignored_at_init():
    torch.manual_seed(0)
    net = MLPDenoiser(MLPDenoiserConfig(dim=3, width=8, depth=3, emb_dim=4))
    x = torch.randn(4, 3)
    torch.testing.assert_close(net(x, torch.zeros(4, dtype=torch.long)),
                               net(x, torch.full((4,), 999)))
    _perturb(net)  # once the blocks' last layers move, the output depends on t
    assert not torch.allclose(net(x, torch.zeros(4, dtype=torch.long)),
                              net(x, torch.full((4,), 999)))


def test_scalar_time_is_broadcast():
    torch.manual_seed(0)
    net = MLPDenoiser(MLPDenoiserConfig(dim=2, width=8, depth=1, emb_dim=4, time_scale=1000.0))
    _perturb(net)
    x = torch.randn(3, 2)
    torch.testing.assert_close(net(x, 0.25), net(x, torch.full((3,), 0.25)))


def test_one_step_moves_every_parameter():
    torch.manual_seed(0)
    net = MLPDenoiser(MLPDenoiserConfig(dim=2, width=8, depth=2, emb_dim=4))
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(2):  # the zero-initialised layers pass gradients on from the second step
        opt.zero_grad()
        net(torch.randn(16, 2), torch.randint(0, 1000, (16,))).square().mean().backward()
        opt.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, net.parameters(), strict=True))


@pytest.mark.parametrize("kw, match", [
    ({"dim": 0}, "dim must be an integer >= 1, got 0"),
    ({"width": 2.5}, "width must be an integer"),
    ({"depth": True}, "depth must be an integer"),
    ({"emb_dim": 7}, "emb_dim must be even"),
    ({"time_scale": 0.0}, "time_scale must be a finite number > 0, got 0.0"),
    ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
])
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        MLPDenoiserConfig(**kw)


def test_bad_inputs():
    net = MLPDenoiser(MLPDenoiserConfig(dim=2, width=8, depth=1, emb_dim=4))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\) \(config.dim=2\), got "
                                         r"\(4, 3\)"):
        net(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"t must be a scalar or have shape \(4,\)"):
        net(torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(TypeError, match="config must be an MLPDenoiserConfig"):
        MLPDenoiser({"dim": 2})
