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
    # Every HMC backend reads the sampler's constants (and the shape of its outputs) from
    # pyvi._core, the one place they are defined, so numpy and numba HMC need it too.
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
for backend in ("cpp", "numba", "numpy"):
    try:
        pyvi.hmc.sample(Banana.default(), [1.0, 0.5], 10, 10, 0.05, 5, backend=backend)
    except ImportError as error:
        assert "pyvi._core" in str(error) and "pip install --no-build-isolation" in str(error), error
    else:
        raise AssertionError(backend)
assert Banana.default().log_prob_and_grad([1.0, 0.5])[1].shape == (2,)  # numpy targets still work
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_lazy_submodules():
    assert "hmc" in dir(pyvi)
    with pytest.raises(AttributeError):
        pyvi.does_not_exist  # noqa: B018
