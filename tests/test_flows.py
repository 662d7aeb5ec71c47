"""One battery for every flow x implementation: inverse round trip, log-det vs the autograd
Jacobian, gradients reach every parameter block, fused == reference (values and gradients),
gradcheck / opcheck of the fused ops, state dicts across implementations, dtype and device moves,
and bad input."""

import copy
import io
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from pyvi.flows import NICE, Flow, FusedOps, PlanarFlow, RealNVP
from pyvi.ops.coupling import coupling_flow
from pyvi.ops.planar import planar_flow
from pyvi.testing import DEVICES, DTYPES

IMPLS = ["fused", "reference"]
#: Small instances of every flow; dim 3 covers the uneven coupling split.
FLOWS = {
    "planar": lambda impl: PlanarFlow(2, num_layers=4, impl=impl, seed=0),
    "planar3d": lambda impl: PlanarFlow(3, num_layers=3, impl=impl, seed=1),
    "nice": lambda impl: NICE(2, num_couplings=3, hidden=5, depth=3, impl=impl, seed=2),
    "realnvp": lambda impl: RealNVP(2, num_couplings=3, hidden=6, depth=3, impl=impl, seed=3),
    "realnvp3d": lambda impl: RealNVP(3, num_couplings=2, hidden=4, depth=1, impl=impl, seed=4),
    # hidden >= 16: the CPU op evaluates the conditioners as whole-batch GEMMs (coupling_cpu.cpp)
    "realnvp-wide": lambda impl: RealNVP(2, num_couplings=3, hidden=16, depth=2, impl=impl, seed=5),
    "nice3d-wide": lambda impl: NICE(3, num_couplings=2, hidden=17, depth=1, impl=impl, seed=6),
}


def make(name: str, impl: str = "reference", dtype=torch.float64):
    flow = FLOWS[name](impl).to(dtype)
    with torch.no_grad():  # move off the near-identity initialisation so that the tests see curvature
        flow.params.add_(0.3 * torch.randn(flow.params.shape, generator=torch.Generator().manual_seed(7), dtype=dtype))
    return flow


def base_points(flow, n=64, seed=0):
    return torch.randn(n, flow.dim, generator=torch.Generator().manual_seed(seed), dtype=flow.params.dtype)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", FLOWS)
