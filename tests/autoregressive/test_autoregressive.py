"""genlib.autoregressive: causality of every mask and model by input gradients and by
perturbation, the likelihood against conditionals computed one pixel at a time, the fast samplers
against a naive one, reproducibility, training, and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from genlib.autoregressive import (
    MaskedConv2d,
    PixelCNN,
    PixelCNNConfig,
    PixelRNN,
    PixelRNNConfig,
    causal_mask,
    log_prob,
    nll,
    sample,
)
from genlib.autoregressive.inference import _draw

# ---------------------------------------------------------------------------------------------
# Masks


def test_masks_of_a_3x3_kernel():
    a = causal_mask(3, "A", 1, 1)[0, 0]
    b = causal_mask(3, "B", 1, 1)[0, 0]
    assert a.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    assert causal_mask(1, "A", 1, 1).sum() == 0 and causal_mask(1, "B", 1, 1).sum() == 1


def test_channel_groups_at_the_centre():
    """RGB: output group j sees input groups c < j (A) or c <= j (B) at the centre pixel."""
    for kind, want in (("A", [[0, 0, 0], [1, 0, 0], [1, 1, 0]]),
                       ("B", [[1, 0, 0], [1, 1, 0], [1, 1, 1]])):
        m = causal_mask(3, kind, 6, 3, image_channels=3)        # 2 input features per group
        centre = m[:, ::2, 1, 1]                                # one input feature per group
        assert centre.tolist() == want
        assert (m[:, :, 0, :] == 1).all() and (m[:, :, 2, :] == 0).all()


def _future(h: int, w: int, i: int, j: int) -> torch.Tensor:
    idx = torch.arange(h * w).view(h, w)
    return idx >= i * w + j


@pytest.mark.parametrize("kind", ["A", "B"])
def test_masked_conv_stack_is_causal(kind):
    """Three stacked masked layers (first of type `kind`, then B): the gradient of the output at
    every pixel is zero for every later input pixel, and for the pixel itself under type A."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(MaskedConv2d(1, 4, 5, kind), torch.nn.ReLU(),
                              MaskedConv2d(4, 4, 3, "B"), torch.nn.ReLU(),
                              MaskedConv2d(4, 1, 3, "B"))
    h = w = 7
    for i in range(h):
        for j in range(w):
            x = torch.randn(1, 1, h, w, requires_grad=True)
            net(x)[0, 0, i, j].backward()
            g = x.grad[0, 0] != 0
            later = _future(h, w, i, j)
            if kind == "B":
                later[i, j] = False
            assert not g[later].any(), (i, j)
    assert g[i, j - 1]  # it does see the pixel to its left


# ---------------------------------------------------------------------------------------------
# Models: causality


def _models(shape=(1, 6, 6), levels=2):
    torch.manual_seed(0)
    return {
        "plain": PixelCNN(PixelCNNConfig(image_shape=shape, levels=levels, kind="plain",
                                         channels=8, n_layers=2, first_kernel=5)),
        "gated": PixelCNN(PixelCNNConfig(image_shape=shape, levels=levels, channels=8,
                                         n_layers=2, first_kernel=5)),
        "gated-cond": PixelCNN(PixelCNNConfig(image_shape=shape, levels=levels, channels=8,
                                              n_layers=2, first_kernel=5, n_classes=3)),
        "rnn": PixelRNN(PixelRNNConfig(image_shape=shape, levels=levels, hidden=16, embed=8)),
    }


def _labels(name: str, b: int) -> torch.Tensor | None:
    return torch.arange(b) % 3 if name == "gated-cond" else None


def _call(model, x, y):
    return model(x, y) if isinstance(model, PixelCNN) else model(x)


