"""The compiled extensions share the process's C++ runtime, so their error messages format numbers.

On a GPU machine whose compiler linked libstdc++ statically, every op argument check that formats a
number crashed the process (SIGSEGV inside the extension's private copy of std::ostream's number
formatting); built the same way on this machine, the same checks come out truncated ("got [" and
nothing after). The guards: setup.py probes the compiler and checks the built files, and
pyvi.backends() refuses to load an extension that carries a private runtime (pyvi/_abi.py). These
tests run one formatted check per op family in a subprocess (a crash fails the test instead of the
run) and check the ELF detector on libraries built both ways.
"""

import shutil
import subprocess
import sys
import textwrap

import pytest
import torch  # noqa: F401  (pyvi._C needs torch's libraries loaded first)

from pyvi._abi import private_cxx_runtime_symbols

pytest.importorskip("pyvi._C")

# One bad call per op family; each message formats a tensor's sizes or an integer.
FORMATTED_CHECKS = textwrap.dedent(
    """
    import torch
    import pyvi.ops, pyvi.flows, pyvi.vae  # noqa: F401  (load the ops and their Python sides)
    from pyvi.vae import likelihood, sparse_linear, dense_linear, latent  # noqa: F401
    ops = torch.ops.pyvi
    d = torch.float64
    calls = {
        "banana": lambda: ops.banana_log_joint(torch.zeros(3, dtype=d), 100.0, 1.0, 1.0, 2.0, 1.0),
        "planar": lambda: ops.planar_forward(torch.zeros(3, dtype=d), torch.zeros(2, 5, dtype=d)),
        "coupling": lambda: ops.coupling_forward(torch.zeros(7, dtype=d), torch.zeros(10, dtype=d), [2, 4, 1, 1, 2.0]),
        "vae_likelihood": lambda: ops.bernoulli_log_lik(torch.zeros(7, 5), torch.zeros(7, 5), 0, False),
        "sparse_linear": lambda: ops.sparse_linear(torch.zeros(7), torch.zeros(4, 7), torch.zeros(4), True),
        "dense_linear": lambda: ops.dense_linear(torch.zeros(7), torch.zeros(4, 7), torch.zeros(4)),
        "gaussian_latent": lambda: ops.gaussian_latent(torch.zeros(7), torch.zeros(2, 7), torch.zeros(2),
                                                     torch.zeros(2, 7), torch.zeros(2), torch.zeros(3, 2)),
    }
    for family, call in calls.items():
        try:
            call()
        except (ValueError, TypeError, RuntimeError) as error:
            print(family, "|", str(error).splitlines()[0])
        else:
            print(family, "| no error")
    """
)


def test_formatted_op_errors_do_not_crash_and_show_their_numbers():
    out = subprocess.run([sys.executable, "-c", FORMATTED_CHECKS], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"the process died (rc {out.returncode}) formatting an op error:\n{out.stderr[-3000:]}"
    messages = dict(line.split(" | ", 1) for line in out.stdout.strip().splitlines())
    assert set(messages) == {"banana", "planar", "coupling", "vae_likelihood", "sparse_linear", "dense_linear",
                             "gaussian_latent"}, out.stdout
    for family, message in messages.items():
        # "got [7]" (sizes) or "got 7": the formatted number must be there, not cut off after "got [".
        assert "got [" in message or "got " in message, (family, message)
        assert any(ch.isdigit() for ch in message.split("got", 1)[1]), (family, message)


@pytest.mark.skipif(shutil.which("g++") is None or sys.platform != "linux", reason="needs g++ on Linux")
@pytest.mark.parametrize("static", [False, True], ids=["shared-runtime", "static-runtime"])
def test_detector_on_libraries_built_both_ways(tmp_path, static):
    source = tmp_path / "probe.cpp"
    source.write_text("#include <sstream>\n#include <string>\n"
                      "std::string f(long v) { std::ostringstream s; s << v; return s.str(); }\n")
    library = tmp_path / "probe.so"
    flags = ["-static-libstdc++"] if static else []
    subprocess.run(["g++", "-O2", "-shared", "-fPIC", str(source), *flags, "-o", str(library)], check=True)
    symbols = private_cxx_runtime_symbols(library)
    assert bool(symbols) == static, symbols[:5]


def test_installed_extensions_share_the_runtime():
    import importlib.util

    for name in ("pyvi._core", "pyvi._C"):
        origin = importlib.util.find_spec(name).origin
        assert private_cxx_runtime_symbols(origin) == [], f"{name} carries a private C++ runtime"


def test_backends_refuse_a_broken_build():
    # A build with a private runtime is reported (with the fix) and never imported.
    code = textwrap.dedent(
        """
        import pyvi._abi
        pyvi._abi.private_cxx_runtime_symbols = lambda path: ["_ZNSo9_M_insertIlEERSoT_"]
        import pyvi
        from pyvi._backend import require
        report = pyvi.backends()
        assert not report["torch_ops"]["available"], report
        assert "broken build" in report["torch_ops"]["detail"] and "CXX=" in report["torch_ops"]["detail"], report
        import sys
        assert "pyvi._C" not in sys.modules
        try:
            require("torch_ops")
        except ImportError as error:
            assert "libstdc++" in str(error), error
            print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"
