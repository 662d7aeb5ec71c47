"""Data-parallel Adam sharded over the processes of one machine: ZeRO stage 1 in shared memory.

Replicated data parallelism makes every process sum the whole gradient and run the whole Adam update
(issue 14: for the VAE's 807,700 parameters ~1 ms of sum and ~0.6 ms of Adam per step, beside
~3.5 ms of forward + backward of a process's half batch: the bound of bench/bench_distributed.py).
Here the parameters and both Adam moments live once, in memory every process maps
(:mod:`pyvi._shared_memory`), and each process updates its own contiguous shard of them:

    each process copies the parts of its gradient in the others' shards into its slot
    barrier                                    (every slot is written: pyvi._process_barrier)
    each process sums its shard's gradients, in rank order (its own part read where backward left
    it), and runs torch's fused Adam on its shard of the parameters and moments
    barrier                                    (every shard is updated)

after which every process reads the new parameters where they are. Each process does 1/P of the
sum and of Adam instead of all of it, and nothing is copied back (Rajbhandari et al.'s stage 1:
optimizer state partitioned, here with the parameters shared rather than all-gathered).

The same bits as the replicated step: the slots are added in rank order (with two processes
exactly gloo's all-reduce, a + b = b + a), and Adam is elementwise, run by the same kernel on
pieces that start at multiples of 64 values from their tensor's start (its vectorised blocks fall
on the same values as in a whole-tensor call; tested against the whole-tensor update bit for bit).

The parameters' ``.data`` and the optimizer's moments become views of the shared block (so the
model's ``state_dict`` and the optimizer's ``state_dict`` read the shared values); ``release()``
copies them back into private memory at the end of training. After a step every ``.grad`` is None:
a process holds the summed gradient of its own shard only.

References:
    S. Rajbhandari, J. Rasley, O. Ruwase, Y. He, "ZeRO: Memory Optimizations Toward Training
    Trillion Parameter Models", SC 2020, arXiv:1910.02054.
    D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, arXiv:1412.6980.
"""

from __future__ import annotations

import torch

from pyvi._adam import _state, fused_adam_, supports_fused_adam_step
from pyvi._layout import laid_out_view
from pyvi._process_barrier import process_barrier
from pyvi._shared_memory import shared_block

__all__ = ["SharedStep", "shared_step", "shard_pieces"]

#: Shard bounds fall on multiples of this many values from their tensor's start (Adam's vector blocks).
PIECE_ALIGN = 64
#: Each tensor's place in the block starts on a multiple of this many values (a 64-byte cache line
#: for float32: no two processes write one line).
OFFSET_ALIGN = 16


def shard_pieces(sizes: list[int], world_size: int) -> list[list[tuple[int, int, int]]]:
    """Every rank's shard of tensors of ``sizes`` values laid end to end, as pieces
    ``(tensor, start, stop)``: contiguous ranges of about equal total size, cut at multiples of
    :data:`PIECE_ALIGN` from their tensor's start (or at its end).

    Example:
        >>> shard_pieces([300, 100], 2)
        [[(0, 0, 192)], [(0, 192, 300), (1, 0, 100)]]
    """
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    total = starts[-1]

    def snap(position: int) -> int:
        tensor = max(i for i in range(len(sizes)) if starts[i] <= position) if position < total else len(sizes) - 1
        local = min(round((position - starts[tensor]) / PIECE_ALIGN) * PIECE_ALIGN, sizes[tensor])
        return starts[tensor] + local

    cuts = [0, *(snap(round(rank * total / world_size)) for rank in range(1, world_size)), total]
    shards = []
    for low, high in zip(cuts, cuts[1:]):
        shards.append([(i, max(low, starts[i]) - starts[i], min(high, starts[i + 1]) - starts[i])
                       for i in range(len(sizes)) if max(low, starts[i]) < min(high, starts[i + 1])])
    return shards


