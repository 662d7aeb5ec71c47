"""The target protocol: what every target provides, and what a target may add.

Every target has a dimension ``dim`` and a numpy log density with its gradient,
``log_prob_and_grad(x)``: that is enough for the numpy HMC backend. A target may add faces that
other engines run (each method returns the face, or None when the target has none):

============================  ================================================  ==================
face                          what it is                                        used by
============================  ================================================  ==================
:meth:`Target.cpp_target`     its ``pyvi._core`` twin (a C++ struct)            ``backend="cpp"``
:meth:`Target.numba_target`   its Numba face (a registered namedtuple)          ``backend="numba"``
:meth:`Target.torch_log_prob` a differentiable torch log density                ``backend="torch"``,
                                                                                ``vi`` (autograd)
:meth:`Target.fused_log_joint`  a torch op returning log p and its gradient     ``backend="torch"``,
                              analytically                                      ``vi.fit``'s
                                                                                autograd-free path
:meth:`Target.fused_leapfrog`  a torch op integrating every chain's whole        ``backend="torch"``
                              leapfrog trajectory (in place)
:meth:`Target.log_evidence`   log Z, exact                                      ``vi.kl``
============================  ================================================  ==================

Samplers and ``vi`` ask the target for a face and never test for a target type; a backend a
target has no face for raises one TypeError naming the target, the backend and what to use
instead (:func:`native_face`).

Adding a built-in native target (docs/architecture.md): its class in this package (a
:class:`BuiltInTarget`, which says how its three faces are made), its
C++ struct in ``csrc/core/targets/`` plus its name in ``registry.hpp``, its Numba face in
``pyvi/_numba/targets/`` plus its name in that package's import line, and its class in
``pyvi/_core.pyi``.

References:
    BlackJAX's ``logdensity_fn`` convention (a target is what the sampler can evaluate, not a type
    it knows): https://blackjax-devs.github.io/blackjax/.
"""

from __future__ import annotations

import abc
import numbers
from collections.abc import Callable
from functools import cached_property

import numpy as np

from pyvi._validate import choice

__all__ = ["Target", "BuiltInTarget", "as_target", "native_face", "BACKEND_FACES"]

#: Which face each HMC backend but numpy runs (``torch`` prefers a target's fused log-joint op to
#: its torch log density where it has one: pyvi/hmc/torch_backend/face.py).
BACKEND_FACES = {"cpp": "cpp_target", "numba": "numba_target", "torch": "torch_log_prob"}


class Target(abc.ABC):
    """Base of pyvi's targets: an unnormalised log density over R^dim.

    Subclasses set ``dim`` (an int >= 1, as a class or instance attribute) and implement
    :meth:`log_prob_and_grad`; the faces below default to "not provided".

    Example:
        >>> class Normal(Target):
        ...     dim = 1
        ...     def log_prob_and_grad(self, x):
        ...         return -0.5 * float(x @ x), -x
        >>> Normal().log_prob_and_grad(np.ones(1))
        (-0.5, array([-1.]))
        >>> Normal().cpp_target() is None
        True
    """

    dim: int

    @abc.abstractmethod
    def log_prob_and_grad(self, x: np.ndarray) -> tuple[float | np.ndarray, np.ndarray]:
        """log p(x) (up to a constant) and d log p / dx, with numpy: for one point ``(dim,)`` a
        float and a ``(dim,)`` array (what the numpy sampler calls)."""

    def cpp_target(self):
        """The ``pyvi._core`` twin (for ``backend="cpp"``), or None."""
        return None

    def numba_target(self):
        """The Numba face, a namedtuple registered in ``pyvi._numba.targets`` (for
        ``backend="numba"``), or None."""
        return None

    def torch_log_prob(self, impl: str = "reference") -> Callable | None:
        """A differentiable torch log density ``theta (batch, dim) -> (batch,)``, or None.
        ``impl="fused"`` asks for the target's fused op where it has one (through autograd)."""
        return None

    def fused_log_joint(self) -> Callable | None:
        """A torch op ``theta (batch, dim) -> (log_prob (batch,), grad (batch, dim))`` with an
        analytic gradient (no autograd graph), or None. ``vi.fit`` chains it by hand with a fused
        flow's ops."""
        return None

    def fused_leapfrog(self) -> Callable | None:
        """A torch op ``(x, momentum, grad, step_size, num_steps) -> log_prob`` that integrates each
        chain's leapfrog trajectory (x, momentum, grad ``(C, dim)``, updated in place to the end
        point's; ``step_size (C,)`` of their dtype, ``num_steps (C,)`` int32), the same arithmetic
        as the torch sampler's plain leapfrog over :meth:`fused_log_joint`, or None."""
        return None

    def log_evidence(self) -> float:
        """log Z = log of the integral of exp(log p): exact, for targets that know it."""
        raise TypeError(f"{type(self).__name__} does not know its log evidence (log normalising constant)")


