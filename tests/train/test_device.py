"""pick_device: CUDA > MPS > CPU, and clear errors for devices that are not there."""

from __future__ import annotations

import pytest
import torch

from genlib.train import available_devices, pick_device
from genlib.train import device as device_module


def _fake(monkeypatch, cuda: int, mps: bool) -> None:
    monkeypatch.setattr(device_module, "_cuda_count", lambda: cuda)
    monkeypatch.setattr(device_module, "_mps_available", lambda: mps)


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(2, True, "cuda"), (0, True, "mps"), (0, False, "cpu"), (1, False, "cuda")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected) -> None:
    _fake(monkeypatch, cuda, mps)
    assert pick_device() == torch.device(expected)
    assert pick_device("auto") == torch.device(expected)


def test_explicit_devices(monkeypatch) -> None:
    _fake(monkeypatch, 2, False)
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("cuda:1") == torch.device("cuda", 1)
    assert pick_device(torch.device("cuda", 0)) == torch.device("cuda", 0)
    assert available_devices() == ["cuda:0", "cuda:1", "cpu"]


def test_unavailable_device_names_what_is_available(monkeypatch) -> None:
    _fake(monkeypatch, 0, False)
    with pytest.raises(ValueError, match=r"'cuda'.*not available.*\['cpu'\]"):
        pick_device("cuda")
    with pytest.raises(ValueError, match="mps"):
        pick_device("mps")
    _fake(monkeypatch, 1, False)
    with pytest.raises(ValueError, match=r"cuda:3.*\['cuda:0', 'cpu'\]"):
        pick_device("cuda:3")


def test_unknown_device_lists_the_valid_kinds() -> None:
    with pytest.raises(ValueError, match=r"'tpu'.*\['cuda', 'mps', 'cpu'\]"):
        pick_device("tpu")
    with pytest.raises(ValueError, match="meta"):
        pick_device("meta")
    with pytest.raises(TypeError, match="prefer"):
        pick_device(0)


def test_this_machine() -> None:
    """On whatever runs the tests, auto gives a device that works."""
    d = pick_device()
    assert torch.ones(2, device=d).sum().item() == 2.0
