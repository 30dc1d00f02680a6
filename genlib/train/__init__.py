"""Training infrastructure: seeding, devices, budgets, the loop, EMA, checkpoints, DDP.

The training *step* of each model family lives in its chapter; this package runs the loop
around it (chapter 10, "Training at scale"):

- :mod:`~genlib.train.seed`        ``seed_everything``, ``rng_state``/``set_rng_state``
- :mod:`~genlib.train.device`      ``pick_device``
- :mod:`~genlib.train.budget`      ``Budget``, ``budget`` (quick/full), ``quick_mode``
- :mod:`~genlib.train.step`        ``autocast``, ``grad_scaler``, ``backward_and_step``,
  ``maybe_compile``
- :mod:`~genlib.train.ema`         ``EMA``
- :mod:`~genlib.train.checkpoint`  atomic, code-free checkpoints; safetensors weights
- :mod:`~genlib.train.loop`        ``fit``, ``History``, ``NonFiniteLossError``
- :mod:`~genlib.train.runs`        ``load_or_train`` keyed by recipe and config
- :mod:`~genlib.train.distributed` DDP through torchrun
"""

from genlib.train.budget import Budget, budget, quick_mode
from genlib.train.checkpoint import (
    CheckpointError,
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
from genlib.train.device import available_devices, pick_device
from genlib.train.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    cleanup,
    init_distributed,
    is_main_process,
    shard,
    shard_batch,
    wrap_ddp,
)
from genlib.train.ema import EMA
from genlib.train.loop import History, NonFiniteLossError, fit
from genlib.train.runs import (
    config_dict,
    config_hash,
    is_done,
    load_or_train,
    mark_done,
    run_dir_for,
)
from genlib.train.seed import rng_state, seed_everything, set_rng_state
from genlib.train.step import (
    PRECISIONS,
    autocast,
    backward_and_step,
    default_precision,
    grad_scaler,
    maybe_compile,
    unwrap_model,
)

__all__ = [
    "Budget",
    "budget",
    "quick_mode",
    "CheckpointError",
    "CorruptCheckpointError",
    "ForeignCheckpointError",
    "UnsafeCheckpointError",
    "atomic_write",
    "checkpoint_dir",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_weights",
    "save_checkpoint",
    "save_weights",
    "weights_metadata",
    "available_devices",
    "pick_device",
    "DistInfo",
    "all_reduce_mean",
    "barrier",
    "cleanup",
    "init_distributed",
    "is_main_process",
    "shard",
    "shard_batch",
    "wrap_ddp",
    "EMA",
    "History",
    "NonFiniteLossError",
    "fit",
    "config_dict",
    "config_hash",
    "is_done",
    "load_or_train",
    "mark_done",
    "run_dir_for",
    "rng_state",
    "seed_everything",
    "set_rng_state",
    "PRECISIONS",
    "autocast",
    "backward_and_step",
    "default_precision",
    "grad_scaler",
    "maybe_compile",
    "unwrap_model",
]
