"""Problem 2 on trained flows: L_1 <= L_2 <= L_5 <= L_10 <= L_100 <= log p(y), with tolerances
from the standard errors (fixed seeds)."""

import math

import pytest

from pyvi import vi
from pyvi.flows import NICE, PlanarFlow, RealNVP

KS = (1, 2, 5, 10, 100)


@pytest.fixture(scope="module", params=["planar", "NICE", "RealNVP"])
def trained(request, homework_banana):
    make = {"planar": lambda: PlanarFlow(seed=0), "NICE": lambda: NICE(seed=0), "RealNVP": lambda: RealNVP(seed=0)}
    flow = make[request.param]().double()
    vi.fit(flow, homework_banana, num_steps=600, progress=False, seed=0)  # short: the gaps stay visible
    return flow


def test_iwae_bounds_are_ordered(trained, homework_banana):
    bounds = [vi.iwae_bound(trained, homework_banana, K, num_estimates=3000, seed=K) for K in KS]
    log_evidence = homework_banana.log_evidence()
    for lower, upper in zip(bounds, bounds[1:]):
        noise = 3 * math.hypot(lower.standard_error, upper.standard_error)
        assert lower.value <= upper.value + noise, (lower, upper)
    assert bounds[-1].value <= log_evidence + 3 * bounds[-1].standard_error
    # Not vacuous: after 600 steps the ELBO sits clearly below log p(y) and L_100 closes most of the gap.
    assert log_evidence - bounds[0].value > 5 * bounds[0].standard_error
    assert bounds[-1].value - bounds[0].value > 3 * math.hypot(bounds[0].standard_error, bounds[-1].standard_error)


def test_l1_is_the_elbo(trained, homework_banana):
    l1 = vi.iwae_bound(trained, homework_banana, 1, num_estimates=20000, seed=3)
    elbo = vi.elbo(trained, homework_banana, 20000, seed=4)
    assert abs(l1.value - elbo.value) < 4 * math.hypot(l1.standard_error, elbo.standard_error)


def test_bad_input(trained, homework_banana):
    with pytest.raises(ValueError, match="K"):
        vi.iwae_bound(trained, homework_banana, 0)
    with pytest.raises(ValueError, match="num_estimates"):
        vi.iwae_bound(trained, homework_banana, 2, num_estimates=1)
