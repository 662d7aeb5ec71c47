"""A quick speed table for the report: each native kernel against its baseline, one thread, on a
workload small enough to run in seconds (``make bench`` has the full pytest-benchmark tables)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["run_quick_bench"]


def _best(fn, repeats: int = 3) -> float:
    """The fastest of ``repeats`` timed calls (after one warm-up call): seconds."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _hmc_rows(banana) -> list[dict]:
    from pyvi import hmc

    iterations = 2000

    def run(backend):
        return lambda: hmc.sample(banana, [1.0, 0.5], iterations // 2, iterations // 2, 0.05, 30,
                                  adapt_step_size=False, seed=0, backend=backend, num_threads=1, warn=False,
                                  progress=False)  # timed: no bar (a log would keep it as text)

    native = {backend: _best(run(backend)) for backend in ("cpp", "numba")}
    numpy_time = _best(run("numpy"), repeats=1)
    steps = iterations * 30
    return [{"workload": f"HMC, 1 chain, {iterations:,} iterations x L=30 (banana)", "impl": impl, "seconds": t,
             "baseline": "numpy", "baseline_seconds": numpy_time, "note": f"{t / steps * 1e9:.1f} ns per leapfrog step"}
            for impl, t in native.items()]


def _knn_rows() -> list[dict]:
    from pyvi.divergence import knn_kl

    rng = np.random.default_rng(0)
    n = 100_000
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) * 1.1
    rows = []
    try:
        import scipy  # noqa: F401

        scipy_time = _best(lambda: knn_kl(x, y, k=5, backend="scipy", num_threads=1), repeats=1)
    except ImportError:
        return rows
    for backend in ("cpp", "numba"):
        seconds = _best(lambda: knn_kl(x, y, k=5, backend=backend, num_threads=1), repeats=2)
        rows.append({"workload": f"k-NN KL, 2-D, n = m = {n:,}, k = 5", "impl": backend, "seconds": seconds,
                     "baseline": "scipy cKDTree", "baseline_seconds": scipy_time,
                     "note": f"{2 * n / seconds / 1e6:.2f} M queries/s"})
    return rows


def _flow_rows(banana) -> list[dict]:
    from pyvi import vi
    from pyvi.flows import NICE, PlanarFlow, RealNVP

    rows = []
    configs = (("planar K=5", lambda impl: PlanarFlow(num_layers=5, impl=impl, seed=0)),
               ("NICE 3 couplings, width 5", lambda impl: NICE(num_couplings=3, hidden=5, depth=3, impl=impl, seed=0)),
               ("RealNVP 5 couplings, width 5", lambda impl: RealNVP(num_couplings=5, hidden=5, depth=3, impl=impl, seed=0)))
    steps = 300
    for name, make in configs:
        times = {impl: _best(lambda: vi.fit(make(impl).double(), banana, num_steps=steps, progress=False), repeats=2)
                 for impl in ("fused", "reference")}
        rows.append({"workload": f"flow training step, {name}, batch 256, float64", "impl": "fused",
                     "seconds": times["fused"] / steps, "baseline": "pure torch", "baseline_seconds": times["reference"] / steps,
                     "note": "forward + backward + Adam"})
    return rows


def _vae_rows() -> list[dict]:
    from pyvi.vae.likelihood import bernoulli_log_likelihood

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(128, 784, generator=generator, requires_grad=True)
    x = (torch.rand(128, 784, generator=generator) < 0.3).float()

    def step(impl):
        def run():
            (grad,) = torch.autograd.grad(bernoulli_log_likelihood(logits, x, impl=impl).sum(), logits)
            return grad
        return run

    times = {impl: _best(step(impl), repeats=20) for impl in ("fused", "reference")}
    return [{"workload": "VAE Bernoulli log-likelihood, 128 x 784, forward + backward", "impl": "fused",
             "seconds": times["fused"], "baseline": "pure torch", "baseline_seconds": times["reference"], "note": "float32"}]


def run_quick_bench(out: Path, banana) -> list[dict]:
    """Times the kernels (torch and native code on one thread); writes ``bench.md`` and ``bench.json``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = _hmc_rows(banana) + _knn_rows() + _flow_rows(banana) + _vae_rows()
    finally:
        torch.set_num_threads(previous)
    for row in rows:
        row["speedup"] = row["baseline_seconds"] / row["seconds"]
    (out / "bench.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["## Speed (quick table)", "",
             "One thread, this machine, best of a few runs; the full benchmarks are `make bench` (pytest-benchmark).", "",
             "| workload | impl | time | baseline | baseline time | speed-up | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['impl']} | {r['seconds'] * 1e3:.3f} ms | {r['baseline']} | "
                     f"{r['baseline_seconds'] * 1e3:.3f} ms | {r['speedup']:.1f}x | {r['note']} |")
    lines.append("")
    (out / "bench.md").write_text("\n".join(lines))
    return rows
