"""Ctrl-C stops long native calls (issue #15 item 12): HMC on the C++ and Numba backends (run in
chunks from Python) and the k-NN estimator on both (a worker that the calling thread stops). Each
case runs in a subprocess that gets SIGINT a second into a call meant to take minutes, and must
end with a KeyboardInterrupt within a couple of seconds."""

import select
import signal
import subprocess
import sys
import time

import pytest

HMC = """
import numpy as np
from pyvi import hmc
from pyvi.targets import Banana
banana = Banana.default()
def work(size):
    return hmc.sample(banana, [1.0, 0.5], num_samples=1, num_warmup=size, step_size=0.05, num_steps=100,
                      backend=BACKEND, num_threads=1, warn=False)
"""

KNN = """
import numpy as np
from pyvi.divergence import knn_kl
rng = np.random.default_rng(0)
def work(size):
    # 16-D uniform points: a k-d tree prunes little, the search is close to n^2 distances (minutes).
    x = rng.uniform(size=(size, 16))
    return knn_kl(x, rng.uniform(size=(size, 16)), k=5, backend=BACKEND, num_threads=1)
"""

DRIVER = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # even where SIGINT was ignored
BACKEND = {backend!r}
{setup}
work({small})  # compiled (Numba) and warm, outside the timing
print("ready", flush=True)
start = time.perf_counter()
try:
    work({large})
except KeyboardInterrupt:
    print(f"interrupted {{time.perf_counter() - start:.2f}}", flush=True)
    sys.exit(0)
print("finished", flush=True)
sys.exit(3)
"""


def _interrupt(code: str, after: float = 1.0) -> float:
    """Runs ``code`` in a subprocess, sends SIGINT ``after`` seconds after it prints "ready", and
    returns the seconds from the signal to the subprocess's report that it caught the
    KeyboardInterrupt (its interpreter's shutdown afterwards is not timed: on a loaded machine
    it alone can take a second)."""
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        line = process.stdout.readline()
        assert line.strip() == "ready", (line, process.stderr.read() if process.poll() is not None else "")
        time.sleep(after)
        assert process.poll() is None, "the call ended before the signal: make it longer"
        sent = time.perf_counter()
        process.send_signal(signal.SIGINT)
        # (a bounded wait: a process that ignores the signal must fail the test, not hang it)
        assert select.select([process.stdout], [], [], 60)[0], "no KeyboardInterrupt within 60 s"
        caught = process.stdout.readline()
        latency = time.perf_counter() - sent
        out, err = process.communicate(timeout=60)
        out = caught + out
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, (process.returncode, out, err[-2000:])
    assert out.startswith("interrupted"), out
    return latency


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_ctrl_c_stops_hmc(backend):
    latency = _interrupt(DRIVER.format(backend=backend, setup=HMC, small=100, large=10**12))
    assert latency < 3.0


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_ctrl_c_stops_knn_kl(backend):
    latency = _interrupt(DRIVER.format(backend=backend, setup=KNN, small=5000, large=200_000))
    assert latency < 3.0


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_knn_kl_through_the_interruptible_path_gives_the_same_value(backend):
    """Inputs large enough for the worker thread give what a direct computation gives."""
    import numpy as np

    from pyvi.divergence import knn_kl

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40_000, 2)), rng.normal(0.5, 1.0, size=(40_000, 2))
    for workers in (1, 2):
        assert knn_kl(x, y, k=5, backend=backend, num_threads=workers) == knn_kl(x, y, k=5, backend="cpp", num_threads=1)
    # Errors raised in the worker reach the caller.
    ties = np.zeros((40_000, 2))
    with pytest.raises(ValueError, match="too many duplicates"):
        knn_kl(ties, y, k=5, backend=backend)
