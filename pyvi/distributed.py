"""Scaling out on ``torch.distributed``: which process this is, its share, the reductions, and errors.

pyvi runs data parallel under ``torchrun`` (or any launcher that sets torch's ``env://`` variables
``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), with no code change:

- :func:`pyvi.hmc.sample` splits the chains over the processes in contiguous blocks; chain c still
  draws from stream (seed, c), so rank 0 gathers exactly the single-process draws;
- :func:`pyvi.vi.fit` splits each step's batch (each process draws its share from its own stream)
  and averages the gradients before Adam;
- :func:`pyvi.vae.train` splits each global batch by rows (each process binarises its rows with the
  bits the whole batch gives them) and averages the gradients before Adam; rank 0 alone writes.

This module owns everything those three need: :func:`current` (am I under torchrun? which rank, how
many? It starts the process group on first use: gloo for CPU tensors, NCCL for CUDA tensors where
torch sees a GPU), the shares, the collectives, and :meth:`Group.guard`, which turns a failure on one
process into that failure everywhere. Outside a launcher, or with one process, :func:`current` is
None, nothing here runs and ``torch.distributed`` is never initialised: results are exactly the
single-process ones. Under a launcher every process must make the same calls with the same
arguments (as with any torch.distributed program): a call made by rank 0 alone waits for the others
until the timeout.

Errors: a process that raises inside a guarded section publishes its error in the launcher's store
and tears its process group down, which makes every peer's pending collective fail at once (gloo:
the connection is reset); the peers read the error and raise :class:`RankFailedError` naming the
rank, its exception and its traceback. Collectives also time out (``PYVI_DISTRIBUTED_TIMEOUT``
seconds, 300 by default) should a process hang without failing. After a failure the group is gone:
the processes are expected to exit.

References:
    Li et al., "PyTorch Distributed: Experiences on Accelerating Data Parallel Training", VLDB 2020,
    arXiv:2006.15704. Sergeev & Del Balso, "Horovod: fast and easy distributed deep learning in
    TensorFlow" (2018), arXiv:1802.05799 (averaging gradients by all-reduce).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import sys
import traceback
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from pyvi._rank_failed import RankFailedError

__all__ = ["Group", "DataParallel", "RankFailedError", "current", "launched", "is_main", "data_parallel",
           "entry_point", "agree", "run_chains"]

#: Store keys of the first failure (json: rank, type, message, traceback).
_FAILURE_KEY = "pyvi/failure"
#: How long a peer waits for a failed rank's published error after its collective broke.
_FAILURE_WAIT = timedelta(seconds=10)

_owned = False  # whether pyvi started the process group (and so tears it down at exit)
_failure: str | None = None  # set once a guarded section failed: the group is gone
_abort_hooks: list[weakref.WeakMethod] = []  # what _abort tells first (shared-memory barriers)


def launched() -> bool:
    """Whether a launcher (torchrun) started this process: torch's ``env://`` variables are set.
    Reads the environment only."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def _timeout() -> timedelta:
    value = os.environ.get("PYVI_DISTRIBUTED_TIMEOUT", "300")
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"PYVI_DISTRIBUTED_TIMEOUT must be a number of seconds > 0, got {value!r}")
    return timedelta(seconds=seconds)


def current() -> Group | None:
    """This process's group under a launcher with more than one process, else None.

    Starts the default process group on the first call under torchrun (backend ``"gloo"``, or
    ``"cpu:gloo,cuda:nccl"`` when torch sees a CUDA device: collectives on CPU tensors take gloo,
    on CUDA tensors NCCL; the current CUDA device becomes GPU ``LOCAL_RANK``) and tears it down at
    exit; a group the application started itself is used as it is. With one process
    (``--nproc-per-node 1``) it is None: the single-process path runs. Outside a launcher it only
    reads the environment (and asks an already imported ``torch.distributed`` whether the
    application started a group).
    """
    if _failure is not None:
        raise RuntimeError(f"pyvi's process group was torn down after a failure ({_failure}); start a new run")
    dist = sys.modules.get("torch.distributed")
    if dist is None or not (dist.is_available() and dist.is_initialized()):
        if not launched() or int(os.environ["WORLD_SIZE"]) <= 1:
            return None
        import torch
        import torch.distributed as dist

        global _owned
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available() and local_rank < torch.cuda.device_count():
            torch.cuda.set_device(local_rank)  # "cuda" is this process's own GPU (NCCL wants one each)
        dist.init_process_group(backend, timeout=_timeout())
        _owned = True
        atexit.register(_teardown)
    world_size = dist.get_world_size()
    if world_size <= 1:
        return None
    return Group(rank=dist.get_rank(), world_size=world_size, backend=str(dist.get_backend()))


