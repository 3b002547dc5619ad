"""Distributed actor-learner prototype: actors unroll the policy, the learner consumes unrolls.

``num_actors`` actors each run a copy of the training env (``envs_per_actor`` sub-envs) with the
latest policy weights they were sent and return fixed-length unrolls (``num_steps``). The
learner (this object) stacks the unrolls it gets, adds intrinsic rewards, and calls the agent's
:meth:`DistributedAgent.update`, which corrects for policy lag with V-trace
(:func:`rlkit.distributed.vtrace`). Each update bumps the policy version; weights are broadcast
tagged with it, every unroll records the version it was produced with, and the difference
(policy lag) is logged.

Where actors run is the ``backend``: ``local`` (this process: step into it with a debugger),
``process`` (local subprocesses) or ``ray`` (Ray actors, on this machine or a cluster). The
``mode`` decides how the learner waits: ``sync`` for every actor each round, ``async`` for
whatever has finished. Failed actors are restarted or dropped by the
:class:`~rlkit.distributed.ActorPool`; a checkpoint (``save``/``load``) resumes the learner.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
import time
import weakref
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from gymnasium.vector import VectorEnv
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from rlkit.augmentations.base import Augmentation
from rlkit.backends import kernels_active
from rlkit.backends.actor_critic_kernel import FusedActorCritic, fused_kernel, unsupported_reason
from rlkit.checkpoint import CheckpointError, FileWriter, split_prefix
from rlkit.config.rules import (
    DEVICE,
    OneOf,
    Rule,
    Satisfies,
    count,
    non_negative,
    optional,
    positive,
    unit,
)
from rlkit.configurable import NotSerializableError, from_json, to_json
from rlkit.device import resolve_device
from rlkit.distributed.actor import ActorSpec, PolicyWeights
from rlkit.distributed.backends import (
    BACKENDS,
    ActorError,
    Backend,
    LocalBackend,
    make_backend,
)
from rlkit.distributed.pool import MODES, ActorPool
from rlkit.distributed.trajectory import Trajectory, TrajectoryBatch, cat_obs, stack_trajectories
from rlkit.distributed.vtrace import VTraceReturns, vtrace
from rlkit.distributions.base import Distribution
from rlkit.encoders.base import Encoder
from rlkit.envs import VecEnvSpec, env_spec_of
from rlkit.losses import Loss, LossPlan, LossTerm
from rlkit.policies.base import ActorCriticPolicy
from rlkit.rewards.base import IntrinsicReward, TransitionBatch
from rlkit.types import Obs
from rlkit.utils.optim import clip_grad_norm_, flatten_parameters, optimizer_step
from rlkit.utils.tensors import obs_map

from .base import Agent, AgentConfig
from .callbacks import CallbackLike
from .learning import PolicyEvaluation, evaluate_actions
from .state import FlatOptimizer

log = logging.getLogger("rlkit")

D = TypeVar("D", bound="DistributedAgent")


@dataclasses.dataclass
class DistributedConfig(AgentConfig):
    """Hyperparameters of the actor-learner loop (scaling knobs first, then the learner)."""

    #: where actors run: "local" (in this process), "process" (subprocesses) or "ray".
    backend: str = "local"
    #: "sync": wait for every actor each round; "async": learn from whatever has finished.
    mode: str = "sync"
    num_actors: int = 2
    #: sub-envs per actor; None: as many as the env passed to the agent has.
    envs_per_actor: int | None = None
    #: unroll length: env steps per sub-env in one trajectory.
    num_steps: int = 32
    #: device actors act on ("cpu", "cuda", "auto" resolved where the actor runs).
    actor_device: str = "cpu"
    #: device of the learner; None: ``device``.
    learner_device: str | None = None
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
    actor_num_gpus: float = 0.0
    lr: float = 5e-4
    #: linearly anneal the learning rate to 0 over ``train(total_steps)``.
    anneal_lr: bool = False
    adam_eps: float = 1e-5
    gamma: float = 0.99
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    #: global gradient-norm clip; None disables.
    max_grad_norm: float | None = 40.0
    #: passes over each learner batch.
    num_epochs: int = 1
    #: minibatches per pass (agents split env columns or samples).
    num_minibatches: int = 1
    #: V-trace truncation of the importance weights (rho-bar); None: no truncation.
    rho_bar: float | None = 1.0
    #: V-trace truncation of the trace coefficients (c-bar); None: no truncation.
    c_bar: float | None = 1.0
    #: V-trace lambda (c_t = lambda min(c_bar, rho_t)).
    vtrace_lambda: float = 1.0

    rules: ClassVar[dict[str, Rule]] = {
        "backend": OneOf(
            tuple(BACKENDS), note="actors in this process, in local subprocesses, or on Ray"
        ),
        "mode": OneOf(tuple(MODES)),
        "num_actors": count(),
        "envs_per_actor": count(none=True),
        "num_steps": count(),
        "actor_device": DEVICE,
        "learner_device": optional(DEVICE),
        "max_restarts": count(0),
        "actor_timeout_s": positive(none=True),
        "ray_address": Satisfies(
            bool, "a non-empty address ('auto', 'ray://head:10001')", none=True
        ),
        "actor_num_cpus": non_negative(),
        "actor_num_gpus": non_negative(),
        "lr": positive(),
        "adam_eps": positive(),
        "gamma": unit(),
        "ent_coef": non_negative(),
        "vf_coef": non_negative(),
        "max_grad_norm": positive(none=True),
        "num_epochs": count(),
        "num_minibatches": count(),
        "rho_bar": positive(none=True),
        "c_bar": positive(none=True),
        "vtrace_lambda": unit(),
    }


@dataclasses.dataclass
class BatchEvaluation:
    """The learner's current policy on a :class:`TrajectoryBatch`, all ``[T, B]``."""

    #: log pi(a_t|x_t) of the stored actions (with gradient).
    log_probs: Tensor
    #: policy entropy per step (with gradient).
    entropy: Tensor
    #: V(x_t) (with gradient).
    values: Tensor
    #: the value each step bootstraps from (no gradient): V(x_{t+1}), V(final obs) where the
    #: episode was truncated, 0 where it terminated, V(bootstrap obs) on the last row.
    next_values: Tensor
    #: set when a ``fast`` kernel computed the evaluation (gradients go through it, with
    #: derivatives shaped like the flat ``[T * B]`` batch).
    pullback: Any = None

    def inputs(self) -> dict[str, Any]:
        """The evaluation as flat loss-term inputs (``log_prob``, ``entropy``, ``value``)."""
        out: dict[str, Any] = {
            "log_prob": self.log_probs.reshape(-1),
            "entropy": self.entropy.reshape(-1),
            "value": self.values.reshape(-1),
        }
        if self.pullback is not None:
            out["_pullback"] = self.pullback
        return out


