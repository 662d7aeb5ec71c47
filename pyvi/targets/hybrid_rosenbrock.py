"""The hybrid Rosenbrock distribution (Pagani, Wiegand & Nadarajah): a curved, heavy-tailed target
with a known normaliser, exact i.i.d. draws and exact moments.

    log p(x) = -log Z - a (x_1 - mu)^2 - sum_{j=1}^{n2} sum_{i=2}^{n1} b_{j,i} (x_{j,i} - x_{j,i-1}^2)^2

over d = 1 + n2 (n1 - 1) dimensions, x = (x_1, x_{1,2..n1}, ..., x_{n2,2..n1}), where every block
j starts from the shared x_{j,1} = x_1. It factorises into a chain of Gaussians,
x_1 ~ N(mu, 1/(2a)) and x_{j,i} | x_{j,i-1} ~ N(x_{j,i-1}^2, 1/(2 b_{j,i})), which gives

- the normaliser Z = sqrt(pi / a) prod_{j,i} sqrt(pi / b_{j,i}) (the density here is normalised:
  ``log_evidence() == 0``);
- exact draws by drawing the chain forward (:meth:`HybridRosenbrock.sample_exact`);
- exact moments: E[x_{j,i}^p | x_{j,i-1}] is a polynomial in x_{j,i-1}^2 (binomial expansion with
  the normal's moments), so every mean and covariance reduces to a polynomial in x_1, whose
  Gaussian moments are known. Exact up to floating-point rounding (the degrees grow as 2^{n1}: the
  moments of long blocks are huge numbers and their variances lose digits).

With n1 = 2, n2 = 1 it is the classic Rosenbrock kernel; the paper's defaults are mu = 1,
a = 1/20, b = 100/20.

References:
    Pagani, Wiegand & Nadarajah, "An n-dimensional Rosenbrock distribution for Markov chain Monte
    Carlo testing", Scandinavian Journal of Statistics 49 (2022), arXiv:1903.09556, eq. 9-11.
"""

from __future__ import annotations

import math

import numpy as np

from pyvi._backend import require
from pyvi._validate import as_float_array, count, positive_float, seed_value
from pyvi.targets.base import BuiltInTarget

__all__ = ["HybridRosenbrock"]


def _normal_moment(order: int) -> float:
    """E[eps^order] for eps ~ N(0, 1): (order - 1)!! for even orders, 0 for odd."""
    return 0.0 if order % 2 else float(math.prod(range(order - 1, 0, -2)))


def _reduce(poly: np.ndarray, scale: float) -> np.ndarray:
    """E[poly(y) | y_prev] for y = y_prev^2 + scale eps, as a polynomial in y_prev (coefficients in
    increasing powers)."""
    out = np.zeros(2 * (poly.size - 1) + 1)
    for power, coefficient in enumerate(poly):
        for r in range(power + 1):
            out[2 * r] += coefficient * math.comb(power, r) * scale ** (power - r) * _normal_moment(power - r)
    return out


