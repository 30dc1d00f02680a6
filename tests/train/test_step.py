"""autocast, grad_scaler, backward_and_step (against a hand-computed SGD update), compile."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genlib.train import (
    autocast,
    backward_and_step,
    default_precision,
    grad_scaler,
    maybe_compile,
    unwrap_model,
)


def _problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    x, y = torch.randn(16, 5, generator=g), torch.randn(16, 1, generator=g)
    return model, x, y


def _loss(model, x, y):
    return ((model(x).float() - y) ** 2).mean()


def test_autocast_fp32_and_bf16_on_cpu() -> None:
    model, x, _ = _problem()
    with autocast("cpu", "fp32"):
        assert model(x).dtype == torch.float32
    with autocast("cpu", "bf16"):
        assert model(x).dtype == torch.bfloat16
    assert model(x).dtype == torch.float32  # only inside the block


def test_unknown_precision_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"\['fp32', 'bf16', 'fp16'\].*'fp8'"):
        autocast("cpu", "fp8")
    with pytest.raises(ValueError, match="fp16"):
        autocast("cpu", "fp16")
    with pytest.raises(ValueError, match="fp16"):
        grad_scaler("cpu", "fp16")
    assert grad_scaler("cpu", "fp32") is None and grad_scaler("cpu", "bf16") is None
    assert default_precision("cpu") == "fp32"


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("clip", [None, 0.5])
def test_backward_and_step_is_one_clipped_sgd_update(precision, clip) -> None:
    model, x, y = _problem()
    params = list(model.parameters())
    before = [p.detach().clone() for p in params]
    # the expected update, computed independently with autograd.grad
    with autocast("cpu", precision):
        grads = torch.autograd.grad(_loss(model, x, y), params)
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    factor = min(1.0, clip / (float(norm) + 1e-6)) if clip is not None else 1.0
    lr = 0.1

    opt = torch.optim.SGD(params, lr=lr)
    for p in params:
        p.grad = torch.ones_like(p)  # stale gradients must be discarded (zero_grad=True)
    with autocast("cpu", precision):
        loss = _loss(model, x, y)
    returned = backward_and_step(loss, opt, clip_grad_norm=clip)

    for p, p0, g in zip(params, before, grads, strict=True):
        torch.testing.assert_close(p.detach(), p0 - lr * factor * g, rtol=1e-5, atol=1e-6)
    if clip is None:
        assert returned is None
    else:
        torch.testing.assert_close(returned.double(), norm, rtol=1e-5, atol=0)


def test_zero_grad_false_accumulates() -> None:
    model, x, y = _problem()
    params = list(model.parameters())
    before = [p.detach().clone() for p in params]
    grads = torch.autograd.grad(_loss(model, x, y), params)
    opt = torch.optim.SGD(params, lr=0.1)
    for p in params:
        p.grad = torch.ones_like(p)
    backward_and_step(_loss(model, x, y), opt, zero_grad=False)
    for p, p0, g in zip(params, before, grads, strict=True):
        torch.testing.assert_close(p.detach(), p0 - 0.1 * (g + 1), rtol=1e-5, atol=1e-6)


def test_grad_scaler_path_gives_the_unscaled_update() -> None:
    """With a GradScaler the loss is multiplied by 2^16 before backward and the gradients are
    divided again before clipping and stepping: the update equals the plain one."""
    plain, x, y = _problem()
    scaled, _, _ = _problem()
    opt_a = torch.optim.SGD(plain.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(scaled.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    backward_and_step(_loss(plain, x, y), opt_a, clip_grad_norm=0.5)
    backward_and_step(_loss(scaled, x, y), opt_b, clip_grad_norm=0.5, scaler=scaler)
    for a, b in zip(plain.parameters(), scaled.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert scaler.get_scale() == 2.0**16  # no overflow, so the scale is unchanged


def test_backward_and_step_rejects_bad_input() -> None:
    model, x, y = _problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"scalar.*\(16, 1\)"):
        backward_and_step((model(x) - y) ** 2, opt)
    with pytest.raises(ValueError, match="clip_grad_norm"):
        backward_and_step(_loss(model, x, y), opt, clip_grad_norm=0.0)


def test_maybe_compile_is_opt_in() -> None:
    model, x, _ = _problem()
    assert maybe_compile(model) is model
    assert maybe_compile(model, False) is model
    compiled = maybe_compile(model, True, backend="eager")  # no C compiler needed
    assert compiled is not model and unwrap_model(compiled) is model
    torch.testing.assert_close(compiled(x), model(x))
    with pytest.raises(TypeError, match="enabled"):
        maybe_compile(model, "yes")


def test_unwrap_model() -> None:
    model = nn.Linear(2, 2)
    assert unwrap_model(model) is model
    assert unwrap_model(nn.DataParallel(model)) is model
