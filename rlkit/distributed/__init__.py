"""Distributed actor-learner machinery: V-trace, trajectories, actors, backends, the actor pool.

The training loop that uses them is :class:`rlkit.prototypes.DistributedAgent`; IMPALA and APPO
are built on it. Ray is optional and imported only by the ``ray`` backend.
"""

from rlkit.distributed.actor import ActorSpec, ActorWorker, PolicyWeights
from rlkit.distributed.backends import (
    BACKENDS,
    RAY_INSTALL_HINT,
    ActorError,
    ActorResult,
    Backend,
    LocalBackend,
    ProcessBackend,
    RayBackend,
    import_ray,
    make_backend,
    ray_missing_message,
)
from rlkit.distributed.pool import MODES, ActorPool
from rlkit.distributed.trajectory import Trajectory, TrajectoryBatch, stack_trajectories
from rlkit.distributed.vtrace import VTraceReturns, vtrace, vtrace_from_bootstrap

__all__ = [
    "BACKENDS",
    "MODES",
    "RAY_INSTALL_HINT",
    "ActorError",
    "ActorPool",
    "ActorResult",
    "ActorSpec",
    "ActorWorker",
    "Backend",
    "LocalBackend",
    "PolicyWeights",
    "ProcessBackend",
    "RayBackend",
    "Trajectory",
    "TrajectoryBatch",
    "VTraceReturns",
    "import_ray",
    "make_backend",
    "ray_missing_message",
    "stack_trajectories",
    "vtrace",
    "vtrace_from_bootstrap",
]
