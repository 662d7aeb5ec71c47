"""Backend discovery: what loaded and why not; a missing extension never breaks `import pyvi`."""

import subprocess
import sys

import pytest

import pyvi
from pyvi import _backend


def test_backends_report():
    report = pyvi.backends()
    assert set(report) == {"cpp", "torch_ops", "numba", "cuda"}
    for status in report.values():
        assert isinstance(status["available"], bool) and status["detail"]
    assert report["cpp"]["available"] and report["numba"]["available"] and report["torch_ops"]["available"]


def test_require_unknown_name():
    with pytest.raises(ValueError, match="unknown backend"):
        _backend.require("fortran")


def test_missing_extension_is_a_clear_import_error_not_an_import_failure():
    # A fresh interpreter where pyvi._core cannot be imported: `import pyvi` still works,
    # backends() says why, and asking for the backend raises an ImportError with instructions.
    code = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "pyvi._core":
            raise ImportError("simulated: extension not built")
sys.meta_path.insert(0, Block())
import pyvi
from pyvi.targets import Banana
report = pyvi.backends()
assert not report["cpp"]["available"] and "simulated" in report["cpp"]["detail"], report
try:
    pyvi.hmc.sample(Banana.default(), [1.0, 0.5], 10, 10, 0.05, 5, backend="cpp")
except ImportError as error:
    assert "pip install --no-build-isolation" in str(error), error
    print("ok")
r = pyvi.hmc.sample(Banana.default(), [1.0, 0.5], 10, 10, 0.05, 5, backend="numpy")
assert r.samples.shape == (1, 10, 2)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_lazy_submodules():
    assert "hmc" in dir(pyvi)
    with pytest.raises(AttributeError):
        pyvi.does_not_exist  # noqa: B018
