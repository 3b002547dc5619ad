"""The standard on-policy actor-critic: encoder -> actor/critic trunks -> heads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gymnasium import spaces
from torch import Tensor, nn

from rlkit.backends.actor_critic_kernel import FusedActorCritic, fused_kernel
from rlkit.configurable import build_primitive
from rlkit.distributions.base import ActionDistribution, Distribution, action_mask_of
from rlkit.distributions.default import default_distribution
from rlkit.encoders.base import Encoder
from rlkit.encoders.default import default_encoder
from rlkit.encoders.mlp import mlp
from rlkit.policies.base import POLICIES, ActorCriticOutput, ActorCriticPolicy
from rlkit.spaces import is_image_space, spaces_equal
from rlkit.types import Obs, PolicyState
from rlkit.utils.nn import orthogonal_init


def check_encoder(encoder: Encoder, observation_space: spaces.Space[Any], owner: str) -> None:
    """Raise if ``encoder`` was built for another observation space than the env's."""
    if not spaces_equal(encoder.observation_space, observation_space):
        raise ValueError(
            f"{owner}: the encoder {type(encoder).__name__} was built for observation space "
            f"{encoder.observation_space!r}, but the environment's is {observation_space!r}"
        )


def check_distribution(
    dist: Distribution, action_space: spaces.Space[Any], owner: str, passes_features: bool = False
) -> None:
    """Raise if ``dist`` was built for another action space than the env's, or reads actor
    features (gSDE) that the owner (``passes_features`` False) does not give it."""
    if not spaces_equal(dist.action_space, action_space):
        raise ValueError(
            f"{owner}: the distribution {type(dist).__name__} was built for action space "
            f"{dist.action_space!r}, but the environment's is {action_space!r}"
        )
    if dist.needs_features and not passes_features:
        raise ValueError(
            f"{owner}: the distribution {type(dist).__name__} reads the actor's features, "
            f"which {owner} does not pass; use actor_critic, lstm_actor_critic, "
            "gru_actor_critic or transformer_actor_critic"
        )


@POLICIES.register("actor_critic")
class ActorCritic(ActorCriticPolicy):
    """Shared encoder, then actor and critic MLP trunks (separate by default, or one shared).

    ``hidden_sizes=None`` picks ``(64, 64)`` for vector observations and no trunk for pure image
    observations (the CNN already ends in a dense layer). Orthogonal init with the usual gains
    (sqrt 2 hidden, 0.01 actor head, 1 value head); ``ortho_init=False`` keeps PyTorch's default
    init for the trunks and heads instead (Stable-Baselines3's ``ortho_init=False``, which
    several rl-baselines3-zoo settings use). The encoder keeps its own init either way.
    """

    applies_action_mask = True

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | str | Mapping[str, Any] | None = None,
        distribution: Distribution | str | Mapping[str, Any] | None = None,
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "tanh",
        share_trunk: bool = False,
        ortho_init: bool = True,
    ) -> None:
        super().__init__(observation_space, action_space)
        # an id or spec (a YAML preset's nested {id: diag_gaussian, log_std_init: -2}) is
        # built here, where the spaces are known
        encoder = build_primitive(
            "encoder", encoder, Encoder, "ActorCritic", observation_space=observation_space
        )
        distribution = build_primitive(
            "distribution", distribution, Distribution, "ActorCritic", action_space=action_space
        )
        encoder = encoder if encoder is not None else default_encoder(observation_space)
        distribution = (
            distribution if distribution is not None else default_distribution(action_space)
        )
        check_encoder(encoder, observation_space, "ActorCritic")
        check_distribution(distribution, action_space, "ActorCritic", passes_features=True)
        if hidden_sizes is None:
            hidden_sizes = () if is_image_space(observation_space) else (64, 64)
        self.encoder = encoder
        self.distribution = distribution
        self.share_trunk = share_trunk
        sizes = [int(s) for s in hidden_sizes]
        self.actor_trunk = mlp(encoder.feature_dim, sizes, activation)
        self.critic_trunk = (
            self.actor_trunk if share_trunk else mlp(encoder.feature_dim, sizes, activation)
        )
        out_dim = sizes[-1] if sizes else encoder.feature_dim
        distribution.bind_features(out_dim)
        self.action_head = orthogonal_init(nn.Linear(out_dim, distribution.num_params), gain=0.01)
        self.value_head = orthogonal_init(nn.Linear(out_dim, 1), gain=1.0)
        if not ortho_init:
            for part in (self.actor_trunk, self.critic_trunk, self.action_head, self.value_head):
                for layer in part.modules():
                    if isinstance(layer, nn.Linear):
                        layer.reset_parameters()

    def forward(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> ActorCriticOutput:
        features = self.encoder(obs)
        actor = self.actor_trunk(features)
        critic = actor if self.share_trunk else self.critic_trunk(features)
        dist = self.distribution.from_features(self.action_head(actor), actor, action_mask_of(obs))
        return ActorCriticOutput(dist, self.value_head(critic).squeeze(-1), None)

    def action_distribution(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> tuple[ActionDistribution, PolicyState]:
        actor = self.actor_trunk(self.encoder(obs))
        params = self.action_head(actor)
        return self.distribution.from_features(params, actor, action_mask_of(obs)), None

    def value(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> Tensor:
        out: Tensor = self.value_head(self.critic_trunk(self.encoder(obs))).squeeze(-1)
        return out

    def fused_kernel(self) -> FusedActorCritic | None:
        """The ``fast`` backend's hand-written CPU kernel for this policy's maths (acting, and
        gradients of losses in log-prob/entropy/value), or None where it does not apply (a
        subclass that overrides forward, value, action_distribution or evaluate_actions has
        none); see :mod:`rlkit.backends.actor_critic_kernel`. The module's forward is
        unchanged."""
        return fused_kernel(self)
