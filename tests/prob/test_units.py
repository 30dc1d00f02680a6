"""Nats, bits and bits per dimension: known values and round trips."""

from __future__ import annotations

import math

import pytest
import torch

from genlib.prob import bits_per_dim, bits_to_nats, nats_to_bits


def test_known_values():
    assert nats_to_bits(math.log(2)) == pytest.approx(1.0)
    assert bits_to_nats(1.0) == pytest.approx(math.log(2))
    assert nats_to_bits(1.0) == pytest.approx(1.4426950408889634)
    # uniform over 17 values in each of 64 dimensions: 64 ln 17 nats = log2(17) = 4.09 bits/dim
    assert bits_per_dim(64 * math.log(17), 64) == pytest.approx(math.log2(17))
    assert round(bits_per_dim(64 * math.log(17), 64), 2) == 4.09
    # a model that knows nothing about 8-bit images spends 8 bits per sub-pixel
    assert bits_per_dim(3 * 32 * 32 * math.log(256), (3, 32, 32)) == pytest.approx(8.0)
    assert bits_per_dim(784 * math.log(256), torch.Size([1, 28, 28])) == pytest.approx(8.0)


def test_round_trips_and_tensors():
    x = torch.tensor([0.0, 0.3, 12.5, 1e4], dtype=torch.float64)
    torch.testing.assert_close(bits_to_nats(nats_to_bits(x)), x)
    torch.testing.assert_close(nats_to_bits(bits_to_nats(x)), x)
    per_example = torch.tensor([100.0, 200.0])
    got = bits_per_dim(per_example, 10)
    assert isinstance(got, torch.Tensor) and got.shape == (2,)
    torch.testing.assert_close(got, nats_to_bits(per_example) / 10)
    assert isinstance(nats_to_bits(2.0), float)


@pytest.mark.parametrize("dim", [0, -3, True, 2.5, (3, 0), ()])
def test_bad_dim(dim):
    with pytest.raises(ValueError, match=rf"dim must be a positive integer.*{dim!r}"
                       .replace("(", r"\(").replace(")", r"\)")):
        bits_per_dim(10.0, dim)


def test_bad_value():
    with pytest.raises(TypeError, match="nats must be a tensor or a real number, got 'x'"):
        nats_to_bits("x")
