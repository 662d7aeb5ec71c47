"""Shared fixtures: the homework data (skipped when ../shared is absent) and the default banana."""

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
