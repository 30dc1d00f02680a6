"""genlib.data.binarize / binarized: Bernoulli pixels, fixed seeds, clear errors."""

from __future__ import annotations

import pytest
import torch

from genlib.data import binarize, binarized, load


def test_binarize_draws_bernoulli_pixels():
    p = torch.linspace(0, 1, 11).repeat(20000, 1)
    b = binarize(p, seed=0)
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    # each column's mean is within 5 standard errors of its probability
    se = (p[0] * (1 - p[0]) / 20000).sqrt()
    assert ((b.mean(0) - p[0]).abs() <= 5 * se + 1e-9).all()
    assert torch.equal(b, binarize(p, seed=0))
    assert not torch.equal(b, binarize(p, seed=1))
    g = torch.Generator().manual_seed(0)
    assert torch.equal(binarize(p, generator=g), b)


def test_binarized_split_is_fixed():
    fixed = binarized(load("mnist5k", "test"))
    again = binarized(load("mnist5k", "test"))
    assert fixed.levels == 2 and torch.equal(fixed.images, again.images)
    assert fixed.labels is not None and len(fixed) == 1000
    grey = load("mnist5k", "test").images
    assert fixed.images.mean() == pytest.approx(float(grey.mean()), abs=0.003)


def test_binarize_rejects_bad_input():
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        binarize(torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="floating-point"):
        binarize(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="either seed or generator"):
        binarize(torch.rand(3), seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="data must be an ImageData"):
        binarized(torch.rand(2, 1, 4, 4))
