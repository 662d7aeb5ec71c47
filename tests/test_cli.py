"""The command line: the HMC demo writes its files; a user error is one line and exit 2, never a
traceback, and writes nothing; a failed run removes what it created."""

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
    # 50 steps: fewer than the ELBO plot's 100-step running mean (which crashed after training).
    assert main(["banana", "--out", str(tmp_path), "--steps", "50", "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["flows"]["flows"]) == {"planar", "NICE", "RealNVP"}
    for name in ("flows_elbo.png", "flows_samples.png", "hmc_scatter.png", "index.html", "report.md", "flows.pt"):
        assert (tmp_path / name).stat().st_size > 0, name
    for scores in metrics["flows"]["flows"].values():
        assert scores["exact_kl"] > 0 and np.isfinite(scores["knn_kl_exact"])


def _pyvi(*args, cwd):
    """``python -m pyvi ARGS`` in a subprocess (a crash shows as a signal or a traceback)."""
    return subprocess.run([sys.executable, "-m", "pyvi", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_version_is_fast():
    out = subprocess.run([sys.executable, "-m", "pyvi", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().startswith("pyvi ")
    code = ("import sys; from pyvi.app.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit as exit:\n"
            "    print(exit.code, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.splitlines()[-1] == "0 False"


USER_ERRORS = [
    (["hmc", "--out", "afile"], "--out afile exists and is not a folder"),
    (["hmc", "--out", "afile/sub"], "cannot be created"),
    (["hmc", "--out", "run", "--data", "missing.npy"], "--data missing.npy"),
    (["hmc", "--out", "run", "--seed", "-1"], "--seed: must be an integer in [0, 2**64)"),
    (["banana", "--out", "run", "--threads", "0"], "--threads: must be an integer >= 1"),
    (["banana", "--out", "run", "--steps", "0"], "--steps: must be an integer >= 1"),
    (["report", "--out", "run", "--vae-epochs", "0"], "--vae-epochs: must be an integer >= 1"),
    (["report", "--out", "run", "--mnist", "no-mnist"], "MNIST train split not found"),
    (["vae", "--out", "run", "--device", "tpu"], "--device: must be cpu, cuda or cuda:N"),
    (["vae", "--out", "run", "--device", "cuda:99"], "--device cuda:99, but"),
    (["vae", "--out", "run", "--epochs", "0"], "--epochs: must be an integer >= 1"),
    (["vae", "--out", "run", "--lr", "nan"], "--lr: must be a finite number > 0"),
    (["vae", "--out", "run", "--resume", "afile"], "truncated or not a torch checkpoint"),
    (["vae", "--out", "run", "--data", "no-mnist"], "MNIST train split not found"),
]


# Runs each case of USER_ERRORS through pyvi's main in its own folder holding one file, in one
# subprocess (a crash kills it; one torch import for all): prints [status, stderr, folder listing] per case.
_ERRORS_DRIVER = """
import contextlib, io, json, os, sys
from pyvi.app.cli import main
results = []
for index, args in enumerate(json.loads(sys.argv[1])):
    os.chdir(os.path.join(sys.argv[2], str(index)))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            status = main(args)
        except SystemExit as exit:
            status = exit.code
    results.append([status, err.getvalue(), sorted(os.listdir('.')), open('afile').read()])
print(json.dumps(results))
"""


def test_user_errors_are_one_line_exit_2_and_write_nothing(tmp_path):
    for index in range(len(USER_ERRORS)):
        (tmp_path / str(index)).mkdir()
        (tmp_path / str(index) / "afile").write_text("keep me")
    cases = json.dumps([args for args, _ in USER_ERRORS])
    out = subprocess.run([sys.executable, "-c", _ERRORS_DRIVER, cases, str(tmp_path)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    for (args, message), (status, err, listing, kept) in zip(USER_ERRORS, json.loads(out.stdout), strict=True):
        assert status == 2, (args, err)
        assert err.count("\n") == 1 and err.startswith(f"pyvi {args[0]}: error: "), (args, err)
        assert message in err, (args, err)
        assert listing == ["afile"] and kept == "keep me", (args, listing)


def test_user_error_exit_status_of_the_process(tmp_path):
    """The same through ``python -m pyvi``: status 2 and one line on stderr."""
    (tmp_path / "afile").write_text("")
    for args in (["banana", "--out", "run", "--threads", "0"], ["hmc", "--out", "afile"]):
        out = _pyvi(*args, cwd=tmp_path)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr


def test_a_failed_run_removes_what_it_created(tmp_path, tiny_mnist):
    """A run that fails after the work started (the VAE diverging at a huge learning rate): exit 2,
    one line, and what it created is gone, except the checkpoint of the last finite epoch."""
    args = ["--data", str(tiny_mnist), "--epochs", "3", "--eval-images", "20", "--iwae-k", "1", "--no-progress"]
    out = _pyvi("vae", "--out", "new/deeper", "--lr", "1e10", *args, cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "diverged in epoch 1" in out.stderr and "checkpoint.pt was not written to" in out.stderr
    assert list(tmp_path.iterdir()) == []  # new/ and new/deeper/ removed
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "notes.txt").write_text("mine")
    out = _pyvi("vae", "--out", "old", "--lr", "1e6", *args, cwd=tmp_path)
    assert out.returncode == 2 and "diverged in epoch 3" in out.stderr and "holds epoch 2" in out.stderr, out.stderr
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["checkpoint.pt", "notes.txt"]
    from pyvi.vae.train import load_checkpoint

    assert load_checkpoint(tmp_path / "old" / "checkpoint.pt")["epoch"] == 2  # finite weights, else it would not load


def test_vae_command_on_a_test_set_of_fewer_than_100_images(tmp_path, tiny_mnist):
    from pyvi.app.vae_cli import main as vae_main

    assert vae_main(["--data", str(tiny_mnist), "--epochs", "1", "--out", str(tmp_path), "--eval-images", "20",
                     "--iwae-k", "1", "--no-progress"]) == 0
    assert (tmp_path / "real_digits.png").stat().st_size > 0


def test_an_interrupted_vae_run_keeps_only_its_checkpoint(tmp_path, monkeypatch, capsys, tiny_mnist):
    from pyvi.app import vae_cli

    def interrupted(args, prepared):
        (args.out / "checkpoint.pt").write_bytes(b"last finished epoch")
        (args.out / "elbo_curves.png").write_bytes(b"half a figure")
        (args.out / "sub").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(vae_cli, "run", interrupted)
    assert main(["vae", "--out", str(tmp_path / "run"), "--data", str(tiny_mnist), "--no-progress"]) == 130
    assert capsys.readouterr().err == "pyvi vae: interrupted\n"
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["checkpoint.pt"]


def test_seed_at_the_top_of_its_range(tmp_path, tiny_mnist):
    """Derived seeds (seed + k for the report's generators) wrap modulo 2**64 instead of overflowing."""
    metrics = run_hmc(tmp_path, seed=2**64 - 1, long_chains=2, long_samples=500)
    assert np.isfinite(metrics["log_evidence"])
    from pyvi.app.vae_cli import main as vae_main

    assert vae_main(["--data", str(tiny_mnist), "--epochs", "1", "--out", str(tmp_path / "vae"), "--seed",
                     str(2**64 - 1), "--iwae-k", "1", "--eval-images", "20", "--no-progress"]) == 0
    assert json.loads((tmp_path / "vae" / "metrics.json").read_text())["settings"]["seed"] == 2**64 - 1


def test_elbo_plot_with_fewer_steps_than_its_window(tmp_path):
    from pyvi.app import plots

    traces = {"short": np.linspace(-10, -5, 50), "one": np.array([-7.0]), "empty": np.array([]),
              "skipped": np.array([np.nan, -6.0, np.nan])}
    assert plots.elbo_curves(traces, -6.0, tmp_path / "elbo.png").stat().st_size > 0


def test_hmc_trace_plot_has_a_title_and_a_chain_legend(tmp_path, monkeypatch):
    from pyvi.app import plots

    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)
    plots.hmc_traces(np.zeros((3, 20, 2)), tmp_path / "trace.png")
    plots.hmc_traces(np.zeros((2, 20, 2)), tmp_path / "trace2.png", title="my title")
    default, titled = figures
    assert default._suptitle.get_text() == "HMC traces: 3 chains x 20 draws"
    assert titled._suptitle.get_text() == "my title"
    labels = [text.get_text() for text in default.axes[0].get_legend().get_texts()]
    assert labels == ["chain 1", "chain 2", "chain 3"]
