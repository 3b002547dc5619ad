"""Sequence-model actor-critics: encoder -> sequence core -> actor and critic heads.

A :class:`SequenceCore` is the memory: it maps a time-major sequence ``[T, B, F]`` and a
batch-first state to outputs ``[T, B, H]`` and the next state, resetting the state before a
step whose ``episode_start`` is 1 (:mod:`rlkit.policies.state`). :class:`RecurrentCore` wraps
``nn.LSTM``/``nn.GRU``; :class:`~rlkit.policies.transformer.TransformerCore` is causal
attention over a window. A policy feeds ``T * B`` time-major rows; acting is ``T = 1``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal, NamedTuple

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import OneOf, Rule, Satisfies, count
from rlkit.configurable import build_primitive
from rlkit.distributions.base import ActionDistribution, Distribution, action_mask_of
from rlkit.distributions.default import default_distribution
from rlkit.encoders.base import Encoder
from rlkit.encoders.default import default_encoder
from rlkit.encoders.mlp import mlp
from rlkit.policies.actor_critic import check_distribution, check_encoder
from rlkit.policies.base import (
    POLICIES,
    ActorCriticOutput,
    ActorCriticPolicy,
    log_prob_and_entropy,
)
from rlkit.policies.state import StateSpec, StateTuple, as_tuple, reset_rows
from rlkit.types import Obs, PolicyState
from rlkit.utils.nn import orthogonal_init

CoreKind = Literal["lstm", "gru"]
CriticMode = Literal["separate", "shared", "feedforward"]


class SequenceCore(nn.Module, ABC):
    """The memory of a sequence policy (subclass it for your own).

    ``forward(x [T, B, F], state, episode_start [T, B], need_state)`` returns the outputs
    ``[T, B, output_size]`` and the state after the last step (batch-first tensors laid out
    by :meth:`state_spec`; ``None`` may be returned when ``need_state`` is False, the
    training path). Row ``b``'s state must be reset to zeros before every step ``t`` with
    ``episode_start[t, b] == 1`` (:func:`~rlkit.policies.state.reset_rows`).
    """

    #: size of the output features per step.
    output_size: int

    @abstractmethod
    def state_spec(self, prefix: str) -> tuple[StateSpec, ...]:
        """The state's tensors, named ``f"{prefix}_..."``."""

    @abstractmethod
    def forward(
        self, x: Tensor, state: StateTuple, episode_start: Tensor, need_state: bool = True
    ) -> tuple[Tensor, StateTuple | None]:
        """Outputs ``[T, B, output_size]`` and the next state (see the class doc)."""


class SegmentLayout(NamedTuple):
    """Where the episodes of a ``[T, B]`` sequence lie: each env's column cut at its episode
    starts into segments (numbered env-major), each placed in a column of its own from
    step 0 (the padded layout of :class:`RecurrentCore`)."""

    #: segment of every (env, step), env-major ``[B * T]``.
    seg_of: Tensor
    #: step of every (env, step) inside its segment ``[B * T]``.
    offset: Tensor
    #: segment holding each env's first step ``[B]`` (starts from the given state).
    owners: Tensor
    #: segment holding each env's last step ``[B]`` (gives the final state).
    last: Tensor
    #: steps per segment ``[segments]``.
    lengths: Tensor
    segments: int
    longest: int

    @classmethod
    def of(cls, starts: Tensor) -> SegmentLayout:
        """The layout of ``starts [T, B]`` (non-zero: an episode starts before that step)."""
        steps, batch = starts.shape
        begins = starts.t().bool().clone()  # [B, T], env-major: segments are contiguous
        begins[:, 0] = True
        flat = begins.reshape(-1)
        seg_of = torch.cumsum(flat.long(), 0) - 1
        first = flat.nonzero().flatten()  # flat position where each segment begins
        lengths = torch.diff(first, append=first.new_tensor([flat.shape[0]]))
        offset = torch.arange(flat.shape[0], device=starts.device) - first[seg_of]
        column_first = torch.arange(batch, device=starts.device) * steps
        return cls(
            seg_of=seg_of,
            offset=offset,
            owners=seg_of[column_first],
            last=seg_of[column_first + steps - 1],
            lengths=lengths,
            segments=int(first.shape[0]),
            longest=int(lengths.max()),
        )


