r"""Recipes ``gan-toy2d``, ``dcgan-mnist5k``, ``wgan-gp-mnist5k``, ``cgan-mnist5k`` and
``scgan-mnist5k`` (chapter 5).

One step (one update of the generator)::

    for _ in range(n_critic):                          # 5 in the WGAN-GP paper; 2 here
        real = next(batches)                           # points, or digits scaled to [-1, 1]
        discriminator_step(G, D, opt_d, real, loss=..., gp_weight=...)
    generator_step(G, D, opt_g, batch_size, loss=...)
    ema.update(G)                                      # when ema_decay > 0

Both networks use Adam with a constant learning rate (``betas=(0.5, 0.999)`` as in DCGAN,
``(0.5, 0.9)`` for WGAN-GP). Randomness, all from ``seed``: initial weights, data order (or the
toy sampler's own generator), the latent draws and the penalty's interpolation weights (one
generator), all checkpointed so a resumed run is bit-identical.

**Evaluation.**

- ``gan-toy2d`` (the ring of 8 Gaussians): ``eval_samples`` points scored by
  :func:`genlib.gan.mode_coverage`: the fraction within 3 standard deviations of a mode
  (*high quality*), and the modes holding at least a quarter of their fair share of them. Every
  ``snapshot_every`` steps the generator's output for a fixed batch of ``z`` is saved to
  ``RUN_DIR/snapshots/`` (the chapter's training film).
- mnist5k recipes: ``eval_samples`` digits scored by :func:`genlib.metrics.evaluate_images`
  against the 4,000 training digits: classifier-FID (Frechet distance on the shipped digit
  classifier's features) and the class histogram of the classifier's predictions (its smallest
  share is the mode-collapse check); for ``cgan-mnist5k`` the samples are asked for the digits
  ``0, 1, ..., 9`` in turn and ``class_accuracy`` is how often the classifier agrees; for
  ``scgan-mnist5k`` each sample's cluster id is drawn in proportion to the cluster sizes.

**What the defaults were chosen on** (``bench/bench_gan.py`` re-measures them; the sweep of 48
runs is in ``bench/results/gan_sweep.json``): on 2 CPU cores a DCGAN of base width 32 reaches a
classifier-FID near 6 within 5 minutes with any of the losses; what separates the settings is the
smallest class share, because unconditional GANs here under-produce the digit 1. A learning
rate of 1e-3 with the hinge loss and no EMA gave the most even histograms; minibatch standard
deviation, a larger latent, wider networks and translation augmentation did not help within
the budget. On the ring, minibatch standard deviation with a 2-dimensional latent is the cure
for mode collapse that works in seconds; spectral normalisation alone does not.

**Self-conditioning** (``scgan-mnist5k``) is the cure for the missing 1s that held up: the
``cgan-mnist5k`` recipe trained on k-means cluster ids instead of labels. Off-repo probes (4,800
steps, one thread each, two runs side by side): 10 clusters gave FID 2.7 with digit 5 at 6.2%;
20 clusters 1.6 and 1.6 with the smallest class at 8.3% and 7.4% (seeds 0 and 1); 50 clusters 1.1
with 7.8%. More clusters are purer (80% of the digits share their cluster's majority digit at
50, 57% at 10). bench/results/gan_scgan.json measures the recipe (50 clusters, 4,000 steps) on
seeds 0, 1 and 2.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlib.data import BatchIterator, check_int, load, toy2d, toy2d_modes
from genlib.data.toy2d import MODE_STD, TOY2D_NAMES
from genlib.gan import (
    ClusterLabels,
    Discriminator,
    GANConfig,
    Generator,
    check_loss,
    cluster_images,
    discriminator_step,
    from_unit,
    generator_step,
    mode_coverage,
    to_unit,
)
from genlib.recipes._common import newest_checkpoint, recipe_maker
from genlib.train import EMA, Budget, fit

__all__ = ["GANTrainConfig", "ToyGANConfig", "DCGANConfig", "WGANGPConfig", "CGANConfig",
           "SCGANConfig", "RECIPES", "train", "load_generator", "load_clusters", "sample",
           "SNAPSHOT_DIR"]

SNAPSHOT_DIR = "snapshots"
IMAGE_DATASETS = ("mnist5k",)


def _mnist_net(**kw: Any) -> GANConfig:
    return GANConfig(data_shape=(1, 28, 28), arch="dcgan", latent_dim=64, g_channels=32,
                     d_channels=32, **kw)


@dataclass(frozen=True)
class GANTrainConfig:
    """Hyper-parameters of a GAN recipe (``net``: both networks; the rest: training).

    Attributes:
        dataset: ``"mnist5k"`` or a 2D toy of :data:`genlib.data.TOY2D_NAMES` (fresh points
            every step).
        net: the :class:`~genlib.gan.GANConfig` of the generator and discriminator.
        loss: one of :data:`genlib.gan.LOSSES`.
        batch_size: examples per discriminator step and per generator step.
        lr_g, lr_d: the two Adam learning rates (constant).
        beta1, beta2: Adam's moment decays (0.5 as in DCGAN: less momentum steadies the game).
        n_critic: discriminator steps per generator step.
        gp_weight: weight of the gradient penalty (10 for WGAN-GP; 0: none).
        ema_decay: EMA of the generator's weights used for sampling (0: sample the live one).
        eval_samples: samples scored at the end.
        snapshot_every: toys: save the generator's output on a fixed ``z`` every so many steps
            (0: never).
        clusters: 0, or ``k >= 2`` for a *self-conditioned* GAN: the conditional pair
            (``net.n_classes == k``) is trained on the k-means cluster ids of the training
            digits (:func:`genlib.gan.cluster_images`, seeded by the run's seed) instead of
            their labels, and samples draw the cluster id in proportion to the cluster's size.
            No label is used. mnist5k only.
    """

    dataset: str = "mnist5k"
    net: GANConfig = field(default_factory=_mnist_net)
    loss: str = "hinge"
    batch_size: int = 64
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int = 1
    gp_weight: float = 0.0
    ema_decay: float = 0.0
    eval_samples: int = 1000
    snapshot_every: int = 0
    clusters: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.net, dict):  # from JSON
            object.__setattr__(self, "net", GANConfig(**self.net))
        valid = (*IMAGE_DATASETS, *TOY2D_NAMES)
        if self.dataset not in valid:
            raise ValueError(f"dataset must be one of {', '.join(map(repr, valid))}; got "
                             f"{self.dataset!r}")
        check_loss(self.loss)
        for name in ("batch_size", "n_critic", "eval_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("snapshot_every", "clusters"):
            check_int(name, getattr(self, name), minimum=0)
        if self.clusters == 1:
            raise ValueError("clusters must be 0 (off) or >= 2, got 1")
        if self.clusters and (self.dataset != "mnist5k" or self.net.n_classes != self.clusters):
            raise ValueError(f"clusters={self.clusters} (self-conditioning) needs dataset "
                             f"'mnist5k' and net.n_classes={self.clusters}, got dataset="
                             f"{self.dataset!r} and net.n_classes={self.net.n_classes}")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("beta1", "beta2", "ema_decay"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not self.gp_weight >= 0:
            raise ValueError(f"gp_weight must be >= 0, got {self.gp_weight!r}")
        if self.dataset == "mnist5k":
            if self.net.arch != "dcgan" or self.net.data_shape != (1, 28, 28):
                raise ValueError(f"net: dataset 'mnist5k' needs arch='dcgan' and data_shape="
                                 f"(1, 28, 28), got arch={self.net.arch!r} and data_shape="
                                 f"{self.net.data_shape}")
            if self.net.n_classes not in (0, 10, self.clusters):
                raise ValueError(f"net.n_classes must be 0, 10 (the digit labels) or equal to "
                                 f"clusters for mnist5k, got {self.net.n_classes}")
        elif self.net.arch != "mlp" or self.net.data_shape != (2,) or self.net.n_classes:
            raise ValueError(f"net: a 2D toy needs an unconditional arch='mlp' net with "
                             f"data_shape=(2,), got arch={self.net.arch!r}, data_shape="
                             f"{self.net.data_shape}, n_classes={self.net.n_classes}")


@dataclass(frozen=True)
class ToyGANConfig(GANTrainConfig):
    """Defaults of ``gan-toy2d``: MLPs on the ring of 8 Gaussians, with minibatch standard
    deviation in the discriminator and a 2-dimensional latent."""

    dataset: str = "ring"
    net: GANConfig = field(default_factory=lambda: GANConfig(
        data_shape=(2,), arch="mlp", latent_dim=2, hidden=128, depth=3, minibatch_std=True))
    loss: str = "nonsaturating"
    batch_size: int = 256
    eval_samples: int = 2500
    snapshot_every: int = 100


@dataclass(frozen=True)
class DCGANConfig(GANTrainConfig):
    """Defaults of ``dcgan-mnist5k`` (those of :class:`GANTrainConfig`)."""


@dataclass(frozen=True)
class WGANGPConfig(GANTrainConfig):
    """Defaults of ``wgan-gp-mnist5k``: Wasserstein critic with gradient penalty 10, two critic
    steps per generator step, Adam ``betas=(0.5, 0.9)``."""

    loss: str = "wasserstein"
    gp_weight: float = 10.0
    n_critic: int = 2
    lr_g: float = 4e-4
    lr_d: float = 4e-4
    beta2: float = 0.9


@dataclass(frozen=True)
class CGANConfig(GANTrainConfig):
    """Defaults of ``cgan-mnist5k``: class-conditional generator (one-hot label beside ``z``) and
    projection discriminator, non-saturating loss, EMA of the generator."""

    net: GANConfig = field(default_factory=lambda: _mnist_net(n_classes=10))
    loss: str = "nonsaturating"
    lr_g: float = 5e-4
    lr_d: float = 5e-4
    ema_decay: float = 0.999


@dataclass(frozen=True)
class SCGANConfig(CGANConfig):
    """Defaults of ``scgan-mnist5k``: the ``cgan-mnist5k`` pair and training, conditioned on 50
    k-means clusters of the training digits instead of their labels (self-conditioning)."""

    net: GANConfig = field(default_factory=lambda: _mnist_net(n_classes=50))
    clusters: int = 50


def train(config: GANTrainConfig, run_dir: Path | None, *, budget: Budget, device: str = "cpu",
          seed: int = 0, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train a GAN under ``budget`` (one step = ``n_critic`` discriminator updates and one
    generator update) and return its evaluation (module docstring).

    Returns:
        toys: ``high_quality``, ``modes_covered``, ``n_modes``, ``min_mode_share``,
        ``mode_shares``; mnist5k: ``classifier_fid``, ``min_class_share``, ``class_shares``
        (and ``class_accuracy`` for a conditional model); always ``eval_samples``, ``steps``,
        ``images_seen`` (real examples the discriminator saw), ``train_seconds``,
        ``eval_seconds``, ``n_params_g``, ``n_params_d``, ``final_loss_d``, ``final_loss_g``,
        ``protocol``; self-conditioned runs add ``cluster_seconds`` (the k-means, also counted
        in ``train_seconds``).
    """
    toy = config.dataset != "mnist5k"
    cond = config.net.n_classes > 0
    clusters, cluster_seconds = None, 0.0
    if config.clusters:  # timed, and counted in train_seconds
        t0 = time.perf_counter()
        clusters = cluster_images(load("mnist5k", "train").images, config.clusters, seed=seed)
        cluster_seconds = time.perf_counter() - t0
    torch.manual_seed(seed)
    G, D = Generator(config.net).to(device), Discriminator(config.net).to(device)
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=config.lr_d, betas=betas)
    noise = torch.Generator().manual_seed(seed + 1)
    state: dict[str, Any] = {"G": G, "D": D, "opt_g": opt_g, "opt_d": opt_d, "noise": noise}
    ema = EMA(G, config.ema_decay, warmup=True) if config.ema_decay > 0 else None
    if ema is not None:
        state["ema"] = ema
    if toy:
        data_gen = torch.Generator().manual_seed(seed + 2)
        state["data"] = data_gen

        def next_real() -> tuple[torch.Tensor, None]:
            return toy2d(config.dataset, config.batch_size, generator=data_gen).to(device), None
    else:
        train_set = load("mnist5k", "train")
        if clusters is not None:
            state["clusters"] = clusters  # saved with the checkpoints, for sampling
        batches = BatchIterator(from_unit(train_set.images),
                                train_set.labels if clusters is None else clusters.labels,
                                batch_size=config.batch_size, seed=seed, device=device)
        state["batches"] = batches

        def next_real() -> tuple[torch.Tensor, torch.Tensor | None]:
            x, y = next(batches)
            return x, (y if cond else None)

    snap_dir = None
    if toy and config.snapshot_every and run_dir is not None:
        snap_dir = Path(run_dir) / SNAPSHOT_DIR
        snap_dir.mkdir(parents=True, exist_ok=True)
    snap_z = torch.randn(1000, config.net.latent_dim,
                         generator=torch.Generator().manual_seed(seed + 3)).to(device)

    def step_fn(step: int) -> dict[str, Any]:
        for _ in range(config.n_critic):
            real, labels = next_real()
            d = discriminator_step(G, D, opt_d, real, loss=config.loss, noise=noise,
                                   labels=labels, gp_weight=config.gp_weight)
        fake_labels = (torch.randint(config.net.n_classes, (config.batch_size,),
                                     generator=noise).to(device) if cond else None)
        g = generator_step(G, D, opt_g, config.batch_size, loss=config.loss, noise=noise,
                           labels=fake_labels)
        if ema is not None:
            ema.update(G)
        if snap_dir is not None and (step + 1) % config.snapshot_every == 0:
            _save_snapshot(snap_dir, step + 1, G, snap_z)
        return {**d, **g, "images": config.batch_size * config.n_critic}

    if snap_dir is not None and not (snap_dir / "step_000000.npy").exists():
        _save_snapshot(snap_dir, 0, G, snap_z)  # the initial generator (also before a resume)
    G.train()
    D.train()
    history = fit(step_fn, budget=budget, state=state, run_dir=run_dir, resume=resume,
                  config=config, progress=progress,
                  checkpoint_every=500 if run_dir is not None else None,
                  desc=f"gan-{config.dataset}")
    train_seconds = float(history.records[-1]["time"]) if len(history) else 0.0
    last = history.records[-1] if len(history) else {}

    t0 = time.perf_counter()
    if ema is not None:
        ema.copy_to(G)
    G.eval()
    out = _evaluate(G, config, seed=seed, clusters=clusters)
    out.update({
        "eval_samples": config.eval_samples, "steps": len(history),
        "images_seen": len(history) * config.batch_size * config.n_critic,
        "train_seconds": train_seconds + cluster_seconds, "eval_seconds": time.perf_counter() - t0,
        "n_params_g": sum(p.numel() for p in G.parameters()),
        "n_params_d": sum(p.numel() for p in D.parameters()),
        "final_loss_d": float(last.get("loss_d", float("nan"))),
        "final_loss_g": float(last.get("loss_g", float("nan"))),
        "protocol": _protocol(config),
    })
    if clusters is not None:
        out["cluster_seconds"] = cluster_seconds
    return out


