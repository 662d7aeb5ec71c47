"""One block of memory shared by the processes of a run on one machine (a file in /dev/shm).

Data-parallel training between processes of one machine need not move its buffers through gloo's
TCP loopback: the processes map one file of a RAM file system and read each other's writes
(:mod:`pyvi._shared_sum`, :mod:`pyvi._shared_step`). Rank 0 creates the file and reserves its size
(a /dev/shm too small for it, a container's 64 MB, is an OSError here and a fall back to gloo, not a
SIGBUS in a step), every process maps it, and once every process has tried the file is unlinked:
the mappings stay and nothing is left behind.

Used when every process of the run is on this machine (torchrun's ``LOCAL_WORLD_SIZE`` equals
``WORLD_SIZE``) and ``PYVI_DISTRIBUTED_SHM`` is not ``0``; all processes agree on the answer.
"""

from __future__ import annotations

import itertools
import os
import tempfile

__all__ = ["shared_block", "wanted"]

#: Where the blocks live (a RAM file system on Linux).
SHM_DIR = "/dev/shm"
_KEYS = itertools.count()  # every process creates its blocks in the same order: the same store keys


def wanted(group) -> bool:
    """Whether this process may share memory with the others: every process of ``group`` is on this
    machine (torchrun's ``LOCAL_WORLD_SIZE``) and ``PYVI_DISTRIBUTED_SHM`` is not ``0``."""
    if os.environ.get("PYVI_DISTRIBUTED_SHM", "1") == "0" or not os.path.isdir(SHM_DIR):
        return False
    return os.environ.get("LOCAL_WORLD_SIZE") == str(group.world_size)


def shared_block(group, numel: int, dtype, *, usable: bool = True):
    """A 1-D CPU tensor of ``numel`` values of ``dtype`` that every process of ``group`` maps, or None
    on every process when any one of them cannot (or does not want to: ``usable`` False, or not
    :func:`wanted`). Every process must call it, in the same order. The contents start as zeros."""
    import torch

    local = usable and wanted(group)
    # All or none: the processes agree on whether every one of them is local.
    if int(group.all_reduce_sum_(torch.tensor([float(local)]))) != group.world_size:
        return None
    key = f"pyvi/shared_block/{next(_KEYS)}"
    path = ""
    if group.is_main:
        try:
            fd, path = tempfile.mkstemp(prefix="pyvi-block-", dir=SHM_DIR)
        except OSError:
            path = ""
        else:
            try:
                os.posix_fallocate(fd, 0, numel * torch.empty((), dtype=dtype).element_size())
            except OSError:
                os.unlink(path)
                path = ""
            finally:
                os.close(fd)
        group.store().set(key, path)
    else:
        path = group.store().get(key).decode()
    block = None
    if path:
        try:
            block = torch.from_file(path, shared=True, size=numel, dtype=dtype)
        except (OSError, RuntimeError):
            block = None
    mapped = int(group.all_reduce_sum_(torch.tensor([float(block is not None)])))  # every process has tried
    if group.is_main and path:
        os.unlink(path)
    return block if mapped == group.world_size else None
