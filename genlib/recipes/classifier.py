r"""Recipe ``digit-classifier``: the feature network behind the kit's digit metrics (chapter 8).

Trains :class:`~genlib.metrics.features.DigitClassifier` on the 4,000 ``mnist5k`` *training*
digits only and reports its accuracy on the 1,000 *test* digits (never seen in training, so the
network can judge samples of generative models trained on the same 4,000). The EMA weights of
the full run with seed 0 ship as ``genlib/metrics/weights/digit_classifier.safetensors``
(:func:`export_weights`).

One step::

    x, y  = next(batches)                                   # (B, 1, 28, 28), (B,)
    x     = random_affine(x, augment)                       # shifts, rotations, zoom
    loss  = cross_entropy(model(x), y).mean()               # -log p(y | x), per example
    backward_and_step(loss, opt); sched.step(); ema.update(model)

**Why augment.** 4,000 digits are few: without augmentation the full run fits every training
digit (train accuracy 100%) and reaches 98.3% on the test digits with a test NLL of 0.056 nats.
Each batch is re-drawn with a random shift of up to 2 px, rotation of up to 10 degrees and zoom
of up to 10%, variations a writer makes anyway, so the network has to learn the strokes rather
than the pixels: 98.7-99.1% over seeds 0-2, test NLL 0.034-0.038 nats (measured on 2 CPU cores).

**Schedule.** AdamW with a linear warm-up and a cosine decay to zero over the budget's steps
(:func:`lr_factor`); the EMA of the weights (decay 0.995: roughly the last 200 steps) is what gets
evaluated and shipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from genlib.data import BatchIterator, load
from genlib.metrics.features import (
    INFO_FILE,
    WEIGHTS_FILE,
    ClassifierConfig,
    DigitClassifier,
    load_digit_classifier,
)
from genlib.recipes._common import lr_factor, model_state, newest_checkpoint, schedule_steps
from genlib.train import (
    EMA,
    Budget,
    atomic_write,
    backward_and_step,
    fit,
    save_weights,
)

__all__ = ["DigitClassifierConfig", "RECIPES", "RECIPE_NAME", "affine_warp", "random_affine",
           "lr_factor", "schedule_steps", "evaluate_classifier", "train", "load_model",
           "export_weights", "sample"]

RECIPE_NAME = "digit-classifier"


@dataclass(frozen=True)
class DigitClassifierConfig:
    """Hyper-parameters of the ``digit-classifier`` recipe (network and training).

    The first two fields are the network's :class:`~genlib.metrics.features.ClassifierConfig`
    (:meth:`network`); the rest only shape training.
    """

    channels: tuple[int, int, int] = (32, 64, 128)  # stage widths; the last is the feature dim
    dropout: float = 0.2            # on the pooled features, training only
    batch_size: int = 128           # 31 steps per pass over the 4,000 training digits
    lr: float = 3e-3                # peak AdamW learning rate
    weight_decay: float = 5e-4      # decoupled (AdamW); small: augmentation does most of the work
    warmup_steps: int = 100         # linear warm-up from 0 (BatchNorm statistics settle first)
    schedule_steps: int | None = None  # cosine length; None: the budget's steps (or images / B)
    ema_decay: float = 0.995        # averages roughly the last 1 / (1 - 0.995) = 200 steps
    max_shift_px: float = 2.0       # augmentation: uniform shift in [-2, 2] px on each axis
    max_rotation_deg: float = 10.0  # uniform rotation in [-10, 10] degrees
    max_zoom: float = 0.1           # uniform zoom factor in [0.9, 1.1]
    eval_batch_size: int = 500

    def __post_init__(self) -> None:
        if isinstance(self.channels, list):  # from JSON
            object.__setattr__(self, "channels", tuple(self.channels))
        self.network()  # validates channels and dropout
        for name in ("batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) \
                or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an int >= 0, got {self.warmup_steps!r}")
        if self.schedule_steps is not None and (
                isinstance(self.schedule_steps, bool) or not isinstance(self.schedule_steps, int)
                or self.schedule_steps < 1):
            raise ValueError(f"schedule_steps must be a positive int or None, got "
                             f"{self.schedule_steps!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        for name in ("weight_decay", "max_shift_px", "max_rotation_deg"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 <= self.max_zoom < 1:
            raise ValueError(f"max_zoom must be in [0, 1), got {self.max_zoom!r}")

    def network(self) -> ClassifierConfig:
        """The network's architecture."""
        return ClassifierConfig(channels=self.channels, dropout=self.dropout)


