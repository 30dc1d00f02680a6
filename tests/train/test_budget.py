"""Budget validation and exhaustion; GENLIB_QUICK parsing; budget() picks by mode and says so."""

from __future__ import annotations

import dataclasses

import pytest

from genlib.train import Budget, budget, quick_mode


def test_budget_needs_a_positive_limit() -> None:
    with pytest.raises(ValueError, match="at least one limit"):
        Budget()
    for kwargs in ({"steps": 0}, {"images": -5}, {"seconds": 0.0}, {"seconds": float("inf")}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            Budget(**kwargs)
    for kwargs in ({"steps": 1.5}, {"images": True}, {"seconds": "60"}):
        with pytest.raises(TypeError, match=next(iter(kwargs))):
            Budget(**kwargs)


def test_budget_is_frozen() -> None:
    b = Budget(steps=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.steps = 4


def test_exhausted_at_whichever_limit_comes_first() -> None:
    b = Budget(steps=10, images=100, seconds=5.0)
    assert not b.exhausted(9, 99, 4.99)
    assert b.exhausted(10, 0, 0.0)
    assert b.exhausted(0, 100, 0.0)
    assert b.exhausted(0, 0, 5.0)
    only_images = Budget(images=64)
    assert not only_images.exhausted(10**9, 63, 1e9)  # other quantities are not limits
    assert only_images.exhausted(0, 64)


def test_describe_and_reproducible() -> None:
    assert Budget(steps=300).describe() == "300 steps"
    assert Budget(steps=2000, seconds=60).describe() == "2,000 steps or 60 s, whichever comes first"
    assert Budget(steps=1).reproducible and not Budget(seconds=1).reproducible


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, False), ("", False), ("0", False), ("false", False), ("No", False),
     ("1", True), ("true", True), ("YES", True), (" yes ", True), ("on", True)],
)  # fmt: skip
def test_quick_mode_parsing(monkeypatch, raw, expected) -> None:
    if raw is None:
        monkeypatch.delenv("GENLIB_QUICK", raising=False)
    else:
        monkeypatch.setenv("GENLIB_QUICK", raw)
    assert quick_mode() is expected


def test_quick_mode_rejects_typos(monkeypatch) -> None:
    monkeypatch.setenv("GENLIB_QUICK", "ture")
    with pytest.raises(ValueError, match=r"GENLIB_QUICK='ture'"):
        quick_mode()


def test_budget_picks_by_environment_and_says_which(monkeypatch, capsys) -> None:
    quick, full = Budget(steps=300), Budget(steps=20_000, seconds=600)
    monkeypatch.setenv("GENLIB_QUICK", "1")
    assert budget(quick, full) is quick
    assert capsys.readouterr().out == "genlib: quick mode (GENLIB_QUICK=1): 300 steps\n"
    monkeypatch.delenv("GENLIB_QUICK")
    assert budget(quick, full) is full
    assert capsys.readouterr().out == (
        "genlib: full mode (GENLIB_QUICK unset): 20,000 steps or 600 s, whichever comes first\n"
    )
    assert budget(quick, full, verbose=False) is full
    assert capsys.readouterr().out == ""


def test_budget_mode_override(monkeypatch, capsys) -> None:
    monkeypatch.setenv("GENLIB_QUICK", "0")
    quick, full = Budget(steps=3), Budget(steps=5)
    assert budget(quick, full, mode="quick") is quick
    assert "quick mode (mode='quick')" in capsys.readouterr().out
    with pytest.raises(ValueError, match="'fast'"):
        budget(quick, full, mode="fast")
    with pytest.raises(TypeError, match="full"):
        budget(quick, 5)
