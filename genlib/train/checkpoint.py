"""Checkpoints that survive being killed mid-write and never run code on load.

Layout of a run folder::

    run_dir/
      checkpoints/
        ckpt-00001000.pt      # torch.save of a dict of plain state, step in the name
        ckpt-00002000.pt      # the last ``keep_last`` (default 2) are kept
      history.json            # written by fit at the end

**Atomic writes.** A process killed while ``torch.save`` writes leaves a truncated file (4 of 30
in our experiments). So a checkpoint is written to a temporary file *in the same folder*, flushed
and ``fsync``-ed, then moved over its final name with ``os.replace`` (atomic on POSIX and Windows
when both names are on one file system), and the folder itself is ``fsync``-ed so the rename
survives a power cut. A reader therefore sees the old file or the new one, never half of one;
temporary files (``.ckpt-*.tmp``) never match the checkpoint pattern.

**Safe loading.** Files are read only with ``torch.load(..., weights_only=True)``: the unpickler
accepts tensors, numbers, strings and plain containers, and refuses anything that would import
and run code (a pickled custom object), so opening a checkpoint from elsewhere cannot execute
it. A checkpoint therefore holds ``state_dict``s, the config as a JSON-able dict, counters and the
RNG state from :mod:`genlib.train.seed` (all tensors), never objects.

**Format marker.** Every checkpoint carries ``{"genlib_checkpoint": FORMAT_VERSION}``;
:func:`latest_checkpoint` skips (with a warning) files without it, truncated files and unsafe
files, and falls back to the previous complete checkpoint.

For sharing weights alone, :func:`save_weights` / :func:`load_weights` use safetensors (a flat
tensor format with no code at all).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from genlib.train.step import unwrap_model

__all__ = [
    "FORMAT_KEY",
    "FORMAT_VERSION",
    "CheckpointError",
    "CorruptCheckpointError",
    "ForeignCheckpointError",
    "UnsafeCheckpointError",
    "atomic_write",
    "checkpoint_dir",
    "checkpoint_path",
    "list_checkpoints",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "save_weights",
    "load_weights",
    "weights_metadata",
]

FORMAT_KEY = "genlib_checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_FOLDER = "checkpoints"
_NAME = re.compile(r"^ckpt-(\d{8,})\.pt$")
_TMP_PREFIX = ".ckpt-"


class CheckpointError(Exception):
    """A checkpoint file cannot be used."""


class CorruptCheckpointError(CheckpointError):
    """The file is not a readable torch checkpoint (truncated, empty, damaged)."""


class ForeignCheckpointError(CheckpointError):
    """The file loads but was not written by :func:`save_checkpoint` (no format marker)."""


class UnsafeCheckpointError(CheckpointError):
    """The file holds pickled Python objects whose loading would run code; it is refused."""


# ---------------------------------------------------------------------------------------------
# Atomic writes


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary file; on success it replaces ``path`` atomically, on error it vanishes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX, suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the usual permissions for the umask,
        # as a plain open() would, so that checkpoints and exported weights can be shared.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    Text is encoded as UTF-8. Returns the path.
    """
    path = Path(path)
    with _atomic_file(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# ---------------------------------------------------------------------------------------------
# Checkpoints


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    """The folder holding a run's checkpoints: ``run_dir / "checkpoints"``."""
    return Path(run_dir) / CHECKPOINT_FOLDER


def checkpoint_path(ckpt_dir: str | os.PathLike, step: int) -> Path:
    """``ckpt_dir / f"ckpt-{step:08d}.pt"``."""
    return Path(ckpt_dir) / f"ckpt-{step:08d}.pt"


def list_checkpoints(ckpt_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of every file named like a checkpoint, oldest first (not opened)."""
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def save_checkpoint(
    ckpt_dir: str | os.PathLike,
    state: Mapping[str, Any],
    *,
    step: int,
    keep_last: int | None = 2,
) -> Path:
    """Atomically write ``state`` as ``ckpt_dir/ckpt-{step:08d}.pt`` and prune old ones.

    Args:
        ckpt_dir: the checkpoint folder (see :func:`checkpoint_dir`); created if missing. One
            writer per folder: stale temporary files from killed writers are removed here.
        state: plain state: tensors, numbers, strings, bools, None and dicts/lists/tuples of
            them (``state_dict()``s, the config as a dict, RNG state). The format marker and
            ``step`` are added.
        step: the number of optimizer steps done; it names the file.
        keep_last: keep only the newest ``keep_last`` checkpoints (None: keep all).

    Returns:
        The path written.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    if keep_last is not None and (not isinstance(keep_last, int) or keep_last < 1):
        raise ValueError(f"keep_last must be a positive int or None, got {keep_last!r}")
    if FORMAT_KEY in state:
        raise ValueError(f"state must not contain the reserved key {FORMAT_KEY!r}")
    folder = Path(ckpt_dir)
    payload = {FORMAT_KEY: FORMAT_VERSION, **state, "step": step}
    path = checkpoint_path(folder, step)
    with _atomic_file(path) as f:
        torch.save(payload, f)
    # Leftovers of writers killed mid-write (never counted as checkpoints, but they take space).
    for tmp in folder.glob(_TMP_PREFIX + "*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    if keep_last is not None:
        for _, old in list_checkpoints(folder)[:-keep_last]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
    return path


def _why(err: Exception) -> str:
    """The line of torch's unpickler message naming the refused object."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    for ln in lines:
        if "Unsupported global" in ln or "WeightsUnpickler error" in ln:
            return ln.removeprefix("WeightsUnpickler error:").strip().split(" was not")[0]
    return lines[0] if lines else type(err).__name__


def load_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, without running any code.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file holds pickled objects that would run code on load.
        CorruptCheckpointError: the file is truncated or not a torch file.
        ForeignCheckpointError: the file has no genlib format marker, or a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower() or "weights_only" in str(err).lower():
            raise UnsafeCheckpointError(
                f"refusing to load {path}: it contains pickled Python objects that would run "
                "code when loaded (genlib checkpoints hold only tensors and plain containers). "
                f"Only open it with weights_only=False if you trust its author. ({_why(err)})"
            ) from err
        raise CorruptCheckpointError(f"{path} is not a readable checkpoint: {err}") from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CorruptCheckpointError(
            f"{path} is not a readable checkpoint (truncated or damaged?): {err}"
        ) from err
    if not isinstance(state, dict) or FORMAT_KEY not in state:
        raise ForeignCheckpointError(
            f"{path} loads but is not a genlib checkpoint (no {FORMAT_KEY!r} marker; a bare "
            "state_dict or another program's file?)"
        )
    version = state[FORMAT_KEY]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ForeignCheckpointError(
            f"{path} has checkpoint format {version!r}; this genlib reads up to {FORMAT_VERSION}"
        )
    return state


def latest_checkpoint(
    ckpt_dir: str | os.PathLike, *, map_location: Any = "cpu"
) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint in ``ckpt_dir`` that loads completely, and its contents.

    Files that are truncated, foreign (no format marker, or a step that disagrees with the file
    name) or unsafe are skipped with a warning naming them, and the previous one is tried.

    Returns:
        ``(path, state)``, or None when there is no usable checkpoint.
    """
    for step, path in reversed(list_checkpoints(ckpt_dir)):
        try:
            state = load_checkpoint(path, map_location=map_location)
        except (CheckpointError, FileNotFoundError) as err:
            warnings.warn(f"skipping checkpoint {path}: {err}", stacklevel=2)
            continue
        if state.get("step") != step:
            warnings.warn(
                f"skipping checkpoint {path}: it records step {state.get('step')!r}, "
                f"its name says {step}",
                stacklevel=2,
            )
            continue
        return path, state
    return None


# ---------------------------------------------------------------------------------------------
# Weights only, as safetensors


def _as_tensors(source: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(source, nn.Module):
        source = unwrap_model(source).state_dict()
    out = {}
    for k, v in source.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"weights[{k!r}] must be a tensor, got {type(v).__name__}")
        # clone: safetensors refuses tensors sharing memory (tied weights) and views
        out[k] = v.detach().to("cpu").contiguous().clone()
    return out


def save_weights(
    source: nn.Module | Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    *,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Atomically write a model's weights (or any flat dict of tensors) as safetensors.

    Args:
        source: a module (its ``state_dict``, wrappers looked through) or a ``dict`` of tensors,
            e.g. ``ema.shadow``.
        path: the ``.safetensors`` file to write.
        metadata: string key/values stored in the header (e.g. the config as JSON).
    """
    from safetensors.torch import save

    meta = dict(metadata or {})
    bad = {k: type(v).__name__ for k, v in meta.items() if not isinstance(v, str)}
    if bad or not all(isinstance(k, str) for k in meta):
        raise TypeError(f"metadata must map str to str; non-str values: {bad}")
    return atomic_write(path, save(_as_tensors(source), metadata=meta or None))


def load_weights(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    *,
    device: str | torch.device = "cpu",
    strict: bool = True,
) -> dict[str, torch.Tensor]:
    """Read weights written by :func:`save_weights`; load them into ``model`` if given.

    Returns:
        The dict of tensors on ``device``.
    """
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    state = load(path.read_bytes())
    state = {k: v.to(device) for k, v in state.items()}
    if model is not None:
        unwrap_model(model).load_state_dict(state, strict=strict)
    return state


def weights_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata stored by :func:`save_weights` (empty dict if none)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})
