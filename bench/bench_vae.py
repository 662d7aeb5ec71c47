"""VAE (Problem 4) on the embedded MNIST digits: one training epoch and the likelihood op alone.

- Epoch, CPU, batch 128, torch threads fixed (bench/conftest.py): pyvi (data as one tensor, batches
  by index, on-device binarisation, the fused ops: encoder's first layer over the nonzero pixels
  ``pyvi::sparse_linear``, posterior heads + reparameterisation + KL ``pyvi::gaussian_latent``,
  decoder output layer on oneDNN ``pyvi::dense_linear``, likelihood ``pyvi::bernoulli_log_lik``) against the homework's style (a torchvision-style
  Dataset, per-image PIL -> ToTensor through a DataLoader, torch.bernoulli per batch, the
  plain-torch reference modules), plus pyvi's pipeline with the reference modules, to separate
  the two effects. All three train the same architecture with Adam (pyvi: torch's fused Adam
  stepped by pyvi._adam.fused_adam_step, as pyvi.vae.train does; homework: the default Adam).
- Likelihood op: fused vs reference, forward + backward at B = 128 (training) and forward at
  K x B = 5,000 x 20 (IWAE evaluation), float32.
- Encoder's first layer (784 -> 512, ReLU) on binarised digits, forward + backward at B = 128:
  ``pyvi::sparse_linear`` vs torch's dense layer (MKL sgemm); decoder's output layer (512 -> 784):
  ``pyvi::dense_linear`` (oneDNN) vs ``nn.Linear`` (MKL sgemm).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import size

from pyvi.data import MNISTData, mnist
from pyvi.vae import VAE, bernoulli_log_likelihood
from pyvi.vae.train import train_epoch

BATCH_SIZE = 128
NUM_TRAIN = size(4000, 512)


def _train_data() -> MNISTData:
    data = mnist("embedded", "train")
    return MNISTData(data.images[:NUM_TRAIN], data.labels[:NUM_TRAIN], data.binarize, data.source, data.split)


class _HomeworkStyleMNIST(torch.utils.data.Dataset):
    """What torchvision.datasets.MNIST(transform=ToTensor()) does per item: uint8 array -> PIL image
    -> ToTensor (float CHW in [0, 1])."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        from torchvision.transforms import ToTensor

        self.images, self.labels, self.transform = images, labels, ToTensor()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index], mode="L")), int(self.labels[index])


def _homework_epoch(model, optimizer, loader) -> float:
    total = 0.0
    for images, _ in loader:
        x = torch.bernoulli(images.view(len(images), -1))
        elbo = model.elbo(x)
        loss = -elbo.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += elbo.detach().sum().item()
    return total / len(loader.dataset)


@pytest.mark.parametrize("impl", ["pyvi-fused", "pyvi-reference", "homework-dataloader"])
def test_epoch(benchmark, impl):
    benchmark.group = f"VAE: one training epoch, {NUM_TRAIN:,} images, batch {BATCH_SIZE}, CPU"
    data = _train_data()
    torch.manual_seed(0)
    model = VAE(impl="reference" if impl != "pyvi-fused" else "fused")
    # The homework's plain Adam; pyvi's train_epoch() uses torch's fused Adam (same update, one kernel).
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=impl != "homework-dataloader")
    if impl == "homework-dataloader":
        pixels = (data.images * 255).round().to(torch.uint8).reshape(-1, 28, 28).numpy()
        dataset = _HomeworkStyleMNIST(pixels, data.labels.numpy())
        first, _ = dataset[0]
        torch.testing.assert_close(first.view(-1), data.images[0])  # the same pixels both ways
        loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True)

        def run():
            return _homework_epoch(model, optimizer, loader)
    else:
        cpu_generator, noise_generator = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)

        def run():
            return train_epoch(model, optimizer, data, BATCH_SIZE, cpu_generator, noise_generator)

    first_epoch = run()  # also the warm-up
    assert -600.0 < first_epoch < -150.0, first_epoch  # it trains: from ~-543 (784 log 2) upwards
    benchmark.pedantic(run, rounds=size(3, 1), iterations=1)
    benchmark.extra_info.update(impl=impl, baseline=impl == "homework-dataloader", num_images=NUM_TRAIN,
                                batch_size=BATCH_SIZE)