class HybridRosenbrock(BuiltInTarget):
    """The hybrid Rosenbrock distribution (module docstring).

    Args:
        n1: block length, x_1 included (>= 2).
        n2: number of blocks (>= 1).
        mu: the mean of x_1.
        a: x_1's precision is 2a.
        b: scalar or ``(n2, n1 - 1)``: x_{j,i}'s conditional precision is 2 b_{j,i}.

    Example:
        >>> target = HybridRosenbrock(n1=2, n2=1)  # the 2-D Rosenbrock kernel, mu = 1, a = 1/20, b = 5
        >>> mean, cov = target.posterior_moments()
        >>> [round(float(m), 6) for m in mean]  # E[x_2] = E[x_1^2] = mu^2 + 1/(2a)
        [1.0, 11.0]
    """

    def __init__(self, n1: int = 3, n2: int = 2, mu: float = 1.0, a: float = 1.0 / 20.0, b=100.0 / 20.0):
        self.n1 = count(n1, "n1", minimum=2)
        self.n2 = count(n2, "n2", minimum=1)
        self.mu = float(as_float_array(mu, "mu", ndim=0))
        self.a = positive_float(a, "a")
        b = as_float_array(b, "b", ndim=(0, 2))
        if b.ndim == 0:
            b = np.full((self.n2, self.n1 - 1), float(b))
        if b.shape != (self.n2, self.n1 - 1):
            raise ValueError(f"b must be a scalar or have shape (n2, n1 - 1) = ({self.n2}, {self.n1 - 1}), got {b.shape}")
        if not np.all(b > 0):
            raise ValueError("b must contain only values > 0")
        self.b = np.ascontiguousarray(b)
        self.dim = 1 + self.n2 * (self.n1 - 1)
        self.log_norm = float(-0.5 * math.log(math.pi / self.a) - 0.5 * np.sum(np.log(math.pi / self.b)))

    def __repr__(self) -> str:
        return f"HybridRosenbrock(n1={self.n1}, n2={self.n2}, mu={self.mu:g}, a={self.a:g}, dim={self.dim})"

    def _points(self, x) -> np.ndarray:
        x = as_float_array(x, "x")
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., {self.dim}), got {x.shape}")
        return x

    def _blocks(self, x):
        """(x_1 (...,), blocks (..., n2, n1)) with each block's first column x_1."""
        first = x[..., :1]
        rest = x[..., 1:].reshape(*x.shape[:-1], self.n2, self.n1 - 1)
        return x[..., 0], np.concatenate([np.broadcast_to(first[..., None, :], rest.shape[:-1] + (1,)), rest], axis=-1)

    def log_prob_and_grad(self, x) -> tuple[np.ndarray | float, np.ndarray]:
        """log p(x) and its gradient for x of shape ``(..., dim)`` (numpy)."""
        x = self._points(x)
        x1, blocks = self._blocks(x)
        prev, cur = blocks[..., :-1], blocks[..., 1:]
        residual = cur - prev * prev  # (..., n2, n1 - 1)
        log_prob = self.log_norm - self.a * (x1 - self.mu) ** 2 - np.sum(self.b * residual**2, axis=(-2, -1))
        grad_blocks = -2.0 * self.b * residual  # d/d x_{j,i} of its own term
        push = 4.0 * self.b * residual * prev  # d/d x_{j,i-1} of the term of x_{j,i}
        grad_blocks[..., :-1] += push[..., 1:]
        grad = np.empty_like(x)
        grad[..., 0] = -2.0 * self.a * (x1 - self.mu) + np.sum(push[..., 0], axis=-1)
        grad[..., 1:] = grad_blocks.reshape(*x.shape[:-1], -1)
        return (float(log_prob) if log_prob.ndim == 0 else log_prob), grad

    def _new_cpp_target(self):
        """The ``pyvi._core.HybridRosenbrockTarget`` twin."""
        return require("cpp").HybridRosenbrockTarget(self.mu, self.a, self.b, self.log_norm)

    def _new_numba_target(self):
        """The Numba face (pyvi/_numba/targets/hybrid_rosenbrock.py)."""
        from pyvi._numba.targets.hybrid_rosenbrock import HybridRosenbrockFace

        return HybridRosenbrockFace(self.log_norm, self.mu, self.a, self.b)

    def _new_torch_log_prob(self, impl: str):
        """log p on torch tensors ``(..., dim)`` (autograd; one implementation whatever ``impl``)."""
        import torch

        def log_prob(theta):
            first = theta[..., :1]
            rest = theta[..., 1:].reshape(*theta.shape[:-1], self.n2, self.n1 - 1)
            blocks = torch.cat([first[..., None, :].expand(*rest.shape[:-1], 1), rest], dim=-1)
            residual = blocks[..., 1:] - blocks[..., :-1] ** 2
            b = torch.as_tensor(self.b, dtype=theta.dtype, device=theta.device)
            return self.log_norm - self.a * (theta[..., 0] - self.mu) ** 2 - (b * residual**2).sum((-2, -1))

        return log_prob

    def log_evidence(self) -> float:
        """0: the density is normalised (Z is known in closed form)."""
        return 0.0

    def sample_exact(self, num_samples: int, seed: int | None = None) -> np.ndarray:
        """i.i.d. draws ``(num_samples, dim)``, the chain of conditionals drawn forward."""
        num_samples = count(num_samples, "num_samples")
        rng = np.random.default_rng(None if seed is None else seed_value(seed))
        out = np.empty((num_samples, self.dim))
        out[:, 0] = self.mu + rng.standard_normal(num_samples) / math.sqrt(2.0 * self.a)
        noise = rng.standard_normal((num_samples, self.n2, self.n1 - 1)) / np.sqrt(2.0 * self.b)
        for j in range(self.n2):
            prev = out[:, 0]
            for i in range(self.n1 - 1):
                index = 1 + j * (self.n1 - 1) + i
                out[:, index] = prev * prev + noise[:, j, i]
                prev = out[:, index]
        return out

    # -- exact moments ------------------------------------------------------------------------------

    def _location(self, index: int) -> tuple[int, int]:
        """(block, level) of coordinate ``index``; level 0 is x_1 (block -1)."""
        if index == 0:
            return -1, 0
        block, offset = divmod(index - 1, self.n1 - 1)
        return block, offset + 1

    def _down(self, poly: np.ndarray, block: int, level: int, to_level: int) -> np.ndarray:
        """A polynomial in x_{block, level} as the conditional expectation polynomial in
        x_{block, to_level} (level 0 is x_1)."""
        for current in range(level, to_level, -1):
            poly = _reduce(poly, 1.0 / math.sqrt(2.0 * self.b[block, current - 1]))
        return poly

    def _expect_x1(self, poly: np.ndarray) -> float:
        """E[poly(x_1)] for x_1 ~ N(mu, 1/(2a)), from its raw moments."""
        var = 1.0 / (2.0 * self.a)
        moments = [1.0, self.mu]
        for p in range(2, poly.size):
            moments.append(self.mu * moments[p - 1] + (p - 1) * var * moments[p - 2])
        return float(np.dot(poly, moments[: poly.size]))

    def _conditional(self, index: int, power: int) -> np.ndarray:
        """E[x_index^power | x_1] as a polynomial in x_1."""
        block, level = self._location(index)
        return self._down(np.eye(power + 1)[power], block, level, 0)

    def _second_moment(self, i: int, k: int) -> float:
        """E[x_i x_k]."""
        if i > k:
            i, k = k, i
        (block_i, level_i), (block_k, level_k) = self._location(i), self._location(k)
        if i == 0 or block_i == block_k:  # x_i is on x_k's chain: condition x_k on x_i
            poly = self._down(np.array([0.0, 1.0]), block_k, level_k, level_i)
            poly = np.concatenate([[0.0], poly])  # times x_i
            return self._expect_x1(self._down(poly, block_k, level_i, 0))
        return self._expect_x1(np.polynomial.polynomial.polymul(self._conditional(i, 1), self._conditional(k, 1)))

    def posterior_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact mean ``(dim,)`` and covariance ``(dim, dim)`` (module docstring)."""
        mean = np.array([self._expect_x1(self._conditional(i, 1)) for i in range(self.dim)])
        second = np.array([[self._second_moment(i, k) for k in range(self.dim)] for i in range(self.dim)])
        return mean, second - np.outer(mean, mean)
