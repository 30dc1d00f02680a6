"""Data-parallel training with DistributedDataParallel (DDP), launched by ``torchrun``.

``torchrun --nproc-per-node=N train.py`` starts N copies of the script and tells each who it is
through environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``). Each process (rank) holds a full copy of the model and takes its own slice of
every global batch; in ``backward`` DDP averages the gradients over ranks with an all-reduce, so
every rank applies the same update::

    g = (1/W) sum_r g_r,   g_r = grad of the mean loss over rank r's B/W examples
      = grad of the mean loss over the whole global batch of B examples        (W divides B)

which is the single-process full-batch gradient: DDP changes the speed, not the maths (chapter
10, "Many GPUs"). The sum is taken in a different order, so results agree to rounding (about
1e-7 relative in float32), not bit for bit.

Usage::

    info = init_distributed()                  # no-op (world size 1) when not under torchrun
    model = wrap_ddp(model.to(info.device), info.device)
    for batch in shard(batches, info):         # this rank's slice of each global batch
        ...
    cleanup()
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistInfo",
    "init_distributed",
    "is_main_process",
    "all_reduce_mean",
    "barrier",
    "wrap_ddp",
    "shard_batch",
    "shard",
    "ShardedBatches",
    "cleanup",
]


@dataclass(frozen=True)
class DistInfo:
    """Who this process is.

    Attributes:
        rank: global index of this process, 0..world_size-1 (0 is the main process).
        world_size: number of processes.
        local_rank: index on this machine (the GPU it uses).
        backend: ``"nccl"``, ``"gloo"`` or ``None`` when not distributed.
        device: the device this rank computes on.
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str | None
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str) -> int:
    raw = os.environ.get(name)
    if raw is None:
        raise ValueError(
            f"environment variable {name} is not set; launch with torchrun (which sets RANK, "
            "WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)"
        )
    try:
        return int(raw)
    except ValueError as err:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from err


def init_distributed(
    backend: str | None = None,
    *,
    device: str | torch.device | None = None,
    init_method: str | None = None,
) -> DistInfo:
    """Join the process group described by torchrun's environment variables.

    Without ``WORLD_SIZE`` in the environment (a plain ``python train.py``), or with
    ``WORLD_SIZE=1``, nothing is initialised and a world of one is returned, so the same script
    runs with and without torchrun.

    Args:
        backend: ``"nccl"`` (GPUs) or ``"gloo"`` (CPU); default: nccl when CUDA is available,
            else gloo.
        device: the device of this rank; default ``cuda:LOCAL_RANK`` with CUDA, else ``cpu``.
        init_method: rendezvous URL; default ``"env://"`` (MASTER_ADDR/MASTER_PORT), or e.g.
            ``"file:///tmp/rendezvous"``.

    Raises:
        ValueError: a torchrun variable is missing or malformed, or an unknown backend.
        RuntimeError: the process group is already initialised.
    """
    cuda = torch.cuda.is_available()
    if "WORLD_SIZE" not in os.environ or _env_int("WORLD_SIZE") == 1:
        dev = (
            torch.device(device) if device is not None else torch.device("cuda" if cuda else "cpu")
        )
        return DistInfo(rank=0, world_size=1, local_rank=0, backend=None, device=dev)

    rank, world, local_rank = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside [0, WORLD_SIZE={world})")
    if backend is None:
        backend = "nccl" if cuda else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl' or 'gloo', got {backend!r}")
    if init_method is None:
        init_method = "env://"
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if name not in os.environ:
                raise ValueError(
                    f"environment variable {name} is not set (needed by init_method='env://'); "
                    "launch with torchrun or pass init_method='file:///path/to/rendezvous'"
                )
    if dist.is_initialized():
        raise RuntimeError("torch.distributed is already initialised; call cleanup() first")
    if device is not None:
        dev = torch.device(device)
    else:
        if cuda and local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} CUDA "
                "device(s); start at most that many processes per node, or pass device='cpu' "
                "(with backend='gloo')"
            )
        dev = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # NCCL collectives use the current device
    dist.init_process_group(backend=backend, init_method=init_method, rank=rank, world_size=world)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, backend=backend, device=dev)


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def is_main_process() -> bool:
    """True on rank 0, and in a process that is not distributed."""
    return not _active() or dist.get_rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if _active():
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over ranks (a new tensor; the input is not modified).

    Use it to log a loss averaged over all ranks; when not distributed it returns a copy.
    """
    out = tensor.detach().clone()
    if _active():
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= dist.get_world_size()
    return out


def wrap_ddp(model: nn.Module, device: str | torch.device, **ddp_kwargs: Any) -> nn.Module:
    """Wrap ``model`` (already on ``device``) in DistributedDataParallel; unchanged if not
    distributed. Wrapping broadcasts rank 0's weights, so all ranks start equal."""
    if not _active():
        return model
    device = torch.device(device)
    if device.type == "cuda":
        return nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index], output_device=device.index, **ddp_kwargs
        )
    return nn.parallel.DistributedDataParallel(model, **ddp_kwargs)


