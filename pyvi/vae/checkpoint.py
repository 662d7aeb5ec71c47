"""VAE training checkpoints: atomic writes, and reads that check every field before training trusts it.

A checkpoint is a torch file (read with ``weights_only=True``: no pickled code runs) holding a dict:

- ``format``, ``version``: :data:`CHECKPOINT_FORMAT`, :data:`CHECKPOINT_VERSION`;
- ``model_config``: the :class:`pyvi.vae.VAE` constructor arguments; ``model``: its state dict
  (finite tensors); ``optimizer``: the Adam state dict;
- ``epoch``: finished epochs, an integer >= 0;
- ``cpu_generator``, ``noise_generator``: the training generators' states (uint8 tensors);
- ``history``: ``{"epoch": [1, ..., epoch], "train_elbo", "test_elbo", "seconds"}``, one finite number
  per finished epoch in each list;
- ``settings``: ``{"batch_size": int >= 1, "lr": float > 0, "seed": int in [0, 2**64),
  "eval_images": int >= 1}``.

:func:`load_checkpoint` raises a ValueError naming the first field that breaks this description,
so a hand-edited or foreign file (``epoch=-5``, histories of the wrong length, a string learning
rate, non-finite weights) never reaches the training loop.
"""

from __future__ import annotations

import math
import numbers
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

from pyvi._validate import count, positive_float, seed_value

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "HISTORY_KEYS", "SETTINGS_KEYS", "save_checkpoint",
           "load_checkpoint", "check_checkpoint"]

CHECKPOINT_FORMAT = "pyvi.vae.checkpoint"
CHECKPOINT_VERSION = 1
#: The per-epoch lists of a training history.
HISTORY_KEYS = ("epoch", "train_elbo", "test_elbo", "seconds")
#: The training settings a resumed run takes from its checkpoint.
SETTINGS_KEYS = ("batch_size", "lr", "seed", "eval_images")
_FIELDS = ("model_config", "model", "optimizer", "epoch", "cpu_generator", "noise_generator", "history", "settings")


def _compact(value):
    """``value`` with every tensor that views a larger storage replaced by a copy of itself:
    ``torch.save`` writes a view's whole storage, and under torchrun the parameters and Adam's
    moments are views of one shared block that also holds every process's gradients
    (:mod:`pyvi._shared_step`)."""
    if isinstance(value, torch.Tensor):
        return value.clone() if value.untyped_storage().nbytes() > value.numel() * value.element_size() else value
    if isinstance(value, dict):
        return type(value)((key, _compact(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_compact(item) for item in value)
    return value


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Atomically write ``state`` (temporary file in the same folder, fsync, ``os.replace``)."""
    state = _compact(state)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`pyvi.vae.train.train`, every field checked (module docstring).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is truncated, not a torch file, not a pyvi VAE checkpoint, or a field
            is missing or out of its range (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as error:
        # torch's own message suggests weights_only=False, which would run arbitrary pickled code: not shown.
        raise ValueError(f"checkpoint {path} is truncated or not a torch checkpoint ({type(error).__name__}); "
                         "the previous good checkpoint is the one written after the last finished epoch") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a pyvi VAE checkpoint (no format tag {CHECKPOINT_FORMAT!r})")
    if state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path} has version {state.get('version')}, this pyvi reads {CHECKPOINT_VERSION}")
    check_checkpoint(state, str(path))
    return state


def check_checkpoint(state: dict, where: str = "checkpoint") -> None:
    """Raise a ValueError naming the first field of ``state`` that breaks the module docstring's rules."""
    missing = set(_FIELDS) - set(state)
    if missing:
        raise ValueError(f"{where} lacks {', '.join(sorted(missing))}")
    try:
        _check_fields(state)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from error


def _check_fields(state: dict) -> None:
    if not isinstance(state["model_config"], dict):
        raise TypeError(f"model_config must be a dict, got {type(state['model_config']).__name__}")
    model = state["model"]
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise TypeError("model must be a state dict of tensors")
    for name, tensor in model.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"model[{name!r}] holds non-finite weights")
    optimizer = state["optimizer"]
    if not isinstance(optimizer, dict) or not {"state", "param_groups"} <= set(optimizer):
        raise TypeError("optimizer must be an optimizer state dict (with 'state' and 'param_groups')")
    for name in ("cpu_generator", "noise_generator"):
        value = state[name]
        if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8 or value.dim() != 1:
            raise TypeError(f"{name} must be a generator state (a 1-D uint8 tensor)")
    epoch = count(state["epoch"], "epoch")
    settings = state["settings"]
    if not isinstance(settings, dict) or set(settings) != set(SETTINGS_KEYS):
        raise ValueError(f"settings must be a dict with the keys {', '.join(SETTINGS_KEYS)}")
    count(settings["batch_size"], "settings['batch_size']", minimum=1)
    positive_float(settings["lr"], "settings['lr']")
    seed_value(settings["seed"], "settings['seed']")
    count(settings["eval_images"], "settings['eval_images']", minimum=1)
    history = state["history"]
    if not isinstance(history, dict) or set(history) != set(HISTORY_KEYS):
        raise ValueError(f"history must be a dict with the keys {', '.join(HISTORY_KEYS)}")
    for key in HISTORY_KEYS:
        values = history[key]
        if not isinstance(values, list) or len(values) != epoch:
            raise ValueError(f"history[{key!r}] must be a list of {epoch} values (one per finished epoch)")
        for value in values:
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"history[{key!r}] must hold finite numbers, got {value!r}")
    if history["epoch"] != list(range(1, epoch + 1)):
        raise ValueError(f"history['epoch'] must be [1, ..., {epoch}]")
    if min(history["seconds"], default=0.0) < 0:
        raise ValueError("history['seconds'] must be >= 0")
