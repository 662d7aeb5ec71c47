"""pyvi.vae: fused likelihood ops against their torch references, the bounds, training, resume."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvi.data import MNISTData, mnist
from pyvi.testing import DEVICES, DTYPES
from pyvi.vae import VAE, bernoulli_log_likelihood, binarize, gaussian_log_likelihood
import pyvi.ops  # noqa: F401  (loads pyvi._C and the ops' fake kernels)
from pyvi.binarize import binarize_reference
from pyvi.vae.train import NonFiniteTrainingError, load_checkpoint, save_checkpoint, train

SEEDS = [pytest.param(None, id="given-x"), pytest.param(12345, id="dynamic")]


def _inputs(device, dtype, samples=3, batch=5, pixels=37, seed=0):
    generator = torch.Generator().manual_seed(seed)
    params = (3.0 * torch.randn(samples, batch, pixels, generator=generator, dtype=dtype)).to(device)
    x = torch.rand(batch, pixels, generator=generator, dtype=dtype).to(device)
    log_scale = torch.tensor(-0.4, dtype=dtype, device=device)
    return params, x, log_scale


def _likelihood(kind, params, x, log_scale, seed, impl):
    if kind == "bernoulli":
        return bernoulli_log_likelihood(params, x, seed=seed, impl=impl)
    return gaussian_log_likelihood(params, x, log_scale, seed=seed, impl=impl)


# ---------------------------------------------------------------- fused == reference


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("seed", SEEDS)
def test_fused_matches_reference_values_and_gradients(device, dtype, kind, seed):
    params, x, log_scale = _inputs(device, dtype)
    tol = {"rtol": 1e-5, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-9}
    results = {}
    for impl in ("fused", "reference"):
        p, xx, s = (t.clone().requires_grad_() for t in (params, x, log_scale))
        out = _likelihood(kind, p, xx, s, seed, impl)
        weights = torch.linspace(-1.0, 2.0, out.numel(), dtype=dtype, device=device).reshape(out.shape)
        (out * weights).sum().backward()
        results[impl] = (out.detach(), p.grad, xx.grad, s.grad)
    fused, reference = results["fused"], results["reference"]
    assert fused[0].shape == (3, 5)
    torch.testing.assert_close(fused[0], reference[0], **tol)
    torch.testing.assert_close(fused[1], reference[1], **tol)
    if seed is None:
        torch.testing.assert_close(fused[2], reference[2], **tol)
    else:  # a dynamically binarised x is a draw: no gradient reaches the gray levels
        assert fused[2] is None and reference[2] is None
    if kind == "gaussian":
        torch.testing.assert_close(fused[3], reference[3], **tol)


@settings(max_examples=40, deadline=None)
@given(samples=st.integers(1, 3), batch=st.integers(0, 4), pixels=st.integers(1, 40), scale=st.sampled_from([0.1, 3.0, 60.0]),
       dynamic=st.booleans(), transpose_x=st.booleans())
def test_fused_float32_matches_reference_on_any_shape(samples, batch, pixels, scale, dynamic, transpose_x):
    """The vectorised float32 rows (8 pixels at a time plus a scalar tail) on every length, empty
    batches and non-contiguous x."""
    generator = torch.Generator().manual_seed(samples * 1000 + batch * 100 + pixels)
    logits = scale * torch.randn(samples, batch, pixels, generator=generator)
    x = torch.rand(pixels, batch, generator=generator).T if transpose_x else torch.rand(batch, pixels, generator=generator)
    seed = 7 if dynamic else None
    fused = bernoulli_log_likelihood(logits, x, seed=seed)
    reference = bernoulli_log_likelihood(logits.double(), x.double(), seed=seed, impl="reference")
    torch.testing.assert_close(fused.double(), reference, rtol=1e-5, atol=1e-4 * pixels)
    logits.requires_grad_()
    weights = torch.randn(samples, batch, generator=generator)
    (grad,) = torch.autograd.grad((bernoulli_log_likelihood(logits, x, seed=seed) * weights).sum(), logits)
    target = x if seed is None else binarize_reference(x, seed)
    torch.testing.assert_close(grad, weights[..., None] * (target - torch.sigmoid(logits.detach())), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("kind", ["bernoulli", "gaussian"])
def test_two_dimensional_input_and_extreme_logits(kind):
    params = torch.tensor([[-200.0, -30.0, 0.0, 30.0, 200.0]], dtype=torch.float64)
    x = torch.tensor([[0.0, 1.0, 0.5, 0.0, 1.0]], dtype=torch.float64)
    fused = _likelihood(kind, params, x, torch.zeros((), dtype=torch.float64), None, "fused")
    reference = _likelihood(kind, params, x, torch.zeros((), dtype=torch.float64), None, "reference")
    assert fused.shape == (1,) and torch.isfinite(fused).all()
    torch.testing.assert_close(fused, reference)
    if kind == "bernoulli":  # x l - max(l, 0) - log1p(exp(-|l|)) term by term
        expected = -(math.log1p(math.exp(-200)) + 30 + math.log1p(math.exp(-30)) + math.log(2) + 30
                     + math.log1p(math.exp(-30)) + math.log1p(math.exp(-200)))
        assert fused.item() == pytest.approx(expected, rel=1e-12)


# Both implementations apply 1/s as two finite factors (csrc/common/vae_likelihood.h, GaussianInvScale):
# one product (x - m) * exp(-log_scale) gave 0 * inf = NaN once exp(-log_scale) overflowed.
IMPLS_BOTH = ["reference", "fused"]
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("impl", IMPLS_BOTH)
@pytest.mark.parametrize(("dtype", "log_scale"), [(torch.float64, -800.0), (torch.float32, -110.0),
                                                  (torch.float64, -1e5), (torch.float32, -1e4)])
def test_gaussian_likelihood_at_the_mean_with_a_tiny_scale_is_finite(device, impl, dtype, log_scale):
    """x == mean: r = 0 whatever the scale, so log N = -log s - log(2 pi)/2 per pixel, finite and
    huge, even where 1/s = exp(-log_scale) overflows; d/dm = 0 and d/dlog s = -1 per pixel."""
    mean = torch.tensor([[0.25, 0.5, 0.0, 1.0]], dtype=dtype, device=device, requires_grad=True)
    x = mean.detach().clone()
    s = torch.tensor(log_scale, dtype=dtype, device=device, requires_grad=True)
    out = gaussian_log_likelihood(mean, x, s, impl=impl)
    expected = 4 * (-log_scale - HALF_LOG_2PI)
    assert torch.isfinite(out).all(), out
    assert out.item() == pytest.approx(expected, rel=1e-6 if dtype == torch.float32 else 1e-12)
    out.sum().backward()
    assert torch.equal(mean.grad, torch.zeros_like(mean))
    assert s.grad.item() == pytest.approx(-4.0, rel=1e-3 if dtype == torch.float32 else 1e-9)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("impl", IMPLS_BOTH)
@pytest.mark.parametrize(("dtype", "log_scale", "difference"), [(torch.float64, -720.0, 1e-300),
                                                                (torch.float32, -100.0, 1e-25)])
def test_gaussian_likelihood_is_exact_where_only_one_over_scale_overflows(device, impl, dtype, log_scale, difference):
    """exp(-log_scale) overflows, but r = (x - m) / s is representable: the exact value, not -inf."""
    x = torch.tensor([[difference, 0.0]], dtype=dtype, device=device)
    mean = torch.zeros_like(x)
    s = torch.tensor(log_scale, dtype=dtype, device=device, requires_grad=True)
    d = x[0, 0].item()  # the difference as stored in dtype
    r2 = math.exp(2 * (math.log(d) - log_scale))
    out = gaussian_log_likelihood(mean, x, s, impl=impl)
    expected = -0.5 * r2 + 2 * (-log_scale - HALF_LOG_2PI)
    assert out.item() == pytest.approx(expected, rel=1e-5 if dtype == torch.float32 else 1e-12)
    out.sum().backward()  # d/dlog s = sum (r^2 - 1)
    assert s.grad.item() == pytest.approx(r2 - 2, rel=1e-4 if dtype == torch.float32 else 1e-10)


@pytest.mark.parametrize("log_scale", [-0.4, -720.0])
def test_gaussian_reference_first_and_second_derivatives(log_scale):
    """The reference's overflow-safe r keeps exact first and second derivatives (log_scale's gradient
    enters through one factor equal to 1), in the plain and in the split regime of 1/s."""
    params, x, _ = _inputs("cpu", torch.float64, samples=2, batch=3, pixels=6)
    if log_scale < -700:  # s = exp(-720) is subnormal: differences of order s only exist near 0
        x = torch.zeros_like(x)
        params = params * math.exp(log_scale)
    params.requires_grad_()
    s = torch.tensor(log_scale, dtype=torch.float64, requires_grad=True)

    def fn(p, ss):
        return gaussian_log_likelihood(p, x, ss, impl="reference")

    if log_scale > -700:  # finite differences of size 1e-6 need a scale far above 1e-6
        assert torch.autograd.gradcheck(fn, (params, s))
        assert torch.autograd.gradgradcheck(fn, (params, s))
    root = math.exp(-log_scale / 2)
    r = (x - params.detach()) * root * root  # (representable) 1/s applied in two finite halves
    assert r.abs().max() > 0.1
    grad = torch.autograd.grad(fn(params, s).sum(), s, create_graph=True)[0]
    torch.testing.assert_close(grad.detach(), (r**2 - 1).sum(), rtol=1e-12, atol=1e-9)
    second = torch.autograd.grad(grad, s)[0]  # d/dlog s of sum(r^2 - 1) = -2 sum r^2
    torch.testing.assert_close(second, -2 * (r**2).sum(), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("impl", ["fused", "reference"])
@pytest.mark.parametrize(("dtype", "log_scale"), [(torch.float64, -800.0), (torch.float32, -110.0),
                                                  (torch.float64, 800.0), (torch.float32, 110.0)])
def test_gaussian_likelihood_out_of_range_is_infinite_not_nan(impl, dtype, log_scale):
    """Away from the mean with a vanishing scale the exact value is below the float range: -inf, not
    NaN; a huge scale makes r = 0 (the exact r^2 underflows)."""
    x = torch.tensor([[0.5, -0.25]], dtype=dtype)
    s = torch.tensor(log_scale, dtype=dtype)
    out = gaussian_log_likelihood(torch.zeros_like(x), x, s, impl=impl)
    if log_scale < 0:
        assert out.item() == -math.inf
    else:
        assert out.item() == pytest.approx(2 * (-log_scale - HALF_LOG_2PI), rel=1e-6)


@pytest.mark.parametrize("kind", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("seed", SEEDS)
def test_gradcheck_float64(kind, seed):
    params, x, log_scale = _inputs("cpu", torch.float64, samples=2, batch=3, pixels=6)
    params.requires_grad_()
    x.requires_grad_(seed is None)
    log_scale.requires_grad_()
    assert torch.autograd.gradcheck(lambda p, xx, s: _likelihood(kind, p, xx, s, seed, "fused"), (params, x, log_scale))


@pytest.mark.parametrize("device", DEVICES)
# opcheck's own AOT-dispatch harness reads .grad of a non-leaf internally and warns about it.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_opcheck(device):
    params, x, log_scale = _inputs(device, torch.float64)
    params.requires_grad_()
    grad = torch.randn(3, 5, dtype=torch.float64, device=device)
    ops = torch.ops.pyvi
    for dynamic in (False, True):
        torch.library.opcheck(ops.bernoulli_log_lik, (params, x, 7, dynamic))
        torch.library.opcheck(ops.gaussian_log_lik, (params, x, log_scale.clone().requires_grad_(), 7, dynamic))
        torch.library.opcheck(ops.bernoulli_log_lik_backward, (grad, params.detach(), x, 7, dynamic))
        torch.library.opcheck(ops.gaussian_log_lik_backward, (grad, params.detach(), x, log_scale, 7, dynamic))
    torch.library.opcheck(ops.binarize, (x, 3))


def test_bad_likelihood_input():
    params, x, log_scale = _inputs("cpu", torch.float32)
    with pytest.raises(ValueError, match="x must have shape"):
        bernoulli_log_likelihood(params, x[:, :-1])
    with pytest.raises(TypeError, match="dtype"):
        bernoulli_log_likelihood(params, x.double())
    with pytest.raises(ValueError, match="logits must have shape"):
        bernoulli_log_likelihood(params[0, 0], x[0])
    with pytest.raises(TypeError, match="log_scale"):
        gaussian_log_likelihood(params, x, torch.zeros(2))
    with pytest.raises(ValueError, match="impl"):
        bernoulli_log_likelihood(params, x, impl="fast")
    with pytest.raises(ValueError, match="x must have shape"):  # the op's own boundary check
        torch.ops.pyvi.bernoulli_log_lik(params, x[:, :-1], 0, False)


# ---------------------------------------------------------------- the model and its bounds


@pytest.fixture(scope="module")
def test_images() -> MNISTData:
    return mnist("embedded", "test")


def test_model_fused_equals_reference(test_images):
    x = test_images.batch(torch.arange(64), seed=0)
    grads = {}
    for impl in ("fused", "reference"):
        torch.manual_seed(0)
        model = VAE(impl=impl)
        elbo = model.elbo(x, generator=torch.Generator().manual_seed(1))
        elbo.mean().backward()
        grads[impl] = (elbo.detach(), [p.grad for p in model.parameters()])
    torch.testing.assert_close(grads["fused"][0], grads["reference"][0], rtol=1e-5, atol=1e-3)
    for a, b in zip(grads["fused"][1], grads["reference"][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_model_dynamic_seed_path_equals_prebinarised(test_images):
    torch.manual_seed(0)
    model = VAE()
    gray = test_images.images[:32]
    a = model.elbo(gray, seed=5, generator=torch.Generator().manual_seed(1))
    b = model.elbo(binarize(gray, 5), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)


def _trained_model(test_images, epochs=1):
    torch.manual_seed(0)
    model = VAE()
    train(model, test_images, test_images, epochs=epochs, batch_size=100, eval_images=100, progress=False)
    return model


def test_iwae_bounds_increase_with_k_on_average(test_images):
    model = _trained_model(test_images)
    x = test_images.batch(torch.arange(200), seed=3)
    generator = torch.Generator().manual_seed(0)
    bounds = [model.iwae_bound(x, k, generator=generator).mean().item() for k in (1, 10, 100)]
    assert bounds[0] < bounds[1] < bounds[2]
    assert bounds[2] - bounds[0] > 1.0  # a real gap, not noise


def test_iwae_one_sample_is_elbo_in_expectation(test_images):
    model = _trained_model(test_images)
    x = test_images.batch(torch.arange(100), seed=3)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        iwae = torch.stack([model.iwae_bound(x, 1, generator=generator) for _ in range(100)])
        elbo = torch.stack([model.elbo(x, generator=generator) for _ in range(100)])
    difference = iwae.mean(0) - elbo.mean(0)  # per image, 100 draws each
    standard_error = (iwae.var(0) / 100 + elbo.var(0) / 100).mean().sqrt() / math.sqrt(100)
    assert abs(difference.mean().item()) < 4 * standard_error.item()


def test_iwae_bound_matches_torch_distributions(test_images):
    """The chunked log-mean-exp equals a direct computation with torch.distributions on the same draws."""
    torch.manual_seed(0)
    model = VAE()
    x = test_images.batch(torch.arange(4), seed=0)
    num_samples, chunk = 50, 7
    bound = model.iwae_bound(x, num_samples, generator=torch.Generator().manual_seed(2), chunk_size=chunk)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        mu, log_var = model.encode(x)
        q = torch.distributions.Normal(mu, (0.5 * log_var).exp())
        prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
        log_weights = []
        for start in range(0, num_samples, chunk):
            eps = torch.randn((min(chunk, num_samples - start), *mu.shape), generator=generator)
            z = mu + (0.5 * log_var).exp() * eps
            likelihood = torch.distributions.Bernoulli(logits=model.decode(z)).log_prob(x).sum(-1)
            log_weights.append(likelihood + prior.log_prob(z).sum(-1) - q.log_prob(z).sum(-1))
        expected = torch.cat(log_weights).logsumexp(0) - math.log(num_samples)
    torch.testing.assert_close(bound, expected, rtol=1e-5, atol=1e-3)


def test_gaussian_decoder_learns_its_scale(test_images):
    torch.manual_seed(0)
    model = VAE(likelihood="gaussian")
    x = test_images.batch(torch.arange(64), seed=0)
    (-model.elbo(x).mean()).backward()
    assert model.log_scale.grad is not None and model.log_scale.grad.abs() > 0
    assert model.sample(3).shape == (3, 784)


def test_model_bad_input():
    with pytest.raises(ValueError, match="likelihood"):
        VAE(likelihood="poisson")
    with pytest.raises(ValueError, match="x must have shape"):
        VAE().elbo(torch.zeros(3, 10))
    with pytest.raises(ValueError, match="num_samples"):
        VAE().iwae_bound(torch.zeros(3, 784), 0)


# ---------------------------------------------------------------- training and checkpoints


@pytest.fixture(scope="module")
def small_train() -> MNISTData:
    data = mnist("embedded", "train")
    return MNISTData(data.images[:600], data.labels[:600], data.binarize, data.source, data.split)


def test_short_training_improves_test_elbo(small_train, test_images):
    torch.manual_seed(0)
    model = VAE()
    from pyvi.vae.train import evaluate_elbo

    before = evaluate_elbo(model, test_images, torch.arange(500), seed=1)
    history = train(model, mnist("embedded", "train"), test_images, epochs=2, eval_images=500, progress=False)
    assert before < -500  # an untrained decoder: about 784 log 2
    assert history["test_elbo"][-1] > before + 250
    assert history["test_elbo"][-1] > history["test_elbo"][0]


def test_resume_equals_uninterrupted_run(tmp_path, small_train, test_images):
    def fresh():
        torch.manual_seed(0)
        return VAE()

    kwargs = {"batch_size": 128, "eval_images": 100, "progress": False, "seed": 3}
    full = fresh()
    full_history = train(full, small_train, test_images, epochs=3, checkpoint=tmp_path / "full.pt", **kwargs)
    part = fresh()
    train(part, small_train, test_images, epochs=1, checkpoint=tmp_path / "part.pt", **kwargs)
    resumed = fresh()  # re-initialised weights, overwritten from the checkpoint
    resumed_history = train(resumed, small_train, test_images, epochs=3, resume=tmp_path / "part.pt",
                            checkpoint=tmp_path / "part.pt", **{**kwargs, "seed": 99})  # the checkpoint's seed wins
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert resumed_history["test_elbo"] == full_history["test_elbo"]
    assert load_checkpoint(tmp_path / "part.pt")["epoch"] == 3


def test_corrupt_or_foreign_checkpoint_raises(tmp_path, small_train, test_images):
    torch.manual_seed(0)
    model = VAE()
    train(model, small_train, test_images, epochs=1, checkpoint=tmp_path / "good.pt", eval_images=50, progress=False)
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or not a torch checkpoint"):
        train(VAE(), small_train, test_images, epochs=2, resume=tmp_path / "truncated.pt", progress=False)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a pyvi VAE checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="holds a model"):
        train(VAE(hidden=16), small_train, test_images, epochs=2, resume=tmp_path / "good.pt", progress=False)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def _tiny(data: MNISTData, size: int) -> MNISTData:
    return MNISTData(data.images[:size], data.labels[:size], data.binarize, data.source, data.split)


def test_diverging_training_stops_and_writes_no_nan_checkpoint(tmp_path, small_train, test_images):
    """lr = 1 sends the weights to NaN in the first epoch: a clear error, and no checkpoint of NaN weights."""
    torch.manual_seed(0)
    with pytest.raises(NonFiniteTrainingError, match=r"diverged in epoch 1.*lr=1 .*no checkpoint") as info:
        train(VAE(), _tiny(small_train, 300), _tiny(test_images, 100), epochs=3, lr=1.0, eval_images=50,
              progress=False, checkpoint=None)
    assert info.value.epoch == 1 and info.value.history["epoch"] == []
    torch.manual_seed(0)
    with pytest.raises(NonFiniteTrainingError, match="was not written to"):
        train(VAE(), _tiny(small_train, 300), _tiny(test_images, 100), epochs=3, lr=1.0, eval_images=50,
              progress=False, checkpoint=tmp_path / "ck.pt")
    assert not (tmp_path / "ck.pt").exists()


def test_non_finite_epoch_never_overwrites_a_good_checkpoint(tmp_path, monkeypatch, small_train, test_images):
    """A NaN after a good epoch (injected into the second epoch): the first epoch's checkpoint stays."""
    import pyvi.vae.train as train_module

    real_epoch, calls = train_module.train_epoch, []

    def poisoned_epoch(model, *args):
        value = real_epoch(model, *args)
        calls.append(value)
        if len(calls) == 2:
            with torch.no_grad():
                model.fc_mu.weight[0, 0] = math.nan
        return value

    monkeypatch.setattr(train_module, "train_epoch", poisoned_epoch)
    path = tmp_path / "ck.pt"
    torch.manual_seed(0)
    with pytest.raises(NonFiniteTrainingError, match=r"epoch 2.*not overwritten \(it holds epoch 1"):
        train(VAE(), _tiny(small_train, 200), _tiny(test_images, 100), epochs=4, eval_images=50, progress=False,
              checkpoint=path)
    state = load_checkpoint(path)  # loads: every weight finite
    assert state["epoch"] == 1 and len(state["history"]["test_elbo"]) == 1 and len(calls) == 2


