"""Online loaders on tiny files written in the real formats: parsing, checksums, the cache folder,
offline errors and the atomic download path. No test touches the network."""

import gzip
import hashlib
import io
import re
import shutil
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from genlib.data import online
from genlib.data.online import (
    SOURCES,
    ChecksumError,
    DatasetNotAvailable,
    RemoteFile,
    Source,
    cifar10,
    data_dir,
    fashion_mnist,
    fetch,
    mnist,
    parse_cifar_records,
    parse_idx,
)

MIRRORS = ("https://mirror-a.invalid/mnist/", "https://mirror-b.invalid/mnist/")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any real network access fails loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(online.urllib.request, "urlopen", refuse)


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file written from the format's definition: 0, 0, type 0x08, ndim, big-endian dims."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def remote(path: Path) -> RemoteFile:
    data = path.read_bytes()
    return RemoteFile(path.name, hashlib.sha256(data).hexdigest(), len(data))


@pytest.fixture
def idx_server(tmp_path):
    """Tiny MNIST-format files (the 'server' side) and their arrays."""
    rng = np.random.default_rng(0)
    server = tmp_path / "server"
    server.mkdir()
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 5, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 3, dtype=np.uint8),
    }
    for name, array in arrays.items():
        (server / name).write_bytes(gzip.compress(idx_bytes(array)))
    files = [remote(server / name) for name in arrays]
    return server, arrays, {"train": tuple(files[:2]), "test": tuple(files[2:])}


@pytest.fixture
def fake_mnist(monkeypatch, idx_server):
    """SOURCES['mnist'] and ['fashion-mnist'] pointed at the tiny files' checksums."""
    server, arrays, splits = idx_server
    for name in ("mnist", "fashion-mnist"):
        source = Source(folder=SOURCES[name].folder, mirrors=MIRRORS, splits=splits, homepage="")
        monkeypatch.setitem(SOURCES, name, source)
    return server, arrays


