"""Bayesian logistic regression: y_i ~ Bernoulli(sigmoid(x_i . beta)), beta ~ N(0, prior_scale^2 I).

The log joint over the coefficients beta (d of them, the intercept included as a column of ones
in the design matrix X, shape (n, d)) is

    log p(y, beta) = sum_i [y_i eta_i - softplus(eta_i)] - |beta|^2 / (2 s^2) - d/2 log(2 pi s^2),
    eta = X beta,  softplus(t) = log(1 + e^t),

with gradient X^T (y - sigmoid(eta)) - beta / s^2. softplus and sigmoid are evaluated from
e = exp(-|eta|), which never overflows: softplus(t) = max(t, 0) + log1p(e), sigmoid(t) = 1 / (1 + e)
for t >= 0 and e / (1 + e) otherwise.

Three implementations that agree: :func:`logistic_log_joint`, the ``@numba.njit`` function a user
would write for :class:`pyvi.targets.NumbaTarget` (it is this model's native face on the cpp and
numba HMC backends, through :meth:`LogisticRegression.as_numba_target`); numpy, vectorised over
points (:meth:`LogisticRegression.log_prob_and_grad`, the numpy backend); torch through autograd
(:meth:`LogisticRegression.torch_log_prob`, for ``pyvi.vi``, on any device).

:func:`breast_cancer` is the worked example: scikit-learn's Wisconsin breast-cancer data, 569
tumours x 30 features, standardised, plus an intercept: a 31-dimensional posterior with strongly
correlated coefficients (the features include radius, perimeter and area of the same nuclei).

References:
    A. Gelman et al., "Bayesian Data Analysis", 3rd ed. (2013), Sec. 16.3 (logistic regression).
    W. N. Street, W. H. Wolberg and O. L. Mangasarian, "Nuclear feature extraction for breast tumor
    diagnosis", IS&T/SPIE 1993 (the data set).
"""

from __future__ import annotations

import math
from functools import cached_property

import numba
import numpy as np

from pyvi._validate import as_float_array, choice, positive_float
from pyvi.targets.base import Target

__all__ = ["LogisticRegression", "breast_cancer", "logistic_log_joint"]

