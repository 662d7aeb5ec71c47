"""Build pyvi's two native extensions.

- ``pyvi._core``: torch-free C++17 (pybind11, numpy in/out), ``-O3``, OpenMP where the compiler
  has it. Sources: ``csrc/core/*.cpp``.
- ``pyvi._C``: torch custom ops (C++20). Sources are found by name, as in pytorch_scatter: one unit
  per op, ``csrc/torch/<op>.cpp`` (schema, checks, config, autograd, registration) and
  ``csrc/torch/cpu/<op>_cpu.cpp`` (CPU kernels) always, ``csrc/torch/cuda/<op>_cuda.cu`` (CUDA
  kernels) when CUDA is built; ``csrc/torch/module.cpp`` is the module. Adding an op means adding
  its files there; nothing here changes.

CUDA: built when nvcc and a CUDA build of torch with the same major version are found. Set
``PYVI_CUDA=1`` to require it (the build fails if it cannot), ``PYVI_CUDA=0`` to skip it. With no
GPU visible, ``TORCH_CUDA_ARCH_LIST`` defaults to ``8.0;9.0+PTX``.

torch must be installed first and the build run without isolation, so that the extension is built
against the torch you run with::

    pip install --no-build-isolation -e .

C++ runtime: both extensions must use the libstdc++ that the process (torch) loads. A toolchain that
links libstdc++ statically gives the extension private copies of the stream and locale code, and
every error message that formats a number then crashes or comes out truncated (pyvi/_abi.py). Before
building, a probe library is compiled with the same compiler; if it carries such copies, the
libstdc++ this Python process loaded is put on the link line (which removes them), and if that does
not help the build stops with instructions. After building, the extensions themselves are checked.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pybind11
from setuptools import Extension, setup

ROOT = Path(__file__).parent.resolve()


def locate_cuda_home() -> None:
    """Sets CUDA_HOME to a full toolkit when it is unset: torch would otherwise take the parent of
    whatever `nvcc` is on PATH, which is wrong for a wrapper script in /usr/local/bin."""
    if os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH"):
        return
    nvcc = shutil.which("nvcc")
    candidates = ([Path(nvcc).resolve().parent.parent] if nvcc else []) + [Path("/usr/local/cuda")]
    for home in candidates:
        if (home / "bin" / "nvcc").exists() and (home / "include" / "cuda_runtime.h").exists():
            os.environ["CUDA_HOME"] = str(home)
            return


locate_cuda_home()
import torch  # noqa: E402  (after CUDA_HOME is settled: torch reads it at import)
from torch.utils import cpp_extension  # noqa: E402


def compiler_accepts(flag: str) -> bool:
    """Whether the C++ compiler builds and links a trivial program with ``flag``."""
    compiler = os.environ.get("CXX", "c++")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "probe.cpp")
        source.write_text("#include <omp.h>\nint main() { return omp_get_max_threads() > 0 ? 0 : 1; }\n")
        try:
            result = subprocess.run(
                [compiler, flag, str(source), "-o", str(Path(tmp, "probe"))],
                capture_output=True,
                check=False,
            )
        except OSError:
            return False
        return result.returncode == 0


def _abi_module():
    """pyvi/_abi.py loaded from the source tree (the package itself is not importable yet)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_pyvi_abi", ROOT / "pyvi" / "_abi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loaded_cxx_runtime() -> str | None:
    """Path of the libstdc++ this process has mapped (torch loaded it), on Linux; else None."""
    try:
        maps = Path("/proc/self/maps").read_text().split("\n")
    except OSError:
        return None
    for line in maps:
        path = line.split()[-1] if line.strip() else ""
        if "/libstdc++.so" in path and Path(path).exists():
            return path
    return None


def cxx_runtime_link_args() -> tuple[list[str], str]:
    """(extra link arguments, what was decided) so that the extensions share the process's libstdc++.

    Compiles and links a probe library that formats a number into a std::ostringstream with the
    compiler torch's build uses (CXX, else c++) and looks for private C++-runtime symbols in it.
    """
    abi = _abi_module()
    compiler = os.environ.get("CXX", "c++")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "probe.cpp")
        source.write_text("#include <sstream>\n#include <string>\n"
                          "std::string pyvi_probe(long v) { std::ostringstream s; s << v; return s.str(); }\n")

        def private_symbols(extra: list[str]) -> list[str] | None:
            library = Path(tmp, "probe.so")
            try:
                result = subprocess.run([compiler, "-O2", "-std=c++17", "-shared", "-fPIC", str(source), *extra,
                                         "-o", str(library)], capture_output=True, check=False)
            except OSError:
                return None
            return abi.private_cxx_runtime_symbols(library) if result.returncode == 0 else None

        symbols = private_symbols([])
        if symbols is None:
            return [], f"C++ runtime probe could not run {compiler}; not checked before the build"
        if not symbols:
            return [], "C++ runtime shared with the process"
        runtime = loaded_cxx_runtime()
        if runtime is not None and private_symbols([runtime]) == []:
            return [runtime], f"{compiler} links libstdc++ statically; linked against the process's {runtime} instead"
    raise RuntimeError(
        f"the C++ compiler {compiler!r} links its own copy of libstdc++ into shared libraries (e.g. it defines "
        f"{symbols[0]}), and linking against the process's libstdc++ ({runtime}) did not avoid that. pyvi's "
        "extensions built this way crash on their first error message. Build with a compiler that links "
        "libstdc++ dynamically, e.g. `CXX=/usr/bin/g++ pip install --no-build-isolation -e .`")


