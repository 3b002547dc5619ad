"""Policies: encoder + heads + distribution, with the acting path used everywhere."""

from rlkit.policies.actor_critic import ActorCritic, check_distribution, check_encoder
from rlkit.policies.auxiliary import AuxiliaryActorCritic
from rlkit.policies.base import (
    POLICIES,
    ActorCriticOutput,
    ActorCriticPolicy,
    Policy,
)
from rlkit.policies.batch_norm import BatchNormActorCritic, BatchRenormEnsembleMLP
from rlkit.policies.categorical_q_network import CategoricalQNetwork
from rlkit.policies.causal_lm import CausalLMPolicy, TokenEvaluation
from rlkit.policies.decoupled import DecoupledActorCritic, SeparateActorCritic
from rlkit.policies.drqv2 import DrQv2ActorCritic
from rlkit.policies.ensemble import DenseStack, EnsembleLinear, EnsembleMLP
from rlkit.policies.gsde import (
    GSDEActor,
    GSDEActorCritic,
    GSDEQuantileActorCritic,
    StateDependentNoise,
)
from rlkit.policies.gsde_on_policy import (
    GSDEGaussianDist,
    GSDEOnPolicyActorCritic,
    StateDependentGaussian,
)
from rlkit.policies.implicit_quantile_network import ImplicitQuantileNetwork
from rlkit.policies.multi_agent import GroupedActorCritic, MultiAgentActorCritic
from rlkit.policies.q_network import ActionValueNetwork, QNetwork, QPolicy
from rlkit.policies.quantile_critic import QuantileActorCritic
from rlkit.policies.quantile_q_network import QuantileQNetwork
from rlkit.policies.recurrent import (
    GRUActorCritic,
    LSTMActorCritic,
    RecurrentActorCritic,
    RecurrentCore,
    SequenceCore,
)
from rlkit.policies.recurrent_q import GRUQNetwork, LSTMQNetwork, RecurrentQNetwork
from rlkit.policies.recurrent_sac import RecurrentSquashedGaussianActorCritic
from rlkit.policies.state import StateSpec
from rlkit.policies.transformer import TransformerActorCritic, TransformerCore
from rlkit.policies.twin_q import (
    CategoricalActorCritic,
    ContinuousActorCritic,
    DeterministicActorCritic,
    OffPolicyActorCritic,
    SquashedGaussianActorCritic,
)

__all__ = [
    "POLICIES",
    "ActionValueNetwork",
    "ActorCritic",
    "ActorCriticOutput",
    "ActorCriticPolicy",
    "AuxiliaryActorCritic",
    "BatchNormActorCritic",
    "BatchRenormEnsembleMLP",
    "CategoricalActorCritic",
    "CategoricalQNetwork",
    "CausalLMPolicy",
    "ContinuousActorCritic",
    "DecoupledActorCritic",
    "DenseStack",
    "DeterministicActorCritic",
    "DrQv2ActorCritic",
    "EnsembleLinear",
    "EnsembleMLP",
    "GRUActorCritic",
    "GRUQNetwork",
    "GSDEActor",
    "GSDEActorCritic",
    "GSDEGaussianDist",
    "GSDEOnPolicyActorCritic",
    "GSDEQuantileActorCritic",
    "GroupedActorCritic",
    "ImplicitQuantileNetwork",
    "LSTMActorCritic",
    "LSTMQNetwork",
    "MultiAgentActorCritic",
    "OffPolicyActorCritic",
    "Policy",
    "QNetwork",
    "QPolicy",
    "QuantileActorCritic",
    "QuantileQNetwork",
    "RecurrentActorCritic",
    "RecurrentCore",
    "RecurrentQNetwork",
    "RecurrentSquashedGaussianActorCritic",
    "SeparateActorCritic",
    "SequenceCore",
    "SquashedGaussianActorCritic",
    "StateDependentGaussian",
    "StateDependentNoise",
    "StateSpec",
    "TokenEvaluation",
    "TransformerActorCritic",
    "TransformerCore",
    "check_distribution",
    "check_encoder",
]