# ---------------------------------------------------------------------------------------------
# Augmentation


def affine_warp(x: torch.Tensor, angle_deg: torch.Tensor, zoom: torch.Tensor,
                shift_px: torch.Tensor) -> torch.Tensor:
    """Rotate, zoom and shift each image about its centre (bilinear, zeros outside).

    Args:
        x: images ``(B, C, H, W)``.
        angle_deg: ``(B,)`` rotation in degrees, counter-clockwise as displayed (rows down).
        zoom: ``(B,)`` scale factors (> 1 enlarges the digit).
        shift_px: ``(B, 2)`` shifts ``(dx, dy)`` in pixels: right and down.

    Returns:
        ``(B, C, H, W)``. Output pixel ``p`` (centred coordinates) reads input pixel
        ``R(-angle) (p - shift) / zoom``; integer shifts and quarter turns move pixels exactly.
    """
    _, _, h, w = x.shape
    a = torch.deg2rad(angle_deg.to(x.dtype))                              # (B,)
    c, s = torch.cos(a), torch.sin(a)
    # In pixel coordinates (x right, y down) a counter-clockwise turn on screen maps q to
    # p = zoom M q + shift with M = [[c, s], [-s, c]]; the warp reads q = A (p - shift),
    # A = M^-1 / zoom.
    A = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (B, 2, 2)
    A = A / zoom.to(x.dtype)[:, None, None]
    # affine_grid works in normalised coordinates: (align_corners=False) 2 / W per pixel, D.
    D = torch.tensor([2.0 / w, 2.0 / h], dtype=x.dtype, device=x.device)     # (2,)
    linear = D[:, None] * A / D[None, :]                                     # D A D^-1
    offset = -D * (A @ shift_px.to(x.dtype)[..., None]).squeeze(-1)         # -D A shift
    theta = torch.cat([linear, offset[..., None]], dim=2)                    # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)   # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_affine(x: torch.Tensor, generator: torch.Generator, *, max_shift_px: float = 2.0,
                  max_rotation_deg: float = 10.0, max_zoom: float = 0.1) -> torch.Tensor:
    """Augment a batch: independent uniform shift, rotation and zoom per image.

    Args:
        x: images ``(B, C, H, W)`` in ``[0, 1]`` (bilinear interpolation keeps them there).
        generator: a CPU ``torch.Generator``; its stream is the only randomness used.
        max_shift_px, max_rotation_deg, max_zoom: ranges ``[-s, s]`` px, ``[-r, r]`` degrees,
            ``[1 - z, 1 + z]``.

    Returns:
        ``(B, C, H, W)`` on ``x``'s device.
    """
    u = torch.rand(x.shape[0], 4, generator=generator, dtype=torch.float32) * 2 - 1  # (B, 4)
    u = u.to(x.device)
    return affine_warp(x, u[:, 0] * max_rotation_deg, 1 + u[:, 1] * max_zoom,
                       u[:, 2:] * max_shift_px)


# ---------------------------------------------------------------------------------------------
# Schedule, evaluation


