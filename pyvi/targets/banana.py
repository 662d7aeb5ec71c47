"""The banana-shaped posterior of Problem 3, with exact ground truth.

Model: y_i ~ N(theta1 + theta2^2, sigma_y^2), i = 1..n; prior theta ~ N(0, sigma_theta^2 I_2).
The posterior over theta = (theta1, theta2) is a curved ridge along theta1 + theta2^2 = ybar,
symmetric under theta2 -> -theta2.

The log joint log p(y, theta) (likelihood and prior fully normalised, so that it is on the scale of
log p(y)) comes in several implementations that must agree:

- numpy, vectorised over points and data (:meth:`Banana.log_prob_and_grad`, ``backend="numpy"``);
- C++ (``pyvi._core``) and Numba from the sufficient statistics (n, ybar, ss), O(1) per point
  (``backend="cpp"`` / ``"numba"``);
- torch, batched and differentiable (:meth:`Banana.log_prob` on a tensor), and the fused op
  ``torch.ops.pyvi.banana_log_joint`` with an analytic gradient (``impl="fused"``);
- a naive per-datum Python loop, the test reference (:meth:`Banana.log_prob_reference`).

Exact ground truth comes from one-dimensional quadrature (see :mod:`pyvi.targets.banana_exact`).
"""

from __future__ import annotations

import math
from functools import cached_property
from os import PathLike

import numpy as np

from pyvi._backend import available, require
from pyvi._validate import as_float_array, choice, count, positive_float, seed_value
from pyvi.targets.banana_exact import BananaQuadrature
from pyvi.targets.base import BuiltInTarget

__all__ = ["Banana", "DEFAULT_THETA", "DEFAULT_SEED", "SIGMA_RANGE"]

#: The true parameter behind :meth:`Banana.default`'s simulated data: theta1 + theta2^2 = 1.14,
#: close to the mean of the course's data file (1.118).
DEFAULT_THETA = (0.5, 0.8)
#: Seed of :meth:`Banana.default` (numpy's default_rng).
DEFAULT_SEED = 2022
#: The sigmas a Banana accepts (``kBananaSigmaMin``, ``kBananaSigmaMax`` of csrc/common/banana.h,
#: which pyvi._core exports as ``banana_sigma_range``; a test keeps the two equal): beyond them
#: 1/sigma^2 and the exact quadrature's ratios leave float64's range.
SIGMA_RANGE = (1e-50, 1e50)
_LOG_2PI = 1.8378770664093454835606594728112  # log(2 pi), correctly rounded as in banana.h
_DOWN, _UP = 2.0**-512, 2.0**512  # the scaling of banana_gradient_scaled (csrc/common/banana.h)


def _sigma(value, name: str) -> float:
    """A sigma in SIGMA_RANGE."""
    value = positive_float(value, name)
    if not SIGMA_RANGE[0] <= value <= SIGMA_RANGE[1]:
        raise ValueError(f"{name} must lie in [1e-50, 1e50] (beyond, 1/{name}^2 and the exact quadrature leave "
                         f"float64's range), got {value!r}")
    return value


