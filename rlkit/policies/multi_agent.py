"""Actor-critic for multi-agent rows: a shared actor on each agent's own observation and a
critic that is centralised (the global state) or decentralised (the agent's observation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.configurable import build_primitive
from rlkit.distributions.base import ActionDistribution, Distribution, action_mask_of
from rlkit.distributions.default import default_distribution
from rlkit.encoders.base import Encoder
from rlkit.encoders.mlp import Identity, mlp
from rlkit.policies.actor_critic import check_distribution
from rlkit.policies.base import POLICIES, ActorCriticOutput, ActorCriticPolicy
from rlkit.types import Obs, PolicyState
from rlkit.utils.nn import orthogonal_init

#: the row keys this policy reads (see :mod:`rlkit.envs.agent_rows`).
OBS_KEY, STATE_KEY, AGENT_ID_KEY = "obs", "state", "agent_id"


def _input_space(observation_space: spaces.Space[Any], key: str, agent_id: bool) -> spaces.Box:
    """The flat Box a network reads: the row's ``key``, with the agent id appended."""
    if not isinstance(observation_space, spaces.Dict) or key not in observation_space.spaces:
        keys = list(observation_space.spaces) if isinstance(observation_space, spaces.Dict) else []
        raise ValueError(
            f"MultiAgentActorCritic: the observation needs a {key!r} entry (multi-agent rows from "
            f"rlkit.envs.make_vec_env on a PettingZoo env); got keys {keys or observation_space!r}"
        )
    size = spaces.flatdim(observation_space.spaces[key])
    if agent_id:
        size += spaces.flatdim(observation_space.spaces[AGENT_ID_KEY])
    return spaces.Box(-float("inf"), float("inf"), shape=(size,))


