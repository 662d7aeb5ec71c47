"""The command line: the HMC demo writes its files; errors are messages, not tracebacks."""

import json
import subprocess
import sys

import numpy as np

from pyvi.app.cli import main
from pyvi.app.pipeline import run_hmc


def test_run_hmc_writes_report(tmp_path):
    metrics = run_hmc(tmp_path, long_chains=2, long_samples=500)
    for name in ("hmc_scatter.png", "hmc_trace.png", "hmc.md", "hmc.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    saved = json.loads((tmp_path / "hmc.json").read_text())
    assert saved["log_evidence"] == metrics["log_evidence"]
    assert len(saved["long"]["rhat"]) == 2
    assert "exact (quadrature)" in (tmp_path / "hmc.md").read_text()


def test_report_command_with_data_file(tmp_path):
    data = tmp_path / "y.npy"
    np.save(data, np.random.default_rng(0).normal(1.0, 2.0, 50))
    assert main(["hmc", "--out", str(tmp_path / "out"), "--data", str(data)]) == 0
    assert json.loads((tmp_path / "out" / "hmc.json").read_text())["num_data"] == 50


def test_missing_data_file_is_a_clean_error(tmp_path, capsys):
    assert main(["hmc", "--out", str(tmp_path), "--data", str(tmp_path / "missing.npy")]) == 2
    assert "error" in capsys.readouterr().err


def test_python_dash_m_and_backends():
    out = subprocess.run([sys.executable, "-m", "pyvi", "backends"], capture_output=True, text=True, check=True)
    assert "cpp" in out.stdout and "numba" in out.stdout


def test_parser_does_not_import_torch():
    """Building the parser (``pyvi --help``, ``pyvi hmc ...``) must not pay torch's import."""
    code = "import sys, pyvi.app.cli; pyvi.app.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_banana_command(tmp_path):
    assert main(["banana", "--out", str(tmp_path), "--steps", "100", "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["flows"]["flows"]) == {"planar", "NICE", "RealNVP"}
    for name in ("flows_elbo.png", "flows_samples.png", "hmc_scatter.png", "index.html", "report.md", "flows.pt"):
        assert (tmp_path / name).stat().st_size > 0, name
    for scores in metrics["flows"]["flows"].values():
        assert scores["exact_kl"] > 0 and np.isfinite(scores["knn_kl_exact"])
