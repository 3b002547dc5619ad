"""Reference agents, each a few dozen lines on top of a prototype."""

from .a2c import A2C, A2CConfig
from .daac import DAAC, DAACConfig
from .drac import DrAC, DrACConfig
from .ppg import PPG, PPGConfig
from .ppo import PPO, PPOConfig

__all__ = [
    "A2C",
    "DAAC",
    "PPG",
    "PPO",
    "A2CConfig",
    "DAACConfig",
    "DrAC",
    "DrACConfig",
    "PPGConfig",
    "PPOConfig",
]
