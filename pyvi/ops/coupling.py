"""The Python side of ``pyvi::coupling_forward`` / ``pyvi::coupling_backward`` (C++: csrc/torch/coupling.cpp):
their fake kernels, the wrapper :func:`coupling_flow`, the one builder of their configuration
(:func:`op_config`), and the contracts the C++ side defines: the packed parameter layout
(:func:`layout`) and the fused kernels' size limits (``MAX_*``), read from ``pyvi._C``.

A stack of NICE or RealNVP couplings is one forward op (samples, log-det, and the input of every
coupling, saved for the backward) and one analytic backward op; the autograd formula joining them
is the forward op's C++ Autograd kernel. The backward op is not itself differentiable: its own
Autograd kernel makes a double backward through a fused flow raise NotImplementedError naming it
and pointing to ``impl="reference"`` (which has second derivatives), never return zeros.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from pyvi.ops import _C
from pyvi.ops._fake import check_same_device

__all__ = ["coupling_flow", "op_config", "layout", "fused_supported", "PackedLayout", "PackedCoupling", "PackedLayer",
           "MAX_DIM", "MAX_HIDDEN", "MAX_DEPTH", "MAX_COUPLINGS"]

#: The fused kernels' limits (their per-sample scratch is fixed-size): csrc/common/coupling.h.
MAX_DIM: int = _C.coupling_max_dim
MAX_HIDDEN: int = _C.coupling_max_hidden
MAX_DEPTH: int = _C.coupling_max_depth
MAX_COUPLINGS: int = _C.coupling_max_couplings


class PackedLayer(NamedTuple):
    """One MLP layer: ``W (rows, cols)`` row-major at ``weight_offset``, ``b (rows,)`` at ``bias_offset``."""

    weight_offset: int
    rows: int
    cols: int
    bias_offset: int


class PackedCoupling(NamedTuple):
    """One coupling: it conditions on ``[cond_start, cond_start + cond_size)``, moves
    ``[moved_start, moved_start + moved_size)``, and its MLP's layers are ``layers``."""

    cond_start: int
    cond_size: int
    moved_start: int
    moved_size: int
    layers: tuple[PackedLayer, ...]


class PackedLayout(NamedTuple):
    """The packed parameter vector: ``num_params`` numbers, the couplings' MLPs, then (NICE) the
    ``dim`` log-scales from ``log_scale_offset``."""

    num_params: int
    log_scale_offset: int
    couplings: tuple[PackedCoupling, ...]


def layout(dim: int, num_couplings: int, hidden: int, depth: int, affine: bool) -> PackedLayout:
    """The packed parameter layout of a coupling stack, as csrc/common/coupling.h defines it (and
    the kernels walk it), from ``pyvi._C.coupling_layout``. Any sizes: the reference implementation
    uses it beyond the fused limits too.

    Example:
        >>> packed = layout(2, 1, 3, 1, affine=False)
        >>> packed.num_params, packed.log_scale_offset
        (12, 10)
        >>> packed.couplings[0].layers[1]
        PackedLayer(weight_offset=6, rows=1, cols=3, bias_offset=9)
    """
    num_params, log_scale_offset, couplings = _C.coupling_layout(dim, num_couplings, hidden, depth, bool(affine))
    return PackedLayout(
        num_params,
        log_scale_offset,
        tuple(PackedCoupling(*halves, tuple(PackedLayer(*layer) for layer in layers)) for *halves, layers in couplings),
    )


def fused_supported(dim: int, num_couplings: int, hidden: int, depth: int) -> bool:
    """Whether the fused kernels take these sizes."""
    return dim <= MAX_DIM and num_couplings <= MAX_COUPLINGS and hidden <= MAX_HIDDEN and depth <= MAX_DEPTH


def op_config(num_couplings: int, hidden: int, depth: int, affine: bool, scale_bound: float) -> list[float]:
    """The one value the coupling ops take as their configuration, ``config`` in their schemas:
    ``[num_couplings, hidden, depth, affine, scale_bound]`` as floats, parsed (and checked against
    the kernels' limits) by ``coupling_config`` in csrc/torch/coupling.cpp.

    Example:
        >>> op_config(6, 8, 2, True, 3.0)
        [6.0, 8.0, 2.0, 1.0, 3.0]
    """
    return [float(num_couplings), float(hidden), float(depth), float(bool(affine)), float(scale_bound)]


def _num_couplings(config) -> int:
    torch._check(len(config) == 5, lambda: "config must be [num_couplings, hidden, depth, affine, scale_bound]")
    return int(config[0])


@torch.library.register_fake("pyvi::coupling_forward")
def _coupling_forward_fake(z, params, config):
    check_same_device("coupling_forward", z=z, params=params)
    torch._check(z.dim() == 2, lambda: "z must have shape (batch, dim)")
    return z.new_empty(z.shape), z.new_empty(z.shape[0]), z.new_empty(z.shape[0], _num_couplings(config) + 1, z.shape[1])


@torch.library.register_fake("pyvi::coupling_backward")
def _coupling_backward_fake(grad_x, grad_log_det, params, states, config):
    check_same_device("coupling_backward", grad_x=grad_x, grad_log_det=grad_log_det, params=params, states=states)
    return grad_x.new_empty(grad_x.shape), params.new_empty(params.shape)


def coupling_flow(z: torch.Tensor, params: torch.Tensor, config: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, log_det)`` of a NICE or RealNVP stack with packed ``params`` and ``config`` from
    :func:`op_config`, as one fused op."""
    x, log_det, _ = torch.ops.pyvi.coupling_forward(z, params, config)
    return x, log_det
