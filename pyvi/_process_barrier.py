"""A barrier for the processes of one machine, through memory they share.

pyvi's data-parallel steps between processes of one machine (:mod:`pyvi._shared_sum`,
:mod:`pyvi._shared_step`) need a barrier: "every process has written its gradients", "every shard
is updated". gloo's barrier is a one-value all-reduce over TCP loopback, ~0.2 ms on the project's
2-core machine (issue 14), and the sharded VAE step takes two per ~4 ms step. This one is a word
per process in a shared block (``csrc/core/process_barrier.hpp``): arrive, spin briefly, then
sleep on a futex; a few microseconds when the processes arrive together.

Failures never hang: the wait runs in slices of :data:`SLICE` seconds, and between slices this
process checks that its peers still live, and gives up after ``PYVI_DISTRIBUTED_TIMEOUT``. A
process that fails inside a guarded section (:meth:`pyvi.distributed.Group.guard`) sets the
block's abort word (:func:`pyvi.distributed._abort` calls every barrier's :meth:`abort`): its
peers' waits return at once and raise :class:`pyvi.distributed.RankFailedError` with its error.
"""

from __future__ import annotations

import os
import time

from pyvi import _core
from pyvi._rank_failed import RankFailedError
from pyvi._shared_memory import shared_block

__all__ = ["ProcessBarrier", "process_barrier"]

#: How long a waiter spins before it sleeps (the processes of a step arrive within ~0.1-0.5 ms).
SPIN = 2e-3
#: How often a waiter checks on its peers.
SLICE = 0.05
#: int32 words per process's cache line; the second holds its process id.
_STRIDE = 16


def process_barrier(group) -> ProcessBarrier | None:
    """A :class:`ProcessBarrier` for ``group`` when every process can map the shared block (see
    :func:`pyvi._shared_memory.shared_block`), else None on every process. Every process must call it."""
    import torch

    usable = group.world_size <= _core.barrier_max_processes
    block = shared_block(group, _core.barrier_words, torch.int32, usable=usable)
    if block is None:
        return None
    words = block.numpy()
    words[group.rank * _STRIDE + 1] = os.getpid()
    group.barrier()  # every process id is written
    return ProcessBarrier(group, block, [int(words[r * _STRIDE + 1]) for r in range(group.world_size)])


class ProcessBarrier:
    """Waits for every process of ``group`` (see the module's docstring).

    Args:
        group: the processes (:class:`pyvi.distributed.Group`).
        block: ``_core.barrier_words`` int32 values every process maps (kept alive here).
        pids: every process's id, by rank.
    """

    def __init__(self, group, block, pids: list[int]):
        self.group, self.block, self.pids = group, block, pids
        self.words = block.numpy()
        self.generation = 0
        group.on_abort(self.abort)

    def wait(self) -> None:
        """Returns once every process has called it as often as this one.

        Raises:
            pyvi.distributed.RankFailedError: a peer failed (its error), exited, or did not arrive
                within ``PYVI_DISTRIBUTED_TIMEOUT``.
        """
        self.generation = (self.generation + 1) & 0x7FFFFFFF
        world_size, rank = self.group.world_size, self.group.rank
        _core.barrier_arrive(self.words, world_size, rank, self.generation)
        timeout = self.group.timeout()
        deadline = time.monotonic() + timeout
        while True:
            status = _core.barrier_wait(self.words, world_size, rank, self.generation, SPIN, SLICE)
            if status == 0:
                return
            if status == 1:
                raise self.group.remote_failure(RuntimeError("a process aborted the shared-memory barrier"))
            for peer, pid in enumerate(self.pids):
                if peer != rank and not _alive(pid):
                    raise RankFailedError(f"rank {peer} (process {pid}) exited while the others waited at a "
                                          f"barrier", peer)
            if time.monotonic() > deadline:
                raise RankFailedError(f"rank {rank} waited {timeout:g} s (PYVI_DISTRIBUTED_TIMEOUT) at a barrier for "
                                      f"its peers")

    def abort(self) -> None:
        """Makes every process's wait, now and later, return with the failure."""
        _core.barrier_abort(self.words)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its launcher) has exited too.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
