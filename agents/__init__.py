"""Reference agents, each a few dozen lines on top of a prototype."""

from .a2c import A2C, A2CConfig
from .appo import APPO, APPOConfig
from .daac import DAAC, DAACConfig
from .ddpg import DDPG, DDPGConfig
from .dqn import DQN, DQNConfig
from .drac import DrAC, DrACConfig
from .drqv2 import DrQv2, DrQv2Config
from .impala import IMPALA, IMPALAConfig
from .ppg import PPG, PPGConfig
from .ppo import PPO, PPOConfig
from .qrdqn import QRDQN, QRDQNConfig
from .sac import SAC, SACConfig
from .sac_discrete import SACDiscrete, SACDiscreteConfig
from .td3 import TD3, TD3Config

__all__ = [
    "A2C",
    "APPO",
    "DAAC",
    "DDPG",
    "DQN",
    "IMPALA",
    "PPG",
    "PPO",
    "QRDQN",
    "SAC",
    "TD3",
    "A2CConfig",
    "APPOConfig",
    "DAACConfig",
    "DDPGConfig",
    "DQNConfig",
    "DrAC",
    "DrACConfig",
    "DrQv2",
    "DrQv2Config",
    "IMPALAConfig",
    "PPGConfig",
    "PPOConfig",
    "QRDQNConfig",
    "SACConfig",
    "SACDiscrete",
    "SACDiscreteConfig",
    "TD3Config",
]
