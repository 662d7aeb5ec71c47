"""A mixture of Gaussians, sum_k w_k N(x; mean_k, cov_k), with exact draws, moments and evidence.

The weights need not sum to one: the density is then unnormalised and its log evidence is
log sum_k w_k, exactly (what ``vi.kl`` and evidence estimators can be checked against). Well
separated components make a multimodal target that a single HMC chain cannot cross between: the
draws of each chain stay in one mode, which R-hat, the k-NN KL of :func:`pyvi.diagnostics.score`
and the mean errors all see.
"""

from __future__ import annotations

import math

import numpy as np

from pyvi._backend import require
from pyvi._validate import as_float_array, choice, count, seed_value
from pyvi.targets.base import BuiltInTarget

__all__ = ["GaussianMixture", "MAX_COMPONENTS"]

#: The most components the native faces take (their per-component terms live on the stack).
MAX_COMPONENTS = 64


class GaussianMixture(BuiltInTarget):
    """sum_k w_k N(x; mean_k, cov_k) as a target (module docstring).

    Args:
        weights: ``(K,)`` positive weights (any sum; 1 <= K <= 64).
        means: ``(K, d)`` component means.
        covs: ``(K, d, d)`` symmetric positive-definite covariances.

    Example:
        >>> mixture = GaussianMixture([0.3, 0.7], [[-2.0], [2.0]], [[[1.0]], [[0.5]]])
        >>> mean, cov = mixture.posterior_moments()
        >>> round(float(mean[0]), 6), round(mixture.log_evidence(), 6)  # 0.3 (-2) + 0.7 (2); log 1
        (0.8, 0.0)
    """

    def __init__(self, weights, means, covs):
        self.weights = as_float_array(weights, "weights", ndim=1)
        num = self.weights.size
        if not 1 <= num <= MAX_COMPONENTS:
            raise ValueError(f"weights must hold 1 to {MAX_COMPONENTS} components, got {num}")
        if not np.all(self.weights > 0):
            raise ValueError("weights must all be > 0")
        self.means = as_float_array(means, "means", ndim=2)
        if self.means.shape[0] != num or self.means.shape[1] < 1:
            raise ValueError(f"means must have shape ({num}, d) with d >= 1, got {self.means.shape}")
        self.dim = self.means.shape[1]
        self.covs = as_float_array(covs, "covs", ndim=3)
        if self.covs.shape != (num, self.dim, self.dim):
            raise ValueError(f"covs must have shape ({num}, {self.dim}, {self.dim}), got {self.covs.shape}")
        if not np.allclose(self.covs, self.covs.transpose(0, 2, 1), rtol=1e-12, atol=0.0):
            raise ValueError("covs must be symmetric")
        try:
            self.choleskys = np.linalg.cholesky(self.covs)
        except np.linalg.LinAlgError as error:
            raise ValueError("covs must be positive definite") from error
        precisions = np.linalg.inv(self.covs)
        self.precisions = 0.5 * (precisions + precisions.transpose(0, 2, 1))
        # Computed once and handed to every backend (the last bit would differ otherwise; see Gaussian).
        log_det = 2.0 * np.sum(np.log(np.diagonal(self.choleskys, axis1=1, axis2=2)), axis=1)
        self.log_coef = np.log(self.weights) - 0.5 * self.dim * math.log(2.0 * math.pi) - 0.5 * log_det

    @property
    def num_components(self) -> int:
        return self.weights.size

    @property
    def proportions(self) -> np.ndarray:
        """The normalised weights w_k / sum w."""
        return self.weights / self.weights.sum()

    def __repr__(self) -> str:
        return f"GaussianMixture({self.num_components} components, dim={self.dim})"

    def _points(self, x) -> np.ndarray:
        x = as_float_array(x, "x")
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., {self.dim}), got {x.shape}")
        return x

    def log_prob_and_grad(self, x) -> tuple[np.ndarray | float, np.ndarray]:
        """log sum_k w_k N(x; mean_k, cov_k) and its gradient for x of shape ``(..., d)`` (numpy)."""
        x = self._points(x)
        centred = x[..., None, :] - self.means  # (..., K, d)
        rows = np.einsum("kij,...kj->...ki", self.precisions, centred)
        terms = self.log_coef - 0.5 * np.sum(centred * rows, axis=-1)  # (..., K)
        top = terms.max(axis=-1, keepdims=True)
        weights = np.exp(terms - top)
        total = weights.sum(axis=-1)
        grad = -np.einsum("...k,...ki->...i", weights, rows) / total[..., None]
        log_prob = top[..., 0] + np.log(total)
        return (float(log_prob) if log_prob.ndim == 0 else log_prob), grad

    def _new_cpp_target(self):
        """The ``pyvi._core.GaussianMixtureTarget`` twin."""
        return require("cpp").GaussianMixtureTarget(self.log_coef, self.means, self.precisions)

    def _new_numba_target(self):
        """The Numba face (pyvi/_numba/targets/gaussian_mixture.py)."""
        from pyvi._numba.targets.gaussian_mixture import GaussianMixtureFace

        return GaussianMixtureFace(self.log_coef, self.means, self.precisions)

    def _new_torch_log_prob(self, impl: str):
        """log p on torch tensors ``(..., d)`` (autograd; one implementation whatever ``impl``)."""
        import torch

        def log_prob(theta):
            as_tensor = lambda a: torch.as_tensor(a, dtype=theta.dtype, device=theta.device)  # noqa: E731
            centred = theta[..., None, :] - as_tensor(self.means)
            rows = torch.einsum("kij,...kj->...ki", as_tensor(self.precisions), centred)
            terms = as_tensor(self.log_coef) - 0.5 * (centred * rows).sum(-1)
            return torch.logsumexp(terms, dim=-1)

        return log_prob

    def log_evidence(self) -> float:
        """log sum_k w_k (0 when the weights sum to one)."""
        return float(np.log(self.weights.sum()))

    def posterior_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact mean sum_k pi_k mean_k and covariance sum_k pi_k (cov_k + mean_k mean_k^T) - mean mean^T."""
        pi = self.proportions
        mean = pi @ self.means
        second = np.einsum("k,kij->ij", pi, self.covs + np.einsum("ki,kj->kij", self.means, self.means))
        return mean, second - np.outer(mean, mean)

    def sample_exact(self, num_samples: int, seed: int | None = None) -> np.ndarray:
        """i.i.d. draws ``(num_samples, d)``: a component k ~ pi, then mean_k + L_k z."""
        num_samples = count(num_samples, "num_samples")
        rng = np.random.default_rng(None if seed is None else seed_value(seed))
        component = rng.choice(self.num_components, size=num_samples, p=self.proportions)
        z = rng.standard_normal((num_samples, self.dim))
        return self.means[component] + np.einsum("nij,nj->ni", self.choleskys[component], z)