def _save_snapshot(snap_dir: Path, step: int, G: Generator, z: torch.Tensor) -> None:
    from genlib.train import atomic_write

    was = G.training
    G.eval()
    with torch.no_grad():
        x = G(z).cpu().numpy().astype(np.float32)
    G.train(was)
    import io

    buf = io.BytesIO()
    np.save(buf, x)
    atomic_write(snap_dir / f"step_{step:06d}.npy", buf.getvalue())


def _evaluate(G: Generator, config: GANTrainConfig, *, seed: int,
              clusters: ClusterLabels | None = None) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    n = config.eval_samples
    if config.dataset != "mnist5k":
        x = G.sample(n, generator=gen).cpu()
        if config.dataset not in ("ring", "grid"):
            return {}
        m = mode_coverage(x, toy2d_modes(config.dataset), MODE_STD)
        return {"high_quality": m["high_quality"], "modes_covered": m["modes_covered"],
                "n_modes": m["n_modes"], "min_mode_share": m["min_share"],
                "mode_shares": m["shares"]}
    from genlib.metrics import digit_logits, evaluate_images

    labels = _labels_for(n, config.net.n_classes, clusters, gen)
    images = to_unit(G.sample(n, generator=gen, labels=labels)).cpu()
    images = torch.round(images * 255) / 255  # the uint8 levels `genlib sample` writes
    ev = evaluate_images(images, against="mnist5k", split="train", n_boot=0, kid_subsets=10)
    out = {"classifier_fid": ev["fid"], "min_class_share": ev["class_hist"]["min_share"],
           "class_shares": list(ev["class_hist"]["shares"])}
    if labels is not None and clusters is None:
        pred = digit_logits(images).argmax(dim=1)
        out["class_accuracy"] = float((pred == labels).double().mean())
    return out


