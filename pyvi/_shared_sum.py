"""Data-parallel training's gradient sum through shared memory, for processes on one machine.

Between processes of one machine gloo's all-reduce still moves the buffer through TCP loopback:
~2 ms for the VAE's 3.2 MB of gradients on the project's 2-core machine, a third of the step it
serves (issue 14). Here every process copies its buffer into its slot of a shared-memory file,
one gloo barrier (a one-element all-reduce, ~0.2 ms) says that every slot is written, and every
process adds the slots in rank order into its own buffer.

Result: every process gets the same bits (the same additions in the same order). With two
processes it is exactly gloo's sum (a + b equals b + a in floating point); with more, the slots
are added in rank order where gloo's ring adds in another order, so the sums differ from gloo's
by float rounding (at most one rounding per addition) and are just as exact.

Two sets of slots alternate between steps: a process that runs ahead writes the other set while a
slower one still reads this one, and it cannot run two steps ahead (the next barrier waits for
the slow one), so one barrier per step is enough.

Failures never hang: the barrier is a collective of the process group, so a peer that failed
breaks it (:class:`pyvi.distributed.RankFailedError`) and one that hangs makes it time out
(``PYVI_DISTRIBUTED_TIMEOUT``). The file is unlinked as soon as every process has mapped it.

Used by :class:`pyvi.distributed.DataParallel` when every process of the run is on this machine
(torchrun's ``LOCAL_WORLD_SIZE`` equals ``WORLD_SIZE``), the buffer is on the CPU, /dev/shm has
room for the slots (2 x processes x the buffer) and ``PYVI_DISTRIBUTED_SHM`` is not ``0``;
gloo's all-reduce otherwise (across machines, and whenever any process could not map the file).
"""

from __future__ import annotations

import itertools
import os
import tempfile

__all__ = ["SharedSum", "shared_sum"]

#: Where the slots live (a RAM file system on Linux).
SHM_DIR = "/dev/shm"
_KEYS = itertools.count()  # every process creates its sums in the same order: the same store keys


def _wanted(group) -> bool:
    if os.environ.get("PYVI_DISTRIBUTED_SHM", "1") == "0" or not os.path.isdir(SHM_DIR):
        return False
    return os.environ.get("LOCAL_WORLD_SIZE") == str(group.world_size)


def shared_sum(group, buffer) -> SharedSum | None:
    """A :class:`SharedSum` for buffers shaped like ``buffer`` when every process of ``group`` is on
    this machine and could map the slots, else None (use gloo). Every process must call it (it
    agrees with the others)."""
    import torch

    local = _wanted(group) and buffer.device.type == "cpu"
    # All or none: the processes agree on whether every one of them is local (LOCAL_WORLD_SIZE).
    if int(group.all_reduce_sum_(torch.tensor([float(local)]))) != group.world_size:
        return None
    from pyvi.distributed import _store

    key = f"pyvi/shared_sum/{next(_KEYS)}"
    numel = buffer.numel()
    path = ""
    if group.is_main:
        try:
            fd, path = tempfile.mkstemp(prefix="pyvi-gradients-", dir=SHM_DIR)
        except OSError:
            path = ""
        else:
            try:
                # Reserved now, not at the first write: a /dev/shm too small for the slots (a
                # container's 64 MB) is an OSError here, and gloo, not a SIGBUS in a step.
                os.posix_fallocate(fd, 0, 2 * group.world_size * numel * buffer.element_size())
            except OSError:
                os.unlink(path)
                path = ""
            finally:
                os.close(fd)
        _store().set(key, path)
    else:
        path = _store().get(key).decode()
    slots = None
    if path:
        try:
            slots = torch.from_file(path, shared=True, size=2 * group.world_size * numel, dtype=buffer.dtype)
        except (OSError, RuntimeError):
            slots = None
    mapped = int(group.all_reduce_sum_(torch.tensor([float(slots is not None)])))  # every process has tried
    if group.is_main and path:
        os.unlink(path)  # the mappings stay; nothing is left behind
    if mapped != group.world_size:
        return None
    return SharedSum(group, slots.view(2, group.world_size, numel))


class SharedSum:
    """Sums a buffer over the processes of one machine in place (see the module's docstring).

    Args:
        group: the processes (:class:`pyvi.distributed.Group`).
        slots: ``(2, world_size, numel)``, shared by every process.
    """

    def __init__(self, group, slots):
        self.group = group
        self.slots = slots
        self.parity = 0

    def sum_(self, buffer):
        """``buffer`` replaced by its sum over the processes (the same bits on every process)."""
        import torch

        slots = self.slots[self.parity]
        self.parity ^= 1
        slots[self.group.rank].copy_(buffer.reshape(-1))
        self.group.barrier()  # every slot is written (or a peer failed: RankFailedError)
        flat = buffer.view(-1)
        torch.add(slots[0], slots[1], out=flat)
        for rank in range(2, self.group.world_size):
            flat.add_(slots[rank])
        return buffer
