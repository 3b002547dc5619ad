"""Environment factories and wrappers (gymnasium first)."""

from rlkit.envs.agent_rows import (
    ACTIVE_KEY,
    AgentRowsVecEnv,
    is_multi_agent,
    make_multi_agent_vec_env,
)
from rlkit.envs.dict_obs import FlattenDict
from rlkit.envs.exploration import DeepChain, SparseGridMaze  # registers rlkit/DeepChain-v0, ...
from rlkit.envs.families import (
    ENV_FAMILIES,
    EnvFamily,
    MissingExtraError,
    build_family,
    family_for,
)
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
    MOUNTAIN_CAR_CONTINUOUS_NOVEL_ID,
    PENDULUM_NOVEL_ID,
    CartPoleNoVel,
    CueRecall,
    MountainCarContinuousNoVel,
    PendulumNoVel,
)
from rlkit.envs.multi_agent import AgentsEnv
from rlkit.envs.pixel import PixelReach  # registers "rlkit/PixelReach-v0"
from rlkit.envs.pixel_control import PixelPointMass  # registers "rlkit/PixelPointMass-v0"
from rlkit.envs.stats import EpisodeTracker, GameEpisodeStatistics, reports_games
from rlkit.envs.wrapper_registry import register_wrapper, wrapper_ids
from rlkit.envs.wrappers import ActionRepeat, ChannelFirst, Float32Action, Float32Observation

__all__ = [
    "ACTIVE_KEY",
    "CARTPOLE_NOVEL_ID",
    "CUE_RECALL_ID",
    "ENV_FAMILIES",
    "MOUNTAIN_CAR_CONTINUOUS_NOVEL_ID",
    "PENDULUM_NOVEL_ID",
    "ActionRepeat",
    "AgentRowsVecEnv",
    "AgentsEnv",
    "BitFlipping",
    "CartPoleNoVel",
    "ChannelFirst",
    "CueRecall",
    "DeepChain",
    "EnvFamily",
    "EpisodeTracker",
    "FlattenDict",
    "Float32Action",
    "Float32Observation",
    "GameEpisodeStatistics",
    "MissingExtraError",
    "MountainCarContinuousNoVel",
    "PendulumNoVel",
    "PixelPointMass",
    "PixelReach",
    "PointGoal",
    "SparseGridMaze",
    "VecEnvSpec",
    "build_family",
    "check_same_step_autoreset",
    "env_spec_of",
    "family_for",
    "is_multi_agent",
    "make_multi_agent_vec_env",
    "make_vec_env",
    "register_wrapper",
    "reports_games",
    "wrapper_ids",
]