def is_main() -> bool:
    """Whether this process writes the run's files: rank 0 under torchrun, always outside it."""
    group = current()
    return group is None or group.is_main


def _teardown() -> None:
    import torch.distributed as dist

    if _owned and dist.is_initialized():
        dist.destroy_process_group()


def _store():
    from torch.distributed import distributed_c10d

    return distributed_c10d._get_default_store()


def _on_abort(method: Callable[[], None]) -> None:
    """Calls ``method`` (a bound method, held weakly) when this process aborts the run: a shared-memory
    barrier's abort (pyvi._process_barrier), so that peers waiting there stop at once."""
    _abort_hooks[:] = [hook for hook in _abort_hooks if hook() is not None]  # (the collected ones go)
    _abort_hooks.append(weakref.WeakMethod(method))


def _abort(reason: str) -> None:
    """Tears the process group down (the peers' pending collectives fail at once) and remembers why."""
    global _failure
    _failure = reason
    for hook in _abort_hooks:
        method = hook()
        if method is not None:
            try:
                method()
            except Exception:  # noqa: BLE001  (the teardown below still tells the peers)
                pass
    import torch.distributed as dist

    if dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001  (already broken: nothing left to release)
            pass


@dataclass(frozen=True)
class Group:
    """The processes of one run (the default process group).

    Attributes:
        rank: this process, in [0, world_size).
        world_size: how many processes.
        backend: torch.distributed's backend (``"gloo"``, ``"cpu:gloo,cuda:nccl"``, ...).
    """

    rank: int
    world_size: int
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that gathers results and writes files."""
        return self.rank == 0

    def share(self, total: int, name: str, *, rank: int | None = None) -> range:
        """The contiguous block of ``range(total)`` that ``rank`` (default: this process) takes: the
        first ``total % world_size`` ranks take one item more.

        Raises:
            ValueError: fewer items than processes (a process would idle).

        Example:
            >>> [Group(rank, world_size=2, backend="gloo").share(5, "num_chains") for rank in (0, 1)]
            [range(0, 3), range(3, 5)]
        """
        if total < self.world_size:
            raise ValueError(f"{name}={total} is less than the number of processes ({self.world_size}): "
                             f"give every process at least one, or launch at most {total}")
        return Group(self.rank if rank is None else rank, self.world_size, self.backend).rows(total)

    def rows(self, batch_rows: int) -> range:
        """This process's contiguous rows of a batch of ``batch_rows`` split as :meth:`share` does,
        but empty when there are fewer rows than processes (an epoch's short last batch)."""
        size, extra = divmod(batch_rows, self.world_size)
        start = self.rank * size + min(self.rank, extra)
        return range(start, start + size + (self.rank < extra))

    def rank_seed(self, seed: int) -> int:
        """An independent seed for this process's share of a stream seeded with ``seed`` (numpy's
        SeedSequence of (seed, rank))."""
        return int(np.random.SeedSequence([seed, self.rank]).generate_state(1, np.uint64)[0])

    # -- collectives: each turns a broken connection into the failed rank's error -----------------

    def _collective(self, run: Callable):
        try:
            return run()
        except RuntimeError as error:  # DistBackendError and friends
            raise _remote_failure(error) from error

    def all_reduce_mean_(self, tensor):
        """Averages ``tensor`` over the processes in place (a sum, then a division: every process
        gets the same bits)."""
        import torch.distributed as dist

        self._collective(lambda: dist.all_reduce(tensor))
        return tensor.div_(self.world_size)

    def all_reduce_sum_(self, tensor):
        """Sums ``tensor`` over the processes in place."""
        import torch.distributed as dist

        self._collective(lambda: dist.all_reduce(tensor))
        return tensor

    def broadcast_(self, tensor, source: int = 0):
        """``tensor`` replaced in place by ``source``'s."""
        import torch.distributed as dist

        self._collective(lambda: dist.broadcast(tensor, source))
        return tensor

    def barrier(self) -> None:
        """Waits for every process (a collective, so it also reports a failed peer)."""
        import torch

        self.all_reduce_sum_(torch.zeros(1))

    def gather_rows(self, arrays: dict[str, np.ndarray], total: int,
                    out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray] | None:
        """Rank 0 gets each array's rows from every process, in rank order (rank r holds rows
        ``share(total, rank=r)``); the others get None. Bit for bit, any dtype. ``out`` (rank 0):
        the result's arrays, ``total`` rows each, to receive into instead of new ones; rank 0's own
        rows are not copied where its array is already their place in ``out``.

        Point to point, without staging: rank r sends each array's bytes straight from its buffer,
        and rank 0 receives them straight into rows ``share(total, rank=r)`` of its result (the
        rows of a C-ordered array are one contiguous block), while it copies its own rows in. A
        packed, padded gather cost rank 0 five times the result's size in fresh buffers (a
        staging buffer, one per process, a stacked copy, the result); on a virtual machine the
        first touch of fresh memory costs about as much as sampling the draws that fill it
        (issue 14: 64 banana chains x 5,000 draws over 2 processes sample in ~35 ms; on a loaded
        machine the packed gather took 20-30 ms more on rank 0, this one 3-12 ms).
        """
        import torch.distributed as dist

        names = [name for name in arrays if arrays[name].size]  # (an empty array sends nothing)
        timeout = _timeout()
        if not self.is_main:
            sending = [dist.isend(_as_bytes(arrays[name]), dst=0, tag=tag) for tag, name in enumerate(names)]
            self._collective(lambda: [work.wait(timeout) for work in sending])
            return None
        if out is None:
            out = {name: np.empty((total, *array.shape[1:]), array.dtype) for name, array in arrays.items()}
        else:
            for name, array in arrays.items():
                if not (name in out and out[name].dtype == array.dtype and out[name].shape == (total, *array.shape[1:])
                        and out[name].flags.c_contiguous and out[name].flags.writeable):
                    raise ValueError(f"gather_rows: out[{name!r}] must be a writeable C-ordered {array.dtype} array "
                                     f"of shape {(total, *array.shape[1:])}")
        receiving = []
        for rank in range(1, self.world_size):
            rows = self.share(total, "rows", rank=rank)
            receiving += [dist.irecv(_as_bytes(out[name][rows.start:rows.stop]), src=rank, tag=tag)
                          for tag, name in enumerate(names)]
        own = self.share(total, "rows")
        for name in names:
            place = out[name][own.start:own.stop]
            if not (place.__array_interface__["data"][0] == arrays[name].__array_interface__["data"][0]
                    and place.strides == arrays[name].strides):
                place[...] = arrays[name]
        self._collective(lambda: [work.wait(timeout) for work in receiving])
        return out

    # -- for the shared-memory modules (pyvi._shared_memory, _process_barrier), which sit below this one

    def store(self):
        """The launcher's key-value store (torch.distributed's default store)."""
        return _store()

    def timeout(self) -> float:
        """How long a wait for the other processes may last, in seconds (``PYVI_DISTRIBUTED_TIMEOUT``)."""
        return _timeout().total_seconds()

    def remote_failure(self, error: BaseException) -> RankFailedError:
        """The error to raise when waiting for the others broke: a peer's published failure, or ``error``'s."""
        return _remote_failure(error)

    @staticmethod
    def on_abort(method: Callable[[], None]) -> None:
        """Calls ``method`` (held weakly) when this process aborts the run (:func:`_on_abort`)."""
        _on_abort(method)

    # -- failures ----------------------------------------------------------------------------------

    @contextmanager
    def guard(self) -> Iterator[Group]:
        """A section every process runs together: an exception here is published to the others
        (who raise :class:`RankFailedError` from their next collective) and the group torn down."""
        try:
            yield self
        except RankFailedError as error:
            if _failure is None:
                _abort(str(error).partition("\n")[0])
            raise
        except BaseException as error:
            if _failure is None:  # (an inner guard has published it already)
                self._publish(error)
                _abort(f"rank {self.rank}: {type(error).__name__}: {error}")
            raise

    def _publish(self, error: BaseException) -> None:
        payload = json.dumps({"rank": self.rank, "type": type(error).__name__, "message": str(error),
                              "traceback": "".join(traceback.format_exception(error))})
        try:
            # The first failure wins: the error every peer reports.
            _store().compare_set(_FAILURE_KEY, "", payload)
        except Exception:  # noqa: BLE001  (no store left: the peers still see the broken connection)
            pass


def _as_bytes(array: np.ndarray):
    """``array``'s bytes as a flat uint8 tensor sharing its memory (a copy only if it is not
    C-contiguous): what a point-to-point message carries, whatever the dtype."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def _remote_failure(error: BaseException) -> RankFailedError:
    """The error to raise when a collective broke: the published failure of a peer, or (none
    published) the broken collective itself."""
    try:
        store = _store()
        store.wait([_FAILURE_KEY], _FAILURE_WAIT)
        failure = json.loads(store.get(_FAILURE_KEY))
    except Exception:  # noqa: BLE001  (no published failure: a peer died or hung)
        return RankFailedError(f"a collective failed and no process published an error (a peer may have died "
                               f"or timed out): {error}")
    return RankFailedError(f"rank {failure['rank']} failed with {failure['type']}: {failure['message']}\n"
                           f"its traceback:\n{failure['traceback']}", failure["rank"], failure["type"])


class DataParallel:
    """Data-parallel training's two duties (DDP's, by hand): every process starts from rank 0's
    parameters, and before each optimiser step every process's gradients are replaced by their sum
    over the processes, in one sum of one flat buffer.

    The caller weights each process's loss by its share of the global batch (its rows' sum divided
    by the global batch size), so the sum is the single-process gradient up to the order of the
    float additions. Every process then takes the same Adam step from the same bits (an all-reduce
    gives every process the same result), so the parameters never drift apart.

    The flat buffer is kept between steps and each ``.grad`` becomes a view of its block, laid out
    as its parameter (the fused VAE stores two weights input-major; DDP's bucket views expect
    row-major gradients): see :class:`_FlatGradients`.

    Args:
        group: the processes.
        parameters: the trained parameters (broadcast from rank 0 here).
    """

    def __init__(self, group: Group, parameters):
        import torch

        self.group = group
        self.parameters = [p for p in parameters if p.requires_grad]
        if not self.parameters:
            raise ValueError("data-parallel training needs at least one parameter that requires a gradient")
        with torch.no_grad():
            for parameter in self.parameters:
                group.broadcast_(parameter.data)
        self._flat: dict[int, _FlatGradients] = {}  # by the number of values summed along
        self._shared_step = None  # step_'s sharded Adam (pyvi._shared_step), once made
        self._replicated = False  # step_ found it cannot shard: sum, then step everywhere

    def rows(self, batch_rows: int) -> range:
        """This process's rows of a global batch (:meth:`Group.rows`)."""
        return self.group.rows(batch_rows)

    def sum_gradients_(self, *values, weight: float = 1.0):
        """Replaces every parameter's ``.grad`` by its sum over the processes (a missing gradient
        counts as zeros) and returns ``values`` (scalar tensors, e.g. the loss) summed the same
        way, in the same all-reduce, as a new 1-D tensor; each process's gradients and values are
        multiplied by ``weight`` first (its share of the global batch, when its loss is its
        share's mean).

        The sums land in a flat buffer kept between calls (:class:`_FlatGradients`), and each
        ``.grad`` becomes a view of it with its parameter's layout: one copy per step (the fresh
        gradients in), none back. Between processes of one machine the sum goes through shared
        memory (:mod:`pyvi._shared_sum`: the same bits as gloo's all-reduce with two processes),
        across machines through gloo's all-reduce (NCCL's for CUDA tensors)."""
        flat = self._flat.get(len(values))
        if flat is None:
            from pyvi._shared_sum import shared_sum

            flat = self._flat[len(values)] = _FlatGradients(self.parameters, len(values))
            flat.shared = shared_sum(self.group, flat.buffer)  # None: gloo's all-reduce
        summed = flat.gather_(values)
        if weight != 1.0:
            summed.mul_(weight)
        if flat.shared is not None:
            flat.shared.sum_(summed)
        else:
            self.group.all_reduce_sum_(summed)
        return flat.scatter_()

    def step_(self, optimizer) -> None:
        """Sums the gradients over the processes and steps ``optimizer`` (its parameters must be
        this object's): the same update as :meth:`sum_gradients_` followed by the optimizer's step,
        bit for bit with two processes.

        For a fused plain Adam (the VAE's) between processes of one machine the step is sharded
        (:mod:`pyvi._shared_step`, ZeRO stage 1): the parameters and moments are shared and each
        process sums and updates its own part of them; afterwards every ``.grad`` is None. Call
        :meth:`release` when training ends. Otherwise (another optimizer, several machines) the
        gradients are summed as by :meth:`sum_gradients_` and the optimizer steps in every process."""
        if self._shared_step is None and not self._replicated:
            from pyvi._shared_step import shared_step

            self._shared_step = shared_step(self.group, self.parameters, optimizer)
            self._replicated = self._shared_step is None
        if self._shared_step is not None:
            if optimizer is not self._shared_step.optimizer:
                raise ValueError("DataParallel.step_ was given another optimizer than its first one; "
                                 "call release() before training with a new one")
            self._shared_step.step_()
            return
        from pyvi._adam import fused_adam_step, supports_fused_adam_step

        self.sum_gradients_()
        if supports_fused_adam_step(optimizer):
            fused_adam_step(optimizer)
        else:
            optimizer.step()

    def release(self) -> None:
        """Ends :meth:`step_`'s sharing: the parameters and optimizer state back in each process's
        own memory (no-op when nothing is shared). Every process calls it once its last step is done."""
        if self._shared_step is not None:
            self._shared_step.release()
        self._shared_step, self._replicated = None, False


