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

import abc
import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from pyvi._validate import choice, count

__all__ = ["Flow", "FusedOps", "IMPLS"]

#: The implementations a flow can run: its fused custom ops and plain, layer-by-layer torch.
IMPLS = ("fused", "reference")
_LOG_2PI = math.log(2.0 * math.pi)


class FusedOps(NamedTuple):
    """A flow's fused implementation: one forward op and one analytic backward op for the whole
    stack, as :meth:`Flow.fused_ops` returns them (``vi.fit``'s autograd-free step and the
    benchmarks call them directly).

    Attributes:
        forward: ``forward(z, params, *config) -> (x, log_det, states)``; ``states`` is what the
            backward reads (the input of every layer).
        backward: ``backward(grad_x, grad_log_det, params, states, *config) -> (grad_z, grad_params)``,
            the vector-Jacobian product of ``(x, log_det)``, the parameter gradient summed over the
            batch inside the op. Not itself differentiable (no double backward).
        config: the ops' trailing arguments after the tensors (e.g. a coupling stack's
            :func:`pyvi.ops.coupling.op_config`); ``()`` if none.
    """

    forward: Callable
    backward: Callable
    config: tuple = ()


class _FlowMeta(abc.ABCMeta):
    """Runs :meth:`Flow._finish_init` once a flow's ``__init__`` (the subclass's, all of it) returns."""

    def __call__(cls, *args, **kwargs):
        flow = super().__call__(*args, **kwargs)
        flow._finish_init()
        return flow


