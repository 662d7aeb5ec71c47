"""vi.fit's device-resident step (pyvi/_fit_step.py), its two ops and the CUDA-graph runner.

On the CPU the device step must reproduce fit's CPU fast path: the same gradients and torch's Adam
update (up to the fused multiply-adds of torch's vectorised CPU loops) give the same parameters to
~1e-12 relative in float64. On CUDA (skipped without a GPU) the
captured graphs must give exactly what the same kernels give launched eagerly.
"""

import math

import numpy as np
import pytest
import torch

from pyvi import vi
from pyvi._adam import adam_step
from pyvi._cuda_graph import run_steps
from pyvi.flows import NICE, PlanarFlow, RealNVP
from pyvi.targets import Banana
from pyvi.testing import DEVICES, DTYPES, cuda_available

pytest.importorskip("pyvi._C")
from pyvi._fit_step import DeviceFit, lr_schedule  # noqa: E402

FLOWS = {
    "planar": lambda: PlanarFlow(num_layers=5, seed=0),
    "nice": lambda: NICE(num_couplings=3, hidden=5, depth=3, seed=0),
    "realnvp": lambda: RealNVP(num_couplings=5, hidden=5, depth=3, seed=0),
    "realnvp-wide": lambda: RealNVP(num_couplings=2, hidden=32, depth=2, seed=0),
}


def reference_bound(log_p, grad_log_p, log_det, noise, log_normaliser, num_particles, iwae):
    """The bound and d(-bound)/dlog w written with torch ops (vi.fit's CPU fast path)."""
    log_w = log_p + log_det + 0.5 * noise.square().sum(-1) + log_normaliser
    if not iwae:
        num = log_w.numel()
        coefficient = torch.full_like(log_w, -1.0 / num)
        return log_w.mean(), grad_log_p * coefficient.unsqueeze(-1), coefficient
    weights = log_w.view(-1, num_particles)
    bound = (torch.logsumexp(weights, 1) - math.log(num_particles)).mean()
    coefficient = (-torch.softmax(weights, 1) / weights.shape[0]).view(-1)
    return bound, grad_log_p * coefficient.unsqueeze(-1), coefficient


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num_particles,iwae", [(1, False), (4, False), (1, True), (5, True)])
def test_bound_gradients_matches_reference(device, dtype, num_particles, iwae):
    generator = torch.Generator().manual_seed(0)
    n, dim = 60, 3
    args = [torch.randn(*shape, generator=generator, dtype=dtype).to(device) for shape in ((n,), (n, dim), (n,), (n, dim))]
    got = torch.ops.pyvi.bound_gradients(*args, 1.7, num_particles, iwae)
    want = reference_bound(*args, 1.7, num_particles, iwae)
    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-13, atol=1e-14)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b.to(dtype), **tolerance)


@pytest.mark.parametrize("device", DEVICES)
def test_bound_gradients_opcheck_and_bad_input(device):
    t = lambda *shape: torch.randn(*shape, dtype=torch.float64, device=device)  # noqa: E731
    torch.library.opcheck(torch.ops.pyvi.bound_gradients.default, (t(8), t(8, 2), t(8), t(8, 2), 0.3, 4, True))
    with pytest.raises(ValueError, match="num_particles"):
        torch.ops.pyvi.bound_gradients(t(8), t(8, 2), t(8), t(8, 2), 0.3, 3, True)
    with pytest.raises(ValueError, match="noise must have shape"):
        torch.ops.pyvi.bound_gradients(t(8), t(8, 2), t(8), t(8, 3), 0.3, 1, False)
    with pytest.raises(TypeError, match="log_det must have the dtype"):
        torch.ops.pyvi.bound_gradients(t(8), t(8, 2), t(8).float(), t(8, 2), 0.3, 1, False)
    with pytest.raises(ValueError, match="device"):
        torch.ops.pyvi.bound_gradients(t(8), t(8, 2), t(8), torch.empty(8, 2, dtype=torch.float64, device="meta"),
                                       0.3, 1, False)


def adam_state(param):
    device = param.device
    return dict(exp_avg=torch.zeros_like(param), exp_avg_sq=torch.zeros_like(param),
                step=torch.zeros((), dtype=torch.float64, device=device),
                index=torch.zeros((), dtype=torch.int64, device=device))


