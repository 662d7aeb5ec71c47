"""A multivariate normal target N(mean, cov), with a face for every backend."""

from __future__ import annotations

import numpy as np

from pyvi._backend import require
from pyvi._validate import as_float_array, count, seed_value
from pyvi.targets.base import BuiltInTarget

__all__ = ["Gaussian"]


class Gaussian(BuiltInTarget):
    """N(mean, cov) as a target: log density and gradient on every backend, normalised (its log
    evidence is 0).

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
        self.cholesky = chol
        self.precision = np.linalg.inv(self.cov)
        self.precision = 0.5 * (self.precision + self.precision.T)
        # Computed once, here, and handed to every backend: two computations (say from a Cholesky
        # factor of cov and of the precision) differ in the last bit, and the step-size adaptation
        # turns that bit into different draws.
        self.log_norm = float(-0.5 * self.dim * np.log(2 * np.pi) - np.sum(np.log(np.diag(chol))))

    def log_prob_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log N(x; mean, cov) and its gradient, for x of shape ``(..., d)`` (numpy)."""
        x = np.asarray(x, dtype=np.float64)
        centred = x - self.mean
        grad = -centred @ self.precision
        log_prob = self.log_norm + 0.5 * np.sum(centred * grad, axis=-1)
        return (float(log_prob) if log_prob.ndim == 0 else log_prob), grad

    def _new_cpp_target(self):
        """The ``pyvi._core.GaussianTarget`` twin (the same mean, precision and log_norm)."""
        return require("cpp").GaussianTarget(self.mean, self.precision, self.log_norm)

    def _new_numba_target(self):
        """The Numba face (pyvi/_numba/targets/gaussian.py)."""
        from pyvi._numba.targets.gaussian import GaussianFace

        return GaussianFace(self.log_norm, self.mean, self.precision)

    def _new_torch_log_prob(self, impl: str):
        """log N(theta; mean, cov) on torch tensors ``(..., d)`` (autograd; one implementation
        whatever ``impl``)."""
        import torch

        # Made once per dtype and device: a copy from numpy at every call would cost more than
        # the density at a few chains, and could not be captured into a CUDA graph.
        parameters: dict = {}

        def log_prob(theta):
            key = (theta.dtype, theta.device)
            if key not in parameters:
                parameters[key] = tuple(torch.tensor(a, dtype=theta.dtype, device=theta.device)
                                        for a in (self.mean, self.precision))
            mean, precision = parameters[key]
            centred = theta - mean
            return self.log_norm - 0.5 * ((centred @ precision) * centred).sum(-1)

        return log_prob

    def log_evidence(self) -> float:
        """0: the density is normalised."""
        return 0.0

    def posterior_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """The exact mean ``(d,)`` and covariance ``(d, d)``."""
        return self.mean.copy(), self.cov.copy()

    def sample_exact(self, num_samples: int, seed: int | None = None) -> np.ndarray:
        """i.i.d. draws ``(num_samples, d)``: mean + L z with L L^T = cov, z ~ N(0, I)."""
        num_samples = count(num_samples, "num_samples")
        rng = np.random.default_rng(None if seed is None else seed_value(seed))
        return self.mean + rng.standard_normal((num_samples, self.dim)) @ self.cholesky.T
