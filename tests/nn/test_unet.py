"""genlib.nn.unet: shapes at every supported size, exactly zero output at initialisation, the
output's dependence on t, time_scale and labels, gradients reaching every parameter, examples
kept apart, channels_last agreement, attention placed where asked, a tiny U-Net that overfits a
batch, and clear errors for bad configs and bad inputs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genlib.nn import SelfAttention2d, UNet, UNetConfig

TINY = UNetConfig(base_channels=8, channel_mults=(1, 2), groups=4, image_size=8,
                  attention_resolutions=(4,), attention_heads=2)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _model(config: UNetConfig, seed: int = 0, perturb: bool = True) -> UNet:
    """A U-Net with (optionally) a random final conv, so its output is not identically 0."""
    torch.manual_seed(seed)
    model = UNet(config)
    if perturb:
        with torch.no_grad():
            w = model.out_conv.weight
            w.copy_(torch.randn(w.shape, generator=_gen(seed)) * 0.1)
    return model


# ------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("config, size", [
    (UNetConfig(), (28, 28)),                           # 28 -> 14 -> 7, attention at 7
    (UNetConfig(), (16, 16)),
    (UNetConfig(), (32, 32)),
    (UNetConfig(), (16, 28)),                           # non-square
    (UNetConfig(channel_mults=(1, 2), image_size=14), (14, 14)),
    (UNetConfig(in_channels=3, out_channels=6, image_size=32,
                attention_resolutions=(8, 16)), (32, 32)),
])
def test_output_shape(config, size):
    model = _model(config, perturb=False)
    x = torch.randn(2, config.in_channels, *size, generator=_gen())
    out = model(x, torch.tensor([3, 999]))
    assert out.shape == (2, config.output_channels, *size)
    assert torch.equal(out, torch.zeros_like(out))  # zero-initialised final conv


def test_default_config_size_and_resolved_fields():
    c = UNetConfig()
    assert (c.output_channels, c.embedding_dim, c.size_factor) == (1, 128, 4)
    assert c.level_sizes == (28, 14, 7) and c.attention_levels == (2,)
    n = sum(p.numel() for p in UNet(c).parameters())
    assert 0.5e6 < n < 2e6
    # emb_dim follows base_channels unless given
    assert dataclasses.replace(c, base_channels=16).embedding_dim == 64
    assert UNetConfig(emb_dim=40).embedding_dim == 40


def test_attention_sits_at_the_requested_levels():
    def n_attn(c: UNetConfig) -> int:
        return sum(isinstance(m, SelfAttention2d) for m in UNet(c).modules())

    # default: the 7x7 level on the way down (1 block) and up (2 blocks), plus the middle
    assert n_attn(UNetConfig()) == 4
    assert n_attn(UNetConfig(attention_resolutions=())) == 0
    # 14x14 only: down (1) + up (2), no middle attention (the middle is at 7x7)
    assert n_attn(UNetConfig(attention_resolutions=(14,))) == 3
    assert n_attn(UNetConfig(attention_resolutions=(14,), num_res_blocks=2)) == 5


def test_lists_from_json_become_tuples():
    c = UNetConfig(channel_mults=[1, 2], attention_resolutions=[14], image_size=28)
    assert c.channel_mults == (1, 2) and c.attention_resolutions == (14,)
    assert UNetConfig(**dataclasses.asdict(c)) == c


# ------------------------------------------------------------------------- behaviour


def test_output_is_zero_at_init_and_only_the_final_conv_learns_first():
    model = _model(UNetConfig(n_classes=3), perturb=False)
    x = torch.randn(3, 1, 28, 28, generator=_gen())
    out = model(x, torch.tensor([0, 10, 500]), torch.tensor([0, 2, 3]))
    assert torch.equal(out, torch.zeros_like(out))
    (out - x).pow(2).sum().backward()
    # d out / d h = W_out = 0, so at the first step every other gradient is exactly 0
    for name, p in model.named_parameters():
        if name == "out_conv.weight":
            assert p.grad.abs().sum() > 0
        elif name != "out_conv.bias":
            assert p.grad is not None and torch.equal(p.grad, torch.zeros_like(p)), name


def test_output_depends_on_t():
    model = _model(TINY)
    x = torch.randn(1, 1, 8, 8, generator=_gen()).expand(3, -1, -1, -1)
    out = model(x, torch.tensor([1, 2, 500]))
    assert (out[0] - out[1]).abs().max() > 1e-4
    assert (out[0] - out[2]).abs().max() > 1e-3
    # float t is accepted and agrees with the same integer value
    torch.testing.assert_close(model(x, torch.tensor([1.0, 2.0, 500.0])), out)


def test_time_scale_reads_t_in_unit_interval_like_integer_steps():
    steps = _model(TINY)
    flow = UNet(dataclasses.replace(TINY, time_scale=1000.0))
    flow.load_state_dict(steps.state_dict())
    x = torch.randn(2, 1, 8, 8, generator=_gen())
    torch.testing.assert_close(flow(x, torch.tensor([0.25, 0.75])),
                               steps(x, torch.tensor([250, 750])), rtol=1e-4, atol=1e-5)


def test_output_depends_on_labels_and_the_null_class():
    model = _model(dataclasses.replace(TINY, n_classes=3))
    assert model.null_label == 3
    x = torch.randn(1, 1, 8, 8, generator=_gen()).expand(4, -1, -1, -1)
    out = model(x, torch.full((4,), 100), torch.tensor([0, 1, 2, 3]))
    for i in range(4):
        for j in range(i):
            assert (out[i] - out[j]).abs().max() > 1e-4, (i, j)
    # the label enters through the embedding: equal labels, equal outputs
    same = model(x, torch.full((4,), 100), torch.tensor([1, 1, 1, 1]))
    torch.testing.assert_close(same[0], same[3])
    torch.testing.assert_close(same[0], out[1])


def test_gradient_reaches_every_parameter():
    config = dataclasses.replace(TINY, n_classes=2, scale_shift=True)
    model = _model(config)
    x = torch.randn(3, 1, 8, 8, generator=_gen())
    out = model(x, torch.tensor([5, 50, 900]), torch.tensor([0, 1, 2]))
    out.pow(2).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_examples_do_not_mix_within_a_batch():
    model = _model(TINY)
    x = torch.randn(4, 1, 8, 8, generator=_gen())
    t = torch.tensor([1, 20, 300, 999])
    full = model(x, t)
    for i in range(4):
        torch.testing.assert_close(full[i:i + 1], model(x[i:i + 1], t[i:i + 1]),
                                   rtol=1e-4, atol=1e-6)


def test_channels_last_gives_the_same_output():
    model = _model(UNetConfig())
    x = torch.randn(2, 1, 28, 28, generator=_gen())
    t = torch.tensor([3, 700])
    ref = model(x, t)
    model_cl = model.to(memory_format=torch.channels_last)
    out = model_cl(x.contiguous(memory_format=torch.channels_last), t)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_tiny_unet_overfits_one_batch():
    # noise prediction on 8 fixed noisy images: the loss must fall far below its initial ~1
    model = _model(dataclasses.replace(TINY, n_classes=2), perturb=False)
    yy, xx = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    x0 = torch.stack([torch.sin(xx / 2 + k) * torch.cos(yy / 3 - k) for k in range(8)])[:, None]
    eps = torch.randn(8, 1, 8, 8, generator=_gen(1))
    t = torch.linspace(50, 900, 8).round().long()
    alpha_bar = (torch.cos(t / 1000 * torch.pi / 2) ** 2)[:, None, None, None]
    x_t = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps
    labels = torch.arange(8) % 3
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        loss = (model(x_t, t, labels) - eps).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(eps.pow(2).mean().item())  # zero output at the start
    assert losses[-1] < 0.05 * losses[0]


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs, match", [
    (dict(base_channels=12), r"groups=8 must divide every level's width base_channels \* "
                             r"channel_mults\[0\] = 12"),
    (dict(base_channels=8), "groups=8 equals the width 8 of level 0"),
    (dict(channel_mults=()), r"channel_mults must be a non-empty tuple .* got \(\)"),
    (dict(channel_mults=(1, 0)), r"channel_mults\[1\] must be an integer >= 1, got 0"),
    (dict(attention_resolutions=(5,)), r"attention_resolutions: 5 is not the height of a "
                                       r"level; .* the levels are \(28, 14, 7\)"),
    (dict(image_size=30), r"image_size=30 must be divisible by 4"),
    (dict(attention_heads=3), "attention_heads=3 must divide the width 64 of attention level 2"),
    (dict(time_scale=0), "time_scale must be a finite number > 0, got 0"),
    (dict(dropout=1.5), r"dropout must be a number in \[0, 1\), got 1.5"),
    (dict(n_classes=-1), "n_classes must be an integer >= 0, got -1"),
    (dict(out_channels=0), "out_channels must be an integer >= 1, got 0"),
    (dict(num_res_blocks=0), "num_res_blocks must be an integer >= 1, got 0"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNetConfig(**kwargs)


def test_config_type_error():
    with pytest.raises(ValueError, match="config must be a UNetConfig, got dict"):
        UNet({"base_channels": 16})


def test_forward_errors():
    model = _model(TINY)
    x = torch.zeros(2, 1, 8, 8)
    t = torch.tensor([1, 2])
    with pytest.raises(ValueError, match=r"x must be a float tensor of shape \(B, in_channels=1, "
                                         r"H, W\), got torch.float32 \(2, 3, 8, 8\)"):
        model(torch.zeros(2, 3, 8, 8), t)
    with pytest.raises(ValueError, match=r"x must be a float tensor .* got torch.int64"):
        model(torch.zeros(2, 1, 8, 8, dtype=torch.long), t)
    with pytest.raises(ValueError, match=r"x: height and width must be divisible by 2 .* got "
                                         r"H=8, W=7"):
        model(torch.zeros(2, 1, 8, 7), t)
    with pytest.raises(ValueError, match=r"divisible by 4 .* got H=14, W=14"):
        UNet(UNetConfig())(torch.zeros(1, 1, 14, 14), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"t must be a tensor of shape \(B,\) = \(2,\), one time "
                                         r"per image of x, got \(3,\)"):
        model(x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"t must be a tensor .* got int"):
        model(x, 5)
    with pytest.raises(ValueError, match=r"labels: this U-Net is unconditional"):
        model(x, t, torch.tensor([0, 1]))
    cond = _model(dataclasses.replace(TINY, n_classes=3))
    with pytest.raises(ValueError, match=r"labels: this U-Net is class-conditional \(n_classes=3"
                                         r"\); pass \(2,\) integer labels in 0..3"):
        cond(x, t)
    with pytest.raises(ValueError, match=r"labels must lie in 0..3 \(3 = null class\), got "
                                         r"values 0..4"):
        cond(x, t, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"labels must be an integer tensor of shape \(2,\), got "
                                         r"torch.float32"):
        cond(x, t, torch.tensor([0.0, 1.0]))
