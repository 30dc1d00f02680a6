"""Class-count noise: stratified counts, the closed-form mean-term excess against Monte Carlo,
resamples with chosen class counts against a by-hand FID, and the measured excess of
independent over stratified resamples (zero when the classes look alike, clearly positive when
their means lie apart)."""

from __future__ import annotations

import pytest
import torch

from genlib.metrics import (
    class_count_noise,
    fid_with_class_counts,
    frechet_distance,
    gaussian_stats,
    mean_term_excess,
    stratified_counts,
)


def _classes(means: torch.Tensor, per_class: int, sd: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    k, d = means.shape
    labels = torch.arange(k).repeat_interleave(per_class)
    feat = means[labels] + sd * torch.randn(k * per_class, d, generator=g, dtype=torch.float64)
    return feat, labels


def test_stratified_counts_are_proportional_and_sum_to_n():
    assert stratified_counts([0.1] * 10, 1000).tolist() == [100] * 10
    c = stratified_counts([1, 1, 1], 10)              # 3.33 each: one class gets the spare one
    assert c.sum() == 10 and sorted(c.tolist()) == [3, 3, 4]
    c = stratified_counts([0.5, 0.3, 0.2, 0.0], 7)    # 3.5, 2.1, 1.4, 0 -> 4, 2, 1, 0
    assert c.tolist() == [4, 2, 1, 0]
    for n in (1, 17, 999):
        assert int(stratified_counts([0.13, 0.27, 0.6], n).sum()) == n


def test_mean_term_excess_matches_monte_carlo_of_multinomial_counts():
    # E || sum_k (c_k/n - p_k) m_k ||^2 over c ~ Multinomial(n, p), with p and m_k from data
    means = torch.tensor([[4.0, 0.0], [0.0, 3.0], [-2.0, -2.0]], dtype=torch.float64)
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    feat = means[labels] + 0.1 * torch.randn(100, 2, generator=torch.Generator().manual_seed(1),
                                             dtype=torch.float64)
    n = 40
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    m = torch.stack([feat[labels == k].mean(0) for k in range(3)])
    g = torch.Generator().manual_seed(2)
    draws = torch.multinomial(p, n * 20000, replacement=True, generator=g).view(20000, n)
    counts = torch.nn.functional.one_hot(draws, 3).sum(1).double()
    shift = ((counts / n - p) @ m).pow(2).sum(1)
    mc, se = float(shift.mean()), float(shift.std() / 20000 ** 0.5)
    exact = mean_term_excess(feat, labels, n)
    assert exact == pytest.approx(mc, abs=4 * se)
    # the closed form by hand: (1/n) sum_k p_k |m_k - mbar|^2
    mbar = p @ m
    assert exact == pytest.approx(float((p * ((m - mbar) ** 2).sum(1)).sum() / n), rel=1e-12)


def test_no_excess_when_the_classes_share_one_distribution():
    d = 4
    feat, _ = _classes(torch.zeros(5, d, dtype=torch.float64), 200, 1.0, 3)
    labels = torch.arange(1000) % 5                    # labels carry no information
    ref, _ = _classes(torch.zeros(1, d, dtype=torch.float64), 3000, 1.0, 4)
    r = class_count_noise(feat, labels, ref, n=500, reps=200,
                          generator=torch.Generator().manual_seed(0))
    assert abs(r.excess) < 4 * r.excess_se
    assert r.mean_term < 0.002                        # the class means nearly coincide


def test_separated_classes_give_a_clear_excess_at_least_the_mean_term():
    d, k = 3, 4
    means = 3.0 * torch.eye(k, d, dtype=torch.float64)
    feat, labels = _classes(means, 100, 0.5, 5)
    ref, _ = _classes(means, 1000, 0.5, 6)
    r = class_count_noise(feat, labels, ref, n=200, reps=300,
                          generator=torch.Generator().manual_seed(1))
    assert r.excess > 10 * r.excess_se
    # the mean term's share of the excess is its closed form, up to the resampling noise
    assert r.mean_term == pytest.approx(mean_term_excess(feat, labels, 200))
    assert r.excess > r.mean_term - 4 * r.excess_se
    assert r.iid_sd > r.stratified_sd                 # random counts also spread the scores
    # smaller resamples with random counts score above all 400 rows
    mu_r, cov_r = gaussian_stats(ref)
    assert frechet_distance(*gaussian_stats(feat), mu_r, cov_r) < r.iid


def test_seeded_and_n_defaults_to_the_rows():
    feat, labels = _classes(2.0 * torch.eye(3, dtype=torch.float64), 40, 1.0, 7)
    ref, _ = _classes(2.0 * torch.eye(3, dtype=torch.float64), 200, 1.0, 8)
    a = class_count_noise(feat, labels, ref, reps=5, generator=torch.Generator().manual_seed(3))
    b = class_count_noise(feat, labels, ref, reps=5, generator=torch.Generator().manual_seed(3))
    assert a == b and a.n == 120 and a.reps == 5


@pytest.mark.parametrize("kwargs, match", [
    (dict(labels=torch.zeros(5, dtype=torch.long)), "labels must be 30 integers"),
    (dict(labels=torch.zeros(30)), "labels must be 30 integers"),
    (dict(n=2), "n must exceed the feature dimension D=2"),
    (dict(n=0), "n"),
    (dict(reps=1), "reps"),
    (dict(feat_ref=torch.zeros(50, 3)), "same feature dimension"),
])
def test_bad_input_names_the_argument(kwargs, match):
    g = torch.Generator().manual_seed(0)
    args = dict(feat=torch.randn(30, 2, generator=g), labels=torch.arange(30) % 3,
                feat_ref=torch.randn(50, 2, generator=g))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        class_count_noise(args.pop("feat"), args.pop("labels"), args.pop("feat_ref"), **args)


def test_stratified_counts_rejects_bad_weights():
    for p in ([], [-0.1, 1.1], [0.0, 0.0], [[0.5, 0.5]]):
        with pytest.raises(ValueError, match="p must be non-negative class weights"):
            stratified_counts(p, 10)


def test_fid_with_class_counts_draws_those_counts_within_each_class():
    means = 3.0 * torch.eye(3, dtype=torch.float64)
    feat, labels = _classes(means, 50, 0.5, 9)
    ref, _ = _classes(means, 300, 0.5, 10)
    counts = torch.tensor([10, 0, 30])
    got = fid_with_class_counts(feat, labels, ref, counts, reps=3,
                                generator=torch.Generator().manual_seed(4))
    # by hand: the same draws, class by class, scored by frechet_distance
    g = torch.Generator().manual_seed(4)
    mu_r, cov_r = gaussian_stats(ref)
    for value in got:
        rows = torch.cat([torch.nonzero(labels == k).flatten()[torch.randint(50, (int(c),),
                                                                              generator=g)]
                          for k, c in enumerate(counts) if c > 0])
        assert torch.bincount(labels[rows], minlength=3).tolist() == counts.tolist()
        assert float(value) == pytest.approx(
            frechet_distance(*gaussian_stats(feat[rows]), mu_r, cov_r), rel=1e-9)
    # lopsided counts score worse than the data's own proportions
    even = fid_with_class_counts(feat, labels, ref, [20, 20, 20], reps=50)
    lopsided = fid_with_class_counts(feat, labels, ref, [40, 10, 10], reps=50)
    assert lopsided.mean() > even.mean() + 4 * (lopsided.std() + even.std()) / 50 ** 0.5


@pytest.mark.parametrize("counts, match", [
    ([10, 10], "counts must be 3 non-negative integers"),
    ([1.0, 2.0, 3.0], "counts must be 3 non-negative integers"),
    ([-1, 20, 20], "counts must be 3 non-negative integers"),
    ([1, 0, 0], "n must exceed the feature dimension D=3"),
])
def test_fid_with_class_counts_bad_counts(counts, match):
    feat, labels = _classes(torch.eye(3, dtype=torch.float64), 20, 1.0, 11)
    with pytest.raises(ValueError, match=match):
        fid_with_class_counts(feat, labels, feat, counts)