def _protocol(config: GANTrainConfig) -> str:
    weights = "EMA generator" if config.ema_decay > 0 else "live generator (no EMA)"
    if config.dataset != "mnist5k":
        return (f"{weights}, eval mode; {config.eval_samples} samples of the {config.dataset} "
                f"toy scored by genlib.gan.mode_coverage: high quality = within 3 sd "
                f"({3 * MODE_STD}) of the nearest mode; a mode is covered with >= 1/4 of its "
                f"fair share of high-quality samples")
    if config.clusters:
        what = (f"self-conditioned: each sample's cluster id drawn from the sizes of the "
                f"{config.clusters} k-means clusters")
    elif config.net.n_classes:
        what = "the digits 0..9 asked for in turn; class_accuracy = the shipped classifier agrees"
    else:
        what = "unconditional"
    return (f"{weights}, eval mode; {config.eval_samples} samples ({what}), rounded to uint8 "
            f"levels; classifier-FID against the 4,000 mnist5k train digits on the shipped "
            f"digit classifier's features; class shares from its predictions")


def _labels_for(n: int, n_classes: int, clusters: ClusterLabels | None,
                gen: torch.Generator) -> torch.Tensor | None:
    """The labels a conditional generator is asked for when it is sampled: cluster ids drawn
    from the cluster sizes (self-conditioned), else the digits 0..9 in turn."""
    if clusters is not None:
        return clusters.sample(n, generator=gen)
    return torch.arange(n) % n_classes if n_classes else None


