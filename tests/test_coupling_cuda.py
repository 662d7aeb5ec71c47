"""CUDA flow kernels: the cooperative (tiled) coupling kernels of wide conditioners against the plain-torch
reference, and deterministic parameter gradients for every flow kernel (the same bits on every run).

All cases need a GPU and a CUDA build (skipped otherwise); the same shapes run on the CPU in test_flows.py.
"""

import pytest
import torch

from pyvi.flows import NICE, PlanarFlow, RealNVP
from pyvi.testing import DTYPES, cuda_available

pytestmark = pytest.mark.skipif(not cuda_available(), reason="no CUDA device / CUDA build")

# (dim, num_couplings, hidden, depth, affine): hidden >= 16 takes the tiled kernels; 1000 samples is not a
# multiple of any tile size, so the last tile is partial.
WIDE = {
    "realnvp-8x64x2": (2, 8, 64, 2, True),
    "realnvp-5d-33x3": (5, 3, 33, 3, True),
    "nice-3d-16x1": (3, 2, 16, 1, False),
    "nice-6x16x2": (2, 6, 16, 2, False),
    "realnvp-16d-24x2": (16, 2, 24, 2, True),
    "nice-7d-40x4": (7, 2, 40, 4, False),
}


def make(config, dtype):
    dim, couplings, hidden, depth, affine = WIDE[config]
    cls = RealNVP if affine else NICE
    return cls(dim, num_couplings=couplings, hidden=hidden, depth=depth, seed=1).to(device="cuda", dtype=dtype)


def forward_and_grads(flow, z, weights):
    params = flow.params
    z = z.clone().requires_grad_()
    x, log_det = flow(z)
    loss = (x * weights[:, :-1]).sum() + (log_det * weights[:, -1]).sum()
    grad_z, grad_params = torch.autograd.grad(loss, (z, params))
    return x.detach(), log_det.detach(), grad_z, grad_params


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", list(WIDE))
def test_tiled_kernels_match_reference(config, dtype):
    flow = make(config, dtype)
    generator = torch.Generator(device="cuda").manual_seed(0)
    dim = flow.dim
    z = torch.randn(1000, dim, dtype=dtype, device="cuda", generator=generator)
    weights = torch.randn(1000, dim + 1, dtype=dtype, device="cuda", generator=generator)
    flow.impl = "reference"
    want = forward_and_grads(flow, z, weights)
    flow.impl = "fused"
    got = forward_and_grads(flow, z, weights)
    tolerance = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=2e-3, atol=2e-3)
    for name, a, b in zip(("x", "log_det", "grad_z", "grad_params"), got, want, strict=True):
        torch.testing.assert_close(a, b, **tolerance, msg=f"{config} {name}")


@pytest.mark.parametrize("config", ["realnvp-8x64x2", "nice-6x16x2"])
def test_tiled_kernels_on_large_batches(config):
    # More tiles than resident blocks: every block loops over several tiles.
    flow = make(config, torch.float64)
    generator = torch.Generator(device="cuda").manual_seed(1)
    z = torch.randn(70_001, flow.dim, dtype=torch.float64, device="cuda", generator=generator)
    weights = torch.randn(70_001, flow.dim + 1, dtype=torch.float64, device="cuda", generator=generator)
    flow.impl = "reference"
    want = forward_and_grads(flow, z, weights)
    flow.impl = "fused"
    got = forward_and_grads(flow, z, weights)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


FLOWS = {
    "planar": lambda: PlanarFlow(2, num_layers=5, seed=0),
    "nice-narrow": lambda: NICE(2, num_couplings=3, hidden=5, depth=3, seed=0),
    "realnvp-narrow": lambda: RealNVP(2, num_couplings=5, hidden=5, depth=3, seed=0),
    "realnvp-wide": lambda: RealNVP(2, num_couplings=4, hidden=64, depth=2, seed=0),
}


@pytest.mark.parametrize("name", list(FLOWS))
def test_parameter_gradients_are_deterministic(name):
    flow = FLOWS[name]().double().cuda()
    generator = torch.Generator(device="cuda").manual_seed(2)
    z = torch.randn(5000, 2, dtype=torch.float64, device="cuda", generator=generator)
    weights = torch.randn(5000, 3, dtype=torch.float64, device="cuda", generator=generator)
    first = forward_and_grads(flow, z, weights)
    for _ in range(3):
        again = forward_and_grads(flow, z, weights)
        for a, b in zip(first, again, strict=True):
            assert torch.equal(a, b), name
