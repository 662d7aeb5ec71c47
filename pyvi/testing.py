"""Test helpers shared by tests/ and bench/: the device and dtype lists, defined once.

CUDA cases are generated everywhere and skipped where no GPU (or no CUDA build of pyvi) exists.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from pyvi._backend import backends

__all__ = ["DEVICES", "DTYPES", "cuda_available", "homework_data_path", "homework_data_or_skip"]


def cuda_available() -> bool:
    """A GPU is visible and pyvi._C was built with CUDA."""
    return bool(backends()["cuda"]["available"])


#: Devices every op test runs on: CPU always, CUDA where available (skipped otherwise).
DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not cuda_available(), reason="no CUDA device / CUDA build")),
]
#: Floating dtypes every op supports.
DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]


def homework_data_path() -> Path | None:
    """The course's banana data (shared/data/banana_shape_data.npy beside the repo), if present.

    ``PYVI_BANANA_DATA`` overrides the location. The file is never copied into the repo.
    """
    override = os.environ.get("PYVI_BANANA_DATA")
    candidates = [Path(override)] if override else []
    root = Path(__file__).resolve().parent.parent
    candidates += [root.parent / "shared" / "data" / "banana_shape_data.npy", root / "shared" / "data" / "banana_shape_data.npy"]
    return next((path for path in candidates if path.is_file()), None)


def homework_data_or_skip() -> Path:
    """The homework data path, or skip the calling test when it is absent."""
    path = homework_data_path()
    if path is None:
        pytest.skip("the course's banana_shape_data.npy is not beside the repo (../shared/data)")
    return path
