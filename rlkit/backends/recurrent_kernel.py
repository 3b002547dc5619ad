"""The ``fast`` backend's acting kernel for the LSTM/GRU actor-critic: one rollout step in NumPy.

Why: acting advances the memory one step for a handful of env rows, where each torch call's
dispatch costs more than its arithmetic. A step of the default recurrent actor-critic (two
LSTM cells, trunks, heads, one sampled action) is ~20 module and torch calls; here it is a few
NumPy calls on the parameters' memory, with the action drawn from torch's random generator
exactly as the policy's distribution draws it (same actions for the same seed). Training is
untouched: the update runs the stored sequences through ``nn.LSTM``/``nn.GRU`` (oneDNN) with
autograd, so what acting computes here must equal the policy's own step, to float rounding
(``tests/test_fused.py`` checks whole rollouts against it).

:func:`recurrent_sampler` builds one only when the policy computes what the kernel reproduces
and returns ``None`` otherwise (:func:`recurrent_unsupported_reason` says why): a
:class:`~rlkit.policies.recurrent.RecurrentActorCritic` whose acting methods are its own
(subclasses keep the kernel unless they override one), :class:`RecurrentCore` cores (LSTM or
GRU, any number of layers) that keep their forward, no critic encoder, an ``Identity`` or
``MLP`` encoder, ``Linear`` + ``Tanh``/``ReLU`` trunks, linear heads, a family of
:mod:`~rlkit.backends.actor_critic_kernel`, float32 parameters on the CPU and no module hooks.
Capabilities are checked, never exact types (:mod:`rlkit.backends.capability`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rlkit.backends.actor_critic_kernel import (
    _encoder_layers,
    _Family,
    _forward,
    _heads_family,
    _Layer,
    _layers,
)
from rlkit.backends.capability import overridden, plain_cpu_float32

#: one acting step: ``(obs, state, episode_start)`` -> raw actions, their log-probabilities,
#: the values and the state after the step (the policy's state layout).
RecurrentStep = Callable[
    [Tensor, tuple[Tensor, ...], Tensor | None],
    tuple[Tensor, Tensor, Tensor, tuple[Tensor, ...]],
]

#: the RecurrentActorCritic methods acting runs through; a subclass overriding one keeps
#: the module path.
ACTING_METHODS = ("forward", "_cores", "actor_distribution", "state_spec", "state_tuple")
#: the RecurrentCore methods a step runs through.
CORE_METHODS = ("forward", "_step", "state_spec")


def _sigmoid_(x: np.ndarray) -> None:
    """In-place logistic function, as ``0.5 tanh(x / 2) + 0.5`` (no overflow)."""
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5


class _Cells:
    """The layers of an ``nn.LSTM``/``nn.GRU`` as transposed NumPy copies for one rollout
    (gate columns of an LSTM reordered to input, forget, output, cell so that the three
    sigmoid gates are contiguous)."""

    def __init__(self, rnn: nn.LSTM | nn.GRU, lstm: bool) -> None:
        self.lstm = lstm
        self.layers: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for layer in range(rnn.num_layers):
            w_ih = getattr(rnn, f"weight_ih_l{layer}").detach().numpy()
            w_hh = getattr(rnn, f"weight_hh_l{layer}").detach().numpy()
            b_ih = getattr(rnn, f"bias_ih_l{layer}").detach().numpy()
            b_hh = getattr(rnn, f"bias_hh_l{layer}").detach().numpy()
            if lstm:
                i, f, g, o = np.split(np.arange(w_ih.shape[0]), 4)
                order = np.concatenate([i, f, o, g])
                w_ih, w_hh, b_ih, b_hh = w_ih[order], w_hh[order], b_ih[order], b_hh[order]
                b_ih, b_hh = b_ih + b_hh, np.zeros_like(b_hh)
            self.layers.append(
                (
                    np.ascontiguousarray(w_ih.T),
                    np.ascontiguousarray(w_hh.T),
                    b_ih.copy(),
                    b_hh.copy(),
                )
            )

    def step(self, x: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One step from ``state`` (``[h]`` or ``[h, c]``, each ``[B, layers, H]``): the last
        layer's output and the new state arrays."""
        h_all = np.empty_like(state[0])
        c_all = np.empty_like(state[0]) if self.lstm else None
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layers):
            h = state[0][:, layer]
            if self.lstm:
                assert c_all is not None
                size = h.shape[1]
                gates = x @ w_ih
                gates += h @ w_hh
                gates += b_ih
                _sigmoid_(gates[:, : 3 * size])
                cell = np.tanh(gates[:, 3 * size :])
                cell *= gates[:, :size]
                c = gates[:, size : 2 * size] * state[1][:, layer]
                c += cell
                h = np.tanh(c)
                h *= gates[:, 2 * size : 3 * size]
                c_all[:, layer] = c
            else:
                size = h.shape[1]
                gi = x @ w_ih
                gi += b_ih
                gh = h @ w_hh
                gh += b_hh
                rz = gi[:, : 2 * size] + gh[:, : 2 * size]
                _sigmoid_(rz)
                n = gh[:, 2 * size :] * rz[:, :size]
                n += gi[:, 2 * size :]
                np.tanh(n, out=n)
                z = rz[:, size:]
                h = n + z * (h - n)  # (1 - z) n + z h
            h_all[:, layer] = h
            x = h
        return x, ([h_all] if c_all is None else [h_all, c_all])


