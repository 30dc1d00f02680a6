"""The shipped digit classifier: its files, its accuracy on held-out digits, and the contract of
digit_features / digit_logits (shapes, dtype, determinism, input conversion, clear errors)."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from genlib.data import load
from genlib.metrics.features import (
    INFO_FILE,
    WEIGHTS_DIR,
    WEIGHTS_FILE,
    ClassifierConfig,
    DigitClassifier,
    as_digit_images,
    digit_classifier_info,
    digit_features,
    digit_logits,
    file_sha256,
    load_digit_classifier,
)
from genlib.train import weights_metadata


@pytest.fixture(scope="module")
def test_split():
    return load("mnist5k", "test")


@pytest.fixture(scope="module")
def shipped_logits(test_split):
    return digit_logits(test_split.images)


# ---------------------------------------------------------------------------------- the files


def test_shipped_weights_match_their_sha256_and_record():
    info = digit_classifier_info()
    path = WEIGHTS_DIR / WEIGHTS_FILE
    assert file_sha256(path) == info["sha256"]
    assert path.stat().st_size == info["file_bytes"] < 1_000_000
    # the record describes the default network, which the recipe trains
    assert info["config"] == json.loads(json.dumps(asdict(ClassifierConfig())))
    assert info["feature_dim"] == ClassifierConfig().feature_dim == 128
    assert info["recipe"] == "digit-classifier" and info["seed"] == 0
    assert info["budget"]["steps"] == info["steps"] and info["images_seen"] > 0
    assert isinstance(info["torch_version"], str) and info["test_accuracy"] >= 0.98
    # the safetensors header carries the same config; the tensors are the network's
    assert json.loads(weights_metadata(path)["config"]) == info["config"]
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    model = DigitClassifier()
    assert tensors.keys() == model.state_dict().keys()
    assert info["n_params"] == sum(p.numel() for p in model.parameters())
    assert all(t.dtype == torch.float32 for k, t in tensors.items() if "num_batches" not in k)


def test_the_recorded_recipe_exists():
    from genlib.recipes import get_recipe

    info = digit_classifier_info()
    recipe = get_recipe(info["recipe"])
    assert recipe.chapter == 8
    # the recipe's default network is the shipped one
    assert asdict(recipe.config_cls().network()) == asdict(ClassifierConfig(**info["config"]))


def test_a_damaged_weights_file_is_refused(tmp_path):
    for name in (WEIGHTS_FILE, INFO_FILE):
        shutil.copy(WEIGHTS_DIR / name, tmp_path / name)
    assert isinstance(load_digit_classifier(weights_dir=tmp_path), DigitClassifier)
    data = bytearray((tmp_path / WEIGHTS_FILE).read_bytes())
    data[-5] ^= 0x01                                   # one flipped bit inside a weight
    (tmp_path / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256 .* records .* damaged or was replaced"):
        load_digit_classifier(weights_dir=tmp_path)
    (tmp_path / INFO_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="digit_classifier.json"):
        load_digit_classifier(weights_dir=tmp_path)


def test_loaded_network_is_in_eval_mode_and_deterministic(test_split):
    model = load_digit_classifier()
    assert not model.training
    x = test_split.images[:64]
    with torch.no_grad():
        assert torch.equal(model(x), model(x))    # eval mode: no dropout, running BN statistics


# ------------------------------------------------------------------------------- the accuracy


def test_shipped_network_classifies_held_out_digits(test_split, shipped_logits):
    info = digit_classifier_info()
    pred = shipped_logits.argmax(1)
    accuracy = (pred == test_split.labels).double().mean().item()
    assert accuracy >= 0.98
    # the recorded number is this measurement (up to 2 borderline digits on another CPU)
    assert abs(accuracy - info["test_accuracy"]) <= 0.002
    per_class = [(pred[test_split.labels == c] == c).double().mean().item() for c in range(10)]
    assert min(per_class) >= 0.94
    # softmax probabilities are a sensible p(y | x): test NLL well below chance (log 10 = 2.30)
    nll = F.cross_entropy(shipped_logits, test_split.labels).item()
    assert nll < 0.1


def test_features_separate_the_digits(test_split):
    # nearest class mean in feature space, class means from the other half of the test split:
    # the penultimate layer encodes the digit, which is what FID on it compares.
    f = digit_features(test_split.images)
    y = test_split.labels
    a, b = slice(0, 500), slice(500, 1000)
    means = torch.stack([f[a][y[a] == c].mean(0) for c in range(10)])      # (10, D)
    pred = torch.cdist(f[b], means).argmin(1)
    assert (pred == y[b]).double().mean() >= 0.97


# ---------------------------------------------------------------------- features and logits


def test_features_shape_dtype_and_determinism(test_split):
    x = test_split.images[:300]
    f = digit_features(x)
    assert f.shape == (300, 128) and f.dtype == torch.float64 and f.device.type == "cpu"
    assert not f.requires_grad
    assert torch.equal(f, digit_features(x))
    # batching does not change the result
    torch.testing.assert_close(digit_features(x, batch_size=7), f, rtol=1e-5, atol=1e-6)
    # the same numbers as the module's own features(), in float64
    with torch.no_grad():
        direct = load_digit_classifier().features(x).double()
    torch.testing.assert_close(f, direct, rtol=1e-5, atol=1e-6)
    assert digit_features(x[:0]).shape == (0, 128)


def test_features_are_the_penultimate_layer(test_split):
    # logits = W features + b: the features are exactly what the last linear layer reads
    x = test_split.images[:100]
    model = load_digit_classifier()
    w, b = model.head.weight.double(), model.head.bias.double()
    torch.testing.assert_close(digit_logits(x), digit_features(x) @ w.T + b, rtol=1e-5,
                               atol=1e-5)
    assert digit_logits(x).shape == (100, 10) and digit_logits(x).dtype == torch.float64


def test_uint8_float_numpy_and_tensor_inputs_agree(test_split):
    x_uint8 = torch.round(test_split.images[:200] * 255).to(torch.uint8)
    x_float = x_uint8.to(torch.float32) / 255
    f = digit_features(x_float)
    assert torch.equal(digit_features(x_uint8), f)
    assert torch.equal(digit_features(x_uint8.numpy()), f)
    assert torch.equal(digit_features(x_float.numpy()), f)
    assert torch.equal(digit_features(x_float.double()), f)
    assert torch.equal(digit_logits(x_uint8.numpy()), digit_logits(x_float))


def test_rounding_outside_unit_range_is_clamped_not_refused(test_split):
    x = test_split.images[:20].clone()
    nudged = x.clone()
    nudged[x == 0] = -5e-5
    nudged[x == 1] = 1 + 5e-5
    assert torch.equal(as_digit_images(nudged), x)
    assert torch.equal(digit_features(nudged), digit_features(x))


@pytest.mark.parametrize(
    ("images", "error", "match"),
    [
        (torch.rand(4, 1, 8, 8), ValueError, r"\(N, 1, 28, 28\).*8 x 8"),
        (torch.rand(4, 3, 28, 28), ValueError, r"needs \(N, 1, 28, 28\).*RGB"),
        (torch.rand(4, 28, 28), ValueError, r"shape \(4, 28, 28\).*x\[:, None\]"),
        (torch.rand(4, 784), ValueError, r"reshape\(-1, 1, 28, 28\)"),
        (torch.rand(4, 28, 28, 1), ValueError, r"permute\(0, 3, 1, 2\)"),
        (torch.rand(4, 1, 28, 28) * 255, ValueError, r"\[0, 1\].*divide by 255"),
        (torch.rand(4, 1, 28, 28) * 2 - 1, ValueError, r"\[-1, 1\].*\(x \+ 1\) / 2"),
        (torch.full((4, 1, 28, 28), float("nan")), ValueError, "NaN"),
        (torch.zeros(4, 1, 28, 28, dtype=torch.int64), TypeError, "uint8 pixels 0..255"),
        (np.zeros((4, 1, 28, 28), dtype=np.int32), TypeError, "numpy array of dtype int32"),
        ([[0.0]], TypeError, "got list"),
    ],
)
def test_bad_inputs_raise_clear_errors(images, error, match):
    with pytest.raises(error, match=match):
        digit_features(images)
    with pytest.raises(error, match=match):
        digit_logits(images)


def test_bad_batch_size_and_module_inputs():
    x = torch.zeros(2, 1, 28, 28)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        digit_features(x, batch_size=0)
    model = DigitClassifier()
    with pytest.raises(ValueError, match="uint8 .*0..255.*divide by 255"):
        model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="needs \\(N, 1, 28, 28\\)"):
        model.features(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="values in \\[0, 1\\], got values in \\[0, 255\\]"):
        model(torch.full((2, 1, 28, 28), 255.0).index_fill_(0, torch.tensor([0]), 0.0))


def test_config_validation_and_size():
    assert ClassifierConfig(channels=[8, 16, 32]).channels == (8, 16, 32)   # from JSON
    assert ClassifierConfig(channels=(8, 16, 32)).feature_dim == 32
    for bad in ((8, 16), (8, 0, 32), (8, 16, 32.0)):
        with pytest.raises(ValueError, match="channels must be three positive ints"):
            ClassifierConfig(channels=bad)
    with pytest.raises(ValueError, match="dropout must be in \\[0, 1\\), got 1.0"):
        ClassifierConfig(dropout=1.0)
    with pytest.raises(TypeError, match="config must be a ClassifierConfig"):
        DigitClassifier({"channels": (8, 16, 32)})
    n = sum(p.numel() for p in DigitClassifier().parameters())
    assert 50_000 <= n <= 200_000  # well under 1 MB as float32
    model = DigitClassifier(ClassifierConfig(channels=(4, 8, 16)))
    x = torch.rand(3, 1, 28, 28)
    assert model.features(x).shape == (3, 16) and model(x).shape == (3, 10)