@pytest.mark.parametrize("name", ["plain", "gated", "gated-cond"])
def test_pixelcnn_is_causal_by_input_gradients(name):
    model = _models()[name]
    y = _labels(name, 1)
    for i in range(6):
        for j in range(6):
            x = torch.bernoulli(torch.full((1, 1, 6, 6), 0.5)).requires_grad_(True)
            _call(model, x, y)[0, 0, :, i, j].sum().backward()
            g = x.grad[0, 0] != 0
            assert not g[_future(6, 6, i, j)].any(), (name, i, j)


def test_blind_spot_of_the_plain_pixelcnn_and_none_in_the_gated_one():
    """At pixel (4, 2) of a 6x6 image, the plain model never sees (3, 5) (up and to the right,
    beyond its first layer's reach: the blind spot); the gated one sees every earlier pixel."""
    models = _models()
    seen = {}
    for name in ("plain", "gated"):
        x = torch.bernoulli(torch.full((1, 1, 6, 6), 0.5)).requires_grad_(True)
        models[name](x)[0, 0, :, 4, 2].sum().backward()
        seen[name] = x.grad[0, 0] != 0
    past = ~_future(6, 6, 4, 2)
    assert seen["plain"][3, 4] and not seen["plain"][3, 5]
    assert seen["gated"][past].all()


@pytest.mark.parametrize("name", ["plain", "gated", "gated-cond", "rnn"])
def test_logits_do_not_change_when_later_pixels_do(name):
    model = _models()[name].eval()
    y = _labels(name, 2)
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((2, 1, 6, 6), 0.5), generator=g)
    with torch.no_grad():
        base = _call(model, x, y)
        for t in (0, 7, 20, 35):
            i, j = divmod(t, 6)
            x2 = x.clone().flatten(2)
            x2[:, :, t:] = torch.bernoulli(torch.full_like(x2[:, :, t:], 0.5), generator=g)
            out = _call(model, x2.view_as(x), y)
            assert torch.allclose(out[..., i, j], base[..., i, j], atol=1e-5), (name, t)


# ---------------------------------------------------------------------------------------------
# Likelihood


@pytest.mark.parametrize("name", ["plain", "gated", "gated-cond", "rnn"])
@pytest.mark.parametrize("levels", [2, 5])
def test_log_prob_equals_conditionals_one_pixel_at_a_time(name, levels):
    """log p(x) from one pass equals sum_t log p(x_t | x_<t), each conditional computed from an
    image whose pixels >= t are replaced by random levels (the model must not need them)."""
    model = _models(levels=levels)[name].eval()
    y = _labels(name, 3)
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, levels, (3, 1, 6, 6), generator=g).float() / (levels - 1)
    total = torch.zeros(3, dtype=torch.float64)
    with torch.no_grad():
        for t in range(36):
            i, j = divmod(t, 6)
            xt = x.clone().flatten(2)
            xt[:, :, t:] = torch.randint(0, levels, xt[:, :, t:].shape, generator=g).float() \
                / (levels - 1)
            logits = _call(model, xt.view_as(x), y)[:, 0, :, i, j]           # (3, L)
            k = torch.round(x[:, 0, i, j] * (levels - 1)).long()
            total += torch.log_softmax(logits.double(), -1).gather(1, k[:, None])[:, 0]
        full = log_prob(model, x, y).double()
    assert torch.allclose(full, total, atol=1e-4)
    # a distribution: the probabilities of all 2^4 images of a 2x2 model sum to one
    if levels == 2 and name == "gated":
        small = PixelCNN(PixelCNNConfig(image_shape=(1, 2, 2), channels=4, n_layers=1,
                                        first_kernel=3))
        imgs = torch.tensor([[(b >> s) & 1 for s in range(4)] for b in range(16)],
                            dtype=torch.float32).view(16, 1, 2, 2)
        with torch.no_grad():
            assert torch.logsumexp(log_prob(small, imgs).double(), 0).abs() < 1e-5


