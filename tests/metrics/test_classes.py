"""Class histograms of known labels and of logits: counts, shares, smallest share, missing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genlib.metrics import ClassHistogram, class_histogram


def test_counts_shares_smallest_and_missing_classes():
    labels = [0] * 5 + [1] * 3 + [3] * 2                     # class 2 never appears
    h = class_histogram(labels, 4)
    assert h.counts == (5, 3, 0, 2) and h.n == 10
    assert h.shares == pytest.approx((0.5, 0.3, 0.0, 0.2))
    assert h.min_share == 0.0 and h.min_class == "2" and h.max_share == 0.5
    assert h.missing == ("2",)
    assert "missing: 2" in str(h) and "0: 50.0%" in str(h)


def test_balanced_labels_and_class_names():
    labels = torch.arange(1000) % 10
    h = class_histogram(labels, class_names=[f"digit {i}" for i in range(10)])
    assert h.counts == (100,) * 10 and h.min_share == pytest.approx(0.1)
    assert h.missing == () and h.min_class == "digit 0"       # first of the tied classes
    d = h.as_dict()
    assert json.loads(json.dumps(d)) == d and d["min_share"] == pytest.approx(0.1)


def test_logits_are_reduced_by_argmax():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 5.0, 4.9]])
    h = class_histogram(logits)
    assert isinstance(h, ClassHistogram) and h.counts == (1, 2, 0) and h.missing == ("2",)
    assert class_histogram(np.array([2, 2, 1]), 3).counts == (0, 1, 2)


def test_bad_inputs():
    with pytest.raises(ValueError, match="n_classes is required"):
        class_histogram([0, 1, 1])
    with pytest.raises(ValueError, match=r"class indices in 0..2, got values in 0..3"):
        class_histogram([0, 3], 3)
    with pytest.raises(ValueError, match="-1..1"):
        class_histogram([-1, 1], 3)
    with pytest.raises(ValueError, match="whole class indices"):
        class_histogram(torch.tensor([0.5, 1.0]), 2)
    with pytest.raises(ValueError, match="n_classes=4 but the logits score K=3"):
        class_histogram(torch.zeros(2, 3), 4)
    with pytest.raises(ValueError, match="must hold n_classes=3 names"):
        class_histogram([0], 3, class_names=["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        class_histogram(torch.zeros(0, dtype=torch.long), 2)
    with pytest.raises(TypeError, match="tensor, array or list"):
        class_histogram("0123", 4)
