r"""Recipes ``ddpm-toy2d``, ``ddpm-mnist5k``, ``flow-mnist5k``, ``ddpm-pixel-mnist5k`` and
``cddpm-pixel-mnist5k``: the diffusion and flow-matching models of chapter 6.

One step::

    x0   = next(batch)                                  # toy points, latent codes or images
    loss = mean(diffusion_loss(net, schedule, x0, parameterization=...))    # objective "ddpm"
         | mean(flow_matching_loss(net, x0))                                # objective "flow"
    backward_and_step(loss, opt); sched.step(); ema.update(net)

**Where the model lives** (``space``). On mnist5k the default is a *latent* model
(Rombach et al. 2022; Vahdat et al. 2021): stage 1 trains the chapter 4 VAE
(:mod:`genlib.recipes.vae`) in ``RUN_DIR/autoencoder``; stage 2 learns the distribution of its
encoder means :math:`\mu(x)` of the 4,000 training digits, divided by their standard deviation
(one number, the ``latent_scale``), with a residual MLP (:class:`genlib.nn.MLPDenoiser`);
sampling runs the reverse process in that 32-dimensional space and decodes once. ``space="pixel"``
trains the U-Net of :mod:`genlib.nn` on the images themselves, in ``[-1, 1]``, optionally at a
lower resolution ``image_size`` (area-downsampled; samples are upsampled bilinearly to 28x28 for
scoring).

**What the defaults were chosen on** (2 CPU cores; ``bench/bench_diffusion.py`` re-measures the
table in chapter 6): one forward and backward pass of the default pixel U-Net costs about
1.1 GFLOP per 28x28 image, so five minutes on a laptop CPU buys a few hundred steps; the same
time spent on 32-dimensional latents buys thousands, and the VAE's decoder turns them into sharp
digits. In five minutes (bench/results/diffusion_sweep.json), the 28x28 U-Net reached
classifier-FID 100 and a 14x14 one 22, against 1.1 for latent ``v``-prediction (Salimans & Ho
2022) with the cosine schedule; latent epsilon-prediction reached 8 with one class under 3%; the
EMA of the weights made a small difference (1.13 against 1.19).

**On a GPU** (``ddpm-pixel-mnist5k``) the trade turns around: the latent models cannot beat
their VAE's reconstructions (the ceiling notebook 05 measures), while a pixel U-Net with 6.5M
parameters (:class:`PixelDDPMConfig`) trains 8,000 steps in about six minutes on an H100 and
samples 1,000 digits with all 1,000 ancestral steps in under a minute. It is the recipe for the
book's full-mode number (bench/results/diffusion_gpu.json); on a CPU even its quick budget takes
hours. It reaches classifier-FID 0.31 and 0.36 on seeds 0 and 1, 3-4x the real-data floor of
0.09. Off-repo probes on the same GPU found no easy lever past that: dropout 0.1 or 0.3 in the
residual blocks did not help after 2,150 steps (0.74 against 0.74 without, DDIM 250; 0.85 with
0.3; four runs sharing the GPU), and a U-Net twice as wide (width 128, 25.8M parameters,
dropout 0.1, 5,266 steps in six minutes) reached 0.35 with DDIM 250 against the recipe's 0.28.
Most of that distance is not image quality: the floor's test split holds exactly 100 digits of
each class, while 1,000 independent samples hold random counts, which add about 0.1 to the FID
of real digits themselves (:func:`genlib.metrics.class_count_noise`; real digits drawn with
seed 0's class counts score 0.31, the run's own score; ``bench_diffusion.py --floor-noise``).
``cddpm-pixel-mnist5k`` (:class:`CondPixelDDPMConfig`) is the same model told the digit; it
samples 100 of each per 1,000, stratified like the floor. With the same budget on an H100 it
reaches classifier-FID 0.12, 0.11 and 0.10 on seeds 0-2, within the target of 2x the floor,
and the classifier reads back the asked-for digit 98.9-99.4% of the time.

**Evaluation** (mnist5k): ``eval_samples`` samples from the EMA weights with the configured
sampler, rounded to uint8 levels, scored by classifier-FID against the 4,000 training digits and
the digit classifier's class histogram (:func:`genlib.metrics.evaluate_images`); plus a copying
check: the median distance from each sample to its nearest training digit, beside the same for
1,000 test digits (a model that memorised its training set would sit far below). Toys ``ring``
and ``grid``: :func:`genlib.gan.mode_coverage`, as for the GAN of chapter 5.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from genlib.data import (
    TOY2D_NAMES,
    BatchIterator,
    check_choice,
    check_int,
    load,
    toy2d,
    toy2d_modes,
)
from genlib.data.toy2d import MODE_STD
from genlib.diffusion import (
    NoiseSchedule,
    check_parameterization,
    diffusion_loss,
    flow_matching_loss,
    make_schedule,
    sample_ddim,
    sample_ddpm,
    sample_euler,
    sample_heun,
)
from genlib.diffusion.schedules import SCHEDULES
from genlib.nn import MLPDenoiser, MLPDenoiserConfig, UNet, UNetConfig
from genlib.recipes._common import (
    lr_factor,
    model_state,
    newest_checkpoint,
    recipe_maker,
    schedule_steps,
)
from genlib.recipes.vae import VAETrainConfig
from genlib.train import EMA, Budget, backward_and_step, fit

__all__ = ["DiffusionTrainConfig", "ToyDDPMConfig", "LatentDDPMConfig", "LatentFlowConfig",
           "DiffusionModel", "RECIPES", "OBJECTIVES", "SPACES", "SAMPLERS", "train",
           "PixelDDPMConfig", "CondPixelDDPMConfig", "load_pipeline", "sample", "AUTOENCODER_DIR"]

OBJECTIVES = ("ddpm", "flow")
SPACES = ("latent", "pixel")
SAMPLERS = {"ddpm": ("ddim", "ddpm"), "flow": ("euler", "heun")}
AUTOENCODER_DIR = "autoencoder"
IMAGE_DATASETS = ("mnist5k",)
N_DIGITS = 10


def _autoencoder() -> VAETrainConfig:
    # The chapter 4 VAE; a light evaluation (its NLL is not this recipe's business).
    return VAETrainConfig(eval_k=10, eval_n=200, fid_samples=0)


@dataclass(frozen=True)
class DiffusionTrainConfig:
    """Hyper-parameters of a diffusion or flow-matching recipe.

    Attributes:
        dataset: ``"mnist5k"`` or a 2D toy of :data:`genlib.data.TOY2D_NAMES` (fresh points
            every step).
        objective: ``"ddpm"`` (noise schedule, :func:`~genlib.diffusion.diffusion_loss`) or
            ``"flow"`` (straight paths, :func:`~genlib.diffusion.flow_matching_loss`).
        space: mnist5k only: ``"latent"`` (stage 1 VAE, stage 2 MLP on its codes) or
            ``"pixel"`` (the U-Net on images).
        schedule, timesteps: the noise schedule (``"ddpm"``): a name of
            :data:`genlib.diffusion.SCHEDULES` and its number of steps ``T``.
        parameterization: what the network predicts (``"ddpm"``): ``"eps"``, ``"x0"`` or ``"v"``.
        mlp: the denoiser of toys and latents (its ``dim`` must be 2 for toys, the VAE's
            ``latent_dim`` for latents).
        unet: the denoiser of ``space="pixel"`` (its ``image_size`` is the training resolution).
        class_conditional: pixel mnist5k only: train on (image, label) pairs, the U-Net told
            the digit (``unet.n_classes`` must be 10); samples are drawn class by class, digit
            ``i % 10`` for the ``i``-th, so 1,000 samples hold exactly 100 of each digit, like
            the stratified test split behind :func:`genlib.metrics.real_floor`. No label
            dropout and no guidance here (those are chapter 7's).
        autoencoder: the stage 1 VAE config (``space="latent"``).
        autoencoder_steps: stage 1 steps; None: half the stage 2 budget's steps (3,000 when
            the budget is not in steps).
        batch_size, lr, warmup_steps, schedule_steps: Adam with a linear warm-up and a cosine
            decay over ``schedule_steps`` (None: the budget's steps).
        ema_decay: EMA of the weights used for sampling (0: the live weights).
        sampler, sample_steps: the evaluation sampler (:data:`SAMPLERS` of the objective) and
            its number of steps (None: all ``T`` steps, for ``"ddpm"``).
        eval_samples: samples scored at the end.
    """

    dataset: str = "mnist5k"
    objective: str = "ddpm"
    space: str = "latent"
    schedule: str = "cosine"
    timesteps: int = 1000
    parameterization: str = "v"
    mlp: MLPDenoiserConfig = field(default_factory=lambda: MLPDenoiserConfig(
        dim=32, width=256, depth=3, emb_dim=128))
    unet: UNetConfig = field(default_factory=UNetConfig)
    class_conditional: bool = False
    autoencoder: VAETrainConfig = field(default_factory=_autoencoder)
    autoencoder_steps: int | None = None
    batch_size: int = 256
    lr: float = 2e-3
    warmup_steps: int = 100
    schedule_steps: int | None = None
    ema_decay: float = 0.999
    sampler: str = "ddim"
    sample_steps: int | None = 50
    eval_samples: int = 1000

    def __post_init__(self) -> None:
        for name, cls in (("mlp", MLPDenoiserConfig), ("unet", UNetConfig),
                          ("autoencoder", VAETrainConfig)):
            if isinstance(getattr(self, name), dict):  # from JSON
                object.__setattr__(self, name, cls(**getattr(self, name)))
        check_choice("dataset", self.dataset, (*IMAGE_DATASETS, *TOY2D_NAMES))
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("space", self.space, SPACES)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_parameterization(self.parameterization)
        if self.sampler not in SAMPLERS[self.objective]:
            valid = ", ".join(map(repr, SAMPLERS[self.objective]))
            raise ValueError(f"sampler must be one of {valid} for objective "
                             f"{self.objective!r}; got {self.sampler!r}")
        for name in ("timesteps", "batch_size", "eval_samples"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("warmup_steps", self.warmup_steps, minimum=0)
        for name in ("autoencoder_steps", "schedule_steps", "sample_steps"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be an integer >= 1 or None, got {v!r}")
        if self.sample_steps is None and self.objective == "flow":
            raise ValueError("sample_steps: an ODE sampler needs a number of steps, got None")
        if not isinstance(self.class_conditional, bool):
            raise ValueError(f"class_conditional must be True or False, got "
                             f"{self.class_conditional!r}")
        if self.class_conditional and (self.dataset != "mnist5k" or self.space != "pixel"):
            raise ValueError(f"class_conditional=True needs dataset='mnist5k' and "
                             f"space='pixel' (a U-Net told the digit), got dataset="
                             f"{self.dataset!r}, space={self.space!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        want_scale = 1000.0 if self.objective == "flow" else 1.0
        if self.dataset in TOY2D_NAMES or self.space == "latent":
            dim = 2 if self.dataset in TOY2D_NAMES else self.autoencoder.net.latent_dim
            if self.mlp.dim != dim:
                raise ValueError(f"mlp.dim must be {dim} (the "
                                 f"{'toy points' if dim == 2 else 'VAE latent_dim'}), got "
                                 f"{self.mlp.dim}")
            if self.mlp.time_scale != want_scale:
                raise ValueError(f"mlp.time_scale must be {want_scale:g} for objective "
                                 f"{self.objective!r} (times are "
                                 f"{'in [0, 1]' if want_scale > 1 else 'integer steps'}), got "
                                 f"{self.mlp.time_scale:g}")
        else:
            u = self.unet
            want = N_DIGITS if self.class_conditional else 0
            if u.in_channels != 1 or u.output_channels != 1 or u.n_classes != want:
                raise ValueError(f"unet: mnist5k needs in_channels=1, out_channels=1 (or None) "
                                 f"and n_classes={want} (class_conditional="
                                 f"{self.class_conditional}), got in_channels="
                                 f"{u.in_channels}, out_channels={u.out_channels}, n_classes="
                                 f"{u.n_classes}")
            if not 4 <= u.image_size <= 28:
                raise ValueError(f"unet.image_size must be in 4..28 (the training resolution), "
                                 f"got {u.image_size}")
            if u.time_scale != want_scale:
                raise ValueError(f"unet.time_scale must be {want_scale:g} for objective "
                                 f"{self.objective!r}, got {u.time_scale:g}")
        if self.dataset == "mnist5k" and self.eval_samples <= 128:
            raise ValueError(f"eval_samples must be >= 129 for mnist5k (classifier-FID needs "
                             f"more samples than its 128 features), got {self.eval_samples}")
        if self.dataset == "mnist5k" and self.autoencoder.dataset != "mnist5k":
            raise ValueError(f"autoencoder.dataset must be 'mnist5k', got "
                             f"{self.autoencoder.dataset!r}")

    @property
    def latent(self) -> bool:
        """True when the model lives in the VAE's latent space."""
        return self.dataset == "mnist5k" and self.space == "latent"

    def noise_schedule(self) -> NoiseSchedule:
        """The :class:`~genlib.diffusion.NoiseSchedule` of ``objective="ddpm"``."""
        return make_schedule(self.schedule, self.timesteps)


@dataclass(frozen=True)
class ToyDDPMConfig(DiffusionTrainConfig):
    """Defaults of ``ddpm-toy2d``: epsilon-prediction on two moons, a small MLP, ancestral
    sampling over all 1,000 steps."""

    dataset: str = "moons"
    parameterization: str = "eps"
    mlp: MLPDenoiserConfig = field(default_factory=lambda: MLPDenoiserConfig(
        dim=2, width=128, depth=3, emb_dim=64))
    batch_size: int = 512
    lr: float = 1e-3
    sampler: str = "ddpm"
    sample_steps: int | None = None
    eval_samples: int = 2000


@dataclass(frozen=True)
class LatentDDPMConfig(DiffusionTrainConfig):
    """Defaults of ``ddpm-mnist5k`` (those of :class:`DiffusionTrainConfig`): latent
    v-prediction, cosine schedule, DDIM with 50 steps."""


@dataclass(frozen=True)
class LatentFlowConfig(DiffusionTrainConfig):
    """Defaults of ``flow-mnist5k``: flow matching on the same latents, Heun with 25 steps (50
    network evaluations, like DDIM's 50)."""

    objective: str = "flow"
    mlp: MLPDenoiserConfig = field(default_factory=lambda: MLPDenoiserConfig(
        dim=32, width=256, depth=3, emb_dim=128, time_scale=1000.0))
    sampler: str = "heun"
    sample_steps: int | None = 25


@dataclass(frozen=True)
class PixelDDPMConfig(DiffusionTrainConfig):
    """Defaults of ``ddpm-pixel-mnist5k``, made for a GPU: v-prediction on 28x28 pixels with a
    U-Net of width 64 and two residual blocks per level (6.5M parameters), EMA 0.9995,
    ancestral sampling over all 1,000 steps."""

    space: str = "pixel"
    unet: UNetConfig = field(default_factory=lambda: UNetConfig(
        base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2,
        attention_resolutions=(7,)))
    batch_size: int = 128
    lr: float = 3e-4
    warmup_steps: int = 500
    ema_decay: float = 0.9995
    sampler: str = "ddpm"
    sample_steps: int | None = None


@dataclass(frozen=True)
class CondPixelDDPMConfig(PixelDDPMConfig):
    """Defaults of ``cddpm-pixel-mnist5k``: :class:`PixelDDPMConfig` told the digit
    (``class_conditional``; the U-Net adds a learned embedding of the label to its time
    embedding). Its 1,000 evaluation samples hold 100 of each digit, as the test split behind
    the real-data floor does, so its classifier-FID is compared with the floor like for like."""

    unet: UNetConfig = field(default_factory=lambda: UNetConfig(
        base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2,
        attention_resolutions=(7,), n_classes=N_DIGITS))
    class_conditional: bool = True


# ---- the trained model, ready to sample --------------------------------------------------------
class DiffusionModel:
    """A trained recipe, ready to sample: the denoiser, and for latent models the decoder and
    the latent scale.

    ``sample(n, ...)`` returns images in ``[0, 1]`` ``(n, 1, 28, 28)`` (mnist5k) or points
    ``(n, 2)`` (toys). ``sampler``/``steps`` default to the config's; ``callback`` sees every
    intermediate state (latents, low-resolution images or points, before decoding).
    """

    def __init__(self, config: DiffusionTrainConfig, net: torch.nn.Module,
                 decoder: Any = None, latent_scale: float = 1.0) -> None:
        self.config = config
        self.net = net
        self.decoder = decoder
        self.latent_scale = float(latent_scale)
        self.schedule = config.noise_schedule() if config.objective == "ddpm" else None

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample in the space the model lives in."""
        c = self.config
        if c.dataset in TOY2D_NAMES or c.latent:
            return (c.mlp.dim,)
        return (1, c.unet.image_size, c.unet.image_size)

    def labels(self, n: int, labels: Any = None) -> torch.Tensor | None:
        """The digits a class-conditional model draws ``n`` samples of: ``labels`` checked
        (``(n,)`` integers in ``0..9``), or by default ``i % 10`` for the ``i``-th sample (every
        digit equally often). None for an unconditional model, which takes no labels."""
        if not self.config.class_conditional:
            if labels is not None:
                raise ValueError("labels: this model is unconditional (class_conditional="
                                 "False); pass labels=None")
            return None
        if labels is None:
            return torch.arange(n) % N_DIGITS
        y = torch.as_tensor(labels)
        if (y.shape != (n,) or y.dtype.is_floating_point or y.dtype == torch.bool
                or (n and not 0 <= int(y.min()) <= int(y.max()) < N_DIGITS)):
            raise ValueError(f"labels must be {n} integers in 0..{N_DIGITS - 1} (one digit per "
                             f"sample), got shape {tuple(y.shape)}, dtype {y.dtype}")
        return y.long()

    @torch.no_grad()
    def sample_raw(self, n: int, *, sampler: str | None = None, steps: int | None = -1,
                   generator: torch.Generator | None = None, callback: Any = None,
                   batch_size: int = 1000, labels: Any = None) -> torch.Tensor:
        """``n`` samples where the model lives (latents scaled by ``1 / latent_scale``, images
        in ``[-1, 1]`` at the training resolution, or points), on the CPU.

        ``sampler`` None: the config's; ``steps`` -1 (the default): the config's
        ``sample_steps``, None: all ``T`` steps (``"ddim"``/``"ddpm"`` only). ``labels``: the
        digits of a class-conditional model (:meth:`labels`)."""
        c = self.config
        sampler = c.sampler if sampler is None else sampler
        if sampler not in SAMPLERS[c.objective]:
            raise ValueError(f"sampler must be one of "
                             f"{', '.join(map(repr, SAMPLERS[c.objective]))} for objective "
                             f"{c.objective!r}; got {sampler!r}")
        steps = c.sample_steps if steps == -1 else steps
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        digits = self.labels(n, labels)
        was = self.net.training
        self.net.eval()
        out = []
        clip = c.dataset == "mnist5k" and c.space == "pixel"
        for i in range(0, n, batch_size):
            m = min(batch_size, n - i)
            x = torch.randn((m, *self.shape), generator=generator).to(self.device)
            net = self.net
            if digits is not None:
                net = partial(self.net, labels=digits[i:i + m].to(self.device))  # model(x, t)
            if sampler == "ddim":
                y = sample_ddim(net, x, schedule=self.schedule, steps=steps,
                                parameterization=c.parameterization, callback=callback,
                                clip_x0=clip)
            elif sampler == "ddpm":
                y = sample_ddpm(net, x, schedule=self.schedule, steps=steps,
                                parameterization=c.parameterization, generator=generator,
                                callback=callback, clip_x0=clip)
            elif sampler == "euler":
                y = sample_euler(net, x, steps=steps, callback=callback)
            else:
                y = sample_heun(net, x, steps=steps, callback=callback)
            out.append(y.float().cpu())
        self.net.train(was)
        return torch.cat(out)

    @torch.no_grad()
    def decode(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw samples to images in ``[0, 1]`` ``(n, 1, 28, 28)`` (points pass through)."""
        c = self.config
        if c.dataset in TOY2D_NAMES:
            return raw
        if c.latent:
            dev = next(self.decoder.parameters()).device
            logits = self.decoder.decode((raw * self.latent_scale).to(dev))
            return torch.sigmoid(logits).cpu()
        x = ((raw + 1) / 2).clamp(0, 1)
        if x.shape[-1] != 28:
            x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
        return x.clamp(0, 1)

    def sample(self, n: int, *, sampler: str | None = None, steps: int | None = -1,
               generator: torch.Generator | None = None, callback: Any = None,
               labels: Any = None) -> torch.Tensor:
        """``n`` samples: images in ``[0, 1]`` ``(n, 1, 28, 28)`` or points ``(n, 2)``
        (``labels``: see :meth:`labels`)."""
        return self.decode(self.sample_raw(n, sampler=sampler, steps=steps, generator=generator,
                                           callback=callback, labels=labels))


# ---- training --------------------------------------------------------------------------------
def _build_net(config: DiffusionTrainConfig) -> torch.nn.Module:
    if config.dataset in TOY2D_NAMES or config.latent:
        return MLPDenoiser(config.mlp)
    return UNet(config.unet)


def _autoencoder_steps(config: DiffusionTrainConfig, budget: Budget) -> int:
    if config.autoencoder_steps is not None:
        return config.autoencoder_steps
    return max(1, budget.steps // 2) if budget.steps is not None else 3000


def _stage1(config: DiffusionTrainConfig, run_dir: Path, *, steps: int, device: str, seed: int,
            resume: bool, progress: bool) -> dict[str, Any]:
    """Train (or finish, or reuse) the VAE in ``run_dir/autoencoder``; its metrics."""
    from genlib.recipes import METRICS_FILE, write_metrics
    from genlib.recipes import vae as vae_recipe

    ae_dir = run_dir / AUTOENCODER_DIR
    done = ae_dir / METRICS_FILE
    if resume and done.exists():
        return json.loads(done.read_text())
    ae_dir.mkdir(parents=True, exist_ok=True)
    out = vae_recipe.train(config.autoencoder, ae_dir, budget=Budget(steps=steps), device=device,
                           seed=seed, resume=resume, progress=progress)
    write_metrics(ae_dir, out)
    return out


def _latents(vae: Any, device: str) -> torch.Tensor:
    from genlib.vae.helpers import encode_mean

    return encode_mean(vae, load("mnist5k", "train").images.to(device)).cpu()


def _load_vae(ae_dir: Path, config: DiffusionTrainConfig, device: str) -> Any:
    from genlib.recipes.vae import load_model

    return load_model(ae_dir, config.autoencoder, device=device)


def train(config: DiffusionTrainConfig, run_dir: Path | None, *, budget: Budget,
          device: str = "cpu", seed: int = 0, resume: bool = False,
          progress: bool = True) -> dict[str, Any]:
    """Train under ``budget`` (stage 2; a latent model first trains its VAE for
    ``autoencoder_steps``) and return the evaluation (module docstring).

    Returns:
        mnist5k: ``classifier_fid``, ``min_class_share``, ``class_shares``,
        ``nn_dist_samples`` and ``nn_dist_test`` (median distance to the nearest training
        digit, samples and test digits); toys: ``mmd`` to fresh data and ``mmd_data`` (data
        against data, the floor), and for ``ring``/``grid`` also ``high_quality``,
        ``modes_covered``, ``n_modes``, ``min_mode_share``; always ``steps``, ``images_seen``,
        ``train_seconds`` (both stages), ``autoencoder_seconds``, ``sample_seconds``,
        ``eval_seconds``, ``n_params``, ``final_loss``, ``latent_scale`` and ``protocol``.
    """
    c = config
    tmp = None
    if run_dir is None and c.latent:  # stage 1 must land somewhere to be read back
        tmp = tempfile.TemporaryDirectory(prefix="genlib-ae-")
        ae_root = Path(tmp.name)
    else:
        ae_root = Path(run_dir) if run_dir is not None else None
    try:
        return _train(c, run_dir, ae_root, budget=budget, device=device, seed=seed,
                      resume=resume, progress=progress)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _train(c: DiffusionTrainConfig, run_dir: Path | None, ae_root: Path | None, *,
           budget: Budget, device: str, seed: int, resume: bool,
           progress: bool) -> dict[str, Any]:
    toy = c.dataset in TOY2D_NAMES
    ae_seconds = 0.0
    decoder, scale = None, 1.0
    data_gen = torch.Generator().manual_seed(seed + 2)
    if c.latent:
        ae = _stage1(c, ae_root, steps=_autoencoder_steps(c, budget), device=device, seed=seed,
                     resume=resume, progress=progress)
        ae_seconds = float(ae["train_seconds"])
        decoder = _load_vae(ae_root / AUTOENCODER_DIR, c, device)
        z = _latents(decoder, device)
        scale = float(z.std())
        data = (z / scale,)
    elif not toy:
        train_set = load("mnist5k", "train")
        x = train_set.images * 2 - 1
        if c.unet.image_size != 28:
            x = F.interpolate(x, size=(c.unet.image_size,) * 2, mode="area")
        data = (x, train_set.labels.long()) if c.class_conditional else (x,)
    torch.manual_seed(seed)
    net = _build_net(c).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=c.lr)
    total = schedule_steps(c, budget)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, warmup_steps=c.warmup_steps, total_steps=total))
    noise = torch.Generator().manual_seed(seed + 1)
    state: dict[str, Any] = {"model": net, "opt": opt, "sched": sched, "noise": noise}
    ema = EMA(net, c.ema_decay, warmup=True) if c.ema_decay > 0 else None
    if ema is not None:
        state["ema"] = ema
    if toy:
        state["data"] = data_gen

        def next_batch() -> torch.Tensor:
            return toy2d(c.dataset, c.batch_size, generator=data_gen).to(device)
    else:
        batches = BatchIterator(*data, batch_size=c.batch_size, seed=seed, device=device)
        state["batches"] = batches

        def next_batch() -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
            return next(batches)

    schedule = c.noise_schedule() if c.objective == "ddpm" else None

    def step_fn(step: int) -> dict[str, Any]:
        x0, model = next_batch(), net
        if c.class_conditional:
            x0, y = x0
            model = partial(net, labels=y)  # model(x, t), what the losses take
        if c.objective == "flow":
            loss = flow_matching_loss(model, x0, generator=noise).mean()
        else:
            loss = diffusion_loss(model, schedule, x0, parameterization=c.parameterization,
                                  generator=noise).mean()
        backward_and_step(loss, opt)
        sched.step()
        if ema is not None:
            ema.update(net)
        return {"loss": loss, "images": x0.shape[0]}

    net.train()
    history = fit(step_fn, budget=budget, state=state, run_dir=run_dir, resume=resume,
                  config=c, progress=progress,
                  checkpoint_every=1000 if run_dir is not None else None,
                  desc=f"{c.objective}-{c.dataset}")
    train_seconds = float(history.records[-1]["time"]) if len(history) else 0.0
    last = history.records[-1] if len(history) else {}

    t0 = time.perf_counter()
    if ema is not None:
        ema.copy_to(net)
    net.eval()
    model = DiffusionModel(c, net, decoder, scale)
    out = _evaluate(model, seed=seed)
    out.update({
        "steps": len(history), "images_seen": len(history) * c.batch_size,
        "train_seconds": train_seconds + ae_seconds, "autoencoder_seconds": ae_seconds,
        "eval_seconds": time.perf_counter() - t0,
        "n_params": sum(p.numel() for p in net.parameters()),
        "final_loss": float(last.get("loss", float("nan"))), "latent_scale": scale,
        "protocol": _protocol(c),
    })
    return out


