"""Coupling flows: the machinery NICE and RealNVP share.

A coupling layer splits x into a conditioning half and a transformed half, and moves the
transformed half by functions of the conditioning half only, so its Jacobian is triangular:

- additive (NICE):  y_on = x_on + m(x_off),                          log|det| = 0;
- affine (RealNVP): y_on = x_on * exp(s(x_off)) + t(x_off),          log|det| = sum s(x_off).

Masks alternate: coupling k = 0, 2, 4, ... conditions on the first ``dim // 2`` coordinates and
moves the rest, odd couplings the other way round (the student solution's "swap after each layer"
in dim 2). The conditioner m or (s, t) is a ReLU MLP with ``depth`` hidden layers of width
``hidden``; RealNVP's s and t share the MLP (its output has 2 x the transformed size, scale first),
and the scale is bounded smoothly, ``s = bound * tanh(raw / bound)``, so that one bad step cannot
blow the samples up. Every hidden layer is used: the student's ``Scale`` net skipped its middle
layers (``off_ = mid_block[i](x)`` was computed and thrown away); here each feeds the next.

All couplings' weights live in ONE packed parameter vector, so the fused op reads one buffer and
Adam updates one tensor. Its layout is defined once, in C++ (csrc/common/coupling.h, which the
kernels walk); :class:`CouplingLayout` reads it from ``pyvi._C`` (:func:`pyvi.ops.coupling.layout`),
so building a coupling flow needs pyvi._C, whichever implementation it runs. The fused ops take
their configuration as one value, built by :func:`pyvi.ops.coupling.op_config`.

References:
    L. Dinh, D. Krueger and Y. Bengio, "NICE: Non-linear Independent Components Estimation",
    ICLR 2015 workshop (arXiv:1410.8516).
    L. Dinh, J. Sohl-Dickstein and S. Bengio, "Density estimation using Real NVP", ICLR 2017
    (arXiv:1605.08803).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from pyvi._validate import count, positive_float, seed_value
from pyvi.flows.base import Flow, FusedOps

if TYPE_CHECKING:
    from pyvi.ops.coupling import PackedLayout

__all__ = ["CouplingFlow", "CouplingLayout", "MAX_FUSED_HIDDEN", "MAX_FUSED_DEPTH", "MAX_FUSED_DIM"]

#: Names of the fused kernels' limits here -> their names in pyvi.ops.coupling (read from pyvi._C).
_LIMITS = {"MAX_FUSED_HIDDEN": "MAX_HIDDEN", "MAX_FUSED_DEPTH": "MAX_DEPTH", "MAX_FUSED_DIM": "MAX_DIM"}


def __getattr__(name: str):
    """``MAX_FUSED_HIDDEN``, ``MAX_FUSED_DEPTH``, ``MAX_FUSED_DIM``: the largest sizes the fused kernels
    take (beyond them a flow asked for ``impl="fused"`` runs its reference implementation, with a
    warning at construction; see :class:`pyvi.flows.Flow`), read from pyvi._C on first use."""
    if name in _LIMITS:
        from pyvi.ops import coupling as ops

        return getattr(ops, _LIMITS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class CouplingLayout:
    """Where each coupling's MLP weights sit in the packed parameter vector (read from pyvi._C).

    Coupling k has ``din`` inputs and ``dout`` transformed outputs (``num_out = dout`` for
    additive couplings, ``2 dout`` for affine ones) and stores, in order,
    ``W_0 (hidden, din), b_0 (hidden), [W_j (hidden, hidden), b_j (hidden)] * (depth - 1),
    W_out (num_out, hidden), b_out (num_out)``, row-major. NICE appends its ``dim`` log-scales.
    The offsets come from the one definition the kernels use (csrc/common/coupling.h, exported as
    ``pyvi._C.coupling_layout``).
    """

    dim: int
    num_couplings: int
    hidden: int
    depth: int
    affine: bool
    _packed: PackedLayout = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        from pyvi.ops import coupling as ops  # loads pyvi._C

        packed = ops.layout(self.dim, self.num_couplings, self.hidden, self.depth, self.affine)
        object.__setattr__(self, "_packed", packed)

    def halves(self, k: int) -> tuple[slice, slice]:
        """(conditioning, transformed) coordinate slices of coupling k."""
        c = self._packed.couplings[k]
        return slice(c.cond_start, c.cond_start + c.cond_size), slice(c.moved_start, c.moved_start + c.moved_size)

    def sizes(self, k: int) -> tuple[int, int]:
        """(conditioning, transformed) sizes of coupling k."""
        c = self._packed.couplings[k]
        return c.cond_size, c.moved_size

    def offset(self, k: int) -> int:
        """Start of coupling k's weights; ``k = num_couplings`` gives NICE's log-scales."""
        packed = self._packed
        return packed.log_scale_offset if k == self.num_couplings else packed.couplings[k].layers[0].weight_offset

    @property
    def num_params(self) -> int:
        return self._packed.num_params

    def mlp(self, params: torch.Tensor, k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Views ``[(W, b), ...]`` of coupling k's MLP layers into ``params``."""
        return [
            (params[layer.weight_offset : layer.weight_offset + layer.rows * layer.cols].view(layer.rows, layer.cols),
             params[layer.bias_offset : layer.bias_offset + layer.rows])
            for layer in self._packed.couplings[k].layers
        ]


