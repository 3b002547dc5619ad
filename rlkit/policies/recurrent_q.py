"""Recurrent Q-networks (R2D2): encoder -> sequence core -> Q head, greedy acting with state."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from gymnasium import spaces
from torch import Tensor

from rlkit.config.rules import Rule, Satisfies, count, non_negative
from rlkit.encoders.base import Encoder
from rlkit.policies.base import POLICIES
from rlkit.policies.ensemble import mlp_head
from rlkit.policies.q_network import QPolicy, q_trunk
from rlkit.policies.recurrent import CoreKind, RecurrentCore, SequenceCore, time_major
from rlkit.policies.state import StateSpec, StateTuple
from rlkit.types import Obs, PolicyState
from rlkit.utils.noisy import make_noisy


@POLICIES.register("recurrent_q_network")
class RecurrentQNetwork(QPolicy):
    """Encoder -> sequence core -> MLP head with one Q-value per action (R2D2's network).

    ``core`` is ``"lstm"`` or ``"gru"`` (``hidden_size`` units, ``num_layers`` layers) or a
    callable ``input_size -> SequenceCore`` (a :class:`~rlkit.policies.TransformerCore`, or
    your own). ``hidden_sizes`` are the head's layers after the core (default ``(64,)``);
    ``dueling`` splits them into value and advantage streams (as R2D2); ``noisy`` > 0 makes
    the head's layers NoisyNet layers. The state is named ``q_*`` (``q_h``, ``q_c`` for an
    LSTM), batch-first, reset where ``episode_start`` is 1 (:mod:`rlkit.policies.state`).

    :meth:`q_sequence` takes ``T * B`` time-major rows and a ``B``-row state (what training
    on replayed sequences does); :meth:`act` is one step, greedy, returning the next state.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        "hidden_size": count(integer=True),
        "num_layers": count(integer=True),
        "core": Satisfies(
            lambda v: v in ("lstm", "gru") or callable(v),
            "'lstm', 'gru' or a callable building a SequenceCore",
        ),
        "noisy": non_negative(),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | str | dict[str, Any] | None = None,
        core: CoreKind | Callable[[int], SequenceCore] = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        dueling: bool = False,
        noisy: float = 0.0,
    ) -> None:
        super().__init__(observation_space, action_space)
        sizes = (64,) if hidden_sizes is None else hidden_sizes
        self.encoder, head_sizes = q_trunk(self, observation_space, encoder, sizes)
        width = self.encoder.feature_dim
        self.core = (
            core(width)
            if callable(core)
            else RecurrentCore(core, width, int(hidden_size), int(num_layers))
        )
        memory = self.core.output_size
        self.dueling, self.noisy = bool(dueling), float(noisy)
        self.head = mlp_head(memory, head_sizes, self.num_actions, activation)
        self.value_head = mlp_head(memory, head_sizes, 1, activation) if self.dueling else None
        if self.noisy:
            for part in (self.head, self.value_head):
                if part is not None:
                    make_noisy(part, self.noisy)

    def state_spec(self) -> tuple[StateSpec, ...]:
        return self.core.state_spec("q")

    def q_sequence(
        self,
        obs: Obs,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
        need_state: bool = True,
    ) -> tuple[Tensor, StateTuple | None]:
        """``Q(s_t, .)`` for ``T * B`` time-major rows, ``[T * B, num_actions]``, and the state
        after the last step (None unless ``need_state``). ``state=None``: one step of fresh
        episodes."""
        name = type(self).__name__
        features = self.encoder(obs)
        seq, starts = time_major(features, state, episode_start, name)
        full = self.state_tuple(state, seq.shape[1])
        out, next_state = self.core(seq, full, starts, need_state)
        hidden = out.reshape(features.shape[0], -1)
        q: Tensor = self.head(hidden)
        if self.value_head is not None:
            q = self.value_head(hidden) + q - q.mean(-1, keepdim=True)
        return q, next_state

    def q_values(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> Tensor:
        return self.q_sequence(obs, state, episode_start, need_state=False)[0]

    def value(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> Tensor:
        return self.q_values(obs, state, episode_start).amax(-1)

    def act(
        self,
        obs: Obs,
        deterministic: bool = False,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, PolicyState]:
        q, next_state = self.q_sequence(obs, state, episode_start)
        greedy = q.argmax(-1)
        return (greedy + self.action_start if self.action_start else greedy), next_state


@POLICIES.register("lstm_q_network")
class LSTMQNetwork(RecurrentQNetwork):
    """:class:`RecurrentQNetwork` with an LSTM core (state ``q_h``, ``q_c``)."""

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | str | dict[str, Any] | None = None,
        hidden_size: int = 64,
        num_layers: int = 1,
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        dueling: bool = False,
        noisy: float = 0.0,
    ) -> None:
        super().__init__(
            observation_space, action_space, encoder, "lstm", hidden_size, num_layers,
            hidden_sizes, activation, dueling, noisy,
        )  # fmt: skip


@POLICIES.register("gru_q_network")
class GRUQNetwork(RecurrentQNetwork):
    """:class:`RecurrentQNetwork` with a GRU core (state ``q_h``)."""

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | str | dict[str, Any] | None = None,
        hidden_size: int = 64,
        num_layers: int = 1,
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        dueling: bool = False,
        noisy: float = 0.0,
    ) -> None:
        super().__init__(
            observation_space, action_space, encoder, "gru", hidden_size, num_layers,
            hidden_sizes, activation, dueling, noisy,
        )  # fmt: skip


__all__ = ["GRUQNetwork", "LSTMQNetwork", "RecurrentQNetwork"]