def _evaluate(model: DiffusionModel, *, seed: int) -> dict[str, Any]:
    c = model.config
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    x = model.sample(c.eval_samples, generator=gen)
    out: dict[str, Any] = {"sample_seconds": time.perf_counter() - t0,
                           "eval_samples": c.eval_samples}
    if c.dataset in TOY2D_NAMES:
        from genlib.prob import mmd

        data_gen = torch.Generator().manual_seed(seed + 10)
        a = toy2d(c.dataset, c.eval_samples, generator=data_gen)
        b = toy2d(c.dataset, c.eval_samples, generator=data_gen)
        out["mmd"] = float(mmd(x.double(), a.double(), bandwidth=0.1))
        out["mmd_data"] = float(mmd(b.double(), a.double(), bandwidth=0.1))
        if c.dataset in ("ring", "grid"):
            from genlib.gan import mode_coverage

            m = mode_coverage(x, toy2d_modes(c.dataset), MODE_STD)
            out.update({"high_quality": m["high_quality"], "modes_covered": m["modes_covered"],
                        "n_modes": m["n_modes"], "min_mode_share": m["min_share"]})
        return out
    from genlib.metrics import evaluate_images

    images = torch.round(x * 255) / 255  # the uint8 levels `genlib sample` writes
    ev = evaluate_images(images, against="mnist5k", split="train", n_boot=0, kid_subsets=10)
    train_x = load("mnist5k", "train").images.flatten(1)
    test_x = load("mnist5k", "test").images[:1000].flatten(1)
    out.update({
        "classifier_fid": ev["fid"], "min_class_share": ev["class_hist"]["min_share"],
        "class_shares": list(ev["class_hist"]["shares"]),
        "nn_dist_samples": float(torch.cdist(images.flatten(1), train_x).min(1).values.median()),
        "nn_dist_test": float(torch.cdist(test_x, train_x).min(1).values.median()),
    })
    if c.class_conditional:  # how often the classifier reads the digit the model was asked for
        from genlib.metrics import digit_logits

        asked = model.labels(c.eval_samples)
        out["label_accuracy"] = float((digit_logits(images).argmax(1) == asked).float().mean())
    return out


