"""Self-conditioning's clusters: k-means recovers separated groups, the cluster prior is the
size fractions, sampling follows it, the state round-trips, and bad input is refused."""

from __future__ import annotations

import pytest
import torch

from genlib.gan import ClusterLabels, cluster_images


def _blobs(sizes=(30, 50, 20), dim=6, spread=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(dim)[: len(sizes)] * 10.0
    x = torch.cat([c + spread * torch.randn(n, dim, generator=g) for c, n in zip(
        centres, sizes, strict=True)])
    truth = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    perm = torch.randperm(len(x), generator=g)
    return x[perm].reshape(len(x), 1, 2, dim // 2), truth[perm]


def test_kmeans_recovers_separated_groups_up_to_relabelling():
    x, truth = _blobs()
    c = cluster_images(x, 3, seed=0)
    # same partition: each true group maps to exactly one cluster id, and vice versa
    pairs = set(zip(truth.tolist(), c.labels.tolist(), strict=True))
    assert len(pairs) == 3 and len({a for a, _ in pairs}) == 3 and len({b for _, b in pairs}) == 3
    assert sorted(c.sizes.tolist()) == [20, 30, 50]
    assert c.prior.sum().item() == pytest.approx(1.0)
    assert sorted(c.prior.tolist()) == pytest.approx([0.2, 0.3, 0.5])


def test_kmeans_is_seeded():
    x = torch.rand(200, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    a, b = cluster_images(x, 5, seed=3), cluster_images(x, 5, seed=3)
    assert torch.equal(a.labels, b.labels)
    # every point sits in the cluster of its nearest centre (the k-means fixed point)
    flat = x.flatten(1).double()
    centres = torch.stack([flat[a.labels == j].mean(0) for j in range(5)])
    assert torch.equal(torch.cdist(flat, centres).argmin(1), a.labels)


def test_sampling_follows_the_cluster_sizes():
    c = ClusterLabels(torch.tensor([0] * 10 + [1] * 30 + [2] * 60), 3)
    ids = c.sample(60_000, generator=torch.Generator().manual_seed(0))
    assert ids.dtype == torch.long and ids.shape == (60_000,)
    freq = torch.bincount(ids, minlength=3).double() / 60_000
    # binomial standard error at p = 0.6 is 0.002; 5 of them
    assert torch.allclose(freq, torch.tensor([0.1, 0.3, 0.6], dtype=torch.float64), atol=0.01)
    again = c.sample(100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, ids[:100])
    assert c.sample(0).shape == (0,)


def test_empty_clusters_are_never_sampled_and_state_round_trips():
    c = ClusterLabels(torch.tensor([0, 0, 2, 2, 2]), 4)
    assert c.sizes.tolist() == [2, 0, 3, 0]
    ids = c.sample(1000, generator=torch.Generator().manual_seed(0))
    assert set(ids.tolist()) == {0, 2}
    other = ClusterLabels(torch.zeros(1, dtype=torch.long), 2)
    other.load_state_dict(c.state_dict())
    assert other.k == 4 and torch.equal(other.labels, c.labels)
    again = ClusterLabels.from_state_dict(c.state_dict())
    assert again.k == 4 and torch.equal(again.sizes, c.sizes)


@pytest.mark.parametrize("call, match", [
    (lambda: ClusterLabels(torch.tensor([0, 1]), 1), "k must be an integer >= 2; got 1"),
    (lambda: ClusterLabels(torch.tensor([0.0, 1.0]), 2), "labels must be a 1-D integer tensor"),
    (lambda: ClusterLabels(torch.tensor([0, 3]), 3),
     r"labels must lie in 0..2; got values in 0..3"),
    (lambda: ClusterLabels(torch.tensor([0, 1]), 2).sample(-1),
     "n must be an integer >= 0; got -1"),
    (lambda: cluster_images(torch.rand(5, 4), 6),
     "k must be at most the number of images, 5; got 6"),
    (lambda: cluster_images(torch.rand(5), 2), r"images must be a tensor \(N, ...\)"),
    (lambda: cluster_images(torch.rand(5, 4), 2, seed=-1), "seed must be an integer >= 0; got -1"),
    (lambda: cluster_images(torch.rand(5, 4), 2, n_init=0),
     "n_init must be an integer >= 1; got 0"),
])
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
