"""Every op with more than one tensor argument checks that they share one device, in its C++ kernels
and its fake (meta) kernel alike, with a ValueError naming the op and both devices.

A CPU tensor beside a ``meta`` one dispatches to the fake kernel (the Meta key wins), which used to
return uninitialised CPU memory (issue #15 item 4); a CPU tensor beside a CUDA one reaches the CUDA
kernel. (banana_log_joint and binarize take one tensor each.)
"""

from __future__ import annotations

import pytest
import torch

import pyvi.ops  # noqa: F401  (loads pyvi._C and the ops' fake kernels)
from pyvi.ops.coupling import layout, op_config
from pyvi.testing import cuda_available

F64 = torch.float64


def _tensor(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, dtype=F64, generator=torch.Generator().manual_seed(sum(shape) + len(shape)))


def _coupling_args():
    config = op_config(2, 4, 1, True, 3.0)
    num_params = layout(2, 2, 4, 1, True)[0]
    return num_params, config


def _cases():
    """(op name, op, argument list) with valid float64 CPU tensors and the op's scalars."""
    num_params, config = _coupling_args()
    logits, x, grad = _tensor(2, 3, 4), _tensor(3, 4), _tensor(2, 3)
    yield "planar_forward", (_tensor(5, 2), _tensor(3, 5))
    yield "planar_backward", (_tensor(5, 2), _tensor(5), _tensor(3, 5), _tensor(5, 3, 2))
    yield "coupling_forward", (_tensor(5, 2), _tensor(num_params), config)
    yield "coupling_backward", (_tensor(5, 2), _tensor(5), _tensor(num_params), _tensor(5, 3, 2), config)
    yield "bernoulli_log_lik", (logits, x, 7, True)
    yield "bernoulli_log_lik_backward", (grad, logits, x, 7, True)
    yield "gaussian_log_lik", (logits, x, _tensor(1), 7, False)
    yield "gaussian_log_lik_backward", (grad, logits, x, _tensor(1), 7, False)
    yield "sparse_linear", (_tensor(3, 4), _tensor(5, 4), _tensor(5), True)
    yield "sparse_linear_backward", (_tensor(3, 5), _tensor(3, 4), _tensor(3, 5), True)
    yield "dense_linear", (_tensor(3, 4), _tensor(5, 4), _tensor(5))
    yield "dense_linear", (_tensor(3, 4), _tensor(5, 4), None)
    yield "gaussian_latent", (_tensor(3, 4), _tensor(2, 4), _tensor(2), _tensor(2, 4), _tensor(2), _tensor(3, 2))
    latent = [_tensor(3, 2), _tensor(3), _tensor(3, 2), _tensor(3, 2)]
    yield "gaussian_latent_backward", (*latent, _tensor(3, 4), _tensor(2, 4), _tensor(2, 4), _tensor(3, 2),
                                       _tensor(3, 2), _tensor(3, 2))
    yield "bound_gradients", (_tensor(4), _tensor(4, 2), _tensor(4), _tensor(4, 2), 0.5, 2, True)
    step, index = torch.zeros((), dtype=F64), torch.zeros((), dtype=torch.int64)
    yield "adam_update_", (_tensor(3), _tensor(3), _tensor(3), _tensor(3), step, _tensor(2), index,
                           torch.ones((), dtype=F64), _tensor(2), 0.9, 0.999, 1e-8)
    lengths = torch.full((4,), 3, dtype=torch.int32)
    yield "banana_leapfrog", (_tensor(4, 2), _tensor(4, 2), _tensor(4, 2), _tensor(4), lengths, 10.0, 0.5, 3.0, 2.0, 1.0)
    yield "binarize_rows", (_tensor(6, 4), torch.arange(6), torch.tensor([1, 2]), torch.zeros((), dtype=torch.int64),
                            3, 3)


#: (op name, its arguments, the index of the tensor argument moved to another device).
MIXED = [
    pytest.param(name, args, i, id=f"{name}-{'nobias-' if any(a is None for a in args) else ''}arg{i}")
    for name, args in _cases()
    for i, arg in enumerate(args)
    if isinstance(arg, torch.Tensor)
]


def test_every_multi_tensor_op_is_covered():
    covered = {name for name, _ in _cases()}
    names = [op.split("::")[1] for op in torch._C._dispatch_get_all_op_names() if op.startswith("pyvi::")]
    assert "coupling_forward" in names
    for name in names:
        arguments = getattr(torch.ops.pyvi, name).default._schema.arguments
        tensors = [a for a in arguments if str(a.type) in ("Tensor", "Optional[Tensor]", "Tensor?")]
        assert len(tensors) < 2 or name in covered, f"pyvi::{name} takes several tensors but has no device case here"


@pytest.mark.parametrize("name, args, moved", MIXED)
def test_mixed_cpu_and_meta_raises(name, args, moved):
    args = list(args)
    args[moved] = args[moved].to("meta")
    with pytest.raises(ValueError, match=f"{name}: .* all tensor arguments must be on one device"):
        getattr(torch.ops.pyvi, name)(*args)


@pytest.mark.parametrize("name, args, moved", MIXED)
def test_mixed_cpu_and_cuda_raises(name, args, moved):
    if not cuda_available():
        pytest.skip("no CUDA device / CUDA build")
    args = [a.cuda() if isinstance(a, torch.Tensor) and i != moved else a for i, a in enumerate(args)]
    with pytest.raises(ValueError, match=f"{name}: .* all tensor arguments must be on one device"):
        getattr(torch.ops.pyvi, name)(*args)


@pytest.mark.parametrize("name, args", [pytest.param(n, a, id=f"{n}-{i}") for i, (n, a) in enumerate(_cases())])
def test_all_meta_runs_the_fake_kernel(name, args):
    meta = [a.to("meta") if isinstance(a, torch.Tensor) else a for a in args]
    real = getattr(torch.ops.pyvi, name)(*args)
    fake = getattr(torch.ops.pyvi, name)(*meta)
    if real is None:  # an in-place op (adam_update_): nothing returned on either side
        assert fake is None
        return
    real, fake = (real, fake) if isinstance(real, tuple) else ((real,), (fake,))
    assert [f.device.type for f in fake] == ["meta"] * len(real)
    assert [f.shape for f in fake] == [r.shape for r in real]
