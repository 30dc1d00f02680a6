"""genlib.nn.blocks: the MLP and the residual block against hand-written forwards, the residual
block reduced to its skip path, the embedding's effect, exact nearest/stride-2 resampling with
identity kernels, self-attention against softmax(QK^T/sqrt(d))V and its equivariance to pixel
permutations, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from genlib.nn import Downsample, ResBlock, SelfAttention2d, Upsample, mlp


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    """Random values everywhere (GroupNorm affine included) so no parameter hides."""
    g = _gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


# -------------------------------------------------------------------------------------- mlp


def test_mlp_is_linear_silu_linear():
    torch.manual_seed(0)
    net = mlp([3, 5, 4, 2])
    x = torch.randn(6, 3, generator=_gen())
    l1, l2, l3 = net[0], net[2], net[4]
    h = F.silu(F.linear(x, l1.weight, l1.bias))
    h = F.silu(F.linear(h, l2.weight, l2.bias))
    torch.testing.assert_close(net(x), F.linear(h, l3.weight, l3.bias))
    assert len(net) == 5  # no activation after the last layer
    assert len(mlp([3, 5, 2], dropout=0.1)) == 4  # Linear, SiLU, Dropout, Linear


@pytest.mark.parametrize("sizes, match", [
    ([3], "sizes must be a sequence of at least two widths, got \\[3\\]"),
    ("ab", "sizes must be a sequence"),
    ([3, 0], r"sizes\[1\] must be an integer >= 1, got 0"),
])
def test_mlp_errors(sizes, match):
    with pytest.raises(ValueError, match=match):
        mlp(sizes)


# -------------------------------------------------------------------------------- ResBlock


def _resblock_reference(blk: ResBlock, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    g = blk.norm1.num_groups
    h = F.group_norm(x, g, blk.norm1.weight, blk.norm1.bias, eps=blk.norm1.eps)
    h = F.conv2d(F.silu(h), blk.conv1.weight, blk.conv1.bias, padding=1)
    a = F.linear(F.silu(emb), blk.emb_proj.weight, blk.emb_proj.bias)
    n2 = blk.norm2
    if blk.scale_shift:
        scale, shift = a[:, :blk.out_ch], a[:, blk.out_ch:]
        h = F.group_norm(h, g, n2.weight, n2.bias, eps=n2.eps)
        h = h * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
    else:
        h = F.group_norm(h + a[:, :, None, None], g, n2.weight, n2.bias, eps=n2.eps)
    h = F.conv2d(F.silu(h), blk.conv2.weight, blk.conv2.bias, padding=1)
    skip = x if blk.in_ch == blk.out_ch else F.conv2d(x, blk.skip.weight, blk.skip.bias)
    return skip + h


@pytest.mark.parametrize("in_ch, out_ch", [(8, 8), (8, 12)])
@pytest.mark.parametrize("scale_shift", [False, True])
def test_resblock_matches_hand_written_forward(in_ch, out_ch, scale_shift):
    blk = ResBlock(in_ch, out_ch, 6, groups=4, scale_shift=scale_shift)
    _randomise(blk)
    x = torch.randn(3, in_ch, 5, 7, generator=_gen(1))
    emb = torch.randn(3, 6, generator=_gen(2))
    out = blk(x, emb)
    assert out.shape == (3, out_ch, 5, 7)
    torch.testing.assert_close(out, _resblock_reference(blk, x, emb))


@pytest.mark.parametrize("scale_shift", [False, True])
def test_resblock_output_depends_on_embedding(scale_shift):
    torch.manual_seed(0)
    blk = ResBlock(8, 8, 6, groups=4, scale_shift=scale_shift)
    x = torch.randn(2, 8, 4, 4, generator=_gen(1))
    e1, e2 = torch.randn(2, 2, 6, generator=_gen(2))
    assert (blk(x, e1) - blk(x, e2)).abs().max() > 1e-3
    # ... and each example reads its own embedding only
    both = blk(x, torch.stack([e1[0], e2[1]]))
    torch.testing.assert_close(both[0], blk(x, e1)[0])
    torch.testing.assert_close(both[1], blk(x, e2)[1])


@pytest.mark.parametrize("in_ch, out_ch", [(8, 8), (4, 8)])
def test_resblock_with_zeroed_last_conv_is_its_skip_path(in_ch, out_ch):
    torch.manual_seed(0)
    blk = ResBlock(in_ch, out_ch, 6, groups=4)
    with torch.no_grad():
        blk.conv2.weight.zero_()
        blk.conv2.bias.zero_()
    x = torch.randn(2, in_ch, 6, 6, generator=_gen(1))
    emb = torch.randn(2, 6, generator=_gen(2))
    out = blk(x, emb)
    if in_ch == out_ch:
        torch.testing.assert_close(out, x, rtol=0, atol=0)
    else:
        torch.testing.assert_close(out, F.conv2d(x, blk.skip.weight, blk.skip.bias))


def test_resblock_errors():
    with pytest.raises(ValueError, match="groups=8 must divide in_ch=12"):
        ResBlock(12, 16, 4, groups=8)
    with pytest.raises(ValueError, match="groups=8 equals out_ch=8"):
        ResBlock(16, 8, 4, groups=8)
    ResBlock(16, 8, 4, groups=8, scale_shift=True)  # scale-shift survives one channel per group
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\), got 1"):
        ResBlock(8, 8, 4, groups=4, dropout=1)
    blk = ResBlock(8, 8, 4, groups=4)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 8, H, W\), got \(2, 3, 4, 4\)"):
        blk(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"emb must have shape \(B, emb_dim\) = \(2, 4\), got"):
        blk(torch.zeros(2, 8, 4, 4), torch.zeros(3, 4))


# --------------------------------------------------------------------------- resampling


def _identity_kernel(conv: torch.nn.Conv2d) -> None:
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        for c in range(conv.out_channels):
            conv.weight[c, c, 1, 1] = 1.0


def test_downsample_is_a_stride_two_conv():
    d = Downsample(3)
    x = torch.randn(2, 3, 8, 6, generator=_gen())
    assert d(x).shape == (2, 3, 4, 3)
    assert d(torch.randn(1, 3, 7, 7)).shape == (1, 3, 4, 4)  # ceil(H / 2)
    _identity_kernel(d.conv)  # the centre tap of a stride-2 conv reads every other pixel
    torch.testing.assert_close(d(x), x[:, :, ::2, ::2])


def test_upsample_is_nearest_then_conv():
    u = Upsample(3)
    x = torch.randn(2, 3, 4, 5, generator=_gen())
    assert u(x).shape == (2, 3, 8, 10)
    _identity_kernel(u.conv)
    torch.testing.assert_close(u(x), x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))


def test_resampling_errors():
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3, H, W\), got \(2, 4, 4\)"):
        Downsample(3)(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="ch must be an integer >= 1, got 0"):
        Upsample(0)


# ------------------------------------------------------------------------ self-attention


def _attention_reference(att: SelfAttention2d, x: torch.Tensor) -> torch.Tensor:
    B, C, H, W = x.shape
    nh, d = att.heads, C // att.heads
    n = F.group_norm(x, att.norm.num_groups, att.norm.weight, att.norm.bias, eps=att.norm.eps)
    qkv = torch.einsum("oc,bchw->bohw", att.qkv.weight[:, :, 0, 0], n)
    qkv = qkv + att.qkv.bias[None, :, None, None]
    q, k, v = qkv.reshape(B, 3 * C, H * W).split(C, dim=1)        # each (B, C, N)
    out = torch.empty(B, C, H * W)
    for j in range(nh):                                             # head j: channels j*d..
        qj, kj, vj = (z[:, j * d:(j + 1) * d].transpose(1, 2) for z in (q, k, v))  # (B, N, d)
        weights = torch.softmax(qj @ kj.transpose(1, 2) / math.sqrt(d), dim=-1)   # (B, N, N)
        out[:, j * d:(j + 1) * d] = (weights @ vj).transpose(1, 2)
    proj = torch.einsum("oc,bcn->bon", att.proj.weight[:, :, 0, 0], out)
    proj = proj + att.proj.bias[None, :, None]
    return x + proj.reshape(B, C, H, W)


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_attention_matches_softmax_qk_v(heads):
    att = SelfAttention2d(8, heads, groups=4)
    _randomise(att, seed=heads)
    x = torch.randn(2, 8, 3, 5, generator=_gen(7))
    out = att(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, _attention_reference(att, x), rtol=1e-4, atol=1e-5)


def test_attention_is_equivariant_to_pixel_permutations():
    att = SelfAttention2d(8, 2, groups=4)
    _randomise(att)
    x = torch.randn(2, 8, 4, 5, generator=_gen(3))
    perm = torch.randperm(20, generator=_gen(4))

    def permute(z: torch.Tensor) -> torch.Tensor:
        return z.flatten(2)[:, :, perm].reshape(z.shape)

    torch.testing.assert_close(att(permute(x)), permute(att(x)), rtol=1e-4, atol=1e-5)
    # a 3x3 convolution is not: the check above is not vacuous for a spatial operator
    conv = torch.nn.Conv2d(8, 8, 3, padding=1)
    assert (conv(permute(x)) - permute(conv(x))).abs().max() > 1e-2


def test_attention_errors():
    with pytest.raises(ValueError, match="heads=3 must divide ch=8"):
        SelfAttention2d(8, 3, groups=4)
    with pytest.raises(ValueError, match="groups=8 must divide ch=12"):
        SelfAttention2d(12, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 8, H, W\)"):
        SelfAttention2d(8, 2, groups=4)(torch.zeros(1, 4, 2, 2))
