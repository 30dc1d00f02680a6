"""MNIST, Fashion-MNIST and CIFAR-10, downloaded once into a cache folder and checked.

Where the files live: ``root`` if given, else the ``GENLIB_DATA_DIR`` environment variable,
else ``~/.cache/genlib/data``; each dataset has its own subfolder (``mnist/``,
``fashion-mnist/``, ``cifar10/``). See :func:`data_dir`.

What is checked: every file's size and SHA-256 against :data:`SOURCES` (the one table of URLs and
checksums) before it is used, every time. A download goes to a temporary file in the same folder,
is checked, and only then renamed into place (``os.replace``, atomic), so an interrupted or
corrupted download never leaves a file that looks valid. A cached file that fails the check
raises :class:`ChecksumError` and is left alone for you to inspect or delete.

Offline: with ``download=False``, or when no mirror answers, :class:`DatasetNotAvailable` says
which files to fetch from where and which folder to put them in. The embedded sets
(``mnist5k``, ``digits8x8``, ``shapes``, ``toy2d-*``) need no network at all.

Formats: MNIST and Fashion-MNIST are gzipped IDX files (a magic number, big-endian dimensions,
then raw bytes); CIFAR-10 is read from its *binary* version (records of 1 label byte and 3,072
pixel bytes, channel-major), never from the Python version, which is pickled and would run code
on load. Both are parsed with numpy.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genlib.data._checks import check_choice
from genlib.data.containers import ImageData

__all__ = [
    "ENV_VAR",
    "SOURCES",
    "MNIST_CLASSES",
    "FASHION_MNIST_CLASSES",
    "CIFAR10_CLASSES",
    "RemoteFile",
    "Source",
    "DatasetNotAvailable",
    "ChecksumError",
    "data_dir",
    "fetch",
    "sha256sum",
    "parse_idx",
    "parse_cifar_records",
    "mnist",
    "fashion_mnist",
    "cifar10",
]

ENV_VAR = "GENLIB_DATA_DIR"

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


class DatasetNotAvailable(RuntimeError):
    """The files of an online dataset are not in the cache and could not be downloaded."""


class ChecksumError(RuntimeError):
    """A file's size or SHA-256 differs from the one in :data:`SOURCES`."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name (in the cache folder and at every mirror), SHA-256 and
    size in bytes."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Source:
    """Where a dataset comes from: the cache subfolder, the mirrors (base URLs, tried in order)
    and the files each split needs."""

    folder: str
    mirrors: tuple[str, ...]
    splits: dict[str, tuple[RemoteFile, ...]]
    homepage: str


def _idx_files(*specs: tuple[str, str, int]) -> dict[str, tuple[RemoteFile, ...]]:
    files = [RemoteFile(*spec) for spec in specs]
    return {"train": (files[0], files[1]), "test": (files[2], files[3])}


_CIFAR10_ARCHIVE = RemoteFile(
    "cifar-10-binary.tar.gz",
    "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    170_052_171,
)

