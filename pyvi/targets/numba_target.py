"""A user's log density written with Numba, run at native speed by every HMC backend.

``fn(x, grad, *data) -> float`` is an ``@numba.njit`` function: it returns log p(x) up to a
constant and writes d log p / dx into ``grad`` (both ``x`` and ``grad`` are float64 arrays of
shape ``(dim,)``); ``data`` holds the model's arrays and numbers (observations, a design matrix),
so one compiled function serves many data sets. It runs:

- on ``backend="numba"``: inlined into the Numba sampler, which is specialised on it (no Python
  call per step; :mod:`pyvi._numba.targets.user`);
- on ``backend="cpp"``: as a C function pointer the C++ sampler calls with the GIL released (a
  ``numba.cfunc`` pyvi builds around ``fn``; ``data`` reaches it through a block of addresses and
  shapes, :mod:`pyvi._numba.targets.callback`);
- on ``backend="numpy"``: called from Python at each step (the readable baseline);
- in ``pyvi.vi``: evaluated natively on CPU tensors (:mod:`pyvi.targets.native_torch`).

The cpp and numba backends give the same draws bit for bit (the same function compiled twice with
the same floating-point semantics: keep ``fastmath`` off).
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable
from functools import cached_property

import numpy as np

from pyvi._backend import require
from pyvi._validate import as_float_array, count
from pyvi.targets.base import Target

__all__ = ["NumbaTarget", "check_point_of"]


def check_point_of(check_point, dim: int) -> np.ndarray:
    """The point a user target's function is called at once, at construction: ``check_point`` as a
    finite ``(dim,)`` float64 array, zeros when None."""
    if check_point is None:
        return np.zeros(dim)
    point = as_float_array(check_point, "check_point", ndim=1)
    if point.shape != (dim,):
        raise ValueError(f"check_point must have shape ({dim},), got {point.shape}")
    return point.copy()


def _numba_function(fn):
    """``fn`` if it is an ``@numba.njit`` function pyvi can compile into its samplers."""
    try:
        from numba.core.registry import CPUDispatcher
    except ImportError as error:
        raise ImportError(f"NumbaTarget needs numba: {error}") from error
    if not isinstance(fn, CPUDispatcher):
        hint = "; decorate it with @numba.njit, or use pyvi.targets.LogDensity (numpy backend only)" if callable(fn) else ""
        raise TypeError(f"fn must be a @numba.njit function fn(x, grad, *data) -> float, got {type(fn).__name__}{hint}")
    if fn.targetoptions.get("parallel"):
        raise TypeError("fn must not be compiled with parallel=True: pyvi runs the chains in parallel and calls fn "
                        "from several threads at once")
    return fn


def _data_item(item, i: int):
    """One item of ``data``: a C-contiguous numeric numpy array (passed as it is, never copied) or
    a number (as a numpy scalar of a fixed type)."""
    name = f"data[{i}]"
    if isinstance(item, np.ndarray):
        if item.dtype.kind not in "biufc":
            raise TypeError(f"{name} must be an array of numbers or booleans, got dtype {item.dtype}")
        if not item.dtype.isnative:
            raise ValueError(f"{name} must be in the machine's byte order, got dtype {item.dtype.str}")
        if item.ndim == 0:
            raise ValueError(f"{name} is a 0-d array: pass a number instead (e.g. float({name}))")
        if not (item.flags.c_contiguous and item.flags.aligned):
            raise ValueError(f"{name} must be C-contiguous and aligned (pyvi passes your arrays as they are, "
                             "never a silent copy: pass np.ascontiguousarray(...))")
        return item
    if isinstance(item, bool | np.bool_):
        return np.bool_(item)
    if isinstance(item, np.generic) and item.dtype.kind in "iufc":
        return item
    if isinstance(item, numbers.Integral):
        if not -(2**63) <= item < 2**63:
            raise ValueError(f"{name} = {item} does not fit in a 64-bit integer")
        return np.int64(item)
    if isinstance(item, numbers.Real):
        return np.float64(item)
    if isinstance(item, numbers.Complex):
        return np.complex128(item)
    raise TypeError(f"{name} must be a numpy array or a number, got {type(item).__name__}")


def checked_data(data) -> tuple:
    """``data`` as a tuple of checked items (:func:`_data_item`)."""
    if isinstance(data, np.ndarray) or not isinstance(data, tuple | list):
        raise TypeError(f"data must be a tuple of arrays and numbers (the arguments of fn after x and grad), got "
                        f"{type(data).__name__}; for one array a write (array,)")
    return tuple(_data_item(item, i) for i, item in enumerate(data))


class NumbaTarget(Target):
    """A log density ``fn(x, grad, *data) -> float`` written with Numba, on every HMC backend.

    Args:
        fn: an ``@numba.njit`` function returning log p(x) (up to a constant) and writing
            d log p / dx into ``grad``; ``x`` and ``grad`` are float64 arrays of shape ``(dim,)``.
            It must be serial (no ``parallel=True``), must not write into ``data`` (all chains and
            threads share it) and should keep ``fastmath`` off (with it the cpp and numba backends
            may differ in the last bits). Declare it ``cache=True`` to have numba keep the
            samplers compiled for it on disk (see below).
        dim: the dimension of ``x``.
        data: the arguments after ``(x, grad)``: numpy arrays (C-contiguous, numeric; passed as
            they are, not copied) and numbers (``int`` as int64, ``float`` as float64).
        check_point: where ``fn`` is called once, at construction, to check its signature and what
            it returns (zeros by default; pass a point where it is defined if zero is not).

    Raises:
        TypeError: ``fn`` is not an ``@njit`` function, cannot be called as ``fn(x, grad, *data)``
            or does not return one number; a ``data`` item of an unsupported type.
        ValueError: ``fn`` returned a finite log p at ``check_point`` but left a non-finite
            gradient (did it write ``grad``?); a bad ``dim``, ``data`` item or ``check_point``.
        Exception: whatever ``fn`` raised at ``check_point``, with a note saying so.

    At run time a non-finite log p or gradient is not an error: the transition is rejected and
    counted as divergent. An exception raised by ``fn`` while sampling stops the run and reaches
    the caller as that exception, with a note saying where it happened.

    Compile times: the first ``hmc.sample`` on ``backend="numba"`` compiles the sampler for ``fn``
    (seconds; once per process, or loaded from numba's disk cache when ``fn`` is ``cache=True``),
    the first on ``backend="cpp"`` a small cfunc. :meth:`compile` does it ahead and reports the
    seconds, also kept in :attr:`compile_seconds` (``"fn"``: the check's compilation of ``fn``
    itself and its one call).

    Example:
        >>> import numba
        >>> @numba.njit
        ... def standard_normal(x, grad):
        ...     total = 0.0
        ...     for i in range(x.shape[0]):
        ...         grad[i] = -x[i]
        ...         total -= 0.5 * x[i] * x[i]
        ...     return total
        >>> target = NumbaTarget(standard_normal, dim=3)
        >>> target.log_prob_and_grad(np.ones(3))
        (-1.5, array([-1., -1., -1.]))
    """

    def __init__(self, fn: Callable, dim: int, data: tuple = (), *, check_point=None):
        self.fn = _numba_function(fn)
        self.dim = count(dim, "dim", minimum=1)
        self.data = checked_data(data)
        self.compile_seconds: dict[str, float] = {}
        self._check(check_point_of(check_point, self.dim))

    def _check(self, point: np.ndarray) -> None:
        import numba

        grad = np.full(self.dim, np.nan)
        start = time.perf_counter()
        try:
            value = self.fn(point.copy(), grad, *self.data)
        except (numba.core.errors.TypingError, TypeError) as error:
            types = ", ".join(numba.typeof(item).__str__() for item in self.data)
            raise TypeError(f"fn cannot be called as fn(x, grad, *data) with x and grad float64 arrays of shape "
                            f"({self.dim},) and data of types ({types}): {str(error).strip().splitlines()[0]}") from error
        except Exception as error:
            error.add_note(f"(raised by fn at check_point = {point.tolist()}, where NumbaTarget calls it once to check "
                           "it; pass check_point= a point where fn is defined)")
            raise
        self.compile_seconds["fn"] = time.perf_counter() - start
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            shape = f" of shape {value.shape}" if hasattr(value, "shape") else ""
            raise TypeError(f"fn must return log p(x) as one number, got {type(value).__name__}{shape}")
        if np.isfinite(value) and not np.isfinite(grad).all():
            raise ValueError(f"fn returned log p = {value} at check_point but left non-finite values in grad "
                             f"({grad.tolist()}): it must write d log p / dx into grad, in place")

    def __repr__(self) -> str:
        return f"NumbaTarget({getattr(self.fn, '__name__', self.fn)}, dim={self.dim}, data=<{len(self.data)} items>)"

    def log_prob_and_grad(self, x) -> tuple[float | np.ndarray, np.ndarray]:
        """log p(x) and its gradient, ``fn`` called from Python: for ``x`` of shape ``(dim,)`` a
        float and a ``(dim,)`` array, for ``(..., dim)`` arrays of shape ``(...)`` and ``(..., dim)``."""
        x = as_float_array(x, "x", finite=False)
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., {self.dim}), got {x.shape}")
        points = np.ascontiguousarray(x.reshape(-1, self.dim))
        grad = np.empty_like(points)
        log_prob = np.array([float(self.fn(point, g, *self.data)) for point, g in zip(points, grad)])
        if x.ndim == 1:
            return float(log_prob[0]), grad[0]
        return log_prob.reshape(x.shape[:-1]), grad.reshape(x.shape)

    # -- faces (pyvi.targets.Target) ---------------------------------------------------------------

    def numba_target(self):
        """The Numba face: an instance of the face class made for ``fn`` (pyvi/_numba/targets/user.py)."""
        return self._numba_target

    @cached_property
    def _numba_target(self):
        require("numba")
        from pyvi._numba.targets.user import face_class

        return face_class(self.fn, self.dim, len(self.data))(*self.data)

    def cpp_target(self):
        """The ``pyvi._core.CallbackTarget`` calling the cfunc pyvi builds around ``fn``."""
        return self._cpp_target

    @cached_property
    def _cpp_target(self):
        core = require("cpp")
        require("numba")
        from pyvi._numba.targets.callback import Callback

        callback = Callback(self.fn, self.dim, self.data)
        self.compile_seconds["cpp"] = callback.compile_seconds
        return core.CallbackTarget(callback.address, self.dim, callback.user_data, callback)

    def torch_log_prob(self, impl: str = "reference"):
        """log p on CPU torch tensors ``(..., dim)``, through the cpp face, differentiable once by
        autograd (one implementation whatever ``impl``; see pyvi/targets/native_torch.py)."""
        from pyvi._validate import choice
        from pyvi.targets.native_torch import log_prob

        choice(impl, "impl", ("reference", "fused"))
        return log_prob(self.cpp_target(), self.dim, "NumbaTarget")

    def fused_log_joint(self):
        """``theta -> (log_prob, grad)`` on CPU tensors through the cpp face, no autograd graph:
        ``vi.fit``'s autograd-free path with a fused flow."""
        from pyvi.targets.native_torch import log_joint

        return log_joint(self.cpp_target(), self.dim, "NumbaTarget")

    def compile(self, backends: tuple[str, ...] | str = ("numba", "cpp")) -> dict[str, float]:
        """Compiles what ``backends`` run for ``fn`` now rather than at the first ``hmc.sample``
        (``"numba"``: the sampler specialised on ``fn``, or its copy in numba's disk cache;
        ``"cpp"``: the cfunc), and returns :attr:`compile_seconds` (seconds per backend; 0.0 for
        what this process had compiled already)."""
        from pyvi.hmc.native import compile_numba

        for backend in (backends,) if isinstance(backends, str) else backends:
            if backend == "numba":
                self.compile_seconds["numba"] = compile_numba(self.numba_target(), self.dim)
            elif backend == "cpp":
                self.cpp_target()
            else:
                raise ValueError(f"backends must name 'numba' and/or 'cpp', got {backend!r}")
        return dict(self.compile_seconds)
