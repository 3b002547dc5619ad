"""Each private torch API rlkit uses: its probe works on this torch, and its fallback is the
safe answer when the probe fails."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlkit.backends import torch_private
from rlkit.utils.optim import FlatAdam, optimizer_step


def test_hook_probe_works_and_sees_hooks() -> None:
    assert torch_private.hook_inspection_works()
    layer = nn.Sequential(nn.Linear(2, 2))
    assert not torch_private.hooks_present(layer)
    handle = layer[0].register_forward_hook(lambda *a: None)
    assert torch_private.hooks_present(layer)
    assert not torch_private.own_hooks_present(layer)  # the hook is on a submodule
    handle.remove()
    handle = torch.nn.modules.module.register_module_forward_pre_hook(lambda *a: None)
    try:
        assert torch_private.hooks_present(layer)
        assert torch_private.own_hooks_present(layer)
    finally:
        handle.remove()
    assert not torch_private.hooks_present(layer)


def test_hook_fallback_says_hooked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch_private, "hook_inspection_works", lambda: False)
    assert torch_private.hooks_present(nn.Linear(1, 1))
    assert torch_private.own_hooks_present(nn.Linear(1, 1))


def test_hook_probe_fails_when_the_tables_are_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    torch_private.hook_inspection_works.cache_clear()
    monkeypatch.setattr(torch_private, "_MODULE_HOOK_TABLES", ("_no_such_table",))
    try:
        assert not torch_private.hook_inspection_works()
    finally:
        torch_private.hook_inspection_works.cache_clear()


def test_optimizer_hook_probe_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    assert torch_private.optimizer_hook_inspection_works()
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    assert not torch_private.optimizer_hooks_present(opt)
    handle = opt.register_step_post_hook(lambda *a: None)
    assert torch_private.optimizer_hooks_present(opt)
    handle.remove()
    monkeypatch.setattr(torch_private, "optimizer_hook_inspection_works", lambda: False)
    assert torch_private.optimizer_hooks_present(opt)


def test_fused_adam_probe_and_direct_step_equal_the_public_step() -> None:
    assert torch_private.fused_adam_works()
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(50, generator=gen)
    a, b = nn.Parameter(start.clone()), nn.Parameter(start.clone())
    direct = FlatAdam([a], lr=0.01, eps=1e-5)
    public = torch.optim.Adam([b], lr=0.01, eps=1e-5, fused=True)
    for _ in range(4):
        grad = torch.randn(50, generator=gen)
        a.grad, b.grad = grad.clone(), grad.clone()
        assert torch_private.fused_adam_step(direct)
        public.step()
    assert torch.equal(a.detach(), b.detach())
    public.load_state_dict(direct.state_dict())  # one state layout


def test_fused_adam_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cases the direct call does not cover, and a failed probe, take the public step."""
    param = nn.Parameter(torch.zeros(3))
    param.grad = torch.ones(3)
    plain = FlatAdam([param], lr=0.1, fused=False)
    assert not torch_private.fused_adam_step(plain)
    decayed = torch.optim.Adam([param], lr=0.1, weight_decay=0.1, fused=True)
    assert not torch_private.fused_adam_step(decayed)
    monkeypatch.setattr(torch_private, "fused_adam_works", lambda: False)
    fused = FlatAdam([param], lr=0.1)
    assert not torch_private.fused_adam_step(fused)
    optimizer_step(fused)  # the public step still runs
    assert torch.all(param.detach() < 0)


def test_fused_adam_probe_fails_without_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    torch_private.fused_adam_works.cache_clear()
    monkeypatch.delattr(torch, "_fused_adam_")
    try:
        assert not torch_private.fused_adam_works()
    finally:
        torch_private.fused_adam_works.cache_clear()


def test_optimizer_step_honours_step_hooks() -> None:
    """A registered step hook is never skipped by the direct fused call."""
    param = nn.Parameter(torch.zeros(2))
    param.grad = torch.ones(2)
    opt = FlatAdam([param], lr=0.1)
    calls: list[int] = []
    opt.register_step_pre_hook(lambda *a: calls.append(1))
    optimizer_step(opt)
    assert calls == [1]


def test_relu_backward_probe_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = torch.Generator().manual_seed(1)
    grad = torch.randn(6, 4, generator=gen)
    out = torch.relu(torch.randn(6, 4, generator=gen))
    out[1, 1] = 0.0
    expected = grad * (out > 0)
    assert torch_private.threshold_backward_works()
    assert torch.equal(torch_private.relu_backward(grad, out), expected)
    monkeypatch.setattr(torch_private, "threshold_backward_works", lambda: False)
    assert torch.equal(torch_private.relu_backward(grad, out), expected)


def test_relu_backward_probe_fails_without_the_op(monkeypatch: pytest.MonkeyPatch) -> None:
    torch_private.threshold_backward_works.cache_clear()
    monkeypatch.setattr(torch.ops.aten, "threshold_backward", None, raising=False)
    try:
        assert not torch_private.threshold_backward_works()
    finally:
        torch_private.threshold_backward_works.cache_clear()


def test_size_check_probe_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    assert torch_private.size_check_works()
    torch_private.assume_equal_sizes(3, 3, "fine")
    with pytest.raises(ValueError, match="sizes differ"):
        torch_private.assume_equal_sizes(3, 4, "sizes differ")
    monkeypatch.setattr(torch_private, "size_check_works", lambda: False)
    torch_private.assume_equal_sizes(3, 3, "fine")
    with pytest.raises(ValueError, match="sizes differ"):
        torch_private.assume_equal_sizes(3, 4, "sizes differ")


def test_size_check_probe_fails_without_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    torch_private.size_check_works.cache_clear()
    monkeypatch.setattr(torch, "_check", None, raising=False)
    try:
        assert not torch_private.size_check_works()
    finally:
        torch_private.size_check_works.cache_clear()


PROBES = (
    "hook_inspection_works",
    "optimizer_hook_inspection_works",
    "fused_adam_works",
    "threshold_backward_works",
    "size_check_works",
)


@pytest.mark.parametrize("name", PROBES)
def test_probes_draw_nothing_from_the_global_rng(name: str) -> None:
    """A probe runs lazily, mid-training: drawing from torch's global generator there would
    make the first seeded run of a process differ from every later one."""
    probe = getattr(torch_private, name)
    probe.cache_clear()
    try:
        before = torch.get_rng_state()
        probe()
        assert torch.equal(torch.get_rng_state(), before)
    finally:
        probe.cache_clear()


def test_first_fast_run_of_a_process_equals_the_next() -> None:
    from rlkit.agents import PPO
    from rlkit.envs import make_vec_env

    def run() -> torch.Tensor:
        env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
        agent = PPO(env, seed=0, num_steps=32, batch_size=32, num_epochs=2, device="cpu")
        return agent.train(128, progress_bar=False).flat_params.detach().clone()

    for name in PROBES:
        getattr(torch_private, name).cache_clear()
    torch.testing.assert_close(run(), run(), rtol=0, atol=0)
