"""MLPKernel: hand-written forward/backward of ReLU MLPs against autograd, on both the large
(oneDNN) and small (addmm / NumPy) product paths, and its caching on modules."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from rlkit.policies.ensemble import DenseStack, EnsembleMLP
from rlkit.policies.mlp_kernel import MLPKernel
from rlkit.prototypes.off_policy import FlatOptimizer

#: (rows, in, hidden): the first takes oneDNN for the hidden product, the second only small ones
SHAPES = [(256, 4, 256), (16, 5, 8)]


def _reference(module: DenseStack | EnsembleMLP, x: Tensor) -> Tensor:
    """The same network written with plain autograd operators."""
    if isinstance(module, DenseStack):
        layers = list(module.layers)
        for i, layer in enumerate(layers):
            x = x @ layer.weight.t() + layer.bias
            if i < len(layers) - 1:
                x = torch.relu(x)
        return x
    h = x if x.dim() == 3 else x.expand(module.num_members, *x.shape)
    layers = list(module.layers)
    for i, layer in enumerate(layers):
        h = torch.baddbmm(layer.bias, h, layer.weight)
        if i < len(layers) - 1:
            h = torch.relu(h)
    return h


def _grads(module: torch.nn.Module) -> list[Tensor]:
    return [p.grad.clone() for p in module.parameters()]  # type: ignore[union-attr]


@pytest.mark.parametrize(("rows", "fan_in", "hidden"), SHAPES)
def test_linear_layout_matches_autograd(rows: int, fan_in: int, hidden: int) -> None:
    torch.manual_seed(0)
    stack = DenseStack(fan_in, [hidden, hidden], 3)
    x = torch.randn(rows, fan_in, requires_grad=True)
    grad_out = torch.randn(rows, 3)
    for p in stack.parameters():
        p.grad = torch.full_like(p, 7.0)  # backward overwrites, it does not accumulate
    kernel = MLPKernel("linear", list(stack.layer_parameters()))
    out, cache = kernel.forward(x.detach())
    grad_x = kernel.backward(cache, grad_out, need_x=True)
    manual = _grads(stack)
    stack.zero_grad()
    ref = _reference(stack, x)
    torch.testing.assert_close(out, ref.detach(), rtol=1e-5, atol=1e-5)
    (ref * grad_out).sum().backward()
    for got, want in zip(manual, _grads(stack), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert grad_x is not None and x.grad is not None
    torch.testing.assert_close(grad_x, x.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("rows", "fan_in", "hidden"), SHAPES)
def test_ensemble_layout_matches_autograd(rows: int, fan_in: int, hidden: int) -> None:
    torch.manual_seed(1)
    critics = EnsembleMLP(2, fan_in, [hidden, hidden], 1)
    x = torch.randn(rows, fan_in, requires_grad=True)
    grad_out = torch.randn(2, rows, 1)
    for p in critics.parameters():
        p.grad = torch.zeros_like(p)
    kernel = critics.kernel()
    out, cache = kernel.forward(x.detach())
    columns = slice(fan_in - 2, None)  # e.g. the action columns of a critic's input
    grad_x = kernel.backward(cache, grad_out, need_x=True, x_columns=columns)
    manual = _grads(critics)
    critics.zero_grad()
    ref = _reference(critics, x)
    torch.testing.assert_close(out, ref.detach(), rtol=1e-5, atol=1e-5)
    (ref * grad_out).sum().backward()
    for got, want in zip(manual, _grads(critics), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert grad_x is not None and x.grad is not None
    torch.testing.assert_close(grad_x, x.grad[:, columns], rtol=1e-4, atol=1e-4)


def test_ensemble_with_one_input_per_member_stacks_input_gradients() -> None:
    torch.manual_seed(2)
    critics = EnsembleMLP(3, 6, [32], 2)
    x = torch.randn(3, 10, 6, requires_grad=True)
    grad_out = torch.randn(3, 10, 2)
    kernel = MLPKernel("ensemble", critics.layer_parameters(), [None] * 4)
    _, cache = kernel.forward(x.detach())
    grad_x = kernel.backward(cache, grad_out, write_grads=False, need_x=True, shared=False)
    assert all(p.grad is None for p in critics.parameters())  # nothing written
    (_reference(critics, x) * grad_out).sum().backward()
    assert grad_x is not None and grad_x.shape == (3, 10, 6)
    torch.testing.assert_close(grad_x, x.grad, rtol=1e-4, atol=1e-4)


def test_sliced_rows_backpropagate_only_those_rows() -> None:
    """SAC runs the actor on obs and next_obs stacked and backpropagates the obs half."""
    torch.manual_seed(3)
    stack = DenseStack(3, [64, 64], 2)
    for p in stack.parameters():
        p.grad = torch.zeros_like(p)
    x = torch.randn(40, 3)
    grad_out = torch.randn(20, 2)
    _, cache = stack.kernel().forward(x)
    stack.kernel().backward([[h[:20] for h in cache[0]]], grad_out)
    manual = _grads(stack)
    stack.zero_grad()
    (_reference(stack, x[:20]) * grad_out).sum().backward()
    for got, want in zip(manual, _grads(stack), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_module_kernels_are_cached_until_parameters_move() -> None:
    stack = DenseStack(4, [16], 2)
    first = stack.kernel()
    assert stack.kernel() is first
    optimizer = FlatOptimizer([stack], lr=1e-3)  # moves parameters and grads into flat buffers
    second = stack.kernel()
    assert second is not first
    assert second.matches(stack.layer_parameters())
    assert optimizer.flat.grad is not None
    assert second.grads[0] is not None
    assert second.grads[0].data_ptr() == optimizer.flat.grad.data_ptr()
    with torch.no_grad():  # in-place updates keep the kernel
        for p in stack.parameters():
            p.add_(1.0)
    assert stack.kernel() is second
    out, _ = second.forward(torch.ones(1, 4))
    torch.testing.assert_close(out, _reference(stack, torch.ones(1, 4)).detach())


def test_bad_arguments_are_named() -> None:
    stack = DenseStack(4, [16], 2)
    with pytest.raises(ValueError, match="layout"):
        MLPKernel("conv", stack.layer_parameters())
    with pytest.raises(ValueError, match=r"\[w0, b0"):
        MLPKernel("linear", stack.layer_parameters()[:3])
    with pytest.raises(TypeError, match="ReLU"):
        DenseStack(4, [16], 2, activation="tanh").kernel()
