"""Flat parameter buffer and the fused Adam helper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlkit.utils.optim import FlatAdam, adam, clip_grad_norm_, flatten_parameters


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))


def test_flatten_keeps_values_and_makes_views() -> None:
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    flat = flatten_parameters(net)
    assert flat.numel() == sum(p.numel() for p in before)
    for p, b in zip(net.parameters(), before, strict=True):
        assert torch.equal(p, b)
    with torch.no_grad():
        flat.zero_()
    assert all(float(p.detach().abs().sum()) == 0.0 for p in net.parameters())


def test_gradients_accumulate_into_flat_grad() -> None:
    reference, net = _net(), _net()
    flat = flatten_parameters(net)
    x = torch.randn(7, 3)
    reference(x).pow(2).sum().backward()
    assert flat.grad is not None
    flat.grad.zero_()
    net(x).pow(2).sum().backward()
    expected = torch.cat([p.grad.reshape(-1) for p in reference.parameters()])
    torch.testing.assert_close(flat.grad, expected)


def test_flat_adam_matches_per_parameter_adam() -> None:
    reference, net = _net(), _net()
    flat = flatten_parameters(net)
    opt_ref = torch.optim.Adam(reference.parameters(), lr=1e-2)
    opt = adam([flat], lr=1e-2)
    for step in range(5):
        x = torch.randn(11, 3, generator=torch.Generator().manual_seed(step))
        opt_ref.zero_grad()
        reference(x).pow(2).mean().backward()
        opt_ref.step()
        assert flat.grad is not None
        flat.grad.zero_()
        net(x).pow(2).mean().backward()
        opt.step()
    for a, b in zip(reference.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_flatten_rejects_module_without_parameters() -> None:
    with pytest.raises(ValueError, match="no trainable parameters"):
        flatten_parameters(nn.Tanh())


def test_flat_adam_matches_torch_adam_and_round_trips() -> None:
    torch.manual_seed(1)
    a = nn.Parameter(torch.randn(50))
    b = nn.Parameter(a.detach().clone())
    ref = torch.optim.Adam([a], lr=3e-3, eps=1e-5)
    opt = FlatAdam([b], lr=3e-3, eps=1e-5)
    for _ in range(7):
        g = torch.randn(50)
        a.grad, b.grad = g.clone(), g.clone()
        ref.step()
        opt.step()
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    state = opt.state_dict()
    fresh = FlatAdam([nn.Parameter(b.detach().clone())], lr=1.0)
    fresh.load_state_dict(state)
    assert fresh.param_groups[0]["lr"] == 3e-3
    torch.testing.assert_close(
        fresh.state_dict()["state"][0]["exp_avg"], state["state"][0]["exp_avg"]
    )


def test_flat_adam_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="lr"):
        FlatAdam([nn.Parameter(torch.zeros(2))], lr=-1.0)


def test_clip_grad_norm_matches_torch() -> None:
    for scale in (0.01, 10.0):  # below and above the threshold
        grad = torch.randn(30) * scale
        p = nn.Parameter(torch.zeros(30))
        p.grad = grad.clone()
        expected_norm = nn.utils.clip_grad_norm_([p], 0.5)
        mine = grad.clone()
        norm = clip_grad_norm_(mine, 0.5)
        torch.testing.assert_close(norm, expected_norm)
        torch.testing.assert_close(mine, p.grad)
