"""pyvi.data: the embedded split, torchvision-layout folders (synthetic IDX files), errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from pyvi.data import EMBEDDED_SPLIT, MNISTData, mnist


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _fake_mnist(root: Path, *, gz: bool, n_train: int = 30, n_test: int = 10) -> dict:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        arrays[prefix] = (images, labels)
        for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            if gz:
                with gzip.open(raw / f"{name}.gz", "wb") as handle:
                    handle.write(_idx(array))
            else:
                (raw / name).write_bytes(_idx(array))
    return arrays


def test_embedded_split_is_deterministic_stratified_and_disjoint():
    train, test = mnist("embedded", "train", binarize=None), mnist("embedded", "test", binarize=None)
    assert (len(train), len(test)) == (10 * EMBEDDED_SPLIT[0], 10 * EMBEDDED_SPLIT[1])
    assert torch.equal(train.labels.bincount(), torch.full((10,), EMBEDDED_SPLIT[0]))
    assert torch.equal(test.labels.bincount(), torch.full((10,), EMBEDDED_SPLIT[1]))
    again = mnist("embedded", "train", binarize=None)
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)
    # Disjoint: no test image equals a training image of the same row content (MNIST has no duplicates).
    train_rows = {row.numpy().tobytes() for row in train.images}
    assert not any(row.numpy().tobytes() in train_rows for row in test.images)
    assert train.images.dtype == torch.float32 and 0.0 <= train.images.min() and train.images.max() <= 1.0


def test_binarisation_modes():
    dynamic = mnist("embedded", "test", binarize="dynamic")
    index = torch.arange(64)
    a, b, c = dynamic.batch(index, seed=1), dynamic.batch(index, seed=1), dynamic.batch(index, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    # Dynamic bits are Bernoulli(gray level): their mean matches the gray levels' mean.
    gray = dynamic.images[index]
    draws = torch.stack([dynamic.batch(index, seed=s) for s in range(20)])
    assert abs(draws.mean().item() - gray.mean().item()) < 0.01
    threshold = mnist("embedded", "test", binarize="threshold")
    assert torch.equal(threshold.batch(index), (gray > 0.5).float())
    with pytest.raises(ValueError, match="seed"):
        dynamic.batch(index)


def test_batches_are_a_permutation():
    data = mnist("embedded", "test", binarize=None)
    parts = list(data.batches(128, torch.Generator().manual_seed(0)))
    assert [len(p) for p in parts[:-1]] == [128] * (len(parts) - 1)
    assert torch.equal(torch.cat(parts).sort().values, torch.arange(len(data)))


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_torchvision_layout_folder_loads(tmp_path, gz):
    arrays = _fake_mnist(tmp_path, gz=gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        data = mnist(tmp_path, split, binarize=None)
        images, labels = arrays[prefix]
        assert isinstance(data, MNISTData) and len(data) == len(labels)
        np.testing.assert_array_equal(data.labels.numpy(), labels)
        np.testing.assert_allclose(data.images.numpy(), images.reshape(len(images), -1) / 255.0, rtol=1e-6)


def test_missing_folder_names_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MNIST/raw/train-images-idx3-ubyte\[\.gz\]") as info:
        mnist(tmp_path / "nowhere", "train")
    assert "never downloads" in str(info.value)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_corrupt_files_raise_value_error(tmp_path, gz):
    _fake_mnist(tmp_path, gz=gz)
    raw = tmp_path / "MNIST" / "raw"
    name = "t10k-images-idx3-ubyte" + (".gz" if gz else "")
    data = (raw / name).read_bytes()
    if gz:
        (raw / name).write_bytes(gzip.compress(gzip.decompress(data)[:-100]))
    else:
        (raw / name).write_bytes(b"garbage" + data[7:])
    with pytest.raises(ValueError, match="MNIST|IDX|truncated"):
        mnist(tmp_path, "test")


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        mnist("embedded", "validation")
    with pytest.raises(ValueError, match="binarize"):
        mnist("embedded", binarize="random")
    with pytest.raises(TypeError, match="source"):
        mnist(3)
