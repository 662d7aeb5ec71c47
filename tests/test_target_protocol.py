"""The target protocol (pyvi.targets.Target): what every target provides, the faces a target may
add, and how hmc.sample, hmc.leapfrog and vi.fit ask for them instead of testing for a type."""

import numpy as np
import pytest
import torch

from pyvi import hmc, vi
from pyvi.flows import RealNVP
from pyvi.targets import Banana, Gaussian, LogDensity, Target, as_target
from pyvi.targets.base import BuiltInTarget


class StandardNormal(Target):
    """The smallest Target: a dimension and a numpy log density with its gradient."""

    dim = 2

    def log_prob_and_grad(self, x):
        return -0.5 * float(x @ x), -x


class DuckNormal:
    """Not a Target at all, but with the same two members."""

    dim = 2

    def log_prob_and_grad(self, x):
        return -0.5 * float(x @ x), -x


@pytest.mark.parametrize("target", [StandardNormal(), DuckNormal()], ids=["subclass", "duck-typed"])
def test_a_minimal_target_runs_on_numpy(target):
    result = hmc.sample(target, [0.0, 0.0], num_samples=3000, num_warmup=300, step_size=0.3, num_steps=5,
                        random_steps=True, num_chains=2, seed=0, backend="numpy")
    flat = result.flat_samples()
    assert abs(flat.mean()) < 0.1 and abs(flat.var() - 1.0) < 0.1
    x, p, log_prob = hmc.leapfrog(target, [1.0, 0.0], [0.0, 1.0], 0.01, 157, backend="numpy")
    assert abs(log_prob - target.log_prob_and_grad(x)[0]) == 0.0 and abs(x[0]) < 0.01  # a quarter period


def test_faces_default_to_none():
    target = StandardNormal()
    assert target.cpp_target() is None and target.numba_target() is None
    assert target.torch_log_prob() is None and target.fused_log_joint() is None
    with pytest.raises(TypeError, match="StandardNormal does not know its log evidence"):
        target.log_evidence()


@pytest.mark.parametrize("backend, instead", [("cpp", "use backend='numpy'"), ("numba", "use backend='numpy'"),
                                              ("torch", "use backend='numpy'")])
@pytest.mark.parametrize("target", [StandardNormal(), DuckNormal(), LogDensity(lambda x: 0.0, lambda x: 0 * x, 2)],
                         ids=["subclass", "duck-typed", "LogDensity"])
def test_a_target_without_the_backends_face_is_one_clear_type_error(target, backend, instead):
    name = type(target).__name__
    pattern = rf"^{name} cannot run on backend '{backend}': it has no {backend} face .*{instead}"
    with pytest.raises(TypeError, match=pattern):
        hmc.sample(target, [0.0, 0.0], 10, 10, 0.1, 5, backend=backend)
    with pytest.raises(TypeError, match=pattern):
        hmc.leapfrog(target, [0.0, 0.0], [0.0, 0.0], 0.1, 5, backend=backend)


class CppOnly(Target):
    """A target with a cpp face only: the error for numba points to cpp."""

    dim = 2

    def __init__(self):
        self.banana = Banana.default()

    def log_prob_and_grad(self, x):
        return self.banana.log_prob_and_grad(x)

    def cpp_target(self):
        return self.banana.cpp_target()


def test_the_error_names_another_backend_that_runs_the_target():
    with pytest.raises(TypeError, match=r"CppOnly cannot run on backend 'numba'.*use backend='cpp' or 'numpy'"):
        hmc.sample(CppOnly(), [0.0, 0.0], 10, 10, 0.1, 5, backend="numba")
    draws = hmc.sample(CppOnly(), [1.0, 0.5], 20, 20, 0.05, 5, seed=3, backend="cpp").samples
    np.testing.assert_array_equal(draws, hmc.sample(Banana.default(), [1.0, 0.5], 20, 20, 0.05, 5, seed=3).samples)


def test_bad_dim_is_a_type_error():
    class NoDim(StandardNormal):
        dim = 0

    with pytest.raises(TypeError, match="target.dim must be an integer >= 1"):
        as_target(NoDim())


def test_built_in_targets_declare_their_faces():
    banana, gaussian = Banana.default(), Gaussian([0.0, 1.0], [[1.0, 0.3], [0.3, 2.0]])
    for target in (banana, gaussian):
        assert isinstance(target, Target)
        assert target.cpp_target() is target.cpp_target()  # built once
        assert target.numba_target() is not None and target.torch_log_prob() is not None
    assert banana.fused_log_joint() is not None and gaussian.fused_log_joint() is None
    assert gaussian.log_evidence() == 0.0


