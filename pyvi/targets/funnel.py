"""Neal's funnel, centred (the classic hard case) or non-centred (its easy reparameterisation), with
exact draws and moments.

The funnel over d dimensions: v ~ N(0, v_scale^2) (Neal: v_scale = 3) and x_i | v ~ N(0, e^v) for
i = 1..d-1. Centred, the sampler sees (v, x) and the density

    log p(v, x) = -d/2 log(2 pi) - log v_scale - v^2 / (2 v_scale^2) - (d-1) v / 2 - e^-v |x|^2 / 2,

whose neck (v << 0) needs step sizes e^{v/2} times smaller than its mouth: a fixed-step sampler
diverges there and under-samples it. Non-centred, the sampler sees z = (v~, x~) ~ N(0, I) with
v = v_scale v~ and x_i = e^{v/2} x~_i: a standard normal, which any sampler handles.

What "exact" means: :meth:`Funnel.sample_exact` and :meth:`Funnel.posterior_moments` describe the
space the sampler sees (for the non-centred funnel, N(0, I)), so ``score(draws, funnel)`` compares
like with like; :meth:`Funnel.to_funnel` maps non-centred draws to (v, x), where they are exact
funnel draws. Both forms are normalised (``log_evidence() == 0``). Funnel-space moments: v has
mean 0 and variance v_scale^2, each x_i mean 0 and variance E[e^v] = e^{v_scale^2 / 2}, all
uncorrelated.

References:
    Neal, "Slice sampling", Annals of Statistics 31 (2003), section 8 (the funnel).
    Betancourt & Girolami, "Hamiltonian Monte Carlo for hierarchical models" (2013),
    arXiv:1312.0906 (centred vs non-centred).
"""

from __future__ import annotations

import math

import numpy as np

from pyvi._backend import require
from pyvi._validate import as_float_array, count, positive_float, seed_value
from pyvi.targets.base import BuiltInTarget

__all__ = ["Funnel"]


class Funnel(BuiltInTarget):
    """Neal's funnel in ``dim`` dimensions (module docstring).

    Args:
        dim: total dimension d >= 2 (v and d - 1 x's).
        centred: True for the density over (v, x); False for the standard normal over (v~, x~).
        v_scale: the sd of v (Neal's 3).

    Example:
        >>> funnel = Funnel(3)
        >>> round(funnel.log_prob_and_grad(np.zeros(3))[0], 6)  # -3/2 log(2 pi) - log 3
        -3.855428
        >>> Funnel(3, centred=False).to_funnel(np.array([1.0, 1.0, 0.0]))  # v = 3, x_1 = e^1.5
        array([3.        , 4.48168907, 0.        ])
    """

    def __init__(self, dim: int, centred: bool = True, v_scale: float = 3.0):
        self.dim = count(dim, "dim", minimum=2)
        if not isinstance(centred, bool | np.bool_):
            raise TypeError(f"centred must be a bool, got {type(centred).__name__}")
        self.centred = bool(centred)
        self.v_scale = positive_float(v_scale, "v_scale")
        self.log_norm = -0.5 * self.dim * math.log(2.0 * math.pi) - (math.log(self.v_scale) if self.centred else 0.0)

    def __repr__(self) -> str:
        return f"Funnel(dim={self.dim}, centred={self.centred}, v_scale={self.v_scale:g})"

    def _points(self, x) -> np.ndarray:
        x = as_float_array(x, "x")
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., {self.dim}), got {x.shape}")
        return x

    def log_prob_and_grad(self, x) -> tuple[np.ndarray | float, np.ndarray]:
        """log p(x) and its gradient for x of shape ``(..., dim)`` (numpy)."""
        x = self._points(x)
        if not self.centred:
            log_prob = self.log_norm - 0.5 * np.sum(x * x, axis=-1)
            return (float(log_prob) if log_prob.ndim == 0 else log_prob), -x
        v, rest = x[..., 0], x[..., 1:]
        inv_var = 1.0 / self.v_scale**2
        n = self.dim - 1
        with np.errstate(over="ignore", invalid="ignore"):  # the deep neck overflows e^-v: not finite, rejected
            precision = np.exp(-v)
            total = np.sum(rest * rest, axis=-1)
            grad = np.empty_like(x)
            grad[..., 1:] = -rest * precision[..., None]
            grad[..., 0] = -v * inv_var - 0.5 * n + 0.5 * precision * total
            log_prob = self.log_norm - 0.5 * v * v * inv_var - 0.5 * n * v - 0.5 * precision * total
        return (float(log_prob) if log_prob.ndim == 0 else log_prob), grad

    def _new_cpp_target(self):
        """The ``pyvi._core.FunnelTarget`` twin."""
        return require("cpp").FunnelTarget(self.dim, self.v_scale, self.centred, self.log_norm)

    def _new_numba_target(self):
        """The Numba face (pyvi/_numba/targets/funnel.py)."""
        from pyvi._numba.targets.funnel import FunnelFace

        return FunnelFace(self.log_norm, self.v_scale, self.centred)

    def _new_torch_log_prob(self, impl: str):
        """log p on torch tensors ``(..., dim)`` (autograd; one implementation whatever ``impl``)."""

        def log_prob(theta):
            if not self.centred:
                return self.log_norm - 0.5 * (theta * theta).sum(-1)
            v, rest = theta[..., 0], theta[..., 1:]
            return (self.log_norm - 0.5 * v * v / self.v_scale**2 - 0.5 * (self.dim - 1) * v
                    - 0.5 * (-v).exp() * (rest * rest).sum(-1))

        return log_prob

    def log_evidence(self) -> float:
        """0: both forms are normalised."""
        return 0.0

    def to_funnel(self, z) -> np.ndarray:
        """Non-centred draws z = (v~, x~) ``(..., dim)`` mapped to funnel space (v, x); centred draws
        are returned as they are (a copy)."""
        z = self._points(z)
        if self.centred:
            return z.copy()
        v = self.v_scale * z[..., :1]
        return np.concatenate([v, np.exp(0.5 * v) * z[..., 1:]], axis=-1)

    def posterior_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact mean ``(dim,)`` and covariance ``(dim, dim)`` in the sampler's space: diagonal,
        variances (v_scale^2, e^{v_scale^2/2}, ...) centred, the identity non-centred."""
        if not self.centred:
            return np.zeros(self.dim), np.eye(self.dim)
        variances = np.full(self.dim, math.exp(0.5 * self.v_scale**2))
        variances[0] = self.v_scale**2
        return np.zeros(self.dim), np.diag(variances)

    def sample_exact(self, num_samples: int, seed: int | None = None) -> np.ndarray:
        """i.i.d. draws ``(num_samples, dim)`` in the sampler's space: z ~ N(0, I), mapped to (v, x)
        when centred (the same z give the same funnel points for both forms)."""
        num_samples = count(num_samples, "num_samples")
        rng = np.random.default_rng(None if seed is None else seed_value(seed))
        z = rng.standard_normal((num_samples, self.dim))
        if not self.centred:
            return z
        v = self.v_scale * z[:, :1]
        return np.concatenate([v, np.exp(0.5 * v) * z[:, 1:]], axis=1)

