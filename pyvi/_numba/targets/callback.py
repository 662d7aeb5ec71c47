"""A user's ``@njit`` log density as a C function pointer, for the C++ core (``backend="cpp"``).

pyvi compiles, for each user function ``fn(x, grad, *data)`` and each layout of ``data`` (kind,
dtype and number of dimensions of every item), a ``numba.cfunc`` with the signature of
``pyvi._core.CallbackTarget``::

    double logp(const double* x, double* grad, int64_t dim, void* user_data)

How ``data`` reaches it: ``user_data`` points to a block of int64 (:class:`Callback`'s ``header``)
that holds, for each item in order, its address and, for an array, its shape (a number is stored
in a one-element array of its own dtype, and passed on as a number); the cfunc rebuilds each item
as an array view of that memory (no copy) and calls ``fn`` with them. The :class:`Callback`
object keeps the arrays, the block and the cfunc alive; the C++ target keeps the Callback alive.
The shapes are read at run time, so one compiled cfunc serves every data set of the same layout.

Exceptions: a prange or a C caller cannot receive one, so the cfunc catches what ``fn`` raises,
records the first point where it happened in the block and returns NaN, and so does every later
call of that run; :meth:`Callback.raise_pending` (called by pyvi after each native call) then calls
``fn`` again from Python at that point, which raises the exception itself, with a note saying
where it happened.
"""

from __future__ import annotations

import time

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

__all__ = ["Callback", "SIGNATURE"]

#: double (const double* x, double* grad, int64_t dim, void* user_data)
SIGNATURE = types.float64(types.CPointer(types.float64), types.CPointer(types.float64), types.int64, types.voidptr)
#: header[0]: set when fn raised; header[1]: address of the point where it first did.
_FLAG, _POINT, _ITEMS = 0, 1, 2


@intrinsic
def _pointer(typingctx, address):
    """The int64 ``address`` as a ``void*``."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))

    return types.voidptr(address), codegen


def layout_of(data: tuple) -> tuple:
    """The layout of checked ``data`` (C-contiguous arrays and numpy scalars): what a cfunc is
    compiled for."""
    return tuple(("array", item.dtype.str, item.ndim) if isinstance(item, np.ndarray) else ("number", item.dtype.str)
                 for item in data)


def _source(layout: tuple) -> tuple[str, int]:
    """The cfunc's Python source for ``layout`` and the length of its header."""
    lines = ["def callback(x_ptr, grad_ptr, dim, user_data):",
             "    header = carray(user_data, (HEADER,), int64)",
             f"    if header[{_FLAG}] != 0:",
             "        return nan",
             "    x = carray(x_ptr, (dim,))",
             "    grad = carray(grad_ptr, (dim,))"]
    at = _ITEMS
    for i, item in enumerate(layout):
        if item[0] == "array":
            shape = "".join(f"header[{at + 1 + k}], " for k in range(item[2]))
            lines.append(f"    d{i} = carray(pointer(header[{at}]), ({shape}), dtype{i})")
            at += 1 + item[2]
        else:
            lines.append(f"    d{i} = carray(pointer(header[{at}]), (1,), dtype{i})[0]")
            at += 1
    arguments = "".join(f", d{i}" for i in range(len(layout)))
    lines += ["    try:",
              f"        value = fn(x, grad{arguments})",
              "    except Exception:",
              f"        if header[{_FLAG}] == 0:",
              f"            header[{_FLAG}] = 1",
              f"            point = carray(pointer(header[{_POINT}]), (dim,), float64)",
              "            for i in range(dim):",
              "                point[i] = x[i]",
              "        return nan",
              "    return value"]
    return "\n".join(lines) + "\n", at


#: Compiled cfuncs by (fn, layout): (cfunc, header length, compile seconds).
_COMPILED: dict[tuple, tuple] = {}


def _compiled(fn, layout: tuple):
    key = (fn, layout)
    if key not in _COMPILED:
        source, length = _source(layout)
        namespace = {"fn": fn, "carray": numba.carray, "pointer": _pointer, "int64": np.int64, "float64": np.float64,
                     "nan": np.nan, "HEADER": length}
        namespace.update({f"dtype{i}": np.dtype(item[1]).type for i, item in enumerate(layout)})
        exec(source, namespace)  # noqa: S102  (generated above from the layout only)
        start = time.perf_counter()
        cfunc = numba.cfunc(SIGNATURE)(namespace["callback"])
        _COMPILED[key] = (cfunc, length, time.perf_counter() - start)
    return _COMPILED[key]


class Callback:
    """``fn`` with ``data`` as a C function pointer and its ``user_data`` block (see module doc).

    Attributes:
        address: the function pointer (an int).
        user_data: the address of the header block.
        compile_seconds: how long compiling the cfunc took (0.0 when this process had compiled it
            for the same function and layout already).
    """

    def __init__(self, fn, dim: int, data: tuple):
        self.fn, self.dim, self.data = fn, dim, data
        layout = layout_of(data)
        fresh = (fn, layout) not in _COMPILED
        self.cfunc, length, seconds = _compiled(fn, layout)
        self.compile_seconds = seconds if fresh else 0.0
        self.error_point = np.full(dim, np.nan)
        self._numbers = []  # one-element arrays holding the numbers of data
        header = np.zeros(length, np.int64)
        header[_POINT] = self.error_point.ctypes.data
        at = _ITEMS
        for item in data:
            if isinstance(item, np.ndarray):
                header[at] = item.ctypes.data
                header[at + 1:at + 1 + item.ndim] = item.shape
                at += 1 + item.ndim
            else:
                number = np.array([item])
                self._numbers.append(number)
                header[at] = number.ctypes.data
                at += 1
        self.header = header
        self.address = self.cfunc.address
        self.user_data = header.ctypes.data

    def raise_pending(self, where: str) -> None:
        """Raises what ``fn`` raised in the last native call (see module doc), if it did; then
        clears the record for the next call."""
        if not self.header[_FLAG]:
            return
        point = self.error_point.copy()
        self.header[_FLAG] = 0
        try:
            self.fn(point.copy(), np.empty(self.dim), *self.data)
        except Exception as error:
            error.add_note(f"(raised by the log density fn at x = {point.tolist()} during {where}; that run's "
                           "results were discarded)")
            raise
        raise RuntimeError(f"the log density fn raised an exception in compiled code at x = {point.tolist()} during "
                           f"{where}, but not when called again at that point from Python (does fn depend on anything "
                           "but its arguments?); that run's results were discarded")
