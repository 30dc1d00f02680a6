"""The diffusion targets of chapter 6, measured: the recipes' full budgets, timed, and the
engineering choices behind them.

Targets (issue 8), on 2 CPU cores:

- ``ddpm-mnist5k`` and ``flow-mnist5k``: classifier-FID <= 15 for 1,000 samples after at most
  5 minutes of training (both stages of a latent model counted) plus at most 30 s of sampling,
  with every digit class at least 7% of the samples;
- ``ddpm-toy2d``: no target of its own; its MMD to fresh data is recorded beside the data's own.

And on a GPU (full mode): classifier-FID within 2x of the real-data floor (the classifier-FID
of the 1,000 real test digits, :func:`genlib.metrics.real_floor`), every class at least 7%,
checked for ``ddpm-pixel-mnist5k`` and ``cddpm-pixel-mnist5k``; their seconds are recorded, not
targeted. ``--device cuda`` writes
bench/results/diffusion_gpu.json (``--merge`` keeps the rows of runs made one seed at a time).
``cddpm-pixel-mnist5k``, the same model told the digit, draws 100 samples of each digit like the
stratified test split, so it is compared with the floor like for like; the unconditional model's
random class counts alone cost about 0.1 (``--floor-noise``).

``--floor-noise`` (CPU, seconds) measures why the unconditional target is out of reach even for
a perfect model: 1,000 independent samples hold random class counts, which a stratified floor
never sees (:func:`genlib.metrics.class_count_noise`). It writes
bench/results/diffusion_floor.json: the floor, the excess of multinomial over stratified class
counts, their sum (the floor of 1,000 independent real digits), and for each unconditional GPU
run of diffusion_gpu.json the FID real digits score when drawn with that run's class counts.

``python bench/bench_diffusion.py`` trains each recipe with its default config and full budget (a
fixed number of steps, so the scores do not depend on the machine; seconds are measured), then
re-samples the mnist5k models with fewer and more sampler steps: the quality-vs-steps table
of the chapter. Results go to bench/results/diffusion.json.

``--sweep`` compares the choices the chapter discusses at one wall-clock budget (``--seconds``,
default 300, stage 1 included; a seconds budget has no known length, so the learning rate
stays constant after its warm-up): a pixel-space U-Net at 28x28 and at 14x14, and latent models with
epsilon- or v-prediction, with and without EMA, and flow matching. The latent rows share one
stage 1 VAE (trained once; its seconds are charged to every latent row). Results go to
bench/results/diffusion_sweep.json.

    python bench/bench_diffusion.py                      # the three recipes, seed 0
    python bench/bench_diffusion.py --recipes ddpm-mnist5k --seeds 0 1 2
    python bench/bench_diffusion.py --sweep --only latent_v pixel14
    python bench/bench_diffusion.py --recipes ddpm-pixel-mnist5k --device cuda
    python bench/bench_diffusion.py --recipes cddpm-pixel-mnist5k --device cuda --seeds 1 --merge
    python bench/bench_diffusion.py --floor-noise

Timings on a shared machine are noisy: run when the machine is otherwise idle.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, save_json  # noqa: E402

from genlib.recipes import get_recipe  # noqa: E402
from genlib.recipes.diffusion import (  # noqa: E402
    AUTOENCODER_DIR,
    DiffusionTrainConfig,
    LatentDDPMConfig,
    LatentFlowConfig,
    load_pipeline,
)
from genlib.train import Budget  # noqa: E402

RECIPES = ("ddpm-toy2d", "ddpm-mnist5k", "flow-mnist5k")  # the default run, on the CPU
GPU_RECIPES = ("ddpm-pixel-mnist5k", "cddpm-pixel-mnist5k")
FLOOR_FACTOR = 2.0  # the GPU target: classifier-FID <= 2x the real-data floor
FID_TARGET, MIN_SHARE_TARGET, TRAIN_TARGET_S, SAMPLE_TARGET_S = 15.0, 0.07, 300.0, 30.0
STEPS_TABLE = {"ddpm-mnist5k": [("ddim", s) for s in (5, 10, 20, 50, 100)] + [("ddpm", None)],
               "flow-mnist5k": [("euler", s) for s in (5, 10, 25, 50)]
               + [("heun", s) for s in (5, 10, 25)],
               "ddpm-pixel-mnist5k": [("ddim", s) for s in (25, 50, 100, 250)],
               "cddpm-pixel-mnist5k": [("ddim", s) for s in (25, 50, 100, 250)]}

# name: (config, what it shows)
SWEEP = {
    "pixel28": (DiffusionTrainConfig(space="pixel", parameterization="eps", batch_size=64),
                "the naive start: the default U-Net (1.1M parameters) on 28x28 pixels"),
    "pixel14": (DiffusionTrainConfig(
        space="pixel", parameterization="eps", batch_size=64,
        unet=replace(DiffusionTrainConfig().unet, image_size=14, channel_mults=(1, 2))),
        "the same U-Net width at 14x14 (two levels), upsampled for scoring"),
    "latent_eps": (LatentDDPMConfig(parameterization="eps"),
                   "latent model, epsilon-prediction"),
    "latent_v": (LatentDDPMConfig(), "latent model, v-prediction (the ddpm-mnist5k recipe)"),
    "latent_v_noema": (LatentDDPMConfig(ema_decay=0.0), "the recipe without the EMA"),
    "latent_flow": (LatentFlowConfig(), "latent flow matching (the flow-mnist5k recipe)"),
}


def _floor_fid() -> float:
    from genlib.metrics import real_floor

    return float(real_floor("mnist5k", n_boot=0, kid_subsets=10)["fid"])


def check(name: str, m: dict) -> bool:
    if name == "ddpm-toy2d":
        return True
    if name in GPU_RECIPES:
        return bool(m["classifier_fid"] <= FLOOR_FACTOR * _floor_fid()
                    and m["min_class_share"] >= MIN_SHARE_TARGET)
    return bool(m["classifier_fid"] <= FID_TARGET and m["min_class_share"] >= MIN_SHARE_TARGET
                and m["train_seconds"] <= TRAIN_TARGET_S
                and m["sample_seconds"] <= SAMPLE_TARGET_S)


def _score(model, sampler, steps, seed=0) -> dict:
    from genlib.metrics import evaluate_images

    t = time.perf_counter()
    x = model.sample(1000, sampler=sampler, steps=steps,
                     generator=torch.Generator().manual_seed(seed))
    secs = time.perf_counter() - t
    ev = evaluate_images(torch.round(x * 255) / 255, against="mnist5k", n_boot=0,
                         kid_subsets=10)
    return {"sampler": sampler, "steps": steps, "sample_seconds": round(secs, 1),
            "classifier_fid": round(ev["fid"], 2),
            "min_class_share": round(ev["class_hist"]["min_share"], 3)}


def run_recipes(args) -> int:
    rows, tables = [], {}
    for name in args.recipes:
        recipe = get_recipe(name)
        for seed in args.seeds:
            with tempfile.TemporaryDirectory(prefix="bench-diffusion-") as tmp:
                t, cfg = time.perf_counter(), recipe.config_cls()
                m = recipe.train(cfg, Path(tmp) / "run", budget=recipe.full,
                                 device=args.device, seed=seed, progress=False)
                wall = time.perf_counter() - t
                row = {"recipe": name, "seed": seed, "threads": args.threads,
                       "device": _device_name(args.device),
                       "steps": m["steps"], "images_seen": m["images_seen"],
                       "train_seconds": round(m["train_seconds"], 1),
                       "autoencoder_seconds": round(m["autoencoder_seconds"], 1),
                       "sample_seconds": round(m["sample_seconds"], 1),
                       "wall_seconds": round(wall, 1), "measured_unix": int(time.time())}
                if name == "ddpm-toy2d":
                    row.update(mmd=m["mmd"], mmd_data=m["mmd_data"])
                else:
                    row.update(classifier_fid=round(m["classifier_fid"], 2),
                               min_class_share=round(m["min_class_share"], 3),
                               class_shares=[round(s, 3) for s in m["class_shares"]],
                               nn_dist_samples=round(m["nn_dist_samples"], 3),
                               nn_dist_test=round(m["nn_dist_test"], 3),
                               n_params=m["n_params"])
                    if "label_accuracy" in m:
                        row["label_accuracy"] = round(m["label_accuracy"], 3)
                    if name in GPU_RECIPES:
                        floor = _floor_fid()
                        row.update(floor_fid=round(floor, 3),
                                   fid_target=round(FLOOR_FACTOR * floor, 3))
                    else:
                        row.update(train_target_s=TRAIN_TARGET_S,
                                   sample_target_s=SAMPLE_TARGET_S)
                    if args.save_samples:  # a grid for the book: images (and labels asked for)
                        out = Path(args.save_samples) / f"{name}_seed{seed}.npz"
                        out.parent.mkdir(parents=True, exist_ok=True)
                        np.savez_compressed(out, **recipe.sample(
                            Path(tmp) / "run", 100, seed=seed, device=args.device, config=cfg))
                    if seed == args.seeds[0] and not args.no_table:
                        model = load_pipeline(Path(tmp) / "run", device=args.device)
                        tables[name] = [_score(model, s, k, seed) for s, k in STEPS_TABLE[name]]
                        for r in tables[name]:
                            print(json.dumps({"recipe": name, **r}), flush=True)
                row["meets_target"] = check(name, m)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(f"\ntorch {torch.__version__}, {args.threads} torch threads, "
          f"{_device_name(args.device)}")
    for r in rows:
        if r["recipe"] == "ddpm-toy2d":
            res = f"MMD {r['mmd']:.5f} (data vs data {r['mmd_data']:.5f})"
        else:
            res = (f"FID {r['classifier_fid']:.2f}, smallest class "
                   f"{100 * r['min_class_share']:.1f}%, sampling {r['sample_seconds']:.1f} s")
        print(f"{r['recipe']:18s} seed {r['seed']} {r['steps']:6d} steps {r['train_seconds']:7.1f}"
              f" s  {res}  {'met' if r['meets_target'] else 'MISSED'}")
    for name in args.recipes:
        sel = [r for r in rows if r["recipe"] == name and "classifier_fid" in r]
        if len(sel) > 1:
            print(f"{name}: median FID {statistics.median(r['classifier_fid'] for r in sel):.2f}")
    record = {"machine": {**machine_info(args.threads), "device": _device_name(args.device)},
              "measured_unix": int(time.time()), "rows": rows, "steps_table": tables}
    if args.merge and Path(args.out).exists():
        record = merge_results(json.loads(Path(args.out).read_text()), record)
    save_json(args.out, record)
    return 0 if all(r["meets_target"] for r in rows) else 1


def merge_results(old: dict, new: dict) -> dict:
    """``new`` with the rows and steps tables of ``old`` that it did not measure again.

    A row is known by its (recipe, seed); a steps table by its recipe. Kept rows stay in their
    old order, before the new ones, so seeds measured in separate runs (one GPU call each, say)
    build up one file.
    """
    fresh = {(r["recipe"], r["seed"]) for r in new["rows"]}
    when = {"measured_unix": old.get("measured_unix")}  # rows written before rows carried it
    rows = [{**when, **r} for r in old.get("rows", []) if (r["recipe"], r["seed"]) not in fresh]
    tables = {k: v for k, v in old.get("steps_table", {}).items() if k not in new["steps_table"]}
    return {**new, "rows": rows + new["rows"], "steps_table": {**tables, **new["steps_table"]}}


def _device_name(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return device


def run_sweep(args) -> int:
    names = args.only or list(SWEEP)
    unknown = sorted(set(names) - set(SWEEP))
    if unknown:
        raise SystemExit(f"--only: unknown sweep entries {unknown}; valid: {', '.join(SWEEP)}")
    recipe = get_recipe("ddpm-mnist5k")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-diffusion-sweep-") as tmp:
        shared_ae = None
        for name in names:
            cfg, what = SWEEP[name]
            run = Path(tmp) / name
            budget_s = args.seconds
            if cfg.latent:
                if shared_ae is None:  # train stage 1 once, at the recipe's full length
                    from genlib.recipes.diffusion import _stage1

                    ae_steps = cfg.autoencoder_steps or recipe.full.steps // 2
                    shared_ae = Path(tmp) / "shared"
                    ae = _stage1(cfg, shared_ae, steps=ae_steps, device="cpu", seed=0,
                                 resume=False, progress=False)
                    ae_seconds = float(ae["train_seconds"])
                shutil.copytree(shared_ae / AUTOENCODER_DIR, run / AUTOENCODER_DIR)
                budget_s = args.seconds - ae_seconds
            m = recipe.train(cfg, run, budget=Budget(seconds=budget_s), device="cpu", seed=0,
                             resume=True, progress=False)
            row = {"name": name, "what": what, "steps": m["steps"],
                   "train_seconds": round(m["train_seconds"], 1),
                   "sample_seconds": round(m["sample_seconds"], 1),
                   "n_params": m["n_params"], "classifier_fid": round(m["classifier_fid"], 2),
                   "min_class_share": round(m["min_class_share"], 3),
                   "sampler": f"{cfg.sampler} {cfg.sample_steps}"}
            rows.append(row)
            print(json.dumps(row), flush=True)
    save_json(args.out, {"machine": machine_info(args.threads), "seconds": args.seconds,
                         "measured_unix": int(time.time()), "rows": rows})
    return 0


def run_floor_noise(args) -> int:
    from scipy.stats import chisquare

    from genlib.data import load
    from genlib.metrics import class_count_noise, digit_features, fid_with_class_counts

    reps = 400
    test, train = load("mnist5k", "test"), load("mnist5k", "train")
    feat, ref = digit_features(test.images).double(), digit_features(train.images).double()
    floor = _floor_fid()
    noise = class_count_noise(feat, test.labels, ref, n=1000, reps=reps,
                              generator=torch.Generator().manual_seed(0))
    out = {"floor_fid": round(floor, 4), "fid_target": round(FLOOR_FACTOR * floor, 4),
           "n": noise.n, "reps": reps,
           "stratified_resamples": {"mean": round(noise.stratified, 4),
                                    "sd": round(noise.stratified_sd, 4)},
           "iid_resamples": {"mean": round(noise.iid, 4), "sd": round(noise.iid_sd, 4)},
           "excess": round(noise.excess, 4), "excess_se": round(noise.excess_se, 4),
           "mean_term_closed_form": round(noise.mean_term, 4),
           "iid_floor_fid": round(floor + noise.excess, 4),
           "what": "FID of 1,000 real test digits resampled within each class, with the "
                   "test split's fixed counts (stratified) or multinomial ones (iid); excess "
                   "= iid - stratified, the class-count noise a stratified floor leaves out; "
                   "iid_floor_fid = floor_fid + excess: what 1,000 independent real digits "
                   "would score on average"}
    # the unconditional GPU runs: real digits drawn with each run's class counts
    gpu_file = Path(__file__).resolve().parent / "results" / "diffusion_gpu.json"
    runs = []
    if gpu_file.exists():
        for row in json.loads(gpu_file.read_text())["rows"]:
            if row["recipe"] != "ddpm-pixel-mnist5k":
                continue
            counts = [round(s * 1000) for s in row["class_shares"]]
            scores = fid_with_class_counts(feat, test.labels, ref, counts, reps=reps,
                                           generator=torch.Generator().manual_seed(1))
            # resampling inflates both; the difference to the stratified resamples is the counts'
            matched = floor + float(scores.mean()) - noise.stratified
            runs.append({"recipe": row["recipe"], "seed": row["seed"],
                         "classifier_fid": row["classifier_fid"], "class_counts": counts,
                         "chi2_p_equal_shares": round(float(chisquare(counts).pvalue), 3),
                         "real_digits_with_these_counts": round(matched, 4)})
            print(json.dumps(runs[-1]), flush=True)
    out["gpu_runs"] = runs
    print(json.dumps({k: v for k, v in out.items() if k != "gpu_runs"}, indent=1))
    print(f"\nfloor {floor:.3f}, target {FLOOR_FACTOR * floor:.3f}; 1,000 independent real "
          f"digits: {floor + noise.excess:.3f} on average (class-count excess "
          f"{noise.excess:.3f} +- {noise.excess_se:.3f})")
    save_json(args.out, {"machine": machine_info(args.threads),
                         "measured_unix": int(time.time()), **out})
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipes", nargs="+", default=list(RECIPES),
                   choices=RECIPES + GPU_RECIPES)
    p.add_argument("--device", default="cpu", help="cpu (the targets' machine) or cuda")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--save-samples", metavar="DIR",
                   help="also write 100 samples of each run to DIR/RECIPE_seedN.npz")
    p.add_argument("--no-table", action="store_true", help="skip the quality-vs-steps table")
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--floor-noise", action="store_true",
                   help="class-count noise of the real-data floor (CPU, seconds)")
    p.add_argument("--only", nargs="+")
    p.add_argument("--seconds", type=float, default=300.0)
    p.add_argument("--out")
    p.add_argument("--merge", action="store_true",
                   help="keep the rows of OUT for recipes and seeds this run does not measure")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = Path(__file__).resolve().parent / "results"
    if args.floor_noise:
        args.out = args.out or str(root / "diffusion_floor.json")
        return run_floor_noise(args)
    if args.sweep:
        args.out = args.out or str(root / "diffusion_sweep.json")
        return run_sweep(args)
    gpu = torch.device(args.device).type == "cuda"
    args.out = args.out or str(root / ("diffusion_gpu.json" if gpu else "diffusion.json"))
    return run_recipes(args)


if __name__ == "__main__":
    raise SystemExit(main())
