"""Ctrl-C for a long Numba call that runs as one piece (the k-NN estimator): the twin of
csrc/core/interrupt.hpp.

The work runs on a worker thread (its kernels compiled with ``nogil=True``), with the caller's
Numba thread count (which is per thread). The calling thread only waits, so a KeyboardInterrupt
reaches it at once; it then sets the work's stop flag, which the kernels' parallel loops check
before each item (they skip what is left), waits for the worker, and re-raises.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import numba
import numpy as np

from pyvi._numba.threads import num_threads

__all__ = ["run_interruptible", "POLL_SECONDS"]

#: How often the waiting thread wakes (Python runs signal handlers between waits).
POLL_SECONDS = 0.05

T = TypeVar("T")


def run_interruptible(work: Callable[[], T], stop: np.ndarray, small: bool) -> T:
    """``work()`` on a worker thread that Ctrl-C stops through ``stop`` (a 1-element bool array
    the work's kernels check), or here when ``small`` (too short to need a thread)."""
    if small:
        return work()
    threads = numba.get_num_threads()
    outcome: dict = {}

    def target():
        try:
            with num_threads(threads):
                outcome["result"] = work()
        except BaseException as error:  # handed to the calling thread
            outcome["error"] = error

    worker = threading.Thread(target=target, name="pyvi-numba-work", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(POLL_SECONDS)
    except BaseException:  # KeyboardInterrupt, or whatever another signal handler raised
        stop[0] = True
        worker.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
