"""Speed of the shipped digit classifier's feature extraction (``digit_features``).

``genlib eval`` computes features for every sample it judges (10,000 in the published protocol,
within 30 s in total on 2 CPU cores), so extraction must be fast. This bench times
``digit_features`` on 10,000 digits (uint8, as they come out of ``genlib sample``): the first
call (which loads the weights and folds BatchNorm into the convolutions) apart, then the best of
``--repeats`` warm calls, for each thread count and batch size asked for. It also times the
unfolded module (``load_digit_classifier().features``), the reference the fast path is checked
against. Run-to-run noise on a shared machine is large: quote the best of several.

    python bench/bench_classifier.py                          # threads 1 and 2, batch 500
    python bench/bench_classifier.py --threads 1 --batch-sizes 100 250 500 1000
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from genlib.data import load
from genlib.metrics.features import digit_features, load_digit_classifier


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=10_000, help="digits to featurise")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch CPU threads")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[500])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    # 10,000 real digits: the 5,000 of mnist5k twice, as uint8 like a genlib sample file
    real = load("mnist5k", "all").images
    reps = -(-args.n // real.shape[0])
    x = torch.round(real.repeat(reps, 1, 1, 1)[: args.n] * 255).to(torch.uint8)

    print(f"torch {torch.__version__}, {platform.machine()}, {args.n:,} digits (1, 28, 28) uint8")
    t = time.perf_counter()
    digit_features(x[:10])
    print(f"first call (load weights, verify sha256, fold BatchNorm): "
          f"{time.perf_counter() - t:.3f} s")
    module = load_digit_classifier()
    xf = x.to(torch.float32) / 255
    for threads in args.threads:
        torch.set_num_threads(threads)
        for bs in args.batch_sizes:
            s = _best(lambda bs=bs: digit_features(x, batch_size=bs), args.repeats)
            with torch.inference_mode():
                s_ref = _best(lambda bs=bs: [module.features(xf[i:i + bs])
                                             for i in range(0, args.n, bs)], args.repeats)
            print(f"threads {threads}  batch {bs:5d}:  digit_features {args.n / s:8,.0f} "
                  f"images/s ({s:.2f} s)   unfolded module {args.n / s_ref:8,.0f} images/s "
                  f"({s_ref:.2f} s)")


if __name__ == "__main__":
    main()
