"""Overhead of genlib.train.fit over a plain hand-written PyTorch loop (target: <= 3%).

Both sides run the *same* step function (forward, backward, optimizer step) on the same model for
the same number of steps; the only difference is the loop around it: a bare ``for`` loop versus
``fit`` (budget check, per-step metric record with the non-finite loss check, progress bar).
Runs alternate (plain, fit, plain, fit, ...) so slow drifts of a shared machine hit both sides;
the figure quoted is the ratio of the medians, with the ratio of the minima beside it.

On a shared machine run-to-run noise (several %) can exceed the overhead itself, so the bench
also measures the loop's own cost directly: ``fit`` around a step that does nothing but return a
CPU loss tensor, against a bare loop around the same step, over many steps. That cost in
microseconds per step, divided by the model's step time, is the overhead with the noise removed.

    python bench/bench_loop.py                    # MLP on MNIST-sized inputs, 1 thread
    python bench/bench_loop.py --steps 500 --repeats 9 --threads 2 --device cuda
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

from genlib.train import Budget, backward_and_step, fit, pick_device


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=100, help="steps per run")
    p.add_argument("--repeats", type=int, default=9, help="runs of each side")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="auto")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.manual_seed(0)
    # A small MLP autoencoder on MNIST-sized inputs (784 = 28 x 28), the scale of chapter 4.
    model = nn.Sequential(
        nn.Linear(784, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 32),
        nn.ReLU(), nn.Linear(32, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 784),
    ).to(device)  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(args.batch, 784, device=device)  # (B, 784)

    def step_fn(step: int) -> dict:
        loss = ((model(x) - x) ** 2).mean()
        backward_and_step(loss, opt)
        return {"loss": loss, "images": args.batch}

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def plain() -> float:
        sync()
        t = time.perf_counter()
        for s in range(args.steps):
            step_fn(s)
        sync()
        return time.perf_counter() - t

    def with_fit(progress: bool) -> float:
        sync()
        t = time.perf_counter()
        fit(step_fn, budget=Budget(steps=args.steps), progress=progress, verbose=False)
        sync()
        return time.perf_counter() - t

    plain(), with_fit(False)  # warm-up (lazy imports, allocator, kernels)
    runs: dict[str, list[float]] = {"plain": [], "fit": [], "fit+bar": []}
    for _ in range(args.repeats):
        runs["plain"].append(plain())
        runs["fit"].append(with_fit(False))
        runs["plain"].append(plain())
        runs["fit+bar"].append(with_fit(True))

    # The loop's own cost per step, with a step that does (almost) nothing.
    loss = torch.tensor(1.0)
    n_empty = 20_000

    def empty_step(step: int) -> dict:
        return {"loss": loss, "images": args.batch}

    empty_plain, empty_fit = [], []
    for _ in range(5):
        t = time.perf_counter()
        for s in range(n_empty):
            empty_step(s)
        empty_plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        fit(empty_step, budget=Budget(steps=n_empty), progress=False, verbose=False)
        empty_fit.append(time.perf_counter() - t)
    loop_us = 1e6 * (statistics.median(empty_fit) - statistics.median(empty_plain)) / n_empty

    print(
        f"\nbench_loop: {platform.processor() or platform.machine()}, device {device}, "
        f"{torch.get_num_threads()} thread(s), torch {torch.__version__}"
    )
    print(
        f"model: MLP 784-{args.hidden}-32-{args.hidden}-784, Adam, batch {args.batch}; "
        f"{args.steps} steps per run, {args.repeats} alternating runs per side"
    )
    base_med = statistics.median(runs["plain"])
    base_min = min(runs["plain"])
    print(f"{'loop':>8}  {'median ms/step':>14}  {'min ms/step':>11}  {'overhead (median)':>17}"
          f"  {'overhead (min)':>14}")  # fmt: skip
    for name, times in runs.items():
        med, low = statistics.median(times), min(times)
        print(
            f"{name:>8}  {1e3 * med / args.steps:14.3f}  {1e3 * low / args.steps:11.3f}  "
            f"{100 * (med / base_med - 1):+16.1f}%  {100 * (low / base_min - 1):+13.1f}%"
        )
    step_us = 1e6 * base_med / args.steps
    print(
        f"fit's own cost: {loop_us:.1f} us/step (empty step, {n_empty:,} steps, median of 5) "
        f"= {100 * loop_us / step_us:.2f}% of this model's {step_us / 1e3:.2f} ms step"
    )


if __name__ == "__main__":
    main()
