"""k-NN KL estimate in 2-D: pyvi's C++ and Numba k-d trees against scipy's cKDTree (the baseline,
one worker, as the ITE toolbox computes it).

One group per (n = m, k); rows: ``cpp`` and ``numba`` with 1 and 2 threads, ``scipy`` with 1.
Each estimate runs two k-NN searches per point of x (rho in x, nu in y), so queries/s in
``extra_info`` is 2 n / median time. Trees are built inside every timed call, as in real use.

Run: ``python -m pytest bench/bench_knn_kl.py --benchmark-enable --benchmark-json=bench/knn.json``.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.conftest import size
from pyvi.divergence import knn_kl

SIZES = sorted({size(10_000, 2_000), size(100_000, 5_000), size(1_000_000, 10_000)})
ROWS = [("cpp", 1), ("cpp", 2), ("numba", 1), ("numba", 2), ("scipy", 1)]
_reference: dict[tuple[int, int], float] = {}


def _data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    return rng.normal(size=(n, 2)), rng.normal(0.5, 1.0, size=(n, 2))


@pytest.mark.parametrize(("backend", "num_threads"), ROWS, ids=[f"{b}-{w}t" for b, w in ROWS])
@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("n", SIZES)
def test_knn_kl(benchmark, n, k, backend, num_threads):
    x, y = _data(n)
    if (n, k) not in _reference:
        _reference[n, k] = knn_kl(x, y, k, backend="scipy", num_threads=1)
    # Correctness before timing (also compiles the Numba kernels): same neighbours, same estimate.
    assert knn_kl(x, y, k, backend=backend, num_threads=num_threads) == pytest.approx(_reference[n, k], rel=1e-10, abs=1e-12)
    benchmark.group = f"knn_kl 2-D n=m={n} k={k}"
    benchmark.extra_info.update(impl=f"{backend} ({num_threads} thread{'s' if num_threads > 1 else ''})",
                                n=n, m=n, d=2, k=k, num_threads=num_threads)
    if backend == "scipy":
        benchmark.extra_info["baseline"] = True
    rounds = 3 if n >= 100_000 else 7
    benchmark.pedantic(knn_kl, args=(x, y, k), kwargs=dict(backend=backend, num_threads=num_threads),
                       rounds=rounds, iterations=1)
    if benchmark.stats is not None:  # None under --benchmark-disable (bench-quick)
        benchmark.extra_info["queries_per_s"] = round(2 * n / benchmark.stats.stats.median)
