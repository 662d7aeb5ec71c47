"""The interface shared by pyvi's normalizing flows: a torch-distribution-like ``nn.Module``.

A flow is a bijection ``x = f(z)`` pushed through a standard normal base ``z ~ N(0, I)``; its
density follows from the change of variables

    log q(x) = log N(z; 0, I) - log |det df/dz|,   z = f^{-1}(x).

Every flow holds its trainable parameters in ONE packed tensor (``flow.params``), so that Adam
does one update over one tensor rather than dozens of tiny ones, and so that the fused ops in
``pyvi._C`` read a single contiguous buffer. Views into it give the per-layer weights.

References:
    D. J. Rezende and S. Mohamed, "Variational Inference with Normalizing Flows", ICML 2015
    (arXiv:1505.05770).
    G. Papamakarios et al., "Normalizing Flows for Probabilistic Modeling and Inference", JMLR 2021
    (arXiv:1912.02762).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pyvi._validate import choice, count

__all__ = ["Flow", "IMPLS"]

#: The implementations every flow has: the fused custom ops and plain, layer-by-layer torch.
IMPLS = ("fused", "reference")
_LOG_2PI = math.log(2.0 * math.pi)


class Flow(nn.Module):
    """Base class: a standard-normal base distribution pushed through an invertible map.

    Subclasses implement ``_forward_reference(z)``, ``_forward_fused(z)`` (each returning
    ``(x, log_det)``) and ``inverse(x)`` (returning ``(z, log|det dz/dx|)``).

    Args:
        dim: the event dimension.
        impl: ``"fused"`` (custom ops from ``pyvi._C``) or ``"reference"`` (plain torch). Can be
            switched later through the ``impl`` attribute; the parameters are the same.
    """

    def __init__(self, dim: int, impl: str = "fused"):
        super().__init__()
        self.dim = count(dim, "dim", minimum=1)
        self.impl = impl
        # Buffers, not constants: they follow .to(device / dtype) with the parameters.
        self.register_buffer("base_loc", torch.zeros(self.dim, dtype=torch.get_default_dtype()))
        self.register_buffer("base_scale", torch.ones(self.dim, dtype=torch.get_default_dtype()))

    # -- implementation switch ------------------------------------------------------------------

    @property
    def impl(self) -> str:
        """``"fused"`` or ``"reference"``; assigning checks the value."""
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        self._impl = choice(value, "impl", IMPLS)

    # -- the distribution interface -------------------------------------------------------------

    def _check_points(self, value: torch.Tensor, name: str) -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() != 2 or value.shape[-1] != self.dim:
            raise ValueError(f"{name} must have shape (batch, {self.dim}), got {tuple(value.shape)}")
        params = self.params
        if value.dtype != params.dtype:
            raise TypeError(f"{name} has dtype {value.dtype} but the flow is {params.dtype}; use flow.to(dtype)")
        if value.device != params.device:
            raise ValueError(f"{name} is on {value.device} but the flow is on {params.device}")
        return value

    def base_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; base_loc, diag(base_scale^2)), summed over the last dimension."""
        standard = (z - self.base_loc) / self.base_scale
        return -0.5 * (standard * standard).sum(-1) - self.base_scale.log().sum() - 0.5 * self.dim * _LOG_2PI

    def base_sample(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(num_samples, dim)`` draws from the base distribution."""
        num_samples = count(num_samples, "num_samples", minimum=1)
        noise = torch.randn(
            num_samples, self.dim, generator=generator, dtype=self.base_loc.dtype, device=self.base_loc.device
        )
        return self.base_loc + self.base_scale * noise

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pushes base points through the flow: ``(x, log|det dx/dz|)`` for z ``(batch, dim)``."""
        z = self._check_points(z, "z")
        if self._impl == "fused":
            return self._forward_fused(z)
        return self._forward_reference(z)

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        """``(z, log|det dz/dx|)`` with ``f(z) = x``."""
        raise NotImplementedError

    def rsample_and_log_prob(
        self, num_samples: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised samples ``(num_samples, dim)`` and their log density ``(num_samples,)``,
        in one pass (no inverse needed): log q(x) = log N(z) - log|det df/dz|."""
        num_samples = count(num_samples, "num_samples", minimum=1)
        noise = torch.randn(
            num_samples, self.dim, generator=generator, dtype=self.base_loc.dtype, device=self.base_loc.device
        )
        z = torch.addcmul(self.base_loc, self.base_scale, noise)
        # log N(z; loc, scale) from the standard noise directly: fewer small ops per training step.
        log_base = noise.square().sum(-1).mul_(-0.5).sub_(self.base_scale.log().sum() + 0.5 * self.dim * _LOG_2PI)
        # z is ours (right shape, dtype, device): skip forward()'s argument checks.
        x, log_det = self._forward_fused(z) if self._impl == "fused" else self._forward_reference(z)
        return x, log_base - log_det

    def rsample(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised (differentiable) samples, ``(num_samples, dim)``."""
        return self.rsample_and_log_prob(num_samples, generator)[0]

    @torch.no_grad()
    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Samples without gradients, ``(num_samples, dim)``."""
        return self.rsample_and_log_prob(num_samples, generator)[0]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log q(x) for points ``(batch, dim)`` through the inverse map."""
        x = self._check_points(x, "x")
        z, log_det_inverse = self.inverse(x)
        return self.base_log_prob(z) + log_det_inverse

    def extra_repr(self) -> str:
        return f"dim={self.dim}, impl={self._impl!r}, num_params={self.params.numel()}"