def test_inverse_round_trip(name, impl):
    flow = make(name, impl)
    z = base_points(flow)
    x, log_det = flow(z)
    z_back, log_det_inverse = flow.inverse(x)
    torch.testing.assert_close(z_back, z, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(log_det_inverse, -log_det, rtol=1e-9, atol=1e-9)
    x_rs, log_q = flow.rsample_and_log_prob(50, torch.Generator().manual_seed(1))
    torch.testing.assert_close(flow.log_prob(x_rs), log_q, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", FLOWS)
def test_log_det_matches_autograd_jacobian(name, impl):
    flow = make(name, impl)
    z = base_points(flow, n=6)
    _, log_det = flow(z)
    for i in range(z.shape[0]):
        jacobian = torch.autograd.functional.jacobian(lambda v: flow(v.unsqueeze(0))[0].squeeze(0), z[i])
        sign, log_abs = torch.linalg.slogdet(jacobian)
        assert sign > 0
        torch.testing.assert_close(log_det[i], log_abs, rtol=1e-10, atol=1e-10)


def parameter_blocks(flow):
    """The packed parameter vector's logical blocks: planar rows, or each MLP layer's W and b."""
    if isinstance(flow, PlanarFlow):
        return [("layer", k, slice(None)) for k in range(flow.num_layers)]
    blocks = []
    for k in range(flow.num_couplings):
        at = flow.layout.offset(k)
        for j, (weight, bias) in enumerate(flow.layout.mlp(flow.params.detach(), k)):
            blocks.append((f"coupling {k} W{j}", at, at + weight.numel()))
            at += weight.numel()
            blocks.append((f"coupling {k} b{j}", at, at + bias.numel()))
            at += bias.numel()
    if isinstance(flow, NICE):
        blocks.append(("log_scale", at, at + flow.dim))
    return blocks


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", FLOWS)
def test_every_parameter_block_gets_a_gradient(name, impl):
    flow = make(name, impl)
    x, log_q = flow.rsample_and_log_prob(256, torch.Generator().manual_seed(3))
    loss = (x**2).sum() + (x[:, 0] * x[:, -1]).sum() + log_q.sum()
    loss.backward()
    grad = flow.params.grad
    assert grad is not None and torch.isfinite(grad).all()
    for block in parameter_blocks(flow):
        values = grad[block[1]] if block[0] == "layer" else grad.view(-1)[block[1] : block[2]]
        assert values.abs().sum() > 0, f"no gradient reaches {block[0]}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FLOWS)
def test_fused_matches_reference(name, dtype):
    flow = make(name, "reference", dtype)
    z = base_points(flow, n=300).requires_grad_()
    weights = torch.randn(300, flow.dim, generator=torch.Generator().manual_seed(5), dtype=dtype)
    results = {}
    for impl in IMPLS:
        flow.impl = impl
        flow.zero_grad()
        z.grad = None
        x, log_det = flow(z)
        ((x * weights).sum() + (log_det * weights[:, 0]).sum()).backward()
        results[impl] = (x.detach(), log_det.detach(), z.grad.clone(), flow.params.grad.clone())
    rtol = 1e-10 if dtype == torch.float64 else 1e-5
    for fused, reference in zip(results["fused"], results["reference"]):
        scale = reference.abs().max()
        assert (fused - reference).abs().max() <= rtol * scale + 1e-300


@pytest.mark.parametrize("name", FLOWS)
def test_fused_ops_gradcheck(name):
    flow = make(name)
    z = base_points(flow, n=5).requires_grad_()
    params = flow.params.detach().clone().requires_grad_()
    if isinstance(flow, PlanarFlow):
        fn = planar_flow
    else:

        def fn(z, params):
            return coupling_flow(z, params, flow.op_config)

    assert torch.autograd.gradcheck(fn, (z, params))


# opcheck's AOT test reads .grad of its own non-leaf copies and warns about it: not our op's doing.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
@pytest.mark.parametrize("name", ["planar", "nice", "realnvp3d", "realnvp-wide"])
def test_fused_ops_opcheck(name):
    flow = make(name)
    z = base_points(flow, n=7)
    params = flow.params.detach().clone()
    if isinstance(flow, PlanarFlow):
        forward, backward, config = torch.ops.pyvi.planar_forward.default, torch.ops.pyvi.planar_backward.default, ()
    else:
        forward, backward = torch.ops.pyvi.coupling_forward.default, torch.ops.pyvi.coupling_backward.default
        config = (flow.op_config,)
    torch.library.opcheck(forward, (z.requires_grad_(), params.requires_grad_(), *config))
    _, _, states = forward(z.detach(), params.detach(), *config)
    backward_args = (torch.randn_like(z), torch.randn(z.shape[0], dtype=z.dtype), params.detach(), states, *config)
    torch.library.opcheck(backward, backward_args)


@pytest.mark.parametrize("name", ["planar", "nice", "realnvp", "realnvp-wide", "nice3d-wide"])
def test_fused_backward_is_deterministic_across_threads(name):
    flow = make(name, "fused")
    z = base_points(flow, n=2000)  # several reduction chunks
    grads = []
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            flow.zero_grad()
            x, log_det = flow(z)
            (x.sum() + log_det.sum()).backward()
            grads.append(flow.params.grad.clone())
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(grads[0], grads[1]) and torch.equal(grads[0], grads[2])


@pytest.mark.parametrize("name", FLOWS)
def test_state_dict_round_trip_across_impls(name):
    fused = make(name, "fused")
    buffer = io.BytesIO()
    torch.save(fused.state_dict(), buffer)
    buffer.seek(0)
    reference = FLOWS[name]("reference").double()
    reference.load_state_dict(torch.load(buffer))
    z = base_points(fused)
    for a, b in zip(fused(z), reference(z)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", FLOWS)
def test_to_dtype_moves_parameters_and_buffers(name, impl):
    flow = make(name, impl).to(torch.float32)
    assert flow.params.dtype == flow.base_loc.dtype == flow.base_scale.dtype == torch.float32
    x, log_q = flow.rsample_and_log_prob(10)
    assert x.dtype == log_q.dtype == torch.float32 and torch.isfinite(log_q).all()
    flow = flow.to(torch.float64)
    assert flow.sample(3).dtype == torch.float64


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FLOWS)
def test_fused_on_device_matches_cpu_reference(name, dtype, device):
    cpu = make(name, "reference", dtype)
    flow = make(name, "fused", dtype).to(device)
    z = base_points(cpu, n=200)
    x_ref, log_det_ref = cpu(z)
    zd = z.to(device).requires_grad_()
    x, log_det = flow(zd)
    (x.sum() + log_det.sum()).backward()
    (x_ref.sum() + log_det_ref.sum()).backward()
    rtol = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(x.cpu(), x_ref.detach(), rtol=rtol, atol=rtol)
    torch.testing.assert_close(flow.params.grad.cpu(), cpu.params.grad, rtol=rtol * 10, atol=rtol * 10)


@pytest.mark.parametrize(("make", "limit"), [
    (lambda impl: RealNVP(2, num_couplings=1, hidden=65, depth=1, impl=impl, seed=0), "hidden=65 > 64"),
    (lambda impl: RealNVP(17, num_couplings=2, hidden=4, depth=1, impl=impl, seed=0), "dim=17 > 16"),
    (lambda impl: NICE(3, num_couplings=1, hidden=4, depth=9, impl=impl, seed=0), "depth=9 > 8"),
], ids=["hidden", "dim", "depth"])
def test_fused_fallback_is_reported_and_warned_once(make, limit):
    """Beyond the fused kernels' limits a flow asked for "fused" runs, and says it runs, the
    reference implementation: one warning naming the limit, at construction (issue #15, item 18)."""
    with pytest.warns(RuntimeWarning, match="exceeds the fused coupling kernels' limits") as record:
        flow = make("fused").double()
    assert len(record) == 1 and limit in str(record[0].message) and "coupling_max" in str(record[0].message)
    assert record[0].filename == __file__  # the warning points at the constructor call
    assert flow.impl == "reference" and flow.fused_ops() is None
    assert limit in flow.fused_unavailable_reason()
    assert "impl='reference' (fused unavailable: " in repr(flow) and limit in repr(flow)
    z = torch.randn(4, flow.dim, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no more warnings: not per forward, sample, log_prob or fit
        x, log_det = flow(z)
        flow.rsample_and_log_prob(8)
        flow.log_prob(x)
        flow = flow.float().double()
        assert copy.deepcopy(flow).impl == _saved_and_loaded(flow).impl == "reference"
    reference = make("reference").double()
    assert reference.impl == "reference" and "fused unavailable" not in repr(reference)
    reference.load_state_dict(flow.state_dict())
    torch.testing.assert_close(reference(z), (x, log_det))
    with pytest.warns(RuntimeWarning, match=limit) as record:
        flow.impl = "fused"  # asked again: warned again, once
    assert len(record) == 1 and record[0].filename == __file__ and flow.impl == "reference"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flow.impl = None  # "fused where available": silent
    assert flow.impl == "reference"


@pytest.mark.parametrize("device", DEVICES)
def test_planar_fallback_follows_the_device(device):
    """The CUDA planar backward takes dim <= pyvi._C.planar_max_cuda_dim: a wider flow moved to CUDA
    says it runs the reference (one warning, at .to()), and runs fused again back on the CPU."""
    from pyvi.ops.planar import MAX_CUDA_DIM

    flow = PlanarFlow(MAX_CUDA_DIM + 1, num_layers=2, seed=0)
    assert flow.impl == "fused"
    if device == "cpu":
        return
    with pytest.warns(RuntimeWarning, match=rf"dim={MAX_CUDA_DIM + 1} > {MAX_CUDA_DIM} has no fused CUDA backward") as record:
        flow = flow.to(device)
    assert len(record) == 1 and record[0].filename == __file__
    assert flow.impl == "reference" and flow.fused_ops() is None
    x, log_q = flow.rsample_and_log_prob(16)
    (x.sum() + log_q.sum()).backward()
    assert flow.params.grad is not None and torch.isfinite(flow.params.grad).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flow = flow.cpu()
    assert flow.impl == "fused"


def test_supported_flows_run_fused():
    for name in FLOWS:
        flow = FLOWS[name]("fused")
        assert flow.impl == "fused" and flow.fused_unavailable_reason() is None
        ops = flow.fused_ops()
        assert isinstance(ops, FusedOps) and "impl='fused'" in repr(flow)
        z = base_points(flow.double(), n=5)
        x, log_det, _ = ops.forward(z, flow.params.detach(), *ops.config)
        torch.testing.assert_close((x, log_det), flow(z))
        for copied in (copy.deepcopy(flow), _saved_and_loaded(flow)):  # the ops are chosen again on loading
            assert copied.impl == "fused" and copied.fused_ops() is not None
            torch.testing.assert_close(copied(z), flow(z))
        flow.impl = "reference"
        assert flow.impl == "reference" and flow.fused_ops() is not None  # available, not used
        assert _saved_and_loaded(flow).impl == "reference"


def _saved_and_loaded(flow):
    buffer = io.BytesIO()
    torch.save(flow, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def test_planar_constraint_keeps_layers_invertible():
    flow = PlanarFlow(2, num_layers=1, impl="reference", seed=0).double()
    with torch.no_grad():  # w . u = -10: unconstrained, the layer would not be invertible
        flow.params.copy_(torch.tensor([[-5.0, 0.0, 2.0, 0.0, 0.0]]))
    z = torch.linspace(-3, 3, 101, dtype=torch.float64).unsqueeze(1).repeat(1, 2)
    for impl in IMPLS:
        flow.impl = impl
        x, log_det = flow(z)
        assert torch.isfinite(log_det).all()
        torch.testing.assert_close(flow.inverse(x)[0], z, rtol=1e-9, atol=1e-9)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="dim"):
        PlanarFlow(0)
    with pytest.raises(ValueError, match="num_layers"):
        PlanarFlow(2, num_layers=0)
    with pytest.raises(ValueError, match="dim"):
        RealNVP(1)
    with pytest.raises(ValueError, match="num_couplings"):
        NICE(2, num_couplings=0)
    with pytest.raises(ValueError, match="hidden"):
        RealNVP(2, hidden=0)
    with pytest.raises(ValueError, match="depth"):
        NICE(2, depth=0)
    with pytest.raises(ValueError, match="scale_bound"):
        RealNVP(2, scale_bound=-1.0)
    with pytest.raises(TypeError, match="num_layers"):
        PlanarFlow(2, num_layers=2.5)
    with pytest.raises(ValueError, match="impl"):
        PlanarFlow(2, impl="cuda")
    flow = RealNVP(2, num_couplings=2, hidden=4, depth=1, seed=0)
    with pytest.raises(ValueError, match="impl"):
        flow.impl = "fast"
    with pytest.raises(ValueError, match="z must have shape"):
        flow(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="z must have shape"):
        flow(torch.zeros(2))
    with pytest.raises(TypeError, match="dtype"):
        flow(torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must have shape"):
        flow.log_prob(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="num_samples"):
        flow.sample(0)
    with pytest.raises(TypeError, match="z must be a torch.Tensor"):
        flow([[0.0, 0.0]])
    # The ops themselves check their arguments (ValueError from TORCH_CHECK_VALUE).
    with pytest.raises(ValueError, match="params must have shape"):
        torch.ops.pyvi.planar_forward(torch.zeros(3, 2), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="hidden"):
        torch.ops.pyvi.coupling_forward(torch.zeros(3, 2), torch.zeros(10), [1.0, 100.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("name", ["planar", "realnvp"])
def test_fused_flow_under_torch_compile(name):
    flow = make(name, "fused")
    z = base_points(flow, n=32)

    def loss(z):
        x, log_det = flow(z)
        return (x**2).sum() - log_det.sum()

    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    expected = loss(z)
    (expected_grad,) = torch.autograd.grad(expected, flow.params)
    got = compiled(z)
    (got_grad,) = torch.autograd.grad(got, flow.params)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got_grad, expected_grad)


# -- the Flow contract (issue #10, item 5) ------------------------------------------------------


class Shift(Flow):
    """A minimal custom flow: x = z + params, no fused ops."""

    def __init__(self, dim):
        super().__init__(dim)
        self.params = nn.Parameter(torch.zeros(dim))

    def _forward_reference(self, z):
        return z + self.params, z.new_zeros(z.shape[0])

    def inverse(self, x):
        return x - self.params, x.new_zeros(x.shape[0])


def test_a_flow_missing_an_abstract_method_cannot_be_built():
    class NoInverse(Flow):
        def __init__(self):
            super().__init__(2)
            self.params = nn.Parameter(torch.zeros(2))

        def _forward_reference(self, z):
            return z, z.new_zeros(z.shape[0])

    class NoForward(Flow):
        def inverse(self, x):
            return x, x.new_zeros(x.shape[0])

    with pytest.raises(TypeError, match="abstract method.*inverse"):
        NoInverse()
    with pytest.raises(TypeError, match="abstract method.*_forward_reference"):
        NoForward(2)


def test_a_flow_holds_its_weights_in_one_packed_parameter():
    class NoParams(Shift):
        def __init__(self, dim):
            Flow.__init__(self, dim)

    class TwoParams(Shift):
        def __init__(self, dim):
            super().__init__(dim)
            self.scale = nn.Parameter(torch.ones(dim))

    with pytest.raises(TypeError, match=r"NoParams must hold all of its trainable weights in one nn.Parameter, self.params"):
        NoParams(2)
    with pytest.raises(TypeError, match=r"TwoParams must hold .* it has 2 parameter"):
        TwoParams(2)


def test_a_custom_flow_without_fused_ops_trains_through_autograd(default_banana):
    from pyvi import vi

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # impl=None (the base's default): reference, silently
        flow = Shift(2).double()
    assert flow.impl == "reference" and flow.fused_ops() is None
    assert flow.fused_unavailable_reason() == "Shift has no fused ops"
    assert vi._fast_path(flow, default_banana, "fused") is None
    result = vi.fit(flow, default_banana, num_steps=200, lr=5e-2, seed=0, progress=False)
    assert result.skipped_steps == [] and np.isfinite(result.elbo).all()
    assert result.elbo[-20:].mean() > result.elbo[:20].mean()
    assert flow.params.detach().abs().max() > 0.1  # moved towards the banana's mean
    with pytest.warns(RuntimeWarning, match="Shift has no fused ops"):
        flow.impl = "fused"  # asked explicitly: it says it cannot
    assert flow.impl == "reference"


# -- double backward (issue #15, item 1) ----------------------------------------------------------

#: Every flow at both CPU backward widths (hidden < 16: tiles of samples; >= 16: the wide kernels).
SECOND_ORDER = {
    "planar": lambda impl: PlanarFlow(2, num_layers=3, impl=impl, seed=0),
    "nice-narrow": lambda impl: NICE(2, num_couplings=2, hidden=8, depth=2, impl=impl, seed=1),
    "nice-default": lambda impl: NICE(impl=impl, seed=2),
    "realnvp-narrow": lambda impl: RealNVP(2, num_couplings=2, hidden=8, depth=2, impl=impl, seed=3),
    "realnvp-wide": lambda impl: RealNVP(3, num_couplings=2, hidden=16, depth=2, impl=impl, seed=4),
}


def _second_derivative(flow, z, wrt):
    """d/dwrt of sum(d loss / dz) for loss = sum(x^2) + sum(log_det): a double backward."""
    x, log_det = flow(z)
    (grad_z,) = torch.autograd.grad((x**2).sum() + log_det.sum(), z, create_graph=True)
    return torch.autograd.grad(grad_z.sum(), wrt)[0]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", SECOND_ORDER)
def test_double_backward_through_fused_flows_is_an_error_not_zeros(name, device):
    reference = SECOND_ORDER[name]("reference").double().to(device)
    fused = SECOND_ORDER[name]("fused").double().to(device)
    z = torch.randn(6, fused.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).to(device)
    for wrt in ("z", "params"):
        z_ref = z.clone().requires_grad_()
        expected = _second_derivative(reference, z_ref, z_ref if wrt == "z" else reference.params)
        assert expected.abs().max() > 0  # the reference has genuine second derivatives
        z_fused = z.clone().requires_grad_()
        op = "planar_backward" if name == "planar" else "coupling_backward"
        with pytest.raises(NotImplementedError, match=rf"double backward .* pyvi::{op} .*impl=\"reference\""):
            _second_derivative(fused, z_fused, z_fused if wrt == "z" else fused.params)
    # First derivatives with create_graph=True still work (only differentiating them again fails).
    z_fused = z.clone().requires_grad_()
    x, log_det = fused(z_fused)
    (grad,) = torch.autograd.grad((x**2).sum() + log_det.sum(), z_fused, create_graph=True)
    z_ref = z.clone().requires_grad_()
    x, log_det = reference(z_ref)
    (expected,) = torch.autograd.grad((x**2).sum() + log_det.sum(), z_ref)
    torch.testing.assert_close(grad.detach(), expected, rtol=1e-9, atol=1e-9)
