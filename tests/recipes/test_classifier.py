"""Recipe digit-classifier: augmentation geometry, the schedule, the evaluation arithmetic, a
short run that learns, exact resume, export of weights, and (slow) the shipped accuracy."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from genlib.data import load
from genlib.metrics.features import (
    INFO_FILE,
    WEIGHTS_FILE,
    digit_classifier_info,
    file_sha256,
    load_digit_classifier,
)
from genlib.recipes import get_recipe
from genlib.recipes.classifier import (
    DigitClassifierConfig,
    affine_warp,
    evaluate_classifier,
    export_weights,
    load_model,
    lr_factor,
    random_affine,
    sample,
    train,
)
from genlib.train import Budget, seed_everything

SMALL = DigitClassifierConfig(channels=(16, 32, 64), batch_size=32, lr=1e-2, warmup_steps=5)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Small convolutions on a shared 2-core machine: two threads ran up to 30x slower than one
    # (see FACTS); the numbers tested here do not depend on it.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------ augmentation


def test_affine_warp_moves_pixels_exactly():
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    one, no_shift = torch.ones(3), torch.zeros(3, 2)
    torch.testing.assert_close(affine_warp(x, 0 * one, one, no_shift), x, atol=1e-5, rtol=0)
    # a quarter turn counter-clockwise as displayed is numpy/torch rot90
    torch.testing.assert_close(affine_warp(x, 90 * one, one, no_shift),
                               torch.rot90(x, 1, (-2, -1)), atol=1e-5, rtol=0)
    # dx = +1 moves the content one pixel right, dy = -2 two pixels up; zeros come in
    shifted = affine_warp(x, 0 * one, one, torch.tensor([[1.0, -2.0]]).expand(3, 2))
    expected = torch.zeros_like(x)
    expected[..., :26, 1:] = x[..., 2:, :27]
    torch.testing.assert_close(shifted, expected, atol=1e-5, rtol=0)


def test_affine_warp_zoom_enlarges_about_the_centre():
    # a centred 4 x 4 square zoomed by 2 becomes a centred 8 x 8 square
    x = torch.zeros(1, 1, 28, 28)
    x[..., 12:16, 12:16] = 1.0
    z = affine_warp(x, torch.zeros(1), torch.full((1,), 2.0), torch.zeros(1, 2))
    assert z[..., 11:17, 11:17].min() > 0.99 and z.sum().item() == pytest.approx(64.0, abs=1e-3)


def test_random_affine_is_seeded_and_stays_in_range():
    x = load("mnist5k", "test").images[:16]
    a = random_affine(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, random_affine(x, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, random_affine(x, torch.Generator().manual_seed(2)))
    assert a.min() >= 0 and a.max() <= 1 and a.shape == x.shape
    # ink is moved, not made: the mass of a digit changes only by the zoom (at most 1.1^2)
    ratio = a.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert ((ratio > 0.9**2 - 0.02) & (ratio < 1.1**2 + 0.02)).all()
    # zero ranges: the identity
    same = random_affine(x, torch.Generator(), max_shift_px=0, max_rotation_deg=0, max_zoom=0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)


# ------------------------------------------------------------------------ schedule, evaluation


def test_lr_factor_warms_up_then_follows_a_cosine_to_zero():
    f = [lr_factor(s, warmup_steps=10, total_steps=110) for s in range(111)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0) and f[60] == pytest.approx(0.5) and f[110] == 0.0
    assert f[35] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    assert lr_factor(500, warmup_steps=10, total_steps=None) == 1.0


class _Oracle(nn.Module):
    """Predicts the digit written as the value of pixel (0, 0, 0) times 10 (a known classifier)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        k = torch.round(x[:, 0, 0, 0] * 10).long()
        return torch.nn.functional.one_hot(k, 10).float() * 5.0


def test_evaluate_classifier_counts_like_a_confusion_matrix():
    labels = torch.arange(10).repeat(3)                        # 30 digits, 3 per class
    pred = labels.clone()
    pred[[0, 10, 20]] = 1                                      # every 0 read as 1
    pred[5] = 9                                                # one 5 read as 9
    x = torch.zeros(30, 1, 28, 28)
    x[:, 0, 0, 0] = pred.float() / 10
    m = evaluate_classifier(_Oracle(), x, labels, batch_size=7)
    assert m["accuracy"] == pytest.approx(26 / 30)
    assert m["per_class_accuracy"]["0"] == 0.0 and m["per_class_accuracy"]["5"] == 2 / 3
    assert m["min_class_accuracy"] == 0.0 and m["n"] == 30
    conf = np.array(m["confusion"])
    assert conf.sum() == 30 and conf[0, 1] == 3 and conf[5, 9] == 1 and conf[1, 1] == 3
    # NLL of logits 5 * one_hot: log(e^5 + 9) - 5 when right, log(e^5 + 9) when wrong
    lse = math.log(math.exp(5) + 9)
    assert m["nll_nats"] == pytest.approx((26 * (lse - 5) + 4 * lse) / 30)


def test_config_validation():
    assert DigitClassifierConfig(channels=[8, 16, 32]).channels == (8, 16, 32)
    for kw, match in [({"batch_size": 0}, "batch_size must be a positive int"),
                      ({"lr": 0.0}, "lr must be > 0"),
                      ({"ema_decay": 1.0}, "ema_decay must be in \\[0, 1\\)"),
                      ({"max_zoom": 1.0}, "max_zoom must be in \\[0, 1\\)"),
                      ({"schedule_steps": 0}, "schedule_steps must be a positive int or None"),
                      ({"channels": (8, 16)}, "channels must be three positive ints")]:
        with pytest.raises(ValueError, match=match):
            DigitClassifierConfig(**kw)


