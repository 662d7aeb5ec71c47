"""The banana custom op: fused == reference (values, gradients), gradcheck/gradgradcheck in
float64, torch.library.opcheck, torch.compile, devices and dtypes from pyvi.testing."""

import numpy as np
import pytest
import torch

from pyvi.targets import Banana
from pyvi.testing import DEVICES, DTYPES

pytest.importorskip("pyvi._C")
import pyvi.ops  # noqa: E402  (loads pyvi._C and the fake kernels)

TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-3), torch.float64: dict(rtol=1e-12, atol=1e-9)}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_matches_reference(homework_banana, device, dtype):
    # Drawn on the CPU (a CPU generator cannot fill a CUDA tensor), then moved: the same points on every device.
    theta = torch.randn(257, 2, dtype=dtype, generator=torch.Generator().manual_seed(0)).to(device) * 2
    fused_theta = theta.clone().requires_grad_()
    reference_theta = theta.clone().requires_grad_()
    fused = homework_banana.log_prob(fused_theta, impl="fused")
    reference = homework_banana.log_prob(reference_theta, impl="reference")
    torch.testing.assert_close(fused, reference, **TOLERANCE[dtype])
    weights = torch.rand(257, dtype=dtype, device=device)
    (fused * weights).sum().backward()
    (reference * weights).sum().backward()
    torch.testing.assert_close(fused_theta.grad, reference_theta.grad, **TOLERANCE[dtype])


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_and_gradgradcheck(homework_banana, device):
    theta = torch.randn(7, 2, dtype=torch.float64, device=device, requires_grad=True)
    fn = lambda t: homework_banana.log_prob(t, impl="fused")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (theta,))
    assert torch.autograd.gradgradcheck(fn, (theta,))
    # The op's second output (the gradient) is differentiable too: its Jacobian is the Hessian.
    op = lambda t: torch.ops.pyvi.banana_log_joint(t, 100.0, 1.1, 365.0, 2.0, 1.0)  # noqa: E731
    assert torch.autograd.gradcheck(op, (theta,))
    assert torch.autograd.gradgradcheck(op, (theta,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
# opcheck's own AOT-dispatch harness reads .grad of a non-leaf internally and warns about it.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_opcheck(device, dtype):
    theta = torch.randn(5, 2, dtype=dtype, device=device, requires_grad=True)
    torch.library.opcheck(torch.ops.pyvi.banana_log_joint.default, (theta, 100.0, 1.1, 365.0, 2.0, 1.0))


def test_batch_shapes_and_empty(default_banana):
    theta = torch.zeros(3, 4, 2)
    assert default_banana.log_prob(theta, impl="fused").shape == (3, 4)
    assert default_banana.log_prob(torch.zeros(0, 2), impl="fused").shape == (0,)


def test_torch_compile_fullgraph(default_banana):
    theta = torch.randn(16, 2, dtype=torch.float64)
    compiled = torch.compile(lambda t: default_banana.log_prob(t, impl="fused"), fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(theta), default_banana.log_prob(theta, impl="fused"))


def test_non_contiguous_input(default_banana):
    theta = torch.randn(2, 10, dtype=torch.float64).t()  # (10, 2), not contiguous
    assert not theta.is_contiguous()
    torch.testing.assert_close(default_banana.log_prob(theta, impl="fused"), default_banana.log_prob(theta))


def test_bad_input(default_banana):
    with pytest.raises(ValueError, match="theta must have shape"):
        default_banana.log_prob(torch.zeros(4, 3), impl="fused")
    with pytest.raises(TypeError, match="float32 or float64"):
        default_banana.log_prob(torch.zeros(4, 2, dtype=torch.float16), impl="fused")
    with pytest.raises(ValueError, match="sigma_y"):
        torch.ops.pyvi.banana_log_joint(torch.zeros(1, 2), 10.0, 0.0, 1.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="theta must have shape"):
        torch.ops.pyvi.banana_log_joint(torch.zeros(2), 10.0, 0.0, 1.0, 1.0, 1.0)
    with pytest.raises(TypeError, match="theta must be a torch.Tensor"):
        pyvi.ops.banana_log_joint(np.zeros((2, 2)), default_banana)