class DistributedAgent(Agent):
    """Actor-learner loop; subclasses implement :meth:`loss_terms` and :meth:`update`.

    Primitives as for PPO: ``policy`` (an :class:`ActorCriticPolicy`, default
    :class:`ActorCritic`) or ``encoder``/``distribution`` for the default policy;
    ``augmentation``, applied to the observations of the learner's forward passes (RAD-style;
    actors act on clean observations); ``intrinsic_reward``, added to the rewards before V-trace
    targets are computed. The env must come from :func:`rlkit.envs.make_vec_env`: actors
    rebuild it from how it was made.
    """

    Config = DistributedConfig
    config: DistributedConfig
    policy_parts = ("encoder", "distribution")
    hooks: ClassVar[tuple[str, ...]] = ("update", "loss_terms", "clip_and_step", "make_optimizer")

    def __init__(
        self,
        env: VectorEnv,
        config: Any = None,
        *,
        policy: ActorCriticPolicy | str | dict[str, Any] | None = None,
        encoder: Encoder | str | dict[str, Any] | None = None,
        distribution: Distribution | str | dict[str, Any] | None = None,
        augmentation: Augmentation | str | dict[str, Any] | None = None,
        intrinsic_reward: IntrinsicReward | str | dict[str, Any] | None = None,
        **hyperparameters: Any,
    ) -> None:
        super().__init__(env, config, **hyperparameters)
        name = type(self).__name__
        spec = env_spec_of(env)
        if spec is None:
            raise ValueError(
                f"{name}: actors rebuild the env from how rlkit.envs.make_vec_env made it; "
                "build env with make_vec_env"
            )
        self.env_spec: VecEnvSpec = spec
        cfg = self.config
        if cfg.learner_device is not None:
            self.device = resolve_device(cfg.learner_device)
            if self.obs_normalizer is not None:
                self.obs_normalizer.to(self.device)
        built = self.build_actor_critic(policy, encoder, distribution)
        if built.recurrent:
            raise TypeError(
                f"{name}: recurrent policies are not supported by the distributed prototype; "
                "use a feed-forward ActorCriticPolicy"
            )
        self.policy: ActorCriticPolicy = built.to(self.device)
        self.add_module("policy", self.policy)
        self.build_batch_primitives(augmentation, intrinsic_reward)
        self.flat_params = flatten_parameters(self.policy)
        self.optimizer = self.make_optimizer()
        self.register_optimizer("policy", self.optimizer)
        self.policy_group = FlatOptimizer.over(self.flat_params, self.optimizer, cfg.max_grad_norm)
        #: the algorithm's loss terms (built once: stateful terms are checkpointed).
        self.terms = nn.ModuleList(self.loss_terms())
        self.add_module("loss_terms", self.terms)
        self.record_loss_terms(list(self.terms))  # type: ignore[arg-type]
        self._kernel: FusedActorCritic | None = None
        self.pool: ActorPool | None = None
        self._finalizer: weakref.finalize | None = None
        self._weights: PolicyWeights | None = None
        self._launch = 0
        self._columns: list[tuple[int, int]] | None = None
        #: the actors' positions when they were last stopped (exact resume, sync mode).
        self._actor_positions: ActorPositions | None = None

    # ----------------------------------------------------------------- agent hooks
    def make_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer over :attr:`flat_params` (hook; default Adam from
        :meth:`new_optimizer` with ``adam_eps``)."""
        return self.new_optimizer([self.flat_params], self.config.lr, eps=self.config.adam_eps)

    @abstractmethod
    def loss_terms(self) -> list[LossTerm]:
        """The terms of the algorithm's loss (:mod:`rlkit.losses`), built once at construction.
        Override and extend ``super().loss_terms()`` to add a term."""

    @abstractmethod
    def update(self, batch: TrajectoryBatch) -> dict[str, float]:
        """Learn from ``batch`` (observations already normalised, intrinsic rewards added)."""

    def loss(self, inputs: dict[str, Any], diagnostics: bool = False) -> Loss:
        """:meth:`loss_terms` on ``inputs`` (an evaluation's outputs plus the batch's targets;
        a ``"_pullback"`` entry carries a kernel's), ready for :meth:`clip_and_step`."""
        plan = self._plan
        if plan is None or plan.closed_form != self.backend.closed_form:
            plan = self._plan = LossPlan(list(self.terms))  # type: ignore[arg-type]
        pullback = inputs.pop("_pullback", None)
        return plan(inputs, pullback=pullback, diagnostics=diagnostics)

    _plan: LossPlan | None = None

    # ----------------------------------------------------------------- actors
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
            asynchronous=spec.asynchronous,
            policy_spec=policy_spec,
            policy_module=policy_module,
            normalize_obs=cfg.normalize_obs,
            clip_obs=cfg.clip_obs,
            device=cfg.actor_device,
            num_threads=1 if remote else None,
            incarnation=incarnation,
        )

    def _policy_transport(self, remote: bool) -> tuple[Any, ActorCriticPolicy | None]:
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
        self: D,
        total_steps: int,
        run_dir: str | Path | None = None,
        progress_bar: bool = True,
        checkpoint_every: int | None = None,
        tensorboard: bool = True,
        wandb: Mapping[str, Any] | None = None,
        callbacks: CallbackLike | Sequence[CallbackLike] | None = None,
    ) -> D:
        """As :meth:`Agent.train`; the actors are stopped when training ends or raises."""
        try:
            return super().train(
                total_steps, run_dir, progress_bar, checkpoint_every, tensorboard, wandb, callbacks
            )
        finally:
            self.close()

    # ----------------------------------------------------------------- the loop
    def iteration(self) -> dict[str, float]:
        cfg = self.config
        pool = self.start_actors()
        start = time.perf_counter()
        trajectories = pool.gather(self.weights(), cfg.mode)
        waited = time.perf_counter() - start
        version = self.num_updates
        lags = np.array([version - t.version for t in trajectories], dtype=np.float64)
        for t in trajectories:
            self.episodes.returns.extend(t.episode_returns)
            self.episodes.lengths.extend(t.episode_lengths)
            self.episodes.episodes += len(t.episode_returns)
            self.global_step += t.env_steps
        batch = stack_trajectories(trajectories).to(self.device)
        if self.obs_normalizer is not None:
            self.obs_normalizer.update(obs_map(lambda x: x.reshape(-1, *x.shape[2:]), batch.obs))
        batch = batch.map_obs(self.preprocess)
        metrics: dict[str, float] = {}
        transitions = None
        if self.intrinsic_reward is not None:
            self._announce_new_columns(trajectories)
            transitions = TransitionBatch(
                obs=batch.obs,
                actions=batch.actions,
                next_obs=batch.next_obs(),
                dones=batch.dones.float(),
            )
            bonus = self.intrinsic_reward.reward(transitions, self.global_step)
            batch.rewards = batch.rewards + bonus.to(batch.rewards.dtype)
            metrics["rollout/intrinsic_reward_mean"] = float(bonus.mean())
        if cfg.anneal_lr and self._target_steps:
            remaining = max(
                0.0, 1.0 - (self.global_step - batch.rewards.numel()) / self._target_steps
            )
            for group in self.optimizer.param_groups:
                group["lr"] = cfg.lr * remaining
        learn_start = time.perf_counter()
        self.policy.train()
        self._refresh_kernel()
        self._plan = LossPlan(list(self.terms))  # type: ignore[arg-type]
        metrics.update(self.compile_update("update", self.update)(batch))
        if self.intrinsic_reward is not None and transitions is not None:
            metrics.update(
                {f"intrinsic/{k}": v for k, v in self.intrinsic_reward.update(transitions).items()}
            )
        self.num_updates += 1
        metrics.update(
            {
                "train/lr": float(self.optimizer.param_groups[0]["lr"]),
                "distributed/policy_version": float(self.num_updates),
                "distributed/policy_lag_mean": float(lags.mean()),
                "distributed/policy_lag_max": float(lags.max()),
                "distributed/trajectories": float(len(trajectories)),
                "distributed/actors_alive": float(len(pool.alive)),
                "distributed/actor_restarts": float(pool.total_restarts),
                "distributed/actors_dropped": float(len(pool.dropped)),
                "distributed/broadcast_mb": self.weights().num_bytes() / 1e6,
                "time/actor_wait_s": waited,
                "time/learn_s": time.perf_counter() - learn_start,
            }
        )
        return metrics

    def _announce_new_columns(self, trajectories: list[Trajectory]) -> None:
        """Episodic bonuses keep memory per batch column. Columns keep their meaning while the
        same actors deliver in the same order (sync mode); a column that now holds another
        actor's (or a restarted actor's) envs is announced as a new episode."""
        assert self.intrinsic_reward is not None
        layout = [(t.actor_id, t.incarnation) for t in trajectories for _ in range(t.data.num_envs)]
        previous, self._columns = self._columns, layout
        if previous is None or len(previous) != len(layout) or previous == layout:
            return  # first batch, or a new width (the module starts fresh memories itself)
        changed = [a != b for a, b in zip(layout, previous, strict=True)]
        self.intrinsic_reward.reset_episodes(torch.tensor(changed, device=self.device))

    # ----------------------------------------------------------------- helpers for agents
    def _refresh_kernel(self) -> None:
        self._kernel = (
            fused_kernel(self.policy) if self.backend.kernels and kernels_active() else None
        )
        if self._kernel is not None:
            self.backend_report.record("policy evaluation", "fused actor-critic kernel")
        elif self.backend.kernels:
            reason = unsupported_reason(self.policy) or "kernels are off while tracing"
            self.backend_report.record("policy evaluation", "nn.Module + autograd", reason)
        else:
            self.backend_report.record("policy evaluation", "nn.Module + autograd")

    def evaluate_actions(self, obs: Obs, actions: Tensor) -> PolicyEvaluation:
        """The current policy's log-probs, entropies and values of ``actions`` (flat batches),
        through the ``fast`` backend's kernel where the policy has one."""
        kernel = self._kernel if not self.backend.compile else None
        return evaluate_actions(self.policy, kernel, obs, actions)

    def evaluate_batch(self, batch: TrajectoryBatch, augment: bool = True) -> BatchEvaluation:
        """One forward pass of the current policy over ``batch`` (see :class:`BatchEvaluation`),
        on augmented observations when an augmentation is set and ``augment``."""
        aug = self.augment if augment else _identity
        steps, envs = batch.num_steps, batch.num_envs
        flat_obs = obs_map(lambda x: x.reshape(steps * envs, *x.shape[2:]), batch.obs)
        flat_actions = batch.actions.reshape(steps * envs, *batch.actions.shape[2:])
        ev = self.evaluate_actions(aug(flat_obs), flat_actions)
        values = ev.value.reshape(steps, envs)
        with torch.no_grad():
            trunc_steps, trunc_obs = batch.truncation_obs()
            extra = self.policy.value(aug(cat_obs([batch.bootstrap_obs, trunc_obs])))
            next_values = torch.cat([values.detach()[1:], extra[:envs].unsqueeze(0)], dim=0)
            if len(trunc_steps):
                next_values[trunc_steps[:, 0], trunc_steps[:, 1]] = extra[envs:]
            next_values = next_values.masked_fill(batch.terminated, 0.0)
        entropy = ev.entropy
        assert entropy is not None  # (asked for: evaluate_actions computes it by default)
        return BatchEvaluation(
            log_probs=ev.log_prob.reshape(steps, envs),
            entropy=entropy.reshape(steps, envs),
            values=values,
            next_values=next_values,
            pullback=ev.pullback,
        )

    def vtrace_targets(
        self,
        batch: TrajectoryBatch,
        target_log_probs: Tensor,
        values: Tensor,
        next_values: Tensor,
    ) -> VTraceReturns:
        """V-trace targets and advantages of ``batch`` for the target policy's log-probs and
        values (episode ends handled: no bootstrap on termination, the final observation's
        value on truncation)."""
        cfg = self.config
        return vtrace(
            log_rhos=target_log_probs.detach() - batch.log_probs,
            discounts=cfg.gamma * (~batch.terminated).to(values.dtype),
            rewards=batch.rewards,
            values=values.detach(),
            next_values=next_values.detach(),
            continues=(~batch.dones).to(values.dtype),
            rho_bar=cfg.rho_bar,
            c_bar=cfg.c_bar,
            lambda_=cfg.vtrace_lambda,
        )

    def env_minibatches(self, batch: TrajectoryBatch) -> Iterator[TrajectoryBatch]:
        """``num_minibatches`` random groups of env columns (whole unrolls) of ``batch``."""
        n = min(self.config.num_minibatches, batch.num_envs)
        order = torch.randperm(batch.num_envs, generator=self._generator)
        for index in order.chunk(n):
            yield batch.columns(index)

    def sample_minibatches(self, num_samples: int) -> Iterator[Tensor]:
        """``num_minibatches`` random index sets over ``num_samples`` flat samples."""
        n = min(self.config.num_minibatches, num_samples)
        order = torch.randperm(num_samples, generator=self._generator)
        yield from order.chunk(n)

    def clip_and_step(self, loss: Any, optimizer: FlatOptimizer | None = None) -> Tensor:
        """Backward, optional global grad-norm clip, optimizer step (hook); returns the grad
        norm before clipping."""
        group = optimizer if optimizer is not None else self.policy_group
        group.zero_grad()
        loss.backward()
        grad = group.flat.grad
        assert grad is not None
        if group.max_grad_norm is not None:
            norm = clip_grad_norm_(grad, group.max_grad_norm)
        else:
            norm = torch.linalg.vector_norm(grad)
        optimizer_step(group.optimizer)
        return norm

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


def _identity(obs: Obs) -> Obs:
    return obs


def _cpu_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


__all__ = ["BatchEvaluation", "DistributedAgent", "DistributedConfig"]
