"""Inception Score: its two extremes in closed form (K for confident uniform predictions, 1 for
constant ones), K/2 when half the classes are never predicted, logits vs probabilities, the
split convention, and agreement with torch-fidelity where installed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlib.metrics import inception_score


def confident_logits(labels, k, margin=60.0):
    return margin * torch.nn.functional.one_hot(labels, k).to(torch.float64)


@pytest.mark.parametrize("k", [2, 10, 37])
def test_confident_uniform_predictions_score_the_number_of_classes(k):
    logits = confident_logits(torch.arange(20 * k) % k, k)
    r = inception_score(logits, n_splits=10 if k != 37 else 1)
    assert r.value == pytest.approx(k, rel=1e-9)
    assert r.sd == pytest.approx(0.0, abs=1e-9) or r.sd is None
    assert (r.name, r.n_a, r.n_b) == ("IS", 20 * k, None)


def test_constant_predictions_score_one():
    g = torch.Generator().manual_seed(0)
    row = torch.randn(10, generator=g, dtype=torch.float64)
    assert inception_score(row.expand(500, 10)).value == pytest.approx(1.0, abs=1e-12)
    # confident but always the same class: also 1
    assert inception_score(confident_logits(torch.zeros(500, dtype=torch.long), 10)).value == \
        pytest.approx(1.0, abs=1e-12)


def test_half_the_classes_dropped_halves_the_score():
    logits = confident_logits(torch.arange(1000) % 5, 10)      # only classes 0..4 appear
    assert inception_score(logits).value == pytest.approx(5.0, rel=1e-9)


def test_matches_the_definition_on_soft_predictions():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(300, 6, generator=g, dtype=torch.float64) * 2
    p = torch.softmax(logits, 1).numpy()
    parts = [p[i * 300 // 3:(i + 1) * 300 // 3] for i in range(3)]
    scores = [math.exp(np.mean(np.sum(q * (np.log(q) - np.log(q.mean(0))), axis=1)))
              for q in parts]
    r = inception_score(logits, n_splits=3)
    assert r.value == pytest.approx(np.mean(scores), rel=1e-12)
    assert r.sd == pytest.approx(np.std(scores), rel=1e-10)
    # probabilities give the same score as the logits they come from
    assert inception_score(torch.from_numpy(p), n_splits=3, probs=True).value == \
        pytest.approx(r.value, rel=1e-10)


def test_probabilities_with_zeros():
    probs = np.zeros((40, 4))
    probs[np.arange(40), np.arange(40) % 2] = 1.0               # classes 2, 3 never predicted
    assert inception_score(probs, n_splits=2, probs=True).value == pytest.approx(2.0)


def test_agrees_with_torch_fidelity():
    isc = pytest.importorskip("torch_fidelity.metric_isc")
    logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(2)) * 3
    out = isc.isc_features_to_metric(logits, splits=10, shuffle=False)
    r = inception_score(logits)
    assert r.value == pytest.approx(out["inception_score_mean"], rel=1e-10)
    assert r.sd == pytest.approx(out["inception_score_std"], rel=1e-8)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        inception_score(torch.zeros(10))
    with pytest.raises(TypeError, match="class_histogram"):
        inception_score(torch.zeros(10, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2 classes"):
        inception_score(torch.zeros(10, 1))
    with pytest.raises(ValueError, match="n_splits=10"):
        inception_score(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="probability vector"):
        inception_score(torch.full((20, 3), 0.5), probs=True)
    with pytest.raises(ValueError, match="NaN"):
        inception_score(torch.full((20, 3), float("nan")))
