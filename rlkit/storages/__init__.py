"""Storages: rollout buffers (on-policy) and, later, replay buffers (off-policy)."""

from rlkit.storages.base import STORAGES, Storage
from rlkit.storages.rollout import RolloutBatch, RolloutStorage, action_layout, compute_gae

__all__ = ["STORAGES", "RolloutBatch", "RolloutStorage", "Storage", "action_layout", "compute_gae"]
