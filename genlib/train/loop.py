"""The training loop: budget, progress bar, history, non-finite guard, checkpoints, exact resume.

The chapter writes the *step*; :func:`fit` only runs the loop around it::

    def step_fn(step: int) -> dict:
        x = next(batches)                                   # (B, C, H, W)
        with autocast(device, precision):
            loss = loss_fn(model, x, generator=noise).mean()
        backward_and_step(loss, opt, clip_grad_norm=1.0)
        sched.step(); ema.update(model)
        return {"loss": loss, "images": x.shape[0]}

    history = fit(step_fn, budget=Budget(steps=2_000),
                  state={"model": model, "opt": opt, "sched": sched, "ema": ema,
                         "batches": batches, "noise": noise},
                  run_dir=run_dir, checkpoint_every=500, resume=True)

What it does, step by step:

1. With ``resume=True``, load the newest complete checkpoint in ``run_dir/checkpoints`` and
   restore every registered object (anything with ``state_dict``/``load_state_dict``: models,
   optimizers, schedulers, :class:`~genlib.train.EMA`, ``GradScaler``, batch iterators) and every
   random stream (Python, NumPy, torch CPU/CUDA and the registered ``torch.Generator`` objects);
   the step counter, images seen, elapsed time and history continue from there. Because nothing
   random is left out, the resumed run's final weights are bit-identical to an uninterrupted one
   (tested by killing a training process with SIGKILL at a random step).
2. Call ``step_fn(step)`` for ``step = 0, 1, ...`` until the :class:`~genlib.train.Budget` is
   exhausted. ``step_fn`` returns a dict of scalar metrics (floats or 0-d tensors) with at least
   one metric whose name contains ``"loss"``; an optional ``"images"`` (a Python int: the batch
   size) counts towards an images budget.
3. **Non-finite guard.** Every metric whose name contains ``"loss"`` (``check_finite="loss"``) or
   every metric (``"all"``) is checked at every step; the first NaN or infinity raises
   :class:`NonFiniteLossError` naming the step and the metric. Reading a value from an
   accelerator forces the host to wait for the GPU, which would cost throughput every step, so on
   a GPU the metrics of ``sync_every`` (default 16) steps are fetched in one transfer: up to 15
   further steps may run before the error, which still names the *first* bad step; checkpoints
   are written only after the check, so a NaN never reaches a checkpoint. On the CPU values are
   ready at once and each step is checked as it ends (cost: a few microseconds).
4. Every ``checkpoint_every`` steps and at the end, write an atomic checkpoint
   (:mod:`genlib.train.checkpoint`); keep the last ``keep_last``. At the end also write
   ``run_dir/history.json``.

Exact resume needs every source of randomness in the step to be a saved stream: the global
Python/NumPy/torch generators or a ``torch.Generator`` registered in ``state``; and the data
order must come from a registered iterator with ``state_dict`` (``genlib.data.BatchIterator``).
A crash or an interrupt loses the steps since the last checkpoint (nothing is saved on the way
out: an interrupted step could leave the state half-updated). Seconds budgets stop at a
machine-dependent step, so runs with them are not bit-reproducible (resume itself stays exact:
the run continues from the step it saved).

Cost: about 4 microseconds per step on the 2-core development machines (a dict per step, one
``.item()`` per CPU metric, one clock read), under 0.1% of a small MLP's step; measured by
``bench/bench_loop.py``. The history keeps one small record per step and travels inside every
checkpoint.

Under DDP (``torch.distributed`` initialised) every rank runs ``fit``; only rank 0 shows progress
and writes files, each rank's random streams are gathered into the checkpoint so every rank
resumes its own, and budgets must stop all ranks at the same step (use steps).
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from genlib.train.budget import Budget
from genlib.train.checkpoint import (
    atomic_write,
    checkpoint_dir,
    latest_checkpoint,
    list_checkpoints,
    save_checkpoint,
)
from genlib.train.runs import config_dict
from genlib.train.seed import rng_state, set_rng_state
from genlib.train.step import unwrap_model

__all__ = ["fit", "History", "NonFiniteLossError", "HISTORY_FILE"]

HISTORY_FILE = "history.json"
_RESERVED = ("step", "time")
_GPU_SYNC_EVERY = 16
_BAR_REFRESH_S = 0.1


class NonFiniteLossError(FloatingPointError):
    """A guarded metric became NaN or infinite.

    Attributes:
        step: the first step whose metric was not finite.
        metric: the metric's name.
        value: its value.
        history: the history up to (not including) that step, to plot the run-up.
    """

    def __init__(self, step: int, metric: str, value: float, history: History) -> None:
        self.step, self.metric, self.value, self.history = step, metric, value, history
        super().__init__(
            f"non-finite {metric}={value} at step {step}; training stopped. Usual causes: a "
            "learning rate too high, log/sqrt/division of 0 in the loss, fp16 overflow. The "
            "history up to this step is in error.history"
        )


class History:
    """Per-step metrics of a run: a list of dicts ``{"step": s, <metrics>..., "time": t}``.

    ``time`` is seconds of training since the run started (summed over resumed sessions).
    JSON-serialisable (:meth:`to_json`, :meth:`save`) and stored inside checkpoints.
    """

    def __init__(self, records: list[Mapping[str, float]] | None = None) -> None:
        self.records: list[dict[str, float]] = [dict(r) for r in (records or [])]

    def append(self, record: Mapping[str, float]) -> None:
        if "step" not in record:
            raise KeyError(f"a history record needs a 'step', got keys {sorted(record)}")
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"History({len(self)} steps, metrics {self.names})"

    @property
    def names(self) -> list[str]:
        """Metric names in order of first appearance (without ``step``)."""
        seen: dict[str, None] = {}
        for r in self.records:
            for k in r:
                if k != "step":
                    seen.setdefault(k, None)
        return list(seen)

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of one metric as arrays, over the steps that recorded it."""
        pairs = [(r["step"], r[name]) for r in self.records if name in r]
        if not pairs:
            raise KeyError(f"no metric {name!r} in history; it has {self.names}")
        steps, values = zip(*pairs, strict=True)
        return np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64)

    def last(self, name: str) -> float:
        """The most recent value of a metric."""
        for r in reversed(self.records):
            if name in r:
                return r[name]
        raise KeyError(f"no metric {name!r} in history; it has {self.names}")

    def to_dict(self) -> dict[str, Any]:
        return {"records": [dict(r) for r in self.records]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> History:
        if "records" not in d:
            raise KeyError(f"a history dict needs 'records', got keys {sorted(d)}")
        return cls(d["records"])

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> History:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the history as JSON (atomically)."""
        return atomic_write(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self.records == other.records


# ---------------------------------------------------------------------------------------------


def _split_state(
    state: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, torch.Generator]]:
    objects, generators = {}, {}
    for name, obj in (state or {}).items():
        if not isinstance(name, str):
            raise TypeError(f"state keys must be strings, got {name!r}")
        if isinstance(obj, torch.Generator):
            generators[name] = obj
        elif callable(getattr(obj, "state_dict", None)) and callable(
            getattr(obj, "load_state_dict", None)
        ):
            objects[name] = unwrap_model(obj) if isinstance(obj, nn.Module) else obj
        else:
            raise TypeError(
                f"state[{name!r}] is a {type(obj).__name__}: fit can checkpoint objects with "
                "state_dict()/load_state_dict() (models, optimizers, schedulers, EMA, GradScaler, "
                "batch iterators) and torch.Generator objects"
            )
    return objects, generators


def _dist_rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _Recorder:
    """Turns each step's metrics into a history record and applies the non-finite guard.

    Python numbers are converted at once. Tensors are read at once (``.item()``) when
    ``defer`` is False; otherwise they are kept (detached) until :meth:`flush`, which fetches all
    of them in one transfer per device.
    """

    def __init__(self, history: History, guard_all: bool) -> None:
        self.history, self.guard_all = history, guard_all
        self.defer = False
        self.pending: list[dict[str, Any]] = []
        self.deferred: list[tuple[dict[str, Any], str, torch.Tensor]] = []

    def add(self, step: int, elapsed: float, metrics: Mapping[str, Any]) -> None:
        rec: dict[str, Any] = {"step": step}
        for k, v in metrics.items():
            if isinstance(v, torch.Tensor):
                if v.numel() != 1:
                    raise ValueError(
                        f"metric {k!r} at step {step} must be a scalar, got a tensor of shape "
                        f"{tuple(v.shape)}"
                    )
                if not self.defer:
                    rec[k] = v.item()
                else:
                    rec[k] = None
                    self.deferred.append((rec, k, v.detach()))
            elif isinstance(v, int | float | np.floating | np.integer) and not isinstance(v, bool):
                rec[k] = float(v)
            else:
                raise TypeError(
                    f"metric {k!r} at step {step} must be a float, int or scalar tensor, got "
                    f"{type(v).__name__}"
                )
        rec["time"] = elapsed
        self.pending.append(rec)

    def flush(self) -> None:
        """Fetch deferred values, check every pending record, append them to the history."""
        if self.deferred:
            by_device: dict[torch.device, list[int]] = {}
            for j, (_, _, t) in enumerate(self.deferred):
                by_device.setdefault(t.device, []).append(j)
            for device, idx in by_device.items():  # one host-device transfer per device
                dtype = torch.float32 if device.type == "mps" else torch.float64  # no f64 on MPS
                values = torch.stack([self.deferred[j][2].to(dtype).reshape(()) for j in idx])
                for j, v in zip(idx, values.tolist(), strict=True):
                    rec, k, _ = self.deferred[j]
                    rec[k] = v
            self.deferred.clear()
        for rec in self.pending:
            for k, v in rec.items():
                if (self.guard_all or "loss" in k) and k not in _RESERVED and not math.isfinite(v):
                    self.pending.clear()
                    raise NonFiniteLossError(rec["step"], k, v, self.history)
            self.history.append(rec)
        self.pending.clear()


class _Bar:
    """A tqdm.auto bar in the budget's first unit, refreshed at most every 0.1 s.

    The metrics shown are means over the last ``log_every`` recorded steps, computed only when
    the bar refreshes (no per-step cost).
    """

    def __init__(
        self,
        budget: Budget,
        desc: str | None,
        log_every: int,
        history: History,
        start: tuple[int, int, float],
    ) -> None:
        from tqdm.auto import tqdm

        if budget.steps is not None:
            self.unit, total, kw = 0, budget.steps, {"unit": "step"}
        elif budget.images is not None:
            self.unit, total, kw = 1, budget.images, {"unit": "img", "unit_scale": True}
        else:
            self.unit, total = 2, float(budget.seconds)
            kw = {"bar_format": "{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}{postfix}]"}
        self.bar = tqdm(total=total, desc=desc, initial=start[self.unit], dynamic_ncols=True, **kw)
        self.log_every, self.history, self.last = log_every, history, -math.inf

    def update(self, progress: tuple[int, int, float], force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < _BAR_REFRESH_S:
            return
        self.last = now
        self.bar.n = min(progress[self.unit], self.bar.total)
        recent = self.history.records[-self.log_every :]
        if recent:
            names = [k for k in recent[-1] if k not in ("step", "time", "images")]
            shown = {}
            for k in names:
                values = [r[k] for r in recent if k in r]
                shown[k] = f"{sum(values) / len(values):.4g}"
            self.bar.set_postfix(shown, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def fit(
    step_fn: Callable[[int], Mapping[str, Any]],
    *,
    budget: Budget,
    state: Mapping[str, Any] | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    config: Any = None,
    checkpoint_every: int | None = None,
    keep_last: int | None = 2,
    log_every: int = 10,
    sync_every: int | None = None,
    check_finite: Literal["loss", "all"] = "loss",
    progress: bool = True,
    desc: str | None = None,
    verbose: bool = True,
) -> History:
    """Run ``step_fn(step)`` until ``budget`` is used up; checkpoint and resume exactly.

    Args:
        step_fn: does one training step (forward, backward, optimizer step, schedulers, EMA)
            and returns scalar metrics, at least one named like ``"loss"``; ``"images"`` (a
            Python int) counts images for an images budget (under DDP: the global batch, so
            every rank counts the same).
        budget: when to stop (steps, images seen, seconds; whichever first).
        state: everything that must be restored for an exact resume, by name: models,
            optimizers, schedulers, EMA, GradScaler, batch iterators (anything with
            ``state_dict``/``load_state_dict``) and ``torch.Generator`` objects. Models are saved
            without DDP/compile wrappers. Python/NumPy/torch global streams are always saved.
        run_dir: folder for checkpoints and ``history.json``; None: nothing is written.
        resume: continue from the newest complete checkpoint in ``run_dir`` (start at step 0
            when there is none). Without it, a ``run_dir`` that already holds checkpoints is an
            error (old and new checkpoints would mix).
        config: the run's config (dataclass or JSON-able dict) stored in checkpoints; on resume a
            different stored config is reported with a warning.
        checkpoint_every: save every this many steps (and always at the end); None: only at
            the end. Needs ``run_dir``.
        keep_last: checkpoints kept (None: all).
        log_every: the progress bar shows metrics averaged over the last this many steps.
        sync_every: fetch, check and record metric tensors every this many steps (see the
            module docstring); None: 1 when the metrics live on the CPU, 16 on an accelerator.
        check_finite: ``"loss"``: guard metrics whose name contains ``"loss"``; ``"all"``: all.
        progress: show a tqdm progress bar (rank 0 only).
        desc: the bar's label.
        verbose: print a line when resuming.

    Returns:
        The :class:`History` of the whole run (resumed sessions included).

    Raises:
        NonFiniteLossError: a guarded metric was NaN or infinite (the message names the step).
    """
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a genlib.train.Budget, got {type(budget).__name__}")
    if check_finite not in ("loss", "all"):
        raise ValueError(f"check_finite must be 'loss' or 'all', got {check_finite!r}")
    for name, value in (("checkpoint_every", checkpoint_every), ("sync_every", sync_every)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    if isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 1:
        raise ValueError(f"log_every must be a positive int, got {log_every!r}")
    if run_dir is None and (resume or checkpoint_every is not None):
        raise ValueError("resume=True and checkpoint_every need a run_dir to keep checkpoints in")
    objects, generators = _split_state(state)
    cfg = config_dict(config) if config is not None else {}
    rank, world = _dist_rank_world()
    main = rank == 0

    # ---- (1) start fresh or resume ------------------------------------------------------------
    history, step, images_seen, elapsed0 = History(), 0, 0, 0.0
    ckpt_dir = checkpoint_dir(run_dir) if run_dir is not None else None
    last_saved = None
    if ckpt_dir is not None:
        if resume:
            found = latest_checkpoint(ckpt_dir)
            if found is not None:
                path, ckpt = found
                _restore(ckpt, objects, generators, cfg, rank, world, path)
                step, images_seen = int(ckpt["step"]), int(ckpt["images_seen"])
                elapsed0 = float(ckpt["elapsed"])
                history = History.from_dict(ckpt["history"])
                last_saved = step
                if verbose and main:
                    print(f"genlib: resumed from {path} (step {step:,})")
            elif verbose and main:
                print(f"genlib: no checkpoint in {ckpt_dir}; starting at step 0")
        elif list_checkpoints(ckpt_dir):
            raise FileExistsError(
                f"{ckpt_dir} already holds checkpoints; pass resume=True to continue that run, "
                "or use a new run_dir"
            )

    def save(at_step: int) -> None:
        rng = rng_state(generators)
        if world > 1:
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, rng)
            rngs = {str(r): s for r, s in enumerate(gathered)}
        else:
            rngs = {"0": rng}
        if main:
            payload = {
                "images_seen": images_seen,
                "elapsed": elapsed,
                "config": cfg,
                "budget": {
                    "steps": budget.steps,
                    "images": budget.images,
                    "seconds": budget.seconds,
                },
                "world_size": world,
                "history": history.to_dict(),
                "rng": rngs,
                "state": {name: obj.state_dict() for name, obj in objects.items()},
            }
            save_checkpoint(ckpt_dir, payload, step=at_step, keep_last=keep_last)

    recorder = _Recorder(history, guard_all=check_finite == "all")

    # ---- (2) the loop ---------------------------------------------------------------------------
    t_start = time.perf_counter()
    bar = (
        _Bar(budget, desc, log_every, history, (step, images_seen, elapsed0))
        if progress and main
        else None
    )
    first = True
    elapsed = elapsed0
    try:
        while not budget.exhausted(step, images_seen, elapsed):
            metrics = step_fn(step)
            elapsed = elapsed0 + time.perf_counter() - t_start
            if first:
                _check_metrics(metrics, step)
                if sync_every is None:
                    on_cpu = all(
                        v.device.type == "cpu"
                        for v in metrics.values()
                        if isinstance(v, torch.Tensor)
                    )
                    sync_every = 1 if on_cpu else _GPU_SYNC_EVERY
                recorder.defer = sync_every > 1
                first = False
            n_images = metrics.get("images")
            if n_images is not None:
                images_seen += int(n_images)
            recorder.add(step, elapsed, metrics)
            step += 1
            if len(recorder.pending) >= sync_every:
                recorder.flush()
                if bar is not None:
                    bar.update((step, images_seen, elapsed))
            # ---- (4) checkpoint, after the guard has seen every step --------------------------
            if ckpt_dir is not None and checkpoint_every and step % checkpoint_every == 0:
                recorder.flush()
                save(step)
                last_saved = step
        recorder.flush()
        if ckpt_dir is not None and step != last_saved:
            save(step)
        if bar is not None:
            bar.update((step, images_seen, elapsed), force=True)
    finally:
        if bar is not None:
            bar.close()
    if run_dir is not None and main:
        history.save(Path(run_dir) / HISTORY_FILE)
    if world > 1:
        dist.barrier()
    return history


def _check_metrics(metrics: Any, step: int) -> None:
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"step_fn must return a dict of metrics, got {type(metrics).__name__} at step {step}"
        )
    reserved = [k for k in _RESERVED if k in metrics]
    if reserved:
        raise ValueError(f"step_fn returned reserved metric names {reserved}; rename them")
    if not any("loss" in k for k in metrics):
        raise ValueError(
            f"step_fn returned metrics {sorted(metrics)}; fit needs at least one whose name "
            "contains 'loss' (e.g. 'loss', 'loss_d') so it can stop on NaN/inf"
        )


def _restore(
    ckpt: Mapping[str, Any],
    objects: Mapping[str, Any],
    generators: Mapping[str, torch.Generator],
    cfg: Mapping[str, Any],
    rank: int,
    world: int,
    path: Path,
) -> None:
    saved = ckpt["state"]
    if set(saved) != set(objects):
        raise ValueError(
            f"checkpoint {path} holds state for {sorted(saved)} but fit was given "
            f"{sorted(objects)}; register the same objects to resume"
        )
    if cfg and ckpt.get("config") and ckpt["config"] != cfg:
        diff = sorted(
            k for k in set(cfg) | set(ckpt["config"]) if cfg.get(k) != ckpt["config"].get(k)
        )
        warnings.warn(
            f"resuming {path} with a different config (keys {diff}); the result will not match "
            "a run made with either config alone",
            stacklevel=3,
        )
    for name, obj in objects.items():
        obj.load_state_dict(saved[name])
    rngs = ckpt["rng"]
    if str(rank) in rngs and int(ckpt.get("world_size", 1)) == world:
        rng = rngs[str(rank)]
    else:
        warnings.warn(
            f"checkpoint {path} was written by {ckpt.get('world_size', 1)} process(es), this run "
            f"has {world}; every rank restores rank 0's random streams, so the continuation is "
            "not bit-identical to the original run",
            stacklevel=3,
        )
        rng = rngs["0"]
    set_rng_state(rng, generators)  # last: loading state must not consume random numbers after it
