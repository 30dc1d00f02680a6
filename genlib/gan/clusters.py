"""Self-conditioning: cluster ids found without labels, used as the classes of a conditional GAN.

An unconditional GAN can drop or under-produce part of the data (here: the digit 1) without its
loss noticing. A *self-conditioned* GAN (Liu et al. 2020, "Diverse image generation via
self-conditioned GANs") splits the training set into ``k`` clusters, trains a class-conditional
pair on the cluster ids, and samples by first drawing a cluster in proportion to its size. Each
cluster then gets its share of the samples by construction, and no human label is used. Liu et
al. cluster the discriminator's features and re-cluster during training; :func:`cluster_images`
is the simplest version: k-means on the pixels, once, before training.

- :func:`cluster_images` -> :class:`ClusterLabels` (scikit-learn's ``KMeans``, seeded)
- :class:`ClusterLabels`: the id of every training image, the cluster sizes, ``sample(n)``
  draws ids in proportion to the sizes; ``state_dict``/``load_state_dict`` for checkpoints.
"""

from __future__ import annotations

import torch

from genlib.data import check_int

__all__ = ["ClusterLabels", "cluster_images"]


class ClusterLabels:
    """Cluster ids ``labels`` ``(N,)`` (int64, in ``0..k-1``) of ``N`` training examples.

    ``sizes`` ``(k,)`` counts the members of each cluster; ``prior`` is ``sizes / N``, the
    mixture weights a self-conditioned generator samples its cluster ids from.
    """

    def __init__(self, labels: torch.Tensor, k: int) -> None:
        k = check_int("k", k, minimum=2)
        labels = torch.as_tensor(labels)
        if labels.dim() != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(f"labels must be a 1-D integer tensor, got dtype {labels.dtype} and "
                             f"shape {tuple(labels.shape)}")
        labels = labels.long()
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise ValueError(f"labels must lie in 0..{k - 1}; got values in "
                             f"{int(labels.min())}..{int(labels.max())}")
        self.k = k
        self.labels = labels.cpu()

    @property
    def sizes(self) -> torch.Tensor:
        """``(k,)`` members per cluster (int64)."""
        return torch.bincount(self.labels, minlength=self.k)

    @property
    def prior(self) -> torch.Tensor:
        """``(k,)`` cluster sizes as probabilities (float64, summing to 1)."""
        s = self.sizes.double()
        return s / s.sum()

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` cluster ids drawn independently with probabilities :attr:`prior` (int64)."""
        n = check_int("n", n, minimum=0)
        if n == 0:  # torch.multinomial refuses n = 0
            return torch.zeros(0, dtype=torch.long)
        return torch.multinomial(self.prior, n, replacement=True, generator=generator)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"labels": self.labels.clone(), "k": torch.tensor(self.k)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        other = ClusterLabels.from_state_dict(state)
        self.k, self.labels = other.k, other.labels

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> ClusterLabels:
        """The clusters saved by :meth:`state_dict` (as in a checkpoint)."""
        return cls(state["labels"], int(state["k"]))

    def __repr__(self) -> str:
        return f"ClusterLabels(k={self.k}, n={self.labels.numel()}, sizes={self.sizes.tolist()})"


def cluster_images(images: torch.Tensor, k: int, *, seed: int = 0,
                   n_init: int = 5) -> ClusterLabels:
    """k-means (scikit-learn's ``KMeans``, ``n_init`` restarts from k-means++ seeds, the
    lowest within-cluster sum of squares kept) on the flattened ``images`` ``(N, ...)``.

    The result depends only on the images, ``k``, ``seed`` and ``n_init`` (and on the
    scikit-learn version).
    """
    from sklearn.cluster import KMeans

    if not isinstance(images, torch.Tensor) or images.dim() < 2:
        raise ValueError(f"images must be a tensor (N, ...) with N >= 1, got "
                         f"{type(images).__name__} of shape "
                         f"{tuple(getattr(images, 'shape', ()))}")
    k = check_int("k", k, minimum=2)
    if k > len(images):
        raise ValueError(f"k must be at most the number of images, {len(images)}; got {k}")
    seed = check_int("seed", seed, minimum=0)
    n_init = check_int("n_init", n_init, minimum=1)
    x = images.detach().reshape(len(images), -1).double().cpu().numpy()
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)
    return ClusterLabels(torch.from_numpy(km.labels_).long(), k)
