"""pyvi._process_barrier and its native core (csrc/core/process_barrier.hpp) in one process: ranks
played by threads (the wait releases the GIL), a dead peer, an abort, bad arguments. The barrier
between real processes runs in tests/test_distributed.py (the shared-memory sum and step)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import numpy as np
import pytest
import torch

from pyvi import _core, distributed
from pyvi._process_barrier import ProcessBarrier


def _Group(rank: int, world_size: int) -> distributed.Group:
    return distributed.Group(rank, world_size, "gloo")


def _block() -> torch.Tensor:
    return torch.zeros(_core.barrier_words, dtype=torch.int32)


def test_barrier_opens_only_when_every_rank_arrived_and_orders_the_writes():
    """Three ranks as threads, 200 barriers: after barrier g every rank sees every rank's write of
    round g (what the sharded step relies on: slots written before, read after)."""
    block = _block()
    world, rounds = 3, 200
    seen = np.zeros((world, rounds), dtype=np.int64)
    data = np.zeros(world, dtype=np.int64)
    barriers = [ProcessBarrier(_Group(rank, world), block, [0] * world) for rank in range(world)]

    def rank_loop(rank):
        for g in range(rounds):
            data[rank] = g + 1
            barriers[rank].wait()
            seen[rank, g] = data.min()
            barriers[rank].wait()  # nobody writes round g + 1 before everyone read round g

    threads = [threading.Thread(target=rank_loop, args=(rank,)) for rank in range(world)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert np.array_equal(seen, np.tile(np.arange(1, rounds + 1), (world, 1)))


def test_a_wait_without_the_peer_returns_after_its_slice_and_an_abort_ends_it():
    words = _block().numpy()
    _core.barrier_arrive(words, 2, 0, 1)
    started = time.perf_counter()
    assert _core.barrier_wait(words, 2, 0, 1, 0.0, 0.05) == 2  # rank 1 never came
    assert 0.04 < time.perf_counter() - started < 5
    _core.barrier_abort(words)
    assert _core.barrier_wait(words, 2, 0, 1, 0.0, 10.0) == 1
    _core.barrier_arrive(words, 2, 1, 1)
    assert _core.barrier_wait(words, 2, 0, 1, 0.0, 10.0) == 0  # (everyone arrived: open, abort or not)


def test_a_peer_that_exited_ends_the_wait_with_rank_failed_error():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    barrier = ProcessBarrier(_Group(0, 2), _block(), [0, gone.pid])
    started = time.perf_counter()
    with pytest.raises(distributed.RankFailedError, match=rf"rank 1 \(process {gone.pid}\) exited"):
        barrier.wait()
    assert time.perf_counter() - started < 5


def test_a_peer_that_never_arrives_times_out(monkeypatch):
    import os

    monkeypatch.setenv("PYVI_DISTRIBUTED_TIMEOUT", "0.2")
    barrier = ProcessBarrier(_Group(0, 2), _block(), [0, os.getpid()])
    with pytest.raises(distributed.RankFailedError, match="PYVI_DISTRIBUTED_TIMEOUT"):
        barrier.wait()


def test_an_abort_of_this_process_reaches_its_barriers(monkeypatch):
    """distributed._abort (a guarded section failed) sets every live barrier's abort word."""
    block = _block()
    barrier = ProcessBarrier(_Group(0, 2), block, [0, 0])  # (held: _abort holds barriers weakly)
    monkeypatch.setattr(distributed, "_failure", None)
    distributed._abort("test")
    assert _core.barrier_wait(block.numpy(), 2, 0, 1, 0.0, 1.0) == 1
    del barrier


@pytest.mark.parametrize("call, message", [
    (lambda w: _core.barrier_arrive(w[:10], 2, 0, 1), "block must be a 1-D int32 array"),
    (lambda w: _core.barrier_arrive(w, 0, 0, 1), r"world_size must be in \[1, 64\]"),
    (lambda w: _core.barrier_arrive(w, 65, 0, 1), r"world_size must be in \[1, 64\]"),
    (lambda w: _core.barrier_arrive(w, 2, 2, 1), r"rank must be in \[0, world_size\)"),
    (lambda w: _core.barrier_wait(w, 2, 0, 1, -1.0, 1.0), "spin_seconds"),
    (lambda w: _core.barrier_wait(w, 2, 0, 1, 0.0, float("nan")), "slice_seconds"),
    (lambda w: _core.barrier_wait(w, 2, 0, 1, 0.0, 1e9), "slice_seconds"),
    (lambda w: _core.barrier_arrive(np.zeros(_core.barrier_words + 1, np.int32)[1:], 2, 0, 1), "64-byte boundary"),
])
def test_bad_barrier_arguments_are_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(_block().numpy())


def test_a_block_that_would_need_a_copy_is_refused():
    """A converted copy of the block would be a barrier nobody else sees: a TypeError, not a copy."""
    with pytest.raises(TypeError):
        _core.barrier_arrive(np.zeros(_core.barrier_words, np.int64), 2, 0, 1)
    with pytest.raises(TypeError):
        _core.barrier_arrive(np.zeros(2 * _core.barrier_words, np.int32)[::2], 2, 0, 1)
