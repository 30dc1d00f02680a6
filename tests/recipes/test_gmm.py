import math

import numpy as np
import torch
from scipy.stats import norm

from genlib.mixture import GaussianMixture
from genlib.recipes.gmm import (
    GMMConfig,
    ToyGMMConfig,
    build_model,
    dequantize,
    discrete_nll_nats,
    load_model,
    sample,
    train,
)
from genlib.train import Budget


def test_dequantized_bound_is_above_the_exact_discrete_nll():
    # A 1D Gaussian over y in [0, 1): P(k) = Phi((k+1)/17) - Phi(k/17) exactly, and
    # E_u[-log p((k+u)/17)] + log 17 >= -log P(k) by Jensen; the gap is small for a wide density.
    m = GaussianMixture(1, 1, "diag").double()
    m.means.fill_(0.5)
    m.var.fill_(0.3**2)
    levels = torch.arange(17, dtype=torch.float64)[:, None]
    exact = -np.log(norm.cdf((np.arange(17) + 1) / 17, 0.5, 0.3)
                    - norm.cdf(np.arange(17) / 17, 0.5, 0.3)).mean()
    bound = discrete_nll_nats(m, levels, torch.Generator().manual_seed(0), n_draws=2000)
    assert exact <= bound < exact + 0.01


def test_dequantize_stays_inside_each_bin():
    k = torch.randint(0, 17, (1000, 64), generator=torch.Generator().manual_seed(0))
    y = dequantize(k, torch.Generator().manual_seed(1))
    assert torch.equal(torch.floor(y * 17).long(), k)


def test_metrics_units_and_uniform_baseline():
    # The uniform model over 17 levels costs D log 17 nats; bits/dim = nats / (D log 2).
    from genlib.recipes.gmm import evaluate

    m = build_model(GMMConfig(n_components=1))
    metrics = evaluate(m, GMMConfig(n_components=1, n_eval_draws=1))
    assert math.isclose(metrics["uniform_nll_nats"], 64 * math.log(17))
    assert math.isclose(metrics["test_bits_per_dim"], metrics["test_nll_nats"] / (64 * math.log(2)))


def test_training_improves_the_toy_likelihood_and_resume_is_exact(tmp_path):
    cfg = ToyGMMConfig()
    m5 = train(cfg, tmp_path / "a", budget=Budget(steps=5), progress=False)
    m20 = train(cfg, tmp_path / "b", budget=Budget(steps=20), progress=False)
    assert m20["test_nll_nats"] < m5["test_nll_nats"]
    # 10 steps in one go == 4 steps, then resumed to 10
    train(cfg, tmp_path / "c", budget=Budget(steps=10), progress=False)
    train(cfg, tmp_path / "d", budget=Budget(steps=4), progress=False)
    train(cfg, tmp_path / "d", budget=Budget(steps=10), resume=True, progress=False)
    a, b = load_model(tmp_path / "c", cfg), load_model(tmp_path / "d", cfg)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_digit_recipe_beats_uniform_and_samples_are_valid_images(tmp_path):
    cfg = GMMConfig(n_components=5, n_eval_draws=2)
    metrics = train(cfg, tmp_path, budget=Budget(steps=10), progress=False)
    assert metrics["test_nll_nats"] < metrics["uniform_nll_nats"] - 20
    out = sample(tmp_path, 16, config=cfg, seed=3)
    images = out["images"]
    assert images.shape == (16, 1, 8, 8) and images.dtype == np.uint8
    # pixels are the 17 grey levels k * 255 / 16, rounded
    assert set(np.unique(images)) <= {round(k * 255 / 16) for k in range(17)}
    again = sample(tmp_path, 16, config=cfg, seed=3)["images"]
    assert np.array_equal(images, again)
