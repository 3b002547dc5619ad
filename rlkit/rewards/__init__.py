"""Intrinsic rewards (exploration bonuses)."""

from rlkit.rewards.base import INTRINSIC_REWARDS, IntrinsicReward, TransitionBatch
from rlkit.rewards.rnd import RND

__all__ = ["INTRINSIC_REWARDS", "RND", "IntrinsicReward", "TransitionBatch"]
