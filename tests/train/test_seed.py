"""Seeding reproduces every stream; rng_state/set_rng_state restores every stream exactly."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch

from genlib.train import rng_state, seed_everything, set_rng_state


def _draw(gens: dict[str, torch.Generator]) -> list:
    """One draw from each stream; the Gaussians come first so a cached second Gaussian (Python
    and NumPy both keep one) must be restored too."""
    return [
        random.gauss(0.0, 1.0),
        random.random(),
        float(np.random.standard_normal()),  # noqa: NPY002 (the global stream is under test)
        float(np.random.rand()),  # noqa: NPY002
        torch.randn(3).tolist(),
        torch.rand(2).tolist(),
        {name: torch.rand(2, generator=g).tolist() for name, g in gens.items()},
    ]


@pytest.fixture
def restore_global_flags(monkeypatch):
    """seed_everything(deterministic=True) flips process-wide switches: put them back."""
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "unchanged")
    flags = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    yield
    torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = flags[2], flags[3]


def test_seed_everything_reproduces_every_stream() -> None:
    g = seed_everything(123)
    a = _draw({"g": g})
    g = seed_everything(123)
    b = _draw({"g": g})
    assert a == b
    g = seed_everything(124)
    c = _draw({"g": g})
    assert all(x != y for x, y in zip(a, c, strict=True))  # every stream changed with the seed


def test_seed_everything_returns_a_generator_seeded_with_seed() -> None:
    g = seed_everything(7)
    assert isinstance(g, torch.Generator) and g.device.type == "cpu"
    assert torch.equal(
        torch.rand(5, generator=g), torch.rand(5, generator=torch.Generator().manual_seed(7))
    )


def test_seed_everything_deterministic_sets_the_switches(restore_global_flags) -> None:
    import os

    seed_everything(0, deterministic=True, warn_only=False)
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    seed_everything(0)  # deterministic=False switches deterministic algorithms off again
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "0"])
def test_seed_everything_rejects_bad_seeds(seed) -> None:
    with pytest.raises((ValueError, TypeError), match="seed"):
        seed_everything(seed)


def test_rng_state_round_trip_restores_every_stream() -> None:
    seed_everything(5)
    gens = {"noise": torch.Generator().manual_seed(9), "order": torch.Generator().manual_seed(10)}
    _draw(gens)  # move every stream, and leave a cached Gaussian in Python and NumPy
    random.gauss(0.0, 1.0)
    np.random.standard_normal()  # noqa: NPY002
    state = rng_state(gens)

    # Through a file and the safe loader: only int64/uint8 tensors, nothing pickled.
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in loaded.values())
    assert {v.dtype for v in loaded.values()} <= {torch.int64, torch.uint8}
    assert {"python", "numpy", "torch", "generator:noise", "generator:order"} <= set(loaded)

    expected = _draw(gens)
    _draw(gens)  # wander further
    set_rng_state(loaded, gens)
    assert _draw(gens) == expected


def test_each_stream_is_restored_independently() -> None:
    """Restoring must touch each stream: perturb one at a time and check it comes back."""
    seed_everything(1)
    g = torch.Generator().manual_seed(3)
    state = rng_state({"g": g})
    expected = _draw({"g": g})
    perturb = [
        lambda: random.random(),
        lambda: np.random.rand(),  # noqa: NPY002
        lambda: torch.rand(1),
        lambda: torch.rand(1, generator=g),
    ]
    for move in perturb:
        set_rng_state(state, {"g": g})
        move()
        set_rng_state(state, {"g": g})
        assert _draw({"g": g}) == expected


def test_set_rng_state_errors_name_what_is_missing() -> None:
    state = rng_state()
    del state["numpy"]
    with pytest.raises(KeyError, match="numpy"):
        set_rng_state(state)
    with pytest.raises(KeyError, match="generator:extra"):
        set_rng_state(rng_state(), {"extra": torch.Generator()})
    with pytest.raises(TypeError, match="torch.Generator"):
        rng_state({"bad": 3})


def test_set_rng_state_warns_about_unused_generators() -> None:
    state = rng_state({"noise": torch.Generator()})
    with pytest.warns(UserWarning, match="noise"):
        set_rng_state(state)