def install(server: Path, folder: Path, names=None) -> None:
    """Put the server's files in a cache folder by hand, as a user following the message would."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in server.iterdir():
        if names is None or path.name in names:
            shutil.copy(path, folder / path.name)


def test_idx_files_parse_to_the_written_pixels_and_labels(fake_mnist, tmp_path):
    server, arrays = fake_mnist
    root = tmp_path / "cache"
    install(server, root / "mnist")
    for split, prefix in (("train", "train"), ("test", "t10k")):
        data = mnist(split, root=root, download=False)
        images = arrays[f"{prefix}-images-idx3-ubyte.gz"]
        labels = arrays[f"{prefix}-labels-idx1-ubyte.gz"]
        assert data.images.shape == (len(labels), 1, 28, 28) and data.images.dtype == torch.float32
        assert torch.equal(data.int_pixels()[:, 0], torch.from_numpy(images))
        assert torch.equal(data.images[:, 0], torch.from_numpy(images).float() / 255)
        assert torch.equal(data.labels, torch.from_numpy(labels).long())
        assert data.name == "mnist" and data.split == split and data.levels == 256


def test_fashion_mnist_uses_its_own_folder_and_class_names(fake_mnist, tmp_path):
    server, arrays = fake_mnist
    install(server, tmp_path / "fashion-mnist")
    data = fashion_mnist("test", root=tmp_path, download=False)
    assert torch.equal(data.labels, torch.from_numpy(arrays["t10k-labels-idx1-ubyte.gz"]).long())
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"


def test_corrupted_cached_file_raises_a_checksum_error_and_is_kept(fake_mnist, tmp_path):
    server, _ = fake_mnist
    install(server, tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # same size, one byte changed
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"train-images-idx3-ubyte\.gz has sha256 [0-9a-f]{64}"):
        mnist("train", root=tmp_path, download=False)
    assert path.exists()  # the user's file is left for inspection
    path.write_bytes(bytes(data[:-10]))  # truncated
    with pytest.raises(ChecksumError, match=r"has [\d,]+ bytes but .* should have"):
        mnist("train", root=tmp_path, download=True)


def test_missing_files_without_download_name_the_files_urls_and_folder(fake_mnist, tmp_path):
    server, _ = fake_mnist
    install(server, tmp_path / "mnist", names={"t10k-images-idx3-ubyte.gz"})
    with pytest.raises(DatasetNotAvailable) as info:
        mnist("test", root=tmp_path, download=False)
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert "t10k-images-idx3-ubyte.gz" not in message  # only what is missing
    assert MIRRORS[0] + "t10k-labels-idx1-ubyte.gz" in message
    assert MIRRORS[1] + "t10k-labels-idx1-ubyte.gz" in message
    assert str(tmp_path / "mnist") in message
    assert not (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_cache_folder_comes_from_root_then_the_environment_then_home(
    fake_mnist, tmp_path, monkeypatch
):
    server, arrays = fake_mnist
    monkeypatch.delenv("GENLIB_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".cache" / "genlib" / "data"
    monkeypatch.setenv("GENLIB_DATA_DIR", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    install(server, tmp_path / "env" / "mnist")
    data = mnist("train", download=False)  # found through the environment variable
    assert torch.equal(data.labels, torch.from_numpy(arrays["train-labels-idx1-ubyte.gz"]).long())
    with pytest.raises(DatasetNotAvailable, match=re.escape(str(tmp_path / "explicit"))):
        mnist("train", root=tmp_path / "explicit", download=False)  # root wins


class FakeMirrors:
    """Stands in for ``online._download``: serves the local 'server' folder per mirror."""

    def __init__(self, server: Path, behaviour: dict[str, str]):
        self.server, self.behaviour, self.calls = server, behaviour, []

    def __call__(self, url: str, dest: Path) -> None:
        self.calls.append(url)
        mirror, name = url.rsplit("/", 1)
        mode = self.behaviour.get(mirror + "/", "ok")
        data = (self.server / name).read_bytes()
        assert dest.parent.exists() and not dest.name.endswith(name)  # a temporary name
        if mode == "down":
            raise urllib.error.URLError("connection refused")
        if mode == "interrupted":
            dest.write_bytes(data[: len(data) // 2])
            raise ConnectionResetError("connection reset by peer")
        if mode == "corrupt":
            data = data[:-1] + bytes([data[-1] ^ 1])
        dest.write_bytes(data)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_download_verifies_and_renames_into_place(fake_mnist, tmp_path, monkeypatch):
    server, arrays = fake_mnist
    fake = FakeMirrors(server, {})
    monkeypatch.setattr(online, "_download", fake)
    data = mnist("train", root=tmp_path)
    folder = tmp_path / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]
    assert (folder / "train-images-idx3-ubyte.gz").read_bytes() == (
        server / "train-images-idx3-ubyte.gz"
    ).read_bytes()
    assert torch.equal(data.labels, torch.from_numpy(arrays["train-labels-idx1-ubyte.gz"]).long())
    assert fake.calls == [MIRRORS[0] + "train-images-idx3-ubyte.gz",
                          MIRRORS[0] + "train-labels-idx1-ubyte.gz"]  # fmt: skip
    mnist("train", root=tmp_path)  # cached: no second download
    assert len(fake.calls) == 2


@pytest.mark.parametrize("first", ["down", "interrupted", "corrupt"])
def test_a_failing_mirror_falls_through_to_the_next(fake_mnist, tmp_path, monkeypatch, first):
    server, _ = fake_mnist
    fake = FakeMirrors(server, {MIRRORS[0]: first})
    monkeypatch.setattr(online, "_download", fake)
    paths = fetch("mnist", "test", root=tmp_path)
    assert [p.read_bytes() for p in paths] == [(server / p.name).read_bytes() for p in paths]
    assert fake.calls[:2] == [MIRRORS[0] + paths[0].name, MIRRORS[1] + paths[0].name]
    assert leftovers(tmp_path / "mnist") == []


def test_when_every_mirror_fails_nothing_is_left_and_the_error_says_what_to_do(
    fake_mnist, tmp_path, monkeypatch
):
    server, _ = fake_mnist
    monkeypatch.setattr(
        online, "_download", FakeMirrors(server, {MIRRORS[0]: "interrupted", MIRRORS[1]: "down"})
    )
    with pytest.raises(DatasetNotAvailable) as info:
        mnist("train", root=tmp_path)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and str(tmp_path / "mnist") in message
    assert "connection refused" in message and "connection reset" in message
    assert list((tmp_path / "mnist").iterdir()) == []  # no partial or temporary file


def test_a_download_that_never_matches_its_checksum_raises_checksum_error(
    fake_mnist, tmp_path, monkeypatch
):
    server, _ = fake_mnist
    behaviour = dict.fromkeys(MIRRORS, "corrupt")
    monkeypatch.setattr(online, "_download", FakeMirrors(server, behaviour))
    with pytest.raises(ChecksumError, match="does not match its checksum"):
        mnist("test", root=tmp_path)
    assert list((tmp_path / "mnist").iterdir()) == []


def test_idx_parser_checks_magic_dimensions_and_length():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(idx_bytes(images), ndim=3), images)
    with pytest.raises(ValueError, match=r"magic 0x00000803 \(3 dimensions\); expected 0x00000801"):
        parse_idx(idx_bytes(images), ndim=1)
    with pytest.raises(ValueError, match="not an IDX file"):
        parse_idx(b"\x1f\x8b\x08\x00" + bytes(20))  # still gzipped
    with pytest.raises(ValueError, match="IDX type 0x0d"):
        parse_idx(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + bytes(4))
    with pytest.raises(ValueError, match=r"declares shape \(2, 3, 4\) \(24 values\) but holds 23"):
        parse_idx(idx_bytes(images)[:-1])


def cifar_record(label: int, image: np.ndarray) -> bytes:
    """One record as the CIFAR-10 page defines it: the label byte, then the 1,024 red values,
    the 1,024 green, the 1,024 blue, each plane row by row."""
    planes = b"".join(bytes(int(v) for v in image[c].flatten()) for c in range(3))
    return bytes([label]) + planes


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    sizes = {f"data_batch_{i}.bin": 2 for i in range(1, 6)} | {"test_batch.bin": 3}
    content, buffer = {}, io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ["batches.meta.txt", *sizes]:  # a member the loader must skip, first
            if name.endswith(".txt"):
                payload = b"airplane\nautomobile\n"
            else:
                images = rng.integers(0, 256, (sizes[name], 3, 32, 32), dtype=np.uint8)
                labels = rng.integers(0, 10, sizes[name])
                content[name] = (images, labels)
                payload = b"".join(
                    cifar_record(int(y), x) for x, y in zip(images, labels, strict=True)
                )
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    folder = tmp_path / "cifar10"
    folder.mkdir()
    archive = folder / "cifar-10-binary.tar.gz"
    archive.write_bytes(buffer.getvalue())
    entry = remote(archive)
    source = Source("cifar10", ("https://x.invalid/",), {"train": (entry,), "test": (entry,)}, "")
    monkeypatch.setitem(SOURCES, "cifar10", source)
    return tmp_path, content


def test_cifar10_binary_records_parse_to_the_written_pixels(fake_cifar):
    root, content = fake_cifar
    train = cifar10("train", root=root, download=False)
    expected = np.concatenate([content[f"data_batch_{i}.bin"][0] for i in range(1, 6)])
    labels = np.concatenate([content[f"data_batch_{i}.bin"][1] for i in range(1, 6)])
    assert train.images.shape == (10, 3, 32, 32)
    assert torch.equal(train.int_pixels(), torch.from_numpy(expected))  # batches 1..5 in order
    assert torch.equal(train.labels, torch.from_numpy(labels).long())
    test = cifar10("test", root=root, download=False)
    assert torch.equal(test.int_pixels(), torch.from_numpy(content["test_batch.bin"][0]))
    assert test.classes[0] == "airplane" and test.classes[9] == "truck"


def test_cifar_record_layout_is_label_then_channel_planes():
    record = bytes([7]) + bytes(range(256)) * 12  # 3,072 pixel bytes
    images, labels = parse_cifar_records(record * 2)
    assert labels.tolist() == [7, 7]
    flat = record[1:]
    for c, y, x in [(0, 0, 1), (1, 2, 3), (2, 31, 31)]:  # byte 1 + 1024 c + 32 y + x
        assert images[1, c, y, x] == flat[1024 * c + 32 * y + x]
    with pytest.raises(ValueError, match="not a multiple of the 3073-byte record"):
        parse_cifar_records(record[:-1])
    with pytest.raises(ValueError, match="label 10"):
        parse_cifar_records(bytes([10]) + flat)


def test_cifar_archive_without_the_batches_is_refused(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")  # the pickled version
        info.size = 4
        tar.addfile(info, io.BytesIO(b"\x80\x04N."))
    (tmp_path / "cifar10").mkdir()
    archive = tmp_path / "cifar10" / "cifar-10-binary.tar.gz"
    archive.write_bytes(buffer.getvalue())
    entry = remote(archive)
    source = Source("cifar10", ("https://x.invalid/",), {"train": (entry,), "test": (entry,)}, "")
    monkeypatch.setitem(SOURCES, "cifar10", source)
    with pytest.raises(ValueError, match="lacks cifar-10-batches-bin/test_batch.bin"):
        cifar10("test", root=tmp_path, download=False)


def test_the_real_table_is_well_formed():
    for name, source in SOURCES.items():
        assert source.mirrors and all(m.startswith(("https://", "http://")) for m in source.mirrors)
        assert all(m.endswith("/") for m in source.mirrors)
        assert set(source.splits) == {"train", "test"}, name
        for files in source.splits.values():
            for f in files:
                assert re.fullmatch(r"[0-9a-f]{64}", f.sha256) and f.size > 0
    names = {f.name for f in SOURCES["cifar10"].splits["train"]}
    assert names == {"cifar-10-binary.tar.gz"}  # the binary version, never the pickled one


def test_bad_names_and_splits():
    with pytest.raises(
        ValueError, match=r"split of mnist must be one of 'train', 'test'; got 'val'"
    ):
        mnist("val")
    with pytest.raises(ValueError, match=r"name of an online dataset must be one of .*'cifar10'"):
        fetch("svhn")
