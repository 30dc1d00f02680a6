"""Seeding and the complete random state of a training run.

A training run draws random numbers from several independent streams: Python's ``random``,
NumPy's legacy global generator, torch's CPU generator (dropout, ``torch.randn`` without a
generator), one generator per CUDA device, and any ``torch.Generator`` objects the code owns
(a data order, a noise source). Resuming a run *exactly* needs every one of them back where it
was; leaving out a single stream was enough to break bit-identical resume in our experiments
(chapter 10, "Checkpoints and exact resume").

:func:`rng_state` captures all of them as a flat ``dict[str, torch.Tensor]`` holding only int64
and uint8 tensors, so it is saved inside a checkpoint and loads with
``torch.load(..., weights_only=True)`` (NumPy's state is converted to int64 tensors: a pickled
NumPy object would be refused by the safe loader). :func:`set_rng_state` puts them back.

Keys of the state dict::

    "python"          int64 (628,)  Python ``random``: version, has_gauss, gauss bits, 625 words
    "numpy"           int64 (627,)  NumPy legacy MT19937: pos, has_gauss, gauss bits, 624 words
    "torch"           uint8         torch CPU generator
    "cuda:<i>"        uint8         generator of CUDA device i (when CUDA is available)
    "mps"             uint8         the MPS generator (when MPS is available)
    "generator:<name>" uint8        each extra ``torch.Generator`` passed by name
"""

from __future__ import annotations

import os
import random
import struct
import warnings
from collections.abc import Mapping

import numpy as np
import torch

__all__ = ["seed_everything", "rng_state", "set_rng_state"]

_MAX_SEED = 2**32 - 1  # NumPy's legacy seeding accepts [0, 2**32 - 1]
_GENERATOR_PREFIX = "generator:"


