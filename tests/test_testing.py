"""pyvi.testing: a shipped module, so it imports without pytest; its lists are pytest params."""

import subprocess
import sys


def test_testing_helpers_import_without_pytest():
    code = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("pytest", "_pytest"):
            raise ImportError("simulated: pytest not installed")
sys.meta_path.insert(0, Block())
import pyvi.testing
path = pyvi.testing.homework_data_path()
print(isinstance(pyvi.testing.cuda_available(), bool), path is None or path.is_file())
try:
    pyvi.testing.DEVICES
except ImportError as error:
    print("pytest" in str(error))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["True", "True", "True"]


def test_testing_lists_are_pytest_params():
    from pyvi.testing import DEVICES, DTYPES

    assert [p.id for p in DEVICES] == ["cpu", "cuda"] and [p.id for p in DTYPES] == ["float32", "float64"]
