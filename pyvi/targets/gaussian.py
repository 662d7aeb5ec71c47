"""A multivariate normal target N(mean, cov)."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from pyvi._backend import require
from pyvi._validate import as_float_array

__all__ = ["Gaussian"]


class Gaussian:
    """N(mean, cov) as an HMC target: log density and gradient, known to every backend.

    With ``cov = I`` HMC's leapfrog integrates a harmonic oscillator, which the integrator tests use.

    Args:
        mean: ``(d,)`` mean.
        cov: ``(d, d)`` symmetric positive-definite covariance.

    Example:
        >>> target = Gaussian([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]])
        >>> round(target.log_prob_and_grad(np.zeros(2))[0], 6)
        -1.694036
    """

    def __init__(self, mean, cov):
        self.mean = as_float_array(mean, "mean", ndim=1)
        if self.mean.size == 0:
            raise ValueError("mean must hold at least one value")
        self.dim = self.mean.size
        self.cov = as_float_array(cov, "cov", ndim=2)
        if self.cov.shape != (self.dim, self.dim):
            raise ValueError(f"cov must have shape ({self.dim}, {self.dim}), got {self.cov.shape}")
        if not np.allclose(self.cov, self.cov.T, rtol=1e-12, atol=0.0):
            raise ValueError("cov must be symmetric")
        try:
            chol = np.linalg.cholesky(self.cov)
        except np.linalg.LinAlgError as error:
            raise ValueError("cov must be positive definite") from error
        self.precision = np.linalg.inv(self.cov)
        self.precision = 0.5 * (self.precision + self.precision.T)
        self.log_norm = -0.5 * self.dim * np.log(2 * np.pi) - np.sum(np.log(np.diag(chol)))

    def log_prob_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log N(x; mean, cov) and its gradient, for x of shape ``(..., d)`` (numpy)."""
        x = np.asarray(x, dtype=np.float64)
        centred = x - self.mean
        grad = -centred @ self.precision
        log_prob = self.log_norm + 0.5 * np.sum(centred * grad, axis=-1)
        return (float(log_prob) if log_prob.ndim == 0 else log_prob), grad

    @cached_property
    def core(self):
        """The ``pyvi._core`` twin of this target."""
        return require("cpp").GaussianTarget(self.mean, self.precision)

    @cached_property
    def numba_params(self) -> tuple[int, np.ndarray]:
        """(kind, params) for the Numba kernels (layout in pyvi/_numba/targets.py)."""
        from pyvi._numba.targets import GAUSSIAN

        params = np.concatenate([[self.dim, self.log_norm], self.mean, self.precision.ravel()])
        return GAUSSIAN, params
