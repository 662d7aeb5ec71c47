"""The VAE's device-resident epoch (pyvi/vae/epoch.py) and its gather-and-binarise op.

On the CPU, DeviceEpoch with eager launches must train exactly as train_epoch does (same batches,
same bits, same noise, same Adam); on CUDA (skipped without a GPU) its captured graphs must give
exactly what its eager launches give.
"""

import pytest
import torch

from pyvi.data import mnist
from pyvi.testing import DEVICES, DTYPES, cuda_available
from pyvi.vae import VAE
from pyvi.binarize import binarize
from pyvi.vae.train import _adam, train_epoch

pytest.importorskip("pyvi._C")
from pyvi.vae.epoch import DeviceEpoch  # noqa: E402


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_binarize_rows_equals_binarize_of_the_rows(device, dtype):
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(50, 13, generator=generator, dtype=dtype).to(device)
    order = torch.randperm(50, generator=generator).to(device)
    seeds = torch.tensor([5, 2**62 - 1, 0, 77], device=device)
    for step in range(4):
        rows = 8 if step < 3 else 5  # the last batch is shorter; stride stays 8
        got = torch.ops.pyvi.binarize_rows(images, order, seeds, torch.tensor(step, device=device), 8, rows)
        picked = images.index_select(0, order[step * 8: step * 8 + rows])
        assert torch.equal(got, binarize(picked, int(seeds[step])))


def test_binarize_rows_opcheck_and_bad_input():
    images = torch.rand(10, 4)
    order, seeds, step = torch.arange(10), torch.tensor([1, 2]), torch.tensor(0)
    torch.library.opcheck(torch.ops.pyvi.binarize_rows.default, (images, order, seeds, step, 5, 5))
    with pytest.raises(ValueError, match="batch_size"):
        torch.ops.pyvi.binarize_rows(images, order, seeds, step, 4, 5)
    with pytest.raises(TypeError, match="order must be int64"):
        torch.ops.pyvi.binarize_rows(images, order.int(), seeds, step, 5, 5)
    with pytest.raises(ValueError, match="asks for rows up to"):
        torch.ops.pyvi.binarize_rows(images, order, seeds, torch.tensor(1), 6, 6)
    with pytest.raises(ValueError, match="outside"):
        torch.ops.pyvi.binarize_rows(images, order + 10, seeds, step, 5, 5)
    with pytest.raises(ValueError, match="device"):
        torch.ops.pyvi.binarize_rows(images, order.to("meta"), seeds, step, 5, 5)


def _run(data, epochs, use_device_epoch, capture=False, batch_size=128):
    torch.manual_seed(0)
    model = VAE().to(data.device)
    optimizer = _adam(model, 1e-3)
    cpu_generator = torch.Generator().manual_seed(3)
    noise_generator = torch.Generator(device=data.device).manual_seed(4)
    runner = DeviceEpoch(model, optimizer, data, batch_size, noise_generator, capture=capture) if use_device_epoch else None
    elbos = []
    for _ in range(epochs):
        if runner is not None:
            elbos.append(runner.run(cpu_generator))
        else:
            elbos.append(train_epoch(model, optimizer, data, batch_size, cpu_generator, noise_generator))
    return model, elbos


def test_device_epoch_trains_exactly_as_train_epoch_on_cpu():
    data = mnist("embedded", "train")
    small = type(data)(data.images[:700], data.labels[:700], data.binarize, data.source, data.split)  # 5 full + tail
    reference, reference_elbos = _run(small, 2, False)
    candidate, candidate_elbos = _run(small, 2, True)
    for (name, a), (_, b) in zip(reference.state_dict().items(), candidate.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert candidate_elbos == pytest.approx(reference_elbos, rel=1e-6)


def test_device_epoch_needs_dynamic_data():
    data = mnist("embedded", "test", binarize="threshold")
    model = VAE()
    with pytest.raises(ValueError, match="binarize='dynamic'"):
        DeviceEpoch(model, _adam(model, 1e-3), data, 128, torch.Generator(), capture=False)
    with pytest.raises(ValueError, match="needs CUDA data"):
        DeviceEpoch(model, _adam(model, 1e-3), mnist("embedded", "test"), 128, torch.Generator(), capture=True)


@pytest.mark.skipif(not cuda_available(), reason="no CUDA device / CUDA build")
def test_captured_epochs_equal_eager_epochs_on_cuda():
    data = mnist("embedded", "train", device="cuda")
    eager, eager_elbos = _run(data, 3, True, capture=False)
    graphed, graphed_elbos = _run(data, 3, True, capture=True)
    for (name, a), (_, b) in zip(eager.state_dict().items(), graphed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert graphed_elbos == eager_elbos
