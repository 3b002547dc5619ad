"""Storages: rollout buffers (on-policy) and replay storages (off-policy)."""

from rlkit.storages.base import STORAGES, Storage
from rlkit.storages.her import REPLAY_RELABELERS, HindsightRelabeler
from rlkit.storages.replay import ReplayBatch, ReplayStorage
from rlkit.storages.rollout import (
    RolloutBatch,
    RolloutStorage,
    action_layout,
    compute_gae,
    q_lambda_returns,
)
from rlkit.storages.samplers import REPLAY_SAMPLERS, PrioritizedSampler, Sampler, UniformSampler
from rlkit.storages.sequence_replay import SequenceBatch, SequenceReplay
from rlkit.storages.stores import REPLAY_STORES, ArrayStore, PixelStore, Store
from rlkit.storages.transition_replay import TransitionReplay

__all__ = [
    "REPLAY_RELABELERS",
    "REPLAY_SAMPLERS",
    "REPLAY_STORES",
    "STORAGES",
    "ArrayStore",
    "HindsightRelabeler",
    "PixelStore",
    "PrioritizedSampler",
    "ReplayBatch",
    "ReplayStorage",
    "RolloutBatch",
    "RolloutStorage",
    "Sampler",
    "SequenceBatch",
    "SequenceReplay",
    "Storage",
    "Store",
    "TransitionReplay",
    "UniformSampler",
    "action_layout",
    "compute_gae",
    "q_lambda_returns",
]
