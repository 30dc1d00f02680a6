r"""Recipes ``vae-mnist5k`` and ``vae-digits8x8``: the variational autoencoders of chapter 4.

One step::

    x      = next(batches)                              # (B, C, H, W) grey images in [0, 1]
    x      = binarize(x, generator=g)                   # mnist5k: a fresh 0/1 draw every time
    loss   = -mean(log p(x | z) - beta * KL(q(z|x) || p(z)))       # or the IWAE bound, k > 1
    backward_and_step(loss, opt); sched.step(); ema.update(model)

**Protocols.** ``vae-mnist5k`` models *binarised* digits with Bernoulli pixels. Training draws a
new binarisation of each batch (pixel = 1 with probability equal to its grey level), which acts
as data augmentation on only 4,000 digits; the test NLL is measured on the fixed binarisation
``genlib.data.binarized(load("mnist5k", "test"))``, the same 0/1 pixels on every machine.
``vae-digits8x8`` follows Tomczak's protocol for the 8x8 digits: 1,000 train, 350 validation,
447 test images with 17 grey levels and a 17-way categorical decoder per pixel.

**The reported NLL** is the IWAE estimate with ``eval_k`` importance samples per test image
(:func:`genlib.vae.iwae_nll`), in nats per image, with its standard error over images; the
negative ELBO (an upper bound on the NLL, looser by the posterior gap) is reported beside it.
Both on the EMA weights.

**What the defaults were chosen on** (2 CPU cores; ``bench/bench_vae.py`` re-measures them):
a convolutional encoder/decoder generalises much better than an MLP on 4,000 digits (an MLP of
the same budget overfits: its test -ELBO turns upward after a minute while its training loss
keeps falling); dynamic binarisation, a cosine learning-rate decay and an EMA of the weights each
take a few nats off the test NLL.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlib.data import BatchIterator, binarize, binarized, load
from genlib.recipes._common import (
    lr_factor,
    model_state,
    newest_checkpoint,
    recipe_maker,
    schedule_steps,
)
from genlib.train import EMA, Budget, backward_and_step, fit
from genlib.vae.helpers import sample_images
from genlib.vae.model import VAE, VAEConfig
from genlib.vae.objectives import elbo_terms, iwae_loss, iwae_nll, vae_loss

__all__ = ["VAETrainConfig", "Digits8x8VAEConfig", "RECIPES", "train", "load_model", "sample",
           "evaluation_data", "evaluate_vae"]

DATASETS = ("mnist5k", "digits8x8")


@dataclass(frozen=True)
class VAETrainConfig:
    """Hyper-parameters of the ``vae-mnist5k`` recipe (network, training and evaluation).

    ``net`` is the :class:`~genlib.vae.VAEConfig` of the model; the rest shapes training.
    """

    dataset: str = "mnist5k"
    net: VAEConfig = field(default_factory=VAEConfig)
    batch_size: int = 128
    lr: float = 2e-3                # peak Adam learning rate
    warmup_steps: int = 100
    schedule_steps: int | None = None   # cosine length; None: the budget's steps
    beta: float = 1.0               # weight of the KL term (1: the ELBO)
    train_k: int = 1                # importance samples in the training objective (1: ELBO)
    ema_decay: float = 0.998
    eval_k: int = 1000              # importance samples per test image for the NLL
    eval_n: int | None = None       # test images evaluated (None: the whole split)
    fid_samples: int = 1000         # mnist5k: samples for classifier-FID (0: skip)

    def __post_init__(self) -> None:
        if isinstance(self.net, dict):  # from JSON
            object.__setattr__(self, "net", VAEConfig(**self.net))
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(map(repr, DATASETS))}; got "
                             f"{self.dataset!r}")
        for name in ("batch_size", "train_k", "eval_k"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("warmup_steps", "fid_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        for name in ("schedule_steps", "eval_n"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 2):
                raise ValueError(f"{name} must be an integer >= 2 or None, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not self.beta >= 0:
            raise ValueError(f"beta must be >= 0, got {self.beta!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        expected = {"mnist5k": ((1, 28, 28), "bernoulli"), "digits8x8": ((1, 8, 8), "categorical")}
        shape, decoder = expected[self.dataset]
        if self.net.image_shape != shape or self.net.decoder != decoder:
            raise ValueError(f"net: dataset {self.dataset!r} needs image_shape={shape} and "
                             f"decoder={decoder!r}, got image_shape={self.net.image_shape} and "
                             f"decoder={self.net.decoder!r}")


@dataclass(frozen=True)
class Digits8x8VAEConfig(VAETrainConfig):
    """Defaults of ``vae-digits8x8``: a small MLP VAE with a 17-level categorical decoder."""

    dataset: str = "digits8x8"
    net: VAEConfig = field(default_factory=lambda: VAEConfig(
        image_shape=(1, 8, 8), latent_dim=16, arch="mlp", hidden=(256, 256),
        decoder="categorical", levels=17, dropout=0.4))
    batch_size: int = 64
    lr: float = 2e-3
    fid_samples: int = 0


def evaluation_data(dataset: str, split: str = "test") -> torch.Tensor:
    """The images a recipe's likelihood is measured on: the fixed binarised mnist5k split, or
    the 8x8 digits as they are (values ``k / 16``)."""
    if dataset == "mnist5k":
        return binarized(load("mnist5k", split)).images
    return load("digits8x8", split).images


def evaluate_vae(model: VAE, x: torch.Tensor, *, k: int, seed: int = 0) -> dict[str, float]:
    """IWAE NLL (``k`` samples) and ELBO terms of ``model`` on images ``x``, in nats per image."""
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    x = x.to(device)
    est = iwae_nll(model, x, k=k, generator=gen)
    was = model.training
    model.eval()
    with torch.no_grad():
        terms = [elbo_terms(model, xb, generator=gen) for xb in x.split(500)]
    model.train(was)
    rec = torch.cat([t.reconstruction for t in terms]).double()
    kl = torch.cat([t.kl for t in terms]).double()
    dim = x[0].numel()
    return {
        "nll_nats": est.mean, "nll_stderr": est.stderr,
        "bits_per_dim": est.mean / (dim * math.log(2)),
        "neg_elbo_nats": float(-(rec - kl).mean()),
        "kl_nats": float(kl.mean()), "reconstruction_nats": float(-rec.mean()),
        "n": est.n,
    }


def train(config: VAETrainConfig, run_dir: Path | None, *, budget: Budget, device: str = "cpu",
          seed: int = 0, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train a VAE under ``budget`` (one step = one batch) and return its test metrics.

    Randomness, all from ``seed``: initial weights (``torch.manual_seed(seed)``), data order,
    the binarisation and the reparameterisation noise (their own generator), all checkpointed.

    Returns:
        ``test_nll_nats`` (IWAE, ``eval_k`` samples) with ``test_nll_stderr``,
        ``test_bits_per_dim``, ``test_elbo_nats`` (the negative ELBO: an upper bound on the NLL,
        same sign), ``test_kl_nats`` and ``test_reconstruction_nats`` (rate and distortion),
        ``train_neg_elbo_nats`` on the training images (the generalisation gap), for mnist5k the
        ``classifier_fid`` of ``fid_samples`` decoded means and their smallest class share;
        ``steps``, ``images_seen``, ``train_seconds``, ``eval_seconds``, ``n_params``,
        ``protocol``.
    """
    import time

    net = config.net
    train_set = load(config.dataset, "train")
    torch.manual_seed(seed)
    model = VAE(net).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    total = schedule_steps(config, budget)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, warmup_steps=config.warmup_steps, total_steps=total))
    ema = EMA(model, config.ema_decay, warmup=True)
    batches = BatchIterator(train_set.images, batch_size=config.batch_size, seed=seed,
                            device=device)
    noise = torch.Generator().manual_seed(seed + 1)
    binary = net.decoder == "bernoulli"

    def step_fn(step: int) -> dict[str, Any]:
        x = next(batches)
        if binary:
            x = binarize(x, generator=noise)
        if config.train_k > 1:
            loss = iwae_loss(model, x, k=config.train_k, generator=noise)
        else:
            loss, _ = vae_loss(model, x, beta=config.beta, generator=noise)
        backward_and_step(loss, opt)
        sched.step()
        ema.update(model)
        return {"loss": loss, "images": x.shape[0]}

    model.train()
    history = fit(step_fn, budget=budget,
                  state={"model": model, "opt": opt, "sched": sched, "ema": ema,
                         "batches": batches, "noise": noise},
                  run_dir=run_dir, resume=resume, config=config, progress=progress,
                  checkpoint_every=500 if run_dir is not None else None,
                  desc=f"vae-{config.dataset}")
    train_seconds = float(history.records[-1]["time"]) if len(history) else 0.0

    t0 = time.perf_counter()
    ema.copy_to(model)
    model.eval()
    x_test = evaluation_data(config.dataset, "test")
    if config.eval_n is not None:
        x_test = x_test[:config.eval_n]
    test = evaluate_vae(model, x_test, k=config.eval_k, seed=seed)
    x_train = train_set.images[:1000]
    if binary:
        x_train = binarize(x_train, seed=seed)
    train_elbo = evaluate_vae(model, x_train, k=1, seed=seed)["neg_elbo_nats"]
    out: dict[str, Any] = {
        "test_nll_nats": test["nll_nats"], "test_nll_stderr": test["nll_stderr"],
        "test_bits_per_dim": test["bits_per_dim"], "test_elbo_nats": test["neg_elbo_nats"],
        "test_kl_nats": test["kl_nats"], "test_reconstruction_nats": test["reconstruction_nats"],
        "train_neg_elbo_nats": train_elbo, "eval_k": config.eval_k, "eval_n": test["n"],
    }
    if config.dataset == "mnist5k" and config.fid_samples:
        from genlib.metrics import evaluate_images

        gen = torch.Generator().manual_seed(seed)
        images = sample_images(model, config.fid_samples, generator=gen).cpu()
        ev = evaluate_images(images, against="mnist5k", split="train", n_boot=0,
                             kid_subsets=10)
        out["classifier_fid"] = ev["fid"]
        out["min_class_share"] = ev["class_hist"]["min_share"]
        out["fid_samples"] = config.fid_samples
    out.update({
        "steps": len(history), "images_seen": len(history) * config.batch_size,
        "train_seconds": train_seconds, "eval_seconds": time.perf_counter() - t0,
        "n_params": sum(p.numel() for p in model.parameters()),
        "protocol": _protocol(config, test["n"]),
    })
    return out


