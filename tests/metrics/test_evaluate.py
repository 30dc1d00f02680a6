"""evaluate_images / real_floor: the result's keys and their agreement with the metric
functions, real images at the floor and noisy ones far from it, uint8 = float, caching, the
report table, and clear errors for the usual input mistakes. Most tests inject a cheap
feature function (4 x 4 average pooling); the end-to-end tests use the shipped classifier."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genlib.data import load
from genlib.metrics import (
    RESULT_KEYS,
    clear_cache,
    evaluate_features,
    evaluate_images,
    format_report,
    real_floor,
)

INTERVAL_KEYS = {"precision_ci", "recall_ci", "density_ci", "coverage_ci"}


def pool_features(x):
    """(N, 1, 28, 28) -> (N, 49): a cheap, deterministic stand-in for a feature network."""
    return F.avg_pool2d(x, 4).flatten(1)


def always_three(x):
    """A "classifier" that calls every image a 3: logits (N, 10)."""
    return F.one_hot(torch.full((x.shape[0],), 3), 10).float()


@pytest.fixture(scope="module")
def test_uint8():
    return (load("mnist5k", "test").images * 255).round().to(torch.uint8)   # (1000, 1, 28, 28)


def noisy(images_uint8, std=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = images_uint8.float() / 255 + std * torch.randn(images_uint8.shape, generator=g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def test_keys_and_agreement_with_the_metric_functions(test_uint8):
    r = evaluate_images(test_uint8, features=pool_features, classifier=always_three, n_boot=20,
                        kid_subsets=10, generator=torch.Generator().manual_seed(3))
    assert set(r) == set(RESULT_KEYS) | INTERVAL_KEYS | {"protocol"}
    assert json.loads(json.dumps(r)) == r                       # plain JSON values
    train = load("mnist5k", "train").images
    m = evaluate_features(pool_features(test_uint8.float() / 255), pool_features(train),
                          n_boot=20, kid_subsets=10, generator=torch.Generator().manual_seed(3))
    assert r["n"] == 1000 and r["fid"] == m["fid"].value and r["fid_ci"] == list(m["fid"].ci)
    assert (r["kid"], r["kid_sd"]) == (m["kid"].value, m["kid"].sd)
    for name in ("precision", "recall", "density", "coverage"):
        assert r[name] == m[name].value and r[f"{name}_ci"] == list(m[name].ci)
    hist = r["class_hist"]
    assert hist["counts"][3] == 1000 and hist["min_share"] == 0.0 and len(hist["missing"]) == 9
    p = r["protocol"]
    assert (p["dataset"], p["split"], p["n_real"], p["feature_dim"], p["k"], p["seed"]) == (
        "mnist5k", "train", 4000, 49, 5, 3)
    assert "pool_features" in p["features"]


def test_real_images_sit_at_the_floor_and_noisy_ones_far_above(test_uint8):
    opts = {"features": pool_features, "classifier": None, "n_boot": 20, "kid_subsets": 10}
    floor = real_floor("mnist5k", **opts)
    real = evaluate_images(test_uint8, generator=torch.Generator().manual_seed(0), **opts)
    for key in ("fid", "kid", "precision", "recall", "density", "coverage"):
        assert real[key] == pytest.approx(floor[key], rel=1e-9), key
    assert floor["protocol"]["samples"] == "real: the mnist5k test split"
    bad = evaluate_images(noisy(test_uint8), **opts)
    assert bad["fid"] > 10 * floor["fid"] and bad["fid_ci"][0] > floor["fid_ci"][1]
    assert bad["kid"] > floor["kid"] + 10 * floor["kid_sd"]
    assert bad["precision"] < floor["precision"] - 0.3
    assert bad["coverage"] < floor["coverage"] - 0.3


def test_uint8_float_and_numpy_inputs_agree(test_uint8):
    opts = {"features": pool_features, "classifier": None, "n_boot": 0, "kid_subsets": 5}
    a = evaluate_images(test_uint8[:300], **opts)
    b = evaluate_images(test_uint8[:300].float() / 255, **opts)
    c = evaluate_images(test_uint8[:300].numpy(), **opts)
    assert a == b == c and a["fid_ci"] is None


def test_reference_features_and_floor_are_computed_once_per_process(test_uint8):
    clear_cache()
    calls = []

    def counting(x):
        calls.append(x.shape[0])
        return pool_features(x)

    opts = {"features": counting, "classifier": None, "n_boot": 0, "kid_subsets": 2}
    evaluate_images(test_uint8[:200], **opts)
    evaluate_images(test_uint8[200:400], **opts)
    assert calls == [4000, 200, 200]                 # the 4,000 train images only once
    first = real_floor(**opts)
    start = time.perf_counter()
    again = real_floor(**opts)
    assert again == first and time.perf_counter() - start < 0.05
    assert calls == [4000, 200, 200, 1000]           # the floor's test images, once
    again["protocol"]["dataset"] = "changed"         # callers get copies
    assert real_floor(**opts)["protocol"]["dataset"] == "mnist5k"
    clear_cache()


def test_report_lists_each_metric_with_interval_and_floor(test_uint8):
    opts = {"features": pool_features, "classifier": always_three, "n_boot": 20,
            "kid_subsets": 5}
    r = evaluate_images(test_uint8[:500], **opts)
    text = format_report(r, real_floor(**opts))
    for label in ("FID", "KID", "precision", "recall", "density", "coverage",
                  "smallest class", "missing classes", "real floor (n=1,000 test vs train)"):
        assert label in text
    fid_row = next(line for line in text.splitlines() if line.startswith("FID"))
    assert f"{r['fid_ci'][0]:.2f}"[:3] in fid_row and "0, 1, 2, 4" in text
    assert "(sd)" in next(line for line in text.splitlines() if line.startswith("KID"))


# ------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("make, error, match", [
    (lambda x: x.permute(0, 2, 3, 1), ValueError, r"channels-last.*transpose\(0, 3, 1, 2\)"),
    (lambda x: x[:, 0], ValueError, r"add the channel axis"),
    (lambda x: x.reshape(len(x), -1), ValueError, r"reshape flat pixels"),
    (lambda x: x[:, :, :8, :8], ValueError, r"\(N, 1, 28, 28\).*got \(300, 1, 8, 8\)"),
    (lambda x: x.float(), ValueError, r"0..255 stored as floats: divide by 255"),
    (lambda x: x.float() / 127.5 - 1, ValueError, r"\[-1, 1\]: map them with \(x \+ 1\) / 2"),
    (lambda x: (x > 127).to(torch.uint8), ValueError, r"cast to uint8 without scaling"),
    (lambda x: x.to(torch.int64), TypeError, r"uint8 \(0..255\) or float \(0..1\), got dtype"),
    (lambda x: torch.where(x[:, :1] > 250, float("nan"), x.float() / 255), ValueError,
     r"NaN or infinite values in \d+ of 300 images"),
    (lambda x: x[:1], ValueError, r"at least 2 samples"),
    (lambda x: x.tolist(), TypeError, r"torch.Tensor or numpy.ndarray"),
])
def test_bad_images_get_clear_errors(test_uint8, make, error, match):
    with pytest.raises(error, match=match):
        evaluate_images(make(test_uint8[:300]), features=pool_features, n_boot=0)


def test_too_few_samples_for_the_feature_dimension(test_uint8):
    with pytest.raises(ValueError, match=r"N=40 images for D=49 features.*at least 50 images"):
        evaluate_images(test_uint8[:40], features=pool_features, n_boot=0)


def test_bad_protocol_arguments(test_uint8):
    x = test_uint8[:300]
    with pytest.raises(ValueError, match="valid names: mnist5k, digits8x8"):
        evaluate_images(x, against="mnist-10k")
    with pytest.raises(ValueError, match="set of points, not images"):
        evaluate_images(x, against="toy2d-ring")
    with pytest.raises(ValueError, match="split must be one of 'train', 'test', 'all'"):
        evaluate_images(x, split="validation", features=pool_features)
    with pytest.raises(ValueError, match="features must be one of 'auto', 'digits', 'inception'"):
        evaluate_images(x, features="vgg")
    with pytest.raises(ValueError, match="no feature network for digits8x8"):
        evaluate_images(np.zeros((300, 1, 8, 8), np.uint8) + 3, against="digits8x8")
    with pytest.raises(ValueError, match="one row per image"):
        evaluate_images(x, features=lambda images: pool_features(images)[:10], n_boot=0)
    with pytest.raises(ValueError, match="classifier must be"):
        evaluate_images(x, features=pool_features, classifier="resnet", n_boot=0)
    with pytest.raises(ValueError, match="n_boot must be 0"):
        evaluate_images(x, features=pool_features, n_boot=3)


# ------------------------------------------------- end to end with the shipped classifier
def test_logits_from_features_equal_the_classifier_logits(test_uint8):
    from genlib.metrics import digit_features, digit_logits
    from genlib.metrics.evaluate import _digit_logits_from_features

    x = test_uint8[:200]
    torch.testing.assert_close(_digit_logits_from_features(digit_features(x)), digit_logits(x),
                               atol=1e-4, rtol=1e-4)


def test_digits_floor_and_a_generator_that_dropped_half_the_digits(test_uint8):
    floor = real_floor("mnist5k")
    assert "digit classifier" in floor["protocol"]["features"]
    assert floor["protocol"]["feature_dim"] == 128 and floor["n"] == 1000
    assert floor["precision"] > 0.9 and floor["recall"] > 0.9
    assert floor["fid_ci"][0] <= floor["fid"] <= floor["fid_ci"][1]
    assert floor["class_hist"]["min_share"] > 0.09 and floor["class_hist"]["missing"] == []

    # the test digits 0..4 only: a sharp but mode-dropping "generator"
    labels = load("mnist5k", "test").labels
    half = evaluate_images(test_uint8[labels < 5])
    hist = half["class_hist"]
    assert hist["missing"] == ["5", "6", "7", "8", "9"] or hist["min_share"] < 0.01
    assert sum(hist["shares"][:5]) > 0.97
    assert half["precision"] > floor["precision"] - 0.05            # every sample looks real
    assert half["recall"] < floor["recall"] - 0.3                   # half the data is missed
    assert half["coverage"] < floor["coverage"] - 0.2
    assert half["fid"] > 10 * floor["fid"] and half["fid_ci"][0] > floor["fid_ci"][1]


def test_runs_on_the_requested_threads_and_restores_the_setting(test_uint8):
    seen = []

    def recording(x):
        seen.append(torch.get_num_threads())
        return pool_features(x)

    before = torch.get_num_threads()
    evaluate_images(test_uint8[:200], features=recording, classifier=None, n_boot=0)
    assert seen[-1] == 1 and torch.get_num_threads() == before
    evaluate_images(test_uint8[:200], features=recording, classifier=None, n_boot=0,
                    num_threads=None)
    assert seen[-1] == before
    with pytest.raises(ValueError, match="num_threads must be an integer >= 1"):
        evaluate_images(test_uint8[:200], features=recording, num_threads=0)
