"""MetricResult: printing with its uncertainty and sample sizes, JSON export, validation."""

from __future__ import annotations

import json

import pytest

from genlib.metrics import MetricResult


def test_str_rounds_to_the_uncertainty_and_names_sizes_and_method():
    r = MetricResult("FID", 12.3456, 10_000, 4_000, ci=(11.81, 12.97), sd=0.3,
                     method="recentred percentile bootstrap, 100 resamples")
    assert str(r) == ("FID 12.35 [11.81, 12.97] (95% recentred percentile bootstrap, "
                      "100 resamples; n=10,000 vs 4,000)")
    k = MetricResult("KID", 0.0012345, 500, 400, sd=0.00045, method="sd over 100 subsets")
    assert str(k) == "KID 0.00123 ± 0.00045 (sd) (sd over 100 subsets; n=500 vs 400)"
    assert str(MetricResult("IS", 9.87654, 100)) == "IS 9.877 (n=100)"


def test_as_dict_is_json_ready():
    r = MetricResult("precision", 0.8, 10, 20, ci=(0.7, 0.9), sd=0.05, method="bootstrap")
    d = r.as_dict()
    assert d["ci"] == [0.7, 0.9] and json.loads(json.dumps(d)) == d


def test_invalid_interval_or_sd():
    with pytest.raises(ValueError, match="lo <= hi"):
        MetricResult("FID", 1.0, 10, 10, ci=(2.0, 1.0))
    with pytest.raises(ValueError, match="sd must be >= 0"):
        MetricResult("FID", 1.0, 10, 10, sd=-1.0)
