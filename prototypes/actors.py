"""Actors for a learner: the pool of actors that step copies of the env, and its plumbing.

:class:`ActorLearner` is the part of an actor-learner prototype that does not depend on what
the learner does with the data: it starts and stops the :class:`~rlkit.distributed.ActorPool`
on the configured backend (``local``, ``process`` or ``ray``), builds each actor's
:class:`~rlkit.distributed.ActorSpec` (with its own :class:`~rlkit.distributed.Behaviour`,
e.g. an exploration rate per actor), broadcasts versioned weights, and keeps the actors'
positions in checkpoints for an exact resume. The V-trace loop
(:class:`~rlkit.prototypes.DistributedAgent`) and replay-based learners (Ape-X) mix it into
their prototype; its config fields come from :class:`ActorsConfig`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import torch
from gymnasium.vector import VectorEnv
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from rlkit.checkpoint import CheckpointError, FileWriter, split_prefix
from rlkit.config.rules import (
    DEVICE,
    OneOf,
    Rule,
    Satisfies,
    check_config,
    count,
    non_negative,
    positive,
)
from rlkit.configurable import NotSerializableError, from_json, to_json
from rlkit.distributed.actor import ActorSpec, PolicyWeights
from rlkit.distributed.backends import BACKENDS, ActorError, Backend, LocalBackend, make_backend
from rlkit.distributed.behaviour import Behaviour
from rlkit.distributed.pool import MODES, ActorPool
from rlkit.distributed.trajectory import Trajectory
from rlkit.envs import VecEnvSpec, env_spec_of
from rlkit.normalization import ObsNormalizer
from rlkit.policies.base import Policy

from .callbacks import CallbackLike

if TYPE_CHECKING:
    from .base import Agent

    _Base = Agent
else:
    _Base = object

log = logging.getLogger("rlkit")

L = TypeVar("L", bound="ActorLearner")


@dataclasses.dataclass
class ActorsConfig:
    """Where the actors run and how many (the scaling knobs of an actor-learner agent)."""

    #: where actors run: "local" (in this process), "process" (subprocesses) or "ray".
    backend: str = "local"
    #: "sync": wait for every actor each round; "async": learn from whatever has finished.
    mode: str = "sync"
    #: number of actors collecting unrolls in parallel.
    num_actors: int = 2
    #: sub-envs per actor; None: as many as the env passed to the agent has.
    envs_per_actor: int | None = None
    #: unroll length: env steps per sub-env in one trajectory.
    num_steps: int = 32
    #: device actors act on ("cpu", "cuda", "auto" resolved where the actor runs).
    actor_device: str = "cpu"
    #: restarts per actor before it is dropped (training stops only when none is left).
    max_restarts: int = 3
    #: an actor that returns nothing for this long is treated as failed (its first unroll after
    #: a start gets at least 300 s; remote backends only); None: wait forever.
    actor_timeout_s: float | None = None
    #: Ray cluster address (``"auto"``, ``"ray://head:10001"``); None starts a local instance
    #: unless Ray is already initialised.
    ray_address: str | None = None
    #: Ray resources per actor.
    actor_num_cpus: float = 1.0
    #: Ray GPUs per actor (fractions share a GPU).
    actor_num_gpus: float = 0.0

    rules: ClassVar[dict[str, Rule]] = {
        "backend": OneOf(
            tuple(BACKENDS), note="actors in this process, in local subprocesses, or on Ray"
        ),
        "mode": OneOf(tuple(MODES)),
        "num_actors": count(),
        "envs_per_actor": count(none=True),
        "num_steps": count(),
        "actor_device": DEVICE,
        "max_restarts": count(0),
        "actor_timeout_s": positive(none=True),
        "ray_address": Satisfies(
            bool, "a non-empty address ('auto', 'ray://head:10001')", none=True
        ),
        "actor_num_cpus": non_negative(),
        "actor_num_gpus": non_negative(),
    }

    def __post_init__(self) -> None:
        check_config(self)


class ActorLearner(_Base):
    """Mixin for an :class:`~rlkit.prototypes.Agent` whose experience comes from actors (see
    the module doc). Put it before the prototype in the bases; the config must include
    :class:`ActorsConfig`'s fields. What actors act with is :attr:`policy` (shipped as its JSON
    spec, or pickled when it has none) plus the agent's observation normaliser; how they act
    and what they add to their unrolls is :meth:`actor_behaviour`.
    """

    config: Any
    policy: Policy
    obs_normalizer: ObsNormalizer | None
    num_envs: int
    num_updates: int
    global_step: int

    def __init__(self, env: VectorEnv, *args: Any, **kwargs: Any) -> None:
        spec = env_spec_of(env)
        if spec is None:
            raise ValueError(
                f"{type(self).__name__}: actors rebuild the env from how rlkit.envs.make_vec_env "
                "made it; build env with make_vec_env"
            )
        self.env_spec: VecEnvSpec = spec
        self.pool: ActorPool | None = None
        self._finalizer: weakref.finalize | None = None
        self._weights: PolicyWeights | None = None
        self._launch = 0
        #: the actors' positions when they were last stopped (exact resume, sync mode).
        self._actor_positions: ActorPositions | None = None
        super().__init__(env, *args, **kwargs)

    def gather_unrolls(self) -> tuple[list[Trajectory], dict[str, float]]:
        """Start the actors (first call), hand the current weights to the idle ones and take
        the finished unrolls (``mode``: one per actor, or whatever has finished); counts their
        env steps and episodes. Returns them with the ``distributed/*`` metrics: policy lag
        (learner updates since each unroll's weights), actors alive, restarted and dropped,
        the broadcast size, and the time spent waiting."""
        pool = self.start_actors()
        start = time.perf_counter()
        weights = self.weights()
        trajectories = pool.gather(weights, self.config.mode)
        waited = time.perf_counter() - start
        version = self.num_updates
        lags = np.array([version - t.version for t in trajectories], dtype=np.float64)
        for t in trajectories:
            self.episodes.returns.extend(t.episode_returns)
            self.episodes.lengths.extend(t.episode_lengths)
            self.episodes.episodes += len(t.episode_returns)
            self.global_step += t.env_steps
        return trajectories, {
            "distributed/policy_lag_mean": float(lags.mean()),
            "distributed/policy_lag_max": float(lags.max()),
            "distributed/trajectories": float(len(trajectories)),
            "distributed/actors_alive": float(len(pool.alive)),
            "distributed/actor_restarts": float(pool.total_restarts),
            "distributed/actors_dropped": float(len(pool.dropped)),
            "distributed/broadcast_mb": weights.num_bytes() / 1e6,
            "time/actor_wait_s": waited,
        }

    def actor_behaviour(self, actor_id: int) -> Behaviour | None:
        """How actor ``actor_id`` acts and what it adds to its unrolls (hook): None samples
        the policy's own action distribution. Ape-X gives each actor its own epsilon here."""
        return None

    @property
    def envs_per_actor(self) -> int:
        return self.config.envs_per_actor or self.num_envs

    @property
    def policy_version(self) -> int:
        """The version of the current weights: the number of learner updates so far."""
        return self.num_updates

    def weights(self) -> PolicyWeights:
        """A CPU snapshot of what actors act with, taken once per policy version."""
        if self._weights is None or self._weights.version != self.num_updates:
            state = {"policy": _cpu_state(self.policy)}
            if self.obs_normalizer is not None:
                state["obs_normalizer"] = _cpu_state(self.obs_normalizer)
            self._weights = PolicyWeights(self.num_updates, state)
        return self._weights

    def actor_spec(self, actor_id: int, incarnation: int, remote: bool) -> ActorSpec:
        """How actor ``actor_id`` is built; each incarnation (restart) is seeded afresh."""
        cfg, spec = self.config, self.env_spec
        seed = sample_seed = None
        if cfg.seed is not None:
            key = (actor_id, incarnation, self._launch)
            env_seed, sample_seed = np.random.SeedSequence(cfg.seed, spawn_key=key).generate_state(
                2
            )
            seed = int(env_seed) % (2**31 - 2 * self.envs_per_actor)
            sample_seed = int(sample_seed)
        policy_spec, policy_module = self._policy_transport(remote)
        return ActorSpec(
            actor_id=actor_id,
            env=spec.env,
            num_envs=self.envs_per_actor,
            num_steps=cfg.num_steps,
            seed=seed,
            sample_seed=sample_seed,
            env_kwargs=dict(spec.env_kwargs),
            wrappers=tuple(spec.wrappers),
            preprocessing=spec.preprocessing,
            asynchronous=spec.asynchronous,
            policy_spec=policy_spec,
            policy_module=policy_module,
            behaviour=self.actor_behaviour(actor_id),
            normalize_obs=cfg.normalize_obs,
            clip_obs=cfg.clip_obs,
            device=cfg.actor_device,
            num_threads=1 if remote else None,
            incarnation=incarnation,
        )

    def _policy_transport(self, remote: bool) -> tuple[Any, Policy | None]:
        """In-process actors copy the module; remote ones rebuild it from its JSON spec, or
        get the pickled module when it has none (an unregistered policy class)."""
        if not remote:
            return None, self.policy
        try:
            policy_spec = to_json(self.policy, "policy")
            from_json(policy_spec)  # check it rebuilds before shipping it
            return policy_spec, None
        except (NotSerializableError, ValueError, TypeError) as e:
            log.info("%s: sending the policy module pickled to actors (%s)", type(self).__name__, e)
            return None, self.policy

    def make_backend(self) -> Backend:
        """The backend named by ``config.backend``."""
        cfg = self.config
        return make_backend(
            cfg.backend,
            num_actors=cfg.num_actors,
            ray_address=cfg.ray_address,
            num_cpus_per_actor=cfg.actor_num_cpus,
            num_gpus_per_actor=cfg.actor_num_gpus,
        )

    def start_actors(self) -> ActorPool:
        """Start the actor pool (done by the first :meth:`iteration`; :meth:`close` stops it)."""
        if self.pool is not None:
            return self.pool
        cfg = self.config
        backend = self.make_backend()
        remote = backend.remote
        self._launch = self.num_updates  # resumed runs do not replay the first run's seeds
        if cfg.backend == "process":
            try:
                pickle.dumps(self.actor_spec(0, 0, remote))
            except (pickle.PicklingError, AttributeError, TypeError) as e:
                backend.close()
                raise ValueError(
                    f"{type(self).__name__}: backend='process' pickles the env factory, wrappers "
                    f"and policy for its subprocesses, and this one cannot be pickled ({e}); "
                    "register the env with gymnasium and pass its id to make_vec_env, or use "
                    "backend='local' or 'ray' (which pickles closures)"
                ) from None
        pool = ActorPool(
            backend,
            lambda actor_id, incarnation: self.actor_spec(actor_id, incarnation, remote),
            cfg.num_actors,
            cfg.max_restarts,
            cfg.actor_timeout_s,
        )
        self._finalizer = weakref.finalize(self, pool.close)
        pool.start()
        self.pool = pool
        self._restore_actor_positions(pool)
        return pool

    def close(self) -> None:
        """Stop the actors (and a Ray instance the backend started); idempotent. In ``sync``
        mode the actors (on any backend) leave their positions behind, so the next
        :meth:`train` (or a checkpoint) continues their episodes."""
        if self.pool is not None:
            try:
                self._actor_positions = self._take_actor_positions()
            except Exception:  # a broken actor env: the next run starts new episodes
                log.debug("could not record the actors' positions", exc_info=True)
                self._actor_positions = None
        if self._finalizer is not None:
            self._finalizer()  # runs pool.close once
            self._finalizer = None
        self.pool = None

    def train(
        self: L,
        total_steps: int,
        run_dir: str | Path | None = None,
        progress_bar: bool = True,
        checkpoint_every: int | None = None,
        tensorboard: bool = True,
        wandb: Mapping[str, Any] | None = None,
        callbacks: CallbackLike | Sequence[CallbackLike] | None = None,
    ) -> L:
        """As :meth:`Agent.train`; the actors are stopped when training ends or raises."""
        try:
            return super().train(
                total_steps, run_dir, progress_bar, checkpoint_every, tensorboard, wandb, callbacks
            )
        finally:
            self.close()

    # ----------------------------------------------------------------- exact resume
    def _take_actor_positions(self) -> ActorPositions | None:
        """Where the actors are between unrolls, asked of the backend (in-process workers,
        subprocesses or Ray actors): only in ``sync`` mode, between iterations (nothing in
        flight), can they be read (and put back) exactly; otherwise None."""
        pool = self.pool
        if pool is None:
            return self._actor_positions
        backend = pool.backend
        if self.config.mode != "sync" or backend.in_flight:
            return None
        if isinstance(backend, LocalBackend):  # only the actors built so far
            ids = sorted(set(backend.workers) & set(pool.alive))
        else:
            ids = list(pool.alive)
        positions = {i: backend.position(i) for i in ids}
        return positions or None

    def _restore_actor_positions(self, pool: ActorPool) -> None:
        """Put freshly started actors where :meth:`_take_actor_positions` found them; one
        warning when that is not possible (the actors then start new episodes)."""
        positions, self._actor_positions = self._actor_positions, None
        if not positions:
            return
        cfg, backend = self.config, pool.backend
        problem = None
        if cfg.mode != "sync":
            problem = f"actors are put back only with mode='sync', this run has mode={cfg.mode!r}"
        elif not set(positions) <= set(pool.alive):
            problem = f"the checkpoint has actors {sorted(positions)}, this run {pool.alive}"
        else:
            for actor_id, (state, arrays) in sorted(positions.items()):
                try:
                    failed = backend.restore_position(actor_id, state, arrays)
                except Exception as e:
                    failed = f"{type(e).__name__}: {e}"
                if failed is not None:
                    problem = f"actor {actor_id}: {failed}"
                    break
        if problem is not None:
            log.warning(
                "%s: the actors cannot be put back where they were (%s); they start new "
                "episodes, so the run is not identical to an uninterrupted one",
                type(self).__name__,
                problem,
            )

    def checkpoint_files(self) -> dict[str, FileWriter]:
        """Adds ``actors.safetensors``, the actors' positions (``sync`` mode; see
        :meth:`close`), when there are any."""
        files = super().checkpoint_files()
        try:
            positions = self._take_actor_positions()
        except ActorError as e:  # an actor that died or hangs: the checkpoint goes on without
            log.warning(
                "%s: the checkpoint holds no actor positions (%s); a run resumed from it "
                "starts new episodes",
                type(self).__name__,
                e,
            )
            positions = None
        if positions:
            files[ACTORS_FILE] = lambda path: _write_positions(path, positions)
        return files

    def restore_checkpoint_files(self, directory: Path) -> None:
        super().restore_checkpoint_files(directory)
        file = directory / ACTORS_FILE
        self._actor_positions = _read_positions(file) if file.is_file() else None


#: actor id -> (JSON state, arrays) of :meth:`rlkit.distributed.ActorWorker.position`.
ActorPositions = dict[int, tuple[dict[str, Any], dict[str, np.ndarray]]]
#: file name of the actors' positions inside a checkpoint directory.
ACTORS_FILE = "actors.safetensors"


def _write_positions(path: Path, positions: ActorPositions) -> None:
    """Arrays as ``<actor>.<name>`` tensors, the JSON parts in the file's metadata."""
    tensors = {
        f"{actor_id}.{name}": torch.from_numpy(np.array(array, order="C"))  # writable copy
        for actor_id, (_, arrays) in positions.items()
        for name, array in arrays.items()
    }
    meta = {str(actor_id): state for actor_id, (state, _) in positions.items()}
    save_file(tensors, str(path), metadata={"actors": json.dumps(meta)})


def _read_positions(path: Path) -> ActorPositions:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["actors"])
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint file {path} is corrupt or truncated: {e}") from None
    positions: ActorPositions = {}
    for key, state in meta.items():
        arrays = {k: v.numpy() for k, v in split_prefix(tensors, key).items()}
        positions[int(key)] = (state, arrays)
    return positions


def _cpu_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


__all__ = ["ACTORS_FILE", "ActorLearner", "ActorPositions", "ActorsConfig"]