# ---------------------------------------------------------------------------------- training


def test_registered_with_quick_and_full_budgets():
    recipe = get_recipe("digit-classifier")
    assert recipe.chapter == 8 and recipe.config_cls is DigitClassifierConfig
    assert recipe.quick.steps < recipe.full.steps and recipe.full.reproducible
    with pytest.raises(ValueError, match="a classifier: it has nothing to sample"):
        recipe.sample("some_run", 4, seed=0)
    with pytest.raises(ValueError, match="nothing to sample"):
        sample("some_run", 4)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """100 steps of 32 digits (3,200 images, about 3 s) of a small network, seed 0."""
    run_dir = tmp_path_factory.mktemp("short")
    seed_everything(0)
    metrics = train(SMALL, run_dir, budget=Budget(steps=100), progress=False)
    (run_dir / "recipe.json").write_text(json.dumps({"seed": 0}))
    return run_dir, metrics


def test_a_short_run_learns(short_run):
    run_dir, metrics = short_run
    history = json.loads((run_dir / "history.json").read_text())["records"]
    losses = [r["loss"] for r in history]
    assert len(losses) == 100 and metrics["steps"] == 100 and metrics["images_seen"] == 3200
    # the cross-entropy starts near log 10 (a uniform guess) and falls
    assert np.mean(losses[:5]) > 1.8
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    assert metrics["test_accuracy"] > 0.8 and metrics["test_nll_nats"] < math.log(10) / 3
    assert set(metrics["per_class_accuracy"]) == {str(c) for c in range(10)}
    assert metrics["min_class_accuracy"] == min(metrics["per_class_accuracy"].values())
    assert metrics["feature_dim"] == 64


def test_resume_is_exact(tmp_path):
    # the same cosine schedule for both (schedule_steps): 12 steps at once == 6, then 6 more
    cfg = DigitClassifierConfig(channels=(4, 8, 16), batch_size=16, warmup_steps=3,
                                schedule_steps=12)
    seed_everything(0)
    train(cfg, tmp_path / "a", budget=Budget(steps=12), progress=False, seed=3)
    seed_everything(0)
    train(cfg, tmp_path / "b", budget=Budget(steps=6), progress=False, seed=3)
    seed_everything(123)  # the resumed run restores every stream from the checkpoint
    train(cfg, tmp_path / "b", budget=Budget(steps=12), progress=False, seed=3, resume=True)
    for ema in (False, True):
        a = load_model(tmp_path / "a", ema=ema).state_dict()
        b = load_model(tmp_path / "b", ema=ema).state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), key
    # and a different seed gives different weights
    seed_everything(0)
    train(cfg, tmp_path / "c", budget=Budget(steps=12), progress=False, seed=4)
    assert not torch.equal(load_model(tmp_path / "c").head.weight,
                           load_model(tmp_path / "a").head.weight)


def test_export_writes_weights_and_a_truthful_record(short_run, tmp_path):
    run_dir, metrics = short_run
    record = export_weights(run_dir, tmp_path)
    assert record["sha256"] == file_sha256(tmp_path / WEIGHTS_FILE)
    assert json.loads((tmp_path / INFO_FILE).read_text()) == record
    assert record["test_accuracy"] == metrics["test_accuracy"]   # EMA weights, as in train()
    assert record["config"]["channels"] == [16, 32, 64] and record["feature_dim"] == 64
    assert record["seed"] == 0 and record["steps"] == 100 and record["budget"]["steps"] == 100
    assert record["torch_version"] == torch.__version__
    model = load_digit_classifier(weights_dir=tmp_path)
    test = load("mnist5k", "test")
    assert evaluate_classifier(model, test.images, test.labels)["accuracy"] == \
        record["test_accuracy"]


def test_cli_trains_the_recipe(tmp_path, capsys):
    from genlib.cli import main

    run_dir = tmp_path / "run"
    assert main(["train", "digit-classifier", "--out", str(run_dir), "--steps", "3",
                 "--no-progress", "--device", "cpu"]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["recipe"] == "digit-classifier" and metrics["steps"] == 3
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


# ------------------------------------------------------------------------- slow: reproduction


@pytest.mark.slow
def test_recipe_reproduces_the_shipped_accuracy(tmp_path):
    """The full budget with seed 0, as recorded beside the shipped weights (2.8 minutes on one
    core of the development machines): it must reach 98% and the recorded accuracy within 0.5%
    (bit-identical weights need the same CPU kernels and thread count, so the number, not the
    hash, is compared). GENLIB_SLOW_RETRAIN=0 checks the quick budget instead (40 s, >= 95%)."""
    recipe = get_recipe("digit-classifier")
    info = digit_classifier_info()
    assert info["budget"] == {"steps": recipe.full.steps, "images": None, "seconds": None}
    full = os.environ.get("GENLIB_SLOW_RETRAIN", "1") != "0"
    seed_everything(0)
    metrics = recipe.train(DigitClassifierConfig(**info["train_config"]), tmp_path,
                           budget=recipe.full if full else recipe.quick, seed=0, progress=False)
    if full:
        assert metrics["test_accuracy"] >= 0.98 and metrics["min_class_accuracy"] >= 0.93
        assert abs(metrics["test_accuracy"] - info["test_accuracy"]) <= 0.005
    else:
        assert metrics["test_accuracy"] >= 0.95