# The one table of URLs, sizes and checksums: fix them here, and only here. The SHA-256 values and
# sizes are those of the official files as published and repeated by independent projects (for
# example TensorFlow Datasets' checksum lists); each was cross-checked in several of them.
SOURCES: dict[str, Source] = {
    "mnist": Source(
        folder="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",  # PyTorch's mirror
            "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow's mirror
            "https://yann.lecun.com/exdb/mnist/",  # the original, often refuses scripts
        ),
        splits=_idx_files(
            (
                "train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                9_912_422,
            ),
            (
                "train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                28_881,
            ),
            (
                "t10k-images-idx3-ubyte.gz",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                1_648_877,
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                4_542,
            ),
        ),
        homepage="https://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": Source(
        folder="fashion-mnist",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # the official one
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        splits=_idx_files(
            (
                "train-images-idx3-ubyte.gz",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                26_421_880,
            ),
            (
                "train-labels-idx1-ubyte.gz",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                29_515,
            ),
            (
                "t10k-images-idx3-ubyte.gz",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                4_422_102,
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                5_148,
            ),
        ),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
    ),
    "cifar10": Source(
        folder="cifar10",
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        splits={"train": (_CIFAR10_ARCHIVE,), "test": (_CIFAR10_ARCHIVE,)},
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
}

_CIFAR_MEMBERS = {
    "train": tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("cifar-10-batches-bin/test_batch.bin",),
}
_CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte + R, G, B planes of 32 x 32
_IDX_DTYPES = {0x08: np.uint8}  # the only type MNIST-style files use
_TIMEOUT_S = 60.0


def data_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``root`` if given, else ``$GENLIB_DATA_DIR``, else
    ``~/.cache/genlib/data`` (``~`` expanded; the folder is not created here)."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "genlib" / "data"


def sha256sum(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, expected: RemoteFile) -> None:
    """Raise ChecksumError unless ``path`` has the size and SHA-256 of ``expected``."""
    size = path.stat().st_size
    if size != expected.size:
        raise ChecksumError(
            f"{path} has {size:,} bytes but {expected.name} should have {expected.size:,} "
            f"(sha256 {expected.sha256}): the file is incomplete or not the official one. "
            "Delete it and download it again."
        )
    got = sha256sum(path)
    if got != expected.sha256:
        raise ChecksumError(
            f"{path} has sha256 {got} but {expected.name} should have {expected.sha256} "
            "(table SOURCES in genlib/data/online.py): the file is corrupted or not the "
            "official one. Delete it and download it again."
        )


def _download(url: str, dest: Path) -> None:
    """Copy the body of ``url`` into the file ``dest`` (urllib; raises OSError on failure)."""
    request = urllib.request.Request(url, headers={"User-Agent": "genlib (python urllib)"})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response, open(dest, "wb") as f:
        while block := response.read(1 << 20):
            f.write(block)


def _missing_message(
    name: str, source: Source, folder: Path, missing: list[RemoteFile], reason: str
) -> str:
    lines = [f"Dataset {name!r} is not available: {reason}.", "Download these files:"]
    for f in missing:
        lines.append(f"  {f.name}  ({f.size:,} bytes, sha256 {f.sha256})")
        lines.extend(f"      from {mirror}{f.name}" for mirror in source.mirrors[:1])
        lines.extend(f"      or   {mirror}{f.name}" for mirror in source.mirrors[1:])
    lines += [
        f"and put them, under these names, in the folder {folder}",
        f"(or in <dir>/{source.folder} with {ENV_VAR}=<dir> set, or with root=<dir> passed).",
        "The embedded datasets (mnist5k, digits8x8, shapes, toy2d-*) work offline.",
    ]
    return "\n".join(lines)


def _download_verified(name: str, source: Source, folder: Path, remote: RemoteFile) -> None:
    """Try each mirror: download into a temporary file of ``folder``, verify, rename into place."""
    folder.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    corrupt: list[str] = []
    for mirror in source.mirrors:
        url = mirror + remote.name
        fd, tmp_name = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".part", dir=folder)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            print(f"genlib: downloading {url} -> {folder}", file=sys.stderr)
            _download(url, tmp)
            _verify(tmp, remote)
            os.replace(tmp, folder / remote.name)  # atomic within one file system
            return
        except ChecksumError as err:
            corrupt.append(f"{url}: {err}")
        except (OSError, http.client.HTTPException, ValueError) as err:  # URLError is an OSError
            errors.append(f"{url}: {err}")
        finally:
            tmp.unlink(missing_ok=True)
    if corrupt:
        raise ChecksumError(
            f"the download of {remote.name} does not match its checksum:\n" + "\n".join(corrupt)
        )
    reason = "the download failed (" + "; ".join(errors) + ")"
    raise DatasetNotAvailable(_missing_message(name, source, folder, [remote], reason))