def test_checkpoint_fields_are_checked_on_load(tmp_path, small_train, test_images):
    torch.manual_seed(0)
    good = tmp_path / "good.pt"
    train(VAE(), _tiny(small_train, 200), _tiny(test_images, 100), epochs=1, eval_images=50, progress=False,
          checkpoint=good)
    cases = {
        "epoch": [(-5, "epoch must be >= 0"), (True, "epoch must be an integer"), ("1", "epoch must be an integer"),
                  (2, r"history\['epoch'\] must be a list of 2")],
        "settings": [({"batch_size": 0, "lr": 1e-3, "seed": 0, "eval_images": 50}, r"settings\['batch_size'\] must be >= 1"),
                     ({"batch_size": 128, "lr": "big", "seed": 0, "eval_images": 50}, r"settings\['lr'\] must be a real"),
                     ({"batch_size": 128, "lr": math.nan, "seed": 0, "eval_images": 50}, r"settings\['lr'\] must be a finite"),
                     ({"batch_size": 128, "lr": 1e-3, "seed": 2**64, "eval_images": 50}, r"settings\['seed'\] must be < 2\*\*64"),
                     ({"batch_size": 128, "lr": 1e-3, "seed": 0}, "settings must be a dict with the keys"),
                     ([1, 2], "settings must be a dict")],
        "history": [({"epoch": [1], "train_elbo": [-200.0], "test_elbo": [], "seconds": [0.1]},
                     r"history\['test_elbo'\] must be a list of 1"),
                    ({"epoch": [1], "train_elbo": [math.nan], "test_elbo": [-1.0], "seconds": [0.1]}, "finite numbers"),
                    ({"epoch": [7], "train_elbo": [-1.0], "test_elbo": [-1.0], "seconds": [0.1]}, r"must be \[1, ..., 1\]"),
                    ({"epoch": [1], "train_elbo": [-1.0], "test_elbo": [-1.0], "seconds": [-3.0]}, "must be >= 0")],
        "model_config": [("VAE", "model_config must be a dict")],
        "cpu_generator": [(torch.zeros(3), "cpu_generator must be a generator state")],
        "optimizer": [({}, "optimizer must be an optimizer state dict")],
    }
    original = load_checkpoint(good)
    for field, values in cases.items():
        for value, message in values:
            state = {**original, field: value}
            torch.save(state, tmp_path / "bad.pt")
            with pytest.raises(ValueError, match=message):
                load_checkpoint(tmp_path / "bad.pt")
    nan_model = {**original["model"], "fc_mu.weight": torch.full_like(original["model"]["fc_mu.weight"], math.nan)}
    torch.save({**original, "model": nan_model}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"model\['fc_mu.weight'\] holds non-finite weights"):
        train(VAE(), small_train, test_images, epochs=2, resume=tmp_path / "bad.pt", progress=False)
    short_model = {key: value for key, value in original["model"].items() if key != "fc_mu.bias"}
    torch.save({**original, "model": short_model}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="does not fit this model"):
        train(VAE(), small_train, test_images, epochs=2, resume=tmp_path / "bad.pt", progress=False)


