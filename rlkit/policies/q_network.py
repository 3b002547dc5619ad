"""Q-value policies for discrete actions (DQN and its variants): greedy acting on ``Q(s, .)``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from gymnasium import spaces
from torch import Tensor, nn

from rlkit.configurable import build_primitive
from rlkit.encoders.base import Encoder
from rlkit.encoders.default import default_encoder
from rlkit.encoders.mlp import mlp
from rlkit.policies.actor_critic import check_encoder
from rlkit.policies.base import POLICIES, Policy
from rlkit.policies.ensemble import mlp_head
from rlkit.spaces import check_space, is_image_space
from rlkit.types import Obs, PolicyState


class QPolicy(Policy, ABC):
    """Base of value-based policies over a ``Discrete(n, start)`` action space.

    :meth:`q_values` gives ``Q(s, a)`` for every action, ``[B, n]``. :meth:`act` is greedy
    whether or not ``deterministic`` is set: exploration (epsilon-greedy, with its explicit
    schedule) belongs to the agent that collects experience, so the policy, its evaluation and
    its export are the same function.
    """

    def __init__(
        self, observation_space: spaces.Space[Any], action_space: spaces.Space[Any]
    ) -> None:
        check_space(action_space, (spaces.Discrete,), "action space", type(self).__name__)
        super().__init__(observation_space, action_space)
        assert isinstance(action_space, spaces.Discrete)
        self.num_actions = int(action_space.n)
        self.action_start = int(action_space.start)

    @abstractmethod
    def q_values(self, obs: Obs) -> Tensor:
        """``Q(s, a)`` for all actions: ``[B, num_actions]``."""

    def forward(self, obs: Obs) -> Tensor:
        return self.q_values(obs)

    def act(
        self,
        obs: Obs,
        deterministic: bool = False,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, PolicyState]:
        greedy = self.q_values(obs).argmax(-1)
        return (greedy + self.action_start if self.action_start else greedy), None


def q_trunk(
    policy: QPolicy,
    observation_space: spaces.Space[Any],
    encoder: Encoder | str | dict[str, Any] | None,
    hidden_sizes: Sequence[int] | None,
) -> tuple[Encoder, list[int]]:
    """The encoder (given, or the default for the space) and hidden sizes of a Q-network:
    ``hidden_sizes=None`` is ``(64, 64)`` for vector observations and none for images."""
    name = type(policy).__name__
    enc = build_primitive("encoder", encoder, Encoder, name, observation_space=observation_space)
    enc = enc if enc is not None else default_encoder(observation_space)
    check_encoder(enc, observation_space, name)
    if hidden_sizes is None:
        hidden_sizes = () if is_image_space(observation_space) else (64, 64)
    return enc, [int(s) for s in hidden_sizes]


@POLICIES.register("q_network")
class QNetwork(QPolicy):
    """Encoder, MLP trunk and a linear Q head; optionally a dueling head.

    ``hidden_sizes=None`` picks ``(64, 64)`` for vector observations (Stable-Baselines3's DQN
    default) and no trunk for images (the CNN already ends in a dense layer). With ``dueling``
    (Wang et al. 2016) the last hidden layer splits into a value stream and an advantage stream,
    combined as ``V(s) + A(s, a) - mean_a A(s, a)``; without hidden layers both streams are
    linear heads on the features. Layers use PyTorch's default initialisation.
    """

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | str | dict[str, Any] | None = None,
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        dueling: bool = False,
    ) -> None:
        super().__init__(observation_space, action_space)
        enc, sizes = q_trunk(self, observation_space, encoder, hidden_sizes)
        self.encoder = enc
        self.dueling = bool(dueling)
        n = self.num_actions
        self.value_head: nn.Module | None = None
        if not self.dueling:
            self.head: nn.Module = mlp_head(enc.feature_dim, sizes, n, activation)
            self.trunk: nn.Module = nn.Identity()
        else:
            shared, stream = sizes[:-1], sizes[-1:]
            self.trunk = mlp(enc.feature_dim, shared, activation) if shared else nn.Identity()
            for layer in self.trunk.modules():
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()  # PyTorch's default init, as the heads
            width = shared[-1] if shared else enc.feature_dim
            self.head = mlp_head(width, stream, n, activation)
            self.value_head = mlp_head(width, stream, 1, activation)

    def q_values(self, obs: Obs) -> Tensor:
        hidden = self.trunk(self.encoder(obs))
        q: Tensor = self.head(hidden)
        if self.value_head is None:
            return q
        value: Tensor = self.value_head(hidden)
        return value + q - q.mean(-1, keepdim=True)
