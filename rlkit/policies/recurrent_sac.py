"""A SAC policy with memory: separate sequence cores for the actor and the critics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Rule, Satisfies, count
from rlkit.encoders.base import Encoder
from rlkit.policies.base import POLICIES
from rlkit.policies.ensemble import EnsembleMLP, mlp_head
from rlkit.policies.recurrent import CoreKind, RecurrentCore, SequenceCore, time_major
from rlkit.policies.state import StateSpec, StateTuple
from rlkit.policies.twin_q import PartSpec, SquashedGaussianActorCritic
from rlkit.types import Obs, PolicyState


@POLICIES.register("recurrent_sac_policy")
class RecurrentSquashedGaussianActorCritic(SquashedGaussianActorCritic):
    """:class:`~rlkit.policies.SquashedGaussianActorCritic` with memory: encoder -> actor core
    -> tanh-Gaussian head, and encoder -> critic core -> twin critics on ``[memory, action]``.

    Actor and critics keep separate memories (a critic's memory is trained by the TD loss, the
    actor's by the actor loss, which sees the encoder's features detached: Ni et al. 2022
    found shared memories unstable). ``core`` is ``"lstm"`` or ``"gru"`` (``hidden_size``
    units, ``num_layers`` layers) or a callable ``input_size -> SequenceCore`` (called once
    per memory). The state is ``actor_*`` then ``critic_*`` tensors, batch-first, reset
    where ``episode_start`` is 1; acting advances both memories so the replay can store the
    state entering every step.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        "hidden_size": count(integer=True),
        "num_layers": count(integer=True),
        "core": Satisfies(
            lambda v: v in ("lstm", "gru") or callable(v),
            "'lstm', 'gru' or a callable building a SequenceCore",
        ),
    }

    critic_core: SequenceCore

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | PartSpec = None,
        hidden_sizes: Sequence[int] | None = None,
        critic_hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        num_critics: int = 2,
        log_std_bounds: tuple[float, float] = (-20.0, 2.0),
        core: CoreKind | Callable[[int], SequenceCore] = "lstm",
        hidden_size: int = 128,
        num_layers: int = 1,
    ) -> None:
        # the critic's core is built by make_critic, which the base constructor calls
        self._build_core: Callable[[int], SequenceCore] = (
            core
            if callable(core)
            else lambda size: RecurrentCore(core, size, int(hidden_size), int(num_layers))
        )
        super().__init__(
            observation_space, action_space, encoder, hidden_sizes, critic_hidden_sizes,
            activation, num_critics, log_std_bounds,
        )  # fmt: skip
        self.actor_core = self._build_core(self.encoder.feature_dim)
        self.actor = mlp_head(
            self.actor_core.output_size, self.hidden_sizes, 2 * self.action_dim, activation
        )

    def make_critic(self, in_features: int, out_features: int) -> nn.Module:
        self.critic_core = self._build_core(self.encoder.feature_dim)
        width = self.critic_core.output_size + self.critic_action_dim()
        return EnsembleMLP(
            self.num_critics, width, self.critic_hidden_sizes, out_features, self.activation
        )

    def state_spec(self) -> tuple[StateSpec, ...]:
        return self.actor_core.state_spec("actor") + self.critic_core.state_spec("critic")

    def memories(
        self,
        obs: Obs,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
        need_state: bool = True,
    ) -> tuple[Tensor, Tensor, StateTuple | None]:
        """Actor and critic memories ``[T * B, H]`` for ``T * B`` time-major rows and a
        ``B``-row state, and the next state (None unless ``need_state``). The actor's core
        reads the encoder's features detached (the critic loss trains the encoder)."""
        name = type(self).__name__
        features = self.encoder(obs)
        seq, starts = time_major(features, state, episode_start, name)
        full = self.state_tuple(state, seq.shape[1])
        split = len(self.actor_core.state_spec("actor"))
        actor, actor_state = self.actor_core(seq.detach(), full[:split], starts, need_state)
        critic, critic_state = self.critic_core(seq, full[split:], starts, need_state)
        rows = features.shape[0]
        next_state = None
        if need_state:
            assert actor_state is not None and critic_state is not None
            next_state = actor_state + critic_state
        return actor.reshape(rows, -1), critic.reshape(rows, -1), next_state

    def features(self, obs: Obs) -> Tensor:
        """The actor's memory after one step of fresh episodes (the feed-forward API;
        sequences go through :meth:`memories`)."""
        return self.memories(obs, need_state=False)[0]

    def actor_modules(self) -> list[nn.Module]:
        return [self.actor_core, self.actor]

    def critic_modules(self) -> list[nn.Module]:
        return [self.encoder, self.critic_core, self.critic]

    def forward(self, obs: Obs) -> Tensor:
        return self.act(obs, deterministic=True)[0]

    def act(
        self,
        obs: Obs,
        deterministic: bool = False,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, PolicyState]:
        actor, _, next_state = self.memories(obs, state, episode_start)
        dist = self.distribution(self.actor(actor))
        return self.to_env(dist.mode() if deterministic else dist.sample()), next_state

    def act_numpy(self, obs: Any, deterministic: bool = False) -> None:
        """Never: acting needs the state (:meth:`act`)."""
        return None


__all__ = ["RecurrentSquashedGaussianActorCritic"]
