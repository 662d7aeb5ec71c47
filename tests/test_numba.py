"""The Numba backend's infrastructure: the one thread-count context manager, the named records the
kernels pass around, the registry of target faces and the stack arrays behind the leapfrog."""

import dataclasses

import numba
import numpy as np
import pytest

from pyvi import _core
from pyvi._numba.threads import num_threads


def test_num_threads_sets_and_restores_the_count():
    limit = numba.config.NUMBA_NUM_THREADS
    before = numba.get_num_threads()
    with num_threads(1) as used:
        assert used == numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    for requested in (None, 0, limit + 5):  # all of the pool, or at most the pool
        with num_threads(requested) as used:
            assert used == numba.get_num_threads() == limit
    assert numba.get_num_threads() == before


def test_num_threads_restores_the_count_on_an_exception():
    before = numba.get_num_threads()
    with pytest.raises(RuntimeError, match="inside"):
        with num_threads(1):
            raise RuntimeError("inside")
    assert numba.get_num_threads() == before


def test_every_numba_caller_uses_the_context_manager():
    """numba.set_num_threads appears in one module only."""
    from pathlib import Path

    import pyvi

    callers = [path.relative_to(Path(pyvi.__file__).parent).as_posix()
               for path in Path(pyvi.__file__).parent.rglob("*.py") if "numba.set_num_threads(" in path.read_text()]
    assert callers == ["_numba/threads.py"]


def test_hmc_records_are_named_and_single_sourced():
    """The Numba settings record is the Python settings plus pyvi._core's constants plus the
    share's first chain (a distributed run's, pyvi/distributed.py), by name; the outputs are the ones pyvi._core defines (names, shapes, dtypes), and HMCResult takes them."""
    from pyvi._numba.hmc import Draws, Settings
    from pyvi.hmc import HMCResult
    from pyvi.hmc.settings import Settings as PythonSettings

    python_fields = [f.name for f in dataclasses.fields(PythonSettings)]
    assert sorted(Settings._fields) == sorted(python_fields + list(_core.hmc_constants) + ["first_chain"])
    assert Draws._fields == _core.hmc_outputs
    assert set(_core.hmc_outputs) <= {f.name for f in dataclasses.fields(HMCResult)}
    draws = _core.hmc_draws(3, 4, 2)
    assert tuple(draws) == _core.hmc_outputs
    assert draws["samples"].shape == (3, 4, 2) and draws["num_steps"].dtype == np.int32
    assert draws["divergent"].dtype == bool and draws["step_size"].shape == (3,)
    with pytest.raises(ValueError, match="dim must be >= 1"):
        _core.hmc_draws(1, 1, 0)


def test_sampler_constants_come_from_the_core():
    from pyvi import hmc

    assert hmc.MAX_ENERGY_ERROR == _core.hmc_constants["max_energy_error"] == 1000.0
    assert {k: _core.hmc_constants[k] for k in ("gamma", "kappa", "t0")} == {"gamma": 0.05, "kappa": 0.75, "t0": 10.0}


def test_target_registry():
    from typing import NamedTuple

    from pyvi._numba.targets import fixed_dim_of, log_prob_and_grad_batch, register
    from pyvi._numba.targets.banana import BananaFace
    from pyvi._numba.targets.gaussian import GaussianFace

    assert fixed_dim_of(numba.typeof(BananaFace(1.0, 0.0, 1.0, 1.0, 0.0))) == 2
    assert fixed_dim_of(numba.typeof(GaussianFace(0.0, np.zeros(3), np.eye(3)))) is None
    with pytest.raises(ValueError, match="registered already"):
        register(BananaFace, dim=2)(lambda target, x, grad: 0.0)

    class Unknown(NamedTuple):
        scale: float

    with pytest.raises(numba.core.errors.TypingError, match="not a registered Numba target face"):
        log_prob_and_grad_batch(Unknown(1.0), np.zeros((2, 2)))


def test_stack_array_is_a_writable_matrix():
    from pyvi._numba.registers import stack_array

    @numba.njit
    def trace():
        a = stack_array(2, 3)
        for i in range(2):
            for j in range(3):
                a[i, j] = 10.0 * i + j
        return a.shape[0], a.shape[1], a[1].sum(), a.flags.c_contiguous

    assert trace() == (2, 3, 33.0, True)


def test_borrowed_arrays_share_the_data_without_an_owner():
    """registers.borrowed: the same data, shape and numbers, and no meminfo (so no reference
    counts), for an array, the views taken of it and the arrays of a named tuple."""
    from collections import namedtuple

    from numba.core import cgutils, types
    from numba.extending import intrinsic
    from numba.np.arrayobj import make_array

    from pyvi._numba.registers import borrowed

    @intrinsic
    def owned(typingctx, array):
        def codegen(context, builder, signature, args):
            meminfo = make_array(signature.args[0])(context, builder, value=args[0]).meminfo
            return builder.icmp_unsigned("!=", meminfo, cgutils.get_null_value(meminfo.type))

        return types.boolean(array), codegen

    Pair = namedtuple("Pair", "a n")

    @numba.njit
    def probe(a, pair):
        b, p = borrowed(a), borrowed(pair)
        b[0] = 7.0
        p.a[1] = 8.0
        return owned(a), owned(b), owned(b[1:]), owned(p.a), p.n, b.shape[0], b[1:].sum()

    a = np.zeros(3)
    assert probe(a, Pair(a, 5)) == (True, False, False, False, 5, 3, 8.0)
    assert a.tolist() == [7.0, 8.0, 0.0]