def load_clusters(run_dir: str | os.PathLike) -> ClusterLabels | None:
    """The k-means cluster ids a self-conditioned run trained on (None for other runs), from
    its newest complete checkpoint."""
    state = newest_checkpoint(run_dir)["state"]
    if "clusters" not in state:
        return None
    return ClusterLabels.from_state_dict(state["clusters"])


def load_generator(run_dir: str | os.PathLike, config: GANTrainConfig | None = None, *,
                   ema: bool = True, device: str = "cpu") -> Generator:
    """The generator of the newest complete checkpoint in ``run_dir``, in eval mode (the EMA
    weights when the run kept them and ``ema`` is true)."""
    ckpt = newest_checkpoint(run_dir)
    if config is None:  # every field is in the checkpoint; the subclasses only change defaults
        config = GANTrainConfig(**dict(ckpt["config"]))
    G = Generator(config.net)
    state = ckpt["state"]
    G.load_state_dict(state["ema"]["shadow"] if ema and "ema" in state else state["G"])
    return G.to(device).eval()


def sample(run_dir: str | os.PathLike, n: int, *, seed: int = 0, device: str = "cpu",
           config: GANTrainConfig | None = None) -> dict[str, np.ndarray]:
    """``n`` samples: uint8 ``images`` ``(n, 1, 28, 28)`` (conditional models also return the
    ``labels`` asked for: ``0, 1, ..., 9`` in turn; self-conditioned ones the ``clusters`` ids
    drawn from the cluster sizes), or float32 ``points`` ``(n, 2)``."""
    G = load_generator(run_dir, config, device=device)
    gen = torch.Generator().manual_seed(seed)
    if G.config.arch == "mlp":
        return {"points": G.sample(n, generator=gen).cpu().numpy().astype(np.float32)}
    clusters = load_clusters(run_dir)
    labels = _labels_for(n, G.config.n_classes, clusters, gen)
    x = to_unit(G.sample(n, generator=gen, labels=labels)).cpu()
    out = {"images": torch.round(x * 255).to(torch.uint8).numpy()}
    if labels is not None:
        out["clusters" if clusters is not None else "labels"] = labels.numpy()
    return out


