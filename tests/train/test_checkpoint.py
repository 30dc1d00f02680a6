"""Atomic checkpoints: truncated, foreign and unsafe files are skipped; pickled objects are
refused; temporary files never count; keep-last-K; safetensors weights."""

from __future__ import annotations

import fractions
import os
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from genlib.train import (
    CorruptCheckpointError,
    ForeignCheckpointError,
    UnsafeCheckpointError,
    atomic_write,
    checkpoint_dir,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
    weights_metadata,
)
from genlib.train import checkpoint as ckpt_module


def _state(step: int) -> dict:
    return {"model": {"w": torch.full((4,), float(step))}, "config": {"lr": 0.1}, "history": []}


def _save_steps(folder: Path, steps, keep_last=None) -> None:
    for s in steps:
        save_checkpoint(folder, _state(s), step=s, keep_last=keep_last)


def test_round_trip_adds_marker_and_step(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, _state(3), step=3)
    assert path == tmp_path / "ckpt-00000003.pt"
    state = load_checkpoint(path)
    assert state["genlib_checkpoint"] == 1 and state["step"] == 3
    assert torch.equal(state["model"]["w"], torch.full((4,), 3.0))
    assert state["config"] == {"lr": 0.1}


def test_keep_last_k(tmp_path: Path) -> None:
    _save_steps(tmp_path, [1, 2, 3, 4], keep_last=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 4]
    save_checkpoint(tmp_path, _state(5), step=5, keep_last=None)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 4, 5]
    with pytest.raises(ValueError, match="keep_last"):
        save_checkpoint(tmp_path, _state(6), step=6, keep_last=0)


def test_truncated_newest_is_skipped_with_a_warning(tmp_path: Path) -> None:
    _save_steps(tmp_path, [10, 20])
    newest = tmp_path / "ckpt-00000030.pt"
    whole = (tmp_path / "ckpt-00000020.pt").read_bytes()
    newest.write_bytes(whole[: len(whole) // 2])  # what a writer killed mid-save leaves
    with pytest.raises(CorruptCheckpointError, match="ckpt-00000030"):
        load_checkpoint(newest)
    with pytest.warns(UserWarning, match="ckpt-00000030"):
        path, state = latest_checkpoint(tmp_path)
    assert path.name == "ckpt-00000020.pt" and state["step"] == 20


def test_foreign_and_empty_files_are_skipped(tmp_path: Path) -> None:
    _save_steps(tmp_path, [1])
    torch.save({"weight": torch.ones(2)}, tmp_path / "ckpt-00000002.pt")  # a bare state_dict
    (tmp_path / "ckpt-00000003.pt").write_bytes(b"")
    with pytest.raises(ForeignCheckpointError, match="genlib_checkpoint"):
        load_checkpoint(tmp_path / "ckpt-00000002.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path, _ = latest_checkpoint(tmp_path)
    assert path.name == "ckpt-00000001.pt"
    messages = " ".join(str(w.message) for w in caught)
    assert "ckpt-00000002.pt" in messages and "ckpt-00000003.pt" in messages


def test_file_whose_step_disagrees_with_its_name_is_skipped(tmp_path: Path) -> None:
    _save_steps(tmp_path, [1, 2])
    os.replace(tmp_path / "ckpt-00000002.pt", tmp_path / "ckpt-00000009.pt")
    with pytest.warns(UserWarning, match="records step 2"):
        path, _ = latest_checkpoint(tmp_path)
    assert path.name == "ckpt-00000001.pt"


class Payload:
    """A custom class: unpickling it means importing and running this module's code."""

    def __init__(self) -> None:
        self.x = 1


@pytest.mark.parametrize("obj", [Payload(), fractions.Fraction(1, 3)], ids=["custom", "stdlib"])
def test_pickled_objects_are_refused(tmp_path: Path, obj) -> None:
    path = tmp_path / "ckpt-00000005.pt"
    torch.save({"genlib_checkpoint": 1, "step": 5, "obj": obj}, path)
    with pytest.raises(UnsafeCheckpointError, match="run code"):
        load_checkpoint(path)
    save_checkpoint(tmp_path, _state(4), step=4)
    with pytest.warns(UserWarning, match="ckpt-00000005.pt"):
        found, _ = latest_checkpoint(tmp_path)
    assert found.name == "ckpt-00000004.pt"


def test_temporary_files_never_count(tmp_path: Path) -> None:
    _save_steps(tmp_path, [1])
    complete = (tmp_path / "ckpt-00000001.pt").read_bytes()
    (tmp_path / ".ckpt-abc123.tmp").write_bytes(complete)  # a killed writer's leftover
    (tmp_path / "ckpt-00000007.pt.tmp").write_bytes(complete)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [1]
    assert latest_checkpoint(tmp_path)[0].name == "ckpt-00000001.pt"
    save_checkpoint(tmp_path, _state(2), step=2)  # the next save clears stale temporaries
    assert not (tmp_path / ".ckpt-abc123.tmp").exists()


def test_a_write_that_dies_midway_leaves_the_old_checkpoint_untouched(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, _state(1), step=1)
    real_save = torch.save

    def dying_save(obj, f):
        real_save(obj, f)
        f.truncate(100)
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module.torch, "save", dying_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, _state(2), step=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-00000001.pt"]  # no temp left
    assert latest_checkpoint(tmp_path)[1]["step"] == 1


def test_empty_or_missing_folder(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path / "nothing") is None
    assert checkpoint_dir(tmp_path) == tmp_path / "checkpoints"
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "ckpt-00000001.pt")


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="step"):
        save_checkpoint(tmp_path, {}, step=-1)
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path, {"genlib_checkpoint": 2}, step=1)


def test_safetensors_weights_round_trip(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].running_mean.uniform_()
    path = save_weights(model, tmp_path / "w.safetensors", metadata={"config": '{"h": 4}'})
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 3))
    state = load_weights(path, fresh)
    for k, v in model.state_dict().items():
        assert torch.equal(state[k], v) and torch.equal(fresh.state_dict()[k], v)
    assert weights_metadata(path) == {"config": '{"h": 4}'}
    with pytest.raises(TypeError, match="metadata"):
        save_weights(model, tmp_path / "x.safetensors", metadata={"n": 4})


def test_safetensors_handles_tied_weights(tmp_path: Path) -> None:
    emb = nn.Embedding(5, 3)
    head = nn.Linear(3, 5, bias=False)
    head.weight = emb.weight  # tied
    model = nn.ModuleDict({"emb": emb, "head": head})
    path = save_weights(model, tmp_path / "tied.safetensors")
    state = load_weights(path)
    assert torch.equal(state["emb.weight"], state["head.weight"])


def test_atomic_files_get_the_umask_permissions_not_0600(tmp_path):
    import stat

    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "x.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