class RecurrentCore(SequenceCore):
    """An ``nn.LSTM`` or ``nn.GRU`` (sequence-first) whose state is batch-first
    (``[B, num_layers, hidden_size]`` per tensor: ``(h, c)`` for an LSTM, ``(h,)`` for a GRU)
    and reset per row at episode starts. Resets cut the sequence only where they happen, and
    all the pieces run in one core call (no per-step Python loop)."""

    def __init__(self, kind: CoreKind, input_size: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        if kind not in ("lstm", "gru"):
            raise ValueError(f"RecurrentCore: kind must be 'lstm' or 'gru', got {kind!r}")
        self.kind = kind
        self.hidden_size = int(hidden_size)
        self.output_size = self.hidden_size
        self.num_layers = int(num_layers)
        rnn = nn.LSTM if kind == "lstm" else nn.GRU
        self.rnn = rnn(input_size, self.hidden_size, self.num_layers)
        self._layout_cache: tuple[Tensor, SegmentLayout] | None = None

    def state_spec(self, prefix: str) -> tuple[StateSpec, ...]:
        """``prefix``-named state tensors of this core."""
        shape = (self.num_layers, self.hidden_size)
        names = ("h", "c") if self.kind == "lstm" else ("h",)
        return tuple(StateSpec(f"{prefix}_{n}", shape) for n in names)

    def forward(
        self, x: Tensor, state: StateTuple, episode_start: Tensor, need_state: bool = True
    ) -> tuple[Tensor, StateTuple | None]:
        """``x [T, B, F]``, ``state`` batch-first, ``episode_start [T, B]`` -> outputs
        ``[T, B, H]`` and the state after the last step (None when not ``need_state``: the
        training path, which may then take the faster padded layout)."""
        steps = x.shape[0]
        starts = episode_start.reshape(steps, -1)
        state = reset_rows(state, starts[0])
        if steps == 1:
            return self._step(x[0], state)
        if not bool(starts[1:].any()):
            return self._call(x, state)
        return self._run_segments(x, state, starts, packed=need_state)

    def _run_segments(
        self, x: Tensor, state: StateTuple, starts: Tensor, packed: bool
    ) -> tuple[Tensor, StateTuple | None]:
        """Episode starts inside the sequence: every env's column is cut into segments at
        its starts; a segment that begins an episode starts from zeros, the first one of a
        column from ``state``. All segments run in one core call and the outputs go back to
        their ``[T, B]`` places: as a packed sequence when the final state is needed (exact
        per-segment final states), else padded to the longest segment (PyTorch's fused CPU
        kernels take plain tensors only: 3-7x faster forward and backward than the packed
        path here, the padded steps' outputs unused)."""
        steps, batch = starts.shape
        layout = self._layout(starts)
        values = x.transpose(0, 1).reshape(batch * steps, -1)
        padded = x.new_zeros(layout.longest, layout.segments, x.shape[-1]).index_put(
            (layout.offset, layout.seg_of), values
        )
        initial = tuple(
            s.new_zeros(layout.segments, *s.shape[1:]).index_put((layout.owners,), s) for s in state
        )
        if not packed:
            out, _ = self._call(padded, initial)
            y = out[layout.offset, layout.seg_of]
            return y.reshape(batch, steps, -1).transpose(0, 1), None
        lengths = layout.lengths.cpu()
        sequence = nn.utils.rnn.pack_padded_sequence(padded, lengths, enforce_sorted=False)
        out, final = self._call(sequence, initial)
        unpacked, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=layout.longest)
        y = unpacked[layout.offset, layout.seg_of].reshape(batch, steps, -1).transpose(0, 1)
        return y, tuple(f[layout.last] for f in final)

    def _layout(self, starts: Tensor) -> SegmentLayout:
        """The segments of ``starts [T, B]`` (:class:`SegmentLayout`), kept for the next call
        with equal starts: the epochs of an update pass the same rollout again and again."""
        cached = getattr(self, "_layout_cache", None)  # absent on modules pickled before it
        if (
            cached is not None
            and cached[0].shape == starts.shape
            and cached[0].device == starts.device
            and torch.equal(cached[0], starts)
        ):
            return cached[1]
        layout = SegmentLayout.of(starts)
        self._layout_cache = (starts.clone(), layout)
        return layout

    def _step(self, x: Tensor, state: StateTuple) -> tuple[Tensor, StateTuple]:
        """One step (acting) with ``torch.lstm_cell``/``torch.gru_cell`` on the core's
        weights, layer by layer: a whole-sequence core call costs ~3x more than one cell."""
        rnn = self.rnn
        h_out, c_out = [], []
        for layer in range(self.num_layers):
            weights = (
                getattr(rnn, f"weight_ih_l{layer}"),
                getattr(rnn, f"weight_hh_l{layer}"),
                getattr(rnn, f"bias_ih_l{layer}"),
                getattr(rnn, f"bias_hh_l{layer}"),
            )
            h = state[0][:, layer]
            if self.kind == "lstm":
                h, c = torch.lstm_cell(x, (h, state[1][:, layer]), *weights)
                c_out.append(c)
            else:
                h = torch.gru_cell(x, h, *weights)
            h_out.append(h)
            x = h
        new: StateTuple = (torch.stack(h_out, dim=1),)
        if self.kind == "lstm":
            new = (*new, torch.stack(c_out, dim=1))
        return x.unsqueeze(0), new

    def _call(self, x: Any, state: StateTuple) -> tuple[Any, StateTuple]:
        """The core on a sequence-first input (a tensor or a packed sequence) from a
        batch-first state; returns the output and the batch-first final state."""
        seq_first = tuple(s.transpose(0, 1).contiguous() for s in state)
        if self.kind == "lstm":
            out, (h, c) = self.rnn(x, (seq_first[0], seq_first[1]))
            return out, (h.transpose(0, 1), c.transpose(0, 1))
        out, h = self.rnn(x, seq_first[0])
        return out, (h.transpose(0, 1),)


