"""The layers: the library never imports the application, and pyvi.data never reaches pyvi.vae.

The application is ``pyvi.app`` (the ``pyvi`` command line, the report pipeline, its plots and its
HTML page); the library is every other module under pyvi/, except ``pyvi.__main__``, the
``python -m pyvi`` front door, which starts the application. The scans read the source (AST), so
imports inside functions count as much as those at the top of a file; the subprocess checks catch
imports made at run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import pyvi

PACKAGE = Path(pyvi.__file__).resolve().parent
APPLICATION = "pyvi.app"
#: Front doors that may start the application.
ENTRY_POINTS = {"pyvi.__main__"}
#: What only the application needs: a library module importing one of these is application code
#: in the wrong place (figures belong to the report, argument parsing to the command line).
APPLICATION_TOOLS = ("matplotlib", "argparse")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _imports(path: Path) -> set[str]:
    """Every module the file imports, anywhere in it, as absolute names (``from a import b`` gives
    ``a`` and ``a.b``: b may be a submodule)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _library() -> dict[str, Path]:
    return {name: path for name, path in _modules().items()
            if not _within(name, APPLICATION) and name not in ENTRY_POINTS}


def _reachable(start: str) -> set[str]:
    """The pyvi modules that importing ``start`` can import, following every import in the source
    (including those inside functions) and the parent packages each import runs."""
    modules = _modules()
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in modules:
            continue
        seen.add(name)
        for imported in _imports(modules[name]):
            parts = imported.split(".")
            todo += [".".join(parts[:k]) for k in range(1, len(parts) + 1)]
    return seen


def test_the_application_is_its_own_subpackage():
    assert (PACKAGE / "app" / "__init__.py").is_file()
    for name in ("cli", "report", "plots", "pipeline"):  # the application modules, nowhere else
        assert not (PACKAGE / f"{name}.py").exists() and not (PACKAGE / name).exists(), name


def test_library_never_imports_the_application():
    library = _library()
    assert {"pyvi.data", "pyvi.hmc", "pyvi.vi", "pyvi.vae.model", "pyvi.vae.train"} <= set(library)
    offenders = {name: sorted(m for m in _imports(path) if _within(m, APPLICATION))
                 for name, path in library.items()}
    assert not {name: found for name, found in offenders.items() if found}


def test_library_uses_no_application_tools():
    offenders = {name: sorted(m for m in _imports(path) if any(_within(m, tool) for tool in APPLICATION_TOOLS))
                 for name, path in _library().items()}
    assert not {name: found for name, found in offenders.items() if found}


def test_data_does_not_import_vae():
    reachable = _reachable("pyvi.data")
    assert "pyvi._validate" in reachable  # the scan follows data's imports
    assert not {name for name in reachable if _within(name, "pyvi.vae") or _within(name, APPLICATION)}


def test_importing_the_library_at_run_time_leaves_the_application_out():
    # Every library module imported, and dynamic binarisation run, in a fresh interpreter.
    names = sorted(_library())
    code = f"""
import importlib, sys
import torch
for name in {names!r}:
    importlib.import_module(name)
from pyvi.data import MNISTData
data = MNISTData(torch.rand(4, 784), torch.zeros(4, dtype=torch.int64), "dynamic", "synthetic", "train")
assert set(data.batch(torch.arange(4), seed=1).unique().tolist()) <= {{0.0, 1.0}}
print(sorted(name for name in sys.modules if name == {APPLICATION!r} or name.startswith({APPLICATION + "."!r})))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"


def test_data_binarises_without_importing_vae():
    code = """
import sys
import torch
from pyvi.data import MNISTData
data = MNISTData(torch.rand(4, 784), torch.zeros(4, dtype=torch.int64), "dynamic", "synthetic", "train")
data.batch(torch.arange(4), seed=1)
print(sorted(name for name in sys.modules if name == "pyvi.vae" or name.startswith("pyvi.vae.")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("old", ["cli", "pipeline", "plots", "report"])
def test_old_application_names_point_to_pyvi_app(old):
    with pytest.warns(DeprecationWarning, match=f"pyvi.{old} moved to pyvi.app.{old}"):
        module = getattr(pyvi, old)
    assert module.__name__ == f"pyvi.app.{old}"
    assert old not in pyvi.__all__ and "app" in pyvi.__all__
