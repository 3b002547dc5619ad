"""Reference agents, each a few dozen lines on top of a prototype."""

from .a2c import A2C, A2CConfig
from .apex import ApeX, ApeXConfig
from .appo import APPO, APPOConfig
from .c51 import C51, C51Config
from .crossq import CrossQ, CrossQConfig
from .daac import DAAC, DAACConfig
from .ddpg import DDPG, DDPGConfig
from .dqn import DQN, DQNConfig
from .drac import DrAC, DrACConfig
from .drqv2 import DrQv2, DrQv2Config
from .grpo import GRPO, GRPOConfig
from .impala import IMPALA, IMPALAConfig
from .iqn import IQN, IQNConfig
from .lm_ppo import LMPPO, LMPPOConfig
from .mappo import IPPO, MAPPO, IPPOConfig, MAPPOConfig
from .mdqn import MDQN, MDQNConfig
from .mpo import MPO, MPOConfig
from .ppg import PPG, PPGConfig
from .ppo import PPO, PPOConfig
from .pqn import PQN, PQNConfig
from .qrdqn import QRDQN, QRDQNConfig
from .r2d2 import R2D2, R2D2Config
from .rainbow import Rainbow, RainbowConfig, RainbowIQN, RainbowIQNConfig
from .recurrent_sac import RecurrentSAC, RecurrentSACConfig
from .redq import REDQ, REDQConfig
from .reinforce import REINFORCE, REINFORCEConfig
from .rloo import RLOO, RLOOConfig
from .sac import SAC, SACConfig
from .sac_discrete import SACDiscrete, SACDiscreteConfig
from .td3 import TD3, TD3Config
from .tqc import TQC, TQCConfig
from .trpo import TRPO, TRPOConfig
from .vmpo import VMPO, VMPOConfig

__all__ = [
    "A2C",
    "APPO",
    "C51",
    "DAAC",
    "DDPG",
    "DQN",
    "GRPO",
    "IMPALA",
    "IPPO",
    "IQN",
    "LMPPO",
    "MAPPO",
    "MDQN",
    "MPO",
    "PPG",
    "PPO",
    "PQN",
    "QRDQN",
    "R2D2",
    "REDQ",
    "REINFORCE",
    "RLOO",
    "SAC",
    "TD3",
    "TQC",
    "TRPO",
    "VMPO",
    "A2CConfig",
    "APPOConfig",
    "ApeX",
    "ApeXConfig",
    "C51Config",
    "CrossQ",
    "CrossQConfig",
    "DAACConfig",
    "DDPGConfig",
    "DQNConfig",
    "DrAC",
    "DrACConfig",
    "DrQv2",
    "DrQv2Config",
    "GRPOConfig",
    "IMPALAConfig",
    "IPPOConfig",
    "IQNConfig",
    "LMPPOConfig",
    "MAPPOConfig",
    "MDQNConfig",
    "MPOConfig",
    "PPGConfig",
    "PPOConfig",
    "PQNConfig",
    "QRDQNConfig",
    "R2D2Config",
    "REDQConfig",
    "REINFORCEConfig",
    "RLOOConfig",
    "Rainbow",
    "RainbowConfig",
    "RainbowIQN",
    "RainbowIQNConfig",
    "RecurrentSAC",
    "RecurrentSACConfig",
    "SACConfig",
    "SACDiscrete",
    "SACDiscreteConfig",
    "TD3Config",
    "TQCConfig",
    "TRPOConfig",
    "VMPOConfig",
]