class Banana(BuiltInTarget):
    """The banana posterior p(theta | y) of Problem 3.

    Args:
        y: the ``(n,)`` observations, finite, n >= 1.
        sigma_y: observation noise sd (the problem's 2), in ``SIGMA_RANGE`` = [1e-50, 1e50].
        sigma_theta: prior sd (the problem's 1), in ``SIGMA_RANGE``.

    Within that range the log joint is never NaN at a finite theta (far out it underflows to -inf)
    and its gradient is exact or +-inf where it overflows, on every backend (numpy, cpp, numba, the
    fused torch op); autograd through the plain torch implementation (``impl="reference"``) follows
    IEEE arithmetic and can give NaN where log p is -inf.

    References:
        Problem Set 4, Problem 3 (``shared/seed/problem-set.md``).

    Example:
        >>> banana = Banana.default()
        >>> banana.num_data, round(banana.log_evidence(), 4)
        (100, -223.9244)
    """

    dim = 2

    def __init__(self, y, sigma_y: float = 2.0, sigma_theta: float = 1.0):
        y = as_float_array(y, "y", ndim=1)
        if y.size == 0:
            raise ValueError("y must hold at least one observation")
        self.y = y.copy()
        self.y.setflags(write=False)
        self.sigma_y = _sigma(sigma_y, "sigma_y")
        self.sigma_theta = _sigma(sigma_theta, "sigma_theta")
        self.num_data = int(y.size)
        with np.errstate(over="ignore", invalid="ignore"):
            self.mean_y = float(np.mean(y))
            self.ss_y = float(np.sum(np.square(y - self.mean_y)))
        if not (math.isfinite(self.mean_y) and math.isfinite(self.ss_y)):
            raise ValueError("y is too large: its sum of squares overflows")
        if not math.isfinite(self.ss_y / (self.sigma_y * self.sigma_y)):
            raise ValueError(f"y's spread is too large for sigma_y = {self.sigma_y!r}: sum((y - mean(y))^2) / "
                             "sigma_y^2 overflows")

    # -- constructors ------------------------------------------------------------------------------

    @classmethod
    def default(cls, num_data: int = 100, seed: int = DEFAULT_SEED) -> Banana:
        """Simulated data from the model at theta = ``DEFAULT_THETA`` = (0.5, 0.8), sigma_y = 2:
        ``y = 0.5 + 0.8**2 + 2 * default_rng(seed).standard_normal(num_data)``."""
        num_data = count(num_data, "num_data", minimum=1)
        rng = np.random.default_rng(seed_value(seed))
        theta1, theta2 = DEFAULT_THETA
        return cls(theta1 + theta2**2 + 2.0 * rng.standard_normal(num_data))

    @classmethod
    def from_file(cls, path: str | PathLike, sigma_y: float = 2.0, sigma_theta: float = 1.0) -> Banana:
        """Loads ``y`` from a ``.npy`` file holding a 1-D array (like the course's banana_shape_data.npy)."""
        try:
            y = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as error:
            raise ValueError(f"path {str(path)!r} is not a readable .npy array: {error}") from error
        return cls(y, sigma_y, sigma_theta)

    def __repr__(self) -> str:
        return f"Banana(n={self.num_data}, ybar={self.mean_y:.4f}, sigma_y={self.sigma_y}, sigma_theta={self.sigma_theta})"

    # -- log joint ---------------------------------------------------------------------------------

    def _points(self, theta, name: str = "theta") -> np.ndarray:
        theta = as_float_array(theta, name)
        if theta.ndim == 0 or theta.shape[-1] != 2:
            raise ValueError(f"{name} must have shape (..., 2), got {theta.shape}")
        return theta

    def log_prob_and_grad(self, theta, backend: str = "numpy") -> tuple[np.ndarray | float, np.ndarray]:
        """log p(y, theta) and its gradient in theta, for theta of shape ``(..., 2)``.

        Args:
            theta: points, shape ``(..., 2)``.
            backend: ``"numpy"`` (vectorised over points x data), ``"cpp"`` or ``"numba"``
                (sufficient statistics, O(1) per point).
        """
        choice(backend, "backend", ("numpy", "cpp", "numba"))
        theta = self._points(theta)
        batch_shape = theta.shape[:-1]
        flat = np.ascontiguousarray(theta.reshape(-1, 2))
        if backend == "numpy":
            # Far from the data the joint underflows to -inf, a legitimate value: no warning.
            with np.errstate(over="ignore", invalid="ignore"):
                return self._numpy_log_prob_and_grad(flat, batch_shape)
        if backend == "cpp":  # (the C++ batch evaluation repairs overflowed gradients itself)
            log_prob, grad = require("cpp").log_prob_and_grad(self.cpp_target(), flat, num_threads=0)
        else:
            require("numba")
            from pyvi._numba.targets import log_prob_and_grad_batch

            log_prob, grad = log_prob_and_grad_batch(self.numba_target(), flat)
            with np.errstate(over="ignore", invalid="ignore"):
                self._repair_gradient(flat, grad)
        return self._shaped(log_prob, grad, batch_shape)

    def _repair_gradient(self, flat: np.ndarray, grad: np.ndarray) -> None:
        """Where a gradient row is NaN (a term overflowed), banana_gradient_scaled's gradient
        instead: the repair of csrc/common/banana.h, which the samplers skip (it costs their leapfrog;
        a NaN gradient ends a trajectory as an infinite one does)."""
        overflowed = np.isnan(grad).any(axis=1)
        if overflowed.any():
            grad[overflowed] = self._gradient_scaled(flat[overflowed])

    @staticmethod
    def _shaped(log_prob: np.ndarray, grad: np.ndarray, batch_shape: tuple):
        log_prob = log_prob.reshape(batch_shape)
        grad = grad.reshape(batch_shape + (2,))
        return (float(log_prob) if log_prob.ndim == 0 else log_prob), grad

    def _numpy_log_prob_and_grad(self, flat: np.ndarray, batch_shape: tuple):
        """Vectorised over points x data: the plain numpy formulation (no sufficient statistics),
        overflowed gradients repaired."""
        residual = self.y - (flat[:, :1] + flat[:, 1:] ** 2)  # (B, n)
        inv_var_y, inv_var_t = self.sigma_y**-2, self.sigma_theta**-2
        log_prob = (
            -0.5 * self.num_data * (_LOG_2PI + 2 * math.log(self.sigma_y))
            - 0.5 * inv_var_y * np.sum(residual**2, axis=1)
            - (_LOG_2PI + 2 * math.log(self.sigma_theta))
            - 0.5 * inv_var_t * np.sum(flat**2, axis=1)
        )
        dlik_dr = inv_var_y * np.sum(residual, axis=1)
        grad = np.stack([dlik_dr - inv_var_t * flat[:, 0], 2 * flat[:, 1] * dlik_dr - inv_var_t * flat[:, 1]], axis=1)
        self._repair_gradient(flat, grad)
        return self._shaped(log_prob, grad, batch_shape)

    def _gradient_scaled(self, flat: np.ndarray) -> np.ndarray:
        """banana_gradient_scaled of csrc/common/banana.h on points ``(B, 2)``: the gradient with
        theta2 divided by 2^512 and everything else by 2^1024, scaled back at the end."""
        t1, t2 = flat[:, 0], flat[:, 1]
        lik, prior = self.sigma_y**-2, self.sigma_theta**-2
        u = t2 * _DOWN
        t1_scaled = t1 * _DOWN * _DOWN
        residual = t1_scaled + u * u - self.mean_y * _DOWN * _DOWN
        n_lik = self.num_data * lik
        return np.stack([(-n_lik * residual - prior * t1_scaled) * _UP * _UP,
                         u * (-2.0 * n_lik * residual - prior * _DOWN * _DOWN) * _UP * _UP * _UP], axis=1)

    def log_prob(self, theta, impl: str = "reference"):
        """log p(y, theta) for theta of shape ``(..., 2)``.

        A numpy array gives a numpy result. A torch tensor gives a differentiable tensor:
        ``impl="reference"`` is plain torch over the data, ``impl="fused"`` the custom op
        ``torch.ops.pyvi.banana_log_joint`` (O(1) per point, analytic gradient, CPU and CUDA).
        """
        if hasattr(theta, "requires_grad"):  # a torch tensor
            choice(impl, "impl", ("reference", "fused"))
            if impl == "fused":
                from pyvi.ops import banana_log_joint

                return banana_log_joint(theta, self)
            return self._log_prob_torch(theta)
        return self.log_prob_and_grad(theta)[0]

    def _log_prob_torch(self, theta):
        import torch

        if theta.shape[-1:] != (2,):
            raise ValueError(f"theta must have shape (..., 2), got {tuple(theta.shape)}")
        if not theta.is_floating_point():
            raise TypeError(f"theta must be a floating-point tensor, got {theta.dtype}")
        y = torch.tensor(self.y, dtype=theta.dtype, device=theta.device)
        mean = theta[..., :1] + theta[..., 1:] ** 2
        return (
            -0.5 * self.num_data * (_LOG_2PI + 2 * math.log(self.sigma_y))
            - 0.5 * ((y - mean) ** 2).sum(-1) / self.sigma_y**2
            - (_LOG_2PI + 2 * math.log(self.sigma_theta))
            - 0.5 * (theta**2).sum(-1) / self.sigma_theta**2
        )

    def log_prob_reference(self, theta) -> float:
        """The naive per-datum sum of normal log densities at one point: the test reference."""
        t1, t2 = (float(v) for v in self._points(theta).reshape(2))
        total = 0.0
        for y_i in self.y:
            total += -0.5 * _LOG_2PI - math.log(self.sigma_y) - 0.5 * ((y_i - t1 - t2 * t2) / self.sigma_y) ** 2
        for t in (t1, t2):
            total += -0.5 * _LOG_2PI - math.log(self.sigma_theta) - 0.5 * (t / self.sigma_theta) ** 2
        return total

    # -- faces (pyvi.targets.Target) ---------------------------------------------------------------

    def _sufficient_statistics(self) -> tuple[float, float, float, float, float]:
        """(n, ybar, ss, sigma_y, sigma_theta): what every native face is built from."""
        return float(self.num_data), self.mean_y, self.ss_y, self.sigma_y, self.sigma_theta

    def _new_cpp_target(self):
        """The ``pyvi._core.BananaTarget`` twin, built from the same sufficient statistics."""
        return require("cpp").BananaTarget(*self._sufficient_statistics())

    def _new_numba_target(self):
        """The Numba face: ``banana_params`` of csrc/common/banana.h (read from ``pyvi._core``, so
        both backends use the same bits)."""
        from pyvi._numba.targets.banana import BananaFace

        return BananaFace(**require("cpp").banana_params(*self._sufficient_statistics()))

    def _new_torch_log_prob(self, impl: str):
        """:meth:`log_prob` on torch tensors: plain torch (``"reference"``) or the fused op
        through autograd (``"fused"``)."""
        return lambda theta: self.log_prob(theta, impl=impl)

    def fused_log_joint(self):
        """``torch.ops.pyvi.banana_log_joint`` on this data: ``theta (batch, 2) -> (log_prob,
        grad)`` with the analytic gradient; None when ``pyvi._C`` is not built."""
        if not available("torch_ops"):
            return None
        import torch

        import pyvi.ops  # noqa: F401  (registers the op's fake kernel)

        op, args = torch.ops.pyvi.banana_log_joint, self._sufficient_statistics()
        return lambda theta: op(theta, *args)

    def fused_leapfrog(self):
        """``torch.ops.pyvi.banana_leapfrog`` on this data (see :meth:`Target.fused_leapfrog`): every
        chain's trajectory in one op, in registers; None when ``pyvi._C`` is not built."""
        if not available("torch_ops"):
            return None
        import torch

        import pyvi.ops  # noqa: F401  (registers the op's fake kernel)

        op, args = torch.ops.pyvi.banana_leapfrog, self._sufficient_statistics()
        return lambda x, momentum, grad, step_size, num_steps: op(x, momentum, grad, step_size, num_steps, *args)

    # -- exact ground truth ------------------------------------------------------------------------

    @cached_property
    def _quadrature(self) -> BananaQuadrature:
        return BananaQuadrature(self.num_data, self.mean_y, self.ss_y, self.sigma_y, self.sigma_theta)

    def log_evidence(self) -> float:
        """log p(y), exact up to quadrature error (~1e-12 relative; see banana_exact)."""
        return self._quadrature.log_evidence

    def posterior_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact posterior mean ``(2,)`` and covariance ``(2, 2)`` of theta."""
        return self._quadrature.moments()

    def log_posterior(self, theta) -> np.ndarray | float:
        """The normalised log p(theta | y) = log p(y, theta) - log p(y), for theta of shape (..., 2)."""
        return self.log_prob(np.asarray(theta)) - self.log_evidence()

    def density_grid(self, theta1_range=(-2.5, 2.5), theta2_range=(-2.5, 2.5), num: int = 200):
        """The exact posterior density on a ``num x num`` grid, for contour plots.

        Returns:
            ``(theta1, theta2, density)``, each of shape ``(num, num)`` (``np.meshgrid`` order).
        """
        num = count(num, "num", minimum=2)
        t1 = np.linspace(*map(float, theta1_range), num)
        t2 = np.linspace(*map(float, theta2_range), num)
        grid1, grid2 = np.meshgrid(t1, t2)
        density = np.exp(self.log_posterior(np.stack([grid1, grid2], axis=-1)))
        return grid1, grid2, density

    def sample_exact(self, num_samples: int, seed: int | None = None) -> np.ndarray:
        """i.i.d. draws from the exact posterior, shape ``(num_samples, 2)``.

        |theta2| comes from inverting the CDF of its marginal density, piecewise linear on a grid of
        16,385 points (an O(h^2) approximation, far below any Monte Carlo error we can see), with a
        random sign; theta1 | theta2 is then Gaussian and drawn exactly.
        """
        num_samples = count(num_samples, "num_samples")
        rng = np.random.default_rng(None if seed is None else seed_value(seed))
        return self._quadrature.sample(num_samples, rng)
