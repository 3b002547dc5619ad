"""Policies: encoder + heads + distribution, with the acting path used everywhere."""

from rlkit.policies.actor_critic import ActorCritic, check_distribution, check_encoder
from rlkit.policies.auxiliary import AuxiliaryActorCritic
from rlkit.policies.base import (
    POLICIES,
    ActorCriticOutput,
    ActorCriticPolicy,
    Policy,
)
from rlkit.policies.decoupled import DecoupledActorCritic, SeparateActorCritic
from rlkit.policies.drqv2 import DrQv2ActorCritic
from rlkit.policies.ensemble import DenseStack, EnsembleLinear, EnsembleMLP
from rlkit.policies.q_network import QNetwork, QPolicy
from rlkit.policies.quantile_q_network import QuantileQNetwork
from rlkit.policies.twin_q import (
    CategoricalActorCritic,
    ContinuousActorCritic,
    DeterministicActorCritic,
    OffPolicyActorCritic,
    SquashedGaussianActorCritic,
)

__all__ = [
    "POLICIES",
    "ActorCritic",
    "ActorCriticOutput",
    "ActorCriticPolicy",
    "AuxiliaryActorCritic",
    "CategoricalActorCritic",
    "ContinuousActorCritic",
    "DecoupledActorCritic",
    "DenseStack",
    "DeterministicActorCritic",
    "DrQv2ActorCritic",
    "EnsembleLinear",
    "EnsembleMLP",
    "OffPolicyActorCritic",
    "Policy",
    "QNetwork",
    "QPolicy",
    "QuantileQNetwork",
    "SeparateActorCritic",
    "SquashedGaussianActorCritic",
    "check_distribution",
    "check_encoder",
]
