"""Phasic Policy Gradient (PPG; Cobbe et al. 2020). Losses and defaults follow the authors'
code (github.com/openai/phasic-policy-gradient, ``ppg.py``/``train.py``)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from gymnasium.vector import VectorEnv
from torch import nn
from torch.func import functional_call

from rlkit.config.rules import Rule, count, non_negative, positive
from rlkit.losses import LossPlan, PolicyKL, ValueLoss
from rlkit.policies.auxiliary import AuxiliaryActorCritic
from rlkit.prototypes import AGENTS, FlatOptimizer
from rlkit.types import Obs
from rlkit.utils.tensors import obs_map

from .daac import check_policy, two_network_policy
from .ppo import PPO, PPOConfig


@dataclasses.dataclass
class PPGConfig(PPOConfig):
    """PPG hyperparameters (on top of :class:`PPOConfig`, which runs the policy phase)."""

    #: policy-phase epochs per rollout (E_pi).
    num_epochs: int = 1
    #: learning rate of the policy phase's Adam optimizer.
    lr: float = 5e-4
    #: weight of the entropy bonus in the policy phase.
    ent_coef: float = 0.01
    #: policy-phase iterations between auxiliary phases (N_pi).
    n_pi: int = 32
    #: epochs over the stored rollouts in each auxiliary phase (E_aux).
    aux_epochs: int = 6
    #: weight of the behavioural-cloning KL(pi_old || pi) in the joint loss.
    beta_clone: float = 1.0
    #: weight of the value network's regression in the auxiliary phase.
    vf_true_coef: float = 1.0
    #: auxiliary-phase learning rate (None: ``lr``) and minibatch size (None: ``batch_size``).
    aux_lr: float | None = None
    #: auxiliary-phase minibatch size (samples); None: ``batch_size``.
    aux_batch_size: int | None = None

    rules: ClassVar[dict[str, Rule]] = {
        "n_pi": count(),
        "aux_epochs": count(0),
        "beta_clone": non_negative(),
        "vf_true_coef": non_negative(),
        "aux_lr": positive(none=True),
        "aux_batch_size": count(none=True),
    }


@AGENTS.register("ppg")
class PPG(PPO):
    """PPG with separate policy and value networks (an :class:`AuxiliaryActorCritic`).

    Policy phase: PPO (one optimizer over both networks) for ``n_pi`` iterations, keeping each
    rollout's observations and value targets. Auxiliary phase: ``aux_epochs`` passes over those
    samples minimising ``beta_clone * KL(pi_old || pi) + 0.5 (V_aux - V_targ)^2 +
    vf_true_coef * 0.5 (V - V_targ)^2`` with a separate Adam, where ``pi_old`` is the policy at
    the start of the phase. No gradient clipping in this phase (as the authors' code).

    Memory: the buffer holds ``n_pi * num_steps * num_envs`` observations (plus one float per
    sample for targets and ``num_params`` floats for the old policy during the phase), e.g.
    32 x 256 x 64 Procgen frames of 3x64x64 uint8 = 6.4 GB. It is not checkpointed: after a
    resume the next auxiliary phase comes ``n_pi`` iterations later.
    """

    Config = PPGConfig
    config: PPGConfig
    policy: AuxiliaryActorCritic

    def __init__(
        self,
        env: VectorEnv,
        config: Any = None,
        *,
        policy: Any = None,
        encoder: Any = None,
        distribution: Any = None,
        **kwargs: Any,
    ) -> None:
        spec = two_network_policy(
            type(self).__name__, "auxiliary_actor_critic", policy, encoder, distribution
        )
        super().__init__(env, config, policy=spec, **kwargs)
        check_policy(type(self).__name__, self.policy, AuxiliaryActorCritic)
        cfg = self.config
        aux_lr = cfg.aux_lr if cfg.aux_lr is not None else cfg.lr
        self.aux_optimizer = self.new_optimizer([self.flat_params], aux_lr, eps=cfg.adam_eps)
        self.register_optimizer("aux", self.aux_optimizer)
        # the auxiliary phase steps the same buffer without gradient clipping (as the authors)
        self.aux_group = FlatOptimizer.over(self.flat_params, self.aux_optimizer)
        #: the auxiliary phase's loss: behavioural cloning plus both value regressions.
        self.aux_terms = nn.ModuleList(
            [
                PolicyKL(cfg.beta_clone, name="clone_kl"),
                ValueLoss(0.5, prediction="aux_value", name="aux_value_loss"),
                ValueLoss(0.5 * cfg.vf_true_coef, name="value_loss"),
            ]
        )
        self.add_module("aux_terms", self.aux_terms)
        self._aux_obs: list[Obs] = []
        self._aux_targets: list[torch.Tensor] = []
        # the stored rollouts go into checkpoints, so a resumed run continues the same phase
        self.add_state("aux_targets", self._stacked_targets, self._set_targets)
        keys = list(self.observation_space.spaces) if isinstance(self._aux_space(), dict) else []
        for index, key in enumerate(keys or [None]):  # state names are plain: keys by position
            name = "aux_obs" if key is None else f"aux_obs_{index}"
            self.add_state(name, self._stacked_obs(key), self._set_obs(key))

    def _aux_space(self) -> Any:
        return getattr(self.observation_space, "spaces", None)

    def _stacked_targets(self) -> torch.Tensor:
        return torch.stack(self._aux_targets) if self._aux_targets else torch.empty(0)

    def _set_targets(self, value: torch.Tensor) -> None:
        self._aux_targets = [t.to(self.device) for t in value.unbind(0)] if value.numel() else []

    def _stacked_obs(self, key: str | None) -> Any:
        def get() -> torch.Tensor:
            parts = [o if key is None else o[key] for o in self._aux_obs]  # type: ignore[index]
            return torch.stack(parts) if parts else torch.empty(0)  # type: ignore[arg-type]

        return get

    def _set_obs(self, key: str | None) -> Any:
        def set_(value: torch.Tensor) -> None:
            rows = [t.to(self.device) for t in value.unbind(0)] if value.numel() else []
            if key is None:
                self._aux_obs = rows  # type: ignore[assignment]
                return
            if len(self._aux_obs) != len(rows):
                self._aux_obs = [{} for _ in rows]
            for entry, row in zip(self._aux_obs, rows, strict=True):
                entry[key] = row  # type: ignore[index]

        return set_

    def update(self) -> dict[str, float]:
        metrics = super().update()
        n = len(self.storage)
        self._aux_obs.append(
            obs_map(lambda x: x.reshape(n, *x.shape[2:]).clone(), self.storage.obs)
        )
        self._aux_targets.append(self.storage.returns.reshape(n).clone())
        if len(self._aux_obs) >= self.config.n_pi:
            metrics.update(self.auxiliary_phase())
        return metrics

    def auxiliary_phase(self) -> dict[str, float]:
        """Run the auxiliary phase on the stored rollouts, then clear them."""
        cfg = self.config
        obs: Obs
        first = self._aux_obs[0]
        if isinstance(first, dict):
            obs = {k: torch.cat([o[k] for o in self._aux_obs]) for k in first}  # type: ignore[index]
        else:
            obs = torch.cat(self._aux_obs)  # type: ignore[arg-type]
        targets = torch.cat(self._aux_targets)
        self._aux_obs, self._aux_targets = [], []
        total = targets.shape[0]
        batch = cfg.aux_batch_size or cfg.batch_size
        policy = self.policy
        # pi_old: head outputs and the distribution family's own parameters (e.g. a learned
        # log-std), frozen at the start of the phase.
        with torch.no_grad():
            old_params = torch.cat(
                [
                    policy.action_params(_select(obs, slice(i, i + batch)))
                    for i in range(0, total, batch)
                ]
            )
            dist_state = {k: v.detach().clone() for k, v in policy.distribution.named_parameters()}
        stats: dict[str, list[torch.Tensor]] = {}
        plan = LossPlan(list(self.aux_terms))  # type: ignore[arg-type]
        for _ in range(cfg.aux_epochs):
            perm = torch.randperm(total, generator=self._generator).to(targets.device)
            for start in range(0, total, batch):
                idx = perm[start : start + batch]
                mb_obs = _select(obs, idx)
                old_dist = functional_call(policy.distribution, dist_state, (old_params[idx],))
                dist, aux_values = policy.actor_forward(mb_obs)
                inputs = {
                    "old_dist": old_dist,
                    "dist": dist,
                    "aux_value": aux_values,
                    "value": policy.value(mb_obs),
                    "return": targets[idx],
                }
                loss = plan(inputs)
                self.clip_and_step(loss, self.aux_group)
                for key, value in loss.values.items():
                    stats.setdefault(f"aux/{key}", []).append(value)
        return {k: float(torch.stack(v).mean()) for k, v in stats.items()}


def _select(obs: Obs, index: torch.Tensor | slice) -> Obs:
    """Rows ``index`` of a tensor or dict observation."""
    return obs_map(lambda x: x[index], obs)


__all__ = ["PPG", "PPGConfig"]
