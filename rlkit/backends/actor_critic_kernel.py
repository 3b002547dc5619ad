"""The ``fast`` backend's kernel for the default MLP actor-critic: forward and backward by hand.

Why: for the standard on-policy network (vector observations, two 64-64 trunks, 256-sample
minibatches) a gradient step is ~0.15 ms of arithmetic on one CPU core, but building and
walking the autograd graph, calling modules and dispatching dozens of tiny torch operations
cost several times that. :class:`FusedActorCritic` computes the same maths directly: the
forward keeps the activations it needs, the backward applies the chain rule by hand and
accumulates every parameter's gradient into ``.grad`` as ``loss.backward()`` would (to float
tolerance; ``tests/test_fused.py`` checks it against autograd).

The arrays are NumPy views of the parameters' memory: a NumPy call costs ~1 us on small
arrays against several for a torch call on the CPU, and NumPy's ``tanh`` is vectorised where
some torch builds run a scalar loop. Matrix products above :data:`SMALL_MATMUL` multiply-adds
go to ``torch.mm`` (so they honour ``torch.set_num_threads``); smaller ones stay in NumPy,
below the size at which its BLAS would start threads.

Agents use it through :meth:`FusedActorCritic.evaluate` (log-probabilities, entropies and values
of stored actions, plus a cache) and :meth:`FusedActorCritic.backward` (gradients of a loss
given its derivatives with respect to those three per-sample quantities), and for acting in
rollouts through :meth:`FusedActorCritic.sample`, which draws from torch's random generator
exactly as the policy's distribution does (same actions for the same seed).

:func:`fused_kernel` builds one only when the policy computes what the kernel reproduces and
returns ``None`` otherwise (:func:`unsupported_reason` says why), so callers use autograd: an
:class:`~rlkit.policies.ActorCritic` whose forward, value, action distribution and
action evaluation are ActorCritic's own (subclasses keep the kernel unless they override one of
them), an ``Identity`` or ``MLP`` encoder (or a subclass that keeps their forward), trunks of
``Linear`` + ``Tanh``/``ReLU`` layers, linear heads, a ``Categorical``, uniform
``MultiCategorical`` or ``DiagGaussian`` distribution, float32 parameters on the CPU, and no
module hooks or parametrizations. Capabilities are checked, never exact types
(:mod:`rlkit.backends.capability`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rlkit.backends.capability import overridden, plain_cpu_float32
from rlkit.distributions.base import Distribution
from rlkit.distributions.categorical import Categorical, MultiCategorical
from rlkit.distributions.gaussian import DiagGaussian
from rlkit.encoders.mlp import MLP, Identity

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
#: activation modules the kernel reproduces (subclasses that keep their forward included).
_ACTIVATIONS: tuple[tuple[type[nn.Module], str], ...] = ((nn.Tanh, "tanh"), (nn.ReLU, "relu"))
#: matrix products of at most this many multiply-adds run in NumPy; larger ones in torch.
#: 4 * 65536 is where OpenBLAS (NumPy's usual BLAS) starts using several threads for sgemm.
SMALL_MATMUL = 4 * 65536


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b``: NumPy for small products, ``torch.mm`` for large ones."""
    if a.shape[1] == 1:  # an outer product: broadcasting beats BLAS here by ~10x
        return a * b
    if a.shape[0] * a.shape[1] * b.shape[1] <= SMALL_MATMUL:
        return a @ b
    return torch.mm(torch.from_numpy(a), torch.from_numpy(b)).numpy()


