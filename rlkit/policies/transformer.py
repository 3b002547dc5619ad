"""A Transformer policy: causal self-attention over a window of past steps, with the keys and
values of the window cached in the recurrent state (:mod:`rlkit.policies.state`), so acting
costs one step's attention and training runs whole sequence chunks at once.

Each layer is pre-LayerNorm multi-head attention then a ReLU MLP (Parisotto et al. 2019's
"TrXL-I" ordering), joined to the stream by residual additions or, with ``gating=True``, by
GTrXL's GRU-type gates (gate bias 2, so each layer starts close to the identity). Positions
enter as a learned bias per head and distance (0 = the current step, up to ``context - 1``),
which needs no absolute time and is the same for acting and training. Attention never
crosses an episode start.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Rule, count
from rlkit.distributions.base import Distribution
from rlkit.encoders.base import Encoder
from rlkit.policies.base import POLICIES
from rlkit.policies.recurrent import CriticMode, RecurrentActorCritic, SequenceCore
from rlkit.policies.state import StateSpec, StateTuple, reset_rows


class GRUGate(nn.Module):
    """GTrXL's gate ``g(x, y)``: ``r = s(W_r y + U_r x)``, ``z = s(W_z y + U_z x - b)``,
    ``h = tanh(W_g y + U_g (r * x))``, output ``(1 - z) * x + z * h``."""

    def __init__(self, size: int, bias: float = 2.0) -> None:
        super().__init__()
        self.w = nn.Linear(size, 3 * size, bias=False)
        self.u_rz = nn.Linear(size, 2 * size, bias=False)
        self.u_g = nn.Linear(size, size, bias=False)
        self.bias = nn.Parameter(torch.full((size,), float(bias)))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        wr, wz, wg = self.w(y).chunk(3, dim=-1)
        ur, uz = self.u_rz(x).chunk(2, dim=-1)
        r = torch.sigmoid(wr + ur)
        z = torch.sigmoid(wz + uz - self.bias)
        h = torch.tanh(wg + self.u_g(r * x))
        return (1.0 - z) * x + z * h


class TransformerLayer(nn.Module):
    """One pre-LN attention + MLP layer over the window (see the module doc)."""

    def __init__(
        self, d_model: int, num_heads: int, ff_size: int, context: int, gating: bool
    ) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(
                f"TransformerCore: d_model={d_model} must be a multiple of num_heads={num_heads}"
            )
        self.num_heads, self.head_size = num_heads, d_model // num_heads
        self.norm_attn = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff_size), nn.ReLU(), nn.Linear(ff_size, d_model))
        #: learned attention bias per head and distance (0 = the current step).
        self.distance_bias = nn.Parameter(torch.zeros(num_heads, context))
        self.gate_attn = GRUGate(d_model) if gating else None
        self.gate_ff = GRUGate(d_model) if gating else None

    def forward(
        self, x: Tensor, cache_k: Tensor, cache_v: Tensor, allowed: Tensor, distance: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``x [B, T, D]``; the cached keys/values ``[B, W - 1, D]``; ``allowed
        [B, T, W - 1 + T]`` which keys each query may attend to, ``distance [T, W - 1 + T]``
        their distances (clamped into the bias table). Returns the new stream and the keys
        and values of every position ``[B, W - 1 + T, D]``."""
        batch, steps, width = x.shape
        q, k, v = self.qkv(self.norm_attn(x)).chunk(3, dim=-1)
        keys, values = torch.cat([cache_k, k], dim=1), torch.cat([cache_v, v], dim=1)

        def heads(t: Tensor) -> Tensor:
            return t.reshape(batch, t.shape[1], self.num_heads, self.head_size).transpose(1, 2)

        logits = heads(q) @ heads(keys).transpose(-1, -2) / math.sqrt(self.head_size)
        logits = logits + self.distance_bias[:, distance]
        logits = logits.masked_fill(~allowed.unsqueeze(1), float("-inf"))
        attended = (torch.softmax(logits, dim=-1) @ heads(values)).transpose(1, 2)
        y = torch.relu(self.proj(attended.reshape(batch, steps, width)))
        x = x + y if self.gate_attn is None else self.gate_attn(x, y)
        y = torch.relu(self.ff(self.norm_ff(x)))
        x = x + y if self.gate_ff is None else self.gate_ff(x, y)
        return x, keys, values


