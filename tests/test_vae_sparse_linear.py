"""pyvi::sparse_linear (the VAE encoder's first layer over the nonzero pixels) against torch's dense layer."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvi.testing import DEVICES, DTYPES
import pyvi.ops  # noqa: F401  (loads pyvi._C and the ops' fake kernels)
from pyvi.vae.sparse_linear import in_major, sparse_linear


def _inputs(device, dtype, batch=6, in_features=37, out_features=70, density=0.2, seed=0, gray=False):
    """Sparse x (binary, or gray levels) and a layer; 70 outputs = one 64-column block plus a tail
    for float32, two 32-column blocks plus a tail for float64."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.rand(batch, in_features, generator=generator) < density
    values = torch.rand(batch, in_features, generator=generator) if gray else torch.ones(batch, in_features)
    x = (mask * values).to(device=device, dtype=dtype)
    weight = torch.randn(out_features, in_features, generator=generator, dtype=dtype).to(device)
    bias = torch.randn(out_features, generator=generator, dtype=dtype).to(device)
    return x, weight, bias


def _values_and_grads(x, weight, bias, relu, impl, layout):
    x = x.clone().requires_grad_()
    weight = (in_major(weight) if layout == "in-major" else weight.clone()).requires_grad_()
    bias = bias.clone().requires_grad_()
    out = sparse_linear(x, weight, bias, relu=relu, impl=impl)
    upstream = torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype, device=out.device).reshape(out.shape)
    (out * upstream).sum().backward()
    return out.detach(), x.grad, weight.grad, bias.grad


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("layout", ["in-major", "row-major"])
@pytest.mark.parametrize("gray", [False, True])
def test_fused_matches_dense_values_and_gradients(device, dtype, relu, layout, gray):
    x, weight, bias = _inputs(device, dtype, gray=gray)
    fused = _values_and_grads(x, weight, bias, relu, "fused", layout)
    reference = _values_and_grads(x, weight, bias, relu, "reference", "row-major")
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    for got, want, name in zip(fused, reference, ("output", "x.grad", "weight.grad", "bias.grad"), strict=True):
        torch.testing.assert_close(got, want, **tol, msg=lambda m, name=name: f"{name}: {m}")
    if relu:
        assert (fused[0] == 0).any() and (fused[0] > 0).any()  # the mask is exercised both ways


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(0, 9), in_features=st.integers(0, 40), out_features=st.integers(0, 140),
       density=st.sampled_from([0.0, 0.1, 0.5, 1.0]), relu=st.booleans(), transpose_x=st.booleans())
def test_fused_matches_dense_on_any_shape(batch, in_features, out_features, density, relu, transpose_x):
    """Vector blocks and scalar tails on every width, empty and all-zero inputs, non-contiguous x."""
    x, weight, bias = _inputs("cpu", torch.float32, batch, in_features, out_features, density,
                              seed=batch * 10_000 + in_features * 100 + out_features)
    if transpose_x:
        x = x.t().contiguous().t()
    weight.requires_grad_()
    bias.requires_grad_()
    out = sparse_linear(x, weight, bias, relu=relu)
    expected = torch.nn.functional.linear(x, weight, bias)
    expected = expected.relu() if relu else expected
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    upstream = torch.randn(out.shape)
    grads = torch.autograd.grad((out * upstream).sum(), (weight, bias))
    expected_grads = torch.autograd.grad((expected * upstream).sum(), (weight, bias))
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_float32_layer_at_the_vae_size():
    """The training shape (B = 128, 784 -> 512) with binarised digits: the vector path at full width."""
    from pyvi.data import mnist

    x = mnist("embedded", "train").batch(torch.arange(128), seed=0)
    torch.manual_seed(0)
    layer = torch.nn.Linear(784, 512)
    weight = torch.nn.Parameter(in_major(layer.weight.detach()))
    bias = torch.nn.Parameter(layer.bias.detach().clone())
    out = sparse_linear(x, weight, bias, relu=True)
    upstream = torch.randn(out.shape)
    (out * upstream).sum().backward()
    expected = layer(x).relu()
    (expected * upstream).sum().backward()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weight.grad, layer.weight.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bias.grad, layer.bias.grad, rtol=1e-5, atol=1e-5)
    assert weight.grad.stride() == weight.stride()  # the gradient comes in the weight's layout


@pytest.mark.parametrize("relu", [True, False])
def test_gradcheck_float64(relu):
    x, weight, bias = _inputs("cpu", torch.float64, batch=4, in_features=9, out_features=70, density=0.4, gray=True)
    # Keep pre-activations away from the ReLU kink, where finite differences are not the derivative.
    bias = bias + torch.where(bias > 0, 0.5, -0.5)
    inputs = (x.requires_grad_(), weight.requires_grad_(), bias.requires_grad_())
    assert torch.autograd.gradcheck(lambda a, w, b: sparse_linear(a, w, b, relu=relu), inputs)


@pytest.mark.parametrize("device", DEVICES)
# opcheck's own AOT-dispatch harness reads .grad of a non-leaf internally and warns about it.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_opcheck(device):
    x, weight, bias = _inputs(device, torch.float64, gray=True)
    for relu in (False, True):
        torch.library.opcheck(torch.ops.pyvi.sparse_linear, (x, weight.requires_grad_(), bias.requires_grad_(), relu))
        out = torch.ops.pyvi.sparse_linear(x, weight, bias, relu).detach()
        torch.library.opcheck(torch.ops.pyvi.sparse_linear_backward, (torch.randn_like(out), x, out, relu))


def test_deterministic_and_layout_independent():
    x, weight, bias = _inputs("cpu", torch.float32, batch=33, in_features=200, out_features=130)
    first = sparse_linear(x, weight, bias, relu=True)
    assert torch.equal(first, sparse_linear(x, in_major(weight), bias, relu=True))
    assert torch.equal(first, sparse_linear(x, weight, bias, relu=True))


def test_bad_input():
    x, weight, bias = _inputs("cpu", torch.float32)
    with pytest.raises(ValueError, match="weight must have shape"):
        sparse_linear(x, weight[:, :-1], bias)
    with pytest.raises(ValueError, match="bias must have shape"):
        sparse_linear(x, weight, bias[:-1])
    with pytest.raises(ValueError, match="x must have shape"):
        sparse_linear(x[0], weight, bias)
    with pytest.raises(TypeError, match="weight must have the dtype of x"):
        sparse_linear(x, weight.double(), bias)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        sparse_linear(x.int(), weight, bias)
    with pytest.raises(TypeError, match="bias must be a torch.Tensor"):
        sparse_linear(x, weight, [0.0])
    with pytest.raises(ValueError, match="impl"):
        sparse_linear(x, weight, bias, impl="dense")
    out = sparse_linear(x, weight, bias)
    with pytest.raises(ValueError, match="output must have the shape of grad"):
        torch.ops.pyvi.sparse_linear_backward(out, x, out[:, :-1], True)
    with pytest.raises(ValueError, match="grad must have shape"):
        torch.ops.pyvi.sparse_linear_backward(out[:-1], x, out[:-1], True)
