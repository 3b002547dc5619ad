"""Intrinsic rewards (exploration bonuses)."""

from rlkit.rewards.base import INTRINSIC_REWARDS, IntrinsicReward, TransitionBatch
from rlkit.rewards.combined import Combined
from rlkit.rewards.disagreement import Disagreement
from rlkit.rewards.e3b import E3B
from rlkit.rewards.episodic import EpisodicIntrinsicReward
from rlkit.rewards.icm import ICM
from rlkit.rewards.ngu import NGU
from rlkit.rewards.pseudo_counts import PseudoCounts
from rlkit.rewards.re3 import RE3
from rlkit.rewards.ride import RIDE
from rlkit.rewards.rise import RISE
from rlkit.rewards.rnd import RND

__all__ = [
    "E3B",
    "ICM",
    "INTRINSIC_REWARDS",
    "NGU",
    "RE3",
    "RIDE",
    "RISE",
    "RND",
    "Combined",
    "Disagreement",
    "EpisodicIntrinsicReward",
    "IntrinsicReward",
    "PseudoCounts",
    "TransitionBatch",
]