@torch.no_grad()
def evaluate_classifier(model: DigitClassifier, images: torch.Tensor, labels: torch.Tensor, *,
                        batch_size: int = 500) -> dict[str, Any]:
    """Accuracy, per-class accuracy, confusion matrix and NLL of ``model`` (in eval mode).

    Args:
        images: ``(N, 1, 28, 28)`` in ``[0, 1]``; labels: ``(N,)`` int64 in 0..9.

    Returns:
        ``accuracy``, ``nll_nats`` (mean ``-log p(y | x)``), ``per_class_accuracy``
        (``{"0": ..., "9": ...}``), ``min_class_accuracy``, ``confusion`` (10 x 10 counts, rows:
        true digit, columns: prediction), ``n``.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logits = torch.cat([model(images[i:i + batch_size].to(device)).cpu()
                        for i in range(0, images.shape[0], batch_size)])   # (N, 10)
    model.train(was_training)
    k = logits.shape[1]
    pred = logits.argmax(1)
    confusion = torch.bincount(labels * k + pred, minlength=k * k).reshape(k, k)
    per_class = confusion.diag().double() / confusion.sum(1).clamp_min(1).double()
    return {
        "accuracy": float((pred == labels).double().mean()),
        "nll_nats": float(F.cross_entropy(logits.double(), labels)),
        "per_class_accuracy": {str(c): float(per_class[c]) for c in range(k)},
        "min_class_accuracy": float(per_class.min()),
        "confusion": confusion.tolist(),
        "n": int(labels.shape[0]),
    }


# ---------------------------------------------------------------------------------------------
# Training


def train(config: DigitClassifierConfig, run_dir: Path, *, budget: Budget, device: str = "cpu",
          seed: int = 0, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train the classifier under ``budget`` (one step = one batch); return its metrics.

    Randomness, all from ``seed``: the initial weights (this function calls
    ``torch.manual_seed(seed)``), dropout (the global torch stream, saved by ``fit``), the data
    order (``BatchIterator(seed=seed)``) and the augmentation (its own generator). All are
    checkpointed, so a resumed run matches an uninterrupted one exactly.

    Returns:
        metrics of the EMA weights on the mnist5k test split (``test_accuracy``,
        ``per_class_accuracy``, ``min_class_accuracy``, ``test_nll_nats``), the
        live weights' ``test_accuracy_live``, the clean ``train_accuracy``, and ``steps``,
        ``images_seen``, ``train_seconds``, ``n_params``, ``feature_dim``, ``protocol``.
    """
    train_set, test_set = load("mnist5k", "train"), load("mnist5k", "test")
    torch.manual_seed(seed)  # the initial weights: the same for every caller with this seed
    model = DigitClassifier(config.network()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total = schedule_steps(config, budget)
    if total is None and progress:
        print("genlib: a seconds-only budget: constant learning rate after warm-up (no cosine)")
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, warmup_steps=config.warmup_steps, total_steps=total))
    ema = EMA(model, config.ema_decay, warmup=True)
    batches = BatchIterator(train_set.images, train_set.labels, batch_size=config.batch_size,
                            seed=seed, device=device)
    augment = torch.Generator().manual_seed(seed)

    def step_fn(step: int) -> dict[str, Any]:
        x, y = next(batches)                                          # (B, 1, 28, 28), (B,)
        x = random_affine(x, augment, max_shift_px=config.max_shift_px,
                          max_rotation_deg=config.max_rotation_deg, max_zoom=config.max_zoom)
        loss = F.cross_entropy(model(x), y)                           # mean of -log p(y | x)
        backward_and_step(loss, opt)
        sched.step()
        ema.update(model)
        return {"loss": loss, "images": x.shape[0]}

    model.train()
    history = fit(step_fn, budget=budget,
                  state={"model": model, "opt": opt, "sched": sched, "ema": ema,
                         "batches": batches, "augment": augment},
                  run_dir=run_dir, resume=resume, config=config, progress=progress,
                  checkpoint_every=250 if run_dir is not None else None,
                  desc=RECIPE_NAME)

    live = evaluate_classifier(model, test_set.images, test_set.labels,
                               batch_size=config.eval_batch_size)
    ema.copy_to(model)
    test = evaluate_classifier(model, test_set.images, test_set.labels,
                               batch_size=config.eval_batch_size)
    train_eval = evaluate_classifier(model, train_set.images, train_set.labels,
                                     batch_size=config.eval_batch_size)
    last = history.records[-1] if len(history) else {"time": 0.0}
    return {
        "test_accuracy": test["accuracy"],
        "test_nll_nats": test["nll_nats"],
        "per_class_accuracy": test["per_class_accuracy"],
        "min_class_accuracy": test["min_class_accuracy"],
        "test_accuracy_live": live["accuracy"],
        "train_accuracy": train_eval["accuracy"],
        "steps": len(history),
        "images_seen": len(history) * config.batch_size,
        "train_seconds": float(last["time"]),
        "n_params": sum(p.numel() for p in model.parameters()),
        "feature_dim": config.network().feature_dim,
        "protocol": "EMA weights; mnist5k test split (1,000 digits, 100 per class), trained on "
                    "the 4,000 train digits only",
    }


def load_model(run_dir: str | os.PathLike, config: DigitClassifierConfig | None = None, *,
               ema: bool = True, device: str = "cpu") -> DigitClassifier:
    """The classifier of the newest complete checkpoint in ``run_dir`` (EMA weights by default),
    in eval mode. ``config`` defaults to the one stored in the checkpoint."""
    ckpt = newest_checkpoint(run_dir)
    config = config or DigitClassifierConfig(**ckpt["config"])
    model = DigitClassifier(config.network())
    model.load_state_dict(model_state(ckpt, ema=ema))
    return model.to(device).eval()