def test_nll_is_the_mean_negative_log_prob_with_its_standard_error():
    model = _models()["gated"]
    x = torch.bernoulli(torch.full((30, 1, 6, 6), 0.4), generator=torch.Generator().manual_seed(0))
    est = nll(model, x, batch_size=7)
    with torch.no_grad():
        per = -log_prob(model.eval(), x).double()
    assert est.n == 30 and est.mean == pytest.approx(float(per.mean()), rel=1e-6)
    assert est.stderr == pytest.approx(float(per.std() / math.sqrt(30)), rel=1e-5)


# ---------------------------------------------------------------------------------------------
# Sampling


def _naive_sample(model, n, y, generator, temperature=1.0):
    """One full forward pass per pixel: the definition the fast samplers must reproduce."""
    c, h, w = model.config.image_shape
    levels = model.config.levels
    x = torch.zeros(n, c, h, w)
    with torch.no_grad():
        for i in range(h):
            for j in range(w):
                for ch in range(c):
                    logits = _call(model, x, y)[:, ch, :, i, j]
                    x[:, ch, i, j] = _draw(logits, temperature, generator).float() / (levels - 1)
    return x


@pytest.mark.parametrize("name", ["plain", "gated", "gated-cond", "rnn"])
def test_fast_samplers_equal_the_naive_one(name):
    # 9 rows: more than the gated model's receptive field, so the row windows are exercised
    shape = (1, 9, 4)
    torch.manual_seed(0)
    model = _models(shape=shape, levels=3)[name].eval()
    y = _labels(name, 4)
    fast = sample(model, 4, y, generator=torch.Generator().manual_seed(5), temperature=0.8)
    slow = _naive_sample(model, 4, y, torch.Generator().manual_seed(5), temperature=0.8)
    assert torch.equal(fast, slow)
    assert set((fast * 2).unique().tolist()) <= {0.0, 1.0, 2.0}


def _colour_plain(first_kernel=9, kernel_size=5):
    torch.manual_seed(1)
    return PixelCNN(PixelCNNConfig(image_shape=(3, 6, 5), levels=4, kind="plain", channels=12,
                                   n_layers=2, kernel_size=kernel_size,
                                   first_kernel=first_kernel)).eval()


@pytest.mark.parametrize("first_kernel, kernel_size", [(9, 5), (3, 3), (15, 3)])
def test_plain_cache_gives_the_full_forward_logits_at_every_pixel(first_kernel, kernel_size):
    # colour (channel groups), a first kernel wider than the image, 5x5 blocks
    from genlib.autoregressive.inference import _PlainCache

    model = _colour_plain(first_kernel, kernel_size)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (3, 3, 6, 5), generator=g).float() / 3
    with torch.no_grad():
        full = model(x)                                             # (3, 3, 4, 6, 5)
        cache = _PlainCache(model, 3)
        for i in range(6):
            for j in range(5):
                cache.set_pixel(i, j, x[:, :, i, j])
                torch.testing.assert_close(cache.logits_at(i, j), full[..., i, j],
                                           rtol=1e-5, atol=1e-5)


def test_colour_plain_sampler_equals_the_naive_one():
    model = _colour_plain()
    fast = sample(model, 3, generator=torch.Generator().manual_seed(2))
    slow = _naive_sample(model, 3, None, torch.Generator().manual_seed(2))
    assert torch.equal(fast, slow)