class TransformerCore(SequenceCore):
    """Causal self-attention over the last ``context`` steps (the current one included).

    State (batch-first): per layer ``layer<i>_keys`` and ``layer<i>_values``
    ``[context - 1, d_model]`` (the window's cached keys and values, oldest first) and one
    ``valid`` ``[context - 1]`` (1 where a cached step belongs to the current episode). A reset
    zeroes them all, so a new episode attends to its own steps only.
    """

    def __init__(
        self,
        input_size: int,
        d_model: int = 64,
        num_layers: int = 1,
        num_heads: int = 4,
        context: int = 32,
        ff_size: int | None = None,
        gating: bool = False,
    ) -> None:
        super().__init__()
        if context < 2:
            raise ValueError(f"TransformerCore: context must be >= 2 steps, got {context}")
        self.d_model, self.num_layers, self.context = int(d_model), int(num_layers), int(context)
        self.output_size = self.d_model
        self.embed = nn.Linear(input_size, self.d_model)
        ff = int(ff_size) if ff_size is not None else 2 * self.d_model
        self.layers = nn.ModuleList(
            TransformerLayer(self.d_model, int(num_heads), ff, self.context, gating)
            for _ in range(self.num_layers)
        )
        self.norm = nn.LayerNorm(self.d_model)

    def state_spec(self, prefix: str) -> tuple[StateSpec, ...]:
        memory = (self.context - 1, self.d_model)
        specs = []
        for i in range(self.num_layers):
            specs.append(StateSpec(f"{prefix}_layer{i}_keys", memory))
            specs.append(StateSpec(f"{prefix}_layer{i}_values", memory))
        specs.append(StateSpec(f"{prefix}_valid", (self.context - 1,)))
        return tuple(specs)

    def forward(
        self, x: Tensor, state: StateTuple, episode_start: Tensor, need_state: bool = True
    ) -> tuple[Tensor, StateTuple | None]:
        steps, batch = x.shape[0], x.shape[1]
        starts = episode_start.reshape(steps, batch)
        state = reset_rows(state, starts[0])
        memory = self.context - 1
        valid_cache = state[-1] > 0.5  # [B, W - 1]
        # the first step (in window coordinates) of each query's episode inside the chunk:
        # positions before it are another episode's
        times = torch.arange(steps, device=x.device)
        marked = torch.where(starts.t() > 0.5, times, torch.full_like(times, -1))  # [B, T]
        # the last start at or before t (-1: none), as a masked max (exports to ONNX, which
        # has no cumulative max)
        earlier = times.unsqueeze(0) <= times.unsqueeze(1)  # [t, s]: s <= t
        begin = marked.unsqueeze(1).masked_fill(~earlier, -1).amax(dim=-1)  # [B, T]
        position = torch.arange(memory + steps, device=x.device)
        query_pos = memory + times  # [T]
        distance = query_pos.unsqueeze(1) - position.unsqueeze(0)  # [T, W - 1 + T]
        in_window = (distance >= 0) & (distance < self.context)
        same_episode = position.view(1, 1, -1) >= (memory + begin).clamp(min=0).unsqueeze(-1)
        cached_ok = torch.cat(
            [valid_cache, torch.ones(batch, steps, dtype=torch.bool, device=x.device)], dim=1
        )
        # a query in the chunk's first episode (begin = -1) may also see valid cached steps
        allowed = in_window.unsqueeze(0) & cached_ok.unsqueeze(1)
        allowed = allowed & (same_episode | (begin < 0).unsqueeze(-1))
        h = self.embed(x).transpose(0, 1)  # [B, T, D]
        caches: list[Tensor] = []
        distance = distance.clamp(0, self.context - 1)
        for i, layer in enumerate(self.layers):
            h, keys, values = layer(h, state[2 * i], state[2 * i + 1], allowed, distance)
            caches += [keys[:, -memory:], values[:, -memory:]]
        out = self.norm(h).transpose(0, 1)
        if not need_state:
            return out, None
        last_begin = begin[:, -1]  # [B]
        keep = cached_ok & (
            (position.unsqueeze(0) >= (memory + last_begin).unsqueeze(-1))
            | (last_begin < 0).unsqueeze(-1)
        )
        valid = keep[:, -memory:].to(state[-1].dtype)
        # steps of an earlier episode are zeroed, as a reset would have: the state is the same
        # whether the chunk ran at once or step by step
        mask = valid.unsqueeze(-1).to(caches[0].dtype)
        return out, (*(c * mask for c in caches), valid)


@POLICIES.register("transformer_actor_critic")
class TransformerActorCritic(RecurrentActorCritic):
    """:class:`RecurrentActorCritic` with a :class:`TransformerCore`: causal attention over the
    last ``context`` steps (keys/values of the window cached in the state for acting),
    ``num_layers`` layers of ``num_heads`` heads and width ``d_model``, optional GTrXL gating.
    ``critic="shared"`` (default) reads the actor's core; ``"separate"`` builds a second
    Transformer; ``"feedforward"`` gives the critic no memory."""

    argument_rules: ClassVar[dict[str, Rule]] = {
        "d_model": count(integer=True),
        "num_heads": count(integer=True),
        "context": count(minimum=2, integer=True),
        "ff_size": count(integer=True, none=True),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | None = None,
        distribution: Distribution | str | Mapping[str, Any] | None = None,
        d_model: int = 64,
        num_layers: int = 1,
        num_heads: int = 4,
        context: int = 32,
        ff_size: int | None = None,
        gating: bool = False,
        critic: CriticMode = "shared",
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "tanh",
        ortho_init: bool = True,
    ) -> None:
        def build(size: int) -> SequenceCore:
            return TransformerCore(size, d_model, num_layers, num_heads, context, ff_size, gating)

        super().__init__(
            observation_space, action_space, encoder, distribution, build, d_model,
            num_layers, critic, hidden_sizes, activation, ortho_init,
        )  # fmt: skip


__all__ = ["GRUGate", "TransformerActorCritic", "TransformerCore", "TransformerLayer"]