class _FlatGradients:
    """One flat buffer for a data-parallel step's all-reduce: every parameter's gradient, then
    ``num_values`` scalars, kept between steps.

    A fresh buffer per step (``torch.cat``) costs its first touch of fresh memory, a copy of each
    gradient into row-major order and one back into the gradient's own layout (issue 14: ~1.5 ms
    of a 2-process VAE step's ~8 ms, beside a 2 ms all-reduce of its 3.2 MB). Here each parameter
    owns a block of the buffer, viewed with the parameter's own strides (``empty_like``'s: the
    fused VAE's input-major weights stay input-major), so a gradient is copied in as it is laid
    out, and after the all-reduce the views become the ``.grad`` (no copy back). A gradient that
    is that view already (accumulated in place since the last step) is not copied at all. A
    parameter of another dtype or device than the first takes its sum by a copy, as before.
    """

    def __init__(self, parameters, num_values: int):
        import torch

        from pyvi._layout import laid_out_view

        self.parameters = parameters
        first = parameters[0]
        sizes = [p.numel() for p in parameters]
        self.buffer = torch.empty(sum(sizes) + num_values, dtype=first.dtype, device=first.device)
        self.views, offset = [], 0
        for parameter, size in zip(parameters, sizes):
            self.views.append(laid_out_view(self.buffer, parameter, offset))  # its layout if dense, else row-major
            offset += size
        self.values = self.buffer[offset:]
        self.shared = None  # the shared-memory sum (pyvi._shared_sum), when the processes share a machine

    def gather_(self, values):
        """The buffer, holding the current gradients and ``values``."""
        import torch

        for parameter, view in zip(self.parameters, self.views):
            grad = parameter.grad
            if grad is None:
                view.zero_()
            elif not (grad.data_ptr() == view.data_ptr() and grad.stride() == view.stride()
                      and grad.dtype == view.dtype):
                view.copy_(grad)
        for slot, value in zip(self.values, values):
            slot.copy_(torch.as_tensor(value).detach().reshape(()))
        return self.buffer

    def scatter_(self):
        """Sets every ``.grad`` to its (summed) view; returns the summed values (a copy: the
        buffer is the next step's)."""
        for parameter, view in zip(self.parameters, self.views):
            if parameter.dtype == view.dtype and parameter.device == view.device:
                parameter.grad = view
            elif parameter.grad is None:
                parameter.grad = view.to(parameter.dtype).to(parameter.device)
            else:
                parameter.grad.copy_(view)
        return self.values.clone()


