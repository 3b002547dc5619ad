"""Forward and backward passes of ReLU MLPs written out by hand, for CPU updates without autograd.

Why: the off-policy updates of DQN, SAC and friends on small networks spend as much time in
per-operation overhead (autograd nodes, views, dispatch) as in their matrix products. An
:class:`MLPKernel` binds to an MLP's parameter tensors (and their ``.grad`` buffers) once,
keeps every per-layer view it needs, and picks a kernel per product by size:

* large products (at least :data:`~rlkit.policies.onednn.MIN_MACS` multiply-adds) run on
  oneDNN's GEMM with bias and ReLU fused (:mod:`rlkit.policies.onednn`) when it is available;
* small forward products use ``torch.addmm``;
* small backward products use ``torch.mm`` writing into the ``.grad`` views, or NumPy where
  the output is narrow (a first layer's ``[256, 3]`` weight gradient: ~21 us against ~64 us)
  and the product small enough that OpenBLAS stays on one thread.

``layout`` is ``"linear"`` (one member; weights ``[out, in]``, biases ``[out]``, as in
``nn.Linear``) or ``"ensemble"`` (``E`` members; weights ``[E, in, out]``, biases
``[E, 1, out]``, as in :class:`~rlkit.policies.ensemble.EnsembleLinear`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rlkit.policies import onednn

#: largest product (multiply-adds) given to NumPy: OpenBLAS runs smaller matrix-matrix
#: products on one thread (matrix-vector ones it threads from ~9k: those stay in torch).
NUMPY_MAX_MACS = 4 * 65536 - 1

#: what :meth:`MLPKernel.forward` returns besides the output: each member's layer inputs.
Activations = list[list[Tensor]]


class MLPKernel:
    """A ReLU MLP (hidden layers ReLU, output layer linear) run without autograd.

    ``params`` is ``[w0, b0, w1, b1, ...]``; ``grads`` (same order, entries may be None) are
    where :meth:`backward` writes parameter gradients: by default each parameter's ``.grad``.
    The kernel keeps views of these tensors, so it stays valid while they are updated in
    place (optimizer steps, ``load_state_dict``) and must be rebuilt if they are replaced
    (``.to()``): see :meth:`matches`.
    """

    def __init__(
        self,
        layout: str,
        params: Sequence[Tensor],
        grads: Sequence[Tensor | None] | None = None,
    ) -> None:
        if layout not in ("linear", "ensemble"):
            raise ValueError(f"MLPKernel: layout must be 'linear' or 'ensemble', got {layout!r}")
        if len(params) < 2 or len(params) % 2:
            raise ValueError("MLPKernel: params must be [w0, b0, w1, b1, ...]")
        self.layout = layout
        self.ensemble = layout == "ensemble"
        self.params = list(params)
        if grads is None:
            grads = [p.grad for p in params]
        self.grads = list(grads)
        weights, biases = self.params[0::2], self.params[1::2]
        self.depth = len(weights)
        self.members = int(weights[0].shape[0]) if self.ensemble else 1
        self._onednn = onednn.available() and weights[0].device.type == "cpu"
        members = range(self.members)
        with torch.no_grad():  # plain views, outside autograd
            # forward: h @ w_t.T + b with w_t [out, in]
            self._w_t = [[w[e].t() if self.ensemble else w for w in weights] for e in members]
            self._b = [[b[e, 0] if self.ensemble else b for b in biases] for e in members]
        # per layer, per member: the gradient views backward writes, made on first use
        self._grad_views: list[list[Tensor] | None] = [None] * (2 * self.depth)
        self._key_cache: tuple[int, ...] | None = None  # built on first use (cached kernels)
        self._first, self._last = params[0], params[-1]

    def _member_grads(self, index: int) -> list[Tensor] | None:
        """Per member: the view of ``grads[index]`` it writes (weights in ``[in, out]``
        orientation for the ensemble, ``[out, in]`` for linear; biases ``[out]``)."""
        views = self._grad_views[index]
        if views is None:
            grad = self.grads[index]
            if grad is None:
                return None
            if not self.ensemble:
                views = [grad]
            elif index % 2:
                views = [grad[e, 0] for e in range(self.members)]
            else:
                views = [grad[e] for e in range(self.members)]
            self._grad_views[index] = views
        return views

    @property
    def _key(self) -> tuple[int, ...]:
        if self._key_cache is None:
            self._key_cache = self._pointers(self.params, self.grads)
        return self._key_cache

    @staticmethod
    def _pointers(
        params: Sequence[Tensor], grads: Sequence[Tensor | None] | None
    ) -> tuple[int, ...]:
        out = [p.data_ptr() for p in params]
        if grads is not None:
            out += [0 if g is None else g.data_ptr() for g in grads]
        return tuple(out)

    def still_valid(self) -> bool:
        """A cheap :meth:`matches` for kernels built on a module's own parameters: their
        memory moves all at once (``.to()``, flattening into an optimizer's buffer), so the
        first and last parameter and their gradients tell."""
        first, last = self._first, self._last
        key = self._key
        n = len(self.params)
        first_grad, last_grad = first.grad, last.grad
        return (
            first.data_ptr() == key[0]
            and last.data_ptr() == key[n - 1]
            and (0 if first_grad is None else first_grad.data_ptr()) == key[n]
            and (0 if last_grad is None else last_grad.data_ptr()) == key[-1]
        )

    def matches(
        self, params: Sequence[Tensor], grads: Sequence[Tensor | None] | None = None
    ) -> bool:
        """Whether this kernel still views ``params`` (and their ``.grad``, by default)."""
        if grads is None:
            grads = [p.grad for p in params]
        return self._key == self._pointers(params, grads)

    # ----------------------------------------------------------------- forward
    def forward(self, x: Tensor, keep: bool = True) -> tuple[Tensor, Activations]:
        """``x`` ``[B, in]`` (or ``[E, B, in]``, one slice per member) -> ``[B, out]`` (linear)
        or ``[E, B, out]`` (ensemble); with ``keep``, each member's layer inputs for
        :meth:`backward`."""
        shared = not self.ensemble or x.dim() == 2
        last = self.depth - 1
        rows = x.shape[-2]
        activations: Activations = []
        outputs = []
        with torch.no_grad():
            for e in range(self.members):
                h = x if shared else x[e]
                kept = []
                for layer in range(self.depth):
                    if keep:
                        kept.append(h)
                    w_t, bias = self._w_t[e][layer], self._b[e][layer]
                    relu = layer < last
                    if self._onednn and rows * w_t.shape[0] * w_t.shape[1] >= onednn.MIN_MACS:
                        h = onednn._mm(h, w_t, bias, relu)
                    else:
                        h = torch.addmm(bias, h, w_t.t())
                        if relu:
                            h = torch.relu_(h)
                activations.append(kept)
                outputs.append(h)
            out = torch.stack(outputs) if self.ensemble else outputs[0]
        return out, activations

    # ----------------------------------------------------------------- backward
    def backward(
        self,
        activations: Activations,
        grad_out: Tensor,
        write_grads: bool = True,
        need_x: bool = False,
        x_columns: slice | None = None,
        shared: bool = True,
    ) -> Tensor | None:
        """The chain rule by hand for ``sum(grad_out * output)``: writes (overwrites) the
        parameter gradients into the kernel's ``grads`` when ``write_grads``, and returns the
        gradient with respect to the input when ``need_x`` (only its ``x_columns`` if given,
        e.g. the action columns of a critic's input). ``activations`` comes from
        :meth:`forward` (rows may be sliced, alike for every layer). ``shared``: an ensemble's
        members saw one ``[B, in]`` input (input gradients summed) rather than a slice each
        (stacked)."""
        parts = []
        with torch.no_grad():
            for e, kept in enumerate(activations):
                g = grad_out[e] if self.ensemble else grad_out
                for layer in range(self.depth - 1, -1, -1):
                    h_in = kept[layer]
                    if write_grads:
                        self._write_grads(e, layer, g, h_in)
                    if layer == 0:
                        if need_x:
                            parts.append(self._grad_input(e, layer, g, x_columns))
                        break
                    g_in = self._grad_input(e, layer, g, None)
                    # h_in is the ReLU output of the layer below: positive where it passed
                    g = torch.ops.aten.threshold_backward(g_in, h_in, 0.0)
        if not need_x:
            return None
        if self.ensemble and not shared:
            return torch.stack(parts)
        grad_x = parts[0]
        for part in parts[1:]:
            grad_x = grad_x + part
        return grad_x

    def _grad_input(self, e: int, layer: int, g: Tensor, columns: slice | None) -> Tensor:
        """``g @ w_t`` ([B, out] @ [out, in]), restricted to ``columns`` of the input."""
        w_t = self._w_t[e][layer]
        if columns is not None:
            w_t = w_t[:, columns]
        if self._onednn and g.shape[0] * w_t.shape[0] * w_t.shape[1] >= onednn.MIN_MACS:
            return onednn._mm(g, w_t.t())
        return torch.mm(g, w_t)

    def _write_grads(self, e: int, layer: int, g: Tensor, h_in: Tensor) -> None:
        grad_w, grad_b = self._member_grads(2 * layer), self._member_grads(2 * layer + 1)
        if grad_w is not None:
            dst = grad_w[e]
            # linear: dst [out, in] = g^T h; ensemble: dst [in, out] = h^T g
            a, b = (h_in, g) if self.ensemble else (g, h_in)
            macs = a.shape[0] * a.shape[1] * b.shape[1]
            if self._onednn and macs >= onednn.MIN_MACS:
                dst.copy_(onednn._mm(a.t(), b.t()))
            elif (
                2 <= b.shape[1] < 16  # (one column would be a gemv, which OpenBLAS threads)
                and a.shape[1] >= 2
                and macs < NUMPY_MAX_MACS
                and dst.device.type == "cpu"
                and dst.is_contiguous()
            ):
                # a narrow output (e.g. a first layer's [out, 3] gradient): torch.mm is slow
                # there (~64 us against ~21 us); small enough that OpenBLAS stays on one thread
                np.matmul(_numpy(a).T, _numpy(b), out=_numpy(dst))
            else:
                torch.mm(a.t(), b, out=dst)
        if grad_b is not None:
            torch.sum(g, 0, out=grad_b[e])


def _numpy(x: Tensor) -> np.ndarray:
    """A NumPy view of a CPU tensor (detached first if it is part of a graph)."""
    return (x.detach() if x.requires_grad else x).numpy()


class _FusedMLP(torch.autograd.Function):
    """``E`` ReLU MLPs (``E = 1`` for a plain stack) as one autograd node, computed by
    :class:`~rlkit.policies.mlp_kernel.MLPKernel` (``layout`` and ``params`` as there): the
    forward keeps every layer's input, the backward applies the chain rule by hand, a few
    matrix products per layer and member instead of a graph of dozens of small nodes."""

    @staticmethod
    def forward(ctx: Any, layout: str, x: Tensor, *params: Tensor) -> Tensor:
        out, activations = MLPKernel(layout, params, [None] * len(params)).forward(x)
        ctx.layout, ctx.shared = layout, layout != "ensemble" or x.dim() == 2
        ctx.activations = activations
        ctx.save_for_backward(*params)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        params = ctx.saved_tensors
        need = ctx.needs_input_grad
        grads: list[Tensor | None] = [
            torch.empty_like(p) if flag else None for p, flag in zip(params, need[2:], strict=True)
        ]
        kernel = MLPKernel(ctx.layout, params, grads)
        grad_x = kernel.backward(
            ctx.activations, grad_out, any(flag for flag in need[2:]), need[1], shared=ctx.shared
        )
        return (None, grad_x, *grads)


def fused_mlp(layout: str, x: Tensor, params: list[Tensor]) -> Tensor | None:
    """Run a ReLU MLP (``layout`` ``"linear"`` or ``"ensemble"``, see :class:`_FusedMLP`) as one
    autograd node with oneDNN products, or return None when the fast path does not apply
    (then the caller runs its layers one by one)."""
    weight = params[0] if len(params) < 3 else params[2]
    if layout == "ensemble":
        macs = x.shape[-2] * weight.shape[-2] * weight.shape[-1]
    else:
        macs = x.shape[0] * weight.shape[0] * weight.shape[1]
    if x.dim() not in (2, 3) or not onednn.eligible(x, macs):
        return None
    if not torch.is_grad_enabled() or not (
        x.requires_grad or any(p.requires_grad for p in params)
    ):  # nothing to differentiate (targets, acting): skip the autograd node
        return MLPKernel(layout, params, [None] * len(params)).forward(x, keep=False)[0]
    out: Tensor = _FusedMLP.apply(layout, x, *params)
    return out
