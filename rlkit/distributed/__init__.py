"""Distributed actor-learner machinery: V-trace, trajectories, actors, backends, the actor pool.

The training loops that use them are :class:`rlkit.prototypes.DistributedAgent` (IMPALA, APPO)
and replay learners with :class:`rlkit.prototypes.ActorLearner` (Ape-X). Ray is optional and
imported only by the ``ray`` backend.
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
from rlkit.distributed.behaviour import Behaviour, EpsilonGreedy
from rlkit.distributed.pool import MODES, ActorPool
from rlkit.distributed.trajectory import Trajectory, TrajectoryBatch, stack_trajectories
from rlkit.distributed.transitions import NStepTransitions, nstep_transitions
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
    "Behaviour",
    "EpsilonGreedy",
    "LocalBackend",
    "NStepTransitions",
    "PolicyWeights",
    "ProcessBackend",
    "RayBackend",
    "Trajectory",
    "TrajectoryBatch",
    "VTraceReturns",
    "import_ray",
    "make_backend",
    "nstep_transitions",
    "ray_missing_message",
    "stack_trajectories",
    "vtrace",
    "vtrace_from_bootstrap",
]