def test_samples_reproduce_with_a_generator_and_temperature_sharpens():
    model = _models()["gated"]
    a = sample(model, 5, generator=torch.Generator().manual_seed(0))
    b = sample(model, 5, generator=torch.Generator().manual_seed(0))
    c = sample(model, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert model.training  # mode restored
    # very low temperature: every draw is the most probable level
    logits = torch.tensor([[0.0, 1.0, 0.5], [2.0, -1.0, 0.0]])
    k = _draw(logits, 1e-3, torch.Generator().manual_seed(0))
    assert k.tolist() == [1, 0]
    rows = []
    seen = []
    sample(model, 2, generator=torch.Generator().manual_seed(0),
           callback=lambda i, x: (rows.append(i), seen.append(x.clone())))
    assert rows == list(range(6)) and (seen[0][:, :, 1:] == 0).all()


def test_draw_matches_the_categorical_distribution():
    logits = torch.tensor([[0.0, math.log(3.0), math.log(6.0)]]).repeat(30000, 1)
    k = _draw(logits, 1.0, torch.Generator().manual_seed(0))
    freq = torch.bincount(k, minlength=3).double() / 30000
    want = torch.tensor([0.1, 0.3, 0.6], dtype=torch.float64)
    assert ((freq - want).abs() < 5 * (want * (1 - want) / 30000).sqrt()).all()


# ---------------------------------------------------------------------------------------------
# Training


@pytest.mark.parametrize("name", ["gated", "rnn"])
def test_a_short_training_run_lowers_the_loss(name):
    from genlib.data import binarized, load

    x = binarized(load("digits8x8", "train")).images[:128]
    torch.manual_seed(0)
    model = (PixelCNN(PixelCNNConfig(image_shape=(1, 8, 8), channels=16, n_layers=2,
                                     first_kernel=5)) if name == "gated"
             else PixelRNN(PixelRNNConfig(image_shape=(1, 8, 8), hidden=32)))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    before = nll(model, x).mean
    for _ in range(25):
        loss = -log_prob(model, x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = nll(model, x).mean
    assert after < before - 10, (before, after)     # from ~44 nats (64 log 2) down


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("kwargs, match", [
    ({"kernel_size": 4}, "kernel_size must be an odd positive int"),
    ({"first_kernel": 6}, "kernel_size must be an odd positive int"),
    ({"kind": "masked"}, "kind must be one of 'plain', 'gated'; got 'masked'"),
    ({"levels": 1}, "levels must be an integer >= 2"),
    ({"image_shape": (3, 8, 8), "channels": 63}, "kind='gated' models greyscale images"),
    ({"image_shape": (3, 8, 8), "kind": "plain", "channels": 16},
     r"channels \(16\) must be a multiple of the image channels \(3\)"),
    ({"kind": "plain", "n_classes": 10}, "needs kind='gated'"),
    ({"image_shape": (1, 28)}, "image_shape must be"),
])
def test_bad_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PixelCNNConfig(**kwargs)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="kernel_size must be an odd"):
        MaskedConv2d(1, 4, 2, "A")
    with pytest.raises(ValueError, match="mask_type must be 'A' or 'B'"):
        causal_mask(3, "C", 1, 1)
    with pytest.raises(ValueError, match="PixelRNN models greyscale"):
        PixelRNNConfig(image_shape=(3, 8, 8))
    model = PixelCNN(PixelCNNConfig(image_shape=(1, 8, 8), channels=8, n_layers=1))
    with pytest.raises(ValueError, match=r"x: expected images of shape \(B, 1, 8, 8\).*"
                                         r"got \(2, 1, 28, 28\)"):
        log_prob(model, torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="x: this model has 2 grey levels.*binarize"):
        log_prob(model, torch.full((2, 1, 8, 8), 0.3))
    with pytest.raises(ValueError, match="unconditional"):
        model(torch.zeros(2, 1, 8, 8), torch.tensor([0, 1]))
    cond = PixelCNN(PixelCNNConfig(image_shape=(1, 8, 8), channels=8, n_layers=1, n_classes=3))
    with pytest.raises(ValueError, match="conditional"):
        cond(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        cond(torch.zeros(2, 1, 8, 8), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="temperature must be"):
        sample(model, 2, temperature=0.0)
    with pytest.raises(ValueError, match="n must be a positive int"):
        sample(model, 0)
    with pytest.raises(ValueError, match="model must be"):
        log_prob(torch.nn.Linear(2, 2), torch.zeros(2, 1, 8, 8))
