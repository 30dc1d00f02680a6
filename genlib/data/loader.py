"""Seeded mini-batches from in-memory tensors, resumable to the exact batch (chapter 10).

Datasets in this book fit in memory, so a batch is an index into tensors that are already where
the model is: with ``device="cuda"`` the whole dataset is copied to the GPU once and every batch
is gathered there, with no per-step host-to-device copy and no worker processes
(``torch.utils.data.DataLoader`` solves a harder problem: data that must be read and decoded).

Exact resume without saving RNG state: the order of epoch ``e`` is a permutation drawn from a
generator seeded with a hash of ``(seed, e)`` (``numpy.random.SeedSequence``, whose mixing is
stable across numpy versions), so ``(seed, epoch, position)`` is the whole state. Permutations are
drawn on the CPU, so the batches are the same on every device.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from genlib.data._checks import check_int

__all__ = ["BatchIterator", "epoch_permutation"]


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the examples in epoch ``epoch``: a permutation of ``0..n-1``, int64 ``(n,)``.

    A function of ``(n, seed, epoch)`` only: the generator is seeded with
    ``SeedSequence([seed, epoch])``, so different epochs and seeds give unrelated orders.
    """
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
    g = torch.Generator().manual_seed(int(state))
    return torch.randperm(n, generator=g)


class BatchIterator:
    """Iterate over mini-batches of one or more tensors that share their first dimension.

    Args:
        *tensors: tensors of shape ``(N, ...)``; batch ``b`` holds the same rows of each.
        batch_size: rows per batch, >= 1.
        shuffle: draw a new order each epoch (:func:`epoch_permutation`); else ``0..N-1``.
        drop_last: drop the last, smaller batch of an epoch (the default: every batch has
            ``batch_size`` rows, which keeps compiled models and loss scales steady).
        seed: seed of the epoch orders, >= 0.
        device: move the tensors there once, at construction (e.g. ``"cuda"``: GPU-resident
            data); None leaves them where they are.
        epochs: stop after this many epochs; None iterates forever.

    Each ``next()`` returns a tensor ``(B, ...)`` when one tensor was given, else a tuple of them.
    ``len()`` is the number of batches per epoch; :attr:`epoch` and :attr:`position` (batches
    already drawn in the current epoch) locate the next batch, and :meth:`state_dict` /
    :meth:`load_state_dict` save and restore them.

    Example::

        it = BatchIterator(images, labels, batch_size=128, device="cuda")
        for step in range(steps):
            x, y = next(it)
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        device: torch.device | str | None = None,
        epochs: int | None = None,
    ) -> None:
        if not tensors:
            raise ValueError("BatchIterator needs at least one tensor; got none")
        for i, t in enumerate(tensors):
            if not isinstance(t, torch.Tensor) or t.ndim == 0:
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"tensors[{i}] must be a tensor of shape (N, ...); got {got}")
        lengths = [t.shape[0] for t in tensors]
        if len(set(lengths)) != 1:
            raise ValueError(f"tensors must share their first dimension N; got lengths {lengths}")
        self.n = lengths[0]
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        if self.n == 0:
            raise ValueError("tensors are empty (N=0): there is nothing to iterate over")
        if drop_last and self.batch_size > self.n:
            raise ValueError(
                f"batch_size={batch_size} exceeds the N={self.n} examples: with drop_last=True "
                f"no batch could be formed; use batch_size <= {self.n} or drop_last=False"
            )
        self.seed = check_int("seed", seed, minimum=0)
        self.epochs = None if epochs is None else check_int("epochs", epochs, minimum=1)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.tensors = tuple(t.to(device) for t in tensors) if device is not None else tensors
        self.device = self.tensors[0].device
        self.epoch = 0
        self.position = 0
        self._order = torch.empty(0, dtype=torch.int64)  # the order of _order_epoch, on device
        self._order_epoch = -1

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[torch.Tensor | tuple[torch.Tensor, ...]]:
        return self

    def _epoch_order(self) -> torch.Tensor:
        if self._order_epoch != self.epoch:
            if self.shuffle:
                order = epoch_permutation(self.n, self.seed, self.epoch)
            else:
                order = torch.arange(self.n)
            self._order = order.to(self.device)
            self._order_epoch = self.epoch
        return self._order

    def __next__(self) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if self.position >= len(self):  # the epoch is over: start the next one
            self.epoch += 1
            self.position = 0
        if self.epochs is not None and self.epoch >= self.epochs:
            raise StopIteration
        start = self.position * self.batch_size
        index = self._epoch_order()[start : start + self.batch_size]  # (B,)
        self.position += 1
        batch = tuple(t[index] for t in self.tensors)
        return batch[0] if len(batch) == 1 else batch

    def state_dict(self) -> dict[str, int | bool]:
        """Where the iterator stands: plain ints and bools (safe for ``weights_only`` loading).

        ``epoch`` and ``position`` locate the next batch; the other entries describe the
        iterator so that :meth:`load_state_dict` can refuse a state made for another one.
        """
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "n": self.n,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: dict[str, int | bool]) -> None:
        """Continue from ``state`` (from :meth:`state_dict` of an iterator over the same data
        with the same settings): the next batch is the one the saved iterator would have drawn."""
        for key in ("seed", "n", "batch_size", "shuffle", "drop_last"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(
                    f"state_dict has {key}={state[key]!r} but this iterator has "
                    f"{key}={getattr(self, key)!r}: it was saved from a different iterator"
                )
        epoch = check_int("state_dict['epoch']", state.get("epoch"), minimum=0)
        position = check_int("state_dict['position']", state.get("position"), minimum=0)
        if position > len(self):
            raise ValueError(
                f"state_dict['position'] must be in 0..{len(self)} (batches per epoch); "
                f"got {position}"
            )
        self.epoch, self.position = epoch, position
