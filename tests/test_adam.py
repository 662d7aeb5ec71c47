"""pyvi._adam: adam_step and fused_adam_step (the fast-path optimizer updates) against torch.optim.Adam.step."""

from __future__ import annotations

import pytest
import torch

from pyvi._adam import adam_step, fused_adam_step, supports_adam_step, supports_fused_adam_step


def _run(update, lr_schedule: bool, dtype: torch.dtype):
    generator = torch.Generator().manual_seed(0)
    param = torch.nn.Parameter(torch.randn(37, dtype=dtype, generator=generator))
    optimizer = torch.optim.Adam([param], lr=3e-2, betas=(0.8, 0.95), eps=1e-6, foreach=False)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=6) if lr_schedule else None
    for _ in range(6):
        param.grad = torch.randn(37, dtype=dtype, generator=generator) * (1 + param.detach() ** 2)
        update(optimizer)
        if scheduler is not None:
            scheduler.step()
    return param.detach(), optimizer.state[param]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("lr_schedule", [False, True])
def test_adam_step_equals_torch_adam(dtype, lr_schedule):
    """Same update, same state, bit for bit (the same arithmetic as torch's single-tensor Adam)."""
    got, got_state = _run(adam_step, lr_schedule, dtype)
    want, want_state = _run(lambda optimizer: optimizer.step(), lr_schedule, dtype)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    for key in ("step", "exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(got_state[key], want_state[key], rtol=0, atol=0)


def test_adam_step_leaves_parameters_without_gradient_alone():
    first, second = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([first, second], lr=0.1)
    first.grad = torch.ones(2)
    adam_step(optimizer)
    assert torch.equal(second.detach(), torch.ones(2)) and second not in optimizer.state
    assert torch.all(first.detach() < 1)


@pytest.mark.parametrize(
    "options", [{"weight_decay": 0.1}, {"amsgrad": True}, {"maximize": True}, {"lr": torch.tensor(0.1)}]
)
def test_variants_adam_step_does_not_reproduce_are_refused(options):
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.ones(2))], **{"lr": 0.1, **options})
    assert not supports_adam_step(optimizer)
    assert not supports_adam_step(torch.optim.AdamW([torch.nn.Parameter(torch.ones(2))]))
    assert supports_adam_step(torch.optim.Adam([torch.nn.Parameter(torch.ones(2))]))


@pytest.mark.parametrize("layout", ["contiguous", "in-major"])
def test_fused_adam_step_equals_torch_fused_adam(layout):
    """Bit for bit torch's fused Adam, also for a transposed (input-major) weight, which the step
    passes to the kernel transposed instead of letting it copy."""

    def run(update):
        generator = torch.Generator().manual_seed(0)
        weight = torch.randn(6, 9, generator=generator)
        if layout == "in-major":
            weight = weight.t().contiguous().t()
        params = [torch.nn.Parameter(weight), torch.nn.Parameter(torch.randn(5, generator=generator))]
        optimizer = torch.optim.Adam(params, lr=3e-2, betas=(0.8, 0.95), fused=True)
        assert supports_fused_adam_step(optimizer)
        for _ in range(4):
            for param in params:
                grad = torch.randn(param.shape, generator=generator)
                param.grad = grad.t().contiguous().t() if param.dim() == 2 and layout == "in-major" else grad
            update(optimizer)
        return [p.detach() for p in params], [optimizer.state[p] for p in params]

    got, got_states = run(fused_adam_step)
    want, want_states = run(lambda optimizer: optimizer.step())
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for got_state, want_state in zip(got_states, want_states, strict=True):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(got_state[key], want_state[key], rtol=0, atol=0)
    assert got_states[0]["exp_avg"].stride() == got[0].stride()


def test_fused_adam_step_needs_a_fused_adam():
    param = torch.nn.Parameter(torch.ones(2))
    assert not supports_fused_adam_step(torch.optim.Adam([param], fused=False))
    assert not supports_fused_adam_step(torch.optim.Adam([param], weight_decay=0.1, fused=True))
    assert supports_fused_adam_step(torch.optim.Adam([param], fused=True))