_LOG_2PI = 1.8378770664093454835606594728112


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's breast-cancer data as a design matrix and labels.

    Returns:
        ``(X, y)``: ``X`` of shape (569, 31), a column of ones (the intercept) then the 30 features,
        each standardised to mean 0 and standard deviation 1 (population sd, as scikit-learn's
        ``StandardScaler``); ``y`` of shape (569,), float64, 1 for a benign tumour and 0 for a
        malignant one.
    """
    try:
        from sklearn.datasets import load_breast_cancer
    except ImportError as error:  # scikit-learn comes with mlxtend, a dependency of pyvi
        raise ImportError(f"breast_cancer() needs scikit-learn (`pip install scikit-learn`): {error}") from error
    features, labels = load_breast_cancer(return_X_y=True)
    features = (features - features.mean(axis=0)) / features.std(axis=0)
    X = np.hstack([np.ones((features.shape[0], 1)), features])
    return np.ascontiguousarray(X), labels.astype(np.float64)


@numba.njit(cache=True)
def logistic_log_joint(beta, grad, X, X_t, y, prior_precision):
    """log p(y, beta) of the logistic regression; writes d/dbeta into ``grad``.

    The signature of a :class:`pyvi.targets.NumbaTarget` function, ``fn(x, grad, *data)``, with
    ``data = (X, X_t, y, prior_precision)``: X is the (n, d) design matrix and X_t its transpose,
    stored contiguously, so that both matrix-vector products (eta = X beta over the columns of
    X_t, the gradient X^T r over the rows of X) run along contiguous memory in their inner loops
    and vectorise without ``fastmath`` (which would reorder sums and break the bit-for-bit
    agreement of the cpp and numba backends); prior_precision is 1 / prior_scale^2.
    """
    n = X.shape[0]
    d = X.shape[1]
    total = 0.5 * d * (math.log(prior_precision) - 1.8378770664093454835606594728112)
    eta = np.zeros(n)
    for j in range(d):
        b = beta[j]
        total -= 0.5 * prior_precision * b * b
        grad[j] = -prior_precision * b
        for i in range(n):
            eta[i] += X_t[j, i] * b
    for i in range(n):
        t = eta[i]
        e = math.exp(-abs(t))
        total += y[i] * t - (max(t, 0.0) + math.log1p(e))
        sigmoid = 1.0 / (1.0 + e) if t >= 0.0 else e / (1.0 + e)
        eta[i] = y[i] - sigmoid  # the residual, in place
    for i in range(n):
        r = eta[i]
        for j in range(d):
            grad[j] += r * X[i, j]
    return total


class LogisticRegression(Target):
    """Bayesian logistic regression with independent N(0, prior_scale^2) priors on the coefficients.

    Args:
        X: ``(n, d)`` design matrix (include a column of ones for an intercept), finite.
        y: ``(n,)`` labels in {0, 1}.
        prior_scale: the prior standard deviation of every coefficient (> 0).

    Example:
        >>> model = LogisticRegression.breast_cancer()
        >>> model.dim, model.num_data
        (31, 569)
        >>> log_prob, grad = model.log_prob_and_grad(np.zeros(31))
        >>> round(log_prob, 4), grad.shape
        (-422.8878, (31,))
    """

    def __init__(self, X, y, prior_scale: float = 1.0):
        X = as_float_array(X, "X", ndim=2)
        y = as_float_array(y, "y", ndim=1)
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X must have at least one row and one column, got shape {X.shape}")
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},) (one label per row of X), got {y.shape}")
        if not np.all((y == 0.0) | (y == 1.0)):
            raise ValueError("y must hold labels 0 and 1 only")
        self.X = np.ascontiguousarray(X)
        self.X_t = np.ascontiguousarray(X.T)
        self.y = np.ascontiguousarray(y)
        for array in (self.X, self.X_t, self.y):
            array.setflags(write=False)
        self.prior_scale = positive_float(prior_scale, "prior_scale")
        self.prior_precision = 1.0 / self.prior_scale**2
        self.dim = X.shape[1]
        self.num_data = X.shape[0]

    @classmethod
    def breast_cancer(cls, prior_scale: float = 1.0) -> LogisticRegression:
        """The model on :func:`breast_cancer`'s data: 31 coefficients (intercept + 30 features)."""
        return cls(*breast_cancer(), prior_scale=prior_scale)

    def __repr__(self) -> str:
        return f"LogisticRegression(num_data={self.num_data}, dim={self.dim}, prior_scale={self.prior_scale})"

    @property
    def data(self) -> tuple:
        """The arguments after ``(x, grad)`` of :func:`logistic_log_joint` for this model."""
        return self.X, self.X_t, self.y, self.prior_precision

    def log_prob_and_grad(self, beta) -> tuple[np.ndarray | float, np.ndarray]:
        """log p(y, beta) and its gradient with numpy, for beta of shape ``(dim,)`` or ``(..., dim)``."""
        beta = as_float_array(beta, "beta")
        if beta.ndim == 0 or beta.shape[-1] != self.dim:
            raise ValueError(f"beta must have shape (..., {self.dim}), got {beta.shape}")
        eta = beta @ self.X_t  # (..., n)
        e = np.exp(-np.abs(eta))
        log_lik = np.sum(self.y * eta - (np.maximum(eta, 0.0) + np.log1p(e)), axis=-1)
        sigmoid = np.where(eta >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))
        log_prior = 0.5 * self.dim * (math.log(self.prior_precision) - _LOG_2PI) - 0.5 * self.prior_precision * np.sum(
            beta * beta, axis=-1)
        grad = (self.y - sigmoid) @ self.X - self.prior_precision * beta
        log_prob = log_lik + log_prior
        return (float(log_prob) if log_prob.ndim == 0 else log_prob), grad

    def as_numba_target(self):
        """The model as a user writes it: ``NumbaTarget(logistic_log_joint, dim, data=self.data)``."""
        return self._numba_target

    @cached_property
    def _numba_target(self):
        from pyvi.targets.numba_target import NumbaTarget

        return NumbaTarget(logistic_log_joint, self.dim, data=self.data)

    def numba_target(self):
        """The Numba face of :meth:`as_numba_target` (``backend="numba"``)."""
        return self._numba_target.numba_target()

    def cpp_target(self):
        """The ``pyvi._core`` face of :meth:`as_numba_target` (``backend="cpp"``)."""
        return self._numba_target.cpp_target()

    def torch_log_prob(self, impl: str = "reference"):
        """log p(y, beta) on torch tensors ``(..., dim)`` (autograd; one implementation whatever
        ``impl``)."""
        choice(impl, "impl", ("reference", "fused"))
        import torch

        constant = 0.5 * self.dim * (math.log(self.prior_precision) - _LOG_2PI)
        data: dict = {}  # (dtype, device) -> (X, y) as tensors, made once

        def log_prob(beta):
            key = (beta.dtype, beta.device)
            if key not in data:
                data[key] = tuple(torch.tensor(a, dtype=beta.dtype, device=beta.device) for a in (self.X, self.y))
            design, labels = data[key]
            eta = beta @ design.T
            # softplus written out: torch's own returns eta itself above eta = 20 (an error of 2e-9).
            softplus = eta.clamp(min=0.0) + torch.log1p(torch.exp(-eta.abs()))
            log_lik = (labels * eta - softplus).sum(-1)
            return log_lik + constant - 0.5 * self.prior_precision * (beta * beta).sum(-1)

        return log_prob
