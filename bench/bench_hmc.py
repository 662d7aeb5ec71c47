"""HMC speed: the homework's workload (one chain, 20,000 iterations of L = 30 leapfrog steps at
step 0.05) for cpp / numba / numpy, and 64 chains x 10,000 iterations for the native backends.

Targets (DEVELOPERS issue #2): cpp >= 1000x the numpy baseline on the seed workload; numba within
2x of cpp; cpp <= 20 ns per leapfrog step including random numbers and the accept step.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import THREADS, size

from pyvi import hmc
from pyvi.targets import Banana, LogDensity

ITERATIONS = size(20_000, 200)
CHAIN_ITERATIONS = size(10_000, 100)
L = 30
BANANA = Banana.default()


def _sufficient_statistics_numpy_target() -> LogDensity:
    """The banana as a numpy LogDensity from (n, ybar, ss): the numpy loop without the O(n) data
    sum, to separate the algorithmic saving from the compiled one."""
    num_data, mean_y, lik, prior, log_norm = BANANA.numba_target()  # banana_params of csrc/common/banana.h

    def log_density(x):
        residual = x[0] + x[1] * x[1] - mean_y
        return log_norm - 0.5 * num_data * lik * residual * residual - 0.5 * prior * (x[0] ** 2 + x[1] ** 2)

    def grad(x):
        dlik = -num_data * lik * (x[0] + x[1] * x[1] - mean_y)
        return np.array([dlik - prior * x[0], 2 * x[1] * dlik - prior * x[1]])

    return LogDensity(log_density, grad, dim=2)


def _seed_workload(target, backend):
    return hmc.sample(target, [1.0, 0.5], num_samples=ITERATIONS // 2, num_warmup=ITERATIONS // 2, step_size=0.05,
                      num_steps=L, adapt_step_size=False, seed=2022, backend=backend, num_threads=1,
                      warn=False)  # the sampler is timed, not the run checks (pyvi.hmc.checks)


def test_correctness_before_timing():
    cpp = _seed_workload(BANANA, "cpp")
    numba = _seed_workload(BANANA, "numba")
    np.testing.assert_array_equal(cpp.samples, numba.samples)
    mean, _ = BANANA.posterior_moments()
    if not size(0, 1):  # the full-size chain is long enough to check the mean
        assert abs(cpp.flat_samples().mean(axis=0)[0] - mean[0]) < 0.1


@pytest.mark.parametrize("impl", ["cpp", "numba", "numpy", "numpy-suffstats"])
def test_seed_workload(benchmark, impl):
    benchmark.group = f"hmc: seed workload, 1 chain x {ITERATIONS:,} iterations x L={L}"
    backend = "numpy" if impl.startswith("numpy") else impl
    target = _sufficient_statistics_numpy_target() if impl == "numpy-suffstats" else BANANA
    if backend == "numba":
        _seed_workload(target, backend)  # compile (cached on disk) outside the timing
    rounds = 1 if backend == "numpy" else 5
    result = benchmark.pedantic(_seed_workload, args=(target, backend), rounds=rounds, iterations=1)
    assert np.all(np.isfinite(result.samples))
    benchmark.extra_info.update(impl=impl, baseline=impl == "numpy", threads=1, leapfrog_steps=ITERATIONS * L)


@pytest.mark.parametrize("impl, threads", [("cpp", 1), ("cpp", 2), ("numba", 1), ("numba", 2)])
def test_many_chains(benchmark, impl, threads):
    benchmark.group = f"hmc: 64 chains x {CHAIN_ITERATIONS:,} iterations x L={L}"
    initial = np.random.default_rng(0).normal(size=(64, 2))

    def run():
        return hmc.sample(BANANA, initial, num_samples=CHAIN_ITERATIONS // 2, num_warmup=CHAIN_ITERATIONS // 2,
                          step_size=0.05, num_steps=L, num_chains=64, seed=1, backend=impl, num_threads=threads,
                          warn=False)

    reference = hmc.sample(BANANA, initial, num_samples=50, num_warmup=50, step_size=0.05, num_steps=L, num_chains=64,
                           seed=1, backend="cpp", num_threads=1, warn=False)
    check = hmc.sample(BANANA, initial, num_samples=50, num_warmup=50, step_size=0.05, num_steps=L, num_chains=64,
                       seed=1, backend=impl, num_threads=threads, warn=False)
    np.testing.assert_array_equal(check.samples, reference.samples)
    result = benchmark.pedantic(run, rounds=3, iterations=1)
    assert result.samples.shape == (64, CHAIN_ITERATIONS // 2, 2)
    benchmark.extra_info.update(impl=f"{impl}, {threads} thread{'s' if threads > 1 else ''}",
                                baseline=(impl, threads) == ("cpp", 1), threads=threads,
                                leapfrog_steps=64 * CHAIN_ITERATIONS * L, torch_threads=THREADS)
