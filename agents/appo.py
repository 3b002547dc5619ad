"""APPO: asynchronous PPO, the clipped surrogate on V-trace advantages and targets."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from rlkit.distributed.trajectory import TrajectoryBatch
from rlkit.prototypes import AGENTS, DistributedAgent, DistributedConfig
from rlkit.prototypes.on_policy import normalize
from rlkit.types import Obs
from rlkit.utils.tensors import obs_map


@dataclasses.dataclass
class APPOConfig(DistributedConfig):
    """APPO hyperparameters (on top of :class:`DistributedConfig`)."""

    num_epochs: int = 4
    num_minibatches: int = 4
    ent_coef: float = 0.0
    max_grad_norm: float | None = 0.5
    #: policy-ratio clip.
    clip_range: float = 0.2
    normalize_advantages: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.clip_range <= 0:
            raise ValueError(f"invalid hyperparameter: clip_range={self.clip_range!r} (> 0)")


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
        for _ in range(cfg.num_epochs):
            for idx in self.sample_minibatches(n):
                idx = idx.to(self.device)
                mb_obs = self.augment(_rows(obs, idx))
                log_prob, entropy, values, _ = self.policy.evaluate_actions(mb_obs, actions[idx])
                adv = normalize(advantages[idx]) if cfg.normalize_advantages else advantages[idx]
                ratio = (log_prob - old_log_probs[idx]).exp()
                clipped = ratio.clamp(1 - cfg.clip_range, 1 + cfg.clip_range)
                policy_loss = -torch.min(adv * ratio, adv * clipped).mean()
                value_loss = F.mse_loss(values, targets[idx])
                loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy.mean()
                self.clip_and_step(loss)
                for key, value in (
                    ("loss/policy", policy_loss),
                    ("loss/value", value_loss),
                    ("loss/entropy", -entropy.mean()),
                    ("train/clip_fraction", ((ratio - 1).abs() > cfg.clip_range).float().mean()),
                ):
                    stats.setdefault(key, []).append(value.detach())
        out = {k: float(torch.stack(v).mean()) for k, v in stats.items()}
        out["vtrace/clipped_rho_mean"] = float(vt.clipped_rhos.mean())
        return out


def _rows(obs: Obs, index: torch.Tensor) -> Obs:
    return obs_map(lambda x: x[index], obs)
