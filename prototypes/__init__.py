"""Training-loop skeletons (prototypes) that own the loop and call the primitives."""

from .base import AGENTS, Agent, AgentConfig, load_agent
from .on_policy import OnPolicyAgent, OnPolicyConfig

__all__ = ["AGENTS", "Agent", "AgentConfig", "OnPolicyAgent", "OnPolicyConfig", "load_agent"]
