"""Test helpers for pyvi's test suite: the device and dtype lists, defined once, and the course data.

``DEVICES`` (CPU always, CUDA where a GPU and a CUDA build of pyvi exist, skipped otherwise) and
``DTYPES`` (float32, float64) are lists of ``pytest.param`` for ``pytest.mark.parametrize``. They
are built on first use, so this module imports without pytest (a shipped module must not need a
dev dependency); using them, or :func:`homework_data_or_skip`, needs pytest.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyvi._backend import backends

__all__ = ["DEVICES", "DTYPES", "cuda_available", "homework_data_path", "homework_data_or_skip"]


def cuda_available() -> bool:
    """A GPU is visible and pyvi._C was built with CUDA."""
    return bool(backends()["cuda"]["available"])


def _pytest():
    try:
        import pytest
    except ImportError as error:
        hint = "pyvi.testing's parametrize lists and skips need pytest (`pip install pytest`)"
        raise ImportError(f"{hint}: {error}") from error
    return pytest


def _devices() -> list:
    """Devices every op test runs on: CPU always, CUDA where available (skipped otherwise)."""
    pytest = _pytest()
    no_cuda = pytest.mark.skipif(not cuda_available(), reason="no CUDA device / CUDA build")
    return [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=no_cuda)]


def _dtypes() -> list:
    """Floating dtypes every op supports."""
    import torch

    pytest = _pytest()
    return [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]


_LISTS = {"DEVICES": _devices, "DTYPES": _dtypes}


def __getattr__(name: str):
    if name in _LISTS:
        value = globals()[name] = _LISTS[name]()  # built once, then an ordinary module attribute
        return value
    raise AttributeError(f"module 'pyvi.testing' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LISTS))


def homework_data_path() -> Path | None:
    """The course's banana data (shared/data/banana_shape_data.npy beside the repo), if present.

    ``PYVI_BANANA_DATA`` overrides the location. The file is never copied into the repo.
    """
    override = os.environ.get("PYVI_BANANA_DATA")
    candidates = [Path(override)] if override else []
    root = Path(__file__).resolve().parent.parent
    candidates += [root.parent / "shared" / "data" / "banana_shape_data.npy",
                   root / "shared" / "data" / "banana_shape_data.npy"]
    return next((path for path in candidates if path.is_file()), None)


def homework_data_or_skip() -> Path:
    """The homework data path, or skip the calling test when it is absent (needs pytest)."""
    path = homework_data_path()
    if path is None:
        _pytest().skip("the course's banana_shape_data.npy is not beside the repo (../shared/data)")
    return path
