"""The package: importing it does no work (the digit classifier is imported on first use) and
re-exports every module's public names."""

import subprocess
import sys

import pytest

import genlib.metrics as metrics


def test_import_does_not_load_the_classifier_and_names_resolve_lazily():
    code = ("import sys, genlib.metrics as m; "
            "assert 'genlib.metrics.features' not in sys.modules; "
            "f = m.digit_features; "
            "assert 'genlib.metrics.features' in sys.modules and callable(f)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_all_names_exist():
    for name in metrics.__all__:
        assert getattr(metrics, name) is not None, name
    assert set(metrics.__all__) <= set(dir(metrics))
    with pytest.raises(AttributeError, match="no_such_metric"):
        metrics.no_such_metric  # noqa: B018
