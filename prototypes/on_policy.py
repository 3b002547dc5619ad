"""On-policy prototype: collect a rollout, add intrinsic rewards, compute GAE, then update on
minibatches with the agent's loss terms."""

from __future__ import annotations

import dataclasses
import logging
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from torch import Tensor, nn

from rlkit import guard
from rlkit.augmentations.base import Augmentation
from rlkit.backends.actor_critic_kernel import FusedActorCritic, fused_kernel, unsupported_reason
from rlkit.backends.recurrent_kernel import (
    RecurrentActingKernel,
    recurrent_sampler,
    recurrent_unsupported_reason,
)
from rlkit.config.rules import Rule, count, non_negative, positive, unit
from rlkit.configurable import Configurable
from rlkit.distributions.base import Distribution
from rlkit.encoders.base import Encoder
from rlkit.envs import check_same_step_autoreset
from rlkit.envs.agent_rows import ACTIVE_KEY, is_multi_agent
from rlkit.losses import Loss, LossPlan, LossTerm, compute_loss
from rlkit.normalization import RewardNormalizer, ValueNormalizer
from rlkit.policies.base import ActorCriticPolicy
from rlkit.policies.state import as_tuple, state_rows
from rlkit.rewards.base import IntrinsicReward, TransitionBatch
from rlkit.storages.base import Storage
from rlkit.storages.rollout import RolloutBatch, RolloutStorage
from rlkit.types import Obs
from rlkit.utils.compiling import eager_only
from rlkit.utils.optim import clip_grad_norm_, flatten_parameters, optimizer_step
from rlkit.utils.tensors import obs_map, stack_obs

from .base import Agent, AgentConfig, declares
from .learning import PolicyEvaluation, evaluate_actions
from .state import FlatOptimizer

log = logging.getLogger("rlkit")


@dataclasses.dataclass
class OnPolicyConfig(AgentConfig):
    """Hyperparameters of the on-policy loop."""

    #: rollout length per env.
    num_steps: int = 128
    #: minibatch size (samples); >= num_steps * num_envs means one full batch.
    batch_size: int = 256
    #: passes over each rollout.
    num_epochs: int = 10
    #: learning rate of the optimizer (Adam by default; annealed to 0 when anneal_lr).
    lr: float = 3e-4
    #: linearly anneal the learning rate to 0 over ``train(total_steps)``.
    anneal_lr: bool = False
    #: discount factor of future rewards.
    gamma: float = 0.99
    #: lambda of generalised advantage estimation (0: one-step TD, 1: full returns).
    gae_lambda: float = 0.95
    #: weight of the entropy bonus in the loss.
    ent_coef: float = 0.0
    #: weight of the value loss in the loss.
    vf_coef: float = 0.5
    #: global gradient-norm clip; None disables.
    max_grad_norm: float | None = 0.5
    #: normalise advantages to zero mean and unit std per minibatch.
    normalize_advantages: bool = True
    #: recurrent policies: steps per training sequence chunk (must divide num_steps); None
    #: trains on each env's whole rollout as one chunk.
    seq_len: int | None = None
    #: scale rewards by the running std of the discounted return.
    normalize_reward: bool = False
    #: clip normalised rewards to +-clip_reward (with normalize_reward).
    clip_reward: float = 10.0

    rules: ClassVar[dict[str, Rule]] = {
        "num_steps": count(),
        "batch_size": count(),
        "num_epochs": count(),
        "seq_len": count(none=True),
        "lr": positive(),
        "gamma": unit(),
        "gae_lambda": unit(),
        "ent_coef": non_negative(),
        "vf_coef": non_negative(),
        "max_grad_norm": positive(none=True),
        "clip_reward": positive(),
    }


