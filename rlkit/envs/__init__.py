"""Environment factories and wrappers (gymnasium first)."""

from rlkit.envs.exploration import DeepChain, SparseGridMaze  # registers rlkit/DeepChain-v0, ...
from rlkit.envs.goals import BitFlipping, PointGoal  # registers rlkit/BitFlipping-v0, ...
from rlkit.envs.make import (
    VecEnvSpec,
    check_same_step_autoreset,
    env_spec_of,
    make_vec_env,
)
from rlkit.envs.memory import (  # registers the memory testbeds (rlkit/CartPoleNoVel-v1, ...)
    CARTPOLE_NOVEL_ID,
    CUE_RECALL_ID,
    PENDULUM_NOVEL_ID,
    CartPoleNoVel,
    CueRecall,
    PendulumNoVel,
)
from rlkit.envs.pixel import PixelReach  # registers "rlkit/PixelReach-v0"
from rlkit.envs.pixel_control import PixelPointMass  # registers "rlkit/PixelPointMass-v0"
from rlkit.envs.stats import EpisodeTracker
from rlkit.envs.wrappers import ChannelFirst

__all__ = [
    "CARTPOLE_NOVEL_ID",
    "CUE_RECALL_ID",
    "PENDULUM_NOVEL_ID",
    "BitFlipping",
    "CartPoleNoVel",
    "ChannelFirst",
    "CueRecall",
    "DeepChain",
    "EpisodeTracker",
    "PendulumNoVel",
    "PixelPointMass",
    "PixelReach",
    "PointGoal",
    "SparseGridMaze",
    "VecEnvSpec",
    "check_same_step_autoreset",
    "env_spec_of",
    "make_vec_env",
]
