"""Moved to :mod:`rlkit.backends.actor_critic_kernel` (the ``fast`` backend's kernels); these
names stay importable from here."""

from rlkit.backends.actor_critic_kernel import (
    SMALL_MATMUL,
    FusedActorCritic,
    FusedEvaluation,
    fused_kernel,
    unsupported_reason,
)

__all__ = [
    "SMALL_MATMUL",
    "FusedActorCritic",
    "FusedEvaluation",
    "fused_kernel",
    "unsupported_reason",
]
