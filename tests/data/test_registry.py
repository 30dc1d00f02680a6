"""The registry: each name loads what its entry says; bad names, splits and keywords are refused."""

import subprocess
import sys

import pytest
import torch

import genlib.data as data
from genlib.data import DATASETS, ImageData, PointData, list_datasets, load


def test_list_datasets_and_online_filter():
    names = list_datasets()
    assert names == list(DATASETS)
    expected = {"mnist5k", "digits8x8", "shapes", "toy2d-ring", "toy2d-moons", "toy2d-spiral"}
    expected |= {"toy2d-checkerboard", "mnist", "fashion-mnist", "cifar10"}
    assert expected <= set(names)
    assert list_datasets(online=True) == ["mnist", "fashion-mnist", "cifar10"]
    assert set(list_datasets(online=False)) == set(names) - {"mnist", "fashion-mnist", "cifar10"}
    for name, info in DATASETS.items():
        assert info.name == name and info.description and info.splits


@pytest.mark.parametrize("name", ["digits8x8", "shapes", "toy2d-ring", "toy2d-checkerboard"])
def test_offline_entries_load_with_the_sizes_and_shapes_they_declare(name):
    info = DATASETS[name]
    # shapes: only the 2,000-image test split at its default n (train renders 10,000 in ~1 s)
    for split in info.splits if name != "shapes" else ("test",):
        item = load(name, split)
        assert len(item) == info.sizes[split] and item.split == split and item.name == name
        if info.kind == "images":
            assert isinstance(item, ImageData) and item.shape == info.shape
        else:
            assert isinstance(item, PointData) and item.points.shape[1:] == info.shape


def test_mnist5k_through_the_registry():
    item = load("mnist5k", "test")
    assert len(item) == DATASETS["mnist5k"].sizes["test"] and item.shape == (1, 28, 28)


def test_generated_splits_use_seeds_2s_and_2s_plus_1():
    train = load("toy2d-moons", "train", n=300, seed=4)
    test = load("toy2d-moons", "test", n=300, seed=4)
    assert torch.equal(train.points, data.toy2d("moons", 300, seed=8))
    assert torch.equal(test.points, data.toy2d("moons", 300, seed=9))
    ring = load("toy2d-ring", n=10)
    assert torch.equal(ring.modes, data.toy2d_modes("ring")) and ring.mode_std == 0.05
    assert load("toy2d-spiral", n=10).modes is None
    shapes = load("shapes", "test", n=12, seed=1, size=24)
    assert shapes.split == "test" and shapes.images.shape == (12, 3, 24, 24)
    assert shapes.captions == data.shapes(12, size=24, seed=3).captions


def test_online_entries_pass_root_and_download(tmp_path):
    with pytest.raises(data.DatasetNotAvailable, match=str(tmp_path / "cifar10")):
        load("cifar10", "test", root=tmp_path, download=False)


def test_unknown_name_split_and_keyword():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist5K'; valid names: mnist5k, "):
        load("mnist5K")
    with pytest.raises(ValueError, match=r"split of digits8x8 must be one of 'train', 'val'"):
        load("digits8x8", "validation")
    with pytest.raises(TypeError, match=r"unexpected keyword\(s\) n; accepted: none"):
        load("mnist5k", n=10)
    with pytest.raises(TypeError, match=r"unexpected keyword\(s\) size; accepted: device, n, seed"):
        load("toy2d-ring", size=3)
    with pytest.raises(ValueError, match=r"n must be an integer >= 1; got 0"):
        load("toy2d-ring", n=0)


def test_import_does_no_work():
    code = (
        "import sys, genlib.data; "
        "print(sorted(m for m in ('sklearn', 'mlxtend') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