class BuiltInTarget(Target):
    """A built-in target with a ``pyvi._core`` twin, a Numba face and a torch log density.

    A subclass says how each face is made (:meth:`_new_cpp_target`, :meth:`_new_numba_target`,
    :meth:`_new_torch_log_prob`); the two native faces are made on first use and kept (a target's
    parameters do not change after construction), and ``impl`` is checked here for all of them.
    """

    def cpp_target(self):
        """The ``pyvi._core`` twin (for ``backend="cpp"``), made once."""
        return self._cpp_target

    @cached_property
    def _cpp_target(self):
        return self._new_cpp_target()

    def numba_target(self):
        """The Numba face (for ``backend="numba"``), made once."""
        return self._numba_target

    @cached_property
    def _numba_target(self):
        return self._new_numba_target()

    def torch_log_prob(self, impl: str = "reference") -> Callable:
        """A differentiable torch log density ``theta (..., dim) -> (...)``: plain torch
        (``"reference"``) or the target's fused op through autograd (``"fused"``; a target without
        one has one implementation whatever ``impl``)."""
        choice(impl, "impl", ("reference", "fused"))
        return self._new_torch_log_prob(impl)

    @abc.abstractmethod
    def _new_cpp_target(self):
        """A new ``pyvi._core`` twin of this target."""

    @abc.abstractmethod
    def _new_numba_target(self):
        """A new Numba face of this target (a namedtuple registered in ``pyvi._numba.targets``)."""

    @abc.abstractmethod
    def _new_torch_log_prob(self, impl: str) -> Callable:
        """The torch log density for ``impl`` (already checked)."""


class _DuckTarget(Target):
    """Any object with ``dim`` and ``log_prob_and_grad``, as a numpy-only :class:`Target`."""

    def __init__(self, target):
        self.target = target
        self.dim = target.dim

    def log_prob_and_grad(self, x):
        return self.target.log_prob_and_grad(x)

    def __repr__(self) -> str:
        return repr(self.target)


def as_target(target) -> Target:
    """``target`` as a :class:`Target`: itself, or an object with an integer ``dim >= 1`` and a
    ``log_prob_and_grad`` method wrapped as a numpy-only target.

    Raises:
        TypeError: ``target`` is neither.
    """
    if not isinstance(target, Target):
        if not (hasattr(target, "dim") and callable(getattr(target, "log_prob_and_grad", None))):
            raise TypeError("target must have an integer `dim` and a `log_prob_and_grad` method (see "
                            f"pyvi.targets.Target); got {type(target).__name__}")
        target = _DuckTarget(target)
    dim = target.dim
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
        raise TypeError(f"target.dim must be an integer >= 1, got {dim!r}")
    return target


def native_face(target: Target, backend: str):
    """The face of ``target`` that ``backend`` (``"cpp"``, ``"numba"`` or ``"torch"``) runs.

    Raises:
        TypeError: the target has none; the message names the target, the backend and what to
            use instead.
    """
    face = getattr(target, BACKEND_FACES[backend])()
    if face is None:
        name = type(target.target if isinstance(target, _DuckTarget) else target).__name__
        others = [b for b, method in BACKEND_FACES.items() if b != backend and getattr(target, method)() is not None]
        instead = f"backend={others[0]!r} or 'numpy'" if others else "backend='numpy', which runs any target"
        raise TypeError(f"{name} cannot run on backend {backend!r}: it has no {backend} face "
                        f"(Target.{BACKEND_FACES[backend]}() returned None); use {instead}")
    return face