class Flow(nn.Module, metaclass=_FlowMeta):
    """Base class: a standard-normal base distribution pushed through an invertible map.

    The contract a subclass fulfils (checked when it is constructed):

    - ``params``: ONE ``nn.Parameter`` holding all of its trainable weights (the flow's only
      parameter; layers are views into it);
    - :meth:`_forward_reference` (abstract): ``z -> (x, log|det dx/dz|)`` in differentiable torch;
    - :meth:`inverse` (abstract): ``x -> (z, log|det dz/dx|)``;
    - :meth:`fused_ops` (optional): its fused custom ops as a :class:`FusedOps`, or None where it
      has none for its sizes or device; then :meth:`fused_unavailable_reason` says why. The fused
      forward (:meth:`_forward_fused`) runs the forward op; a flow without fused ops runs the
      reference forward and trains through autograd.

    A subclass missing an abstract method cannot be instantiated (TypeError naming it).

    The implementation in use is ``flow.impl``. Asking for ``"fused"`` (the built-in flows'
    default) where :meth:`fused_ops` is None falls back to ``"reference"``: ``flow.impl`` and the
    repr then say ``"reference"`` and a RuntimeWarning gives the reason, once, when the
    implementation is chosen (at construction, at an ``impl`` assignment, or when ``.to()``
    moves the flow somewhere the fused ops do not run). The request is kept: the flow runs the
    fused ops again where they become available (e.g. moved back to the CPU).

    Args:
        dim: the event dimension.
        impl: ``"fused"`` (custom ops from ``pyvi._C``, falling back as above), ``"reference"``
            (plain torch), or None: fused where the flow has fused ops, reference otherwise,
            without a warning. Can be switched later through ``impl``; the parameters and state
            dict are the same.

    Example:
        >>> class Shift(Flow):
        ...     def __init__(self, dim):
        ...         super().__init__(dim)
        ...         self.params = nn.Parameter(torch.zeros(dim))
        ...     def _forward_reference(self, z):
        ...         return z + self.params, z.new_zeros(z.shape[0])
        ...     def inverse(self, x):
        ...         return x - self.params, x.new_zeros(x.shape[0])
        >>> flow = Shift(2)
        >>> flow.impl, flow.fused_ops(), flow.fused_unavailable_reason()
        ('reference', None, 'Shift has no fused ops')
        >>> flow.rsample(3).shape
        torch.Size([3, 2])
    """

    #: The packed parameter: every trainable weight of the flow, in one tensor.
    params: nn.Parameter

    def __init__(self, dim: int, impl: str | None = None):
        super().__init__()
        self.dim = count(dim, "dim", minimum=1)
        self._requested_impl = None if impl is None else choice(impl, "impl", IMPLS)
        self._impl = "reference"  # chosen once the subclass has built its parameters (_finish_init)
        self._fused: FusedOps | None = None
        self._warned_fallback = False
        # Buffers, not constants: they follow .to(device / dtype) with the parameters.
        self.register_buffer("base_loc", torch.zeros(self.dim, dtype=torch.get_default_dtype()))
        self.register_buffer("base_scale", torch.ones(self.dim, dtype=torch.get_default_dtype()))

    # -- what a subclass implements ---------------------------------------------------------------

    @abc.abstractmethod
    def _forward_reference(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log|det dx/dz|)`` for base points ``z (batch, dim)``, in differentiable torch."""

    @abc.abstractmethod
    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log|det dz/dx|)`` with ``f(z) = x``, for points ``x (batch, dim)``."""

    def fused_ops(self) -> FusedOps | None:
        """This flow's fused ops for its sizes on its current device, or None
        (:meth:`fused_unavailable_reason` says why). The base class has none."""
        return None

    def fused_unavailable_reason(self) -> str | None:
        """Why :meth:`fused_ops` is None (a sentence naming the limit), or None when it is not."""
        return None if self.fused_ops() is not None else f"{type(self).__name__} has no fused ops"

    def _forward_fused(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log|det dx/dz|)`` through the fused forward op (differentiable once: the op's
        autograd formula is its analytic backward op)."""
        ops = self._fused
        x, log_det, _ = ops.forward(z, self.params, *ops.config)
        return x, log_det

    # -- the implementation in use ----------------------------------------------------------------

    def _finish_init(self) -> None:
        params = getattr(self, "params", None)
        if not isinstance(params, nn.Parameter) or any(p is not params for p in self.parameters()):
            raise TypeError(
                f"{type(self).__name__} must hold all of its trainable weights in one nn.Parameter, self.params "
                f"(the Flow contract); it has {len(list(self.parameters()))} parameter(s)"
                + ("" if isinstance(params, nn.Parameter) else " and no nn.Parameter named params")
            )
        self._choose_impl(stacklevel=4)  # _choose_impl, _finish_init, _FlowMeta.__call__, the caller

    def _choose_impl(self, stacklevel: int) -> None:
        """Chooses the implementation in use from the request; warns (``stacklevel`` frames up)
        when a request for "fused" falls back, once per fallback."""
        self._fused = self.fused_ops() if self._requested_impl != "reference" else None
        self._impl = "fused" if self._fused is not None else "reference"
        falls_back = self._requested_impl == "fused" and self._fused is None
        if falls_back and not self._warned_fallback:
            warnings.warn(
                f"{self.fused_unavailable_reason()}; {type(self).__name__} runs its reference implementation "
                "(flow.impl == 'reference')",
                RuntimeWarning,
                stacklevel=stacklevel,
            )
        self._warned_fallback = falls_back

    @property
    def impl(self) -> str:
        """The implementation in use, ``"fused"`` or ``"reference"``. Assigning ``"fused"`` or
        ``"reference"`` (or None: fused where available, silently) chooses it again; a request for
        ``"fused"`` where :meth:`fused_ops` is None gives ``"reference"`` with a RuntimeWarning
        naming the reason."""
        return self._impl

    @impl.setter
    def impl(self, value: str | None) -> None:
        self._requested_impl = None if value is None else choice(value, "impl", IMPLS)
        self._warned_fallback = False
        self._choose_impl(stacklevel=4)  # _choose_impl, this setter, nn.Module.__setattr__, the caller

    def __getstate__(self):
        # The ops are bound to this process's pyvi._C (not picklable): torch.save(flow) and
        # copy.deepcopy store the request and choose again on loading.
        return {**self.__dict__, "_fused": None}

    def __setstate__(self, state):
        super().__setstate__(state)
        self._choose_impl(stacklevel=3)

    def _apply(self, fn, *args, **kwargs):
        # .to(), .cuda(), .double(), ...: the fused ops may not run on the new device.
        result = super()._apply(fn, *args, **kwargs)
        if "_requested_impl" in self.__dict__ and isinstance(getattr(self, "params", None), nn.Parameter):
            self._choose_impl(stacklevel=4)  # _choose_impl, _apply, .to() / .double() / ..., the caller
        return result

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
        impl = repr(self._impl)
        if self._requested_impl == "fused" and self._fused is None:
            impl += f" (fused unavailable: {self.fused_unavailable_reason()})"
        return f"dim={self.dim}, impl={impl}, num_params={self.params.numel()}"