def check_built_runtime(paths: list[str]) -> None:
    """Stops the build when a built extension still carries private C++-runtime code (pyvi/_abi.py)."""
    abi = _abi_module()
    for path in paths:
        symbols = abi.private_cxx_runtime_symbols(path)
        if symbols:
            raise RuntimeError(f"{path}: {abi.REBUILD_HINT} (it defines {len(symbols)} such symbols, e.g. {symbols[0]})")


def cuda_decision() -> tuple[bool, str]:
    """(build CUDA?, why) from PYVI_CUDA, nvcc and torch's CUDA version."""
    request = os.environ.get("PYVI_CUDA", "").strip()
    if request == "0":
        return False, "skipped: PYVI_CUDA=0"
    problems = []
    # torch itself rejects an nvcc whose major version differs from torch.version.cuda.
    cuda_home = cpp_extension.CUDA_HOME
    if cuda_home is None or shutil.which("nvcc", path=str(Path(cuda_home, "bin"))) is None:
        problems.append("nvcc not found (set CUDA_HOME or put nvcc on PATH)")
    if torch.version.cuda is None:
        problems.append(f"torch {torch.__version__} is not a CUDA build")
    if problems:
        if request == "1":
            raise RuntimeError("PYVI_CUDA=1 but CUDA cannot be built: " + "; ".join(problems))
        return False, "skipped: " + "; ".join(problems)
    return True, f"built with CUDA {torch.version.cuda} (nvcc at {cpp_extension.CUDA_HOME})"


def pip_cuda_include_dirs() -> list[str]:
    """Headers of the pip-installed NVIDIA libraries (cuSPARSE, cuBLAS, ...) that torch's CUDA
    headers include, for toolkits that ship only the compiler and runtime."""
    if Path(cpp_extension.CUDA_HOME or "/nonexistent", "include", "cusparse.h").exists():
        return []
    try:
        import nvidia
    except ImportError:
        return []
    return sorted(str(path) for base in nvidia.__path__ for path in Path(base).glob("*/include") if path.is_dir())


def core_extension(openmp: bool, runtime_link: list[str]) -> Extension:
    flags = ["-O3", "-std=c++17", "-fvisibility=hidden"]
    return Extension(
        "pyvi._core",
        sources=sorted(glob.glob("csrc/core/*.cpp")),
        include_dirs=[pybind11.get_include()],
        extra_compile_args=flags + (["-fopenmp"] if openmp else []),
        extra_link_args=(["-fopenmp"] if openmp else []) + runtime_link,
        language="c++",
    )


def torch_extension(with_cuda: bool, openmp: bool, runtime_link: list[str]) -> Extension:
    sources = sorted(glob.glob("csrc/torch/*.cpp") + glob.glob("csrc/torch/cpu/*.cpp"))
    cxx = ["-O3", "-std=c++20"] + (["-fopenmp"] if openmp else [])
    link = (["-fopenmp"] if openmp else []) + runtime_link
    if not with_cuda:
        return cpp_extension.CppExtension(
            "pyvi._C", sources, extra_compile_args={"cxx": cxx}, extra_link_args=link
        )
    if "TORCH_CUDA_ARCH_LIST" not in os.environ and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = "8.0;9.0+PTX"
    return cpp_extension.CUDAExtension(
        "pyvi._C",
        sources + sorted(glob.glob("csrc/torch/cuda/*.cu")),
        define_macros=[("PYVI_WITH_CUDA", None)],
        include_dirs=pip_cuda_include_dirs(),
        extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "-std=c++20"]},
        extra_link_args=link,
    )


def main() -> None:
    os.chdir(ROOT)
    openmp = compiler_accepts("-fopenmp")
    with_cuda, cuda_reason = cuda_decision()
    torch_openmp = openmp and torch.backends.openmp.is_available()
    runtime_link, runtime_reason = cxx_runtime_link_args()
    extensions = [core_extension(openmp, runtime_link),
                  torch_extension(with_cuda, torch_openmp, runtime_link)]  # sets the arch list
    # Read at run time by pyvi.backends() to say why a backend is missing.
    (ROOT / "pyvi" / "_build.json").write_text(
        json.dumps(
            {
                "cuda": with_cuda,
                "cuda_reason": cuda_reason,
                "cuda_arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST") if with_cuda else None,
                "openmp": openmp,
                "cxx_runtime": runtime_reason,
                "torch": torch.__version__,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"pyvi build: OpenMP {'on' if openmp else 'off'}; CUDA {cuda_reason}; {runtime_reason}")

    class BuildExtension(cpp_extension.BuildExtension):
        def build_extensions(self) -> None:
            super().build_extensions()
            check_built_runtime([self.get_ext_fullpath(extension.name) for extension in self.extensions])

    setup(ext_modules=extensions, cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)})


main()
