"""The banana's fused leapfrog op (``pyvi::banana_leapfrog``, csrc/torch/banana_leapfrog.cpp) and the
torch sampler's path through it: bit for bit the plain torch leapfrog over the fused log-joint op
on the CPU, for fixed and random path lengths, per-chain step sizes, float64 and float32; rejected
divergences where a trajectory leaves the reals; bad input."""

import numpy as np
import pytest
import torch

from pyvi.hmc.settings import constants
from pyvi.hmc.torch_backend.face import TorchFace, torch_face
from pyvi.hmc.torch_backend.leapfrog import leapfrog
from pyvi.hmc.torch_backend.metric import IdentityMetric
from pyvi.hmc.torch_backend.rng import RandomSource
from pyvi.hmc.torch_backend.state import State
from pyvi.hmc.torch_backend.transition import StaticKernel
from pyvi.testing import cuda_available

CHAINS = 3000


def _plain(face: TorchFace) -> TorchFace:
    """The same face without its fused trajectory: the sampler then steps with the plain leapfrog."""
    return TorchFace(face.log_prob_and_grad, face.name, sanitise=face.sanitise, fused=face.fused)


def _chains(dtype, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.normal(size=(CHAINS, 2)) * scale, dtype=dtype)
    p = torch.tensor(rng.normal(size=(CHAINS, 2)), dtype=dtype)
    step = torch.tensor(rng.uniform(0.005, 0.12, size=CHAINS), dtype=dtype)
    return x, p, step


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("num_steps", [1, 2, 30])
def test_the_op_is_the_plain_leapfrog_bit_for_bit(default_banana, dtype, num_steps):
    face = torch_face(default_banana)
    x, p, step = _chains(dtype)
    log_prob, grad = face(x)
    rows = step.unsqueeze(1).expand(CHAINS, 2).contiguous()
    half = rows * 0.5
    plain_x, plain_p = x.clone(), p.clone()
    plain_log_prob, plain_grad = leapfrog(face, IdentityMetric(2, dtype, x.device), plain_x, plain_p, grad, half,
                                          [rows] * num_steps, [rows] * (num_steps - 1) + [half])
    fused_x, fused_p, fused_grad = x.clone(), p.clone(), grad.clone()
    lengths = torch.full((CHAINS,), num_steps, dtype=torch.int32)
    fused_log_prob = face.trajectory(fused_x, fused_p, fused_grad, step, lengths)
    for got, expected in ((fused_x, plain_x), (fused_p, plain_p), (fused_grad, plain_grad),
                          (fused_log_prob, plain_log_prob)):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got.numpy(), expected.numpy())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("random_steps", [False, True])
def test_fused_transitions_are_the_plain_ones_bit_for_bit(default_banana, dtype, random_steps):
    """Whole transitions (random path lengths: chains that end early stand still), with per-chain
    step sizes, from the same random stream: the same states and infos."""
    face = torch_face(default_banana)
    assert face.trajectory is not None
    x, _, step = _chains(dtype, seed=1)
    results = []
    for f in (face, _plain(face)):
        log_prob, grad = f(x)
        state = State(x.clone(), log_prob, grad)
        kernel = StaticKernel(f, state, 25, random_steps, constants()["max_energy_error"])
        kernel.set_step_size(step.to(torch.float64))
        random = RandomSource(7, torch.device("cpu"))
        with torch.inference_mode():
            infos = [kernel(state, random) for _ in range(4)]
        results.append((state, infos))
    (fused, fused_infos), (plain, plain_infos) = results
    for field in ("x", "log_prob", "grad"):
        np.testing.assert_array_equal(getattr(fused, field).numpy(), getattr(plain, field).numpy(), err_msg=field)
    for got, expected in zip(fused_infos, plain_infos):
        for field in ("accept_prob", "energy_error", "divergent", "num_steps"):
            np.testing.assert_array_equal(getattr(got, field).numpy(), getattr(expected, field).numpy(),
                                          err_msg=field)
    assert 0.2 < float(fused_infos[-1].accept_prob.mean()) < 1.0  # the chains did move


def test_overflowing_trajectories_are_rejected_divergences(default_banana):
    """Step sizes that throw the chains off the reals: every transition is rejected and divergent,
    no NaN reaches the state, on the fused path as on the plain one."""
    face = torch_face(default_banana)
    x, _, _ = _chains(torch.float64, seed=2)
    for f in (face, _plain(face)):
        log_prob, grad = f(x)
        state = State(x.clone(), log_prob, grad)
        kernel = StaticKernel(f, state, 30, False, constants()["max_energy_error"])
        kernel.set_step_size(torch.full((CHAINS,), 1e10, dtype=torch.float64))
        with torch.inference_mode():
            info = kernel(state, RandomSource(3, torch.device("cpu")))
        assert bool(info.divergent.all()) and float(info.accept_prob.max()) == 0.0
        np.testing.assert_array_equal(state.x.numpy(), x.numpy())
        assert bool(torch.isfinite(state.log_prob).all() and torch.isfinite(state.grad).all())


