"""One Adam update applied straight to a ``torch.optim.Adam``'s parameters and state, for fit's fast path.

``torch.optim.Adam.step`` spends ~30 us per call in Python bookkeeping (profiler hooks, grouping,
capture checks) around an update that costs ~2 us for a few hundred parameters; at batch 256 a
whole fused flow training step is ~100 us, so the bookkeeping would be a third of it. ``adam_step``
performs the same update, in the same state (``step``, ``exp_avg``, ``exp_avg_sq``) and with the
same arithmetic as torch's single-tensor Adam, with a handful of in-place tensor ops. The
optimizer object stays the source of truth: its ``param_groups`` (and so an LR scheduler) set the
learning rate, and its ``state_dict`` stays valid.

``fused_adam_step`` does the same for ``Adam(fused=True)`` (the VAE's optimizer): one call of
torch's fused kernel, as ``optimizer.step()`` makes, without the ~100 us of bookkeeping around it
and without the kernel's copies of non-contiguous parameters: torch's fused Adam copies a
transposed (input-major) weight, such as the VAE encoder's, to a contiguous buffer and back
(~0.3 ms per step for 784 x 512); the update is elementwise, so passing the four tensors
(parameter, gradient, both moments) transposed together, when they share that layout, is the same
update without the copies.

References:
    D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015
    (arXiv:1412.6980).
"""

from __future__ import annotations

import torch

__all__ = ["adam_step", "supports_adam_step", "fused_adam_", "fused_adam_step", "supports_fused_adam_step"]


def supports_adam_step(optimizer: torch.optim.Optimizer) -> bool:
    """Whether :func:`adam_step` reproduces ``optimizer.step()``: plain Adam (no weight decay,
    AMSGrad, maximize, differentiable or capturable variants, real tensor betas/lr)."""
    if type(optimizer) is not torch.optim.Adam:
        return False
    for group in optimizer.param_groups:
        if group["weight_decay"] != 0 or group["amsgrad"] or group["maximize"] or group["differentiable"]:
            return False
        if group["capturable"] or any(isinstance(group[key], torch.Tensor) for key in ("lr", "betas", "eps")):
            return False
        if any(isinstance(beta, torch.Tensor) for beta in group["betas"]):
            return False
        if any(p.is_complex() or p.is_sparse for p in group["params"]):
            return False
    return True


def _state(optimizer: torch.optim.Adam, param: torch.Tensor, step_device: torch.device) -> dict:
    """``optimizer.state[param]``, created as torch's Adam creates it on a first step: a float32
    scalar ``step`` on ``step_device`` and zero moments shaped (and strided) like the parameter."""
    state = optimizer.state[param]
    if not state:
        state["step"] = torch.zeros((), dtype=torch.float32, device=step_device)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
    return state


@torch.no_grad()
def adam_step(optimizer: torch.optim.Adam) -> None:
    """``optimizer.step()`` for a plain Adam (see :func:`supports_adam_step`), without its overhead.

    Example:
        >>> p = torch.nn.Parameter(torch.ones(3))
        >>> optimizer = torch.optim.Adam([p], lr=0.1)
        >>> p.grad = torch.ones(3)
        >>> adam_step(optimizer)
        >>> p.detach()
        tensor([0.9000, 0.9000, 0.9000])
    """
    # What an LR scheduler's wrapper of optimizer.step records; without it the scheduler warns that
    # it stepped before the optimizer.
    optimizer._opt_called = True
    for group in optimizer.param_groups:
        beta1, beta2 = group["betas"]
        lr, eps = group["lr"], group["eps"]
        for param in group["params"]:
            grad = param.grad
            if grad is None:
                continue
            # torch's layout for a non-fused Adam: a float32 scalar step on the CPU.
            state = _state(optimizer, param, step_device=torch.device("cpu"))
            step_tensor, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
            step = float(step_tensor) + 1.0
            step_tensor.fill_(step)
            # The arithmetic of torch.optim.adam._single_tensor_adam (non-capturable branch).
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            step_size = lr / bias_correction1
            denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)


def supports_fused_adam_step(optimizer: torch.optim.Optimizer) -> bool:
    """Whether :func:`fused_adam_step` reproduces ``optimizer.step()``: a plain Adam (as in
    :func:`supports_adam_step`) with ``fused=True``."""
    return supports_adam_step(optimizer) and all(group["fused"] for group in optimizer.param_groups)


def _same_layout_transposed(tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The tensors transposed when they are all 2-D transposes of contiguous ones with the same
    strides (the elementwise update is the same on the transposed views, which are contiguous)."""
    first = tensors[0]
    if first.dim() != 2 or first.is_contiguous() or not first.t().is_contiguous():
        return tensors
    if any(t.shape != first.shape or t.stride() != first.stride() for t in tensors):
        return tensors
    return tuple(t.t() for t in tensors)


def fused_adam_(group: dict, params, grads, exp_avgs, exp_avg_sqs, steps) -> None:
    """torch's fused Adam kernel (``torch._fused_adam_``) on lists of tensors with the
    hyperparameters of ``group`` (an optimizer's param group): what ``torch.optim.adam._fused_adam``
    does per device and dtype, without grad scaling. The steps are read, not incremented."""
    beta1, beta2 = group["betas"]
    torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=group["lr"],
                       beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                       maximize=False, grad_scale=None, found_inf=None)


@torch.no_grad()
def fused_adam_step(optimizer: torch.optim.Adam) -> None:
    """``optimizer.step()`` for a fused plain Adam (see :func:`supports_fused_adam_step`): the same
    kernel (``torch._fused_adam_``) on the same state, so the same result bit for bit.

    Example:
        >>> p = torch.nn.Parameter(torch.ones(3))
        >>> optimizer = torch.optim.Adam([p], lr=0.1, fused=True)
        >>> p.grad = torch.ones(3)
        >>> fused_adam_step(optimizer)
        >>> p.detach()
        tensor([0.9000, 0.9000, 0.9000])
    """
    optimizer._opt_called = True
    for group in optimizer.param_groups:
        buckets: dict[tuple[torch.device, torch.dtype], tuple[list, list, list, list, list]] = {}
        for param in group["params"]:
            grad = param.grad
            if grad is None:
                continue
            # torch's layout for a fused Adam: a float32 scalar step on the parameter's device.
            state = _state(optimizer, param, step_device=param.device)
            tensors = _same_layout_transposed((param, grad, state["exp_avg"], state["exp_avg_sq"]))
            bucket = buckets.setdefault((param.device, param.dtype), ([], [], [], [], []))
            for items, tensor in zip(bucket, (*tensors, state["step"]), strict=True):
                items.append(tensor)
        for params, grads, exp_avgs, exp_avg_sqs, steps in buckets.values():
            # What torch.optim.adam._fused_adam does per device and dtype (no grad scaling here).
            torch._foreach_add_(steps, 1)
            fused_adam_(group, params, grads, exp_avgs, exp_avg_sqs, steps)