@POLICIES.register("multi_agent_actor_critic")
class MultiAgentActorCritic(ActorCriticPolicy):
    """MAPPO's and IPPO's network (Yu et al. 2022): one actor shared by all agents, reading the
    agent's own ``obs`` (plus its one-hot ``agent_id`` when ``agent_id``), and a critic reading
    the global ``state`` (``centralised_critic``, MAPPO) or the agent's ``obs`` (IPPO).

    Each side is an encoder (``encoder``/``critic_encoder``: an object, id or spec built for the
    flat input; default: the input itself), an optional ``LayerNorm`` of the input
    (``feature_norm``, MAPPO's feature normalisation) and an MLP trunk (``hidden_sizes``,
    ``activation``; MAPPO's 64-64 ReLU). Legal-action masks (``action_mask``) enter the
    distribution. Orthogonal init: gain 0.01 on the actor head, 1 on the value head.
    """

    applies_action_mask = True

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | str | Mapping[str, Any] | None = None,
        critic_encoder: Encoder | str | Mapping[str, Any] | None = None,
        distribution: Distribution | str | Mapping[str, Any] | None = None,
        hidden_sizes: Sequence[int] | None = (64, 64),
        activation: str = "relu",
        centralised_critic: bool = True,
        agent_id: bool = True,
        feature_norm: bool = True,
    ) -> None:
        super().__init__(observation_space, action_space)
        self.centralised_critic = bool(centralised_critic)
        self.agent_id = bool(agent_id)
        self.critic_key = STATE_KEY if self.centralised_critic else OBS_KEY
        actor_space = _input_space(observation_space, OBS_KEY, self.agent_id)
        critic_space = _input_space(observation_space, self.critic_key, self.agent_id)
        owner = "MultiAgentActorCritic"
        self.encoder: Encoder = build_primitive(
            "encoder", encoder, Encoder, owner, observation_space=actor_space
        ) or Identity(actor_space)
        self.critic_encoder: Encoder = build_primitive(
            "encoder", critic_encoder, Encoder, owner, observation_space=critic_space
        ) or Identity(critic_space)
        dist = build_primitive(
            "distribution", distribution, Distribution, owner, action_space=action_space
        )
        self.distribution = dist if dist is not None else default_distribution(action_space)
        check_distribution(self.distribution, action_space, owner)
        sizes = [int(s) for s in (hidden_sizes or ())]
        self.actor_norm = _norm(self.encoder.feature_dim, feature_norm)
        self.critic_norm = _norm(self.critic_encoder.feature_dim, feature_norm)
        self.actor_trunk = mlp(self.encoder.feature_dim, sizes, activation)
        self.critic_trunk = mlp(self.critic_encoder.feature_dim, sizes, activation)
        actor_out = sizes[-1] if sizes else self.encoder.feature_dim
        critic_out = sizes[-1] if sizes else self.critic_encoder.feature_dim
        self.action_head = orthogonal_init(
            nn.Linear(actor_out, self.distribution.num_params), gain=0.01
        )
        self.value_head = orthogonal_init(nn.Linear(critic_out, 1), gain=1.0)

    def _input(self, obs: Obs, key: str) -> Tensor:
        assert isinstance(obs, dict), "MultiAgentActorCritic reads dict observations"
        x = obs[key].flatten(1).float()
        return torch.cat([x, obs[AGENT_ID_KEY].float()], dim=-1) if self.agent_id else x

    def _actor_params(self, obs: Obs) -> Tensor:
        features = self.actor_norm(self.encoder(self._input(obs, OBS_KEY)))
        out: Tensor = self.action_head(self.actor_trunk(features))
        return out

    def forward(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> ActorCriticOutput:
        dist = self.distribution.masked(self._actor_params(obs), action_mask_of(obs))
        return ActorCriticOutput(dist, self.value(obs), None)

    def action_distribution(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> tuple[ActionDistribution, PolicyState]:
        return self.distribution.masked(self._actor_params(obs), action_mask_of(obs)), None

    def value(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> Tensor:
        features = self.critic_norm(self.critic_encoder(self._input(obs, self.critic_key)))
        out: Tensor = self.value_head(self.critic_trunk(features)).squeeze(-1)
        return out


def _norm(size: int, enabled: bool) -> nn.Module:
    return nn.LayerNorm(size) if enabled else nn.Identity()


def groups_by_prefix(agents: Sequence[str]) -> list[int]:
    """Group indices of agent names by their prefix (the name without a trailing ``_<n>``),
    in order of first appearance: ``["adversary_0", "adversary_1", "agent_0"]`` -> ``[0, 0,
    1]``."""
    prefixes: dict[str, int] = {}
    out = []
    for name in agents:
        head, _, tail = name.rpartition("_")
        key = head if head and tail.isdigit() else name
        out.append(prefixes.setdefault(key, len(prefixes)))
    return out


@POLICIES.register("grouped_actor_critic")
class GroupedActorCritic(ActorCriticPolicy):
    """Per-group policies on multi-agent rows: agents of one group share a
    :class:`MultiAgentActorCritic` (its weights), each group has its own (e.g. simple_tag's
    adversaries and good agents). ``groups`` gives each agent's group index, in the env's agent
    order (the ``agent_id`` one-hot); the other arguments go to every group's network.

    Every group's network runs on the batch and each row takes its own group's outputs, so
    training, evaluation and export need nothing else. An ``encoder`` given as an object is
    shared by the groups; an id or spec builds one per group. The action distribution must have no
    parameters of its own (categorical families: discrete actions).
    """

    applies_action_mask = True

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        groups: Sequence[int],
        **member: Any,
    ) -> None:
        super().__init__(observation_space, action_space)
        agents = (
            spaces.flatdim(observation_space[AGENT_ID_KEY])
            if isinstance(observation_space, spaces.Dict)
            and AGENT_ID_KEY in observation_space.spaces
            else None
        )
        index = [int(g) for g in groups]
        if agents is None or len(index) != agents:
            raise ValueError(
                f"GroupedActorCritic: groups={list(groups)!r} needs one group index per agent "
                f"({agents} agents in the observation's agent_id)"
            )
        if sorted(set(index)) != list(range(max(index) + 1)):
            raise ValueError(
                f"GroupedActorCritic: groups={index!r} must number the groups 0, 1, ... "
                "without gaps"
            )
        self.members = nn.ModuleList(
            MultiAgentActorCritic(observation_space, action_space, **member)
            for _ in range(max(index) + 1)
        )
        self.distribution = self.members[0].distribution  # type: ignore[assignment]
        if any(True for _ in self.distribution.parameters()):
            raise ValueError(
                "GroupedActorCritic: the action distribution has parameters of its own (a "
                "state-independent std); per-group policies support discrete actions"
            )
        self.register_buffer("group_of", torch.as_tensor(index, dtype=torch.int64))
        self.group_of: Tensor

    def _pick(self, obs: Obs, outputs: list[Tensor]) -> Tensor:
        """Each row's own group's output from every group's ``outputs``."""
        assert isinstance(obs, dict), "GroupedActorCritic reads dict observations"
        group = self.group_of[obs[AGENT_ID_KEY].argmax(-1)]
        stacked = torch.stack(outputs)
        return stacked[group, torch.arange(stacked.shape[1], device=stacked.device)]

    def _params(self, obs: Obs) -> Tensor:
        return self._pick(obs, [m._actor_params(obs) for m in self.members])  # type: ignore[operator]

    def forward(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> ActorCriticOutput:
        dist = self.distribution.masked(self._params(obs), action_mask_of(obs))
        return ActorCriticOutput(dist, self.value(obs), None)

    def action_distribution(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> tuple[ActionDistribution, PolicyState]:
        return self.distribution.masked(self._params(obs), action_mask_of(obs)), None

    def value(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> Tensor:
        return self._pick(obs, [m.value(obs) for m in self.members])  # type: ignore[operator]