def _protocol(config: VAETrainConfig, n: int) -> str:
    if config.dataset == "mnist5k":
        return (f"EMA weights; IWAE bound with k={config.eval_k} on the fixed binarised mnist5k "
                f"test split (genlib.data.binarized, seed 0; first {n:,} of 1,000 digits), nats "
                f"per image; "
                f"trained on the 4,000 train digits, re-binarised every batch; FID of decoded "
                f"means against the train split on the digit classifier's features")
    return (f"EMA weights; IWAE bound with k={config.eval_k} on Tomczak's digits8x8 test split "
            f"(last 447 of 1,797, {n} evaluated; 17 levels, categorical decoder), nats per image; "
            f"trained on the first 1,000")


def load_model(run_dir: str | os.PathLike, config: VAETrainConfig | None = None, *,
               ema: bool = True, device: str = "cpu") -> VAE:
    """The VAE of the newest complete checkpoint in ``run_dir`` (EMA weights by default), in
    eval mode."""
    ckpt = newest_checkpoint(run_dir)
    if config is None:
        cfg = dict(ckpt["config"])
        cls = Digits8x8VAEConfig if cfg.get("dataset") == "digits8x8" else VAETrainConfig
        config = cls(**cfg)
    model = VAE(config.net)
    model.load_state_dict(model_state(ckpt, ema=ema))
    return model.to(device).eval()


def sample(run_dir: str | os.PathLike, n: int, *, seed: int = 0, device: str = "cpu",
           config: VAETrainConfig | None = None) -> dict[str, np.ndarray]:
    """``n`` samples as uint8 images ``(n, C, H, W)``: the decoder's mean image for
    ``z ~ N(0, I)`` (``mnist5k``), or a draw of each pixel's level (``digits8x8``)."""
    model = load_model(run_dir, config, device=device)
    gen = torch.Generator().manual_seed(seed)
    mean = model.config.decoder != "categorical"
    x = sample_images(model, n, mean=mean, generator=gen).cpu()
    return {"images": torch.round(x * 255).to(torch.uint8).numpy()}


_recipe = recipe_maker(4, train, sample)

RECIPES = [
    _recipe("vae-mnist5k", "convolutional VAE on binarised mnist5k; IWAE test NLL in nats, "
            "classifier-FID", VAETrainConfig, quick=Budget(steps=300), full=Budget(steps=3000)),
    _recipe("vae-digits8x8", "MLP VAE with a 17-level categorical decoder on 8x8 digits "
            "(Tomczak's protocol); IWAE test NLL in nats", Digits8x8VAEConfig,
            quick=Budget(steps=600), full=Budget(steps=2000)),
]
