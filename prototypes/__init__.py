"""Training-loop skeletons (prototypes) that own the loop and call the primitives."""

from .actors import ActorLearner, ActorsConfig
from .base import AGENTS, Agent, AgentConfig, load_agent
from .callbacks import Callback, Evaluate
from .distributed import DistributedAgent, DistributedConfig
from .language import LanguageModelAgent, LanguageModelConfig
from .off_policy import (
    FlatOptimizer,
    GSDEConfig,
    OffPolicyAgent,
    OffPolicyConfig,
    TargetNetwork,
)
from .on_policy import OnPolicyAgent, OnPolicyConfig

__all__ = [
    "AGENTS",
    "ActorLearner",
    "ActorsConfig",
    "Agent",
    "AgentConfig",
    "Callback",
    "DistributedAgent",
    "DistributedConfig",
    "Evaluate",
    "FlatOptimizer",
    "GSDEConfig",
    "LanguageModelAgent",
    "LanguageModelConfig",
    "OffPolicyAgent",
    "OffPolicyConfig",
    "OnPolicyAgent",
    "OnPolicyConfig",
    "TargetNetwork",
    "load_agent",
]
