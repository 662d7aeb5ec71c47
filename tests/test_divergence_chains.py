"""pyvi.divergence.knn_kl on MCMC output and its options (issue #15 item 20, the k-NN parts of items
10 and 14; issue #10 item 6): chain arrays, the default k, the standard error of chains, the
autocorrelation warning, knn_kl_estimate instead of a return type switched by a flag, num_threads
(workers deprecated), complex input."""

import math
import warnings

import numpy as np
import pytest

from pyvi.divergence import AutocorrelationWarning, KLEstimate, knn_kl, knn_kl_estimate


def _random_walk(rng, chains, draws, d, step):
    """Chains of a Gaussian AR(1) with small steps: strongly autocorrelated, stationary N(0, I)."""
    phi = math.sqrt(1.0 - step * step)
    out = np.empty((chains, draws, d))
    out[:, 0] = rng.normal(size=(chains, d))
    for t in range(1, draws):
        out[:, t] = phi * out[:, t - 1] + step * rng.normal(size=(chains, d))
    return out


def test_chain_arrays_are_flattened_chain_by_chain():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 500, 2)), rng.normal(0.5, 1.0, size=(3, 400, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # independent draws: no AutocorrelationWarning
        value = knn_kl(x, y)
        estimate = knn_kl_estimate(x, y)
    assert value == knn_kl(x.reshape(-1, 2), y.reshape(-1, 2)) == estimate.value
    assert estimate.num_chains == 4 and estimate.terms.shape == (2000,)
    assert estimate.chain_neighbour_fraction < 0.1
    flat = knn_kl_estimate(x.reshape(-1, 2), y.reshape(-1, 2))
    assert flat.num_chains is None and flat.chain_neighbour_fraction is None
    assert flat.effective_sample_size == 2000
    # Independent draws: the ESS of the terms is about n, so the two standard errors agree.
    assert estimate.standard_error == pytest.approx(flat.standard_error, rel=0.2)


def test_autocorrelated_chains_warn_and_get_an_honest_standard_error():
    # The case in small: chains against an independent sample of the same distribution score
    # well above 0 with a naive standard error that claims precision; the chains' standard error
    # counts their autocorrelation, and the warning says that the estimate is biased.
    rng = np.random.default_rng(1)
    chains = _random_walk(rng, 4, 3000, 5, step=0.3)  # autocorrelation time about 20 draws
    reference = rng.normal(size=(8000, 5))
    with pytest.warns(AutocorrelationWarning, match="chains are autocorrelated"):
        estimate = knn_kl_estimate(chains, reference)
    naive = knn_kl_estimate(chains.reshape(-1, 5), reference)
    assert estimate.value == naive.value and estimate.value > 0.3  # biased upwards (0.40; thinned: 0.03)
    assert estimate.chain_neighbour_fraction > 0.5  # 0.63
    assert estimate.effective_sample_size < 0.2 * 12000  # 1644
    assert estimate.standard_error > 2 * naive.standard_error  # 0.022 against 0.008
    with pytest.warns(AutocorrelationWarning):
        knn_kl(chains, reference)
    with warnings.catch_warnings():  # thinned enough: no warning
        warnings.simplefilter("error")
        assert abs(knn_kl(chains[:, ::100], reference)) < 0.1


def test_default_k_is_5_and_k_1_stays_reachable():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(200, 2))
    assert knn_kl(x, y) == knn_kl(x, y, 5) != knn_kl(x, y, 1)
    assert knn_kl_estimate(x, y).k == 5


def test_return_details_is_deprecated_and_knn_kl_returns_a_float():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(200, 2))
    assert type(knn_kl(x, y)) is float
    with pytest.warns(DeprecationWarning, match="knn_kl_estimate"):
        details = knn_kl(x, y, return_details=True)
    assert isinstance(details, KLEstimate)
    np.testing.assert_array_equal(details.terms, knn_kl_estimate(x, y).terms)
    with pytest.warns(DeprecationWarning):
        assert knn_kl(x, y, return_details=False) == knn_kl(x, y)
    with pytest.raises(TypeError, match="return_details must be a bool"):
        knn_kl(x, y, return_details="yes")


def test_num_threads_and_the_deprecated_workers():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(200, 2))
    with pytest.warns(DeprecationWarning, match="num_threads"):
        assert knn_kl(x, y, workers=2) == knn_kl(x, y, num_threads=2)
    with pytest.raises(TypeError, match="pass num_threads only"):
        knn_kl(x, y, num_threads=1, workers=1)
    # Counts beyond a C int: the argument's name, not pybind11's "incompatible function arguments".
    for backend in ("cpp", "numba", "scipy"):
        with pytest.raises(ValueError, match=r"num_threads must be <= 2147483647"):
            knn_kl(x, y, backend=backend, num_threads=2**40)
        with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match=r"workers must be <= 2147483647"):
            knn_kl(x, y, backend=backend, workers=2**40)
        # More threads than cores run as that many: the same result.
        assert knn_kl(x, y, backend=backend, num_threads=2**31 - 1) == knn_kl(x, y, backend=backend, num_threads=1)
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        knn_kl_estimate(x, y, num_threads=-3)


@pytest.mark.parametrize("backend", ["cpp", "numba", "scipy"])
def test_complex_input_is_refused(backend):
    # Before: silently cast to the real part (numpy's ComplexWarning aside).
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(20, 2))
    with pytest.raises(TypeError, match="x must hold real numbers"):
        knn_kl(x + 1j, y, backend=backend)
    with pytest.raises(TypeError, match="y must hold real numbers"):
        knn_kl(x, y.astype(np.complex64), backend=backend)
    with pytest.raises(TypeError, match="x must hold real numbers"):
        knn_kl_estimate([[1 + 0j, 2], [3, 4], [5, 6]], y, 1, backend=backend)
