"""The contracts between the C++ ops and Python are defined once, in C++, and Python reads them:
the coupling flows' packed layout and the fused kernels' limits come from pyvi._C, the coupling
config crosses the boundary as one value, and a missing pyvi._C gives one documented error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pyvi._C as _C
from pyvi.flows import NICE, RealNVP
from pyvi.flows import coupling as flows_coupling
from pyvi.flows.coupling import CouplingLayout
from pyvi.ops import coupling as ops

ROOT = Path(__file__).resolve().parent.parent


def test_limits_are_read_from_the_extension():
    assert (ops.MAX_DIM, ops.MAX_HIDDEN, ops.MAX_DEPTH, ops.MAX_COUPLINGS) == (
        _C.coupling_max_dim, _C.coupling_max_hidden, _C.coupling_max_depth, _C.coupling_max_couplings)
    assert flows_coupling.MAX_FUSED_HIDDEN == _C.coupling_max_hidden
    assert flows_coupling.MAX_FUSED_DEPTH == _C.coupling_max_depth
    assert flows_coupling.MAX_FUSED_DIM == _C.coupling_max_dim
    assert RealNVP(2, 1, hidden=_C.coupling_max_hidden, depth=1, seed=0).fused_supported
    assert not RealNVP(2, 1, hidden=_C.coupling_max_hidden + 1, depth=1, impl="reference", seed=0).fused_supported
    assert not NICE(_C.coupling_max_dim + 1, 1, hidden=2, depth=1, impl="reference", seed=0).fused_supported
    from pyvi.ops import planar

    assert planar.MAX_CUDA_DIM == _C.planar_max_cuda_dim


def test_no_python_mirror_of_the_limits():
    # The numbers live in csrc/common/coupling.h only; Python names them through pyvi._C.
    source = (ROOT / "pyvi" / "flows" / "coupling.py").read_text() + (ROOT / "pyvi" / "ops" / "coupling.py").read_text()
    assert not re.search(r"MAX_\w+\s*=\s*\d", source)


SHAPES = [(2, 3, 5, 3, False), (2, 3, 6, 3, True), (3, 2, 4, 1, True), (5, 3, 7, 2, False), (16, 2, 3, 2, True)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_layout_tiles_the_packed_vector(shape):
    layout = CouplingLayout(*shape)
    dim = shape[0]
    spans = []
    for k in range(layout.num_couplings):
        cond, moved = layout.halves(k)
        assert sorted([*range(dim)[cond], *range(dim)[moved]]) == list(range(dim))
        for (weight, bias), (w_at, rows, cols, b_at) in zip(layout.mlp(torch.zeros(layout.num_params), k),
                                                            ops.layout(*shape).couplings[k].layers, strict=True):
            assert weight.shape == (rows, cols) and bias.shape == (rows,)
            spans += [(w_at, rows * cols), (b_at, rows)]
    if not layout.affine:
        spans.append((layout.offset(layout.num_couplings), dim))
    at = 0
    for start, size in sorted(spans):
        assert start == at, "the blocks must tile [0, num_params) without gaps or overlaps"
        at += size
    assert at == layout.num_params


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_layout_offsets_are_the_kernels_offsets(shape):
    """A flow round trip per parameter block: perturb one block through Python's view of the layout;
    the fused op (which walks the C++ layout) must move exactly as the reference flow (which reads
    Python's views) does, and the block must matter."""
    dim, num_couplings, hidden, depth, affine = shape
    flow = (RealNVP(dim, num_couplings, hidden, depth, seed=0) if affine else
            NICE(dim, num_couplings, hidden, depth, seed=0)).double()
    layout = flow.layout
    index = torch.arange(layout.num_params)
    blocks = [block for k in range(num_couplings) for pair in layout.mlp(index, k) for block in pair]
    if not affine:
        blocks.append(index[layout.offset(num_couplings):])
    z = torch.randn(33, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(2)
    base = 0.3 * torch.randn(layout.num_params, dtype=torch.float64, generator=generator)
    for k in range(num_couplings):  # hidden units alive for every sample, so that every block matters
        for _, bias in layout.mlp(base, k)[:-1]:
            bias.add_(1.0)
    with torch.no_grad():
        flow.params.copy_(base)
    x_base = flow(z)[0]
    for block in blocks:
        with torch.no_grad():
            flow.params.copy_(base)
            flow.params[block.reshape(-1)] += torch.randn(block.numel(), dtype=torch.float64, generator=generator)
        flow.impl = "fused"
        fused = flow(z)
        flow.impl = "reference"
        reference = flow(z)
        for a, b in zip(fused, reference, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        assert not torch.equal(fused[0], x_base), "every block must reach the output"


def test_config_is_one_value_built_and_parsed_once():
    flow = RealNVP(3, num_couplings=2, hidden=4, depth=2, scale_bound=2.5, seed=0).double()
    assert flow.op_config == ops.op_config(2, 4, 2, True, 2.5) == [2.0, 4.0, 2.0, 1.0, 2.5]
    forward, backward, extra = flow.fused_ops()
    assert extra == (flow.op_config,)
    z = torch.randn(7, 3, dtype=torch.float64)
    x, log_det, states = forward(z, flow.params.detach(), *extra)
    torch.testing.assert_close((x, log_det), flow(z))
    params = flow.params.detach()
    bad = {
        "config must be": [2.0, 4.0, 2.0, 1.0],
        "hidden must be an integer in": [2.0, 4.5, 2.0, 1.0, 2.5],
        "affine must be an integer in": [2.0, 4.0, 2.0, 2.0, 2.5],
        "num_couplings must be an integer in": [0.0, 4.0, 2.0, 1.0, 2.5],
        "depth must be an integer in": [2.0, 4.0, 9.0, 1.0, 2.5],
        "scale_bound must be finite": [2.0, 4.0, 2.0, 1.0, float("inf")],
    }
    for message, config in bad.items():
        with pytest.raises(ValueError, match=message):
            forward(z, params, config)
        with pytest.raises(ValueError, match=message):
            backward(x, log_det, params, states, config)


def test_cpu_isa_dispatch_is_one_helper():
    """Every CPU kernel reaches the vector ISAs through cpu/isa.h (no private target attributes)."""
    pattern = re.compile(r"target_clones|__builtin_cpu_supports|target\(\"")
    for path in (ROOT / "csrc" / "torch").rglob("*"):
        if path.suffix in {".h", ".cpp", ".cuh", ".cu"} and path.name != "isa.h":
            assert not pattern.search(path.read_text()), f"{path.relative_to(ROOT)} dispatches on its own"


def test_missing_extension_is_one_clear_import_error():
    """The rule of pyvi.ops: without pyvi._C, whatever needs it (a kernel, or a contract it defines)
    raises the ImportError of pyvi._backend.require; nothing falls back silently; the rest works."""
    code = r"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "pyvi._C":
            raise ImportError("simulated: extension not built")
sys.meta_path.insert(0, Block())
import torch
import pyvi
from pyvi.flows import PlanarFlow, RealNVP
from pyvi.targets import Banana
from pyvi.vae import bernoulli_log_likelihood, binarize
assert not pyvi.backends()["torch_ops"]["available"]

def raises_build_hint(fn):
    try:
        fn()
    except ImportError as error:
        assert "simulated" in str(error) and "pip install --no-build-isolation" in str(error), error
        return True
    return False

planar = PlanarFlow(2, 3, impl="reference", seed=0)
assert planar.sample(4).shape == (4, 2)
assert bernoulli_log_likelihood(torch.zeros(2, 5), torch.ones(2, 5), impl="reference").shape == (2,)
assert Banana.default().log_prob(torch.zeros(3, 2)).shape == (3,)
results = [
    raises_build_hint(lambda: __import__("pyvi.ops")),
    raises_build_hint(lambda: RealNVP(seed=0)),
    raises_build_hint(lambda: PlanarFlow(2, 3, seed=0).sample(4)),
    raises_build_hint(lambda: binarize(torch.rand(4), 0)),
    raises_build_hint(lambda: bernoulli_log_likelihood(torch.zeros(2, 5), torch.ones(2, 5))),
    raises_build_hint(lambda: Banana.default().log_prob(torch.zeros(3, 2), impl="fused")),
]
print(results)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str([True] * 6)
