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
import logging
import time
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar, TypeVar

import torch
from gymnasium.vector import VectorEnv
from torch import Tensor, nn

from rlkit.augmentations.base import Augmentation
from rlkit.backends import kernels_active
from rlkit.backends.actor_critic_kernel import FusedActorCritic, fused_kernel, unsupported_reason
from rlkit.config.rules import (
    DEVICE,
    Rule,
    count,
    non_negative,
    optional,
    positive,
    unit,
)
from rlkit.device import resolve_device
from rlkit.distributed.trajectory import Trajectory, TrajectoryBatch, cat_obs, stack_trajectories
from rlkit.distributed.vtrace import VTraceReturns, vtrace
from rlkit.distributions.base import Distribution
from rlkit.distributions.state_dependent import state_dependent_noise
from rlkit.encoders.base import Encoder
from rlkit.losses import Loss, LossPlan, LossTerm
from rlkit.policies.base import ActorCriticPolicy
from rlkit.rewards.base import IntrinsicReward, TransitionBatch
from rlkit.types import Obs
from rlkit.utils.optim import clip_grad_norm_, flatten_parameters, optimizer_step
from rlkit.utils.tensors import obs_map

from .actors import ActorLearner, ActorsConfig
from .base import Agent, AgentConfig
from .learning import PolicyEvaluation, evaluate_actions
from .state import FlatOptimizer

log = logging.getLogger("rlkit")

D = TypeVar("D", bound="DistributedAgent")


@dataclasses.dataclass
class DistributedConfig(AgentConfig, ActorsConfig):
    """Hyperparameters of the actor-learner loop: the actors' (:class:`ActorsConfig`), then
    the learner's."""

    #: device of the learner; None: ``device``.
    learner_device: str | None = None
    #: learning rate of the learner's Adam optimizer.
    lr: float = 5e-4
    #: linearly anneal the learning rate to 0 over ``train(total_steps)``.
    anneal_lr: bool = False
    #: Adam's epsilon of the learner's optimizer.
    adam_eps: float = 1e-5
    #: discount factor of future rewards.
    gamma: float = 0.99
    #: weight of the entropy bonus in the loss.
    ent_coef: float = 0.01
    #: weight of the value loss in the loss.
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
        "learner_device": optional(DEVICE),
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


class DistributedAgent(ActorLearner, Agent):
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
        cfg = self.config
        if cfg.learner_device is not None:
            self.device = resolve_device(cfg.learner_device)
            if self.obs_normalizer is not None:
                self.obs_normalizer.to(self.device)
        built = self.build_actor_critic(policy, encoder, distribution)
        if state_dependent_noise(built) is not None:
            raise ValueError(
                f"{type(self).__name__}: {type(built).__name__} explores with gSDE, whose weights "
                "the on-policy loop redraws per rollout; the distributed actors do not (use "
                "PPO or A2C, or a policy without gSDE)"
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
        self._columns: list[tuple[int, int]] | None = None

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

    # ----------------------------------------------------------------- the loop
    def iteration(self) -> dict[str, float]:
        cfg = self.config
        trajectories, gathered = self.gather_unrolls()
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
        metrics.update(gathered)
        metrics.update(
            {
                "train/lr": float(self.optimizer.param_groups[0]["lr"]),
                "distributed/policy_version": float(self.num_updates),
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

    def evaluate_actions(
        self,
        obs: Obs,
        actions: Tensor,
        state: tuple[Tensor, ...] = (),
        episode_start: Tensor | None = None,
    ) -> PolicyEvaluation:
        """The current policy's log-probs, entropies and values of ``actions`` (flat batches),
        through the ``fast`` backend's kernel where the policy has one. A recurrent policy
        reads time-major rows of whole unrolls from their initial ``state``, resetting at
        ``episode_start``."""
        if state:
            return evaluate_actions(self.policy, None, obs, actions, True, state, episode_start)
        kernel = self._kernel if not self.backend.compile else None
        return evaluate_actions(self.policy, kernel, obs, actions)

    def evaluate_batch(self, batch: TrajectoryBatch, augment: bool = True) -> BatchEvaluation:
        """One forward pass of the current policy over ``batch`` (see :class:`BatchEvaluation`),
        on augmented observations when an augmentation is set and ``augment``."""
        aug = self.augment if augment else _identity
        steps, envs = batch.num_steps, batch.num_envs
        flat_obs = obs_map(lambda x: x.reshape(steps * envs, *x.shape[2:]), batch.obs)
        flat_actions = batch.actions.reshape(steps * envs, *batch.actions.shape[2:])
        starts = None if batch.episode_starts is None else batch.episode_starts.reshape(-1)
        ev = self.evaluate_actions(aug(flat_obs), flat_actions, batch.initial_state, starts)
        values = ev.value.reshape(steps, envs)
        with torch.no_grad():
            trunc_steps, trunc_obs, trunc_states = batch.truncations()
            extra_obs = aug(cat_obs([batch.bootstrap_obs, trunc_obs]))
            if batch.recurrent:  # each with the actor's memory through its step
                state = tuple(
                    torch.cat([b, t], dim=0)
                    for b, t in zip(batch.bootstrap_state, trunc_states, strict=True)
                )
                flags = torch.cat(
                    [batch.dones[-1].to(values.dtype), values.new_zeros(len(trunc_steps))]
                )
                extra = self.policy.value(extra_obs, state, flags)
            else:
                extra = self.policy.value(extra_obs)
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
        """``num_minibatches`` random index sets over ``num_samples`` flat samples (APPO asks
        for env columns instead, whole unrolls, when the policy is recurrent)."""
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


def _identity(obs: Obs) -> Obs:
    return obs


__all__ = ["BatchEvaluation", "DistributedAgent", "DistributedConfig"]
