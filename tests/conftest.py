"""Shared fixtures: the homework data (skipped when ../shared is absent), the default banana, a tiny
MNIST folder in torchvision's layout."""

import gzip

import numpy as np
import pytest

from pyvi.targets import Banana
from pyvi.testing import homework_data_or_skip


@pytest.fixture(scope="session")
def homework_banana() -> Banana:
    """The course's data file, read from ../shared (never copied into the repo)."""
    return Banana.from_file(homework_data_or_skip())


@pytest.fixture(scope="session")
def default_banana() -> Banana:
    return Banana.default()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory):
    """A folder ROOT with ROOT/MNIST/raw/*-ubyte.gz: 40 training and 20 test images of noise (a VAE
    run on it takes a fraction of a second)."""
    root = tmp_path_factory.mktemp("tiny_mnist")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 20)):
        for name, array in ((f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
                            (f"{prefix}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10)):
            header = bytes([0, 0, 8, array.ndim]) + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
            with gzip.open(raw / f"{name}.gz", "wb") as handle:
                handle.write(header + array.tobytes())
    return root