def test_seed_at_the_top_of_its_range_trains(small_train, test_images):
    """2**64 - 1 is a valid seed: the derived seeds (noise generator, evaluation subsets) wrap around."""
    torch.manual_seed(0)
    history = train(VAE(), _tiny(small_train, 200), _tiny(test_images, 100), epochs=1, eval_images=50,
                    seed=2**64 - 1, progress=False)
    assert history["settings"]["seed"] == 2**64 - 1 and math.isfinite(history["test_elbo"][0])
    for seed, error in ((2**64, ValueError), (-1, ValueError), (1.5, TypeError)):
        with pytest.raises(error, match="seed"):
            train(VAE(), small_train, test_images, epochs=1, seed=seed, progress=False)


def test_training_without_images_is_a_clear_error(small_train, test_images):
    for train_size, test_size, name in ((0, 100, "train_data"), (100, 0, "test_data")):
        with pytest.raises(ValueError, match=f"{name} must hold at least one image"):
            train(VAE(), _tiny(small_train, train_size), _tiny(test_images, test_size), epochs=1, progress=False)
    with pytest.raises(TypeError, match="train_data must be a pyvi.data.MNISTData"):
        train(VAE(), small_train.images, test_images, epochs=1, progress=False)
    from pyvi.vae.train import evaluate_elbo

    with pytest.raises(ValueError, match="indices must hold at least one image"):
        evaluate_elbo(VAE(), test_images, torch.arange(0), seed=0)