def _rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is None or world_size is None:
        active_rank, active_world = (
            (dist.get_rank(), dist.get_world_size()) if _active() else (0, 1)
        )
        rank = active_rank if rank is None else rank
        world_size = active_world if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
    return rank, world_size


def shard_batch(batch: Any, rank: int | None = None, world_size: int | None = None) -> Any:
    """This rank's contiguous slice ``[rank * B/W, (rank + 1) * B/W)`` along dim 0.

    Args:
        batch: a tensor ``(B, ...)``, or a tuple/list/dict of them (all with the same B).
        rank, world_size: default: those of the running process group (0 and 1 when none).

    Raises:
        ValueError: B is not divisible by the world size (unequal slices would weight the
            examples of the smaller slices more in the averaged gradient).
    """
    rank, world_size = _rank_world(rank, world_size)
    sizes = set()

    def collect(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            sizes.add(x.shape[0])
        elif isinstance(x, list | tuple):
            for v in x:
                collect(v)
        elif isinstance(x, Mapping):
            for v in x.values():
                collect(v)

    collect(batch)
    if len(sizes) != 1:
        raise ValueError(f"batch tensors must share one batch size, got sizes {sorted(sizes)}")
    (b,) = sizes
    if b % world_size:
        raise ValueError(
            f"global batch size {b} is not divisible by world_size={world_size}; pick a batch "
            "size that is a multiple of the number of processes"
        )
    per = b // world_size
    lo, hi = rank * per, (rank + 1) * per

    def cut(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return x[lo:hi]
        if isinstance(x, tuple):
            return type(x)(*map(cut, x)) if hasattr(x, "_fields") else tuple(map(cut, x))
        if isinstance(x, list):
            return [cut(v) for v in x]
        if isinstance(x, Mapping):
            return {k: cut(v) for k, v in x.items()}
        return x

    return cut(batch)


class ShardedBatches:
    """Iterate over ``batches`` yielding this rank's slice of each; checkpointable.

    ``state_dict``/``load_state_dict`` are those of the wrapped iterator (every rank iterates
    the same global order, so one state serves all ranks).
    """

    def __init__(self, batches: Iterable[Any], rank: int, world_size: int) -> None:
        self.batches = batches
        self.rank, self.world_size = _rank_world(rank, world_size)
        self._it: Iterator[Any] | None = None

    def __iter__(self) -> ShardedBatches:
        return self

    def __next__(self) -> Any:
        if self._it is None:
            self._it = iter(self.batches)
        return shard_batch(next(self._it), self.rank, self.world_size)

    def state_dict(self) -> dict[str, Any]:
        if not hasattr(self.batches, "state_dict"):
            raise TypeError(f"{type(self.batches).__name__} has no state_dict()")
        return self.batches.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not hasattr(self.batches, "load_state_dict"):
            raise TypeError(f"{type(self.batches).__name__} has no load_state_dict()")
        self.batches.load_state_dict(state)


def shard(
    batches: Iterable[Any],
    info: DistInfo | None = None,
    *,
    rank: int | None = None,
    world_size: int | None = None,
) -> ShardedBatches:
    """Wrap a batch iterator so each rank gets a disjoint slice of every global batch.

    Args:
        batches: an iterable of global batches (e.g. a ``genlib.data.BatchIterator`` seeded
            identically on every rank).
        info: from :func:`init_distributed`; or give ``rank``/``world_size``; default: the
            running process group.
    """
    if info is not None:
        rank, world_size = info.rank, info.world_size
    rank, world_size = _rank_world(rank, world_size)
    return ShardedBatches(batches, rank, world_size)


def cleanup() -> None:
    """Leave the process group (no-op when not distributed)."""
    if _active():
        dist.destroy_process_group()
