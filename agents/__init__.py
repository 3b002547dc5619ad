"""Reference agents, each a few dozen lines on top of a prototype."""

from .a2c import A2C, A2CConfig
from .ppo import PPO, PPOConfig

__all__ = ["A2C", "PPO", "A2CConfig", "PPOConfig"]
