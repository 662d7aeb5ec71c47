"""The identity metric (mass matrix M = I) on a batch of chains: momentum, kinetic energy, drift.

The one place that knows M (csrc/core/hmc/metric.hpp is the C++ twin): p ~ N(0, M),
K(p) = p^T M^-1 p / 2, dx/dt = M^-1 p.

References:
    Neal, "MCMC using Hamiltonian dynamics" (2011), Sec. 4.1, arXiv:1206.1901.
"""

from __future__ import annotations

import torch

__all__ = ["IdentityMetric"]


class IdentityMetric:
    """M = I for every chain of dimension ``dim``, in ``dtype`` on ``device``."""

    def __init__(self, dim: int, dtype: torch.dtype, device: torch.device):
        # Row sums as matrix-vector products: torch's sum over a short last dimension (d = 2) is
        # a reduction per row, ~30x slower than one gemv over all rows.
        self.halves = torch.full((dim,), 0.5, dtype=dtype, device=device)

    @staticmethod
    def sample_momentum(x: torch.Tensor, random) -> torch.Tensor:
        """p ~ N(0, I), one row per chain, shaped and typed like ``x``."""
        return random.normal(tuple(x.shape), x.dtype)

    def kinetic_energy(self, p: torch.Tensor) -> torch.Tensor:
        """|p|^2 / 2 per chain."""
        return torch.mv(p.square(), self.halves)

    @staticmethod
    def drift(x: torch.Tensor, p: torch.Tensor, step: torch.Tensor) -> None:
        """x += step * p in place (``step``: each chain's step size, shaped like x)."""
        x.addcmul_(step, p)