def test_adam_update_is_torch_adam():
    # pyvi._adam.adam_step is torch's single-tensor Adam (tested in test_adam.py); the op must equal it
    # up to fused multiply-adds (torch's vectorised CPU loops use them, its scalar tails do not).
    generator = torch.Generator().manual_seed(1)
    start = torch.randn(257, dtype=torch.float64, generator=generator)
    reference = torch.nn.Parameter(start.clone())
    optimizer = torch.optim.Adam([reference], lr=5e-3)
    rates = lr_schedule(5e-3, 30, "cosine")
    param, state = start.clone(), adam_state(start)
    history = torch.full((30,), math.nan, dtype=torch.float64)
    lr = torch.as_tensor(rates)
    for step in range(30):
        grad = torch.randn(257, dtype=torch.float64, generator=generator)
        reference.grad = grad.clone()
        optimizer.param_groups[0]["lr"] = rates[step]
        adam_step(optimizer)
        torch.ops.pyvi.adam_update_(param, grad, state["exp_avg"], state["exp_avg_sq"], state["step"], lr,
                                    state["index"], torch.tensor(float(step), dtype=torch.float64), history,
                                    0.9, 0.999, 1e-8)
    torch.testing.assert_close(param, reference.detach(), rtol=1e-13, atol=1e-15)
    assert int(state["index"]) == 30 and float(state["step"]) == 30.0
    np.testing.assert_array_equal(history.numpy(), np.arange(30.0))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bad", ["bound", "grad"])
def test_adam_update_skips_non_finite_steps(device, bad):
    param = torch.ones(5, dtype=torch.float64, device=device)
    state = adam_state(param)
    grad = torch.ones(5, dtype=torch.float64, device=device)
    bound = torch.tensor(1.0, dtype=torch.float64, device=device)
    if bad == "grad":
        grad[3] = math.inf
    else:
        bound.fill_(math.nan)
    history = torch.zeros(2, dtype=torch.float64, device=device)
    lr = torch.full((2,), 0.1, dtype=torch.float64, device=device)
    torch.ops.pyvi.adam_update_(param, grad, state["exp_avg"], state["exp_avg_sq"], state["step"], lr, state["index"],
                                bound, history, 0.9, 0.999, 1e-8)
    assert torch.equal(param.cpu(), torch.ones(5, dtype=torch.float64)), "a non-finite step must change nothing"
    assert float(state["step"]) == 0.0 and int(state["index"]) == 1
    assert math.isnan(float(history[0])) and float(history[1]) == 0.0


@pytest.mark.parametrize("device", DEVICES)
def test_adam_update_opcheck_and_bad_input(device):
    param = torch.ones(5, dtype=torch.float64, device=device)
    state = adam_state(param)
    lr = torch.full((3,), 0.1, dtype=torch.float64, device=device)
    history = torch.zeros(3, dtype=torch.float64, device=device)
    bound = torch.tensor(1.0, dtype=torch.float64, device=device)
    args = (param, torch.ones_like(param), state["exp_avg"], state["exp_avg_sq"], state["step"], lr, state["index"],
            bound, history, 0.9, 0.999, 1e-8)
    torch.library.opcheck(torch.ops.pyvi.adam_update_.default, args)
    with pytest.raises(ValueError, match="grad must have the shape"):
        torch.ops.pyvi.adam_update_(*args[:1], torch.ones(4, dtype=torch.float64, device=device), *args[2:])
    with pytest.raises(TypeError, match="index must be"):
        torch.ops.pyvi.adam_update_(*args[:6], state["index"].double(), *args[7:])
    with pytest.raises(ValueError, match="beta1"):
        torch.ops.pyvi.adam_update_(*args[:9], 1.0, 0.999, 1e-8)
    with pytest.raises(ValueError, match="history must be"):
        torch.ops.pyvi.adam_update_(*args[:8], torch.zeros(4, dtype=torch.float64, device=device), 0.9, 0.999, 1e-8)


def device_fit(flow, banana, num_steps, objective="elbo", num_particles=1, batch_size=64, seed=3, capture=False):
    step = vi._fast_path(flow, banana, "fused")
    device = flow.base_loc.device
    generator = torch.Generator(device=device).manual_seed(seed)
    state = DeviceFit(flow, step.ops, step.log_joint, num_steps, batch_size, num_particles, objective,
                      lr_schedule(5e-3, num_steps, "cosine"), generator)
    run_steps(state.step, num_steps, capture=capture, generators=(generator,))
    return state.history.cpu().numpy()


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_device_step_reproduces_fit_on_cpu(name):
    # Same noise (CPU generator, same seed), same gradients, torch's Adam arithmetic: same parameters.
    banana = Banana.default()
    reference, candidate = FLOWS[name]().double(), FLOWS[name]().double()
    result = vi.fit(reference, banana, num_steps=40, batch_size=64, seed=3, progress=False)
    history = device_fit(candidate, banana, 40)
    torch.testing.assert_close(candidate.params, reference.params, rtol=1e-10, atol=1e-12, msg=name)
    np.testing.assert_allclose(history, result.elbo, rtol=1e-10)