class RecurrentActingKernel:
    """Acting steps of a supported recurrent actor-critic (see the module doc).

    Build it with :func:`recurrent_sampler` at the start of a rollout: the cells hold copies of
    the recurrent weights (reordered for the step), the trunks and heads NumPy views; use it
    while the parameters do not change and build a new one after an update.
    """

    def __init__(
        self,
        prefix: list[_Layer],
        actor_cells: _Cells,
        critic_cells: _Cells | None,
        critic_mode: str,
        trunks: tuple[list[_Layer], list[_Layer]],
        heads: tuple[nn.Linear, nn.Linear],
        family: _Family,
        scale: bool,
    ) -> None:
        self.prefix, self.actor_cells, self.critic_cells = prefix, actor_cells, critic_cells
        self.critic_mode = critic_mode
        self.actor_trunk, self.critic_trunk = trunks
        self.head = _Layer(heads[0], None)
        self.value_head = _Layer(heads[1], None)
        self.family = family
        self.scale = scale
        self.actor_tensors = 2 if actor_cells.lstm else 1

    def __call__(
        self, obs: Tensor, state: tuple[Tensor, ...], episode_start: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, ...]]:
        """Raw actions, log-probabilities, values and the next state for one step of
        ``obs [B, ...]`` from ``state``, reset first where ``episode_start`` is 1."""
        x = obs.reshape(obs.shape[0], -1)
        if x.dtype != torch.float32:
            x = x.float()
        feats = x.numpy()
        if self.scale:
            feats = feats / np.float32(255.0)
        if self.prefix:
            feats = _forward(self.prefix, feats)[-1]
        arrays = [s.numpy() for s in state]
        if episode_start is not None:
            starts = episode_start.reshape(-1).numpy()
            if starts.any():
                keep = (starts == 0).astype(np.float32)[:, None, None]
                arrays = [a * keep for a in arrays]
        n = self.actor_tensors
        memory, actor_state = self.actor_cells.step(feats, arrays[:n])
        next_state = actor_state
        if self.critic_cells is not None:
            critic_in, critic_state = self.critic_cells.step(feats, arrays[n:])
            next_state = [*actor_state, *critic_state]
        elif self.critic_mode == "shared":
            critic_in = memory
        else:
            critic_in = feats
        latent = _forward(self.actor_trunk, memory)[-1]
        head_t = np.ascontiguousarray(self.head.forward(latent).T)
        value = self.value_head.forward(_forward(self.critic_trunk, critic_in)[-1]).reshape(-1)
        actions, log_prob = self.family.sample(head_t)
        return (
            torch.from_numpy(actions),
            torch.from_numpy(log_prob),
            torch.from_numpy(value),
            tuple(torch.from_numpy(a) for a in next_state),
        )


