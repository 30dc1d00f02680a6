"""The ``genlib`` command: the notebooks' recipes and datasets, from a terminal.

::

    genlib info
    genlib data list
    genlib data show NAME --out FILE.png [--split S] [--n N]
    genlib train --list
    genlib train RECIPE --out RUN_DIR [--quick] [--budget-s S] [--steps N] [--seed S]
                                      [--device D] [--resume]
    genlib sample RUN_DIR --n N --out FILE.npz [--seed S]
    genlib eval FILE.npz --against DATASET [--json OUT]
    genlib course export SOURCE [SOURCE ...] --out DIR

Errors a user can fix (an unknown name, a missing run folder, a bad value) print one line
starting with ``genlib: error:`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path


class UsageError(Exception):
    """A mistake on the command line, reported as one line and exit status 2."""


# ------------------------------------------------------------------------------------- info
def cmd_info(args: argparse.Namespace) -> int:
    import torch

    import genlib
    from genlib.data import DATASETS, data_dir
    from genlib.train import available_devices, pick_device, quick_mode

    print(f"genlib {genlib.__version__} (python {platform.python_version()}, "
          f"torch {torch.__version__}, {platform.system()} {platform.machine()})")
    print(f"devices: {', '.join(str(d) for d in available_devices())}; "
          f"default: {pick_device()}; CPU threads: {torch.get_num_threads()}")
    mode = "quick" if quick_mode() else "full"
    print(f"mode: {mode} (GENLIB_QUICK={os.environ.get('GENLIB_QUICK', '<unset>')})")
    print(f"data cache (online sets): {data_dir()}")
    print("datasets: " + ", ".join(DATASETS))
    return 0


# ------------------------------------------------------------------------------------- data
def cmd_data_list(args: argparse.Namespace) -> int:
    from genlib.data import DATASETS

    width = max(len(n) for n in DATASETS)
    for name, info in DATASETS.items():
        where = "online" if info.online else ("generated" if info.generated else "embedded")
        sizes = ", ".join(f"{k} {v:,}" for k, v in info.sizes.items())
        print(f"{name:<{width}}  {where:<9}  {str(info.shape):<12}  {sizes}")
        print(f"{'':<{width}}  {info.description}")
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genlib.data import DATASETS, load
    from genlib.viz import plot_samples_2d, save_grid

    if args.name not in DATASETS:
        raise UsageError(f"unknown dataset {args.name!r}; valid names: {', '.join(DATASETS)}")
    info = DATASETS[args.name]
    if args.split not in info.splits:
        raise UsageError(f"--split {args.split!r} is not a split of {args.name}; "
                         f"valid: {', '.join(info.splits)}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out must be a .png file, got {args.out!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    data = load(args.name, args.split)
    if info.kind == "points":
        fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
        plot_samples_2d(data.points[: max(args.n, 1000)], ax=ax,
                        title=f"{args.name} ({args.split}, {max(args.n, 1000):,} points)")
        fig.savefig(out, bbox_inches="tight")
        plt.close(fig)
    else:
        n = min(args.n, len(data))
        labels = None
        if data.captions is not None:
            labels = None  # captions are long; print the first few instead
            for caption in data.captions[: min(n, 8)]:
                print(f"  {caption}")
        elif data.labels is not None and data.classes is not None:
            labels = [data.classes[int(i)] for i in data.labels[:n]]
        elif data.labels is not None:
            labels = [str(int(i)) for i in data.labels[:n]]
        save_grid(data.images[:n], out, title=f"{args.name} ({args.split}): first {n}",
                  labels=labels)
    print(f"wrote {out}")
    return 0


# ------------------------------------------------------------------------------------ train
def cmd_train(args: argparse.Namespace) -> int:
    from genlib.recipes import get_recipe, list_recipes

    if args.list:
        recipes = list_recipes()
        width = max(len(r.name) for r in recipes)
        for r in recipes:
            print(f"{r.name:<{width}}  ch{r.chapter:<2}  quick: {r.quick.describe():<14} "
                  f"full: {r.full.describe():<14}  {r.summary}")
        return 0
    if not args.recipe:
        raise UsageError("train needs a RECIPE (see `genlib train --list`)")
    if not args.out:
        raise UsageError("train needs --out RUN_DIR (the folder that will hold the run)")
    try:
        recipe = get_recipe(args.recipe)
    except KeyError as err:
        raise UsageError(err.args[0]) from None
    return _train(recipe, args)


def _train(recipe, args: argparse.Namespace) -> int:
    import dataclasses

    from genlib.recipes import RUN_FILE, read_run_info, write_metrics, write_run_info
    from genlib.train import Budget, budget, list_checkpoints, pick_device, seed_everything

    run_dir = Path(args.out)
    has_checkpoints = bool(list_checkpoints(run_dir / "checkpoints"))
    if has_checkpoints and not args.resume:
        raise UsageError(f"{run_dir} already holds a run; add --resume to continue it, or "
                         "choose another --out")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    if args.budget_s is not None and not args.budget_s > 0:
        raise UsageError(f"--budget-s must be > 0, got {args.budget_s}")
    try:
        device = str(pick_device(args.device))
    except ValueError as err:
        raise UsageError(f"--device: {err}") from None

    chosen = budget(recipe.quick, recipe.full, mode="quick" if args.quick else None)
    if args.steps is not None or args.budget_s is not None:
        chosen = Budget(steps=args.steps, seconds=args.budget_s)
        print(f"genlib: budget from the command line: {chosen.describe()}")
    config = recipe.config_cls()
    seed = args.seed
    if args.resume and (run_dir / RUN_FILE).is_file():
        info = read_run_info(run_dir)
        if info["recipe"] != recipe.name:
            raise UsageError(f"{run_dir} holds a run of {info['recipe']!r}, not {recipe.name!r}")
        config = recipe.config_cls(**info["config"])
        seed = info["seed"]
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_info(run_dir, recipe, config, seed=seed, budget=chosen, device=device)
    seed_everything(seed)
    metrics = recipe.train(config, run_dir, budget=chosen, device=device, seed=seed,
                           resume=args.resume, progress=not args.no_progress)
    metrics = {"recipe": recipe.name, "seed": seed, **metrics,
               "config": dataclasses.asdict(config)}
    write_metrics(run_dir, metrics)
    print(json.dumps({k: v for k, v in metrics.items() if k != "config"}, indent=2))
    print(f"genlib: run saved in {run_dir} (metrics.json, history.json, checkpoints/)")
    return 0


# ----------------------------------------------------------------------------------- sample
def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from genlib.recipes import get_recipe, read_run_info

    run_dir = Path(args.run_dir)
    try:
        info = read_run_info(run_dir)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    if args.n < 1:
        raise UsageError(f"--n must be >= 1, got {args.n}")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise UsageError(f"--out must be a .npz file, got {args.out!r}")
    recipe = get_recipe(info["recipe"])
    try:
        arrays = recipe.sample(run_dir, args.n, seed=args.seed)
    except ValueError as err:  # e.g. a classifier run: nothing to sample
        raise UsageError(f"{run_dir}: {err}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, out)
    shapes = ", ".join(f"{k} {v.dtype} {v.shape}" for k, v in arrays.items())
    print(f"wrote {out}: {shapes}")
    return 0


# ------------------------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    import time
    import zipfile

    import numpy as np
    import torch

    from genlib.data import DATASETS
    from genlib.metrics import evaluate_images, format_report, real_floor

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"no such file: {args.file}")
    if args.against not in DATASETS:
        raise UsageError(f"unknown dataset {args.against!r}; valid names: {', '.join(DATASETS)}")
    if args.n_boot < 0:
        raise UsageError(f"--n-boot must be >= 0, got {args.n_boot}")
    if args.json and Path(args.json).suffix.lower() != ".json":
        raise UsageError(f"--json must name a .json file, got {args.json!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = list(f.keys())
            if "images" not in keys:
                raise UsageError(
                    f"{path} holds no 'images' array (it holds: {', '.join(keys) or 'nothing'}); "
                    "genlib eval needs images uint8 (N, C, H, W), as `genlib sample` writes")
            images = f["images"]
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise UsageError(f"cannot read {path} as a .npz file of arrays: {err}") from None
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(args.seed)
    try:
        result = evaluate_images(images, against=args.against, split=args.split,
                                 n_boot=args.n_boot, generator=generator, device=args.device)
        floor = None
        if not args.no_floor and "test" in DATASETS[args.against].splits:
            floor = real_floor(args.against, n_boot=args.n_boot, seed=args.seed,
                               device=args.device)
    except (ValueError, TypeError, ImportError) as err:
        raise UsageError(f"{path}: {err}") from None
    print(f"genlib eval {path}")
    print(format_report(result, floor))
    if floor is not None and floor["n"] != result["n"]:
        print(f"note: FID and recall/coverage shift with the number of samples; the floor uses "
              f"{floor['n']:,} real images, these results {result['n']:,} samples")
    print(f"evaluated in {time.perf_counter() - start:.1f} s")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps({"file": str(path), **result, "floor": floor}, indent=2) + "\n",
                       encoding="utf-8")
        os.replace(tmp, out)
        print(f"wrote {out}")
    return 0


# ----------------------------------------------------------------------------------- course
def cmd_course_export(args: argparse.Namespace) -> int:
    from genlib.course import export_student

    try:
        written = export_student([Path(s) for s in args.sources], Path(args.out))
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None
    for path in written:
        print(f"wrote {path}")
    return 0


# ----------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genlib", description="Datasets, recipes and samples of Generative Image Models, "
        "Hands-On.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="versions, devices, datasets and mode")
    p.set_defaults(func=cmd_info)

    data = sub.add_parser("data", help="list or show datasets")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    p = dsub.add_parser("list", help="list the datasets")
    p.set_defaults(func=cmd_data_list)
    p = dsub.add_parser("show", help="save a grid of a dataset's images as PNG")
    p.add_argument("name")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--split", default="train")
    p.add_argument("--n", type=int, default=64, help="images to show (default 64)")
    p.set_defaults(func=cmd_data_show)

    p = sub.add_parser("train", help="train a recipe into a run folder")
    p.add_argument("recipe", nargs="?", help="recipe name (see --list)")
    p.add_argument("--list", action="store_true", help="list the recipes and exit")
    p.add_argument("--out", help="run folder (created; holds checkpoints and metrics.json)")
    p.add_argument("--quick", action="store_true", help="quick-mode budget (also GENLIB_QUICK=1)")
    p.add_argument("--steps", type=int, help="train for this many steps")
    p.add_argument("--budget-s", type=float, help="train for at most this many seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained run into a .npz file")
    p.add_argument("run_dir")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--out", required=True, help=".npz file: images uint8 (N, C, H, W), or "
                   "points float32 (N, D) for 2D sets; labels/captions when conditional")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="sample-quality metrics of a .npz of images against a "
                       "dataset, beside the real-data floor")
    p.add_argument("file", help=".npz file holding images uint8 (N, C, H, W)")
    p.add_argument("--against", required=True, help="reference dataset, e.g. mnist5k")
    p.add_argument("--split", default="train", help="its split to compare with (default train)")
    p.add_argument("--json", help="also write the metrics (and the floor) to this .json file")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples")
    p.add_argument("--n-boot", type=int, default=100, help="bootstrap resamples (0: none)")
    p.add_argument("--no-floor", action="store_true", help="skip the real-data floor")
    p.add_argument("--device", default=None, help="where the feature network runs (default cpu)")
    p.set_defaults(func=cmd_eval)

    course = sub.add_parser("course", help="instructor tools")
    csub = course.add_subparsers(dest="course_command", required=True, metavar="SUBCOMMAND")
    p = csub.add_parser("export", help="student versions of chapters (solutions removed)")
    p.add_argument("sources", nargs="+", help="chapter .md files or folders")
    p.add_argument("--out", required=True, help="folder for the student versions")
    p.set_defaults(func=cmd_course_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as err:
        print(f"genlib: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
