"""load_or_train: one folder per (recipe, config); trains once, then loads; resumes partial runs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from genlib.train import (
    Budget,
    backward_and_step,
    config_dict,
    config_hash,
    fit,
    is_done,
    latest_checkpoint,
    load_or_train,
    run_dir_for,
)


@dataclass(frozen=True)
class Cfg:
    lr: float = 0.1
    widths: tuple[int, ...] = (4, 8)
    steps: int = 6


def test_config_hash_is_the_sha256_of_canonical_json() -> None:
    cfg = {"b": [1, 2], "a": 1}
    expected = hashlib.sha256(b'{"a":1,"b":[1,2]}').hexdigest()[:10]
    assert config_hash(cfg) == expected
    assert config_hash({"a": 1, "b": (1, 2)}) == expected  # key order and tuple/list do not matter
    assert config_hash(Cfg()) == config_hash({"lr": 0.1, "widths": [4, 8], "steps": 6})
    assert config_hash(Cfg(lr=0.2)) != config_hash(Cfg())
    assert run_dir_for("vae", cfg, "/r") == Path("/r") / f"vae-{expected}"


def test_config_errors() -> None:
    with pytest.raises(TypeError, match=r"config\['p'\].*PosixPath|WindowsPath"):
        config_dict({"p": Path("x")})
    with pytest.raises(ValueError, match="nan"):
        config_dict({"x": float("nan")})
    with pytest.raises(TypeError, match="dataclass instance or a dict"):
        config_dict([1, 2])
    with pytest.raises(ValueError, match="name"):
        run_dir_for("../evil", {}, "/r")


def test_trains_once_then_loads(tmp_path: Path, capsys) -> None:
    calls: list[Path] = []

    def train_fn(run_dir: Path) -> None:
        calls.append(run_dir)
        (run_dir / "weights.txt").write_text("42")

    def load_fn(run_dir: Path) -> str:
        return (run_dir / "weights.txt").read_text()

    first = load_or_train("toy", Cfg(), train_fn, root=tmp_path, load_fn=load_fn)
    assert "training new run" in capsys.readouterr().out
    second = load_or_train("toy", Cfg(), train_fn, root=tmp_path, load_fn=load_fn)
    assert "loading finished run" in capsys.readouterr().out
    assert first == second == "42" and len(calls) == 1
    run_dir = calls[0]
    assert run_dir == run_dir_for("toy", Cfg(), tmp_path) and is_done(run_dir)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved == {"name": "toy", "config": {"lr": 0.1, "widths": [4, 8], "steps": 6}}

    load_or_train("toy", Cfg(lr=0.01), train_fn, root=tmp_path, verbose=False)  # new config
    assert len(calls) == 2 and calls[1] != run_dir
    assert load_or_train("toy", Cfg(), train_fn, root=tmp_path, verbose=False) == run_dir


def test_a_failed_run_is_not_marked_done(tmp_path: Path) -> None:
    def failing(run_dir: Path) -> None:
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        load_or_train("toy", {"a": 1}, failing, root=tmp_path)
    assert not is_done(run_dir_for("toy", {"a": 1}, tmp_path))


def test_with_fit_a_partial_run_is_resumed_and_both_calls_give_the_same_model(
    tmp_path: Path, capsys
) -> None:
    """The first attempt dies after its checkpoint at step 4; the second resumes it; the third
    only loads. The loaded model equals the one the resumed training produced."""
    cfg = Cfg()
    attempts = []

    def train_fn(run_dir: Path) -> None:
        torch.manual_seed(0)
        model = nn.Linear(3, 1)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
        x = torch.linspace(-1, 1, 24).reshape(8, 3)
        crash = len(attempts) == 0
        attempts.append(run_dir)

        def step_fn(step: int) -> dict:
            if crash and step == 5:
                raise KeyboardInterrupt
            loss = (model(x) ** 2).mean()
            backward_and_step(loss, opt)
            return {"loss": loss}

        fit(
            step_fn,
            budget=Budget(steps=cfg.steps),
            state={"model": model, "opt": opt},
            run_dir=run_dir,
            resume=True,
            checkpoint_every=2,
            config=cfg,
            progress=False,
        )

    def load_fn(run_dir: Path) -> dict:
        _, state = latest_checkpoint(run_dir / "checkpoints")
        return state["state"]["model"]

    with pytest.raises(KeyboardInterrupt):
        load_or_train("lin", cfg, train_fn, root=tmp_path, load_fn=load_fn)
    a = load_or_train("lin", cfg, train_fn, root=tmp_path, load_fn=load_fn)
    out = capsys.readouterr().out
    assert "resuming partial run" in out and "resumed from" in out and "(step 4)" in out
    b = load_or_train("lin", cfg, train_fn, root=tmp_path, load_fn=load_fn)
    assert len(attempts) == 2
    assert all(torch.equal(a[k], b[k]) for k in a)
    _, final = latest_checkpoint(attempts[0] / "checkpoints")
    assert final["step"] == cfg.steps and final["config"] == config_dict(cfg)
