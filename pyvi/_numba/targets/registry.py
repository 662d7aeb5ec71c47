"""The Numba face of a target, and how the samplers find its log density.

A target's Numba face is an instance of a namedtuple class holding its parameters (numbers and
arrays; no namedtuple nested in it: a prange body cannot take one). Each face class is registered
with the ``@njit`` function that computes its log density, ``fn(face, x, grad) -> log p(x)``
writing the gradient into ``grad`` (1-D float64 arrays), and with its dimension when that is fixed
(2 for the banana) or None when it comes from the parameters. Declare ``fn`` with
``inline="always"``: it runs at every leapfrog step, and a call updates the reference count of
every array it is passed (the face's included), two atomic operations each; inlined, the 5-D
Gaussian's sampler runs 1.5x faster.

Samplers call :func:`log_prob_and_grad` on any face; Numba resolves it by the face's type when it
compiles, so the sampler is specialised for each target (the log density inlined, no run-time
dispatch) and stays cacheable on disk (a face type is a named class, unlike a function argument).
A fixed dimension lets the leapfrog keep the state in registers (see ``pyvi._numba.registers``).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba.extending import overload

__all__ = ["register", "is_registered", "saved_faces_only", "log_prob_and_grad", "log_prob_and_grad_batch", "has_fixed_dim",
           "fixed_dim_of", "Entry"]


class Entry(NamedTuple):
    """What the registry knows about one face class."""

    log_prob_and_grad: object  # the @njit function fn(face, x, grad) -> float
    dim: int | None  # the fixed dimension, or None
    saved: bool  # whether samplers specialised on this face may be saved in numba's disk cache


_REGISTRY: dict[type, Entry] = {}


def register(face_class: type, *, dim: int | None, saved: bool = True):
    """Decorator registering an ``@njit`` log density for faces of ``face_class`` (a namedtuple
    class); ``dim`` is the target's fixed dimension, or None when it varies per instance.

    ``saved=False`` keeps every sampler specialised on the face out of numba's disk cache (see
    :func:`saved_faces_only`): for a face class that numba could not find again by name in another
    process, or whose log density may change without the sampler's source file changing (a user's
    function, :mod:`pyvi._numba.targets.user`)."""

    def decorate(fn):
        if face_class in _REGISTRY:
            raise ValueError(f"{face_class.__name__} is registered already")
        _REGISTRY[face_class] = Entry(fn, dim, saved)
        return fn

    return decorate


def is_registered(face_class: type) -> bool:
    return face_class in _REGISTRY


class _SavedFacesOnly:
    """A numba dispatcher's disk cache, minus the signatures that hold a face registered with
    ``saved=False``: those are compiled in each process and never loaded from or saved to disk.

    Numba keys a cached function's index by the function's own source file only, and keeps one
    index per function for all its signatures: a sampler saved for a user's function would run
    that function's old code after an edit, and a face class that cannot be unpickled in a later
    process would break the loading of the index for every target, the built-in ones included.
    """

    def __init__(self, cache):
        self._cache = cache

    def load_overload(self, sig, target_context):
        return None if _unsaved(sig) else self._cache.load_overload(sig, target_context)

    def save_overload(self, sig, data):
        if not _unsaved(sig):
            self._cache.save_overload(sig, data)

    def __getattr__(self, name):
        return getattr(self._cache, name)


def _unsaved(signature) -> bool:
    """Whether a signature (a tuple of numba types, or a Signature) holds a face kept out of the cache."""
    for argument in getattr(signature, "args", signature):
        entry = _entry(argument)
        if entry is not None and not entry.saved:
            return True
    return False


def saved_faces_only(dispatcher):
    """Decorator for an ``@njit(cache=True)`` function that takes a face (outermost): its disk
    cache skips the faces registered with ``saved=False`` (:class:`_SavedFacesOnly`). Functions
    inlined into their callers (``inline="always"``) are never compiled on their own and need it
    not. (Replaces numba's private ``Dispatcher._cache``; a dispatcher without one, as under
    ``NUMBA_DISABLE_JIT=1``, is returned as it is.)"""
    cache = getattr(dispatcher, "_cache", None)
    if cache is not None:
        dispatcher._cache = _SavedFacesOnly(cache)
    return dispatcher


def _entry(face_type) -> Entry | None:
    """The registry entry of a Numba type, or None (the type is not a registered face)."""
    return _REGISTRY.get(getattr(face_type, "instance_class", None))


def fixed_dim_of(face_type) -> int | None:
    """The fixed dimension of a face's Numba type (at compile time), or None."""
    entry = _entry(face_type)
    return None if entry is None else entry.dim


def log_prob_and_grad(target, x, grad):
    """log p(x) of the face ``target``; writes d log p / dx into ``grad``."""
    return _REGISTRY[type(target)].log_prob_and_grad(target, x, grad)


@overload(log_prob_and_grad)
def _log_prob_and_grad(target, x, grad):
    entry = _entry(target)
    if entry is None:
        raise numba.core.errors.TypingError(f"{target} is not a registered Numba target face (pyvi._numba.targets)")
    fn = entry.log_prob_and_grad
    return lambda target, x, grad: fn(target, x, grad)


def has_fixed_dim(target) -> bool:
    """Whether the face ``target`` has a fixed dimension (a compile-time constant in @njit code)."""
    return _REGISTRY[type(target)].dim is not None


@overload(has_fixed_dim)
def _has_fixed_dim(target):
    constant = fixed_dim_of(target) is not None
    return lambda target: constant


@saved_faces_only
@numba.njit(cache=True, parallel=True)
def log_prob_and_grad_batch(target, points):
    """:func:`log_prob_and_grad` over the rows of ``points`` (n, d): ``(log_prob (n,), grad (n, d))``."""
    n, d = points.shape
    log_prob = np.empty(n)
    grad = np.empty((n, d))
    for i in numba.prange(n):
        log_prob[i] = log_prob_and_grad(target, points[i], grad[i])
    return log_prob, grad