def test_every_built_in_target_keeps_its_native_faces_and_checks_impl():
    """BuiltInTarget: both native faces made once per target, ``impl`` refused by name on all."""
    from pyvi.targets import Funnel, GaussianMixture, HybridRosenbrock

    targets = [Banana.default(), Gaussian([0.0, 1.0], [[1.0, 0.3], [0.3, 2.0]]), Funnel(3), HybridRosenbrock(),
               GaussianMixture([0.5, 0.5], [[0.0, 0.0], [2.0, 1.0]], [np.eye(2), 0.5 * np.eye(2)])]
    for target in targets:
        assert isinstance(target, BuiltInTarget)
        assert target.cpp_target() is target.cpp_target() and target.numba_target() is target.numba_target()
        theta = torch.zeros(2, target.dim, dtype=torch.float64)
        for impl in ("reference", "fused"):
            assert target.torch_log_prob(impl)(theta).shape == (2,)
        with pytest.raises(ValueError, match="impl"):
            target.torch_log_prob("fast")


def test_banana_faces_share_one_set_of_derived_parameters(default_banana):
    """The Numba face holds banana_params' values (C++), not a Python recomputation."""
    from pyvi import _core

    face = default_banana.numba_target()
    expected = _core.banana_params(default_banana.num_data, default_banana.mean_y, default_banana.ss_y,
                                   default_banana.sigma_y, default_banana.sigma_theta)
    assert face._asdict() == expected


# -- vi asks the target for its torch faces ----------------------------------------------------------


class FusedOnly(Target):
    """A wrapper exposing another target's faces: its fused op and its torch log density."""

    def __init__(self, target, fused: bool):
        self.target, self.fused, self.dim = target, fused, target.dim

    def log_prob_and_grad(self, x):
        return self.target.log_prob_and_grad(x)

    def torch_log_prob(self, impl="reference"):
        return self.target.torch_log_prob(impl)

    def fused_log_joint(self):
        return self.target.fused_log_joint() if self.fused else None


class SubBanana(Banana):
    pass


def _fit(target, steps=30):
    flow = RealNVP(num_couplings=2, hidden=4, depth=2, seed=0).double()
    result = vi.fit(flow, target, num_steps=steps, batch_size=64, progress=False)
    return result, flow


@pytest.mark.parametrize("make", [lambda b: SubBanana(b.y), lambda b: FusedOnly(b, fused=True)],
                         ids=["Banana subclass", "wrapper with the fused op"])
def test_vi_fit_takes_the_fast_path_through_the_protocol(default_banana, make):
    flow = RealNVP(num_couplings=2, hidden=4, depth=2, seed=0).double()
    assert vi._fast_path(flow, make(default_banana), "fused") is not None
    assert vi._fast_path(flow, FusedOnly(default_banana, fused=False), "fused") is None
    assert vi._fast_path(flow, StandardNormal(), "fused") is None
    fast, fast_flow = _fit(make(default_banana))
    reference, reference_flow = _fit(default_banana)
    np.testing.assert_array_equal(fast.elbo, reference.elbo)  # the same path as the Banana itself
    torch.testing.assert_close(fast_flow.params, reference_flow.params, rtol=0, atol=0)


def test_a_target_without_the_fused_op_falls_back_to_autograd_with_the_same_result(default_banana):
    fast, fast_flow = _fit(default_banana)
    slow, slow_flow = _fit(FusedOnly(default_banana, fused=False))
    np.testing.assert_allclose(slow.elbo, fast.elbo, rtol=1e-9)
    torch.testing.assert_close(slow_flow.params, fast_flow.params, rtol=1e-8, atol=1e-10)


def test_vi_on_a_target_without_a_torch_face_is_a_clear_type_error():
    flow = RealNVP(seed=0).double()
    with pytest.raises(TypeError, match="StandardNormal has no torch log density"):
        vi.fit(flow, StandardNormal(), num_steps=1, progress=False)
    with pytest.raises(TypeError, match="StandardNormal does not know its log evidence"):
        vi.kl(flow, StandardNormal(), num_samples=10)


def test_gaussian_torch_face_and_exact_kl():
    target = Gaussian([0.5, -1.0], [[1.0, 0.3], [0.3, 0.5]])
    theta = torch.randn(7, 2, dtype=torch.float64)
    np.testing.assert_allclose(target.torch_log_prob()(theta).numpy(), target.log_prob_and_grad(theta.numpy())[0],
                               rtol=1e-12)
    flow = RealNVP(seed=0).double()
    vi.fit(flow, target, num_steps=300, progress=False)
    estimate = vi.kl(flow, target, num_samples=20_000)
    assert 0.0 <= estimate.value + 4 * estimate.standard_error and estimate.value < 0.05
