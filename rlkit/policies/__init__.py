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

__all__ = [
    "POLICIES",
    "ActorCritic",
    "ActorCriticOutput",
    "ActorCriticPolicy",
    "AuxiliaryActorCritic",
    "DecoupledActorCritic",
    "Policy",
    "SeparateActorCritic",
    "check_distribution",
    "check_encoder",
]
