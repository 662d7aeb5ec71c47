"""An HMC run's settings, validated once for every backend, and the sampler's constants.

Every count that reaches C++ or Numba is checked here against the native integer range (a
ValueError naming the argument, never pybind11's "incompatible function arguments" or an int64
overflow that silently skips the loop). The constants (Stan's dual averaging, the divergence
threshold) are defined in the C++ core only and read from ``pyvi._core.hmc_constants``.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from functools import cache

import numpy as np

from pyvi._backend import require
from pyvi._validate import count, positive_float, probability, seed_value

__all__ = ["Settings", "constants", "native_count", "thread_count", "random_seed", "torch_options", "MAX_INT64",
           "MAX_INT32"]

MAX_INT64 = 2**63 - 1
MAX_INT32 = 2**31 - 1


def native_count(value, name: str, *, minimum: int = 0, maximum: int = MAX_INT64) -> int:
    """An integer in [minimum, maximum]: a count that a native backend stores in a fixed-width int."""
    value = count(value, name, minimum=minimum)
    if value > maximum:
        raise ValueError(f"{name} must be <= {maximum} (2**{(maximum + 1).bit_length() - 1} - 1), got {value}")
    return value


def thread_count(num_threads) -> int:
    """``num_threads`` for the native backends: None -> 0 ("all cores"), else an int in [1, 2**31)."""
    return 0 if num_threads is None else native_count(num_threads, "num_threads", minimum=1, maximum=MAX_INT32)


def random_seed() -> int:
    """A seed in [0, 2**64) from the operating system's entropy (for ``seed=None``)."""
    return secrets.randbits(64)


def torch_options(backend: str, device, dtype, cuda_graph) -> dict:
    """``device``, ``dtype`` and ``cuda_graph`` checked: the torch backend's (defaults: CPU,
    float64, capture where possible), which no other backend takes."""
    if backend != "torch":
        for name, value in (("device", device), ("dtype", dtype), ("cuda_graph", cuda_graph)):
            if value is not None:
                raise ValueError(f"{name} applies to backend='torch' only, got {name}={value!r} with "
                                 f"backend={backend!r}")
        return {}
    import torch

    if cuda_graph is not None and not isinstance(cuda_graph, bool):
        raise TypeError(f"cuda_graph must be None, True or False, got {type(cuda_graph).__name__}")
    dtype = torch.float64 if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    try:
        device = torch.device("cpu" if device is None else device)
    except (TypeError, RuntimeError) as error:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}") from error
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be a CPU or CUDA device, got {device}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={str(device)!r}, but torch sees no CUDA device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device={str(device)!r}, but torch sees {torch.cuda.device_count()} CUDA device(s)")
        device = torch.device("cuda", torch.cuda.current_device() if device.index is None else device.index)
    elif cuda_graph:
        raise ValueError("cuda_graph=True needs device='cuda'; use cuda_graph=None to capture only where it applies")
    return {"device": device, "dtype": dtype, "cuda_graph": cuda_graph}


@cache
def constants() -> dict[str, float]:
    """The sampler's constants from ``pyvi._core``: ``gamma``, ``kappa``, ``t0`` (Stan's dual
    averaging), ``max_log_step`` (the clamp of log step size) and ``max_energy_error`` (the
    divergence threshold)."""
    return dict(require("cpp").hmc_constants)


@dataclass(frozen=True)
class Settings:
    """What one run does, the same for every backend (see :func:`pyvi.hmc.sample`)."""

    num_samples: int
    num_warmup: int
    step_size: float
    num_steps: int
    random_steps: bool
    adapt_step_size: bool
    target_accept: float
    seed: int

    @classmethod
    def validated(cls, *, num_samples, num_warmup, step_size, num_steps, random_steps, adapt_step_size,
                  target_accept, seed) -> Settings:
        """The settings, each checked (ValueError / TypeError naming the argument)."""
        num_samples = native_count(num_samples, "num_samples", minimum=1)
        num_warmup = native_count(num_warmup, "num_warmup")
        if num_samples + num_warmup > MAX_INT64:
            raise ValueError(f"num_warmup + num_samples must be <= 2**63 - 1, got {num_warmup} + {num_samples}")
        for name, flag in (("random_steps", random_steps), ("adapt_step_size", adapt_step_size)):
            if not isinstance(flag, bool | np.bool_):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        return cls(
            num_samples=num_samples,
            num_warmup=num_warmup,
            step_size=positive_float(step_size, "step_size"),
            # num_steps per draw is recorded as int32.
            num_steps=native_count(num_steps, "num_steps", minimum=1, maximum=MAX_INT32),
            random_steps=bool(random_steps),
            adapt_step_size=bool(adapt_step_size),
            target_accept=probability(target_accept, "target_accept"),
            seed=random_seed() if seed is None else seed_value(seed),
        )

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)
