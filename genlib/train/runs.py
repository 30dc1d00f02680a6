"""Run folders keyed by recipe and config, and ``load_or_train``.

Re-running a chapter should not retrain what it trained yesterday. :func:`load_or_train` keeps
each training run in ``root / f"{name}-{hash}"``, where the hash is a short SHA-256 of the
*canonical JSON* of the config (keys sorted, no whitespace), so the same recipe with the same
config finds its folder again and any change of config gets a fresh one. Put everything that
changes the result into the config, the budget included (quick and full mode then never share a
folder).

- a finished run (``done.json`` present) is loaded, not retrained;
- an unfinished one (killed, interrupted) is handed to ``train_fn`` again, which resumes it from
  its last checkpoint when it calls ``fit(..., resume=True)``;
- otherwise a new run starts.

It prints which of the three happened.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from genlib.train.checkpoint import atomic_write, checkpoint_dir, list_checkpoints

__all__ = [
    "config_dict",
    "config_hash",
    "run_dir_for",
    "is_done",
    "mark_done",
    "load_or_train",
    "DONE_FILE",
    "CONFIG_FILE",
]

DONE_FILE = "done.json"
CONFIG_FILE = "config.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

T = TypeVar("T")


def _check_json(value: Any, where: str) -> Any:
    """Return ``value`` with tuples as lists, raising TypeError on anything not JSON-able."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"config{where} is {value}: NaN and infinity are not valid JSON")
        return value
    if isinstance(value, list | tuple):
        return [_check_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"config{where} has a non-string key {k!r}")
            out[k] = _check_json(v, f"{where}[{k!r}]")
        return out
    raise TypeError(
        f"config{where} = {value!r} of type {type(value).__name__} is not JSON-able; use "
        "numbers, strings, bools, None, lists and dicts (e.g. str(path), a device name)"
    )


def config_dict(config: Any) -> dict[str, Any]:
    """The config as a plain JSON-able dict (dataclasses are converted, tuples become lists).

    Raises:
        TypeError: ``config`` is not a dataclass instance or a mapping, or holds a value that is
            not JSON-able.
    """
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, Mapping):
        raise TypeError(
            f"config must be a dataclass instance or a dict, got {type(config).__name__}"
        )
    return _check_json(config, "")


def _canonical_json(config: Any) -> str:
    return json.dumps(config_dict(config), sort_keys=True, separators=(",", ":"))


def config_hash(config: Any, length: int = 10) -> str:
    """A short SHA-256 hex digest of the canonical JSON of ``config``."""
    return hashlib.sha256(_canonical_json(config).encode("utf-8")).hexdigest()[:length]


def run_dir_for(name: str, config: Any, root: str | os.PathLike) -> Path:
    """``root / f"{name}-{config_hash(config)}"``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"name must be letters, digits, '_', '.', '-' (starting with a letter or digit), "
            f"got {name!r}"
        )
    return Path(root) / f"{name}-{config_hash(config)}"


def is_done(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a finished run (its ``done.json`` marker)."""
    return (Path(run_dir) / DONE_FILE).is_file()


def mark_done(run_dir: str | os.PathLike, info: Mapping[str, Any] | None = None) -> Path:
    """Write the ``done.json`` marker (atomically) with ``info`` and the finishing time."""
    payload = {"finished_unix": time.time(), **config_dict(dict(info or {}))}
    return atomic_write(Path(run_dir) / DONE_FILE, json.dumps(payload, indent=2, sort_keys=True))


def load_or_train(
    name: str,
    config: Any,
    train_fn: Callable[[Path], Any],
    *,
    root: str | os.PathLike,
    load_fn: Callable[[Path], T] | None = None,
    verbose: bool = True,
) -> T | Path:
    """Load a finished run of recipe ``name`` with ``config``, or train it (resuming if partial).

    Args:
        name: the recipe name, e.g. ``"vae-mnist5k"``.
        config: a dataclass instance or JSON-able dict; it keys the run folder.
        train_fn: ``train_fn(run_dir)`` trains into ``run_dir`` (call ``fit(...,
            run_dir=run_dir, resume=True)`` inside so a partial run continues); its return value
            is ignored.
        root: the folder holding run folders (nothing is written outside it).
        load_fn: ``load_fn(run_dir)`` builds the result from a finished run folder (e.g. a model
            with its EMA weights). It is called in both cases, so a fresh run and a reloaded one
            give the same object.
        verbose: print which of "loaded", "resumed", "trained" happened.

    Returns:
        ``load_fn(run_dir)``, or ``run_dir`` when no ``load_fn`` is given.
    """
    run_dir = run_dir_for(name, config, root)
    cfg = config_dict(config)
    if is_done(run_dir):
        if verbose:
            print(f"genlib: loading finished run {run_dir} (no training)")
    else:
        partial = bool(list_checkpoints(checkpoint_dir(run_dir)))
        if verbose:
            what = "resuming partial run" if partial else "training new run"
            print(f"genlib: {what} {run_dir}")
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(
            run_dir / CONFIG_FILE,
            json.dumps({"name": name, "config": cfg}, indent=2, sort_keys=True),
        )
        train_fn(run_dir)
        mark_done(run_dir, {"name": name, "config_hash": config_hash(config)})
    return load_fn(run_dir) if load_fn is not None else run_dir
