"""Flat parameter buffer and the fused Adam helper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlkit.utils.optim import adam, flatten_parameters


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
