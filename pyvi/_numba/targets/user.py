"""The Numba face of a user's log density (:class:`pyvi.targets.NumbaTarget`): a face class per
user function, so that the samplers are specialised on (and inline) that function.

A user function ``fn(x, grad, *data) -> float`` gets a namedtuple face class with one field per
data argument, ``d0 .. d{n-1}``, registered (:mod:`pyvi._numba.targets.registry`) with the log
density ``target, x, grad -> fn(x, grad, target.d0, ..., target.d{n-1})``. The sampler compiled for
that class has ``fn`` inlined at every leapfrog step, like a built-in target's; its dimension is a
compile-time constant up to :data:`MAX_FIXED_DIM` (state in registers, chains in groups).

``fn`` is inlined when it is compiled with numba's defaults (no ``fastmath``, ``error_model``
``"python"``, no ``boundscheck``), which are the sampler's own, so inlining changes nothing in its
arithmetic; otherwise the sampler calls it, compiled with its own options (inlined code would take
the sampler's).

Caching. Numba keys a function's disk cache by that function's source file only, so a sampler
saved for a user function would keep running its old code after the user edits it. pyvi saves the
sampler for ``fn`` (numba's ``cache=True``) only when ``fn`` is itself declared ``cache=True``,
under a face class named after a digest of everything numba's own cache of ``fn`` depends on: its
bytecode and constants, its closure, its compile options and its source file's time stamp and size.
An edit of ``fn`` therefore makes a new class, and a new sampler; an edit of a function ``fn``
calls in another file is not seen, exactly as by numba's cache of ``fn`` itself. Such classes live
in this module, which recreates them by name when numba reads its cache index in a new process.
For any other ``fn`` the samplers are compiled once per process and never saved (registered with
``saved=False``). The first call's compile time is measured (:func:`pyvi.targets.NumbaTarget.compile`).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections import namedtuple

import numba

from pyvi._numba.targets.registry import is_registered, register

__all__ = ["face_class", "MAX_FIXED_DIM", "inlinable", "caches_on_disk"]

#: Largest dimension registered as fixed (a compile-time constant): the leapfrog then keeps 8 chains'
#: positions, momenta and gradients on the stack (3 x 8 x MAX_FIXED_DIM doubles, 12 KiB) and LLVM
#: unrolls its loops; beyond it, one chain at a time on heap arrays.
MAX_FIXED_DIM = 64

#: Names of the face classes of cached user functions: UserFace<num_data>_d<dim or x>_<digest>.
_NAME = re.compile(r"UserFace(\d+)_d(\d+|x)_([0-9a-f]{32})")
#: Faces of user functions without cache=True, by (fn, dim key, number of data arguments).
_LOCAL: dict[tuple, type] = {}


def _make_class(name: str, num_data: int, module: str | None) -> type:
    return namedtuple(name, [f"d{i}" for i in range(num_data)], module=module)


def __getattr__(name: str):
    # Numba's cache index pickles face classes by name; a new process meets them here first.
    match = _NAME.fullmatch(name)
    if match is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = globals()[name] = _make_class(name, int(match.group(1)), __name__)
    return cls


def inlinable(fn) -> bool:
    """Whether ``fn`` has numba's default options, which the sampler's code has too."""
    options = fn.targetoptions
    return (not options.get("fastmath") and options.get("error_model", "python") == "python"
            and not options.get("boundscheck"))


def caches_on_disk(fn) -> bool:
    """Whether ``fn`` was declared ``cache=True`` (numba keeps that as the dispatcher's cache
    object, not among its options)."""
    from numba.core.caching import NullCache

    return not isinstance(getattr(fn, "_cache", NullCache()), NullCache)


def _code_digest(code) -> list:
    """What identifies a code object's compiled behaviour: bytecode, constants (code objects
    recursively), names."""
    constants = [_code_digest(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts]
    return [code.co_code.hex(), constants, list(code.co_names), list(code.co_varnames)]


def _digest(fn, dim_key: str, num_data: int) -> str | None:
    """A digest of everything numba's cache of ``fn`` depends on, or None when there is no way to
    tell (a closure that does not pickle)."""
    py_func = fn.py_func
    closure = py_func.__closure__
    try:
        cells = pickle.dumps(tuple(cell.cell_contents for cell in closure)) if closure else b""
    except Exception:  # noqa: BLE001  (any pickling failure: not cacheable, compile per process)
        return None
    try:
        path = py_func.__code__.co_filename
        stat = os.stat(path)
        stamp = (path, stat.st_mtime_ns, stat.st_size)
    except OSError:  # a function typed into an interpreter: its code is all there is
        stamp = None
    options = sorted((key, repr(value)) for key, value in fn.targetoptions.items())
    parts = [py_func.__module__, py_func.__qualname__, _code_digest(py_func.__code__), cells.hex(), options, stamp,
             dim_key, num_data, numba.__version__]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _log_density(fn, num_data: int):
    """``target, x, grad -> fn(x, grad, target.d0, ...)`` as an inlined ``@njit`` function."""
    call = numba.njit(inline="always")(fn.py_func) if inlinable(fn) else fn
    arguments = "".join(f", target[{i}]" for i in range(num_data))
    namespace = {"fn": call}
    exec(f"def log_density(target, x, grad):\n    return fn(x, grad{arguments})\n", namespace)  # noqa: S102
    return numba.njit(inline="always")(namespace["log_density"])


def face_class(fn, dim: int, num_data: int) -> type:
    """The registered face class of the user function ``fn`` (an ``@njit`` dispatcher) with
    ``num_data`` data arguments in dimension ``dim`` (made and registered on first use)."""
    fixed = dim if dim <= MAX_FIXED_DIM else None
    dim_key = "x" if fixed is None else str(dim)
    digest = _digest(fn, dim_key, num_data) if caches_on_disk(fn) else None
    if digest is None:
        key = (fn, dim_key, num_data)
        cls = _LOCAL.get(key)
        if cls is None:
            cls = _LOCAL[key] = _make_class(f"UserFace{num_data}_{fn.py_func.__name__}", num_data, None)
            register(cls, dim=fixed, saved=False)(_log_density(fn, num_data))
        return cls
    name = f"UserFace{num_data}_d{dim_key}_{digest}"
    cls = globals().get(name) or __getattr__(name)
    if not is_registered(cls):
        register(cls, dim=fixed)(_log_density(fn, num_data))
    return cls
