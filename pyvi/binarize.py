"""Dynamic binarisation: x ~ Bernoulli(gray level), drawn by a counter-based RNG keyed by a seed.

Pixel ``i`` of the flattened tensor is 1 when ``u(seed, i) < p_i`` (``u(seed, offset + i)`` for a
part of a batch that starts ``offset`` elements in) for a counter-based uniform ``u`` (one splitmix64 output of a Weyl sequence started at a per-seed key; see
``csrc/common/vae_likelihood.h``). A pure function of (seed, index), so :func:`binarize` (the
``pyvi::binarize`` op), the torch reference :func:`binarize_reference` and the fused VAE
likelihoods that binarise on the fly (:mod:`pyvi.vae.likelihood`) all draw the same bits, on CPU
and CUDA, whatever the thread count.

The layer: :mod:`pyvi.data` binarises its batches with this module and :mod:`pyvi.vae` uses its
reference, so it imports neither (data never imports the VAE). The op's Python side (fake kernel,
thin wrapper) is :mod:`pyvi.ops.vae_likelihood`; like every fused op, :func:`binarize` needs
``pyvi._C`` and raises ``pyvi.ops``' ImportError with build instructions without it (no silent
fallback: :func:`binarize_reference` is the plain-torch twin to call explicitly).

References:
    Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011 (counter-based RNGs).
    Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014 (splitmix64).
"""

from __future__ import annotations

import torch

from pyvi._validate import seed_value

__all__ = ["binarize", "binarize_reference", "counter_uniform"]

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _signed(value: int) -> int:
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def _splitmix_mix(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's output function on int64 tensors (wrapping multiply, logical shifts)."""

    def shift(v, k):
        return (v >> k) & ((1 << (64 - k)) - 1)

    z = (z ^ shift(z, 30)) * _signed(0xBF58476D1CE4E5B9)
    z = (z ^ shift(z, 27)) * _signed(0x94D049BB133111EB)
    return z ^ shift(z, 31)


def _key(seed: int) -> int:
    z = (seed + _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def counter_uniform(seed: int, numel: int, *, offset: int = 0, dtype: torch.dtype = torch.float32,
                    device="cpu") -> torch.Tensor:
    """The counter-based uniforms u(seed, offset .. offset + numel - 1) in [0, 1), 24 bits each, in
    plain torch.

    The reference for the kernels' generator (``csrc/common/vae_likelihood.h``).
    """
    seed = seed_value(seed)
    offset = seed_value(offset, "offset")
    key = (_key(seed) + offset * _GOLDEN) & _MASK64  # counter_key_at: the Weyl state `offset` steps on
    index = torch.arange(1, numel + 1, dtype=torch.int64, device=device)
    state = index * _signed(_GOLDEN) + _signed(key)
    bits = (_splitmix_mix(state) >> 40) & ((1 << 24) - 1)
    return bits.to(dtype) * 2.0**-24


def binarize_reference(probs: torch.Tensor, seed: int, offset: int = 0) -> torch.Tensor:
    """:func:`binarize` in plain torch."""
    u = counter_uniform(seed, probs.numel(), offset=offset, dtype=probs.dtype, device=probs.device).reshape(probs.shape)
    return (u < probs).to(probs.dtype)


def binarize(probs: torch.Tensor, seed: int, offset: int = 0) -> torch.Tensor:
    """x ~ Bernoulli(probs) element-wise, drawn by a counter-based RNG keyed by ``seed``.

    Element ``i`` of the flattened tensor gets bit ``[u(seed, offset + i) < probs_i]``: the same bits
    on CPU and CUDA and whatever the thread count; rows ``a .. b`` of a batch, binarised alone with
    ``offset = a * pixels``, get the bits the whole batch gives them (a distributed rank's share).
    Runs the custom op ``pyvi::binarize`` (needs pyvi._C).

    Example:
        >>> binarize(torch.tensor([0.0, 1.0, 0.5]), seed=0)[:2].tolist()
        [0.0, 1.0]
    """
    if not isinstance(probs, torch.Tensor):
        raise TypeError(f"probs must be a torch.Tensor, got {type(probs).__name__}")
    if probs.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"probs must be float32 or float64, got {probs.dtype}")
    seed = seed_value(seed)
    if seed >= 2**63:
        raise ValueError(f"seed must be < 2**63, got {seed}")
    offset = seed_value(offset, "offset")
    if offset >= 2**63:
        raise ValueError(f"offset must be < 2**63, got {offset}")
    from pyvi.ops import vae_likelihood as ops  # loads pyvi._C on first use

    return ops.binarize(probs, seed, offset)