def _protocol(c: DiffusionTrainConfig) -> str:
    weights = "EMA weights" if c.ema_decay > 0 else "live weights (no EMA)"
    steps = "all T" if c.sample_steps is None else str(c.sample_steps)
    how = f"{c.sampler} sampler, {steps} steps"
    if c.dataset in TOY2D_NAMES:
        return (f"{weights}; {c.eval_samples} points of {c.dataset!r} by the {how}; mmd: "
                f"unbiased squared MMD (RBF kernel, bandwidth 0.1) against as many fresh data "
                f"points, mmd_data the same between two data samples; ring/grid also scored by "
                f"genlib.gan.mode_coverage (within 3 sd of a mode = high quality)")
    where = ("latent (chapter 4 VAE, decoded means)" if c.latent
             else f"pixel space at {c.unet.image_size}x{c.unet.image_size}")
    what = ("class-conditional samples, digit i % 10 for the i-th (every digit equally "
            "often, like the stratified test split; label_accuracy: the classifier agrees "
            "with the digit asked for)" if c.class_conditional else "unconditional samples")
    return (f"{weights}; {c.eval_samples} {what}, {where}, {how}, rounded to "
            f"uint8 levels; classifier-FID against the 4,000 mnist5k train digits on the "
            f"digit classifier's features; class shares from its predictions; nn_dist: median "
            f"L2 distance (pixels in [0, 1]) to the nearest train digit, samples vs 1,000 test "
            f"digits")


