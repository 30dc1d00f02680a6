"""bench/bench_diffusion.py's ``--merge``: seeds measured in separate runs build up one results
file without losing the rows of the other recipes and seeds."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        path = BENCH / "bench_diffusion.py"
        spec = importlib.util.spec_from_file_location("bench_diffusion", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(BENCH))


def _row(recipe, seed, fid, **kw):
    return {"recipe": recipe, "seed": seed, "classifier_fid": fid, **kw}


def test_merge_keeps_other_rows_and_replaces_remeasured(bench):
    old = {"measured_unix": 100, "machine": {"device": "old"},
           "rows": [_row("a", 0, 1.0), _row("a", 1, 2.0), _row("b", 0, 3.0, measured_unix=50)],
           "steps_table": {"a": [{"steps": 5}], "b": [{"steps": 7}]}}
    new = {"measured_unix": 200, "machine": {"device": "new"},
           "rows": [_row("a", 1, 9.0, measured_unix=200), _row("c", 0, 4.0, measured_unix=200)],
           "steps_table": {"a": [{"steps": 6}]}}
    out = bench.merge_results(old, new)
    assert [(r["recipe"], r["seed"], r["classifier_fid"]) for r in out["rows"]] == [
        ("a", 0, 1.0), ("b", 0, 3.0), ("a", 1, 9.0), ("c", 0, 4.0)]
    # old rows keep the time they were measured: their own, else their file's
    assert [r["measured_unix"] for r in out["rows"]] == [100, 50, 200, 200]
    assert out["steps_table"] == {"a": [{"steps": 6}], "b": [{"steps": 7}]}
    assert out["machine"] == {"device": "new"} and out["measured_unix"] == 200
    assert len(old["rows"]) == 3 and "measured_unix" not in old["rows"][0]  # inputs untouched


def test_merge_into_empty_is_identity(bench):
    new = {"measured_unix": 1, "rows": [_row("a", 0, 1.0)], "steps_table": {}}
    assert bench.merge_results({}, new) == new
