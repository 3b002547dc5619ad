"""MLP blocks of the off-policy policies: plain MLP heads and batched ensembles of MLPs.

:class:`EnsembleMLP` evaluates twin (or more) critics in one module call: stacking the
members' weights and running each layer as one batched matrix product (``torch.baddbmm``)
evaluates ``E`` critics with the operator count of one. On small CPU networks per-operator
overhead is what costs, and TD3/SAC evaluate their twin critics several times per update.
Large layers run on oneDNN's GEMM (:mod:`rlkit.policies.onednn`) with the ReLU fused in.
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlkit.policies import onednn
from rlkit.policies.mlp_kernel import MLPKernel, fused_mlp
from rlkit.utils.nn import activation_class

#: largest batch the NumPy acting path takes (beyond it torch's kernels win).
NUMPY_MAX_BATCH = 16

#: weight size (in x out) from which OpenBLAS runs a matrix-vector product on all its threads
#: (2304 x GEMM_MULTITHREAD_THRESHOLD): such layers act through torch, which keeps to
#: ``torch.set_num_threads`` (waking OpenBLAS's threads costs more than the product, and
#: would use cores the caller did not give).
OPENBLAS_THREADED_GEMV = 2304 * 4


def numpy_eligible(x: Tensor) -> bool:
    """A small float32 CPU batch with nothing to differentiate, outside tracing/compiling."""
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return False
    return (
        not torch.is_grad_enabled()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 2
        and x.shape[0] <= NUMPY_MAX_BATCH
    )


#: each module's kernel, kept outside the module so copies and pickles of it stay plain.
_KERNELS: weakref.WeakKeyDictionary[nn.Module, MLPKernel] = weakref.WeakKeyDictionary()


class HandWrittenKernel:
    """What :class:`DenseStack` and :class:`EnsembleMLP` offer hand-written updates: their
    parameters in layer order and a cached :class:`~rlkit.policies.mlp_kernel.MLPKernel`."""

    #: the :class:`~rlkit.policies.mlp_kernel.MLPKernel` layout of the module's parameters.
    kernel_layout: ClassVar[str]
    layers: nn.ModuleList
    _relu: bool

    @property
    def supports_manual_backward(self) -> bool:
        """Whether :meth:`kernel` applies (ReLU hidden layers)."""
        return self._relu

    def layer_parameters(self) -> list[Tensor]:
        """``[w0, b0, w1, b1, ...]`` in layer order (stacked over members for ensembles)."""
        params: list[Tensor] = []
        for layer in self.layers:
            weight, bias = layer.weight, layer.bias
            assert isinstance(weight, Tensor) and isinstance(bias, Tensor)
            params += [weight, bias]
        return params

    def kernel(self) -> MLPKernel:
        """The hand-written forward/backward on these parameters and their ``.grad``
        buffers, cached until they move (``.to()``, flattening into an optimizer's buffer).
        ReLU networks only."""
        if not self._relu:
            raise TypeError(f"{type(self).__name__}: hand-written kernels need ReLU activations")
        module: nn.Module = self  # type: ignore[assignment]
        cached = _KERNELS.get(module)
        if cached is None or not cached.still_valid():
            cached = _KERNELS[module] = MLPKernel(self.kernel_layout, self.layer_parameters())
        return cached


class DenseStack(HandWrittenKernel, nn.Module):
    """``Linear -> activation`` per hidden size, then a ``Linear`` to ``out_dim``.

    The same network as an ``nn.Sequential`` of ``nn.Linear`` layers (PyTorch's default
    initialisation, what Stable-Baselines3 and CleanRL use for DQN, DDPG, TD3 and SAC), with a
    forward that calls the linear kernels directly (the per-module call overhead is a noticeable
    share of a small network's update on CPU) and runs large ReLU layers on oneDNN
    (:func:`rlkit.policies.onednn.linear`).
    """

    kernel_layout = "linear"

    def __init__(
        self, in_dim: int, hidden_sizes: Sequence[int], out_dim: int, activation: str = "relu"
    ) -> None:
        super().__init__()
        sizes = [int(in_dim), *(int(s) for s in hidden_sizes), int(out_dim)]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.activation = activation_class(activation)()
        self._relu = activation.lower() == "relu"
        self.in_features = sizes[0]
        self.out_features = sizes[-1]

    def forward(self, x: Tensor) -> Tensor:
        if self._relu and numpy_eligible(x):
            return self._numpy_forward(x)
        if self._relu:  # large products: the whole stack as one oneDNN-backed autograd node
            params: list[Tensor] = []
            for layer in self.layers:
                assert isinstance(layer, nn.Linear)
                params += [layer.weight, layer.bias]
            fused = fused_mlp("linear", x, params)
            if fused is not None:
                return fused
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            assert isinstance(layer, nn.Linear)
            if self._relu:
                x = onednn.linear(x, layer.weight, layer.bias, relu=i < last)
                continue
            x = F.linear(x, layer.weight, layer.bias)
            if i < last:
                x = self.activation(x)
        return x

    def _numpy_forward(self, x: Tensor) -> Tensor:
        return torch.from_numpy(self.numpy_forward(x.numpy()))

    def numpy_forward(self, x: np.ndarray) -> np.ndarray:
        """The forward pass of a ReLU stack in NumPy on views of the weights, for acting-size
        float32 batches (a NumPy call costs ~1 us where a torch call costs several; 8 us
        against 25 us for a 256-256 stack on one observation). No hooks run."""
        if not self._relu:
            raise TypeError("DenseStack.numpy_forward supports ReLU activations only")
        h = x
        params = self._numpy_params()
        last = len(params) - 1
        for i, (weight_t, bias) in enumerate(params):
            if weight_t.size >= OPENBLAS_THREADED_GEMV:
                # torch honours set_num_threads; OpenBLAS would wake its threads for this
                t_in, t_w = torch.from_numpy(h), torch.from_numpy(weight_t)
                h = torch.addmm(torch.from_numpy(bias), t_in, t_w).numpy()
            else:
                h = h @ weight_t
                h += bias
            if i < last:
                np.maximum(h, 0.0, out=h)
        return h

    def _numpy_params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """NumPy views ``(weight.T, bias)`` of every layer, rebuilt when the parameters' memory
        moved (``.to()``, flattening into one buffer, which move every layer); in-place updates
        show through."""
        linears = self.__dict__["_modules"]["layers"].__dict__["_modules"]
        first, last = linears["0"], linears[str(len(linears) - 1)]
        pointers = (first.weight.data_ptr(), last.bias.data_ptr())
        cached = self.__dict__.get("_numpy_cache")
        if cached is None or cached[0] != pointers:
            views = []
            for layer in self.layers:
                assert isinstance(layer, nn.Linear)
                views.append((layer.weight.detach().numpy().T, layer.bias.detach().numpy()))
            cached = (pointers, views)
            self.__dict__["_numpy_cache"] = cached
        return cached[1]

    # ------------------------------------------------------------------ manual gradients
    @torch.no_grad()
    def forward_cached(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The forward pass without an autograd graph, plus each layer's input: what
        :meth:`backward_cached` needs. ReLU stacks only."""
        out, activations = self.kernel().forward(x)
        return out, activations[0]

    @torch.no_grad()
    def backward_cached(self, inputs: list[Tensor], grad_out: Tensor) -> None:
        """Write the gradient of ``sum(grad_out * output)`` with respect to every weight and
        bias into their ``.grad`` (which must exist; overwritten): the chain rule written out
        for a ReLU stack instead of an autograd graph walk. ``inputs`` comes from
        :meth:`forward_cached` on the same weights."""
        if any(p.grad is None for p in self.parameters()):
            raise RuntimeError("DenseStack.backward_cached needs allocated .grad tensors")
        self.kernel().backward([inputs], grad_out)


def mlp_head(
    in_dim: int, hidden_sizes: Sequence[int], out_dim: int, activation: str = "relu"
) -> DenseStack:
    """A :class:`DenseStack` (hidden layers, then a linear output layer)."""
    return DenseStack(in_dim, hidden_sizes, out_dim, activation)


class EnsembleLinear(nn.Module):
    """``E`` independent affine layers: weight ``[E, in, out]``, bias ``[E, 1, out]``.

    Input ``[B, in]`` (shared by every member) or ``[E, B, in]`` (one batch per member); output
    ``[E, B, out]``. Each member is initialised like ``nn.Linear`` (uniform in
    ``+-1/sqrt(in)`` for weight and bias).
    """

    def __init__(self, num_members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        if num_members < 1 or in_features < 1 or out_features < 1:
            raise ValueError(
                "EnsembleLinear: num_members, in_features and out_features must be >= 1, got "
                f"{num_members}, {in_features}, {out_features}"
            )
        self.num_members = int(num_members)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = nn.Parameter(torch.empty(num_members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(
        self,
        x: Tensor,
        detach_params: bool = False,
        members: slice | None = None,
        relu: bool = False,
    ) -> Tensor:
        """``detach_params`` evaluates with the weights cut from autograd: gradients still flow
        to ``x`` (the actor's loss through a critic) but no weight gradient is computed.
        ``members`` evaluates only those members (e.g. ``slice(0, 1)``: TD3's actor loss).
        ``relu`` applies a ReLU to the output (fused into the product on oneDNN)."""
        weight: Tensor = self.weight
        bias: Tensor = self.bias
        if members is not None:
            weight, bias = weight[members], bias[members]
        if detach_params:
            weight, bias = weight.detach(), bias.detach()
        return onednn.ensemble_linear(x, weight, bias, relu)

    def extra_repr(self) -> str:
        return f"members={self.num_members}, in={self.in_features}, out={self.out_features}"


class EnsembleMLP(HandWrittenKernel, nn.Module):
    """``E`` MLPs of the same shape run as one: ``EnsembleLinear -> activation`` per hidden size,
    then an ``EnsembleLinear`` to ``out_features``. ``[B, in]`` -> ``[E, B, out]``."""

    kernel_layout = "ensemble"

    def __init__(
        self,
        num_members: int,
        in_features: int,
        hidden_sizes: Sequence[int],
        out_features: int,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        sizes = [int(in_features), *(int(s) for s in hidden_sizes), int(out_features)]
        self.num_members = int(num_members)
        self.layers = nn.ModuleList(
            EnsembleLinear(num_members, a, b) for a, b in itertools.pairwise(sizes)
        )
        self.activation = activation_class(activation)()
        self._relu = activation.lower() == "relu"

    def forward(
        self, x: Tensor, detach_params: bool = False, members: slice | None = None
    ) -> Tensor:
        """``[B, in]`` -> ``[E, B, out]`` (see :meth:`EnsembleLinear.forward` for the options)."""
        if self._relu:  # large products: all members as one oneDNN-backed autograd node
            params = []
            for layer in self.layers:
                assert isinstance(layer, EnsembleLinear)
                weight: Tensor = layer.weight
                bias: Tensor = layer.bias
                if members is not None:
                    weight, bias = weight[members], bias[members]
                if detach_params:
                    weight, bias = weight.detach(), bias.detach()
                params += [weight, bias]
            fused = fused_mlp("ensemble", x, params)
            if fused is not None:
                return fused
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            assert isinstance(layer, EnsembleLinear)
            if self._relu:
                x = layer.forward(x, detach_params, members, relu=i < last)
                continue
            x = layer.forward(x, detach_params, members)
            if i < last:
                x = self.activation(x)
        return x
