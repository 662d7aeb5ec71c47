"""A dense linear layer on the fastest float32 GEMM torch ships for the CPU: the VAE decoder's output layer.

``dense_linear(x, weight, bias)`` is ``torch.nn.functional.linear``. On the CPU in float32 the
custom op ``pyvi::dense_linear`` runs it, and its two backward products, through oneDNN's matmul
(the kernel torch.compile uses on CPUs, ``mkldnn::_linear_pointwise``) instead of MKL's sgemm, which
is what ``F.linear`` calls. On this project's AVX-512 AMD machine oneDNN is ~2x faster for the
decoder's 512 -> 784 layer at batch 128, in full float32 (strict f32 math). Float64, CUDA and
torch builds without oneDNN use ``addmm`` (see csrc/torch/cpu/dense_linear_cpu.cpp).

References:
    Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pyvi._validate import choice

__all__ = ["dense_linear"]


def dense_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *, impl: str = "fused"
) -> torch.Tensor:
    """``x @ weight.T + bias`` (``F.linear`` for 2-D x), differentiable in all three.

    Args:
        x: ``(B, in)``, float32 or float64.
        weight: ``(out, in)``, as ``nn.Linear.weight``.
        bias: ``(out,)`` or ``None``.
        impl: ``"fused"`` (the custom op ``pyvi::dense_linear``) or ``"reference"`` (``F.linear``).

    Example:
        >>> dense_linear(torch.ones(1, 2), torch.tensor([[1.0, 2.0]]), torch.tensor([0.5])).tolist()
        [[3.5]]
    """
    impl = choice(impl, "impl", ("fused", "reference"))
    for value, label in ((x, "x"), (weight, "weight")):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{label} must be a torch.Tensor, got {type(value).__name__}")
    if bias is not None and not isinstance(bias, torch.Tensor):
        raise TypeError(f"bias must be a torch.Tensor or None, got {type(bias).__name__}")
    if impl == "reference":
        return F.linear(x, weight, bias)
    from pyvi.ops import dense_linear as ops  # loads pyvi._C on first use

    return ops.dense_linear(x, weight, bias)
