"""Training loop for :class:`pyvi.vae.VAE` with per-epoch ELBO curves and exact resume.

Randomness comes from two explicit generators, both saved in every checkpoint: one on the CPU for
the epoch permutations and the per-batch binarisation seeds, one on the training device for the
reparameterisation noise. The per-epoch evaluation uses its own freshly seeded generators, so it
never disturbs the training stream. Hence a run resumed from the checkpoint of epoch e reproduces
the uninterrupted run exactly (bit for bit on the CPU).

Checkpoints are written to a temporary file in the same folder and moved into place with
``os.replace``, so a crash mid-write never replaces the previous good checkpoint
(:mod:`pyvi.vae.checkpoint`; reading one checks every field).

After each epoch one check asks whether the parameters and the epoch's ELBOs are finite. A run that
diverged (a learning rate far too large) cannot recover (NaN weights stay NaN under Adam), so
training stops there with :class:`NonFiniteTrainingError`: the epoch is neither recorded nor
checkpointed, and the checkpoint file keeps the last finite epoch.

References:
    Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114.
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, arXiv:1412.6980.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

from pyvi import distributed
from pyvi._adam import fused_adam_step, supports_fused_adam_step
from pyvi._seeds import derived_seed
from pyvi._validate import count, positive_float, seed_value
from pyvi.data import MNISTData
from pyvi.vae.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, load_checkpoint, save_checkpoint
from pyvi.vae.model import VAE

__all__ = ["train", "train_epoch", "evaluate_elbo", "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT",
           "eval_indices", "NonFiniteTrainingError"]

#: Fixed binarisation seeds of the evaluation sets (train subset, test subset).
EVAL_SEEDS = (1_000_003, 2_000_003)


class NonFiniteTrainingError(FloatingPointError):
    """Training produced non-finite parameters or ELBOs (the learning rate is usually far too large).

    Attributes:
        history: the finite epochs' history (as :func:`train` returns it), without the failed epoch.
        epoch: the failed epoch (1-based).
    """

    def __init__(self, message: str, history: dict, epoch: int):
        super().__init__(message)
        self.history = history
        self.epoch = epoch


def eval_indices(size: int, num: int, seed: int) -> torch.Tensor:
    """``num`` fixed random indices out of ``size`` (all of them, in order, when num >= size)."""
    if num >= size:
        return torch.arange(size)
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:num].sort().values


@distributed.entry_point
@torch.no_grad()
def evaluate_elbo(model: VAE, data: MNISTData, indices: torch.Tensor, *, seed: int, batch_size: int = 500) -> float:
    """Mean one-sample ELBO over ``data[indices]`` (nats per image), with fixed binarisation and noise.

    Under torchrun every process evaluates its rows of each batch (the bits and noise the whole
    batch gives them) and the sum is reduced: every process returns the single-process value up to
    the order of the additions. Every process must call it.
    """
    if len(indices) == 0:
        raise ValueError("indices must hold at least one image")
    group = distributed.current()
    generator = torch.Generator(device=data.device).manual_seed(seed)
    total = 0.0
    for part in indices.split(batch_size):
        if group is None:
            x = data.batch(part, seed=seed)
            total += model.elbo(x, generator=generator).sum().item()
            continue
        rows = group.rows(len(part))
        x = data.batch(part[rows.start:rows.stop], seed=seed, first_row=rows.start)
        total += model.elbo(x, generator=generator, share=(rows.start, len(part))).sum().item()
    if group is not None:
        total = float(group.all_reduce_sum_(torch.tensor([total], dtype=torch.float64, device=data.device)))
    return total / len(indices)


def train_epoch(model: VAE, optimizer: torch.optim.Optimizer, data: MNISTData, batch_size: int,
                cpu_generator: torch.Generator, noise_generator: torch.Generator,
                parallel: distributed.DataParallel | None = None) -> float:
    """One pass over ``data`` in random minibatches, maximising the one-sample ELBO.

    Each batch is an index permutation slice of the on-device data, binarised on the device with
    a seed drawn from ``cpu_generator``. Returns the mean training ELBO of the epoch's batches.
    A fused plain Adam is stepped by :func:`pyvi._adam.fused_adam_step` (the same kernel and result
    as ``optimizer.step()``, without its per-call overhead and parameter copies).

    With ``parallel`` (under torchrun) every process draws the same permutation, batch seeds and
    noise, takes its rows of each batch (their bits and noise are the whole batch's), weights its
    loss by its share, and sums the gradients with the others before the step
    (:meth:`pyvi.distributed.DataParallel.step_`): the single-process update up to the order of the
    float additions. The caller ends the sharing with ``parallel.release()``.
    """
    model.train()
    step = fused_adam_step if supports_fused_adam_step(optimizer) else type(optimizer).step
    total, seen = torch.zeros((), device=data.device), 0
    for indices in data.batches(batch_size, cpu_generator):
        batch_seed = int(torch.randint(0, 2**62, (), generator=cpu_generator))
        optimizer.zero_grad(set_to_none=True)
        if parallel is None:
            x = data.batch(indices, seed=batch_seed)
            elbo = model.elbo(x, generator=noise_generator)
            loss = -elbo.mean()
        else:
            rows = parallel.rows(len(indices))
            x = data.batch(indices[rows.start:rows.stop], seed=batch_seed, first_row=rows.start)
            elbo = model.elbo(x, generator=noise_generator, share=(rows.start, len(indices)))
            loss = -elbo.sum() / len(indices)  # this share's part of the batch mean
        loss.backward()
        if parallel is None:
            step(optimizer)
        else:
            parallel.step_(optimizer)  # the sum and Adam, sharded over the processes of a machine
        total += elbo.detach().sum()
        seen += len(indices)
    if parallel is not None:
        total = parallel.group.all_reduce_sum_(total.double())
    return total.item() / max(seen, 1)


def _parameters_finite(model: VAE) -> bool:
    """Whether every parameter is finite (one host synchronisation for all of them)."""
    flags = [torch.isfinite(p.detach()).all() for p in model.parameters()]
    return bool(torch.stack(flags).all())


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def _adam(model: VAE, lr: float) -> torch.optim.Adam:
    """Adam with torch's fused kernel (one pass over all parameters per step instead of a chain of
    foreach ops: ~15% of a CPU epoch here); the update rule is the same."""
    device = next(model.parameters()).device
    return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))


@distributed.entry_point
def train(
    model: VAE,
    train_data: MNISTData,
    test_data: MNISTData,
    *,
    epochs: int = 100,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    eval_images: int = 1000,
    progress: bool = True,
    cuda_graph: bool | None = None,
) -> dict:
    """Train ``model`` with Adam on ``train_data``; ELBO curves on 1,000 train / test images.

    Args:
        model: the VAE, on the data's device.
        train_data, test_data: from :func:`pyvi.data.mnist` (same device).
        epochs: total epochs (when resuming, the run continues up to this many).
        batch_size, lr, seed: minibatch size, Adam step size, seed of the training generators.
            When resuming they are taken from the checkpoint.
        checkpoint: file written after every finite epoch (model, optimiser, epoch, generators, history).
        resume: a checkpoint to continue from (every field checked: :mod:`pyvi.vae.checkpoint`); its
            model config must match ``model``.
        eval_images: images of each set in the per-epoch ELBO (all when a set has fewer).
        progress: show a tqdm bar.
        cuda_graph: on a CUDA device with dynamically binarised data, each epoch's steps run as captured
            CUDA graphs (:class:`pyvi.vae.epoch.DeviceEpoch`: the batch gathered and binarised on the device,
            no host synchronisation per step). ``False`` runs the eager loop (:func:`train_epoch`);
            ``True`` demands capture (ValueError where it cannot apply); ``None`` captures where it applies.
            Under torchrun the eager loop runs (its all-reduce sits between backward and Adam).

    Under ``torchrun`` with N > 1 processes (:mod:`pyvi.distributed`) training is data parallel:
    each global batch of ``batch_size`` is split by rows over the processes (each binarises its rows
    with the bits and noise the whole batch gives them), the gradients are summed over the processes
    before every Adam step, and the epoch's ELBOs are reduced: the single-process run up to the order
    of float additions. Every process returns the same history; rank 0 alone writes ``checkpoint``,
    which any number of processes can resume (the generators are the same on every process).
    ``batch_size`` must be at least N.

    Returns:
        The history: ``{"epoch", "train_elbo", "test_elbo", "seconds"}`` lists (per epoch) and
        ``"settings"``.

    Raises:
        NonFiniteTrainingError: an epoch left non-finite parameters or ELBOs (checked once per epoch);
            that epoch is not recorded or checkpointed, the checkpoint keeps the last finite epoch, the
            error's ``history`` the finite epochs. ``model`` holds the non-finite parameters.
        ValueError: an argument out of range (the message names it), empty data, or a resume
            checkpoint that is invalid or does not fit ``model``; under torchrun, a ``batch_size``
            below the number of processes.
        pyvi.distributed.RankFailedError: under torchrun, another process failed (its error).
    """
    from tqdm.auto import tqdm

    epochs = count(epochs, "epochs", minimum=0)
    batch_size = count(batch_size, "batch_size", minimum=1)
    lr = positive_float(lr, "lr")
    seed = seed_value(seed)
    eval_images = count(eval_images, "eval_images", minimum=1)
    for data, name in ((train_data, "train_data"), (test_data, "test_data")):
        if not isinstance(data, MNISTData):
            raise TypeError(f"{name} must be a pyvi.data.MNISTData, got {type(data).__name__}")
        if len(data) == 0:
            raise ValueError(f"{name} must hold at least one image, got none")
    if cuda_graph is not None and not isinstance(cuda_graph, bool):
        raise TypeError(f"cuda_graph must be None, True or False, got {type(cuda_graph).__name__}")
    device = train_data.device
    optimizer = _adam(model, lr)
    cpu_generator = torch.Generator().manual_seed(seed)
    noise_generator = torch.Generator(device=device).manual_seed(derived_seed(seed, 1))
    history = {"epoch": [], "train_elbo": [], "test_elbo": [], "seconds": []}
    settings = {"batch_size": batch_size, "lr": lr, "seed": seed, "eval_images": eval_images}
    start_epoch = 0
    if resume is not None:
        state = load_checkpoint(resume)
        if state["model_config"] != model.config():
            raise ValueError(f"checkpoint {resume} holds a model {state['model_config']}, not {model.config()}")
        settings = dict(state["settings"])
        batch_size, seed, eval_images = settings["batch_size"], settings["seed"], settings["eval_images"]
        try:
            model.load_state_dict(state["model"])
            optimizer = _adam(model, settings["lr"])
            optimizer.load_state_dict(state["optimizer"])
            cpu_generator.set_state(state["cpu_generator"])
            noise_generator.set_state(state["noise_generator"])
        except (RuntimeError, ValueError, KeyError, TypeError) as error:  # tensors that do not fit this model/device
            raise ValueError(f"checkpoint {resume} does not fit this model on {device}: {error}") from error
        history = {key: list(value) for key, value in state["history"].items()}
        start_epoch = state["epoch"]
    parallel = distributed.data_parallel(model.parameters())  # None outside torchrun
    if parallel is not None:
        parallel.group.share(batch_size, "batch_size")  # every process gets rows of a full batch
        if cuda_graph:
            raise ValueError("cuda_graph=True runs one process; under torchrun each step runs eagerly, the "
                             "gradients all-reduced between backward and Adam")
    graphable = device.type == "cuda" and train_data.binarize == "dynamic" and parallel is None
    if cuda_graph and not graphable:
        raise ValueError("cuda_graph=True needs CUDA training data with binarize='dynamic'")
    writes = parallel is None or parallel.group.is_main  # rank 0 alone writes the checkpoint
    runner = None
    if graphable and cuda_graph is not False:
        from pyvi.vae.epoch import DeviceEpoch

        runner = DeviceEpoch(model, optimizer, train_data, batch_size, noise_generator, capture=True)
    train_eval = eval_indices(len(train_data), eval_images, derived_seed(seed, 2))
    test_eval = eval_indices(len(test_data), eval_images, derived_seed(seed, 3))
    saved_epoch = start_epoch if resume is not None and checkpoint is not None and _same_file(resume, checkpoint) else None

    bar = tqdm(range(start_epoch, epochs), disable=not progress, desc="vae", unit="epoch",
               initial=start_epoch, total=epochs)
    try:
        for epoch in bar:
            started = time.perf_counter()
            if runner is not None:
                train_elbo = runner.run(cpu_generator)
            else:
                train_elbo = train_epoch(model, optimizer, train_data, batch_size, cpu_generator, noise_generator, parallel)
            seconds = time.perf_counter() - started
            model.eval()
            finite = math.isfinite(train_elbo) and _parameters_finite(model)
            if finite:
                elbos = (evaluate_elbo(model, train_data, train_eval, seed=EVAL_SEEDS[0]),
                         evaluate_elbo(model, test_data, test_eval, seed=EVAL_SEEDS[1]))
                finite = all(math.isfinite(value) for value in elbos)
            if not finite:
                bar.close()
                if checkpoint is None:
                    kept = "no checkpoint was written"
                elif saved_epoch is None:
                    kept = f"{checkpoint} was not written to"
                else:
                    kept = f"{checkpoint} was not overwritten (it holds epoch {saved_epoch}, the last finite one)"
                raise NonFiniteTrainingError(
                    f"training diverged in epoch {epoch + 1}: the parameters or the ELBO became non-finite "
                    f"(lr={settings['lr']:g} is likely too large; start again with a smaller one); {kept}",
                    {**history, "settings": settings}, epoch + 1)
            history["epoch"].append(epoch + 1)
            history["train_elbo"].append(elbos[0])
            history["test_elbo"].append(elbos[1])
            history["seconds"].append(seconds)
            bar.set_postfix(train=f"{elbos[0]:.1f}", test=f"{elbos[1]:.1f}")
            if checkpoint is not None and writes:
                save_checkpoint(checkpoint, {
                    "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model_config": model.config(),
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                    "cpu_generator": cpu_generator.get_state(), "noise_generator": noise_generator.get_state(),
                    "history": history, "settings": settings,
                })
                saved_epoch = epoch + 1
    finally:
        if parallel is not None:
            parallel.release()  # the model and optimizer state back in this process's own memory
    return {**history, "settings": settings}
