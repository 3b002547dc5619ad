"""oneDNN-backed linear layers and fused MLPs: same values and gradients as the plain kernels,
fallbacks where the fast path does not apply, standard operators in exports."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rlkit.policies import onednn
from rlkit.policies.ensemble import DenseStack, EnsembleMLP

pytestmark = pytest.mark.skipif(not onednn.available(), reason="no oneDNN linear kernel")

B = 256  # 256 x 256 x 256 products: above onednn.MIN_MACS


def _reference_stack(stack: DenseStack, x: torch.Tensor) -> torch.Tensor:
    layers = list(stack.layers)
    for i, layer in enumerate(layers):
        x = F.linear(x, layer.weight, layer.bias)
        if i < len(layers) - 1:
            x = torch.relu(x)
    return x


def _reference_ensemble(
    ens: EnsembleMLP, x: torch.Tensor, members: slice = slice(None), detach: bool = False
) -> torch.Tensor:
    layers = list(ens.layers)
    for i, layer in enumerate(layers):
        w, b = layer.weight[members], layer.bias[members]
        if detach:
            w, b = w.detach(), b.detach()
        x = torch.baddbmm(b, x.expand(w.shape[0], *x.shape) if x.dim() == 2 else x, w)
        if i < len(layers) - 1:
            x = torch.relu(x)
    return x


def _grads(module: torch.nn.Module, out: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
    module.zero_grad()
    x.grad = None
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    grads = [p.grad.clone() if p.grad is not None else torch.zeros(0) for p in module.parameters()]
    return [*grads, x.grad.clone() if x.grad is not None else torch.zeros(0)]


def test_linear_matches_f_linear_with_gradients() -> None:
    torch.manual_seed(0)
    x = torch.randn(B, 256, requires_grad=True)
    w = torch.randn(128, 256, requires_grad=True)
    b = torch.randn(128, requires_grad=True)
    for relu in (False, True):
        fast = onednn.linear(x, w, b, relu=relu)
        ref = F.linear(x, w, b)
        ref = torch.relu(ref) if relu else ref
        torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)
        got = torch.autograd.grad(fast.square().sum(), (x, w, b))
        want = torch.autograd.grad(ref.square().sum(), (x, w, b))
        for g1, g2 in zip(got, want, strict=True):
            torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("batch", [B, 4])  # 4: below MIN_MACS, the plain path
def test_dense_stack_fused_matches_reference(batch: int) -> None:
    torch.manual_seed(0)
    stack = DenseStack(256, [256, 256], 3)
    x = torch.randn(batch, 256, requires_grad=True)
    out = stack(x)
    ref = _reference_stack(stack, x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    for g1, g2 in zip(_grads(stack, out, x), _grads(stack, ref, x), strict=True):
        torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shared", [True, False])
def test_ensemble_fused_matches_reference(shared: bool) -> None:
    torch.manual_seed(0)
    ens = EnsembleMLP(3, 256, [256, 256], 1)
    x = torch.randn(B, 256) if shared else torch.randn(3, B, 256)
    x.requires_grad_(True)
    out = ens(x)
    assert out.shape == (3, B, 1)
    ref = _reference_ensemble(ens, x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    for g1, g2 in zip(_grads(ens, out, x), _grads(ens, ref, x), strict=True):
        torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-4)


def test_ensemble_members_and_detached_parameters() -> None:
    torch.manual_seed(0)
    ens = EnsembleMLP(2, 260, [256, 256], 1)
    x = torch.randn(B, 260, requires_grad=True)
    out = ens(x, detach_params=True, members=slice(0, 1))
    assert out.shape == (1, B, 1)
    ref = _reference_ensemble(ens, x, slice(0, 1), detach=True)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    (grad_x,) = torch.autograd.grad(out.sum(), x)
    (ref_x,) = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(grad_x, ref_x, rtol=1e-4, atol=1e-4)
    ens(x, detach_params=True).sum().backward()
    assert all(p.grad is None for p in ens.parameters())  # no weight gradients


def test_fast_path_only_where_it_applies() -> None:
    x = torch.randn(B, 256)
    assert onednn.eligible(x, B * 256 * 256)
    assert not onednn.eligible(x, 64 * 64 * 64)  # small products: plain kernels
    assert not onednn.eligible(x.double(), B * 256 * 256)
    stack = DenseStack(256, [256], 2)
    exported = torch.export.export(stack, (x,))  # exports take the standard operators
    assert "mkldnn" not in str(exported.graph) and "linear" in str(exported.graph)
    torch.testing.assert_close(exported.module()(x), stack(x), rtol=1e-4, atol=1e-4)


def test_dqn_hand_written_backward_on_large_layers() -> None:
    torch.manual_seed(0)
    stack = DenseStack(256, [256, 256], 2)
    x = torch.randn(B, 256)
    out, cache = stack.forward_cached(x)
    grad_out = torch.randn_like(out)
    for p in stack.parameters():
        p.grad = torch.zeros_like(p)
    stack.backward_cached(cache, grad_out)
    manual = [p.grad.clone() for p in stack.parameters()]
    stack.zero_grad()
    (_reference_stack(stack, x) * grad_out).sum().backward()
    for got, want in zip(manual, [p.grad for p in stack.parameters()], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