class OnPolicyAgent(Agent):
    """Owns the rollout loop; an algorithm supplies its :meth:`loss_terms`.

    Primitives: ``policy`` (an :class:`ActorCriticPolicy`, default
    :class:`~rlkit.policies.ActorCritic`), or ``encoder``/``distribution`` to swap inside the
    default policy; ``augmentation`` applied to minibatch observations in the update
    (RAD-style); ``intrinsic_reward`` added to the rewards before returns and advantages are
    computed; ``storage``, a :class:`RolloutStorage` for ``num_steps`` x the env count. Each
    may be an object, a registered id or a spec dict.

    Recurrent policies (``policy.recurrent``, e.g. ``"lstm_actor_critic"``) work unchanged:
    the loop keeps the state entering each step in :attr:`policy_state` (reset where an
    episode starts, carried across rollouts and checkpoints), the storage keeps it per step,
    and minibatches are whole per-env chunks of ``seq_len`` steps with their initial states.

    Each update runs ``num_epochs`` passes over :meth:`minibatches`; per minibatch
    :meth:`compute_loss` evaluates the policy (through the compute backend: the default MLP
    actor-critic has a hand-written CPU kernel on ``fast``) and assembles the loss terms plus
    :meth:`extra_losses`, and :meth:`clip_and_step` applies it. Every hook listed in
    :attr:`hooks` runs on every backend.
    """

    Config = OnPolicyConfig
    config: OnPolicyConfig
    policy_parts = ("encoder", "distribution")
    #: whether the algorithm's update carries a recurrent policy's state (set False in an
    #: algorithm whose update reads rows out of sequence; such agents refuse recurrent policies).
    trains_recurrent_policies: ClassVar[bool] = True
    #: whether the agent leaves inactive steps of multi-agent rows out of its returns and
    #: minibatches (:meth:`active_steps`). Declared in a class's own body: an agent that
    #: overrides ``compute_returns`` or ``minibatches`` without declaring it True refuses
    #: multi-agent rows (:func:`handles_active_steps`).
    handles_active_steps: ClassVar[bool] = False
    hooks: ClassVar[tuple[str, ...]] = (
        "explore",
        "update",
        "loss_terms",
        "extra_losses",
        "minibatches",
        "clip_and_step",
        "make_optimizer",
    )

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
        storage: RolloutStorage | str | dict[str, Any] | None = None,
        **hyperparameters: Any,
    ) -> None:
        super().__init__(env, config, **hyperparameters)
        check_same_step_autoreset(env, type(self).__name__)
        built_policy = self.build_actor_critic(policy, encoder, distribution)
        self.policy: ActorCriticPolicy = built_policy.to(self.device)
        if self.policy.recurrent and not self.trains_recurrent_policies:
            raise TypeError(
                f"{type(self).__name__} does not train recurrent policies (got "
                f"{type(self.policy).__name__}); PPO, A2C, REINFORCE and V-MPO do"
            )
        self.add_module("policy", self.policy)
        #: the policy's state-dependent exploration (gSDE), redrawn by :meth:`collect_rollout`.
        self.sde: Any = self.attach_state_dependent_noise()
        check_action_masks(self.policy, self.observation_space, type(self).__name__)
        if is_multi_agent(env) and not handles_active_steps(type(self)):
            raise TypeError(
                f"{type(self).__name__} overrides compute_returns or minibatches without "
                "declaring handles_active_steps = True, so it would train on the steps of agents "
                "that are gone or wait for their turn; it refuses multi-agent rows"
            )
        self.build_batch_primitives(augmentation, intrinsic_reward)
        cfg = self.config
        self.storage = self._build_storage(storage)
        self._custom_storage = storage is not None
        self.reward_normalizer = (
            RewardNormalizer(self.num_envs, cfg.gamma, cfg.clip_reward).to(self.device)
            if cfg.normalize_reward
            else None
        )
        if self.reward_normalizer is not None:
            self.add_module("reward_normalizer", self.reward_normalizer)
        #: with a :class:`~rlkit.normalization.ValueNormalizer` (an algorithm sets it, e.g.
        #: MAPPO), the critic predicts normalised values: the loop denormalises them for
        #: returns and advantages, updates the statistics with each rollout's returns, and the
        #: minibatches carry normalised ``returns`` and ``old_values`` for the value loss.
        self.value_normalizer: ValueNormalizer | None = None
        # One contiguous parameter/gradient buffer: single-kernel optimizer steps and clipping.
        self.flat_params = flatten_parameters(self.policy)
        self.optimizer = self.make_optimizer()
        self.register_optimizer("policy", self.optimizer)
        #: the algorithm's loss terms (built once: stateful terms are checkpointed).
        self.terms = nn.ModuleList(self.loss_terms())
        self.add_module("loss_terms", self.terms)
        self.record_loss_terms(list(self.terms))  # type: ignore[arg-type]
        self.track_policy_state(always_starts=True)
        self._kernel: FusedActorCritic | None = None
        self._plan: LossPlan | None = None

    def _build_storage(
        self, storage: RolloutStorage | str | dict[str, Any] | None
    ) -> RolloutStorage:
        """The rollout storage: given, built from a spec, or the default, laid out for the
        policy's distribution and checked against this agent's rollout shape."""
        dist = self.policy.distribution
        defaults: dict[str, Any] = {
            "observation_space": self.observation_space,
            "action_space": self.action_space,
            "num_steps": self.config.num_steps,
            "num_envs": self.num_envs,
            "device": str(self.device),
            "store_next_obs": self.intrinsic_reward is not None,
            "action_shape": list(dist.action_shape),
            "action_dtype": str(dist.action_dtype).removeprefix("torch."),
        }
        specs = self.policy.state_spec()
        if specs:
            defaults["state_shapes"] = [list(spec.shape) for spec in specs]
            defaults["state_dtypes"] = [str(spec.dtype).removeprefix("torch.") for spec in specs]
        built = self.build_primitive("storage", storage, Storage, **defaults)
        if built is None:
            built = RolloutStorage(**defaults)
        name = type(self).__name__
        if not isinstance(built, RolloutStorage):
            raise TypeError(f"{name} needs a RolloutStorage, got {type(built).__name__}")
        if (built.num_steps, built.num_envs) != (self.config.num_steps, self.num_envs):
            raise ValueError(
                f"{name}: the storage holds {built.num_steps} steps x {built.num_envs} envs, but "
                f"the agent collects num_steps={self.config.num_steps} x {self.num_envs} envs"
            )
        stored = [(tuple(b.shape[2:]), b.dtype) for b in getattr(built, "states", ())]
        if stored != [(spec.shape, spec.dtype) for spec in specs]:
            raise ValueError(
                f"{name}: the storage keeps recurrent states {stored}, but the policy's state is "
                f"{[(spec.shape, spec.dtype) for spec in specs]}"
            )
        seq_len = self.config.seq_len
        if specs and seq_len is not None and self.config.num_steps % seq_len:
            raise ValueError(
                f"{name}: seq_len={seq_len} must divide num_steps={self.config.num_steps} "
                "(training sequences are whole chunks of the rollout)"
            )
        steps, size = self.config.num_steps, self.config.batch_size
        if specs and seq_len is None and size < steps:
            log.warning(
                "%s: batch_size=%d is below num_steps=%d and seq_len is unset, so every "
                "minibatch is one env's whole %d-step rollout; seq_len=%d (a divisor of "
                "num_steps) gives minibatches of at most batch_size steps",
                name, size, steps, steps, max(d for d in range(1, size + 1) if steps % d == 0),
            )  # fmt: skip
        if self.intrinsic_reward is not None and not built.store_next_obs:
            raise ValueError(f"{name}: intrinsic rewards need a storage with store_next_obs=True")
        expected = (tuple(dist.action_shape), dist.action_dtype)
        if (tuple(built.actions.shape[2:]), built.actions.dtype) != expected:
            raise ValueError(
                f"{name}: the storage lays out actions as {tuple(built.actions.shape[2:])} "
                f"{built.actions.dtype}, but the distribution produces {expected[0]} {expected[1]}"
            )
        return built

    # ----------------------------------------------------------------- the algorithm's hooks
    @abstractmethod
    def loss_terms(self) -> list[LossTerm]:
        """The terms of the algorithm's loss (:mod:`rlkit.losses`), built once at construction.
        Override and extend ``super().loss_terms()`` to add a term."""

    def extra_losses(self, mb: RolloutBatch, values: Tensor) -> dict[str, Tensor]:
        """Weighted loss parts with their own autograd graph added to the loss (hook; none
        here): for regularisers that run the policy on other inputs, such as DrAC's. Gets the
        minibatch and the values just computed on it (without a graph on kernels); each
        returned part is logged as ``loss/<name>``."""
        return {}

    def make_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer over :attr:`flat_params`, the policy's parameters laid out in one
        buffer (hook; default Adam with eps 1e-5 from :meth:`new_optimizer`)."""
        return self.new_optimizer([self.flat_params], self.config.lr, eps=1e-5)

    def stop_early(self, loss: Loss, epoch: int) -> bool:
        """Whether to end the update before stepping on ``loss`` (hook; PPO's target KL)."""
        return False

    def fused_kernel(self) -> FusedActorCritic | None:
        """The policy's hand-written CPU kernel (:mod:`rlkit.backends.actor_critic_kernel`)
        when the backend runs kernels and the policy has one, else None. Built per call
        (cheap), so it always reflects the current parameters."""
        if not self.backend.kernels or torch.compiler.is_compiling() or torch.jit.is_tracing():
            return None
        return fused_kernel(self.policy)

    def recurrent_acting_kernel(self) -> RecurrentActingKernel | None:
        """The recurrent policy's acting kernel (:mod:`rlkit.backends.recurrent_kernel`) when
        the backend runs kernels and the policy has one, else None. Built per rollout: it
        holds a copy of the recurrent weights."""
        if not self.backend.kernels or torch.compiler.is_compiling() or torch.jit.is_tracing():
            return None
        return recurrent_sampler(self.policy)

    def _refresh_kernel(self, component: str) -> None:
        """Look up the kernel for a rollout or an update and record what runs."""
        self._kernel = self.fused_kernel()
        if component == "policy acting" and self.policy.recurrent:
            self._recurrent_step = self.recurrent_acting_kernel()
            if self._recurrent_step is not None:
                self.backend_report.record(component, "recurrent acting kernel")
                return
            if self.backend.kernels:
                reason = (
                    recurrent_unsupported_reason(self.policy) or "kernels are off while tracing"
                )
                self.backend_report.record(component, "nn.Module + autograd", reason)
                return
        if self._kernel is not None:
            self.backend_report.record(component, "fused actor-critic kernel")
        elif self.backend.kernels:
            reason = unsupported_reason(self.policy) or "kernels are off while tracing"
            self.backend_report.record(component, "nn.Module + autograd", reason)
        else:
            self.backend_report.record(component, "nn.Module + autograd")

    # ----------------------------------------------------------------- the loop
    def iteration(self) -> dict[str, float]:
        self.collect_rollout()
        metrics: dict[str, float] = {}
        batch = None
        if self.intrinsic_reward is not None:
            batch = self._transition_batch()
            bonus = self.intrinsic_reward.reward(batch, self.global_step)
            self.storage.rewards += bonus
            metrics["rollout/intrinsic_reward_mean"] = float(bonus.mean())
        with torch.no_grad():
            last_value = self.true_values(
                self.policy.value(self._current_obs(), self.policy_state, self._episode_starts)
            )
        self.compute_returns(last_value)
        active = self.active_steps()
        if self.value_normalizer is not None:
            returns = self.storage.returns
            self.value_normalizer.update(returns if active is None else returns[active > 0.5])
        if self.config.normalize_advantages and self.config.batch_size >= self._samples(active):
            # One minibatch per epoch: normalising once equals normalising every minibatch.
            self.storage.advantages = normalize(self.storage.advantages, active)
        self.anneal_lr()
        self.policy.train()
        self._refresh_kernel("policy evaluation")
        self._plan = LossPlan(list(self.terms))  # type: ignore[arg-type]
        metrics.update(self.update())
        if self.intrinsic_reward is not None and batch is not None:
            metrics.update(
                {f"intrinsic/{k}": v for k, v in self.intrinsic_reward.update(batch).items()}
            )
        metrics["train/lr"] = float(self.optimizer.param_groups[0]["lr"])
        self.num_updates += 1
        self.storage.reset()
        return metrics

    def compute_returns(self, last_value: Tensor) -> None:
        """Fill the storage's returns and advantages from the rollout and the value of the
        observation after it: GAE with ``gae_lambda`` (PQN passes its Q(lambda)'s lambda); on
        multi-agent rows each agent's own steps (:meth:`active_steps`)."""
        cfg, active = self.config, self.active_steps()
        if active is None:
            self.storage.compute_returns_and_advantages(last_value, cfg.gamma, cfg.gae_lambda)
        else:
            self.storage.compute_returns_and_advantages(
                last_value, cfg.gamma, cfg.gae_lambda, active=active
            )

    def true_values(self, values: Tensor) -> Tensor:
        """The critic's outputs as returns: denormalised with :attr:`value_normalizer`."""
        if self.value_normalizer is None:
            return values
        return self.value_normalizer.denormalize(values)

    def active_steps(self) -> Tensor | None:
        """``[T, N]`` 1 where a row acted (hook): on multi-agent rows
        (:mod:`rlkit.envs.agent_rows`) the stored ``"active"`` observation, which leaves the
        steps of agents that are gone or wait for their turn out of returns and the loss;
        None (every step counts) otherwise."""
        obs = self.storage.obs
        if isinstance(obs, dict) and ACTIVE_KEY in obs:
            return obs[ACTIVE_KEY].reshape(self.storage.num_steps, self.storage.num_envs)
        return None

    def _samples(self, active: Tensor | None) -> int:
        return len(self.storage) if active is None else int(active.sum())

    def anneal_lr(self) -> None:
        """With ``anneal_lr``: linear decay of every registered optimizer's learning rate to 0
        by ``train(total_steps)``, from the progress before this rollout."""
        if not self.config.anneal_lr:
            return
        remaining = self.progress_remaining()
        if remaining is None:
            return
        for opt in self.registry.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = self.config.lr * remaining

    def progress_remaining(self) -> float | None:
        """The fraction of ``train(total_steps)`` left before this rollout (1 at the start, 0
        at the end; None outside ``train``): what linear schedules anneal with."""
        if not self._target_steps:
            return None
        done = self.global_step - self.config.num_steps * self.num_envs
        return max(0.0, 1.0 - done / self._target_steps)

    def update(self) -> dict[str, float]:
        """``num_epochs`` passes over :meth:`minibatches`, one :meth:`clip_and_step` on
        :meth:`compute_loss` each (hook). Logged: each term's value and the diagnostics,
        averaged over the last epoch's minibatches."""
        cfg = self.config
        stats: dict[str, list[Tensor]] = {}
        every_minibatch = self.diagnostics_needed()
        for epoch in range(cfg.num_epochs):
            last_epoch = epoch == cfg.num_epochs - 1
            for mb in self.minibatches():
                loss = self.compute_loss(mb, diagnostics=last_epoch or every_minibatch)
                if self.stop_early(loss, epoch):
                    out = summarize(stats)
                    out["train/early_stop_epoch"] = float(epoch)
                    return out
                self.clip_and_step(loss)
                if last_epoch:
                    record(stats, loss)
        return summarize(stats)

    def diagnostics_needed(self) -> bool:
        """Whether every minibatch needs the terms' diagnostics (e.g. for :meth:`stop_early`);
        otherwise only the last epoch's are computed, for logging."""
        return False

    def evaluate_minibatch(self, mb: RolloutBatch, need_entropy: bool = True) -> PolicyEvaluation:
        """The policy's log-probs, entropies and values of the minibatch's actions (and any
        other output the loss terms read), through the kernel on ``fast`` (see
        :mod:`prototypes.learning`); a hook for policies that evaluate differently."""
        if mb.states:
            return evaluate_actions(
                self.policy, None, mb.obs, mb.actions, need_entropy, mb.states, mb.episode_starts
            )
        return evaluate_actions(self.policy, self._kernel, mb.obs, mb.actions, need_entropy)

    def compute_loss(self, mb: RolloutBatch, diagnostics: bool = False) -> Loss:
        """The loss of one minibatch: :meth:`loss_terms` on the policy's evaluation and the
        batch, plus :meth:`extra_losses` (on ``compile`` the evaluation and the terms run as
        one compiled function)."""
        if self.backend.compile:
            return self._compiled_loss(mb, diagnostics)
        plan = self._plan
        if plan is None or plan.closed_form != self.backend.closed_form:
            plan = self._plan = LossPlan(list(self.terms))  # type: ignore[arg-type]
        ev = self.evaluate_minibatch(mb, diagnostics or plan.weights("entropy"))
        inputs = {
            **ev.outputs,
            "old_log_prob": mb.old_log_probs,
            "old_value": mb.old_values,
            "advantage": mb.advantages,
            "return": mb.returns,
        }
        extra = self.extra_losses(mb, ev.outputs.get("value"))  # type: ignore[arg-type]
        return plan(inputs, pullback=ev.pullback, extra=extra, diagnostics=diagnostics)

    def _compiled_loss(self, mb: RolloutBatch, diagnostics: bool) -> Loss:
        values, total, metrics = self.compile_update("loss", self._loss_values)(mb)
        return Loss(values, total, total.backward, metrics if diagnostics else {})

    def _loss_values(self, mb: RolloutBatch) -> tuple[dict[str, Tensor], Tensor, dict[str, Tensor]]:
        """The minibatch loss as tensors (what the ``compile`` backend compiles)."""
        ev = self.evaluate_minibatch(mb)
        inputs = {**ev.outputs, **batch_inputs(mb)}
        loss = compute_loss(
            list(self.terms),  # type: ignore[arg-type]
            inputs,
            extra=self.extra_losses(mb, ev.outputs.get("value")),  # type: ignore[arg-type]
            diagnostics=True,
            closed_form=False,
        )
        return loss.values, loss.total, loss.metrics

    def minibatches(self) -> Iterator[RolloutBatch]:
        """Shuffled minibatches of the current rollout for one epoch (hook): advantages
        normalised per minibatch (when ``normalize_advantages``) and observations augmented
        (if set). For a recurrent policy, whole sequence chunks (``seq_len`` steps, see
        :meth:`RolloutStorage.sequence_minibatches`)."""
        cfg = self.config
        active = self.active_steps()
        full = cfg.batch_size >= self._samples(active)
        if active is not None and self.policy.recurrent and not bool(active.all()):
            raise ValueError(
                f"{type(self).__name__}: a recurrent policy trains on whole sequences, but this "
                "rollout has steps where agents were gone or waiting for their turn; use a "
                "feed-forward policy on this env"
            )
        if self.policy.recurrent:
            batches = self.storage.sequence_minibatches(
                cfg.batch_size, cfg.seq_len, self._generator
            )
            if cfg.seq_len is not None:
                full = max(1, cfg.batch_size // cfg.seq_len) * cfg.seq_len >= len(self.storage)
        elif active is not None:
            rows = torch.nonzero(active.reshape(-1) > 0.5).squeeze(-1)
            batches = self.storage.minibatches(cfg.batch_size, self._generator, rows=rows)
        else:
            batches = self.storage.minibatches(cfg.batch_size, self._generator)
        for mb in batches:
            if cfg.normalize_advantages and not full:  # full batches were normalised once
                mb = dataclasses.replace(mb, advantages=normalize(mb.advantages))
            if self.augmentation is not None:
                mb = dataclasses.replace(mb, obs=self.augment(mb.obs))
            if self.value_normalizer is not None:
                norm = self.value_normalizer.normalize
                mb = dataclasses.replace(
                    mb, returns=norm(mb.returns), old_values=norm(mb.old_values)
                )
            yield mb

    def clip_and_step(self, loss: Any, optimizer: FlatOptimizer | None = None) -> Tensor | None:
        """Backward, optional global grad-norm clip, optimizer step (hook). ``loss`` is a
        :class:`~rlkit.losses.Loss` (or a tensor); ``optimizer`` another registered
        :class:`FlatOptimizer` to step instead of the policy's."""
        if optimizer is not None:
            return super().clip_and_step(loss, optimizer)
        self.zero_grad()
        loss.backward()
        return self.apply_gradients()

    @eager_only
    def zero_grad(self) -> None:
        """Zero the policy's gradient buffer (before a backward pass)."""
        grad = self.flat_params.grad
        assert grad is not None
        grad.zero_()

    @eager_only
    def apply_gradients(self) -> Tensor | None:
        """Optional global grad-norm clip and the optimizer step on the gradients now in
        :attr:`flat_params`; returns the norm before clipping when clipping is on."""
        grad = self.flat_params.grad
        assert grad is not None
        norm = None
        if self.config.max_grad_norm is not None:
            norm = clip_grad_norm_(grad, self.config.max_grad_norm)
        optimizer_step(self.optimizer)
        return norm

    # ----------------------------------------------------------------- collection
    def primitives(self) -> dict[str, Configurable | None]:
        return {
            **super().primitives(),
            # the default storage is rebuilt from the hyperparameters; a custom one is recorded
            "storage": self.storage if self._custom_storage else None,
        }

    def continue_from(self, obs: Any | None) -> None:
        super().continue_from(obs)
        if obs is None:  # every env starts a new episode
            self._episode_starts = torch.ones(self.num_envs, device=self.device)

    def _current_obs(self) -> Obs:
        if self._obs is None:
            raw = self._reset_env()
            self._obs = self._normalize_and_update(raw)
        return self._obs

    def _normalize_and_update(self, obs: Obs) -> Obs:
        if self.obs_normalizer is None:
            return obs
        self.obs_normalizer.update(obs)
        return self.obs_normalizer(obs)

    def explore(self, obs: Obs) -> tuple[Tensor, Tensor, Tensor]:
        """Raw actions, their log-probabilities and the values for one rollout step (hook;
        called under ``inference_mode``). Default: sample the policy, through its kernel's
        sampler on ``fast``. With a recurrent policy it reads :attr:`policy_state` and the
        episode starts, and sets :attr:`policy_state` to the state after the step."""
        sample = self._sampler
        if sample is not None and isinstance(obs, Tensor):
            return sample(obs)
        if self.policy.recurrent:
            step = self._recurrent_step
            if step is not None and isinstance(obs, Tensor):
                starts = self._episode_starts
                actions, log_probs, values, self.policy_state = step(
                    obs, as_tuple(self.policy_state), starts
                )
                return actions, log_probs, values
            out = self.policy(obs, self.policy_state, self._episode_starts)
            self.policy_state = out.state
        else:
            out = self.policy(obs)
        actions = out.dist.sample()
        return actions, out.dist.log_prob(actions), out.value

    def collect_rollout(self) -> None:
        """Step the envs ``num_steps`` times, storing transitions in :attr:`storage`."""
        self.policy.eval()
        env, storage, cfg = self.env, self.storage, self.config
        dist_family = self.policy.distribution
        recurrent = self.policy.recurrent
        self._refresh_kernel("policy acting")
        # The parameters do not change during a rollout: a packed snapshot of them is safe.
        self._sampler = self._kernel.sampler() if self._kernel is not None else None
        obs = self._current_obs()
        try:
            for step in range(cfg.num_steps):
                if self.sde is not None:
                    self.sde.redraw(step, self.num_envs, self._generator)
                state_in = self.policy_state
                with torch.inference_mode():
                    actions, log_probs, step_values = self.explore(obs)
                    step_values = self.true_values(step_values)
                    if recurrent and self.policy_state is state_in:
                        raise RuntimeError(
                            f"{type(self).__name__}.explore did not advance policy_state; an "
                            "override for a recurrent policy must set self.policy_state to the "
                            "state after the step"
                        )
                    env_actions = self.to_env_actions(dist_family.postprocess(actions))
                next_obs_np, rewards_np, terminated, truncated, info = env.step(env_actions)
                guard.check_env(next_obs_np, rewards_np, self.global_step)
                dones_np = np.logical_or(terminated, truncated)
                self.episodes.step(rewards_np, dones_np, info)
                rewards, dones = self._float_tensor(rewards_np), self._float_tensor(dones_np)
                if self.reward_normalizer is not None:
                    rewards = self.reward_normalizer(rewards, dones)
                next_obs = self._normalize_and_update(self.obs_to_tensor(next_obs_np))
                final_obs = None
                if dones_np.any():
                    final_obs = self._final_obs(info, dones_np)
                    truncated_only = np.logical_and(truncated, np.logical_not(terminated))
                    if truncated_only.any():
                        # Bootstrap: the episode was cut, not ended; its value continues.
                        idx = np.flatnonzero(truncated_only)
                        sub = _rows(final_obs, torch.as_tensor(idx, device=self.device))
                        with torch.inference_mode():
                            if recurrent:  # the memory through this step, no reset
                                index = torch.as_tensor(idx, device=self.device)
                                rows = state_rows(as_tuple(self.policy_state), index)
                                values = self.policy.value(sub, rows, None)
                            else:
                                values = self.policy.value(sub)
                            values = self.true_values(values)
                        rewards[idx] += cfg.gamma * values.to(rewards.dtype)
                    if self.intrinsic_reward is not None:
                        self.intrinsic_reward.reset_episodes(dones.bool())
                stored_next = None
                if storage.store_next_obs:
                    stored_next = (
                        next_obs if final_obs is None else _merge(next_obs, final_obs, dones)
                    )
                storage.add(
                    obs,
                    actions,
                    rewards,
                    dones,
                    step_values,
                    log_probs,
                    self._episode_starts,
                    next_obs=stored_next,
                    **({"state": as_tuple(state_in)} if recurrent else {}),
                )
                self._episode_starts = dones
                obs = next_obs
                self.global_step += self.num_envs
        finally:
            self._sampler = self._recurrent_step = None
        self._obs = obs

    _sampler: Any = None
    _recurrent_step: RecurrentActingKernel | None = None

    def _float_tensor(self, array: np.ndarray) -> Tensor:
        """A float32 copy of ``array`` on the agent's device (NumPy's cast then ``from_numpy``
        on the CPU: ~1 us against ~2.5 us for ``torch.as_tensor(..., dtype=...)``)."""
        if self.device.type == "cpu":
            return torch.from_numpy(np.array(array, dtype=np.float32))
        return torch.as_tensor(array, dtype=torch.float32, device=self.device)

    def _final_obs(self, info: dict[str, Any], dones: np.ndarray) -> Obs:
        """Final observations (preprocessed) for all envs; rows of unfinished envs are junk."""
        final = info.get("final_obs")
        if final is None:
            raise RuntimeError(
                "the env finished an episode without info['final_obs']; build it with "
                "rlkit.envs.make_vec_env (same-step autoreset)"
            )
        mask = np.asarray(info.get("_final_obs", dones), dtype=bool)
        template = next(o for o, m in zip(final, mask, strict=True) if m)
        items = [final[i] if mask[i] else template for i in range(len(final))]
        tensor = self.obs_to_tensor(stack_obs(items, self.observation_space))
        return self.preprocess(tensor)

    def _transition_batch(self) -> TransitionBatch:
        s = self.storage
        assert s.next_obs is not None
        return TransitionBatch(obs=s.obs, actions=s.actions, next_obs=s.next_obs, dones=s.dones)


def batch_inputs(mb: RolloutBatch) -> dict[str, Tensor]:
    """A rollout minibatch as loss-term inputs (``old_log_prob``, ``old_value``,
    ``advantage``, ``return``)."""
    return {
        "old_log_prob": mb.old_log_probs,
        "old_value": mb.old_values,
        "advantage": mb.advantages,
        "return": mb.returns,
    }


def record(stats: dict[str, list[Tensor]], loss: Loss) -> None:
    """Keep a minibatch's term values (``loss/<name>``) and diagnostics (``train/<key>``)."""
    for name, value in loss.values.items():
        stats.setdefault(f"loss/{name}", []).append(value)
    for name, value in loss.metrics.items():
        stats.setdefault(f"train/{name}", []).append(value)


def summarize(stats: dict[str, list[Tensor]]) -> dict[str, float]:
    """Means of the recorded values."""
    return {k: float(torch.stack(v).mean()) for k, v in stats.items() if v}


def normalize(x: Tensor, active: Tensor | None = None) -> Tensor:
    """Zero mean, unit std (advantage normalisation); a single sample is left as is. With
    ``active`` the statistics are those of the active entries (the others are not used)."""
    if active is not None:
        picked = x[active > 0.5]
        if picked.numel() < 2:
            return x
        return (x - picked.mean()) / (picked.std() + 1e-8)
    if x.numel() < 2:
        return x
    return (x - x.mean()) / (x.std() + 1e-8)


#: the hooks through which returns and minibatches are made: a class that overrides one
#: declares ``handles_active_steps`` in its own body, or multi-agent rows are refused.
ACTIVE_HOOKS = ("compute_returns", "minibatches")


def handles_active_steps(cls: type) -> bool:
    """Whether the on-policy agent class ``cls`` leaves inactive steps out: each class between
    it and :class:`OnPolicyAgent` declares ``handles_active_steps = True`` in its own body or
    overrides none of :data:`ACTIVE_HOOKS`, and none declares it False."""
    return declares(cls, OnPolicyAgent, "handles_active_steps", ACTIVE_HOOKS)


def check_action_masks(policy: Any, observation_space: Any, owner: str) -> None:
    """Refuse observations with ``"action_mask"`` when the policy or its distribution would
    ignore the mask (illegal actions must never be sampled silently)."""
    if not (
        isinstance(observation_space, spaces.Dict) and "action_mask" in observation_space.spaces
    ):
        return
    if not getattr(policy, "applies_action_mask", False):
        raise TypeError(
            f"{owner}: the observation has 'action_mask' but the policy "
            f"{type(policy).__name__} does not apply masks (set applies_action_mask after "
            "passing the mask to distribution.masked)"
        )
    dist = getattr(policy, "distribution", None)
    if dist is not None and not dist.supports_action_mask:
        raise TypeError(
            f"{owner}: the observation has 'action_mask' but the distribution "
            f"{type(dist).__name__} cannot apply masks; use a categorical distribution"
        )


def _rows(obs: Obs, index: Tensor) -> Obs:
    """Select batch rows of a tensor or dict observation."""
    return obs_map(lambda x: x[index], obs)


def _merge(next_obs: Obs, final_obs: Obs, dones: Tensor) -> Obs:
    """``next_obs`` with the rows of finished envs replaced by their final observations."""
    mask = dones.bool()

    def pick(new: Tensor, fin: Tensor) -> Tensor:
        m = mask.reshape(-1, *([1] * (new.dim() - 1)))
        return torch.where(m, fin.to(new.dtype), new)

    if isinstance(next_obs, dict):
        assert isinstance(final_obs, dict)
        return {k: pick(v, final_obs[k]) for k, v in next_obs.items()}
    assert isinstance(final_obs, Tensor)
    return pick(next_obs, final_obs)


__all__ = [
    "OnPolicyAgent",
    "OnPolicyConfig",
    "RolloutBatch",
    "batch_inputs",
    "normalize",
    "record",
    "summarize",
]
