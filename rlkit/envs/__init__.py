"""Environment factories and wrappers (gymnasium first)."""

from rlkit.envs.make import (
    VecEnvSpec,
    check_same_step_autoreset,
    env_spec_of,
    make_vec_env,
)
from rlkit.envs.pixel import PixelReach  # registers "rlkit/PixelReach-v0"
from rlkit.envs.stats import EpisodeTracker
from rlkit.envs.wrappers import ChannelFirst

__all__ = [
    "ChannelFirst",
    "EpisodeTracker",
    "PixelReach",
    "VecEnvSpec",
    "check_same_step_autoreset",
    "env_spec_of",
    "make_vec_env",
]