def fetch(
    name: str,
    split: str = "train",
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> list[Path]:
    """Make sure the files of dataset ``name``'s ``split`` are in the cache and verified.

    Args:
        name: a key of :data:`SOURCES` (``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``).
        split: ``"train"`` or ``"test"``.
        root: cache folder (see :func:`data_dir`).
        download: fetch missing files; if False, raise :class:`DatasetNotAvailable` instead.

    Returns:
        The verified paths, in the order of ``SOURCES[name].splits[split]``.
    """
    check_choice("name", name, tuple(SOURCES), what="an online dataset")
    source = SOURCES[name]
    check_choice("split", split, tuple(source.splits), what=name)
    folder = data_dir(root) / source.folder
    files = source.splits[split]
    missing = [f for f in files if not (folder / f.name).is_file()]
    if missing and not download:
        raise DatasetNotAvailable(
            _missing_message(name, source, folder, missing, "download=False and files are missing")
        )
    for remote in missing:
        _download_verified(name, source, folder, remote)
    paths = [folder / f.name for f in files]
    for path, remote in zip(paths, files, strict=True):
        _verify(path, remote)
    return paths


def parse_idx(data: bytes, *, ndim: int | None = None, what: str = "IDX data") -> np.ndarray:
    """Parse an (uncompressed) IDX file: magic ``0x00 0x00 <type> <ndim>``, then ``ndim``
    big-endian uint32 dimensions, then the values in C order. Only type 0x08 (uint8) is read.

    Args:
        data: the file's bytes.
        ndim: expected number of dimensions (3 for images, 1 for labels), or None.
        what: name of the file, for error messages.

    Returns:
        uint8 array of the stored shape.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{what} is not an IDX file: magic number {data[:4].hex()!r}")
    dtype_code, dims = data[2], data[3]
    if dtype_code not in _IDX_DTYPES:
        raise ValueError(f"{what} has IDX type 0x{dtype_code:02x}; expected 0x08 (unsigned byte)")
    if ndim is not None and dims != ndim:
        raise ValueError(
            f"{what} has magic 0x{int.from_bytes(data[:4], 'big'):08x} ({dims} dimensions); "
            f"expected 0x{0x800 + ndim:08x} ({ndim} dimensions)"
        )
    header = 4 + 4 * dims
    shape = tuple(int(s) for s in np.frombuffer(data[4:header], dtype=">u4"))
    count = int(np.prod(shape)) if shape else 1
    if len(data) != header + count:
        raise ValueError(
            f"{what} declares shape {shape} ({count:,} values) but holds {len(data) - header:,}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def parse_cifar_records(data: bytes, *, what: str = "CIFAR-10 batch") -> tuple[np.ndarray, ...]:
    """Parse CIFAR-10 binary records (1 label byte, then 1,024 red, 1,024 green and 1,024 blue
    bytes, each plane row by row).

    Returns:
        images uint8 ``(N, 3, 32, 32)`` and labels int64 ``(N,)``.
    """
    if len(data) % _CIFAR_RECORD:
        raise ValueError(
            f"{what} holds {len(data):,} bytes, not a multiple of the {_CIFAR_RECORD}-byte record"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.size and labels.max() > 9:
        raise ValueError(f"{what} has label {labels.max()}; CIFAR-10 labels are 0..9")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _as_image_data(
    images: np.ndarray, labels: np.ndarray, name: str, split: str, classes: tuple[str, ...]
) -> ImageData:
    if images.ndim == 3:  # (N, H, W) grey -> (N, 1, H, W)
        images = images[:, None]
    return ImageData(
        images=torch.from_numpy(images.copy()).to(torch.float32) / 255.0,
        labels=torch.from_numpy(labels.astype(np.int64)),
        name=name,
        split=split,
        levels=256,
        classes=classes,
    )


def _load_idx_pair(
    name: str, split: str, root: str | os.PathLike[str] | None, download: bool
) -> tuple[np.ndarray, np.ndarray]:
    image_path, label_path = fetch(name, split, root=root, download=download)
    images = parse_idx(gzip.decompress(image_path.read_bytes()), ndim=3, what=str(image_path))
    labels = parse_idx(gzip.decompress(label_path.read_bytes()), ndim=1, what=str(label_path))
    if len(images) != len(labels):
        raise ValueError(
            f"{image_path} holds {len(images)} images but {label_path} {len(labels)} labels"
        )
    return images, labels


def mnist(
    split: str = "train", *, root: str | os.PathLike[str] | None = None, download: bool = True
) -> ImageData:
    """MNIST (LeCun et al. 1998): 60,000 train / 10,000 test digits, 28 x 28.

    Returns:
        ImageData, images ``(N, 1, 28, 28)`` float32 ``k / 255``, labels int64, ``levels=256``.
    """
    check_choice("split", split, ("train", "test"), what="mnist")
    images, labels = _load_idx_pair("mnist", split, root, download)
    return _as_image_data(images, labels, "mnist", split, MNIST_CLASSES)


def fashion_mnist(
    split: str = "train", *, root: str | os.PathLike[str] | None = None, download: bool = True
) -> ImageData:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 train / 10,000 test clothing images, 28 x 28.

    Returns:
        ImageData, images ``(N, 1, 28, 28)`` float32 ``k / 255``, labels int64, ``levels=256``.
    """
    check_choice("split", split, ("train", "test"), what="fashion-mnist")
    images, labels = _load_idx_pair("fashion-mnist", split, root, download)
    return _as_image_data(images, labels, "fashion-mnist", split, FASHION_MNIST_CLASSES)


def cifar10(
    split: str = "train", *, root: str | os.PathLike[str] | None = None, download: bool = True
) -> ImageData:
    """CIFAR-10 (Krizhevsky 2009) from its binary archive: 50,000 train / 10,000 test, 32 x 32 RGB.

    The batches are read straight out of the verified ``cifar-10-binary.tar.gz`` (nothing is
    extracted to disk); train is ``data_batch_1.bin`` .. ``data_batch_5.bin`` in order.

    Returns:
        ImageData, images ``(N, 3, 32, 32)`` float32 ``k / 255``, labels int64, ``levels=256``.
    """
    check_choice("split", split, ("train", "test"), what="cifar10")
    (archive,) = fetch("cifar10", split, root=root, download=download)
    wanted = _CIFAR_MEMBERS[split]
    found: dict[str, bytes] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:  # one pass over the stream: no seeking back in the gzip
            if member.name in wanted and member.isfile():
                f = tar.extractfile(member)
                if f is not None:
                    found[member.name] = f.read()
    if missing := [m for m in wanted if m not in found]:
        raise ValueError(f"{archive} lacks {', '.join(missing)}: not the CIFAR-10 binary archive")
    parts = [parse_cifar_records(found[m], what=f"{archive}:{m}") for m in wanted]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return _as_image_data(images, labels, "cifar10", split, CIFAR10_CLASSES)
