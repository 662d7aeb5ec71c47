"""Exact ground truth for the banana posterior by one-dimensional quadrature.

Given theta2, the model is linear-Gaussian in theta1: with a = theta2^2,
y ~ N(a 1, sigma_y^2 I + sigma_theta^2 1 1^T) after integrating theta1 out, so

    log p(y | theta2) = -n/2 log(2 pi) - n log sigma_y - 1/2 log(1 + n sigma_theta^2 / sigma_y^2)
                        - ss / (2 sigma_y^2) - n (ybar - a)^2 / (2 (sigma_y^2 + n sigma_theta^2)),

and theta1 | theta2, y ~ N(m(a), 1/P) with P = n / sigma_y^2 + 1 / sigma_theta^2 and
m(a) = n (ybar - a) / (sigma_y^2 P). Everything exact then needs one integral over theta2. The
integrand g(theta2) = log N(theta2; 0, sigma_theta^2) + log p(y | theta2) is even, so we integrate
over theta2 >= 0, on the interval where g > max g - 60 (the rest weighs < e^-60), with the
trapezoid rule on a uniform grid: for a smooth integrand that vanishes at the ends, or is even at
0, the trapezoid rule converges faster than any power of the spacing (Trefethen & Weideman,
"The exponentially convergent trapezoidal rule", SIAM Review 56 (2014)).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["BananaQuadrature"]

_LOG_CUTOFF = 60.0  # nats below the peak where the theta2 integrand is dropped


class BananaQuadrature:
    """The theta2 marginal of the banana posterior on a fine grid, and what follows from it."""

    def __init__(self, num_data: float, mean_y: float, ss_y: float, sigma_y: float, sigma_theta: float,
                 num_points: int = 2**14 + 1):
        n, var_y, var_t = num_data, sigma_y**2, sigma_theta**2
        self.marginal_var = var_y + n * var_t  # Var of ybar-direction after integrating theta1
        self.theta1_precision = n / var_y + 1.0 / var_t
        self._n, self._ybar, self._var_y, self._var_t = n, mean_y, var_y, var_t
        self._const = (
            -0.5 * n * math.log(2 * math.pi) - n * math.log(sigma_y)
            - 0.5 * math.log1p(n * var_t / var_y) - 0.5 * ss_y / var_y
            - 0.5 * math.log(2 * math.pi * var_t)
        )
        # g as a function of a = theta2^2 >= 0 is the concave quadratic
        #   c0 - a / (2 var_t) - n (ybar - a)^2 / (2 V);  its maximum over a >= 0:
        V = self.marginal_var
        try:
            a_peak = max(0.0, mean_y - V / (2.0 * n * var_t))
            g_peak = self._g_of_a(a_peak)
            # Solve g(a) = g_peak - cutoff: alpha a^2 + beta a + gamma = 0.
            alpha = -n / (2 * V)
            beta = n * mean_y / V - 1.0 / (2 * var_t)
            gamma = self._const - n * mean_y**2 / (2 * V) - (g_peak - _LOG_CUTOFF)
            disc = math.sqrt(max(beta * beta - 4 * alpha * gamma, 0.0))
            # The cancellation-free form of the two roots (Numerical Recipes, Sec. 5.6): with a
            # flat likelihood (large sigma_y) alpha is tiny and (-beta + disc) / (2 alpha) is
            # 0 / 0-like; q / alpha and gamma / q are each accurate.
            q = -0.5 * (beta + math.copysign(disc, beta))
            roots = sorted((q / alpha, gamma / q)) if q != 0.0 else (-beta / (2 * alpha),) * 2
            a_lo, a_hi = max(0.0, roots[0]), max(roots[1], a_peak)
            self.grid = np.linspace(math.sqrt(a_lo), math.sqrt(a_hi), num_points)  # theta2 >= 0
        except (OverflowError, ValueError):
            self.grid = np.full(num_points, math.nan)
        self.spacing = self.grid[1] - self.grid[0]
        if not (self.spacing > 0.0 and np.isfinite(self.grid[-1]) and math.isfinite(self._const)):
            # mean(y)^2 overflows (|mean(y)| beyond ~1e150), or the theta2 posterior is narrower
            # than float64's spacing where it lies: no grid resolves it.
            raise ValueError(f"the exact posterior (log_evidence, posterior_moments, sample_exact, density_grid) is "
                             f"beyond float64's resolution for these data: mean(y) = {mean_y!r} is too large for "
                             f"sigma_y = {sigma_y!r}")
        log_integrand = self.log_joint_theta2(self.grid)
        peak = log_integrand.max()
        weights = np.full(num_points, self.spacing)
        weights[[0, -1]] *= 0.5  # trapezoid end weights
        density = np.exp(log_integrand - peak)
        half_mass = float(np.sum(weights * density))
        # log p(y) = log(2 * integral over theta2 >= 0).
        self.log_evidence = float(peak) + math.log(2.0 * half_mass)
        self.density = density / half_mass  # density of |theta2| on the grid (integrates to 1)
        self._weights = weights * self.density  # quadrature weights of E[f(|theta2|)]

    def _g_of_a(self, a: float) -> float:
        return self._const - a / (2 * self._var_t) - self._n * (self._ybar - a) ** 2 / (2 * self.marginal_var)

    def log_joint_theta2(self, theta2: np.ndarray) -> np.ndarray:
        """log p(theta2, y) = log N(theta2; 0, sigma_theta^2) + log p(y | theta2) (theta1 integrated out)."""
        a = np.square(theta2)
        return self._const - a / (2 * self._var_t) - self._n * (self._ybar - a) ** 2 / (2 * self.marginal_var)

    def theta1_mean(self, theta2: np.ndarray) -> np.ndarray:
        """E[theta1 | theta2, y]."""
        return self._n * (self._ybar - np.square(theta2)) / (self._var_y * self.theta1_precision)

    def expect(self, fn) -> float:
        """E[fn(|theta2|)] under the posterior (fn must be even in theta2 or applied to |theta2|)."""
        return float(np.sum(self._weights * fn(self.grid)))

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact posterior mean and covariance of (theta1, theta2)."""
        m1 = self.expect(self.theta1_mean)
        e11 = 1.0 / self.theta1_precision + self.expect(lambda t: self.theta1_mean(t) ** 2)
        e22 = self.expect(np.square)
        # theta2 -> -theta2 leaves the posterior unchanged: E[theta2] = Cov(theta1, theta2) = 0.
        mean = np.array([m1, 0.0])
        cov = np.array([[e11 - m1 * m1, 0.0], [0.0, e22]])
        return mean, cov

    def sample(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        """i.i.d. posterior draws: |theta2| by inverse CDF of the piecewise-linear grid density,
        a random sign, then theta1 | theta2 from its Gaussian."""
        f = self.density
        cell_mass = 0.5 * self.spacing * (f[:-1] + f[1:])
        cdf = np.concatenate([[0.0], np.cumsum(cell_mass)])
        cdf /= cdf[-1]
        u = rng.random(num_samples)
        cell = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, len(cell_mass) - 1)
        # Inside a cell the density is linear from f0 to f1; invert its CDF (a quadratic) stably.
        v = (u - cdf[cell]) / np.maximum(cdf[cell + 1] - cdf[cell], 1e-300)
        f0, f1 = f[cell], f[cell + 1]
        mass = 0.5 * (f0 + f1) * v
        t = 2.0 * mass / (f0 + np.sqrt(np.maximum(f0 * f0 + v * (f1 * f1 - f0 * f0), 0.0)))
        t = np.where(f0 + f1 > 0, np.clip(t, 0.0, 1.0), v)
        theta2 = (self.grid[cell] + t * self.spacing) * np.where(rng.random(num_samples) < 0.5, -1.0, 1.0)
        theta1 = self.theta1_mean(theta2) + rng.standard_normal(num_samples) / math.sqrt(self.theta1_precision)
        return np.stack([theta1, theta2], axis=-1)