def time_major(
    features: Tensor, state: PolicyState, episode_start: Tensor | None, owner: str
) -> tuple[Tensor, Tensor]:
    """Time-major rows ``[T * B, F]`` as ``[T, B, F]`` for a ``B``-row ``state`` (``None``: one
    step of ``T * B`` rows), and ``episode_start`` as ``[T, B]`` floats (zeros if None)."""
    rows = features.shape[0]
    batch = rows if state is None else as_tuple(state)[0].shape[0]
    if batch == 0 or rows % batch:
        raise ValueError(
            f"{owner}: {rows} observation rows is not a whole number of steps for a state of "
            f"{batch} rows (rows are time-major [T * B])"
        )
    steps = rows // batch
    starts = (
        torch.zeros(steps, batch, device=features.device)
        if episode_start is None
        else episode_start.reshape(steps, batch).to(features.device, torch.float32)
    )
    return features.reshape(steps, batch, -1), starts


class RecurrentActorCritic(ActorCriticPolicy):
    """Encoder -> sequence core -> actor/critic MLP trunks -> heads.

    ``core`` picks ``"lstm"`` or ``"gru"`` (``hidden_size`` units, ``num_layers`` layers), or
    is a callable ``input_size -> SequenceCore`` building any other core (called once more
    for a separate critic).
    ``critic`` says where the value's memory comes from: ``"separate"`` (its own core, as
    sb3-contrib's default ``enable_critic_lstm=True``), ``"shared"`` (the actor's core) or
    ``"feedforward"`` (no memory: the critic reads the encoder's features). ``hidden_sizes``
    are the trunks after the core (default ``(64,)``). ``ortho_init`` gives the trunks and heads
    orthogonal init (gains sqrt 2, 0.01 actor head, 1 value head); ``False`` keeps PyTorch's
    defaults (rl-baselines3-zoo's recurrent settings). The cores keep PyTorch's init.
    """

    applies_action_mask = True

    argument_rules: ClassVar[dict[str, Rule]] = {
        "hidden_size": count(integer=True),
        "num_layers": count(integer=True),
        "core": Satisfies(
            lambda v: v in ("lstm", "gru") or callable(v),
            "'lstm', 'gru' or a callable building a SequenceCore",
        ),
        "critic": OneOf(("separate", "shared", "feedforward")),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | None = None,
        distribution: Distribution | str | Mapping[str, Any] | None = None,
        core: CoreKind | Callable[[int], SequenceCore] = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        critic: CriticMode = "separate",
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "tanh",
        ortho_init: bool = True,
        critic_encoder: Encoder | None = None,
    ) -> None:
        super().__init__(observation_space, action_space)
        name = type(self).__name__
        if critic_encoder is not None:
            check_encoder(critic_encoder, observation_space, name)
            if critic == "shared":
                raise ValueError(
                    f"{name}: critic='shared' reads the actor's memory; a critic_encoder needs "
                    "critic='separate' or 'feedforward'"
                )
        #: the critic's own encoder (a centralised critic's view), or None to share the actor's.
        self.critic_encoder = critic_encoder
        encoder = encoder if encoder is not None else default_encoder(observation_space)
        distribution = build_primitive(
            "distribution", distribution, Distribution, name, action_space=action_space
        )
        distribution = (
            distribution if distribution is not None else default_distribution(action_space)
        )
        check_encoder(encoder, observation_space, name)
        check_distribution(distribution, action_space, name, passes_features=True)
        self.encoder = encoder
        self.distribution = distribution
        self.critic_mode = critic
        features = encoder.feature_dim
        build: Callable[[int], SequenceCore] = (
            core
            if callable(core)
            else lambda size: RecurrentCore(core, size, hidden_size, num_layers)
        )
        critic_features = critic_encoder.feature_dim if critic_encoder is not None else features
        self.core = build(features)
        self.critic_core = build(critic_features) if critic == "separate" else None
        sizes = [int(s) for s in (hidden_sizes if hidden_sizes is not None else (64,))]
        memory = self.core.output_size
        critic_in = critic_features if critic == "feedforward" else memory
        if self.critic_core is not None:
            critic_in = self.critic_core.output_size
        self.actor_trunk = mlp(memory, sizes, activation)
        self.critic_trunk = mlp(critic_in, sizes, activation)
        out_dim = sizes[-1] if sizes else memory
        distribution.bind_features(out_dim)
        critic_out = sizes[-1] if sizes else critic_in
        self.action_head = nn.Linear(out_dim, distribution.num_params)
        self.value_head = nn.Linear(critic_out, 1)
        if ortho_init:
            orthogonal_init(self.action_head, gain=0.01)
            orthogonal_init(self.value_head, gain=1.0)
        else:
            for trunk in (self.actor_trunk, self.critic_trunk):
                for layer in trunk.modules():
                    if isinstance(layer, nn.Linear):
                        layer.reset_parameters()

    def state_spec(self) -> tuple[StateSpec, ...]:
        specs = self.core.state_spec("actor")
        if self.critic_core is not None:
            specs += self.critic_core.state_spec("critic")
        return specs

    def _cores(
        self,
        obs: Obs,
        state: PolicyState,
        episode_start: Tensor | None,
        critic: bool,
        need_state: bool = True,
    ) -> tuple[Tensor, Tensor | None, StateTuple | None]:
        """Actor core outputs ``[T * B, H]``, the critic's trunk input (when ``critic``) and
        the next state (None unless ``need_state``)."""
        features = self.encoder(obs)
        rows = features.shape[0]
        seq, starts = time_major(features, state, episode_start, type(self).__name__)
        full = self.state_tuple(state, seq.shape[1])
        n_actor = len(self.core.state_spec("actor"))
        actor_out, actor_state = self.core(seq, full[:n_actor], starts, need_state)
        critic_in: Tensor | None = None
        critic_state: StateTuple | None = full[n_actor:]
        critic_features = features
        if self.critic_encoder is not None and (critic or need_state):
            critic_features = self.critic_encoder(obs)
        if self.critic_core is not None:
            critic_seq = seq
            if self.critic_encoder is not None:
                critic_seq, _ = time_major(
                    critic_features, state, episode_start, type(self).__name__
                )
            if critic:
                out, critic_state = self.critic_core(critic_seq, full[n_actor:], starts, need_state)
                critic_in = out.reshape(rows, -1)
            elif need_state:  # advance the critic's memory all the same: one whole state
                _, critic_state = self.critic_core(critic_seq, full[n_actor:], starts)
        elif critic:
            critic_in = (
                actor_out.reshape(rows, -1) if self.critic_mode == "shared" else critic_features
            )
        next_state = None
        if need_state:
            assert actor_state is not None and critic_state is not None
            next_state = actor_state + critic_state
        return actor_out.reshape(rows, -1), critic_in, next_state

    def actor_distribution(self, memory: Tensor, obs: Obs) -> ActionDistribution:
        """The action distribution from the actor core's outputs ``[T * B, H]``: trunk, head,
        and the family given the trunk's features (gSDE reads them) and the action mask."""
        latent = self.actor_trunk(memory)
        return self.distribution.from_features(
            self.action_head(latent), latent, action_mask_of(obs)
        )

    def forward(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> ActorCriticOutput:
        actor, critic_in, next_state = self._cores(obs, state, episode_start, critic=True)
        assert critic_in is not None
        dist = self.actor_distribution(actor, obs)
        value = self.value_head(self.critic_trunk(critic_in)).squeeze(-1)
        return ActorCriticOutput(dist, value, next_state)

    def value(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> Tensor:
        _, critic_in, _ = self._cores(obs, state, episode_start, critic=True, need_state=False)
        assert critic_in is not None
        out: Tensor = self.value_head(self.critic_trunk(critic_in)).squeeze(-1)
        return out

    def evaluate_actions(
        self,
        obs: Obs,
        actions: Tensor,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, ActionDistribution]:
        """As the base's, on the training path: no final state is computed, so sequences
        with episode starts inside take the padded layout (see :class:`RecurrentCore`)."""
        actor, critic_in, _ = self._cores(obs, state, episode_start, True, need_state=False)
        assert critic_in is not None
        dist = self.actor_distribution(actor, obs)
        value = self.value_head(self.critic_trunk(critic_in)).squeeze(-1)
        log_prob, entropy = log_prob_and_entropy(dist, actions)
        return log_prob, entropy, value, dist

    def action_distribution(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> tuple[ActionDistribution, PolicyState]:
        actor, _, next_state = self._cores(obs, state, episode_start, critic=False)
        return self.actor_distribution(actor, obs), next_state


@POLICIES.register("lstm_actor_critic")
class LSTMActorCritic(RecurrentActorCritic):
    """:class:`RecurrentActorCritic` with an LSTM core (state ``actor_h``, ``actor_c`` and,
    with a separate critic, ``critic_h``, ``critic_c``; each ``[B, num_layers, hidden_size]``)."""

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | None = None,
        distribution: Distribution | str | Mapping[str, Any] | None = None,
        hidden_size: int = 64,
        num_layers: int = 1,
        critic: CriticMode = "separate",
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "tanh",
        ortho_init: bool = True,
        critic_encoder: Encoder | None = None,
    ) -> None:
        super().__init__(
            observation_space, action_space, encoder, distribution, "lstm", hidden_size,
            num_layers, critic, hidden_sizes, activation, ortho_init, critic_encoder,
        )  # fmt: skip


@POLICIES.register("gru_actor_critic")
class GRUActorCritic(RecurrentActorCritic):
    """:class:`RecurrentActorCritic` with a GRU core (state ``actor_h`` and, with a separate
    critic, ``critic_h``; each ``[B, num_layers, hidden_size]``)."""

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | None = None,
        distribution: Distribution | str | Mapping[str, Any] | None = None,
        hidden_size: int = 64,
        num_layers: int = 1,
        critic: CriticMode = "separate",
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "tanh",
        ortho_init: bool = True,
        critic_encoder: Encoder | None = None,
    ) -> None:
        super().__init__(
            observation_space, action_space, encoder, distribution, "gru", hidden_size,
            num_layers, critic, hidden_sizes, activation, ortho_init, critic_encoder,
        )  # fmt: skip


__all__ = [
    "GRUActorCritic",
    "LSTMActorCritic",
    "RecurrentActorCritic",
    "RecurrentCore",
    "SegmentLayout",
    "SequenceCore",
    "time_major",
]