# ---- loading and sampling ----------------------------------------------------------------------
def load_pipeline(run_dir: str | os.PathLike, config: DiffusionTrainConfig | None = None, *,
                  ema: bool = True, device: str = "cpu") -> DiffusionModel:
    """The trained model of ``run_dir`` (newest complete checkpoint; EMA weights when kept and
    ``ema`` is true), with its VAE decoder for a latent model, ready to ``sample``."""
    ckpt = newest_checkpoint(run_dir)
    if config is None:  # every field is in the checkpoint; the subclasses only change defaults
        config = DiffusionTrainConfig(**dict(ckpt["config"]))
    net = _build_net(config)
    state = ckpt["state"]
    net.load_state_dict(model_state(ckpt, ema=ema and "ema" in state))
    net = net.to(device).eval()
    decoder, scale = None, 1.0
    if config.latent:
        decoder = _load_vae(Path(run_dir) / AUTOENCODER_DIR, config, device)
        scale = float(_latents(decoder, device).std())
    return DiffusionModel(config, net, decoder, scale)


def sample(run_dir: str | os.PathLike, n: int, *, seed: int = 0, device: str = "cpu",
           config: DiffusionTrainConfig | None = None) -> dict[str, np.ndarray]:
    """``n`` samples with the run's sampler: uint8 ``images`` ``(n, 1, 28, 28)`` (and the
    ``labels`` asked for, int64 ``(n,)``, from a class-conditional model) or float32 ``points``
    ``(n, 2)``."""
    model = load_pipeline(run_dir, config, device=device)
    x = model.sample(n, generator=torch.Generator().manual_seed(seed))
    if model.config.dataset in TOY2D_NAMES:
        return {"points": x.numpy().astype(np.float32)}
    out = {"images": torch.round(x * 255).to(torch.uint8).numpy()}
    if model.config.class_conditional:
        out["labels"] = model.labels(n).numpy()
    return out