def test_zero_steps_evaluate_the_start(default_banana):
    face = torch_face(default_banana)
    x, p, step = _chains(torch.float64, seed=3)
    log_prob, grad = face(x)
    end_x, end_p, end_grad = x.clone(), p.clone(), torch.zeros_like(x)
    end_log_prob = face.trajectory(end_x, end_p, end_grad, step, torch.zeros(CHAINS, dtype=torch.int32))
    for got, expected in ((end_x, x), (end_p, p), (end_grad, grad), (end_log_prob, log_prob)):
        np.testing.assert_array_equal(got.numpy(), expected.numpy())


def _args():
    x = torch.zeros(4, 2, dtype=torch.float64)
    return dict(x=x, momentum=torch.zeros_like(x), grad=torch.zeros_like(x),
                step_size=torch.full((4,), 0.1, dtype=torch.float64), num_steps=torch.ones(4, dtype=torch.int32))


@pytest.mark.parametrize("change, error, match", [
    (dict(x=torch.zeros(4, 3, dtype=torch.float64)), ValueError, "x must have shape"),
    (dict(x=torch.zeros(4, dtype=torch.float64)), ValueError, "x must have shape"),
    (dict(momentum=torch.zeros(5, 2, dtype=torch.float64)), ValueError, "momentum must have shape"),
    (dict(grad=torch.zeros(2, 4, dtype=torch.float64).T), ValueError, "grad must be contiguous"),
    (dict(momentum=torch.zeros(4, 2, dtype=torch.float32)), TypeError, "momentum must have the dtype of x"),
    (dict(x=torch.zeros(4, 2, dtype=torch.int64)), TypeError, "x must be float32 or float64"),
    (dict(step_size=torch.ones(4, dtype=torch.float32)), TypeError, "step_size must have the dtype of x"),
    (dict(step_size=torch.ones(3, dtype=torch.float64)), ValueError, r"step_size must have shape \(4,\)"),
    (dict(num_steps=torch.ones(4, dtype=torch.int64)), TypeError, "num_steps must be int32"),
    (dict(num_steps=torch.ones(4, 1, dtype=torch.int32)), ValueError, r"num_steps must have shape \(4,\)"),
    (dict(num_steps=torch.ones(4, dtype=torch.int32, device="meta")), ValueError, "one device"),
])
def test_bad_input_names_the_argument(default_banana, change, error, match):
    args = _args() | change
    with pytest.raises(error, match=match):
        default_banana.fused_leapfrog()(**args)


def test_bad_banana_constants_are_a_value_error():
    args = _args()
    with pytest.raises(ValueError, match="sigma_y"):
        torch.ops.pyvi.banana_leapfrog(*args.values(), 10.0, 0.0, 1.0, -1.0, 1.0)


@pytest.mark.skipif(not cuda_available(), reason="no CUDA device / CUDA build")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cuda_op_agrees_with_the_plain_cuda_leapfrog(default_banana, dtype):
    """On CUDA nvcc may fuse a product and a sum into one FMA (in these kernels as in torch's), so
    the two agree to rounding, not bit for bit."""
    face = torch_face(default_banana)
    x, p, step = (t.cuda() for t in _chains(dtype, seed=4))
    log_prob, grad = face(x)
    rows = step.unsqueeze(1).expand(CHAINS, 2).contiguous()
    half = rows * 0.5
    plain_x, plain_p = x.clone(), p.clone()
    plain_log_prob, _ = leapfrog(face, IdentityMetric(2, dtype, x.device), plain_x, plain_p, grad, half,
                                 [rows] * 30, [rows] * 29 + [half])
    fused_x, fused_p = x.clone(), p.clone()
    fused_log_prob = face.trajectory(fused_x, fused_p, grad.clone(), step,
                                     torch.full((CHAINS,), 30, dtype=torch.int32, device="cuda"))
    rtol = 1e-9 if dtype == torch.float64 else 2e-3
    for got, expected in ((fused_x, plain_x), (fused_p, plain_p), (fused_log_prob, plain_log_prob)):
        np.testing.assert_allclose(got.cpu().numpy(), expected.cpu().numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("capability", ["default", "avx2"])
def test_bit_for_bit_under_each_aten_cpu_capability(capability):
    """ATen's DEFAULT kernels round a + b * c twice, its AVX2 ones once (an FMA): the op follows the
    kernels ATen runs (here forced by ATEN_CPU_CAPABILITY, read at torch's start)."""
    import os
    import subprocess
    import sys

    env = os.environ | {"ATEN_CPU_CAPABILITY": capability}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                           "the_op_is_the_plain_leapfrog"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