def seed_everything(
    seed: int,
    deterministic: bool = False,
    *,
    warn_only: bool = True,
    device: str | torch.device = "cpu",
) -> torch.Generator:
    """Seed Python ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    Args:
        seed: an integer in ``[0, 2**32 - 1]``.
        deterministic: if True, ask PyTorch for deterministic kernels:
            ``torch.use_deterministic_algorithms(True, warn_only=warn_only)``,
            ``cudnn.deterministic = True``, ``cudnn.benchmark = False`` and the environment
            variable ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (needed by cuBLAS for reproducible
            matrix products; it only takes effect if set before CUDA starts). If False,
            deterministic algorithms are switched off again (PyTorch's default) and cuDNN flags
            are left alone.
            On the CPU, torch kernels are already deterministic for a fixed thread count.
        warn_only: with ``deterministic=True``, warn (True) or raise (False) when an operation has
            no deterministic implementation.
        device: device of the returned generator.

    Returns:
        A fresh ``torch.Generator`` on ``device`` seeded with ``seed``: pass it explicitly to the
        stochastic functions of genlib so their randomness does not depend on the global stream.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {seed!r} of type {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**32 - 1], got {seed}")
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the legacy global stream is what third-party code uses)
    torch.manual_seed(seed)  # seeds the CPU generator and every CUDA device
    if deterministic:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=warn_only)
    elif torch.are_deterministic_algorithms_enabled():
        # only when needed: the call imports torch._inductor (seconds of start-up time)
        torch.use_deterministic_algorithms(False)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


# ---------------------------------------------------------------------------------------------
# Encoding Python and NumPy states as int64 tensors


def _float_to_bits(x: float) -> int:
    """The IEEE-754 bits of a float64 as a signed int64 (exact round trip)."""
    return struct.unpack("<q", struct.pack("<d", x))[0]


def _bits_to_float(b: int) -> float:
    return struct.unpack("<d", struct.pack("<q", b))[0]


def _python_state() -> torch.Tensor:
    version, words, gauss_next = random.getstate()
    has_gauss = gauss_next is not None
    header = [version, int(has_gauss), _float_to_bits(gauss_next) if has_gauss else 0]
    return torch.tensor(header + list(words), dtype=torch.int64)


def _set_python_state(t: torch.Tensor) -> None:
    values = t.tolist()
    version, has_gauss, gauss_bits = values[:3]
    gauss_next = _bits_to_float(gauss_bits) if has_gauss else None
    random.setstate((version, tuple(values[3:]), gauss_next))


def _numpy_state() -> torch.Tensor:
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002
    if name != "MT19937":
        raise RuntimeError(f"unexpected NumPy global bit generator {name!r}")
    header = torch.tensor([pos, has_gauss, _float_to_bits(float(cached))], dtype=torch.int64)
    return torch.cat([header, torch.from_numpy(keys.astype(np.int64))])


def _set_numpy_state(t: torch.Tensor) -> None:
    values = t.tolist()
    pos, has_gauss, gauss_bits = values[:3]
    keys = np.array(values[3:], dtype=np.uint32)
    np.random.set_state(("MT19937", keys, pos, has_gauss, _bits_to_float(gauss_bits)))  # noqa: NPY002


# ---------------------------------------------------------------------------------------------


def rng_state(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, torch.Tensor]:
    """Snapshot every random stream as tensors (int64/uint8 only, safe for ``weights_only``).

    Args:
        generators: extra ``torch.Generator`` objects by name (a data order, a noise source).

    Returns:
        A flat dict of CPU tensors; see the module docstring for its keys. Pass it to
        :func:`set_rng_state` (with the same ``generators``) to continue every stream exactly.
    """
    state: dict[str, torch.Tensor] = {
        "python": _python_state(),
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            state[f"cuda:{i}"] = s
    if torch.backends.mps.is_available():
        state["mps"] = torch.mps.get_rng_state()
    for name, g in (generators or {}).items():
        if not isinstance(g, torch.Generator):
            raise TypeError(
                f"generators[{name!r}] must be a torch.Generator, got {type(g).__name__}"
            )
        state[_GENERATOR_PREFIX + name] = g.get_state()
    return state


def set_rng_state(
    state: Mapping[str, torch.Tensor],
    generators: Mapping[str, torch.Generator] | None = None,
) -> None:
    """Restore every stream captured by :func:`rng_state`.

    Args:
        state: the dict returned by :func:`rng_state` (possibly after a save/load round trip).
        generators: the same named generators that were passed to :func:`rng_state`; each is
            restored in place.

    Raises:
        KeyError: a required stream (``python``, ``numpy``, ``torch`` or a named generator) is
            missing from ``state``.

    CUDA states saved on a machine with more GPUs than this one (or any GPU when this one has
    none) cannot be restored; that is reported with a warning, since CPU-only work is unaffected.
    """
    missing = [k for k in ("python", "numpy", "torch") if k not in state]
    generators = dict(generators or {})
    missing += [_GENERATOR_PREFIX + n for n in generators if _GENERATOR_PREFIX + n not in state]
    if missing:
        raise KeyError(
            f"rng state is missing streams {missing}; it holds {sorted(state)}. "
            "Was it made by genlib.train.rng_state with the same generators?"
        )
    _set_python_state(state["python"])
    _set_numpy_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())

    cuda_keys = sorted((k for k in state if k.startswith("cuda:")), key=lambda k: int(k[5:]))
    n_here = torch.cuda.device_count() if torch.cuda.is_available() else 0
    skipped = []
    for k in cuda_keys:
        i = int(k[5:])
        if i < n_here:
            torch.cuda.set_rng_state(state[k].cpu(), device=i)
        else:
            skipped.append(k)
    if "mps" in state:
        if torch.backends.mps.is_available():
            torch.mps.set_rng_state(state["mps"].cpu())
        else:
            skipped.append("mps")
    if skipped:
        warnings.warn(
            f"rng state holds streams for devices this machine lacks ({skipped}); they were not "
            "restored, so randomness drawn on those devices will differ from the original run",
            stacklevel=2,
        )

    unused = [
        k[len(_GENERATOR_PREFIX) :]
        for k in state
        if k.startswith(_GENERATOR_PREFIX) and k[len(_GENERATOR_PREFIX) :] not in generators
    ]
    if unused:
        warnings.warn(
            f"rng state holds generators {unused} that were not passed to set_rng_state; "
            "they were not restored",
            stacklevel=2,
        )
    for name, g in generators.items():
        if not isinstance(g, torch.Generator):
            raise TypeError(
                f"generators[{name!r}] must be a torch.Generator, got {type(g).__name__}"
            )
        g.set_state(state[_GENERATOR_PREFIX + name].cpu())
