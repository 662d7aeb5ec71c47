"""The VAE decoder likelihoods log p(x | z), fused (one custom op) or as plain torch references.

Both take the decoder's outputs for S importance samples of a batch, ``(S, B, D)`` (or ``(B, D)``
for one sample), and the batch ``x`` ``(B, D)``, broadcast over S without being copied, and
return log p(x | z) summed over the D pixels, ``(S, B)`` (or ``(B,)``).

With ``seed`` given, x holds gray levels and is binarised on the fly: pixel ``i`` of the flattened
batch is 1 when ``u(seed, i) < x_i`` for a counter-based uniform ``u`` (see
``csrc/common/vae_likelihood.h``), so the fused kernels, the CUDA kernels and
:mod:`pyvi.binarize` (the ``binarize`` op and its torch reference, which the reference
likelihoods here use) all draw the same bits.

References:
    Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114.
    Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011 (counter-based RNGs).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pyvi._validate import choice, seed_value
from pyvi.binarize import binarize_reference

__all__ = ["bernoulli_log_likelihood", "gaussian_log_likelihood"]


def _prepare(params: torch.Tensor, x: torch.Tensor, seed: int | None, name: str):
    for value, label in ((params, name), (x, "x")):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{label} must be a torch.Tensor, got {type(value).__name__}")
        if value.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{label} must be float32 or float64, got {value.dtype}")
    if params.dim() not in (2, 3):
        raise ValueError(f"{name} must have shape (batch, pixels) or (samples, batch, pixels), got {tuple(params.shape)}")
    if x.dim() != 2 or x.shape != params.shape[-2:]:
        raise ValueError(f"x must have shape {tuple(params.shape[-2:])}, got {tuple(x.shape)}")
    if x.dtype != params.dtype:
        raise TypeError(f"x must have the dtype of {name} ({params.dtype}), got {x.dtype}")
    if x.device != params.device:
        raise ValueError(f"x must be on the device of {name} ({params.device}), got {x.device}")
    if seed is not None:
        seed = seed_value(seed)
        if seed >= 2**63:
            raise ValueError(f"seed must be < 2**63, got {seed}")
    squeeze = params.dim() == 2
    return (params.unsqueeze(0) if squeeze else params), squeeze, seed


#: exp of anything up to this is finite in the dtype (log of the largest float: 88.72..., 709.78...).
_LOG_MAX = {torch.float32: 88.0, torch.float64: 709.0}


def _standardized(diff: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """r = diff / exp(log_scale) for a 0-dim ``log_scale``, exact (up to rounding) wherever r is representable.

    While exp(-log_scale) is finite this is the plain ``diff * exp(-log_scale)`` (the fused kernels'
    product). Beyond that (a scale below ~1e-308 in float64, ~1e-38 in float32) 1/s is applied as two
    finite halves, clamped so that they stay finite: r is then still exact where it is representable,
    0 where ``diff == 0`` (one product gave 0 * inf = NaN, though log N(m | m, s^2) = -log s - log(2 pi)/2
    is finite), and +-inf where |r| overflows (the log density is then below the float range: -inf).

    No branch on a host copy of the value (CUDA-graph safe), and no inf in an unselected branch, whose
    zero gradient would turn into 0 * inf = NaN. log_scale's gradient, d r / d log s = -r, enters through
    one 0-dim factor exp(log s' - log s) = 1 (s' detached) applied last, so that no intermediate of the
    backward overflows unless the derivative itself does.
    """
    negative = -log_scale.detach()
    log_max = _LOG_MAX[diff.dtype]
    whole = negative <= log_max
    half = torch.exp((0.5 * negative).clamp(max=log_max))
    first = torch.where(whole, torch.exp(negative.clamp(max=log_max)), half)
    second = torch.where(whole, torch.ones_like(half), half)
    first = first * torch.exp(log_scale.detach() - log_scale)
    return (diff * second) * first


def bernoulli_log_likelihood(
    logits: torch.Tensor, x: torch.Tensor, *, seed: int | None = None, impl: str = "fused"
) -> torch.Tensor:
    """sum_d log Bernoulli(x_d | sigmoid(logits_d)), numerically stable, per sample and image.

    Args:
        logits: ``(B, D)`` or ``(S, B, D)`` decoder outputs.
        x: ``(B, D)`` targets in [0, 1] (gray levels when ``seed`` is given).
        seed: binarise x on the fly with this seed (dynamic binarisation); ``None`` uses x as is.
        impl: ``"fused"`` (one custom-op pass forward and backward) or ``"reference"`` (torch).

    Returns:
        ``(B,)`` or ``(S, B)``.

    Example:
        >>> logits = torch.zeros(2, 784)
        >>> round(bernoulli_log_likelihood(logits, torch.ones(2, 784), impl="reference")[0].item(), 2)
        -543.43
    """
    impl = choice(impl, "impl", ("fused", "reference"))
    logits3, squeeze, seed = _prepare(logits, x, seed, "logits")
    if impl == "reference":
        target = x if seed is None else binarize_reference(x.detach(), seed)
        out = -F.binary_cross_entropy_with_logits(logits3, target.expand_as(logits3), reduction="none").sum(-1)
    else:
        from pyvi.ops import vae_likelihood as ops  # loads pyvi._C on first use

        out = ops.bernoulli_log_lik(logits3, x, seed)
    return out.squeeze(0) if squeeze else out


def gaussian_log_likelihood(
    mean: torch.Tensor, x: torch.Tensor, log_scale: torch.Tensor, *, seed: int | None = None, impl: str = "fused"
) -> torch.Tensor:
    """sum_d log N(x_d | mean_d, exp(log_scale)^2): the homework's decoder with a learned scale.

    Finite for any finite input whose value is representable: at x == mean it is -log s - log(2 pi)/2
    per pixel even where 1/s overflows; where the exact value lies below the float range, -inf
    (never NaN). The reference computes r = (x - mean) / s as described in ``_standardized``.

    Args:
        mean: ``(B, D)`` or ``(S, B, D)`` decoder outputs.
        x: ``(B, D)`` (gray levels when ``seed`` is given).
        log_scale: one-element tensor, log of the shared standard deviation.
        seed: binarise x on the fly with this seed; ``None`` uses x as is.
        impl: ``"fused"`` or ``"reference"``.

    Example:
        >>> out = gaussian_log_likelihood(torch.zeros(1, 784), torch.zeros(1, 784), torch.zeros(()),
        ...                               impl="reference")
        >>> round(out.item(), 2)
        -720.45
    """
    impl = choice(impl, "impl", ("fused", "reference"))
    mean3, squeeze, seed = _prepare(mean, x, seed, "mean")
    if not isinstance(log_scale, torch.Tensor) or log_scale.numel() != 1:
        raise TypeError("log_scale must be a one-element torch.Tensor")
    if log_scale.dtype != mean.dtype or log_scale.device != mean.device:
        raise TypeError(f"log_scale must have the dtype and device of mean ({mean.dtype}, {mean.device})")
    if impl == "reference":
        target = x if seed is None else binarize_reference(x.detach(), seed)
        r = _standardized(target - mean3, log_scale.reshape(()))
        out = (-0.5 * r**2 - log_scale.reshape(()) - 0.5 * math.log(2 * math.pi)).sum(-1)
    else:
        from pyvi.ops import vae_likelihood as ops  # loads pyvi._C on first use

        out = ops.gaussian_log_lik(mean3, x, log_scale, seed)
    return out.squeeze(0) if squeeze else out