def export_weights(run_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                   seed: int | None = None) -> dict[str, Any]:
    """Write a run's EMA weights as ``out_dir/digit_classifier.safetensors`` and the record
    ``out_dir/digit_classifier.json`` beside it; return the record.

    The record holds the file's ``sha256``, the network ``config``, the recipe's
    ``train_config``, ``recipe``, ``seed`` and ``budget`` (from ``RUN_DIR/recipe.json`` when
    ``genlib train`` made the run; pass ``seed`` otherwise), the measured ``test_accuracy``
    (re-measured on the written file, after loading it back through
    :func:`~genlib.metrics.features.load_digit_classifier`), per-class accuracies,
    ``feature_dim``, ``n_params``, the training ``steps``, ``images_seen`` and
    ``train_seconds``, and the torch version.
    """
    import genlib

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    ckpt = newest_checkpoint(run_dir)
    config = DigitClassifierConfig(**ckpt["config"])
    run_info_path = run_dir / "recipe.json"
    run_info = json.loads(run_info_path.read_text()) if run_info_path.is_file() else {}
    if seed is None:
        if "seed" not in run_info:
            raise ValueError(f"seed: {run_dir} has no recipe.json recording the seed; pass seed=")
        seed = int(run_info["seed"])
    model = load_model(run_dir, config)
    test_set = load("mnist5k", "test")
    before = evaluate_classifier(model, test_set.images, test_set.labels)
    net = config.network()
    path = save_weights(model, out_dir / WEIGHTS_FILE,
                        metadata={"config": json.dumps(asdict(net), sort_keys=True)})
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    history = ckpt["history"]["records"]
    record = {
        "sha256": sha,
        "file_bytes": path.stat().st_size,
        "config": asdict(net),
        "train_config": asdict(config),
        "recipe": RECIPE_NAME,
        "seed": seed,
        "budget": ckpt["budget"],
        "steps": int(ckpt["step"]),
        "images_seen": int(ckpt["images_seen"]),
        "train_seconds": float(history[-1]["time"]) if history else 0.0,
        "test_accuracy": before["accuracy"],
        "test_nll_nats": before["nll_nats"],
        "per_class_accuracy": before["per_class_accuracy"],
        "min_class_accuracy": before["min_class_accuracy"],
        "feature_dim": net.feature_dim,
        "feature_layer": "global average pool of stage 3 (input of the last linear layer)",
        "n_params": sum(p.numel() for p in model.parameters()),
        "torch_version": torch.__version__,
        "genlib_version": genlib.__version__,
        "evaluation": "mnist5k test split (1,000 digits, 100 per class)",
        "made_with": f"genlib train {RECIPE_NAME} --out RUN_DIR --seed {seed}, then "
                     "genlib.recipes.classifier.export_weights(RUN_DIR, genlib/metrics/weights)",
        "exported_unix": int(time.time()),
    }
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    atomic_write(out_dir / INFO_FILE, text)
    record = json.loads(text)                   # as a reader of the file sees it (lists)
    check = evaluate_classifier(load_digit_classifier(weights_dir=out_dir),
                                test_set.images, test_set.labels)
    if check["accuracy"] != before["accuracy"]:
        raise RuntimeError(f"exported weights give test accuracy {check['accuracy']}, the run "
                           f"gave {before['accuracy']}")
    return record


def sample(run_dir: str | os.PathLike, n: int, *, seed: int = 0, device: str = "cpu",
           config: DigitClassifierConfig | None = None) -> dict[str, np.ndarray]:
    """A classifier draws no samples: raises ValueError saying what to use instead."""
    raise ValueError(
        f"run_dir: {run_dir} holds a {RECIPE_NAME!r} run, a classifier: it has nothing to "
        "sample. Use it to judge samples (genlib.metrics.digit_features / digit_logits), or "
        "export its weights with genlib.recipes.classifier.export_weights"
    )


def _recipe():
    from genlib.recipes import Recipe

    return Recipe(
        name=RECIPE_NAME,
        summary="the digit classifier behind classifier-FID/IS (mnist5k train only); "
                "test accuracy",
        chapter=8, config_cls=DigitClassifierConfig,
        quick=Budget(steps=120), full=Budget(steps=600),
        train=train, sample=sample)


RECIPES = [_recipe()]
