"""pyvi::dense_linear (the decoder's output layer on oneDNN) against torch.nn.functional.linear."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pyvi.testing import DEVICES, DTYPES
import pyvi.ops  # noqa: F401  (loads pyvi._C and the ops' fake kernels)
from pyvi.vae.dense_linear import dense_linear


def _inputs(device, dtype, batch=6, in_features=37, out_features=21, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, in_features, generator=generator, dtype=dtype).to(device)
    weight = torch.randn(out_features, in_features, generator=generator, dtype=dtype).to(device)
    bias = torch.randn(out_features, generator=generator, dtype=dtype).to(device)
    return x, weight, bias


def _values_and_grads(x, weight, bias, impl, transposed):
    if transposed:  # transposed views of the same values: read in place, not copied
        x, weight = x.t().contiguous().t(), weight.t().contiguous().t()
    leaves = [t.clone() if not transposed else t for t in (x, weight)] + ([bias.clone()] if bias is not None else [])
    leaves = [t.detach().requires_grad_() for t in leaves]
    out = dense_linear(*leaves[:2], leaves[2] if bias is not None else None, impl=impl)
    upstream = torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype, device=out.device).reshape(out.shape)
    (out * upstream).sum().backward()
    return [out.detach()] + [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("shape", [(6, 37, 21), (128, 512, 784), (0, 5, 3), (4, 0, 3)])
def test_fused_matches_reference_values_and_gradients(device, dtype, with_bias, transposed, shape):
    x, weight, bias = _inputs(device, dtype, *shape)
    bias = bias if with_bias else None
    fused = _values_and_grads(x, weight, bias, "fused", transposed)
    reference = _values_and_grads(x, weight, bias, "reference", transposed)
    # float32: another GEMM's summation order over up to 512 products.
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    for got, want in zip(fused, reference, strict=True):
        torch.testing.assert_close(got, want, **tol)
    assert fused[2].stride() == reference[2].stride()  # the weight gradient in the weight's layout


# torch's flags() context also re-applies its TF32 setting, which warns on builds without Intel GPUs.
@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
def test_same_values_without_onednn():
    """torch.backends.mkldnn off: the addmm fallback, the same values up to float rounding."""
    x, weight, bias = _inputs("cpu", torch.float32, 64, 300, 200)
    with_onednn = dense_linear(x, weight, bias)
    with torch.backends.mkldnn.flags(enabled=False):
        without = dense_linear(x, weight, bias)
        assert torch.equal(without, torch.addmm(bias, x, weight.t()))
    torch.testing.assert_close(with_onednn, without, rtol=1e-5, atol=1e-4)
    assert torch.equal(with_onednn, dense_linear(x, weight, bias))  # deterministic


def test_gradcheck_float64():
    x, weight, bias = (t.requires_grad_() for t in _inputs("cpu", torch.float64, 3, 5, 4))
    assert torch.autograd.gradcheck(lambda a, w, b: dense_linear(a, w, b), (x, weight, bias))


@pytest.mark.parametrize("device", DEVICES)
# opcheck's own AOT-dispatch harness reads .grad of a non-leaf internally and warns about it.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
@pytest.mark.parametrize("dtype", DTYPES)
def test_opcheck(device, dtype):
    x, weight, bias = _inputs(device, dtype)
    torch.library.opcheck(torch.ops.pyvi.dense_linear, (x.requires_grad_(), weight.requires_grad_(), bias))
    torch.library.opcheck(torch.ops.pyvi.dense_linear, (x.detach(), weight.detach(), None))


def test_bad_input():
    x, weight, bias = _inputs("cpu", torch.float32)
    with pytest.raises(ValueError, match="weight must have shape"):
        dense_linear(x, weight[:, :-1], bias)
    with pytest.raises(ValueError, match="bias must have shape"):
        dense_linear(x, weight, bias[:-1])
    with pytest.raises(ValueError, match="x must have shape"):
        dense_linear(x[0], weight, bias)
    with pytest.raises(TypeError, match="weight must have the dtype of x"):
        dense_linear(x, weight.double(), bias)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        dense_linear(x.int(), weight, bias)
    with pytest.raises(TypeError, match="bias must be a torch.Tensor or None"):
        dense_linear(x, weight, 1.0)
    with pytest.raises(ValueError, match="impl"):
        dense_linear(x, weight, bias, impl="blas")
    assert torch.equal(dense_linear(x, weight, bias, impl="reference"), F.linear(x, weight, bias))
