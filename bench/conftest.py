"""Benchmark conventions (see STYLE.md): native and baseline in one ``benchmark.group``, sizes in
``benchmark.extra_info``, correctness asserted before timing, thread counts set and reported.

``PYVI_BENCH_QUICK=1`` (CI's ``make bench-quick``) shrinks every workload so that each benchmark
runs once, untimed, in seconds.
"""

from __future__ import annotations

import os

import pytest
import torch

QUICK = os.environ.get("PYVI_BENCH_QUICK") == "1"
#: Threads for torch and the native backends unless a benchmark says otherwise: on a shared 2-core
#: machine torch with 2 threads can run 10-30x slower than with 1 when the other core is busy.
THREADS = int(os.environ.get("PYVI_BENCH_THREADS", "1"))


def size(full: int, quick: int) -> int:
    """``full`` normally, ``quick`` under PYVI_BENCH_QUICK=1."""
    return quick if QUICK else full


@pytest.fixture(autouse=True)
def _fixed_threads(benchmark):
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    benchmark.extra_info["torch_threads"] = THREADS
    yield
    torch.set_num_threads(previous)


def pytest_collection_modifyitems(config, items):
    # Benchmarks that carry their own thread count are parametrised with it; nothing to do here.
    return None