def _mm_acc(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """``out += a @ b`` in place."""
    if a.shape[0] * a.shape[1] * b.shape[1] <= SMALL_MATMUL:
        out += a @ b
    else:
        torch.from_numpy(out).addmm_(torch.from_numpy(a), torch.from_numpy(b))


def _array(x: Tensor | np.ndarray) -> np.ndarray:
    """A float32 NumPy view (or copy) of a CPU tensor or array."""
    array = x.detach().numpy() if isinstance(x, Tensor) else x
    return array if array.dtype == np.float32 else array.astype(np.float32)


class _Param:
    """A parameter with NumPy views of its data and (lazily) of its gradient."""

    __slots__ = ("data", "grad", "param", "trainable")

    def __init__(self, param: Tensor) -> None:
        self.param = param
        self.trainable = param.requires_grad
        # Views share the parameter's memory: in-place optimizer steps show up here.
        self.data: np.ndarray = param.detach().numpy()
        self.grad: tuple[Tensor, np.ndarray] | None = None

    def grad_view(self) -> np.ndarray:
        """NumPy view of ``param.grad`` (created as zeros when missing, as autograd does)."""
        grad = self.param.grad
        if grad is None:
            grad = self.param.grad = torch.zeros_like(self.param)
        cached = self.grad
        if cached is None or cached[0] is not grad:
            cached = self.grad = (grad, grad.numpy())
        return cached[1]


class _Layer:
    """One ``Linear`` layer and the activation after it (``None`` for none)."""

    __slots__ = ("activation", "bias", "weight")

    def __init__(self, linear: nn.Linear, activation: str | None) -> None:
        self.weight = _Param(linear.weight)
        self.bias = _Param(linear.bias)
        self.activation = activation

    def forward(self, x: np.ndarray) -> np.ndarray:
        h = _mm(x, self.weight.data.T)
        h += self.bias.data
        if self.activation == "tanh":
            np.tanh(h, out=h)
        elif self.activation == "relu":
            np.maximum(h, 0.0, out=h)
        return h

    def backward(
        self, x: np.ndarray, out: np.ndarray, grad: np.ndarray, ones: np.ndarray, need_dx: bool
    ) -> np.ndarray | None:
        """Accumulate parameter gradients given the layer's input ``x``, output ``out`` and
        ``grad = d loss / d out`` (overwritten with the pre-activation gradient); returns
        ``d loss / d x`` when asked. ``ones`` is a ones vector of the batch size."""
        if self.activation == "tanh":
            slope = out * out
            np.subtract(1.0, slope, out=slope)
            grad *= slope
        elif self.activation == "relu":
            grad *= out > 0
        if self.weight.trainable:
            _mm_acc(self.weight.grad_view(), grad.T, x)
        if self.bias.trainable:
            self.bias.grad_view()[...] += ones @ grad
        return _mm(grad, self.weight.data) if need_dx else None


def _activation(module: nn.Module) -> str | None:
    """``"tanh"``/``"relu"`` for an activation module the kernel reproduces, else None."""
    for cls, name in _ACTIVATIONS:
        if isinstance(module, cls) and not overridden(module, cls, "forward"):
            return name
    return None


def _layers(module: nn.Module) -> list[_Layer] | str:
    """``Linear``/activation pairs of an ``nn.Sequential``, or why the chain has no kernel."""
    if not isinstance(module, nn.Sequential) or overridden(module, nn.Sequential, "forward"):
        return f"{type(module).__name__} is not a plain nn.Sequential"
    out: list[_Layer] = []
    pending: nn.Linear | None = None
    for child in module:
        activation = _activation(child)
        if isinstance(child, nn.Linear) and not overridden(child, nn.Linear, "forward"):
            if child.bias is None:
                return "a Linear layer without bias"
            if pending is not None:
                out.append(_Layer(pending, None))
            pending = child
        elif activation is not None and pending is not None:
            out.append(_Layer(pending, activation))
            pending = None
        else:
            return f"{type(child).__name__} layer (kernels cover Linear with Tanh or ReLU)"
    if pending is not None:
        out.append(_Layer(pending, None))
    return out


def _forward(layers: list[_Layer], x: np.ndarray) -> list[np.ndarray]:
    """Inputs and outputs of every layer: ``[x, h1, ..., hL]``."""
    acts = [x]
    for layer in layers:
        acts.append(layer.forward(acts[-1]))
    return acts


def _backward(
    layers: list[_Layer], acts: list[np.ndarray], grad: np.ndarray, ones: np.ndarray, need: bool
) -> np.ndarray | None:
    """Backward through a chain given ``d loss / d acts[-1]`` (overwritten); returns
    ``d loss / d acts[0]`` if ``need``."""
    for i in range(len(layers) - 1, -1, -1):
        dx = layers[i].backward(acts[i], acts[i + 1], grad, ones, i > 0 or need)
        if dx is None:
            return None
        grad = dx
    return grad if need else None


# --------------------------------------------------------------------------- distributions
# The families work on head outputs laid out parameter-major, ``[P, B]`` (P = num_params):
# NumPy reduces over a short last axis slowly (a [256, 2] max takes ~9 us, the same data as
# [2, 256] well under 1 us), and every reduction here is over the parameters.
class _CategoricalKernel:
    """``D`` independent categoricals of ``K`` classes (Discrete: ``D = 1``, actions ``[B]``)."""

    def __init__(self, dist: Categorical | MultiCategorical) -> None:
        if isinstance(dist, Categorical):
            self.dims, self.classes, self.scalar = 1, dist.n, True
        else:
            self.dims, self.classes, self.scalar = len(dist.nvec), dist.nvec[0], False
        self.arange = np.arange(self.classes).reshape(1, -1, 1)

    def _log_softmax(self, head_t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Shifted logits ``[D, K, B]`` (max subtracted, as torch) and ``exp``/its sum."""
        z = head_t.reshape(self.dims, self.classes, -1)
        shifted = z - z.max(1, keepdims=True)
        exp = np.exp(shifted)
        return shifted, exp, exp.sum(1, keepdims=True)

    def evaluate(
        self, head_t: np.ndarray, actions: np.ndarray, entropy: bool
    ) -> tuple[np.ndarray, np.ndarray | None, tuple[Any, ...]]:
        shifted, exp, total = self._log_softmax(head_t)
        logp_all = shifted - np.log(total)
        probs = exp / total
        onehot = actions.reshape(-1, self.dims).T[:, None, :] == self.arange
        logp = (logp_all * onehot).sum((0, 1))
        ent_dims = -(probs * logp_all).sum(1, keepdims=True) if entropy else None
        ent = ent_dims.sum((0, 1)) if ent_dims is not None else None
        return logp, ent, (logp_all, probs, onehot, ent_dims)

    def backward(
        self, cache: tuple[Any, ...], d_logp: np.ndarray, d_ent: np.ndarray | None
    ) -> np.ndarray:
        logp_all, probs, onehot, ent_dims = cache
        grad = onehot - probs
        grad *= d_logp
        if d_ent is not None:
            # dH/dz = -p * (log p + H), per categorical.
            grad -= probs * (logp_all + ent_dims) * d_ent
        return grad.reshape(self.dims * self.classes, -1)

    def sample(self, head_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = head_t.shape[1]
        shifted, _, total = self._log_softmax(head_t)
        logp_all = shifted - np.log(total)
        # Gumbel-max with torch's generator, drawn in the [B, (D,) K] layout that
        # CategoricalDist.sample uses, so the same seed gives the same actions.
        shape = (batch, self.classes) if self.scalar else (batch, self.dims, self.classes)
        noise = torch.empty(shape).exponential_().numpy().reshape(batch, self.dims, self.classes)
        actions = (logp_all - np.log(noise.transpose(1, 2, 0))).argmax(1)  # [D, B]
        logp = (logp_all * (actions[:, None, :] == self.arange)).sum((0, 1))
        return (actions[0] if self.scalar else np.ascontiguousarray(actions.T)), logp


class _GaussianKernel:
    """Diagonal Gaussian; a learned log-std vector or (state-dependent) a clamped head half."""

    def __init__(self, dist: DiagGaussian) -> None:
        self.dim = dist.dim
        self.bounds = dist.log_std_bounds
        self.log_std = None if dist.state_dependent_std else _Param(dist.log_std)

    def _split(self, head_t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Mean ``[A, B]``, log-std (``[A, B]`` or ``[A, 1]``) and, state-dependent, the raw
        log-std head."""
        if self.log_std is None:
            mean, raw = head_t[: self.dim], head_t[self.dim :]
            return mean, np.clip(raw, *self.bounds), raw
        return head_t, self.log_std.data.reshape(-1, 1), None

    def evaluate(
        self, head_t: np.ndarray, actions: np.ndarray, entropy: bool
    ) -> tuple[np.ndarray, np.ndarray | None, tuple[Any, ...]]:
        mean, log_std, raw = self._split(head_t)
        inv_std = np.exp(-log_std)
        z = (actions.T - mean) * inv_std
        logp = (-0.5 * z * z - log_std - _HALF_LOG_2PI).sum(0)
        ent = None
        if entropy:
            ent = np.broadcast_to(0.5 + _HALF_LOG_2PI + log_std, mean.shape).sum(0)
        return logp, ent, (z, inv_std, raw)

    def backward(
        self, cache: tuple[Any, ...], d_logp: np.ndarray, d_ent: np.ndarray | None
    ) -> np.ndarray:
        z, inv_std, raw = cache
        d_mean = z * inv_std * d_logp
        # d log p / d log_std = z^2 - 1; d entropy / d log_std = 1.
        d_log_std = (z * z - 1.0) * d_logp
        if d_ent is not None:
            d_log_std += d_ent
        if raw is None:
            assert self.log_std is not None
            if self.log_std.trainable:
                self.log_std.grad_view()[...] += d_log_std.sum(1)
            return d_mean
        lo, hi = self.bounds
        d_log_std *= (raw >= lo) & (raw <= hi)  # clamp passes gradient inside its bounds
        return np.concatenate([d_mean, d_log_std], axis=0)

    def sample(self, head_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, log_std, _ = self._split(head_t)
        # torch's generator, drawn [B, A] as DiagGaussianDist.sample does.
        noise = torch.randn(mean.shape[::-1]).numpy().T
        actions = mean + np.exp(log_std) * noise
        z = (actions - mean) * np.exp(-log_std)
        return np.ascontiguousarray(actions.T), (-0.5 * z * z - log_std - _HALF_LOG_2PI).sum(0)


_Family = _CategoricalKernel | _GaussianKernel


def _family(dist: Distribution) -> _Family | str:
    """The distribution kernel for ``dist``'s family, or why there is none."""
    # the hooks a policy calls on its family: a subclass changing any of them keeps autograd
    methods = ("forward", "postprocess", "masked", "from_features", "bind_features")
    if isinstance(dist, Categorical) and not overridden(dist, Categorical, *methods):
        return _CategoricalKernel(dist)
    if isinstance(dist, MultiCategorical) and not overridden(dist, MultiCategorical, *methods):
        if len(set(dist.nvec)) == 1:
            return _CategoricalKernel(dist)
        return "MultiCategorical with unequal sizes"
    if isinstance(dist, DiagGaussian) and not overridden(dist, DiagGaussian, *methods):
        return _GaussianKernel(dist)
    covered = "Categorical, MultiCategorical, DiagGaussian"
    return f"distribution {type(dist).__name__} (kernels cover {covered})"


# --------------------------------------------------------------------------- the kernel
@dataclass
class FusedEvaluation:
    """What :meth:`FusedActorCritic.evaluate` computed for a batch (no autograd graph)."""

    #: log-probabilities ``[B]`` of the given actions.
    log_prob: Tensor
    #: entropies ``[B]`` (``None`` when not asked for).
    entropy: Tensor | None
    #: state values ``[B]``.
    value: Tensor
    #: activations and distribution terms that :meth:`FusedActorCritic.backward` needs.
    cache: tuple[Any, ...]


class FusedActorCritic:
    """Autograd-free forward/backward and acting for a supported ActorCritic (see module doc).

    Build it with :func:`fused_kernel` right before use (a rollout or an update): it holds
    NumPy views of the policy's parameter tensors, which stay valid through in-place updates
    (optimizer steps, ``load_state_dict``) but not if a parameter's storage is replaced
    (``.to()``, re-flattening).
    """

    def __init__(
        self,
        prefix: list[_Layer],
        actor: list[_Layer],
        critic: list[_Layer] | None,
        action_head: nn.Linear,
        value_head: nn.Linear,
        family: _Family,
        scale: bool,
    ) -> None:
        self.prefix, self.actor, self.critic = prefix, actor, critic
        self.head_weight, self.head_bias = _Param(action_head.weight), _Param(action_head.bias)
        self.value_weight, self.value_bias = _Param(value_head.weight), _Param(value_head.bias)
        self.family = family
        self.scale = scale
        self._ones: dict[int, np.ndarray] = {}

    def _input(self, obs: Tensor) -> np.ndarray:
        x = obs.reshape(obs.shape[0], -1)
        if x.dtype != torch.float32:
            x = x.float()
        array: np.ndarray = x.numpy()
        return array / np.float32(255.0) if self.scale else array

    def _forward(
        self, obs: Tensor
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
        """Activations of the encoder and both trunks, the action head's output laid out
        ``[num_params, B]`` (what the families take) and the values ``[B]``."""
        feats = _forward(self.prefix, self._input(obs))
        actor = _forward(self.actor, feats[-1])
        critic = actor if self.critic is None else _forward(self.critic, feats[-1])
        head_t = _mm(self.head_weight.data, actor[-1].T)
        head_t += self.head_bias.data[:, None]
        value = _mm(self.value_weight.data, critic[-1].T).reshape(-1)
        value += self.value_bias.data
        return feats, actor, critic, head_t, value

    # ----------------------------------------------------------------- training
    def evaluate(self, obs: Tensor, actions: Tensor, entropy: bool = True) -> FusedEvaluation:
        """Log-probabilities, entropies (if ``entropy``) and values of ``actions`` (raw, as
        stored) under the current parameters, as ``policy.evaluate_actions`` computes them."""
        feats, actor, critic, head_t, value = self._forward(obs)
        logp, ent, dist_cache = self.family.evaluate(head_t, actions.numpy(), entropy)
        return FusedEvaluation(
            torch.from_numpy(logp),
            torch.from_numpy(ent) if ent is not None else None,
            torch.from_numpy(value),
            (feats, actor, critic, dist_cache),
        )

    def backward(
        self,
        evaluation: FusedEvaluation,
        d_log_prob: Tensor | np.ndarray,
        d_entropy: Tensor | np.ndarray | None,
        d_value: Tensor | np.ndarray | None,
    ) -> None:
        """Accumulate into every parameter's ``.grad`` the gradient of a loss whose derivatives
        with respect to the per-sample ``log_prob``, ``entropy`` and ``value`` of
        ``evaluation`` are given as CPU tensors or NumPy arrays (``None``: the loss does not
        depend on it)."""
        feats, actor, critic, dist_cache = evaluation.cache
        batch = feats[0].shape[0]
        ones = self._ones.get(batch)
        if ones is None:
            ones = self._ones[batch] = np.ones(batch, dtype=np.float32)
        d_ent = _array(d_entropy) if d_entropy is not None else None
        d_head_t = self.family.backward(dist_cache, _array(d_log_prob), d_ent)  # [P, B]
        need_feat = bool(self.prefix)
        if self.head_weight.trainable:
            _mm_acc(self.head_weight.grad_view(), d_head_t, actor[-1])
        if self.head_bias.trainable:
            self.head_bias.grad_view()[...] += d_head_t.sum(1)
        d_actor = _mm(d_head_t.T, self.head_weight.data)
        d_critic = None
        if d_value is not None:
            d_v = _array(d_value).reshape(1, -1)
            if self.value_weight.trainable:
                _mm_acc(self.value_weight.grad_view(), d_v, critic[-1])
            if self.value_bias.trainable:
                self.value_bias.grad_view()[...] += d_v.sum()
            d_critic = _mm(d_v.T, self.value_weight.data)
            if self.critic is None:  # shared trunk: both heads' gradients meet at its output
                d_actor += d_critic
                d_critic = None
        d_feat = _backward(self.actor, actor, d_actor, ones, need_feat)
        if d_critic is not None and self.critic is not None:
            d_feat_critic = _backward(self.critic, critic, d_critic, ones, need_feat)
            if d_feat is not None and d_feat_critic is not None:
                d_feat = d_feat + d_feat_critic
        if need_feat:
            assert d_feat is not None
            _backward(self.prefix, feats, d_feat, ones, need=False)

    # ----------------------------------------------------------------- acting
    def sample(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Sampled raw actions, their log-probabilities and the values for acting in a rollout,
        drawn from torch's random generator as the policy's distribution would."""
        _, _, _, head_t, value = self._forward(obs)
        actions, logp = self.family.sample(head_t)
        return torch.from_numpy(actions), torch.from_numpy(logp), torch.from_numpy(value)

    def sampler(self) -> Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]:
        """:meth:`sample` with the two trunks and heads packed into one chain, for a rollout.

        The trunks' first layers share their input, so they stack into one matrix; later
        layers and the two heads become block-diagonal: a step then makes half the NumPy calls
        (it is dominated by per-call cost at rollout batch sizes). The packed weights are a
        copy taken now, so use the sampler while the parameters do not change (one rollout)
        and take a new one after an update. Batches too large for the packed products to stay
        cheap, and layouts that do not pack (a shared trunk, trunks of different depths or
        activations), use :meth:`sample`.
        """
        if self.critic is None:
            return self.sample
        actor = [(layer.weight.data, layer.bias.data, layer.activation) for layer in self.actor]
        critic = [(layer.weight.data, layer.bias.data, layer.activation) for layer in self.critic]
        actor.append((self.head_weight.data, self.head_bias.data, None))
        critic.append((self.value_weight.data, self.value_bias.data, None))
        if [a[2] for a in actor] != [c[2] for c in critic]:  # depths and activations
            return self.sample
        # Feature-major ([features, B]) so the head rows come out contiguous for the family.
        packed: list[tuple[np.ndarray, np.ndarray, str | None]] = []
        for i, ((w_a, b_a, act), (w_c, b_c, _)) in enumerate(zip(actor, critic, strict=True)):
            if i == 0:
                weight = np.concatenate([w_a, w_c], axis=0)
            else:
                weight = np.zeros(
                    (w_a.shape[0] + w_c.shape[0], w_a.shape[1] + w_c.shape[1]), dtype=np.float32
                )
                weight[: w_a.shape[0], : w_a.shape[1]] = w_a
                weight[w_a.shape[0] :, w_a.shape[1] :] = w_c
            packed.append((weight, np.concatenate([b_a, b_c]).reshape(-1, 1), act))
        width = max(w.shape[0] for w, _, _ in packed)
        num_params = self.head_weight.data.shape[0]

        def sample(obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            if obs.shape[0] * width * width > SMALL_MATMUL:
                return self.sample(obs)
            x = self._input(obs)
            if self.prefix:
                x = _forward(self.prefix, x)[-1]
            h = x.T
            for weight, bias, act in packed:
                h = weight @ h
                h += bias
                if act == "tanh":
                    np.tanh(h, out=h)
                elif act == "relu":
                    np.maximum(h, 0.0, out=h)
            actions, logp = self.family.sample(h[:num_params])
            return (
                torch.from_numpy(actions),
                torch.from_numpy(logp),
                torch.from_numpy(h[num_params]),
            )

        return sample


#: the ActorCritic methods the kernel reproduces; a subclass overriding one loses the kernel.
KERNEL_METHODS = ("forward", "value", "action_distribution", "evaluate_actions")


def _heads_family(action_head: Any, value_head: Any, distribution: Distribution) -> _Family | str:
    """The family's kernel when both heads are plain ``Linear`` layers with a bias, else why
    not (shared by the feed-forward and the recurrent kernels)."""
    for head in (action_head, value_head):
        if not isinstance(head, nn.Linear) or overridden(head, nn.Linear, "forward"):
            return f"head {type(head).__name__} (kernels cover Linear heads)"
        if head.bias is None:
            return "a head without bias"
    return _family(distribution)


def _encoder_layers(encoder: nn.Module) -> list[_Layer] | str:
    if isinstance(encoder, Identity) and not overridden(encoder, Identity, "forward"):
        return []
    if isinstance(encoder, MLP) and not overridden(encoder, MLP, "forward"):
        return _layers(encoder.net)
    return f"encoder {type(encoder).__name__} (kernels cover Identity and MLP)"


def _build(policy: nn.Module) -> FusedActorCritic | str:
    from rlkit.policies.actor_critic import ActorCritic

    if getattr(policy, "recurrent", False):
        return "recurrent policy (kernels cover feed-forward ActorCritic)"
    if not isinstance(policy, ActorCritic):
        return f"{type(policy).__name__} is not an ActorCritic"
    changed = overridden(policy, ActorCritic, *KERNEL_METHODS)
    if changed:
        return f"{type(policy).__name__} overrides {', '.join(changed)}"
    reason = plain_cpu_float32(policy)
    if reason is not None:
        return reason
    prefix = _encoder_layers(policy.encoder)
    actor = _layers(policy.actor_trunk)
    critic = actor if policy.share_trunk else _layers(policy.critic_trunk)
    for part in (prefix, actor, critic):
        if isinstance(part, str):
            return part
    family = _heads_family(policy.action_head, policy.value_head, policy.distribution)
    if isinstance(family, str):
        return family
    assert not isinstance(prefix, str) and not isinstance(actor, str)
    assert not isinstance(critic, str)
    action_head, value_head = policy.action_head, policy.value_head
    assert isinstance(action_head, nn.Linear) and isinstance(value_head, nn.Linear)
    return FusedActorCritic(
        prefix,
        actor,
        None if policy.share_trunk else critic,
        action_head,
        value_head,
        family,
        scale=bool(getattr(policy.encoder, "_scale", False)),
    )


def unsupported_reason(policy: nn.Module) -> str | None:
    """Why :func:`fused_kernel` has no kernel for ``policy`` (None: it has one)."""
    built = _build(policy)
    return built if isinstance(built, str) else None


def fused_kernel(policy: nn.Module) -> FusedActorCritic | None:
    """A :class:`FusedActorCritic` for ``policy``, or ``None`` where it does not apply (then use
    the autograd path; :func:`unsupported_reason` says why)."""
    built = _build(policy)
    return None if isinstance(built, str) else built


__all__ = [
    "KERNEL_METHODS",
    "SMALL_MATMUL",
    "FusedActorCritic",
    "FusedEvaluation",
    "fused_kernel",
    "unsupported_reason",
]
