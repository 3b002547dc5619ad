"""The fast backend's ReLU MLP kernel: one autograd node per MLP, equal to the layer-by-layer
autograd path in values and in every gradient, for both layouts and input shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlkit.backends import use
from rlkit.backends.mlp_kernel import fused_mlp, mlp_backward, mlp_forward
from rlkit.policies.ensemble import DenseStack, EnsembleMLP


def _reference(module: nn.Module, x: torch.Tensor, **kw: object) -> torch.Tensor:
    with use("reference"):
        out: torch.Tensor = module(x, **kw)
    return out


@pytest.mark.parametrize("batch", [1, 7, 256])
def test_dense_stack_kernel_matches_autograd(batch: int) -> None:
    torch.manual_seed(0)
    stack = DenseStack(5, [32, 16], 3)
    x = torch.randn(batch, 5)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    with use("fast"):
        y1 = stack(x1)
    grads1 = torch.autograd.grad((y1 * y1).sum(), [x1, *stack.parameters()])
    y2 = _reference(stack, x2)
    grads2 = torch.autograd.grad((y2 * y2).sum(), [x2, *stack.parameters()])
    torch.testing.assert_close(y1, y2)
    for a, b in zip(grads1, grads2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("detach_params", [False, True])
def test_ensemble_kernel_matches_autograd(shared: bool, detach_params: bool) -> None:
    """Shared [B, in] input (the critics on features) or one batch per member; with
    detached weights only the input gradient flows (an actor's loss through the critics)."""
    torch.manual_seed(1)
    ens = EnsembleMLP(3, 6, [16, 8], 1)
    x = torch.randn(20, 6) if shared else torch.randn(3, 20, 6)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    params = [] if detach_params else list(ens.parameters())
    with use("fast"):
        y1 = ens(x1, detach_params=detach_params)
    grads1 = torch.autograd.grad(y1.sin().sum(), [x1, *params])
    y2 = _reference(ens, x2, detach_params=detach_params)
    grads2 = torch.autograd.grad(y2.sin().sum(), [x2, *params])
    torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads1, grads2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_members_subset_matches_autograd() -> None:
    torch.manual_seed(2)
    ens = EnsembleMLP(2, 4, [8], 1)
    x = torch.randn(10, 4, requires_grad=True)
    with use("fast"):
        fast = ens(x, members=slice(0, 1))
    ref = _reference(ens, x, members=slice(0, 1))
    assert fast.shape == (1, 10, 1)
    torch.testing.assert_close(fast, ref)


def test_forward_and_backward_functions_directly() -> None:
    """mlp_forward keeps the layer inputs; mlp_backward returns the asked-for gradients."""
    torch.manual_seed(3)
    w0, b0, w1, b1 = torch.randn(8, 4), torch.randn(8), torch.randn(2, 8), torch.randn(2)
    x = torch.randn(5, 4)
    out, inputs = mlp_forward("linear", x, [w0, b0, w1, b1], keep=True)
    assert len(inputs) == 2 and torch.equal(inputs[0], x)
    grad_out = torch.randn(5, 2)
    grad_x, grads = mlp_backward(
        "linear", inputs, [w0, b0, w1, b1], grad_out, [False, True, True, False], True
    )
    leaves = [t.clone().requires_grad_() for t in (x, w0, b0, w1, b1)]
    ref = torch.relu(leaves[0] @ leaves[1].t() + leaves[2]) @ leaves[3].t() + leaves[4]
    torch.testing.assert_close(out, ref.detach())
    expected = torch.autograd.grad((ref * grad_out).sum(), leaves)
    assert grads[0] is None and grads[3] is None
    torch.testing.assert_close(grad_x, expected[0])
    torch.testing.assert_close(grads[1], expected[2])
    torch.testing.assert_close(grads[2], expected[3])


def test_no_graph_without_gradients_and_layout_errors() -> None:
    params = [torch.randn(3, 2), torch.randn(3)]
    out = fused_mlp("linear", torch.randn(4, 2), params)
    assert out.grad_fn is None
    with pytest.raises(ValueError, match="layout must be one of"):
        fused_mlp("conv", torch.randn(4, 2), params)


def test_kernel_steps_aside_for_hooks_and_tanh() -> None:
    """A forward hook on a layer must run: the stack then takes its layer-by-layer path."""
    calls: list[int] = []
    stack = DenseStack(3, [4], 2)
    stack.layers[0].register_forward_hook(lambda *a: calls.append(1))
    with use("fast"):
        stack(torch.randn(2, 3).requires_grad_())
    assert calls == [1]
    tanh = DenseStack(3, [4], 2, activation="tanh")
    with use("fast"):
        y = tanh(torch.randn(2, 3).requires_grad_())
    assert y.grad_fn is not None and "MLPNode" not in type(y.grad_fn).__name__
