"""Worker for test_resume_kill.py: a small training run that uses every random stream.

Run as ``python _resume_worker.py RUN_DIR OUT --steps N --every K [--resume] [--delay S]``.
It trains a tiny regression MLP with dropout (torch's global CPU stream), Adam, a learning-rate
schedule, an EMA with warm-up, a seeded genlib.data.BatchIterator, a separate torch.Generator
for input noise, NumPy's global stream (random sign flips) and Python's ``random`` (a random
loss weight), checkpointing every K steps through genlib.train.fit. It prints ``step i`` after
each step so the test can kill it at a chosen step, and at the end writes every final state to
OUT for a bit-for-bit comparison.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch
from torch import nn

from genlib.data import BatchIterator
from genlib.train import EMA, Budget, backward_and_step, fit, rng_state, seed_everything


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run_dir")
    p.add_argument("out")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--every", type=int, required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--delay", type=float, default=0.0, help="seconds to sleep in each step")
    args = p.parse_args()

    torch.set_num_threads(1)  # the same kernels (and reduction orders) in every process
    seed_everything(0)
    data_gen = torch.Generator().manual_seed(1)
    x_all = torch.randn(200, 8, generator=data_gen)  # (N, D)
    y_all = x_all[:, :1] * 2 - x_all[:, 1:2] + 0.1 * torch.randn(200, 1, generator=data_gen)

    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.8)
    ema = EMA(model, decay=0.9, warmup=True)
    batches = BatchIterator(x_all, y_all, batch_size=32, seed=3)  # 6 batches per epoch
    noise = torch.Generator().manual_seed(7)

    def step_fn(step: int) -> dict:
        x, y = next(batches)  # (B, 8), (B, 1)
        x = x + 0.05 * torch.randn(x.shape, generator=noise)
        sign = float(np.where(np.random.rand() < 0.5, -1.0, 1.0))  # noqa: NPY002 (global stream on purpose)
        weight = 1.0 + 0.1 * random.random()
        model.train()
        loss = weight * ((model(sign * x) - sign * y) ** 2).mean()
        backward_and_step(loss, opt, clip_grad_norm=5.0)
        sched.step()
        ema.update(model)
        if args.delay:
            time.sleep(args.delay)
        print(f"step {step}", flush=True)
        return {"loss": loss, "images": x.shape[0]}

    fit(
        step_fn,
        budget=Budget(steps=args.steps),
        state={
            "model": model,
            "opt": opt,
            "sched": sched,
            "ema": ema,
            "batches": batches,
            "noise": noise,
        },
        run_dir=args.run_dir,
        resume=args.resume,
        checkpoint_every=args.every,
        progress=False,
    )
    torch.save(
        {
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "opt": opt.state_dict(),
            "sched": sched.state_dict(),
            "batches": batches.state_dict(),
            "rng": rng_state({"noise": noise}),
        },
        args.out,
    )
    print("done", flush=True)


if __name__ == "__main__":
    main()