def shared_step(group, parameters, optimizer) -> SharedStep | None:
    """A :class:`SharedStep` for ``optimizer`` (a fused plain Adam over exactly ``parameters``, all
    dense CPU tensors of one floating dtype) when every process of ``group`` can map the block;
    else None on every process (the replicated step). Every process must call it."""
    first = parameters[0]
    owned = {id(p) for g in optimizer.param_groups for p in g["params"]}
    usable = (supports_fused_adam_step(optimizer) and owned == {id(p) for p in parameters}
              and len(owned) == len(parameters)
              and all(p.device.type == "cpu" and p.dtype == first.dtype and p.layout == torch.strided
                      and p.is_floating_point() for p in parameters))
    offsets, total = [], 0
    for parameter in parameters:
        offsets.append(total)
        total += -(-parameter.numel() // OFFSET_ALIGN) * OFFSET_ALIGN
    block = shared_block(group, (3 + group.world_size) * total, first.dtype, usable=usable)
    if block is None:
        return None
    return SharedStep(group, parameters, optimizer, block.view(3 + group.world_size, total), offsets,
                      process_barrier(group))


class SharedStep:
    """The sharded step (see the module's docstring).

    Args:
        group: the processes.
        parameters: the trained parameters (every process's are equal: broadcast from rank 0).
        optimizer: their fused plain Adam.
        block: ``(3 + world_size, total)``: parameters, first moments, second moments, then one
            gradient slot per process, each tensor at ``offsets[i]`` of its row.
        offsets: where each parameter starts in a row.
        barrier: the processes' shared-memory barrier (:mod:`pyvi._process_barrier`), or None for
            gloo's.
    """

    def __init__(self, group, parameters, optimizer, block, offsets, barrier=None):
        self.group, self.parameters, self.optimizer = group, parameters, optimizer
        self.block, self.offsets = block, offsets
        self.barrier = group.barrier if barrier is None else barrier.wait
        rows = {"param": 0, "exp_avg": 1, "exp_avg_sq": 2}
        views = {name: [self._view(row, p, offset) for p, offset in zip(parameters, offsets)]
                 for name, row in rows.items()}
        self.slots = [[self._view(3 + rank, p, offset) for p, offset in zip(parameters, offsets)]
                      for rank in range(group.world_size)]
        states = [_state(optimizer, p, step_device=p.device) for p in parameters]
        with torch.no_grad():
            if group.is_main:
                for i, (parameter, state) in enumerate(zip(parameters, states)):
                    views["param"][i].copy_(parameter)
                    views["exp_avg"][i].copy_(state["exp_avg"])
                    views["exp_avg_sq"][i].copy_(state["exp_avg_sq"])
            group.barrier()  # rank 0's values are in
            for i, (parameter, state) in enumerate(zip(parameters, states)):
                parameter.data = views["param"][i]
                state["exp_avg"], state["exp_avg_sq"] = views["exp_avg"][i], views["exp_avg_sq"][i]
        self.steps = [state["step"] for state in states]
        # This process's shard as pieces (tensor, start, stop), and the other processes' pieces:
        # what this process publishes in its slot.
        shards = shard_pieces([p.numel() for p in parameters], group.world_size)
        self.mine = shards[group.rank]
        self.theirs = [piece for rank, shard in enumerate(shards) if rank != group.rank for piece in shard]
        own = block[3 + group.rank]
        self.sums = [own[offsets[t] + a:offsets[t] + b] for t, a, b in self.mine]  # where its sums go
        # Its Adam's tensors, 1-D pieces of the block's rows, bucketed by parameter group (each group
        # has its own learning rate): parameter, summed gradient, moments, step.
        group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
        self.buckets: dict[int, tuple[dict, list[list[torch.Tensor]]]] = {}
        for (tensor, start, stop), summed in zip(self.mine, self.sums):
            param_group = group_of[id(parameters[tensor])]
            _, lists = self.buckets.setdefault(id(param_group), (param_group, [[], [], [], [], []]))
            low, high = offsets[tensor] + start, offsets[tensor] + stop
            for items, piece in zip(lists, (block[0, low:high], summed, block[1, low:high], block[2, low:high],
                                            self.steps[tensor])):
                items.append(piece)

    def _view(self, row: int, parameter, offset: int):
        """``parameter``'s place in row ``row`` of the block, with its layout (:func:`pyvi._layout.laid_out_view`)."""
        return laid_out_view(self.block[row], parameter, offset)

    def _flat_gradient(self, index: int):
        """Parameter ``index``'s gradient as a 1-D tensor in its memory order (the block's order): the
        gradient itself when it is laid out as its parameter (the usual case: no copy), else a copy
        in that layout (zeros when it is missing). Never this process's slot: with three processes
        or more the slot's place for its own shard receives the partial sums while this is read."""
        parameter, slot = self.parameters[index], self.slots[self.group.rank][index]
        grad = parameter.grad
        # (the slot is dense: a gradient with its shape and strides is dense too, in the same order)
        if not (grad is not None and grad.dtype == slot.dtype and grad.shape == slot.shape
                and grad.stride() == slot.stride()):
            laid_out = torch.empty_like(slot)  # (the slot's strides: dense)
            grad = laid_out.zero_() if grad is None else laid_out.copy_(grad)
        return grad.as_strided((grad.numel(),), (1,))

    @torch.no_grad()
    def step_(self) -> None:
        """Sums the gradients over the processes and takes the Adam step, every process its shard;
        afterwards every process's parameters are the new ones and every ``.grad`` is None.

        A process publishes only the parts of its gradient that the others sum (its own shard it
        reads from the gradient itself), and sums its shard's terms in rank order into its slot's
        place for them (which no other process reads)."""
        rank, world_size = self.group.rank, self.group.world_size
        flats = [self._flat_gradient(i) for i in range(len(self.parameters))]
        own = self.block[3 + rank]
        for tensor, start, stop in self.theirs:
            offset = self.offsets[tensor]
            own[offset + start:offset + stop].copy_(flats[tensor][start:stop])
        for parameter in self.parameters:
            parameter.grad = None
        self.barrier()  # every slot is written (or a peer failed: RankFailedError)
        for (tensor, start, stop), summed in zip(self.mine, self.sums):
            low, high = self.offsets[tensor] + start, self.offsets[tensor] + stop
            terms = [flats[tensor][start:stop] if r == rank else self.block[3 + r, low:high]
                     for r in range(world_size)]
            torch.add(terms[0], terms[1], out=summed)  # in rank order: the replicated sum's bits
            for term in terms[2:]:
                summed.add_(term)
        self.optimizer._opt_called = True  # (what an LR scheduler checks)
        torch._foreach_add_(self.steps, 1)
        for param_group, lists in self.buckets.values():
            fused_adam_(param_group, *lists)
        self.barrier()  # every shard is updated

    def release(self) -> None:
        """The parameters and moments back in private memory (copies of the shared values: call it
        when no process steps any more)."""
        with torch.no_grad():
            for parameter in self.parameters:
                parameter.data = parameter.data.clone()
                state = self.optimizer.state[parameter]
                state["exp_avg"], state["exp_avg_sq"] = state["exp_avg"].clone(), state["exp_avg_sq"].clone()
        self.block = self.slots = self.buckets = self.sums = None
