"""The torch sampler's random numbers: one seeded stream per run, drawn in batches for all chains.

On CUDA they come from a torch generator on the device (Philox): capture-safe, and replays of a
CUDA graph advance it as eager calls would. On the CPU they come from numpy's PCG64 generator
(ziggurat normals), written straight into the tensors' memory: torch's CPU generator (a Mersenne
Twister, one value at a time) took 2-3x longer for the momenta than everything else in a transition
of many chains. Either way a run is reproducible for a seed on its device, and its draws differ
from the cpp and numba backends' (whose chain c has its own xoshiro256++ stream) and between
devices.

References:
    O'Neill, "PCG: A Family of Simple Fast Space-Efficient Statistically Good Algorithms for Random
    Number Generation" (2014); Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC11
    (Philox).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["RandomSource"]


class RandomSource:
    """Normals and uniforms on ``device`` from the stream of ``seed``.

    Args:
        seed: in [0, 2**64).
        device: the chains' device.
    """

    def __init__(self, seed: int, device: torch.device):
        self.device = device
        self.on_cuda = device.type == "cuda"
        if self.on_cuda:
            self.generator = torch.Generator(device=device).manual_seed(seed)
        else:
            self.numpy = np.random.Generator(np.random.PCG64(seed))

    @property
    def generators(self) -> tuple[torch.Generator, ...]:
        """The torch generators a CUDA graph must register (none on the CPU)."""
        return (self.generator,) if self.on_cuda else ()

    def normal(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """Standard normals."""
        if self.on_cuda:
            return torch.randn(shape, generator=self.generator, dtype=dtype, device=self.device)
        return torch.from_numpy(self.numpy.standard_normal(shape, dtype=_NUMPY[dtype]))

    def uniform(self, size: int) -> torch.Tensor:
        """``size`` float64 uniforms on [0, 1)."""
        if self.on_cuda:
            return torch.rand(size, generator=self.generator, dtype=torch.float64, device=self.device)
        return torch.from_numpy(self.numpy.random(size))


_NUMPY = {torch.float64: np.float64, torch.float32: np.float32}
