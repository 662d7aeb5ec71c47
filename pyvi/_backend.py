"""The one place that imports pyvi's compiled modules.

A missing or broken extension never breaks ``import pyvi``: it is recorded here, and
``require(name)`` raises an ImportError that says how to build it when someone asks for it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
from functools import cache
from pathlib import Path
from types import ModuleType

__all__ = ["backends", "available", "require", "BUILD_HINT"]

BUILD_HINT = (
    "build pyvi's extensions with `pip install --no-build-isolation -e .` from a source checkout "
    "(torch, numpy and pybind11 installed first; see README)"
)


def _build_info() -> dict:
    try:
        return json.loads((Path(__file__).parent / "_build.json").read_text())
    except (OSError, ValueError):
        return {}


def _private_runtime(module_name: str) -> str | None:
    """Why the compiled module must not be loaded (it carries its own C++ runtime), or None.

    Checked on the file before importing it: such a build loads fine and then crashes the process
    at its first error message that formats a number (see pyvi/_abi.py).
    """
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".so"):
        return None
    from pyvi._abi import REBUILD_HINT, private_cxx_runtime_symbols

    symbols = private_cxx_runtime_symbols(spec.origin)
    if symbols:
        return f"refused: {Path(spec.origin).name} is a broken build: {REBUILD_HINT} (it defines {symbols[0]})"
    return None


@cache
def _load(name: str) -> tuple[ModuleType | None, str]:
    """(module or None, status line) for one of 'cpp', 'torch_ops', 'numba'."""
    try:
        if name == "cpp":
            broken = _private_runtime("pyvi._core")
            if broken:
                return None, broken
            module = importlib.import_module("pyvi._core")
            return module, "loaded" + (" (OpenMP)" if module.openmp else " (no OpenMP)")
        if name == "torch_ops":
            import torch  # noqa: F401  (the op library needs torch's symbols loaded first)

            broken = _private_runtime("pyvi._C")
            if broken:
                return None, broken
            module = importlib.import_module("pyvi._C")
            return module, "loaded"
        if name == "numba":
            if os.environ.get("NUMBA_DISABLE_JIT") == "1":
                return None, "disabled by NUMBA_DISABLE_JIT=1"
            import numba

            return numba, f"numba {numba.__version__}"
    except ImportError as error:  # the extension is missing or does not match this torch
        return None, f"not available: {error}"
    raise ValueError(f"unknown backend {name!r}")


def backends() -> dict[str, dict[str, object]]:
    """Which native backends are usable, and why not when one is not.

    Returns:
        A dict with keys ``cpp`` (``pyvi._core``), ``torch_ops`` (``pyvi._C`` on CPU), ``cuda``
        (``pyvi._C``'s CUDA kernels) and ``numba``; each maps to ``{"available": bool,
        "detail": str}``.

    Example:
        >>> sorted(backends())
        ['cpp', 'cuda', 'numba', 'torch_ops']
    """
    report = {}
    for name in ("cpp", "torch_ops", "numba"):
        module, detail = _load(name)
        report[name] = {"available": module is not None, "detail": detail}
    torch_ops, _ = _load("torch_ops")
    info = _build_info()
    if torch_ops is None:
        report["cuda"] = {"available": False, "detail": "pyvi._C did not load"}
    elif not torch_ops.with_cuda:
        report["cuda"] = {"available": False, "detail": f"pyvi._C {info.get('cuda_reason', 'built without CUDA')}"}
    else:
        import torch

        if torch.cuda.is_available():
            report["cuda"] = {"available": True, "detail": f"{torch.cuda.get_device_name()}"}
        else:
            report["cuda"] = {"available": False, "detail": "CUDA kernels built, but no GPU is visible"}
    return report


def available(name: str) -> bool:
    """Whether the module behind backend ``name`` (``"cpp"``, ``"torch_ops"``, ``"numba"``) loads."""
    return _load(name)[0] is not None


def require(name: str) -> ModuleType:
    """The module behind backend ``name``, or an ImportError that says how to get it."""
    module, detail = _load(name)
    if module is None:
        what = {"cpp": "pyvi._core", "torch_ops": "pyvi._C", "numba": "numba"}[name]
        hint = "install numba (`pip install numba`)" if name == "numba" else BUILD_HINT
        raise ImportError(f"pyvi backend {name!r} ({what}) is {detail}; {hint}")
    return module