_recipe = recipe_maker(5, train, sample)

RECIPES = [
    _recipe("gan-toy2d", "MLP GAN on the ring of 8 Gaussians, minibatch std against mode "
            "collapse; modes covered and high-quality fraction", ToyGANConfig,
            quick=Budget(steps=1500), full=Budget(steps=3000)),
    _recipe("dcgan-mnist5k", "DCGAN (hinge loss) on mnist5k; classifier-FID and the smallest "
            "class share", DCGANConfig, quick=Budget(steps=600), full=Budget(steps=4800)),
    _recipe("wgan-gp-mnist5k", "Wasserstein GAN with gradient penalty on mnist5k; "
            "classifier-FID", WGANGPConfig, quick=Budget(steps=250), full=Budget(steps=2200)),
    _recipe("cgan-mnist5k", "class-conditional DCGAN with a projection discriminator on "
            "mnist5k; accuracy of the asked-for digit, classifier-FID", CGANConfig,
            quick=Budget(steps=600), full=Budget(steps=4000)),
    _recipe("scgan-mnist5k", "self-conditioned DCGAN on mnist5k: the cgan pair trained on 50 "
            "k-means clusters of the digits, no labels; classifier-FID and the smallest class "
            "share", SCGANConfig, quick=Budget(steps=400), full=Budget(steps=4000)),
]