def test_device_step_iwae_matches_fit_on_cpu():
    banana = Banana.default()
    reference = RealNVP(num_couplings=2, hidden=6, depth=2, seed=0).double()
    candidate = RealNVP(num_couplings=2, hidden=6, depth=2, seed=0).double()
    result = vi.fit(reference, banana, num_steps=25, batch_size=32, objective="iwae", num_particles=5, seed=4,
                    progress=False)
    history = device_fit(candidate, banana, 25, objective="iwae", num_particles=5, batch_size=32, seed=4)
    torch.testing.assert_close(candidate.params, reference.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(history, result.elbo, rtol=1e-10)


def test_run_steps_eager_calls_and_reports():
    calls, reports = [], []
    run_steps(lambda: calls.append(1), 5, capture=False, after=reports.append)
    assert len(calls) == 5 and reports == [1, 2, 3, 4, 5]


def test_fit_cuda_graph_switch_is_checked():
    flow = PlanarFlow(num_layers=2, seed=0).double()
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA flow"):
        vi.fit(flow, Banana.default(), num_steps=3, progress=False, cuda_graph=True)
    with pytest.raises(TypeError, match="cuda_graph must be"):
        vi.fit(flow, Banana.default(), num_steps=3, progress=False, cuda_graph="yes")
    # On the CPU the switch changes nothing: the same fit either way.
    a, b = PlanarFlow(num_layers=2, seed=0).double(), PlanarFlow(num_layers=2, seed=0).double()
    vi.fit(a, Banana.default(), num_steps=20, progress=False, cuda_graph=False)
    vi.fit(b, Banana.default(), num_steps=20, progress=False)
    assert torch.equal(a.params, b.params)


cuda = pytest.mark.skipif(not cuda_available(), reason="no CUDA device / CUDA build")


@cuda
@pytest.mark.parametrize("name", sorted(FLOWS))
@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_cuda_graph_equals_eager(name, objective):
    banana = Banana.default()
    num_particles = 3 if objective == "iwae" else 1
    eager, graphed = FLOWS[name]().double().cuda(), FLOWS[name]().double().cuda()
    # 41 steps: 3 warm-up steps, then graphs of 16, 16 and a 6-step remainder.
    a = device_fit(eager, banana, 41, objective, num_particles, capture=False)
    b = device_fit(graphed, banana, 41, objective, num_particles, capture=True)
    np.testing.assert_array_equal(a, b)
    assert torch.equal(eager.params, graphed.params)


@cuda
def test_fit_on_cuda_reaches_the_cpu_fit():
    # Different noise streams (CUDA vs CPU generators), same algorithm: the exact KL after a short fit agrees
    # within Monte Carlo error, and both paths record every step.
    banana = Banana.default()
    cpu, gpu = RealNVP(seed=0).double(), RealNVP(seed=0).double().cuda()
    cpu_result = vi.fit(cpu, banana, num_steps=2000, progress=False)
    gpu_result = vi.fit(gpu, banana, num_steps=2000, progress=False)
    assert np.isfinite(gpu_result.elbo).all() and gpu_result.skipped_steps == []
    kl_cpu = vi.kl(cpu, banana, 50_000).value
    kl_gpu = vi.kl(gpu.cpu(), banana, 50_000).value
    assert abs(kl_cpu - kl_gpu) < 0.02, (kl_cpu, kl_gpu)
    assert gpu_result.wall_time > 0 and gpu_result.seconds[-1] <= gpu_result.wall_time


@cuda
def test_fit_on_cuda_skips_non_finite_steps_with_one_warning():
    flow = PlanarFlow(num_layers=2, seed=0).double().cuda()
    with torch.no_grad():
        flow.params.fill_(1e300)  # the first steps overflow
    with pytest.warns(RuntimeWarning, match=r"non-finite loss or gradient at \d+ step"):
        result = vi.fit(flow, Banana.default(), num_steps=20, progress=False)
    assert result.skipped_steps and all(math.isnan(result.elbo[s]) for s in result.skipped_steps)
