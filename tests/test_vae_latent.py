"""pyvi::gaussian_latent (posterior heads + reparameterisation + analytic KL) against plain torch."""

from __future__ import annotations

import pytest
import torch

from pyvi.testing import DEVICES, DTYPES
import pyvi.ops  # noqa: F401  (loads pyvi._C and the ops' fake kernels)
from pyvi.vae.latent import gaussian_latent

NAMES = ("h", "w_mu", "b_mu", "w_log_var", "b_log_var", "eps")


def _inputs(device, dtype, batch=5, hidden=37, latent=3, seed=0):
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=generator, dtype=dtype)).to(device)

    h = normal(batch, hidden).relu()
    scale = hidden**-0.5  # log-variances of order one, as in a trained encoder
    return (h, normal(latent, hidden, scale=scale), normal(latent), normal(latent, hidden, scale=scale),
            normal(latent), normal(batch, latent))


def _outputs_and_grads(inputs, impl):
    leaves = [t.clone().requires_grad_() for t in inputs]
    outputs = gaussian_latent(*leaves, impl=impl)
    # Every output used, with distinct weights, so every term of the backward is exercised.
    loss = sum((out * torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype, device=out.device).reshape(out.shape)
                ).sum() * (k + 1) for k, out in enumerate(outputs))
    loss.backward()
    return [out.detach() for out in outputs], [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 37, 3), (128, 512, 2), (0, 7, 2), (3, 1, 1)])
def test_fused_matches_reference_values_and_gradients(device, dtype, shape):
    inputs = _inputs(device, dtype, *shape)
    fused_out, fused_grads = _outputs_and_grads(inputs, "fused")
    ref_out, ref_grads = _outputs_and_grads(inputs, "reference")
    # float32: sums of 512 products in another order than BLAS's.
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    for got, want, name in zip(fused_out, ref_out, ("z", "kl", "mu", "log_var"), strict=True):
        torch.testing.assert_close(got, want, **tol, msg=lambda m, name=name: f"{name}: {m}")
    for got, want, name in zip(fused_grads, ref_grads, NAMES, strict=True):
        torch.testing.assert_close(got, want, **tol, msg=lambda m, name=name: f"grad {name}: {m}")


def test_unused_outputs_get_no_gradient():
    """Only z and kl used (as in the ELBO): the other outputs' gradients count as zeros."""
    inputs = _inputs("cpu", torch.float64)
    grads = {}
    for impl in ("fused", "reference"):
        leaves = [t.clone().requires_grad_() for t in inputs]
        z, kl, _, _ = gaussian_latent(*leaves, impl=impl)
        (z.sin().sum() + kl.sum()).backward()
        grads[impl] = [leaf.grad for leaf in leaves]
    for got, want in zip(grads["fused"], grads["reference"], strict=True):
        torch.testing.assert_close(got, want)


def test_gradcheck_float64():
    inputs = tuple(t.requires_grad_() for t in _inputs("cpu", torch.float64, batch=3, hidden=5, latent=2))
    assert torch.autograd.gradcheck(lambda *args: gaussian_latent(*args), inputs)


@pytest.mark.parametrize("device", DEVICES)
# opcheck's own AOT-dispatch harness reads .grad of a non-leaf internally and warns about it.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_opcheck(device):
    inputs = _inputs(device, torch.float64)
    torch.library.opcheck(torch.ops.pyvi.gaussian_latent, tuple(t.clone().requires_grad_() for t in inputs))
    h, w_mu, _, w_log_var, _, eps = inputs
    z, kl, mu, log_var = torch.ops.pyvi.gaussian_latent(*inputs)
    grads = (torch.randn_like(z), torch.randn_like(kl), torch.randn_like(mu), torch.randn_like(log_var))
    torch.library.opcheck(torch.ops.pyvi.gaussian_latent_backward, (*grads, h, w_mu, w_log_var, eps, mu, log_var))


def test_bad_input():
    h, w_mu, b_mu, w_log_var, b_log_var, eps = _inputs("cpu", torch.float32)
    with pytest.raises(ValueError, match="w_mu must have shape"):
        gaussian_latent(h, w_mu[:, :-1], b_mu, w_log_var, b_log_var, eps)
    with pytest.raises(ValueError, match="w_log_var must have the shape of w_mu"):
        gaussian_latent(h, w_mu, b_mu, w_log_var[:-1], b_log_var, eps)
    with pytest.raises(ValueError, match="b_log_var must have shape"):
        gaussian_latent(h, w_mu, b_mu, w_log_var, b_log_var[:-1], eps)
    with pytest.raises(ValueError, match="eps must have shape"):
        gaussian_latent(h, w_mu, b_mu, w_log_var, b_log_var, eps[:-1])
    with pytest.raises(ValueError, match="h must have shape"):
        gaussian_latent(h[0], w_mu, b_mu, w_log_var, b_log_var, eps)
    with pytest.raises(TypeError, match="b_mu must have the dtype of h"):
        gaussian_latent(h, w_mu, b_mu.double(), w_log_var, b_log_var, eps)
    with pytest.raises(TypeError, match="h must be float32 or float64"):
        gaussian_latent(h.int(), w_mu, b_mu, w_log_var, b_log_var, eps)
    with pytest.raises(TypeError, match="eps must be a torch.Tensor"):
        gaussian_latent(h, w_mu, b_mu, w_log_var, b_log_var, 0.0)
    z, kl, mu, log_var = gaussian_latent(h, w_mu, b_mu, w_log_var, b_log_var, eps)
    with pytest.raises(ValueError, match="grad_kl must have shape"):
        torch.ops.pyvi.gaussian_latent_backward(z, kl[:-1], mu, log_var, h, w_mu, w_log_var, eps, mu, log_var)
    with pytest.raises(ValueError, match="mu must have the shape of eps"):
        torch.ops.pyvi.gaussian_latent_backward(z, kl, mu, log_var, h, w_mu, w_log_var, eps, mu[:-1], log_var)