_recipe = recipe_maker(6, train, sample)

RECIPES = [
    _recipe("ddpm-toy2d", "DDPM (epsilon-prediction, cosine schedule) with a residual MLP on "
            "two moons; ancestral sampling over 1,000 steps", ToyDDPMConfig,
            quick=Budget(steps=1500), full=Budget(steps=4000)),
    _recipe("ddpm-mnist5k", "latent DDPM on mnist5k: the chapter 4 VAE, then v-prediction "
            "on its codes with a residual MLP; DDIM, 50 steps; classifier-FID and class shares",
            LatentDDPMConfig, quick=Budget(steps=1200), full=Budget(steps=5000)),
    _recipe("flow-mnist5k", "latent flow matching on mnist5k (same VAE and MLP); Heun, 25 "
            "steps; classifier-FID and class shares", LatentFlowConfig,
            quick=Budget(steps=1200), full=Budget(steps=5000)),
    _recipe("ddpm-pixel-mnist5k", "pixel-space DDPM on mnist5k for a GPU: a 6.5M-parameter "
            "U-Net, v-prediction, EMA; ancestral sampling over all 1,000 steps (hours on a CPU)",
            PixelDDPMConfig, quick=Budget(steps=500), full=Budget(steps=8000)),
    _recipe("cddpm-pixel-mnist5k", "class-conditional pixel-space DDPM on mnist5k for a GPU: "
            "the ddpm-pixel-mnist5k U-Net told the digit; 100 samples of each digit per 1,000 "
            "(hours on a CPU)", CondPixelDDPMConfig, quick=Budget(steps=500),
            full=Budget(steps=8000)),
]
