"""Multi-agent PPO (Yu et al. 2022, "The Surprising Effectiveness of PPO in Cooperative
Multi-Agent Games"): MAPPO with a centralised critic, IPPO with a decentralised one."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from rlkit.config.rules import OneOf, Rule
from rlkit.encoders.dict import DictEncoder
from rlkit.envs.agent_rows import is_multi_agent
from rlkit.normalization import ValueNormalizer
from rlkit.policies import (
    ActorCriticPolicy,
    GroupedActorCritic,
    GRUActorCritic,
    LSTMActorCritic,
    MultiAgentActorCritic,
)
from rlkit.policies.multi_agent import groups_by_prefix
from rlkit.prototypes import AGENTS

from .ppo import PPO, PPOConfig


@dataclasses.dataclass
class MAPPOConfig(PPOConfig):
    """MAPPO's MPE settings (the authors' ``on-policy`` code): 25-step rollouts, one full
    batch, 10 epochs, lr 7e-4, entropy 0.01, gradient-norm clip 10, value normalisation."""

    #: rollout length per copy of the env (MPE episodes are 25 steps).
    num_steps: int = 25
    #: minibatch size in agent steps; larger than any rollout: one full batch (the
    #: reference's num_mini_batch=1).
    batch_size: int = 1_000_000
    #: passes over each rollout.
    num_epochs: int = 10
    #: learning rate of actor and critic.
    lr: float = 7e-4
    #: weight of the entropy bonus.
    ent_coef: float = 0.01
    #: weight of the value loss.
    vf_coef: float = 1.0
    #: global gradient-norm clip.
    max_grad_norm: float | None = 10.0
    #: the critic reads the global state (MAPPO); False: the agent's own observation (IPPO).
    centralised_critic: bool = True
    #: the critic predicts values normalised by running return statistics (MAPPO's ValueNorm).
    normalize_value: bool = True
    #: recurrent MAPPO: "lstm" or "gru" cores for actor and critic (each on its own inputs);
    #: None: feed-forward.
    recurrent: str | None = None
    #: per-group policies: agents whose names differ only in a trailing "_<n>" share a
    #: network, each group has its own (GroupedActorCritic); False: one network for all.
    group_policies: bool = False

    rules: ClassVar[dict[str, Rule]] = {"recurrent": OneOf(("lstm", "gru"), none=True)}


@AGENTS.register("mappo")
class MAPPO(PPO):
    """PPO over multi-agent rows (:func:`rlkit.envs.make_vec_env` on a PettingZoo env): one
    policy shared by the agents (with agent-id features), a critic on the global state, value
    normalisation. Agents that are gone or wait for their turn are left out of returns and
    the loss (:meth:`~rlkit.prototypes.OnPolicyAgent.active_steps`); illegal actions are
    masked. Any :class:`~rlkit.policies.ActorCriticPolicy` can replace the default
    :class:`~rlkit.policies.MultiAgentActorCritic`.
    """

    Config = MAPPOConfig
    config: MAPPOConfig

    def __init__(self, env: Any, config: Any = None, **kwargs: Any) -> None:
        if not is_multi_agent(env):
            raise ValueError(
                f"{type(self).__name__} trains multi-agent rows: build the env from a PettingZoo "
                "env (make_vec_env('mpe2:simple_spread_v3'), rlkit train --env "
                "mpe2:simple_spread_v3)"
            )
        super().__init__(env, config, **kwargs)
        if self.config.normalize_value:
            self.value_normalizer = ValueNormalizer()
            self.add_module("value_normalizer", self.value_normalizer)

    def build_actor_critic(self, policy: Any, encoder: Any, distribution: Any) -> ActorCriticPolicy:
        """``policy`` as given, or a :class:`MultiAgentActorCritic` (centralised per config,
        also when named by id or a spec that does not say)."""
        if policy == "multi_agent_actor_critic":
            policy = {"id": policy}
        if isinstance(policy, dict) and policy.get("id") == "multi_agent_actor_critic":
            policy = {"centralised_critic": self.config.centralised_critic, **policy}
        if policy is not None:
            return super().build_actor_critic(policy, encoder, distribution)
        if self.config.group_policies:
            if self.config.recurrent is not None:
                raise ValueError(f"{type(self).__name__}: group_policies are feed-forward")
            return GroupedActorCritic(
                self.observation_space, self.action_space, groups_by_prefix(self.env.agents),
                encoder=encoder, distribution=distribution,
                centralised_critic=self.config.centralised_critic,
            )  # fmt: skip
        if self.config.recurrent is not None:
            return recurrent_actor_critic(
                self.config.recurrent, self.observation_space, self.action_space,
                self.config.centralised_critic,
            )  # fmt: skip
        return MultiAgentActorCritic(
            self.observation_space,
            self.action_space,
            encoder=encoder,
            distribution=distribution,
            centralised_critic=self.config.centralised_critic,
        )


def recurrent_actor_critic(
    core: str, observation_space: Any, action_space: Any, centralised: bool
) -> ActorCriticPolicy:
    """Recurrent MAPPO's network: an LSTM/GRU actor on the agent's observation and id, and a
    critic with its own core on the global state (or the observation) and id."""
    actor_keys = ["obs", "agent_id"]
    critic_keys = ["state" if centralised else "obs", "agent_id"]
    cls = LSTMActorCritic if core == "lstm" else GRUActorCritic
    return cls(
        observation_space, action_space, encoder=DictEncoder(observation_space, keys=actor_keys),
        critic="separate", critic_encoder=DictEncoder(observation_space, keys=critic_keys),
    )  # fmt: skip


@dataclasses.dataclass
class IPPOConfig(MAPPOConfig):
    """IPPO: MAPPO's settings with a decentralised critic (de Witt et al. 2020)."""

    #: the critic reads the agent's own observation.
    centralised_critic: bool = False


@AGENTS.register("ippo")
class IPPO(MAPPO):
    """Independent PPO: each agent's critic sees only its own observation (shared weights)."""

    Config = IPPOConfig
    config: IPPOConfig
