import math

import pytest
import torch

from genlib.metrics import nll_summary


def test_units_and_standard_error():
    nll = torch.tensor([100.0, 102.0, 98.0, 104.0, 96.0], dtype=torch.float64)
    out = nll_summary(nll, dim=64)
    se = nll.std(unbiased=True).item() / math.sqrt(5)
    assert out["nats"].value == pytest.approx(100.0)
    assert out["nats"].sd == pytest.approx(se)
    assert out["bits"].value == pytest.approx(100.0 / math.log(2))
    assert out["bits/dim"].value == pytest.approx(100.0 / (64 * math.log(2)))
    lo, hi = out["nats"].ci
    assert (hi - lo) / 2 == pytest.approx(1.959964 * se, rel=1e-4)
    assert out["bits/dim"].ci[0] == pytest.approx(lo / (64 * math.log(2)))
    assert all(r.n_a == 5 for r in out.values())


def test_uniform_model_over_17_levels_is_log2_17_bits_per_dim():
    nll = torch.full((10,), 64 * math.log(17), dtype=torch.float64)
    assert nll_summary(nll, 64)["bits/dim"].value == pytest.approx(math.log2(17))


@pytest.mark.parametrize("values, dim, message", [
    (torch.ones(1), 4, "at least 2 values"),
    (torch.ones(2, 2), 4, "1-D"),
    (torch.tensor([1.0, float("inf")]), 4, "non-finite"),
    (torch.ones(3), 0, "dim must be a positive int"),
])
def test_bad_input(values, dim, message):
    with pytest.raises(ValueError, match=message):
        nll_summary(values, dim)
