"""The torch sampler's records: every chain's state and what its last transition did.

One row per chain. The state's tensors are allocated once and updated in place (a CUDA graph
replays reads and writes of the same memory); csrc/core/hmc/state.hpp holds the C++ twins.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["State", "Info"]


@dataclass(frozen=True)
class State:
    """Each chain's position with the log density and its gradient there (blackjax's HMCState)."""

    x: torch.Tensor  # (num_chains, dim)
    log_prob: torch.Tensor  # (num_chains,)
    grad: torch.Tensor  # (num_chains, dim)


@dataclass(frozen=True)
class Info:
    """What each chain's last transition did (blackjax's HMCInfo): fed to the adaptation, recorded."""

    accept_prob: torch.Tensor  # (num_chains,)
    energy_error: torch.Tensor  # (num_chains,) H(end) - H(start); +inf when anything was not finite
    divergent: torch.Tensor  # (num_chains,) bool
    num_steps: torch.Tensor  # (num_chains,) int32 path length