def data_parallel(parameters) -> DataParallel | None:
    """A :class:`DataParallel` for ``parameters`` under torchrun with more than one process, else None."""
    group = current()
    return None if group is None else DataParallel(group, parameters)


def entry_point(function: Callable) -> Callable:
    """Runs ``function`` (a public entry point: ``hmc.sample``, ``vi.fit``, ``vae.train``) inside
    :meth:`Group.guard` under torchrun, as it is outside it."""

    @functools.wraps(function)
    def guarded(*args, **kwargs):
        group = current()
        if group is None:
            return function(*args, **kwargs)
        with group.guard():
            return function(*args, **kwargs)

    return guarded


def agree(value):
    """``value`` as rank 0 has it, on every process (a broadcast under torchrun; ``value`` itself
    outside it): what a process drew for itself, e.g. a seed from the operating system's entropy."""
    group = current()
    if group is None:
        return value
    import torch.distributed as dist

    with group.guard():
        box = [value]
        group._collective(lambda: dist.broadcast_object_list(box, src=0))
    return box[0]


def run_chains(run: Callable[..., dict[str, np.ndarray]], initial: np.ndarray,
               allocate: Callable[[int], dict[str, np.ndarray]] | None = None) -> dict[str, np.ndarray]:
    """HMC's or NUTS's chains over the processes: ``run(initial_rows, first_chain)`` samples chains
    ``first_chain ..`` (stream (seed, first_chain + c)) and returns their outputs (the
    ``pyvi._core.hmc_draws`` or ``nuts_draws`` layout: every array chains first).

    Outside torchrun: ``run(initial, 0)``. Under it: each process runs its block of chains
    (:meth:`Group.share`), rank 0 returns every chain's outputs in order, identical to one process's,
    and rank r > 0 its own block's.

    With ``allocate(num_chains)`` (every chain's outputs, uninitialised) rank 0 makes the result
    first and samples its block straight into its first rows, ``run(initial_rows, 0, out)`` with
    ``out`` those rows (C-ordered views): the others' rows are received into the rest, and rank 0
    neither holds its block twice nor copies it (issue 14: for 64 banana chains of 75,000 draws
    its block is 89 MB, and on a virtual machine the first touch of fresh memory costs more than
    the copy).

    Raises:
        ValueError: fewer chains than processes.
    """
    group = current()
    if group is None:
        return run(initial, 0)
    with group.guard():
        num_chains = initial.shape[0]
        chains = group.share(num_chains, "num_chains")
        rows = np.ascontiguousarray(initial[chains.start:chains.stop])
        result = allocate(num_chains) if allocate is not None and group.is_main else None
        if result is None:
            draws = run(rows, chains.start)
        else:  # (rank 0's block is the result's first rows)
            draws = run(rows, chains.start, {name: array[:len(chains)] for name, array in result.items()})
        gathered = group.gather_rows(draws, num_chains, out=result)
    return draws if gathered is None else gathered
