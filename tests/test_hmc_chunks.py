"""HMC runs in chunks of iterations (issue #15 item 12, the machinery NUTS's progress bars reuse,
issue #12): the draws do not depend on the chunks, progress is reported after each, and an
exception in the progress callback stops the run."""

import numpy as np
import pytest

from pyvi import hmc
from pyvi.hmc import chunks, native, reference
from pyvi.hmc.settings import Settings
from pyvi.targets import Banana, Gaussian

TARGETS = {"banana": Banana.default(), "gaussian-3d": Gaussian([0.5, -0.5, 0.0], np.diag([1.0, 2.0, 0.5]))}
#: Cuts of a 500-iteration run (200 warm-up): single iterations, a chunk across the end of the
#: warm-up, uneven sizes, one iteration at a time for a while.
CUTS = [[1], [199, 2, 299], [1, 7, 3, 250, 50, 1], [13]]


def _settings(**overrides):
    kwargs = dict(num_samples=300, num_warmup=200, step_size=0.1, num_steps=10, random_steps=True,
                  adapt_step_size=True, target_accept=0.8, seed=3)
    return Settings.validated(**{**kwargs, **overrides})


def _assert_same(a: dict, b: dict):
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("cut", CUTS, ids=lambda cut: "-".join(map(str, cut)))
@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_native_draws_do_not_depend_on_the_chunks(backend, name, cut):
    target = TARGETS[name]
    run = {"cpp": native.run_cpp, "numba": native.run_numba}[backend]
    face = target.cpp_target() if backend == "cpp" else target.numba_target()
    initial = np.random.default_rng(0).normal(size=(11, target.dim))  # a full group of 8 and a partial one
    whole = run(face, initial, _settings(), 1, chunks=[500])
    _assert_same(run(face, initial, _settings(), 2, chunks=cut), whole)
    _assert_same(run(face, initial, _settings(), 0), whole)  # the sizes chunks.run_in_chunks picks


@pytest.mark.parametrize("cut", CUTS[:3], ids=lambda cut: "-".join(map(str, cut)))
def test_numpy_draws_do_not_depend_on_the_chunks(cut):
    target, initial = TARGETS["banana"], np.array([[1.0, 0.5], [0.0, 0.0]])
    settings = _settings(num_samples=60, num_warmup=40)
    _assert_same(reference.sample_chains(target, initial, settings, chunks=cut),
                 reference.sample_chains(target, initial, settings, chunks=[100]))


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_progress_is_reported_after_every_chunk(backend):
    # Long enough for several chunks (the first one is ~2**22 leapfrog steps x dimensions).
    total = 500 if backend == "numpy" else 150_000
    kwargs = dict(num_samples=300, num_warmup=total - 300, step_size=0.05, num_steps=10, num_chains=3,
                  adapt_step_size=False, seed=1, backend=backend, warn=False)
    calls = []
    result = hmc.sample(TARGETS["banana"], [1.0, 0.5], progress=lambda done, total: calls.append((done, total)),
                        **kwargs)
    assert len(calls) >= 2 and calls[-1] == (total, total)
    assert all(n == total for _, n in calls)
    done = [d for d, _ in calls]
    assert done == sorted(set(done)) and done[0] >= 1
    np.testing.assert_array_equal(result.samples, hmc.sample(TARGETS["banana"], [1.0, 0.5], **kwargs).samples)


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_an_error_in_the_progress_callback_stops_the_run(backend):
    class Stop(Exception):
        pass

    calls = []

    def progress(done, total):
        calls.append(done)
        raise Stop

    with pytest.raises(Stop):
        hmc.sample(TARGETS["banana"], [1.0, 0.5], num_samples=10**6, num_warmup=10**6, step_size=0.05, num_steps=10,
                   backend=backend, progress=progress)
    assert len(calls) == 1 and calls[0] < 2 * 10**6
    with pytest.raises(TypeError, match="progress must be callable"):
        hmc.sample(TARGETS["banana"], [1.0, 0.5], 10, 10, 0.05, 5, backend=backend, progress="bar")


def test_chunks_grow_towards_the_target_duration():
    """The first chunk comes from the work estimate, the next ones from the measured speed (at
    most 16x per step), and together they cover the run exactly."""
    calls = []

    def advance(begin, end):
        calls.append((begin, end))

    chunks.run_in_chunks(advance, 10_000, 10, chunk_seconds=1e9)
    sizes = [end - begin for begin, end in calls]
    assert calls[0] == (0, 10) and sizes[1] == 160 and sizes[2] == 2560
    assert calls[-1][1] == 10_000 and all(a[1] == b[0] for a, b in zip(calls, calls[1:]))
    assert chunks.first_chunk(num_chains=64, num_steps=30, dim=2) == 2**22 // 3840
    assert chunks.first_chunk(num_chains=1, num_steps=1, dim=1) == 2**22


def test_a_cpp_run_is_advanced_by_its_owner_only():
    from pyvi import _core

    banana = TARGETS["banana"]
    run = _core.hmc_start(banana.cpp_target(), np.zeros((2, 2)), 10, 5, 0.05, 5, False, True, 0.8, 1000.0, 0)
    assert (run.iteration, run.num_iterations) == (0, 15)
    run.advance(4, 1)
    run.advance(100, 1)  # clipped to the run
    assert run.iteration == 15 and np.all(np.isfinite(run.outputs["samples"]))
    with pytest.raises(ValueError, match="iterations must be >= 0"):
        run.advance(-1, 1)
    with pytest.raises(TypeError, match="target must be one of pyvi._core's target classes"):
        _core.hmc_start("banana", np.zeros((1, 2)), 1, 1, 0.1, 1, False, False, 0.8, 1000.0, 0)
    del banana  # the run keeps the C++ target alive
    run2 = _core.hmc_start(Banana.default().cpp_target(), np.zeros((1, 2)), 10, 0, 0.05, 5, False, False, 0.8,
                           1000.0, 0)
    import gc

    gc.collect()
    run2.advance(10, 1)
    assert np.all(np.isfinite(run2.outputs["samples"]))


def test_torch_reports_progress_up_to_the_total():
    pytest.importorskip("torch")
    calls = []
    hmc.sample(TARGETS["banana"], [1.0, 0.5], num_samples=30, num_warmup=20, step_size=0.05, num_steps=5,
               num_chains=2, seed=1, backend="torch", warn=False, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (50, 50) and all(total == 50 for _, total in calls)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
