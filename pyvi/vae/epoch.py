"""One VAE training epoch as a device-resident step, replayed through CUDA graphs on a GPU.

``train_epoch`` launches a dozen small kernels per minibatch from Python; at batch 128 on a GPU each
launch costs more host time than its kernel takes. Here the epoch's randomness is drawn on the host
first, in the order the eager loop draws it (the permutation, then one binarisation seed per batch,
from the CPU generator), copied to the device once, and each step reads its batch from there:

    x = pyvi::binarize_rows(images, order, seeds, step)   (gather + dynamic binarisation, one kernel;
                                                           the same bits as binarize(images[rows], seed))
    elbo = model.elbo(x, generator=noise_generator); (-elbo.mean()).backward(); Adam; step += 1

so the step has fixed shapes, no host synchronisation and a device-side step counter: it can be
captured once and replayed for every batch of every epoch (``pyvi._cuda_graph.run_steps``). The last,
smaller batch of an epoch has a graph of its own (its first run is eager warm-up). With ``capture=False`` the same kernels run eagerly, and on the CPU this is the reference
that must equal ``train_epoch`` (tested).

References:
    Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114.
    PyTorch, "CUDA Graphs" (whole-network capture).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

import pyvi.ops  # noqa: F401  (pyvi._C and the ops' fake kernels)
from pyvi._adam import fused_adam_step, supports_fused_adam_step
from pyvi._cuda_graph import GraphedSteps
from pyvi.data import MNISTData

__all__ = ["DeviceEpoch"]


class DeviceEpoch:
    """The static buffers and captured graphs of one (model, optimizer, data, batch size) training run.

    Args:
        model: the VAE (on the data's device).
        optimizer: a plain Adam (``fused=True`` on the GPU, :func:`pyvi._adam.supports_fused_adam_step`)
            or any optimizer when ``capture`` is False.
        data: dynamically binarised training data (``binarize="dynamic"``).
        batch_size: minibatch size.
        noise_generator: the reparameterisation noise's generator (on the data's device).
        capture: replay CUDA graphs (needs a CUDA device); else eager launches.
    """

    def __init__(self, model, optimizer: torch.optim.Optimizer, data: MNISTData, batch_size: int,
                 noise_generator: torch.Generator, *, capture: bool):
        if data.binarize != "dynamic":
            raise ValueError("DeviceEpoch draws the binarisation on the device: data must have binarize='dynamic'")
        if capture and (data.device.type != "cuda" or not supports_fused_adam_step(optimizer)):
            raise ValueError("capturing the VAE step needs CUDA data and a plain Adam with fused=True")
        self.model, self.optimizer, self.data = model, optimizer, data
        self.batch_size = batch_size
        self.noise_generator = noise_generator
        self.capture = capture
        device = data.device
        self.num_full, self.tail = divmod(len(data), batch_size)
        num_batches = self.num_full + (1 if self.tail else 0)
        self.order = torch.empty(len(data), dtype=torch.int64, device=device)
        self.seeds = torch.empty(num_batches, dtype=torch.int64, device=device)
        self.step_index = torch.zeros((), dtype=torch.int64, device=device)
        self.total = torch.zeros((), dtype=data.images.dtype, device=device)
        self._adam = fused_adam_step if supports_fused_adam_step(optimizer) else type(optimizer).step
        self._full = GraphedSteps(lambda: self._step(batch_size), capture=capture, generators=(noise_generator,))
        self._tail = GraphedSteps(lambda: self._step(self.tail), capture=capture, generators=(noise_generator,),
                                  steps_per_graph=1)

    def _step(self, rows: int) -> None:
        """One minibatch of ``rows`` images at the device-side step index (capture-safe)."""
        self.optimizer.zero_grad(set_to_none=True)
        x = torch.ops.pyvi.binarize_rows(self.data.images, self.order, self.seeds, self.step_index, self.batch_size,
                                         rows)
        elbo = self.model.elbo(x, generator=self.noise_generator)
        (-elbo.mean()).backward()
        self._adam(self.optimizer)
        with torch.no_grad():
            self.total.add_(elbo.detach().sum())
            self.step_index.add_(1)

    def run(self, cpu_generator: torch.Generator) -> float:
        """One epoch; returns the mean training ELBO of its batches (one synchronisation, at the end)."""
        self.model.train()
        # The eager loop's draws, in its order: the permutation, then a seed per batch.
        order = torch.randperm(len(self.data), generator=cpu_generator)
        seeds = torch.tensor([int(torch.randint(0, 2**62, (), generator=cpu_generator)) for _ in range(len(self.seeds))],
                             dtype=torch.int64)
        self.order.copy_(order)
        self.seeds.copy_(seeds)
        self.step_index.zero_()
        self.total.zero_()
        device = self.data.device
        context = torch.cuda.device(device) if device.type == "cuda" else nullcontext()
        with context:
            self._full.run(self.num_full)
            if self.tail:
                self._tail.run(1)
            mean = float(self.total) / len(self.data)
        return mean

