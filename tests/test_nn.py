"""Network helpers: the Tanh activation (plain ``nn.Tanh``) and activation lookup."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlkit.utils.nn import Tanh, activation_class


@pytest.mark.parametrize("shape", [(8, 64), (256, 64), (3, 40, 40)])
def test_tanh_matches_torch_values_and_gradients(shape: tuple[int, ...]) -> None:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * 3
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = Tanh()(x1), torch.tanh(x2)
    torch.testing.assert_close(y1, y2, rtol=0, atol=1e-6)
    weights = torch.randn(*shape)
    (y1 * weights).sum().backward()
    (y2 * weights).sum().backward()
    assert x1.grad is not None and x2.grad is not None
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)


def test_tanh_exports_to_the_standard_operator() -> None:
    model = nn.Sequential(nn.Linear(64, 64), Tanh())
    exported = torch.export.export(model, (torch.randn(64, 64),))
    targets = {str(node.target) for node in exported.graph.nodes}
    assert "aten.tanh.default" in targets
    assert not any("numpy" in t.lower() for t in targets)


def test_activation_lookup() -> None:
    assert activation_class("tanh") is Tanh
    assert activation_class("ReLU") is nn.ReLU
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        activation_class("swish")