class CouplingFlow(Flow):
    """Alternating additive (NICE) or affine (RealNVP) couplings; see the module docstring."""

    def __init__(
        self,
        dim: int,
        num_couplings: int,
        hidden: int,
        depth: int,
        affine: bool,
        scale_bound: float,
        impl: str,
        seed: int | None,
    ):
        super().__init__(dim, impl)
        if self.dim < 2:
            raise ValueError(f"dim must be >= 2 for a coupling flow, got {self.dim}")
        self.layout = CouplingLayout(
            self.dim,
            count(num_couplings, "num_couplings", minimum=1),
            count(hidden, "hidden", minimum=1),
            count(depth, "depth", minimum=1),
            affine,
        )
        self.num_couplings, self.hidden, self.depth = num_couplings, hidden, depth
        self.scale_bound = positive_float(scale_bound, "scale_bound")
        generator = torch.Generator().manual_seed(seed_value(seed)) if seed is not None else None
        params = torch.zeros(self.layout.num_params)
        for k in range(num_couplings):
            layers = self.layout.mlp(params, k)
            for j, (weight, bias) in enumerate(layers):
                bound = 1.0 / math.sqrt(weight.shape[1])  # nn.Linear's default range
                if j == len(layers) - 1:
                    bound *= 0.1  # start close to the identity map
                weight.copy_((2 * torch.rand(weight.shape, generator=generator) - 1) * bound)
                bias.copy_((2 * torch.rand(bias.shape, generator=generator) - 1) * bound)
        self.params = nn.Parameter(params)

    @property
    def fused_supported(self) -> bool:
        """Whether the fused kernels take these sizes (limits read from pyvi._C)."""
        from pyvi.ops import coupling as ops

        return ops.fused_supported(self.dim, self.num_couplings, self.hidden, self.depth)

    @property
    def op_config(self) -> list[float]:
        """The fused ops' configuration, one value (:func:`pyvi.ops.coupling.op_config`)."""
        from pyvi.ops import coupling as ops

        layout = self.layout
        return ops.op_config(layout.num_couplings, layout.hidden, layout.depth, layout.affine, self.scale_bound)

    def _conditioner(self, k: int, cond: torch.Tensor) -> torch.Tensor:
        layers = self.layout.mlp(self.params, k)
        h = cond
        for weight, bias in layers[:-1]:
            h = F.relu(F.linear(h, weight, bias))  # each hidden layer feeds the next
        weight, bias = layers[-1]
        return F.linear(h, weight, bias)

    def _scale_shift(self, k: int, cond: torch.Tensor, dout: int) -> tuple[torch.Tensor, torch.Tensor]:
        out = self._conditioner(k, cond)
        bound = self.scale_bound
        return bound * torch.tanh(out[:, :dout] / bound), out[:, dout:]

    def _forward_reference(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_det = z.new_zeros(z.shape[0])
        for k in range(self.num_couplings):
            cond_slice, moved_slice = self.layout.halves(k)
            cond, moved = z[:, cond_slice], z[:, moved_slice]
            if self.layout.affine:
                scale, shift = self._scale_shift(k, cond, moved.shape[1])
                moved = moved * torch.exp(scale) + shift
                log_det = log_det + scale.sum(-1)
            else:
                moved = moved + self._conditioner(k, cond)
            z = torch.cat([cond, moved], -1) if k % 2 == 0 else torch.cat([moved, cond], -1)
        if not self.layout.affine:
            log_scale = self.params[self.layout.offset(self.num_couplings) :]
            z = z * torch.exp(log_scale)
            log_det = log_det + log_scale.sum()
        return z, log_det

    def fused_ops(self) -> FusedOps | None:
        """``pyvi::coupling_forward`` / ``pyvi::coupling_backward`` with this stack's
        :attr:`op_config`, or None where the sizes exceed the fused kernels' limits."""
        if not self.fused_supported:
            return None
        return FusedOps(torch.ops.pyvi.coupling_forward, torch.ops.pyvi.coupling_backward, (self.op_config,))

    def fused_unavailable_reason(self) -> str | None:
        """Which of the fused kernels' limits (``pyvi._C.coupling_max_*``) these sizes exceed, or None."""
        from pyvi.ops import coupling as ops

        sizes = {"dim": (self.dim, ops.MAX_DIM), "num_couplings": (self.num_couplings, ops.MAX_COUPLINGS),
                 "hidden": (self.hidden, ops.MAX_HIDDEN), "depth": (self.depth, ops.MAX_DEPTH)}
        exceeded = [f"{name}={value} > {limit}" for name, (value, limit) in sizes.items() if value > limit]
        if not exceeded:
            return None
        return (f"{type(self).__name__} exceeds the fused coupling kernels' limits ({', '.join(exceeded)}; "
                "pyvi._C.coupling_max_*)")

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact inverse ``(z, log|det dz/dx|)``, differentiable (plain torch)."""
        x = self._check_points(x, "x")
        log_det = x.new_zeros(x.shape[0])
        if not self.layout.affine:
            log_scale = self.params[self.layout.offset(self.num_couplings) :]
            x = x * torch.exp(-log_scale)
            log_det = log_det - log_scale.sum()
        for k in reversed(range(self.num_couplings)):
            cond_slice, moved_slice = self.layout.halves(k)
            cond, moved = x[:, cond_slice], x[:, moved_slice]
            if self.layout.affine:
                scale, shift = self._scale_shift(k, cond, moved.shape[1])
                moved = (moved - shift) * torch.exp(-scale)
                log_det = log_det - scale.sum(-1)
            else:
                moved = moved - self._conditioner(k, cond)
            x = torch.cat([cond, moved], -1) if k % 2 == 0 else torch.cat([moved, cond], -1)
        return x, log_det