def _cells(core: Any) -> _Cells | str:
    """The cells of a :class:`RecurrentCore`, or why a core has no kernel."""
    from rlkit.policies.recurrent import RecurrentCore

    if not isinstance(core, RecurrentCore):
        return f"core {type(core).__name__} (kernels cover RecurrentCore)"
    changed = overridden(core, RecurrentCore, *CORE_METHODS)
    if changed:
        return f"core {type(core).__name__} overrides {', '.join(changed)}"
    rnn = core.rnn
    for cls in (nn.LSTM, nn.GRU):
        if isinstance(rnn, cls) and not overridden(rnn, cls, "forward"):
            break
    else:
        return f"recurrent module {type(rnn).__name__} (kernels cover nn.LSTM and nn.GRU)"
    projected = int(getattr(rnn, "proj_size", 0)) > 0
    if not rnn.bias or rnn.bidirectional or projected or rnn.batch_first:
        return "an LSTM/GRU with bias=False, bidirectional, proj_size or batch_first"
    return _Cells(rnn, isinstance(rnn, nn.LSTM))


def _build(policy: nn.Module) -> RecurrentActingKernel | str:
    from rlkit.policies.recurrent import RecurrentActorCritic

    if not isinstance(policy, RecurrentActorCritic):
        return f"{type(policy).__name__} is not a RecurrentActorCritic"
    changed = overridden(policy, RecurrentActorCritic, *ACTING_METHODS)
    if changed:
        return f"{type(policy).__name__} overrides {', '.join(changed)}"
    if policy.critic_encoder is not None:
        return "a critic encoder (kernels cover the shared encoder)"
    reason = plain_cpu_float32(policy)
    if reason is not None:
        return reason
    prefix = _encoder_layers(policy.encoder)
    actor_cells = _cells(policy.core)
    critic_cells = None if policy.critic_core is None else _cells(policy.critic_core)
    actor, critic = _layers(policy.actor_trunk), _layers(policy.critic_trunk)
    for part in (prefix, actor_cells, critic_cells, actor, critic):
        if isinstance(part, str):
            return part
    family = _heads_family(policy.action_head, policy.value_head, policy.distribution)
    if isinstance(family, str):
        return family
    assert not isinstance(prefix, str) and not isinstance(actor_cells, str)
    assert not isinstance(critic_cells, str)
    assert not isinstance(actor, str) and not isinstance(critic, str)
    return RecurrentActingKernel(
        prefix,
        actor_cells,
        critic_cells,
        policy.critic_mode,
        (actor, critic),
        (policy.action_head, policy.value_head),
        family,
        scale=bool(getattr(policy.encoder, "_scale", False)),
    )


def recurrent_unsupported_reason(policy: nn.Module) -> str | None:
    """Why :func:`recurrent_sampler` has no kernel for ``policy`` (None: it has one)."""
    built = _build(policy)
    return built if isinstance(built, str) else None


def recurrent_sampler(policy: nn.Module) -> RecurrentActingKernel | None:
    """A :class:`RecurrentActingKernel` for ``policy``, or ``None`` where it does not apply
    (then act through the module; :func:`recurrent_unsupported_reason` says why)."""
    built = _build(policy)
    return None if isinstance(built, str) else built


__all__ = [
    "ACTING_METHODS",
    "CORE_METHODS",
    "RecurrentActingKernel",
    "RecurrentStep",
    "recurrent_sampler",
    "recurrent_unsupported_reason",
]
