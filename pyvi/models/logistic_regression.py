"""Bayesian logistic regression: y_i ~ Bernoulli(sigmoid(x_i . beta)), beta ~ N(0, prior_scale^2 I).

The log joint over the coefficients beta (d of them, the intercept included as a column of ones
in the design matrix X, shape (n, d)) is

    log p(y, beta) = sum_i [y_i eta_i - softplus(eta_i)] - |beta|^2 / (2 s^2) - d/2 log(2 pi s^2),
    eta = X beta,  softplus(t) = log(1 + e^t),

with gradient X^T (y - sigmoid(eta)) - beta / s^2. softplus and sigmoid are evaluated from one
e = exp(-|eta|) per row, which never overflows: softplus(t) = max(t, 0) + log1p(e), sigmoid(t) =
1 / (1 + e) for t >= 0 and e / (1 + e) otherwise.

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


# exp(-a) = 2^-k exp(-r) with a = k ln 2 + r, |r| <= ln 2 / 2 (Cody and Waite's reduction, the
# constants of fdlibm's exp: k * _LN2_HI is exact for k < 2^20).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
#: exp(-a) for a above this is taken as 0 (it is below 3.3e-308, a subnormal at most), which keeps
#: 2^-k a normal number whose bits are (1023 - k) << 52.
_EXP_CUTOFF = 708.0


@numba.njit(cache=True, error_model="numpy")
def _exp_neg_reduced(r):
    """exp(-r) for |r| <= ln 2 / 2: its Taylor polynomial of degree 13 (the remainder is below
    4e-18), in Horner's form."""
    p = 1.0 / 6227020800.0
    p = p * -r + 1.0 / 479001600.0
    p = p * -r + 1.0 / 39916800.0
    p = p * -r + 1.0 / 3628800.0
    p = p * -r + 1.0 / 362880.0
    p = p * -r + 1.0 / 40320.0
    p = p * -r + 1.0 / 5040.0
    p = p * -r + 1.0 / 720.0
    p = p * -r + 1.0 / 120.0
    p = p * -r + 1.0 / 24.0
    p = p * -r + 1.0 / 6.0
    p = p * -r + 0.5
    p = p * -r + 1.0
    return p * -r + 1.0


@numba.njit(cache=True, error_model="numpy")
def _log1p_unit(e):
    """log(1 + e) for e in [0, 1]: 2 atanh(s) with s = e / (2 + e) in [0, 1/3], its series
    2 (s + s^3/3 + ... + s^35/35) (the remainder is below 1e-18 relative)."""
    s = e / (2.0 + e)
    z = s * s
    q = 1.0 / 35.0
    q = q * z + 1.0 / 33.0
    q = q * z + 1.0 / 31.0
    q = q * z + 1.0 / 29.0
    q = q * z + 1.0 / 27.0
    q = q * z + 1.0 / 25.0
    q = q * z + 1.0 / 23.0
    q = q * z + 1.0 / 21.0
    q = q * z + 1.0 / 19.0
    q = q * z + 1.0 / 17.0
    q = q * z + 1.0 / 15.0
    q = q * z + 1.0 / 13.0
    q = q * z + 1.0 / 11.0
    q = q * z + 1.0 / 9.0
    q = q * z + 1.0 / 7.0
    q = q * z + 1.0 / 5.0
    q = q * z + 1.0 / 3.0
    return 2.0 * s + 2.0 * s * (z * q)


@numba.njit(cache=True, error_model="numpy")
def logistic_log_joint(beta, grad, X, X_t, y, prior_precision):
    """log p(y, beta) of the logistic regression; writes d/dbeta into ``grad``.

    The signature of a :class:`pyvi.targets.NumbaTarget` function, ``fn(x, grad, *data)``, with
    ``data = (X, X_t, y, prior_precision)``: X is the (n, d) design matrix and X_t its transpose,
    stored contiguously, so that both matrix-vector products (eta = X beta over the rows of X_t,
    the gradient X^T r over the rows of X) run along contiguous memory in their inner loops;
    prior_precision is 1 / prior_scale^2.

    Written for speed without ``fastmath`` (which would let the compiler reorder sums, and the cpp
    and numba backends, which compile this function separately, could then differ in the last
    bits): every loop is one the compiler vectorises as written. Hence exp and log1p as
    polynomials (:func:`_exp_neg_reduced`, :func:`_log1p_unit`; numba calls libm once per element
    otherwise, and has no vector math library here), within 2 ulp of libm's; ``error_model="numpy"``
    (a division by zero is IEEE's, not an exception whose test stops the vectoriser); the
    products unrolled over four columns or rows (fewer loads and stores of eta and grad, in the
    same order of additions); the log likelihood summed by four accumulators.
    """
    n = X.shape[0]
    d = X.shape[1]
    eta = np.zeros(n)
    j = 0
    while j + 4 <= d:  # eta += X_t[j] beta[j] over j, four at a time
        b0, b1, b2, b3 = beta[j], beta[j + 1], beta[j + 2], beta[j + 3]
        x0, x1, x2, x3 = X_t[j], X_t[j + 1], X_t[j + 2], X_t[j + 3]
        for i in range(n):
            eta[i] = (((eta[i] + x0[i] * b0) + x1[i] * b1) + x2[i] * b2) + x3[i] * b3
        j += 4
    for j in range(j, d):
        b, x0 = beta[j], X_t[j]
        for i in range(n):
            eta[i] += x0[i] * b
    # e = exp(-|eta|) = 2^-k exp(-r): the polynomial in e, 2^-k as the bits of the float64 in scale.
    e = np.empty(n)
    bits = np.empty(n, np.int64)
    scale = bits.view(np.float64)
    for i in range(n):
        a = min(abs(eta[i]), _EXP_CUTOFF)
        k = int(a * _INV_LN2 + 0.5)
        e[i] = _exp_neg_reduced((a - k * _LN2_HI) - k * _LN2_LO)
        bits[i] = (1023 - k) << 52
    for i in range(n):  # the log likelihood's terms into e, the residual y - sigmoid into eta
        t = eta[i]
        exp_neg = e[i] * scale[i] if abs(t) < _EXP_CUTOFF else 0.0
        e[i] = y[i] * t - (max(t, 0.0) + _log1p_unit(exp_neg))  # softplus(t) = max(t, 0) + log1p(e)
        eta[i] = y[i] - (1.0 if t >= 0.0 else exp_neg) / (1.0 + exp_neg)
    s0 = s1 = s2 = s3 = 0.0
    i = 0
    while i + 4 <= n:
        s0 += e[i]
        s1 += e[i + 1]
        s2 += e[i + 2]
        s3 += e[i + 3]
        i += 4
    for i in range(i, n):
        s0 += e[i]
    total = ((s0 + s1) + (s2 + s3)) + 0.5 * d * (math.log(prior_precision) - 1.8378770664093454835606594728112)
    for j in range(d):
        b = beta[j]
        total -= 0.5 * prior_precision * b * b
        grad[j] = -prior_precision * b
    i = 0
    while i + 4 <= n:  # grad += r[i] X[i] over i, four at a time
        r0, r1, r2, r3 = eta[i], eta[i + 1], eta[i + 2], eta[i + 3]
        x0, x1, x2, x3 = X[i], X[i + 1], X[i + 2], X[i + 3]
        for j in range(d):
            grad[j] = (((grad[j] + r0 * x0[j]) + r1 * x1[j]) + r2 * x2[j]) + r3 * x3[j]
        i += 4
    for i in range(i, n):
        r, x0 = eta[i], X[i]
        for j in range(d):
            grad[j] += r * x0[j]
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
