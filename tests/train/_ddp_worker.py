"""Worker for test_distributed.py: data-parallel training through genlib.train.

Under ``torchrun --nproc-per-node=2`` every rank trains on its half of each global batch of 32
(DDP averages the gradients); run plainly it is the single-process reference on whole batches.
``train(out_dir)`` returns the final weights; the ``__main__`` block also writes them to
``out_dir/rank{r}.pt``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from genlib.data import BatchIterator
from genlib.train import (
    Budget,
    all_reduce_mean,
    backward_and_step,
    cleanup,
    fit,
    init_distributed,
    seed_everything,
    shard,
    unwrap_model,
    wrap_ddp,
)

STEPS = 12


def train(out_dir: Path) -> tuple[int, dict[str, torch.Tensor]]:
    info = init_distributed(backend="gloo", device="cpu")  # a world of one without torchrun
    seed_everything(0)
    data = torch.Generator().manual_seed(1)
    x_all = torch.randn(160, 6, generator=data)  # (N, D)
    y_all = torch.sin(x_all[:, :2].sum(1, keepdim=True))  # (N, 1)
    model = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 1)).to(info.device)
    model = wrap_ddp(model, info.device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    # every rank draws the same global batches and keeps its own slice of each
    batches = shard(BatchIterator(x_all, y_all, batch_size=32, seed=4), info)

    def step_fn(step: int) -> dict:
        x, y = next(batches)  # (32 / W, 6), (32 / W, 1)
        loss = ((model(x) - y) ** 2).mean()
        backward_and_step(loss, opt)  # DDP all-reduces the gradients during backward
        return {"loss": all_reduce_mean(loss), "images": x.shape[0] * info.world_size}

    fit(
        step_fn,
        budget=Budget(steps=STEPS),
        state={"model": model, "opt": opt, "batches": batches},
        run_dir=out_dir / "run",
        checkpoint_every=6,
        progress=False,
        verbose=False,
    )
    weights = {k: v.detach().clone() for k, v in unwrap_model(model).state_dict().items()}
    rank = info.rank
    cleanup()
    return rank, weights


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    rank, weights = train(out)
    torch.save(weights, out / f"rank{rank}.pt")
