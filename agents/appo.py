"""APPO: asynchronous PPO, the clipped surrogate on V-trace advantages and targets."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from rlkit.config.rules import Rule, positive
from rlkit.distributed.trajectory import TrajectoryBatch
from rlkit.losses import ClippedSurrogate, EntropyBonus, LossTerm, ValueLoss
from rlkit.prototypes import AGENTS, DistributedAgent, DistributedConfig
from rlkit.prototypes.on_policy import normalize, record, summarize
from rlkit.types import Obs
from rlkit.utils.tensors import obs_map


@dataclasses.dataclass
class APPOConfig(DistributedConfig):
    """APPO hyperparameters (on top of :class:`DistributedConfig`)."""

    #: passes over each learner batch.
    num_epochs: int = 4
    #: shuffled minibatches per pass (env columns for recurrent policies).
    num_minibatches: int = 4
    #: weight of the entropy bonus in the loss.
    ent_coef: float = 0.0
    #: global gradient-norm clip; None disables.
    max_grad_norm: float | None = 0.5
    #: policy-ratio clip.
    clip_range: float = 0.2
    #: normalise the V-trace policy-gradient advantages per minibatch.
    normalize_advantages: bool = True

    rules: ClassVar[dict[str, Rule]] = {"clip_range": positive()}


@AGENTS.register("appo")
class APPO(DistributedAgent):
    """PPO's clipped surrogate where the unrolls may be stale (asynchronous actors).

    Per learner batch, the current policy pi_old (frozen) gives V-trace value targets and
    advantages ``A_s = min(rho_bar, pi_old/mu) (r_s + gamma v_{s+1} - V(x_s))`` that correct
    for the actors' behaviour policies mu; then ``num_epochs`` passes over ``num_minibatches``
    shuffled minibatches optimise ``min(r A, clip(r, 1 +- clip_range) A)`` with
    ``r = pi / pi_old`` (the proximal policy is the learner's, decoupled from the behaviour
    policy as in Hilton et al. 2021), plus ``vf_coef`` times the squared error to the targets.
    """

    Config = APPOConfig
    config: APPOConfig
    hooks = (*DistributedAgent.hooks, "sample_minibatches")

    def loss_terms(self) -> list[LossTerm]:
        cfg = self.config
        return [
            ClippedSurrogate(cfg.clip_range),
            ValueLoss(cfg.vf_coef),
            EntropyBonus(cfg.ent_coef),
        ]

    def update(self, batch: TrajectoryBatch) -> dict[str, float]:
        cfg = self.config
        with torch.no_grad():
            ev = self.evaluate_batch(batch, augment=False)  # pi_old on clean observations
            vt = self.vtrace_targets(batch, ev.log_probs, ev.values, ev.next_values)
        n = batch.num_steps * batch.num_envs
        obs = obs_map(lambda x: x.reshape(n, *x.shape[2:]), batch.obs)
        actions = batch.actions.reshape(n, *batch.actions.shape[2:])
        old_log_probs, targets = ev.log_probs.reshape(n), vt.vs.reshape(n)
        advantages = vt.pg_advantages.reshape(n)
        stats: dict[str, list[torch.Tensor]] = {}
        recurrent = batch.recurrent
        for _ in range(cfg.num_epochs):
            # a recurrent policy trains on whole unrolls: minibatches of env columns
            for part in self.sample_minibatches(batch.num_envs if recurrent else n):
                part = part.to(self.device)
                idx = batch.time_major_rows(part) if recurrent else part
                adv = normalize(advantages[idx]) if cfg.normalize_advantages else advantages[idx]
                state = tuple(s[part] for s in batch.initial_state)
                starts = None if batch.episode_starts is None else batch.episode_starts.reshape(-1)
                mb = self.evaluate_actions(
                    self.augment(_rows(obs, idx)),
                    actions[idx],
                    state,
                    None if starts is None else starts[idx],
                )
                inputs = {
                    **mb.outputs,
                    "_pullback": mb.pullback,
                    "old_log_prob": old_log_probs[idx],
                    "advantage": adv,
                    "return": targets[idx],
                }
                loss = self.loss(inputs, diagnostics=True)
                self.clip_and_step(loss)
                record(stats, loss)
        out = summarize(stats)
        out["vtrace/clipped_rho_mean"] = float(vt.clipped_rhos.mean())
        return out


def _rows(obs: Obs, index: torch.Tensor) -> Obs:
    return obs_map(lambda x: x[index], obs)
