"""A log density given as a raw C function pointer, for users with C, C++, Cython or ctypes code.

The function has the signature::

    double logp(const double* x, double* grad, int64_t dim, void* user_data);

it returns log p(x) (up to a constant) and writes d log p / dx into ``grad[0 .. dim)``;
``user_data`` is passed through untouched (scipy's ``LowLevelCallable`` idea). The C++ sampler
calls it with the GIL released, from several threads at once when there are several chains: it
must be reentrant and thread-safe, must not throw (a C++ exception crossing it is undefined
behaviour) and must not touch Python objects. A non-finite value or gradient is not an error: the
transition is rejected and counted as divergent. pyvi cannot check the signature of a raw pointer:
a pointer to anything else crashes the process.

It runs on ``backend="cpp"``, on ``backend="numpy"`` (called through ctypes, the baseline) and in
``pyvi.vi`` (CPU tensors, :mod:`pyvi.targets.native_torch`); ``backend="numba"`` cannot call it.
"""

from __future__ import annotations

import ctypes
import numbers
from functools import cached_property

import numpy as np

from pyvi._backend import require
from pyvi._validate import as_float_array, count
from pyvi.targets.base import Target
from pyvi.targets.numba_target import check_point_of

__all__ = ["CTarget", "C_SIGNATURE"]

#: The function type, for ctypes users: ``C_SIGNATURE(python_function)`` makes a pointer (slow:
#: every call goes through Python and takes the GIL), ``ctypes.cast(C_SIGNATURE(...), c_void_p)``
#: its address.
C_SIGNATURE = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double),
                               ctypes.c_int64, ctypes.c_void_p)


def _address(value, name: str) -> int:
    """An address from an int, a ctypes pointer or function pointer, or an object with an integer
    ``address`` (a ``numba.cfunc``)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an address (an int), a ctypes pointer or a numba cfunc, got bool")
    if hasattr(value, "address") and isinstance(value.address, numbers.Integral):  # numba.cfunc
        value = value.address
    elif isinstance(value, ctypes._CFuncPtr | ctypes._Pointer | ctypes.c_void_p):
        value = ctypes.cast(value, ctypes.c_void_p).value or 0
    if not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an address (an int), a ctypes pointer or a numba cfunc, got "
                        f"{type(value).__name__}")
    if not 0 <= value < 2**64:
        raise ValueError(f"{name} must be an address in [0, 2**64), got {value}")
    return int(value)


def _user_data_address(user_data) -> int:
    """``user_data`` as an address: None is 0; a numpy array its data; a ctypes object its address;
    anything else as for the function."""
    if user_data is None:
        return 0
    if isinstance(user_data, np.ndarray):
        return user_data.ctypes.data
    if isinstance(user_data, ctypes._SimpleCData | ctypes.Structure | ctypes.Array | ctypes.Union) and not isinstance(
            user_data, ctypes.c_void_p):
        return ctypes.addressof(user_data)
    return _address(user_data, "user_data")


class CTarget(Target):
    """A log density at a C function pointer ``double logp(const double* x, double* grad, int64_t
    dim, void* user_data)`` (see the module doc for what the function must do).

    Args:
        address: the function: an int address, a ctypes function pointer or a ``numba.cfunc``.
        dim: the dimension of ``x``.
        user_data: passed to every call: None (NULL), an int address, a numpy array or a ctypes
            object (its address). The target keeps a reference to it, so the memory stays valid
            while the target lives.
        check_point: where the function is called once, at construction, to check that it writes
            a finite gradient where it returns a finite log p (zeros by default).

    Raises:
        ValueError: a null ``address``; a finite log p with a non-finite gradient at
            ``check_point``; a bad ``dim`` or ``check_point``.
        TypeError: ``address`` or ``user_data`` of a type that is no address.

    Example:
        >>> import numba
        >>> from pyvi._numba.targets.callback import SIGNATURE
        >>> @numba.cfunc(SIGNATURE)
        ... def standard_normal(x, grad, dim, user_data):
        ...     total = 0.0
        ...     for i in range(dim):
        ...         grad[i] = -x[i]
        ...         total -= 0.5 * x[i] * x[i]
        ...     return total
        >>> target = CTarget(standard_normal, dim=2)
        >>> target.log_prob_and_grad(np.ones(2))
        (-1.0, array([-1., -1.]))
    """

    def __init__(self, address, dim: int, user_data=None, *, check_point=None):
        self.address = _address(address, "address")
        if self.address == 0:
            raise ValueError("address must be a non-null function pointer, got NULL (0)")
        self.dim = count(dim, "dim", minimum=1)
        self.user_data = user_data
        self._user_data = _user_data_address(user_data)
        self._owner = (address, user_data)  # what the pointers point into, kept alive with the target
        self._function = C_SIGNATURE(self.address)
        point = check_point_of(check_point, self.dim)
        value, grad = self._call(point)
        if np.isfinite(value) and not np.isfinite(grad).all():
            raise ValueError(f"the function returned log p = {value} at check_point but left non-finite values in "
                             f"grad ({grad.tolist()}): it must write d log p / dx into grad[0 .. dim)")

    def _call(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float64)
        grad = np.full(self.dim, np.nan)
        as_double = ctypes.POINTER(ctypes.c_double)
        value = self._function(x.ctypes.data_as(as_double), grad.ctypes.data_as(as_double), self.dim, self._user_data)
        return float(value), grad

    def __repr__(self) -> str:
        return f"CTarget(address={self.address:#x}, dim={self.dim})"

    def log_prob_and_grad(self, x) -> tuple[float | np.ndarray, np.ndarray]:
        """log p(x) and its gradient by a ctypes call per point (``x`` of shape ``(dim,)`` or
        ``(..., dim)``)."""
        x = as_float_array(x, "x", finite=False)
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., {self.dim}), got {x.shape}")
        results = [self._call(point) for point in x.reshape(-1, self.dim)]
        log_prob = np.array([value for value, _ in results])
        grad = np.array([g for _, g in results]).reshape(x.shape)
        return (float(log_prob[0]) if x.ndim == 1 else log_prob.reshape(x.shape[:-1])), grad

    def cpp_target(self):
        """The ``pyvi._core.CallbackTarget`` calling the pointer."""
        return self._cpp_target

    @cached_property
    def _cpp_target(self):
        return require("cpp").CallbackTarget(self.address, self.dim, self._user_data, self._owner)

    def torch_log_prob(self, impl: str = "reference"):
        """log p on CPU torch tensors through the cpp face, differentiable once by autograd."""
        from pyvi._validate import choice
        from pyvi.targets.native_torch import log_prob

        choice(impl, "impl", ("reference", "fused"))
        return log_prob(self.cpp_target(), self.dim, "CTarget")

    def fused_log_joint(self):
        """``theta -> (log_prob, grad)`` on CPU tensors through the cpp face, no autograd graph."""
        from pyvi.targets.native_torch import log_joint

        return log_joint(self.cpp_target(), self.dim, "CTarget")