def test_failed_checkpoint_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"a": torch.ones(2)})
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017  (a lambda cannot be pickled)
        save_checkpoint(path, {"a": lambda: 0})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]  # no temporary left behind


def test_cli_writes_every_output(tmp_path):
    from pyvi.app.vae_cli import main

    out = tmp_path / "run"
    assert main(["--epochs", "1", "--out", str(out), "--threads", "1", "--iwae-k", "1,5", "--eval-images", "100",
                 "--no-progress"]) == 0
    for name in ("elbo_curves.png", "real_digits.png", "generated_digits.png", "latent_scatter.png",
                 "latent_grid.png", "checkpoint.pt", "metrics.json"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["iwae_test_log_likelihood"]) == {"1", "5"}
    assert metrics["epochs"] == 1 and metrics["final_test_elbo"] < 0
    # Resuming a finished run for one more epoch continues from its checkpoint.
    assert main(["--epochs", "2", "--out", str(out), "--resume", str(out / "checkpoint.pt"), "--iwae-k", "1",
                 "--eval-images", "100", "--no-progress"]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2


def test_cli_reports_bad_data_and_checkpoints_as_errors(tmp_path, capsys):
    from pyvi.app.vae_cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(tmp_path / "no-mnist"), "--epochs", "1", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "MNIST/raw/train-images-idx3-ubyte" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit):
        main(["--resume", str(tmp_path / "bad.pt"), "--epochs", "1", "--out", str(tmp_path / "out")])
    assert "truncated or not a torch checkpoint" in capsys.readouterr().err
