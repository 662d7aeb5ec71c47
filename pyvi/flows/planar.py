"""Planar flows (Rezende & Mohamed 2015) with the invertibility constraint.

Each layer maps ``x = z + u_hat * tanh(w . z + b)``. It is invertible iff ``w . u_hat >= -1``; the
paper's reparameterisation

    u_hat = u + (m(w . u) - w . u) w / |w|^2,   m(s) = -1 + softplus(s),

gives ``w . u_hat = m(w . u) > -1`` for every (u, w). The Jacobian determinant is
``1 + u_hat . psi`` with ``psi = (1 - h^2) w``, ``h = tanh(w . z + b)``, i.e.

    det = 1 + (1 - h^2) m = h^2 + (1 - h^2) softplus(w . u),

a sum of two non-negative terms: we take its log in that form, so it is never the log of a
negative number or of a cancelled difference (the student solution's ``log(det + 1e-15)`` is not
needed and not used).

Parameters are packed as one ``(num_layers, 2 dim + 1)`` tensor, rows ``[u, w, b]``.

References:
    D. J. Rezende and S. Mohamed, "Variational Inference with Normalizing Flows", ICML 2015
    (arXiv:1505.05770), Section 4.1 and Appendix A.1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pyvi._validate import count, seed_value
from pyvi.flows.base import Flow, FusedOps

__all__ = ["PlanarFlow", "planar_constants"]

# Bracket halvings to reach rounding: mantissa bits + a few (the bracket starts at 2 |w . u_hat|).
_BISECTION_STEPS = {torch.float64: 60, torch.float32: 30, torch.float16: 16, torch.bfloat16: 14}


def planar_constants(row: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(u_hat, w, b, softplus(w . u))`` of one packed layer row ``[u, w, b]``.

    ``|w|^2`` is floored at the dtype's smallest normal number so that ``w = 0`` gives ``u_hat = u``
    instead of 0/0 (the same floor as the fused kernel, csrc/common/planar.h).
    """
    u, w, b = row[:dim], row[dim : 2 * dim], row[2 * dim]
    wu = (w * u).sum()
    softplus = F.softplus(wu)
    norm2 = (w * w).sum().clamp_min(torch.finfo(row.dtype).tiny)
    u_hat = u + ((softplus - 1.0 - wu) / norm2) * w
    return u_hat, w, b, softplus


class PlanarFlow(Flow):
    """A stack of ``num_layers`` planar layers on R^dim.

    Args:
        dim: event dimension (>= 1).
        num_layers: number of planar layers K (>= 1).
        impl: ``"fused"`` (one custom op for the whole stack, ``torch.ops.pyvi.planar_forward``; on
            CUDA beyond ``dim`` 32 the reference, with a warning: see :class:`pyvi.flows.Flow`) or
            ``"reference"`` (plain torch, layer by layer).
        seed: seed of the initialisation (u, w ~ N(0, 0.1^2), b = 0); None draws from torch's
            global generator.

    ``inverse`` is numerical: each layer is undone by solving the scalar monotone equation
    ``alpha + (w . u_hat) tanh(alpha + b) = w . x`` for ``alpha = w . z`` (bisection on the bracket
    ``w . x +- |w . u_hat|`` to full precision, then ``z = x - u_hat tanh(alpha + b)``). It is exact
    to rounding but not differentiable: ``log_prob`` is for evaluation, not for training.

    References:
        D. J. Rezende and S. Mohamed, "Variational Inference with Normalizing Flows", ICML 2015
        (arXiv:1505.05770).

    Example:
        >>> flow = PlanarFlow(2, num_layers=4, seed=0)
        >>> x, log_q = flow.rsample_and_log_prob(8)
        >>> tuple(x.shape), tuple(log_q.shape)
        ((8, 2), (8,))
    """

    def __init__(self, dim: int = 2, num_layers: int = 16, impl: str = "fused", seed: int | None = None):
        super().__init__(dim, impl)
        self.num_layers = count(num_layers, "num_layers", minimum=1)
        generator = torch.Generator().manual_seed(seed_value(seed)) if seed is not None else None
        params = torch.zeros(self.num_layers, 2 * self.dim + 1)
        params[:, : 2 * self.dim] = 0.1 * torch.randn(self.num_layers, 2 * self.dim, generator=generator)
        self.params = nn.Parameter(params)

    def _forward_reference(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_det = z.new_zeros(z.shape[0])
        for k in range(self.num_layers):
            u_hat, w, b, softplus = planar_constants(self.params[k], self.dim)
            h = torch.tanh(z @ w + b)
            h2 = h * h
            z = z + h.unsqueeze(-1) * u_hat
            log_det = log_det + torch.log(h2 + (1.0 - h2) * softplus)
        return z, log_det

    def fused_ops(self) -> FusedOps | None:
        """``pyvi::planar_forward`` / ``pyvi::planar_backward``, or None on a CUDA device for
        ``dim > pyvi._C.planar_max_cuda_dim`` (the CUDA backward's per-thread vector is fixed-size)."""
        from pyvi.ops import planar as ops  # loads pyvi._C on first use

        if self.params.is_cuda and self.dim > ops.MAX_CUDA_DIM:
            return None
        return FusedOps(torch.ops.pyvi.planar_forward, torch.ops.pyvi.planar_backward)

    def fused_unavailable_reason(self) -> str | None:
        """Why :meth:`fused_ops` is None (the CUDA dimension limit), or None."""
        if self.fused_ops() is not None:
            return None
        from pyvi.ops import planar as ops

        return (f"PlanarFlow with dim={self.dim} > {ops.MAX_CUDA_DIM} has no fused CUDA backward "
                "(pyvi._C.planar_max_cuda_dim)")

    @torch.no_grad()
    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log|det dz/dx|)`` by one scalar root solve per layer (see the class docstring)."""
        x = self._check_points(x, "x")
        log_det = x.new_zeros(x.shape[0])
        for k in reversed(range(self.num_layers)):
            u_hat, w, b, softplus = planar_constants(self.params[k], self.dim)
            m = (w * u_hat).sum()  # > -1, so alpha + m tanh(alpha + b) is strictly increasing
            target = x @ w
            low, high = target - m.abs(), target + m.abs()
            # Bisection: the bracket halves each step, so 2 + mantissa bits steps reach rounding.
            for _ in range(_BISECTION_STEPS[x.dtype]):
                mid = 0.5 * (low + high)
                above = mid + m * torch.tanh(mid + b) > target
                high = torch.where(above, mid, high)
                low = torch.where(above, low, mid)
            h = torch.tanh(0.5 * (low + high) + b)
            x = x - h.unsqueeze(-1) * u_hat
            h2 = h * h
            log_det = log_det - torch.log(h2 + (1.0 - h2) * softplus)
        return x, log_det
