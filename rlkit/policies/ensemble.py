"""MLP blocks of the off-policy policies: plain MLP heads and batched ensembles of MLPs.

:class:`EnsembleMLP` evaluates twin (or more) critics in one module call: stacking the
members' weights and running each layer as one batched matrix product (``torch.baddbmm``)
evaluates ``E`` critics with the operator count of one. On small CPU networks per-operator
overhead is what costs, and TD3/SAC evaluate their twin critics several times per update.

On the ``fast`` backend (:mod:`rlkit.backends`) ReLU stacks run as one autograd node with a
hand-written backward (:mod:`rlkit.backends.mlp_kernel`), and acting-size batches without a
gradient run in NumPy; on ``reference``, and while tracing or compiling, they are plain
``F.linear`` / ``baddbmm`` layers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from rlkit.backends import kernels_active, plain_cpu_float32
from rlkit.backends.mlp_kernel import fused_mlp
from rlkit.backends.setting import Backend
from rlkit.backends.torch_private import hooks_present
from rlkit.utils.nn import activation_class

#: largest batch the NumPy acting path takes (beyond it torch's kernels win).
NUMPY_MAX_BATCH = 16

#: weight size (in x out) from which OpenBLAS runs a matrix-vector product on all its threads
#: (2304 x GEMM_MULTITHREAD_THRESHOLD): such layers act through torch, which keeps to
#: ``torch.set_num_threads`` (waking OpenBLAS's threads costs more than the product, and
#: would use cores the caller did not give).
OPENBLAS_THREADED_GEMV = 2304 * 4


def numpy_eligible(x: Tensor) -> bool:
    """A small float32 CPU batch with nothing to differentiate, on the ``fast`` backend and
    outside tracing/compiling."""
    if not kernels_active():
        return False
    return (
        not torch.is_grad_enabled()
        and x.is_cpu
        and x.dtype == torch.float32
        and x.dim() == 2
        and x.shape[0] <= NUMPY_MAX_BATCH
    )


def kernel_applies(module: nn.Module, x: Tensor, relu: bool) -> bool:
    """Whether a ReLU stack may run through :func:`~rlkit.backends.mlp_kernel.fused_mlp` now:
    the ``fast`` backend is active, the input and weights are float32 on the CPU, and no hook
    or parametrization would be skipped."""
    if not (relu and kernels_active()):
        return False
    weight: Tensor
    if isinstance(module, HandWrittenKernel):
        if not module.plain_layers:
            return False
        weight = module.layers[0].weight  # type: ignore[assignment]
    else:
        weight = next(module.parameters())
    return (
        x.dtype == torch.float32
        and x.is_cpu
        and weight.dtype == torch.float32
        and weight.is_cpu
        and not hooks_present(module)
    )


class HandWrittenKernel:
    """What :class:`DenseStack` and :class:`EnsembleMLP` offer the ``fast`` backend: their
    parameters in layer order and whether the hand-written kernel covers them."""

    layers: nn.ModuleList
    _relu: bool

    @property
    def plain_layers(self) -> bool:
        """Whether every layer is a plain affine layer whose ``weight`` and ``bias`` are its
        parameters (not, e.g., a :class:`~rlkit.utils.noisy.NoisyLinear` swapped in)."""
        return all(isinstance(layer, (nn.Linear, EnsembleLinear)) for layer in self.layers)

    @property
    def supports_manual_backward(self) -> bool:
        """Whether the hand-written kernel covers this stack (plain ReLU layers)."""
        return self._relu and self.plain_layers

    def kernel_status(self, backend: Backend) -> tuple[str, str | None]:
        """What this stack runs on ``backend`` and, where the kernel does not apply, why."""
        if not backend.kernels:
            return "nn.Module + autograd", None
        if not self._relu:
            return "nn.Module + autograd", "the kernel covers ReLU stacks"
        if not self.plain_layers:
            return "nn.Module + autograd", "the kernel covers plain Linear layers (noisy here)"
        reason = plain_cpu_float32(self)  # type: ignore[arg-type]
        if reason is not None:
            return "nn.Module + autograd", reason
        small = "; NumPy for acting batches <= 16" if isinstance(self, DenseStack) else ""
        return f"fused MLP kernel (one autograd node){small}", None

    def layer_parameters(self) -> list[Tensor]:
        """``[w0, b0, w1, b1, ...]`` in layer order (stacked over members for ensembles)."""
        params: list[Tensor] = []
        for layer in self.layers:
            weight, bias = layer.weight, layer.bias
            assert isinstance(weight, Tensor) and isinstance(bias, Tensor)
            params += [weight, bias]
        return params


class DenseStack(HandWrittenKernel, nn.Module):
    """``Linear -> activation`` per hidden size, then a ``Linear`` to ``out_dim``.

    The same network as an ``nn.Sequential`` of ``nn.Linear`` layers (PyTorch's default
    initialisation, what Stable-Baselines3 and CleanRL use for DQN, DDPG, TD3 and SAC), with a
    forward that calls the linear kernels directly (the per-module call overhead is a noticeable
    share of a small network's update on CPU); ReLU stacks take the ``fast`` backend's kernel
    where it applies (see the module doc), and otherwise call their layers as modules.
    """

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
        if x.dim() == 2 and kernel_applies(self, x, self._relu):
            if numpy_eligible(x):
                return torch.from_numpy(self.numpy_forward(x.numpy()))
            return fused_mlp("linear", x, self.layer_parameters())
        last = len(self.layers) - 1  # plain module calls: their hooks run
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = self.activation(x)
        return x

    def numpy_forward(self, x: np.ndarray) -> np.ndarray:
        """The forward pass of a ReLU stack in NumPy on views of the weights, for acting-size
        float32 batches (a NumPy call costs ~1 us where a torch call costs several). No hooks
        run; the ``fast`` backend uses it only where none are registered."""
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
        ``relu`` applies a ReLU to the output."""
        weight: Tensor = self.weight
        bias: Tensor = self.bias
        if members is not None:
            weight, bias = weight[members], bias[members]
        if detach_params:
            weight, bias = weight.detach(), bias.detach()
        if x.dim() == 2:
            x = x.expand(weight.shape[0], *x.shape)
        y = torch.baddbmm(bias, x, weight)
        return torch.relu(y) if relu else y

    def extra_repr(self) -> str:
        return f"members={self.num_members}, in={self.in_features}, out={self.out_features}"


class EnsembleMLP(HandWrittenKernel, nn.Module):
    """``E`` MLPs of the same shape run as one: ``EnsembleLinear -> activation`` per hidden size,
    then an ``EnsembleLinear`` to ``out_features``. ``[B, in]`` -> ``[E, B, out]``."""

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
        if x.dim() in (2, 3) and kernel_applies(self, x, self._relu):
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
            return fused_mlp("ensemble", x, params)
        last = len(self.layers) - 1  # plain module calls: their hooks run
        for i, layer in enumerate(self.layers):
            x = layer(x, detach_params, members)
            if i < last:
                x = self.activation(x)
        return x
