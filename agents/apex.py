"""Ape-X DQN (Horgan et al. 2018, "Distributed Prioritized Experience Replay"): many actors,
each epsilon-greedy at its own rate, send n-step transitions with priorities they computed;
one learner replays them by priority (double Q-learning, dueling heads)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import Tensor

from rlkit.config.rules import Rule, non_negative, unit
from rlkit.distributed import EpsilonGreedy, TrajectoryBatch, nstep_transitions
from rlkit.prototypes import AGENTS, ActorLearner, ActorsConfig
from rlkit.storages import ReplayStorage, Storage, TransitionReplay
from rlkit.utils.tensors import obs_map

from .dqn import DQN, DQNConfig


@dataclasses.dataclass
class ApeXConfig(DQNConfig, ActorsConfig):
    """DQN's hyperparameters and the actors' (:class:`~rlkit.prototypes.ActorsConfig`).

    Defaults follow the paper's Atari setting where they apply (n-step 3, double Q, dueling,
    prioritized replay with alpha 0.6 and beta 0.4, epsilon 0.4 and exponent 7, 50-step unrolls,
    target copied every 2,500 updates); learner-side sizes are DQN's. DQN's epsilon schedule
    (``exploration_*``) does not apply: actor ``i`` of ``N`` always acts with
    ``actor_epsilon ** (1 + actor_epsilon_alpha * i / (N - 1))``. ``train_freq`` counts
    transitions from all actors per ``gradient_steps`` updates (the replay ratio)."""

    #: n-step returns (the paper's 3).
    n_step: int = 3
    #: double Q-learning: the online net picks the next action.
    double_q: bool = True
    #: dueling head in the default Q-network.
    dueling: bool = True
    #: prioritized replay, seeded with the actors' initial |TD error| priorities.
    prioritized_replay: bool = True
    #: unroll length: env steps per sub-env in one actor trajectory.
    num_steps: int = 50
    #: sub-envs per actor (one, as the paper); None: as many as the env has.
    envs_per_actor: int | None = 1
    #: base exploration rate and its exponent across actors (the paper's 0.4 and 7).
    actor_epsilon: float = 0.4
    #: exponent spreading epsilon across actors (eps ** (1 + alpha i / (N - 1))).
    actor_epsilon_alpha: float = 7.0

    rules: ClassVar[dict[str, Rule]] = {
        "actor_epsilon": unit(),
        "actor_epsilon_alpha": non_negative(),
    }


class ApeXActor(EpsilonGreedy):
    """An Ape-X actor's behaviour: epsilon-greedy, and each unroll's initial priorities
    ``|R + gamma_k max_a Q(s', a) - Q(s, a)|`` from the actor's own copy of the network over
    the same n-step transitions the learner stores."""

    def __init__(self, epsilon: float, n_step: int, gamma: float) -> None:
        super().__init__(epsilon)
        self.n_step = int(n_step)
        self.gamma = float(gamma)

    def annotate(self, policy: Any, data: TrajectoryBatch) -> dict[str, Tensor]:
        with torch.no_grad():
            tr = nstep_transitions(data, self.n_step, self.gamma)
            device = next(policy.parameters()).device
            obs = obs_map(lambda x: x.to(device), tr.obs)
            next_obs = obs_map(lambda x: x.to(device), tr.next_obs)
            q = policy.q_values(obs).gather(-1, tr.actions.to(device).unsqueeze(-1)).squeeze(-1)
            target = tr.rewards.to(device) + tr.discounts.to(device) * policy.q_values(
                next_obs
            ).amax(-1)
        return {"priorities": (target - q).abs().reshape(data.num_steps, data.num_envs)}


@AGENTS.register("apex")
class ApeX(ActorLearner, DQN):
    """Ape-X: the actor pool of :class:`~rlkit.prototypes.ActorLearner` on DQN's learner.

    Each iteration gathers unrolls (``sync``: one per actor; ``async``: whatever finished),
    stores their n-step transitions with the actors' priorities in a
    :class:`~rlkit.storages.TransitionReplay`, then takes the updates they are worth
    (``gradient_steps`` per ``train_freq`` transitions) once ``learning_starts`` env steps are
    in. Actors get the latest weights with every unroll request. The update is DQN's.
    """

    Config = ApeXConfig
    config: ApeXConfig
    #: DQN's hooks but ``explore`` (the actors explore, with :meth:`actor_behaviour`).
    hooks = (*(h for h in DQN.hooks if h != "explore"), "actor_behaviour", "store_unroll")
    #: the actors sum n-step returns with +gamma themselves: no alternating-turn games
    negamax_targets = False

    def setup(self) -> None:
        super().setup()
        #: updates earned by transitions but not taken yet (fractions of the replay ratio).
        self._update_credit = 0.0
        self.add_state("update_credit", lambda: self._update_credit, self._set_credit)

    def _set_credit(self, value: Any) -> None:
        self._update_credit = float(value)

    # ----------------------------------------------------------------- actors
    def actor_epsilon(self, actor_id: int) -> float:
        """The paper's ``eps ** (1 + alpha * i / (N - 1))`` (``eps`` for a single actor)."""
        cfg = self.config
        if cfg.num_actors == 1:
            return cfg.actor_epsilon
        return cfg.actor_epsilon ** (1 + cfg.actor_epsilon_alpha * actor_id / (cfg.num_actors - 1))

    def actor_behaviour(self, actor_id: int) -> ApeXActor:
        cfg = self.config
        return ApeXActor(self.actor_epsilon(actor_id), cfg.n_step, cfg.gamma)

    # ----------------------------------------------------------------- replay
    @property
    def unroll_width(self) -> int:
        """Transitions per unroll: what one storage ``add`` takes."""
        return self.envs_per_actor * self.config.num_steps

    def _build_storage(self, storage: ReplayStorage | str | dict[str, Any] | None) -> ReplayStorage:
        cfg = self.config
        defaults: dict[str, Any] = {
            "observation_space": self.observation_space,
            "action_space": self.action_space,
            "capacity": cfg.buffer_size,
            "width": self.unroll_width,
            "gamma": cfg.gamma,
            "device": str(self.device),
        }
        if cfg.prioritized_replay:
            defaults["sampler"] = {
                "id": "prioritized",
                "alpha": cfg.per_alpha,
                "beta": cfg.per_beta,
                "beta_final": cfg.per_beta_final,
                "beta_steps": cfg.per_beta_steps,
            }
        built = self.build_primitive("storage", storage, Storage, **defaults)
        return self._check_storage(built if built is not None else TransitionReplay(**defaults))

    def _check_storage(self, storage: Any) -> ReplayStorage:
        name, width = type(self).__name__, self.unroll_width
        if not isinstance(storage, TransitionReplay):
            raise TypeError(
                f"{name} stores the actors' n-step transitions and needs a TransitionReplay "
                f"(id 'transition_replay'), got {type(storage).__name__}"
            )
        if storage.width != width or storage.gamma != self.config.gamma:
            raise ValueError(
                f"{name}: the storage takes {storage.width} transitions per add with "
                f"gamma={storage.gamma}; this agent's unrolls have envs_per_actor x num_steps = "
                f"{width} and gamma={self.config.gamma}"
            )
        return storage

    def store_unroll(self, data: TrajectoryBatch) -> None:
        """Add an unroll's n-step transitions with its actor's priorities (hook; an unroll
        without ``priorities`` enters with the largest priority seen, as in plain PER)."""
        cfg = self.config
        tr = nstep_transitions(data, cfg.n_step, cfg.gamma)
        assert isinstance(self.storage, TransitionReplay)
        fields = (tr.obs, tr.actions, tr.rewards, tr.next_obs, tr.terminated, tr.truncated)
        priorities = data.extras.get("priorities")
        if priorities is None:
            self.storage.add(*fields, tr.discounts)
        else:
            self.storage.add_with_priorities(priorities, *fields, tr.discounts)

    # ----------------------------------------------------------------- the loop
    def iteration(self) -> dict[str, float]:
        cfg = self.config
        trajectories, metrics = self.gather_unrolls()
        for t in trajectories:
            if self.obs_normalizer is not None:
                obs = obs_map(lambda x: x.reshape(-1, *x.shape[2:]), t.data.obs)
                self.obs_normalizer.update(obs_map(lambda x: x.to(self.device), obs))
            self.store_unroll(t.data)
        if self.global_step >= cfg.learning_starts:
            per_step = 1.0 if cfg.gradient_steps == -1 else cfg.gradient_steps / cfg.train_freq
            self._update_credit += sum(t.env_steps for t in trajectories) * per_step
            updates = int(self._update_credit)
            self._update_credit -= updates
            if updates:
                metrics.update({k: float(v) for k, v in self.train_round(updates).items()})
        metrics["replay/size"] = float(len(self.storage))
        return metrics

    def iteration_metrics(self) -> dict[str, float]:
        return {}


__all__ = ["ApeX", "ApeXActor", "ApeXConfig"]
