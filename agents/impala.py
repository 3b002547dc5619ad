"""IMPALA (Espeholt et al. 2018): actor-learner training with the V-trace off-policy correction."""

from __future__ import annotations

import dataclasses

import torch

from rlkit.distributed.trajectory import TrajectoryBatch
from rlkit.losses import EntropyBonus, LossTerm, PolicyGradient, ValueLoss
from rlkit.prototypes import AGENTS, DistributedAgent, DistributedConfig


@dataclasses.dataclass
class IMPALAConfig(DistributedConfig):
    """IMPALA hyperparameters: those of :class:`DistributedConfig` (rho_bar, c_bar,
    vtrace_lambda, ent_coef, vf_coef, ...); the defaults follow the paper where they apply."""


@AGENTS.register("impala")
class IMPALA(DistributedAgent):
    """V-trace actor-critic learning from actors' unrolls (Espeholt et al. 2018, section 4.2).

    The loss is the paper's:

    - value loss ``(v_s - V(x_s))^2`` towards the V-trace targets, weighted by ``vf_coef``;
    - policy gradient ``-rho_s log pi(a_s|x_s) (r_s + gamma v_{s+1} - V(x_s))`` with
      ``rho_s = min(rho_bar, pi/mu)``;
    - entropy bonus ``ent_coef``.

    The target policy pi is the learner's current one: V-trace is recomputed for every
    minibatch (whole unrolls, split over env columns) from the same forward pass as the loss.
    """

    Config = IMPALAConfig
    config: IMPALAConfig
    hooks = (*DistributedAgent.hooks, "env_minibatches")

    def loss_terms(self) -> list[LossTerm]:
        cfg = self.config
        return [PolicyGradient(), ValueLoss(cfg.vf_coef), EntropyBonus(cfg.ent_coef)]

    def update(self, batch: TrajectoryBatch) -> dict[str, float]:
        stats: dict[str, list[torch.Tensor]] = {}
        for _ in range(self.config.num_epochs):
            for mb in self.env_minibatches(batch):
                ev = self.evaluate_batch(mb)
                vt = self.vtrace_targets(mb, ev.log_probs, ev.values, ev.next_values)
                inputs = {
                    **ev.inputs(),
                    "advantage": vt.pg_advantages.reshape(-1),
                    "return": vt.vs.reshape(-1),
                }
                loss = self.loss(inputs)
                grad_norm = self.clip_and_step(loss)
                for key, value in (
                    *((f"loss/{k}", v) for k, v in loss.values.items()),
                    ("train/grad_norm", grad_norm),
                    ("vtrace/clipped_rho_mean", vt.clipped_rhos.mean()),
                    ("vtrace/target_mean", vt.vs.mean()),
                ):
                    if value is not None:  # (a clip_and_step override may report no norm)
                        stats.setdefault(key, []).append(value.detach())
        return {k: float(torch.stack(v).mean()) for k, v in stats.items()}
