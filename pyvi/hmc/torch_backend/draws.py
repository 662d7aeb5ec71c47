"""Recording the torch sampler's draws into the run's outputs (``pyvi._core.hmc_draws``), capture-safe.

Each sampling transition writes its state and info into draw-major buffers, ``(chunk,
num_chains, ...)``, at a slot index kept in a device tensor: a CUDA graph replays the same kernels,
so the index, not the host, says where they write, and each write is one contiguous block. A flush
copies the buffered draws into the host arrays, ``(num_chains, num_samples, ...)``, and rewinds the
slot: on CUDA after every eager transition or graph replay, on the CPU when the buffers are full
(writing each draw straight into the chain-major arrays scattered it over num_chains rows: 5x
slower).
"""

from __future__ import annotations

import numpy as np
import torch

from pyvi.hmc.torch_backend.state import Info, State

__all__ = ["DrawRecorder", "PER_DRAW"]

#: The per-draw outputs a transition fills (``step_size`` is written once, at the end).
PER_DRAW = ("samples", "log_prob", "accept_prob", "divergent", "num_steps")


class DrawRecorder:
    """Writes draws into ``draws`` (the arrays of ``hmc_draws``, by name).

    Args:
        draws: the output arrays, ``(num_chains, num_samples, ...)``.
        device: where the chains live.
        chunk: the most transitions between two flushes (on CUDA: the transitions of one graph).
    """

    def __init__(self, draws: dict[str, np.ndarray], device: torch.device, chunk: int):
        self.host = {name: torch.from_numpy(draws[name]) for name in PER_DRAW}
        self.buffers = {name: torch.empty((chunk, array.shape[0]) + array.shape[2:], dtype=array.dtype, device=device)
                        for name, array in self.host.items()}
        self.slot = torch.zeros(1, dtype=torch.int64, device=device)
        self.chunk, self.flushed = chunk, 0
        self.total = self.host["samples"].shape[1]
        self.flush_every_call = device.type != "cpu"

    def record(self, state: State, info: Info) -> None:
        """Writes one transition's draws at the current slot (capture-safe)."""
        values = (state.x, state.log_prob, info.accept_prob, info.divergent, info.num_steps)
        for name, value in zip(PER_DRAW, values, strict=True):
            buffer = self.buffers[name]
            buffer.index_copy_(0, self.slot, value.unsqueeze(0).to(buffer.dtype))
        self.slot.add_(1)

    def after(self, done: int) -> None:
        """Called with the number of sampling transitions done: flushes when it is time."""
        if self.flush_every_call or done - self.flushed >= self.chunk or done == self.total:
            self.flush(done)

    def flush(self, done: int) -> None:
        """Copies the draws buffered since the last flush to draws ``[flushed, done)`` of the host
        arrays, and rewinds the slot."""
        if done == self.flushed:
            return
        for name, host in self.host.items():
            host[:, self.flushed:done].copy_(self.buffers[name][:done - self.flushed].transpose(0, 1))
        self.slot.zero_()
        self.flushed = done
