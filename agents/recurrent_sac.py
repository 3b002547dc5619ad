"""Recurrent SAC: SAC's losses on replayed sequences (windows with their stored states and
burn-in, as R2D2), with separate actor and critic memories (Ni et al. 2022)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from rlkit.config.rules import count
from rlkit.encoders.base import Encoder
from rlkit.losses import sequence_nstep_targets, sequence_priorities, soft_value
from rlkit.losses.temperature import ENTROPY_RULES
from rlkit.policies.recurrent_sac import RecurrentSquashedGaussianActorCritic as Policy
from rlkit.prototypes import AGENTS
from rlkit.storages.sequence_replay import SequenceBatch, SequenceReplay

from .sac import SAC, SACConfig


@dataclasses.dataclass
class RecurrentSACConfig(SACConfig):
    """SAC's hyperparameters with sequence replay; sizes after Ni et al. 2022 (LSTM 128,
    batches of 32 sequences of 64 steps, lr 3e-4). ``batch_size`` counts sequences."""

    #: sequences per batch.
    batch_size: int = 32
    #: steps per sequence that only warm up the memories from the stored state (no loss).
    burn_in: int = 0
    #: trained steps per sequence (after burn-in).
    seq_len: int = 64
    #: units of each LSTM (actor and critic memories).
    hidden_size: int = 128
    #: replay capacity in transitions.
    buffer_size: int = 100_000
    #: env steps of random actions (the memories still run) before the first update.
    learning_starts: int = 1_000

    rules = {  # a class attribute (no annotation), not a field
        **ENTROPY_RULES,
        "burn_in": count(0),
        "seq_len": count(),
        "hidden_size": count(),
    }


@AGENTS.register("recurrent_sac")
class RecurrentSAC(SAC):
    """SAC on sequence replay: each window unrolls the memories from its stored state (the
    first ``burn_in`` steps without gradient), the target critics over the whole window;
    the temperature, critic and actor steps are SAC's, on every trained step of every window,
    with n-step soft targets computed inside the windows."""

    Config = RecurrentSACConfig
    config: RecurrentSACConfig
    policy_class = Policy
    policy: Policy
    storage_class = SequenceReplay
    storage: SequenceReplay
    trains_recurrent_policies = True

    def default_policy(self, encoder: Encoder | None) -> Policy:
        cfg = self.config
        spaces_ = (self.observation_space, self.action_space)
        return Policy(*spaces_, encoder, cfg.hidden_sizes, hidden_size=cfg.hidden_size)

    def storage_defaults(self) -> dict[str, Any]:
        return self.sequence_storage_defaults(self.config.burn_in + self.config.seq_len)

    def setup(self) -> None:
        super().setup()
        self.check_sequence_storage(self.config.burn_in + self.config.seq_len)

    def update(self, batch: SequenceBatch) -> dict[str, Tensor]:  # type: ignore[override]
        cfg, policy, target, gen = self.config, self.policy, self.target.net, self._generator
        burn, b, steps = cfg.burn_in, batch.num_sequences, batch.length - cfg.burn_in
        with torch.no_grad():
            state: Any = batch.states
            if burn:
                obs, starts = batch.positions(0, burn)
                state = policy.memories(obs, state, starts)[2]
            obs, starts = batch.positions(0)
            rows = target.memories(obs, batch.states, starts, need_state=False)[1]
            target_memory = rows.reshape(batch.length + 1, -1, rows.shape[-1])[burn:]
        obs, starts = batch.positions(burn)
        actor, critic, _ = policy.memories(obs, state, starts, need_state=False)
        actions_pi, log_prob = policy.sample_with_log_prob(actor, gen)

        def trained(x: Tensor) -> Tensor:  # positions burn..T-1 of the B windows, flat
            x = x.reshape(steps + 1, -1, *x.shape[1:])[:-1, :b]
            return x.reshape(steps * b, *x.shape[2:])

        alpha = self.ent_coef()
        if self.ent_optimizer is not None:
            inputs = {"log_alpha": self.ent_coef.log_alpha, "log_prob": trained(log_prob).detach()}
            self.clip_and_step(self.loss("ent_coef", inputs), self.ent_optimizer)
        with torch.no_grad():
            flat = target_memory.reshape(-1, target_memory.shape[-1])
            next_q = target.q_values(flat, actions_pi.detach())
            values = soft_value(next_q, log_prob.detach(), alpha).reshape(steps + 1, -1)
            td = sequence_nstep_targets(
                batch.rewards[burn:], batch.terminated[burn:], batch.truncated[burn:],
                batch.next_values(values, burn), cfg.gamma, cfg.n_step,
            ).reshape(-1)  # fmt: skip
        taken = policy.normalize_actions(batch.actions[burn:].reshape(steps * b, -1))
        q = policy.q_values(trained(critic), taken)
        inputs = {"q": q, "target": td}
        if self.prioritized:  # rows are time-major: row t * B + j belongs to window j
            inputs["weight"] = batch.weights.repeat(steps)
            errors = (q.detach().mean(0) - td).reshape(steps, b)
            self.report_td_errors(batch, sequence_priorities(errors))
        self.clip_and_step(self.loss("critic", inputs), self.critic_optimizer)
        q_pi = policy.q_values(trained(critic).detach(), trained(actions_pi), detach_params=True)
        actor_inputs = {"log_prob": trained(log_prob), "q": q_pi, "alpha": alpha}
        self.clip_and_step(self.loss("actor", actor_inputs), self.actor_optimizer)
        return {"train/ent_coef": alpha}