SHAPES = [pytest.param((1, 128), id="Bx128-fwd+bwd"), pytest.param((size(5000, 100), 20), id="KxB-fwd")]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_likelihood_op(benchmark, impl, shape):
    samples, batch = shape
    backward = samples == 1
    benchmark.group = (f"Bernoulli log-likelihood, {samples:,} x {batch} x 784, float32, "
                       + ("forward + backward" if backward else "forward (IWAE evaluation)"))
    generator = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(samples, batch, 784, generator=generator)).requires_grad_(backward)
    x = (torch.rand(batch, 784, generator=generator) < 0.3).float()
    expected = bernoulli_log_likelihood(logits, x, impl="reference")
    torch.testing.assert_close(bernoulli_log_likelihood(logits, x, impl=impl), expected, rtol=1e-5, atol=1e-3)

    def run():
        if backward:
            (grad,) = torch.autograd.grad(bernoulli_log_likelihood(logits, x, impl=impl).sum(), logits)
            return grad
        with torch.no_grad():
            return bernoulli_log_likelihood(logits, x, impl=impl)

    benchmark.pedantic(run, rounds=size(20 if backward else 3, 1), iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(impl=impl, baseline=impl == "reference", samples=samples, batch=batch, pixels=784)


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_encoder_layer(benchmark, impl):
    from pyvi.vae.sparse_linear import in_major, sparse_linear

    benchmark.group = (f"Encoder layer 784 -> 512 + ReLU on binarised digits, B = {BATCH_SIZE}, float32, "
                       "forward + backward")
    x = _train_data().batch(torch.arange(BATCH_SIZE), seed=0)
    torch.manual_seed(0)
    layer = torch.nn.Linear(784, 512)
    weight = torch.nn.Parameter(in_major(layer.weight.detach()) if impl == "fused" else layer.weight.detach().clone())
    bias = torch.nn.Parameter(layer.bias.detach().clone())
    upstream = torch.randn(BATCH_SIZE, 512)
    expected = torch.relu(layer(x))
    torch.testing.assert_close(sparse_linear(x, weight, bias, relu=True, impl=impl), expected, rtol=1e-5, atol=1e-5)

    def run():
        weight.grad = bias.grad = None
        (sparse_linear(x, weight, bias, relu=True, impl=impl) * upstream).sum().backward()
        return weight.grad

    benchmark.pedantic(run, rounds=size(50, 2), iterations=1, warmup_rounds=2)
    benchmark.extra_info.update(impl=impl, baseline=impl == "reference", batch=BATCH_SIZE, in_features=784,
                                out_features=512, density=round(float((x != 0).float().mean()), 3))


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_decoder_layer(benchmark, impl):
    from pyvi.vae.dense_linear import dense_linear

    benchmark.group = f"Decoder output layer 512 -> 784, B = {BATCH_SIZE}, float32, forward + backward"
    generator = torch.Generator().manual_seed(0)
    h = torch.randn(BATCH_SIZE, 512, generator=generator).relu().requires_grad_()
    torch.manual_seed(0)
    layer = torch.nn.Linear(512, 784)
    upstream = torch.randn(BATCH_SIZE, 784, generator=generator)
    torch.testing.assert_close(dense_linear(h, layer.weight, layer.bias, impl=impl), layer(h), rtol=1e-4, atol=1e-4)

    def run():
        h.grad = layer.weight.grad = layer.bias.grad = None
        (dense_linear(h, layer.weight, layer.bias, impl=impl) * upstream).sum().backward()
        return layer.weight.grad

    benchmark.pedantic(run, rounds=size(50, 2), iterations=1, warmup_rounds=2)
    benchmark.extra_info.update(impl=impl, baseline=impl == "reference", batch=BATCH_SIZE, in_features=512,
                                out_features=784)
