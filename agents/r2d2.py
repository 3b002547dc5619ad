"""R2D2 (Kapturowski et al. 2019): a recurrent Q-network trained on replayed sequences with
their stored states, burn-in, n-step double Q-learning and value rescaling."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import Tensor

from rlkit.config.rules import Rule, count, non_negative, positive, unit
from rlkit.encoders.base import Encoder
from rlkit.losses import (
    LossTerm,
    TDLoss,
    greedy_value,
    inverse_value_rescale,
    sequence_nstep_targets,
    sequence_priorities,
    value_rescale,
)
from rlkit.policies.recurrent_q import LSTMQNetwork, RecurrentQNetwork
from rlkit.prototypes import AGENTS
from rlkit.storages.sequence_replay import SequenceBatch, SequenceReplay

from .dqn import DQN, DQNConfig


@dataclasses.dataclass
class R2D2Config(DQNConfig):
    """R2D2 hyperparameters; defaults are the paper's (Table 2) except the network size and
    ``buffer_size``. ``batch_size`` counts sequences; ``learning_starts`` env steps."""

    #: sequences per batch.
    batch_size: int = 64
    #: steps per sequence before the trained part that only warm up the recurrent state.
    burn_in: int = 40
    #: trained steps per sequence (after burn-in); the paper's 80-step windows = 40 + 40.
    seq_len: int = 40
    #: n-step returns inside a sequence.
    n_step: int = 5
    #: discount factor of future rewards.
    gamma: float = 0.997
    #: learning rate of the Q-network's Adam optimizer.
    lr: float = 1e-4
    #: Adam's epsilon (the paper's 1e-3).
    adam_eps: float = 1e-3
    #: vectorised env steps between two rounds of updates.
    train_freq: int = 4
    #: gradient steps between target-network copies.
    target_update_interval: int = 2_500
    #: global gradient-norm clip; None disables (the paper clips nothing).
    max_grad_norm: float | None = None
    #: env steps of random actions (the memory still runs) before the first update.
    learning_starts: int = 5_000
    #: prioritized replay of sequences (priority exponent per_alpha, IS exponent per_beta).
    prioritized_replay: bool = True
    #: priority exponent (the paper's 0.9).
    per_alpha: float = 0.9
    #: importance-sampling exponent (the paper's 0.6, constant).
    per_beta: float = 0.6
    #: final importance-sampling exponent (equal to per_beta: no annealing).
    per_beta_final: float = 0.6
    #: sequence priority: eta * max |TD| + (1 - eta) * mean |TD| over the trained steps.
    priority_eta: float = 0.9
    #: double Q-learning: the online network picks the bootstrap action.
    double_q: bool = True
    #: value rescaling h(x) = sign(x)(sqrt(|x|+1)-1) + eps x with this eps; 0 disables.
    value_rescaling: float = 1e-3
    #: units of the default LSTM.
    hidden_size: int = 64

    rules: ClassVar[dict[str, Rule]] = {
        "burn_in": count(0),
        "seq_len": count(),
        "priority_eta": unit(),
        "value_rescaling": non_negative(),
        "hidden_size": count(),
        "adam_eps": positive(),
    }


@AGENTS.register("r2d2")
class R2D2(DQN):
    """Recurrent DQN on sequence replay: each sampled window unrolls the online network from
    its stored state (the first ``burn_in`` steps without gradient) and the target network over
    the whole window; the loss is the half squared error of the rescaled n-step double-Q target
    on the ``seq_len`` trained steps, summed over time; a window's new priority is
    ``eta max + (1 - eta) mean`` of its absolute TD errors."""

    Config = R2D2Config
    config: R2D2Config
    policy_class = RecurrentQNetwork
    policy: RecurrentQNetwork
    storage_class = SequenceReplay
    storage: SequenceReplay
    trains_recurrent_policies = True

    def default_policy(self, encoder: Encoder | None) -> LSTMQNetwork:
        cfg = self.config
        return LSTMQNetwork(
            self.observation_space, self.action_space, encoder, cfg.hidden_size,
            hidden_sizes=cfg.hidden_sizes, dueling=cfg.dueling, noisy=cfg.noisy,
        )  # fmt: skip

    def storage_defaults(self) -> dict[str, Any]:
        return self.sequence_storage_defaults(self.config.burn_in + self.config.seq_len)

    def loss_terms(self) -> dict[str, list[LossTerm]]:
        return {"td": [TDLoss("half_mse")]}

    def setup(self) -> None:
        super().setup()
        self.check_sequence_storage(self.config.burn_in + self.config.seq_len)

    def _unroll(self, net: RecurrentQNetwork, batch: SequenceBatch, start: int, state: Any) -> Any:
        """Q-values ``[T + 1 - start, B + K, A]`` of positions ``start..T`` from ``state``."""
        obs, starts = batch.positions(start)
        q, _ = net.q_sequence(obs, state, starts, need_state=False)
        return q.reshape(batch.length + 1 - start, -1, q.shape[-1])

    def update(self, batch: SequenceBatch) -> dict[str, Tensor]:  # type: ignore[override]
        cfg, burn, eps = self.config, self.config.burn_in, self.config.value_rescaling
        with torch.no_grad():
            state: Any = batch.states
            if burn:
                obs, starts = batch.positions(0, burn)
                state = self.policy.q_sequence(obs, state, starts)[1]
            target_q = self._unroll(self.target.net, batch, 0, batch.states)[burn:]
        q_all = self._unroll(self.policy, batch, burn, state)
        with torch.no_grad():
            values = greedy_value(target_q, q_all.detach() if cfg.double_q else None)
            next_values = batch.next_values(values, burn)
            if eps:
                next_values = inverse_value_rescale(next_values, eps)
            target = sequence_nstep_targets(
                batch.rewards[burn:], batch.terminated[burn:], batch.truncated[burn:],
                next_values, cfg.gamma, cfg.n_step,
            )  # fmt: skip
            if eps:
                target = value_rescale(target, eps)
        actions = (batch.actions[burn:] - self.action_start).unsqueeze(-1)
        q = q_all[:-1, : batch.num_sequences].gather(-1, actions).squeeze(-1)
        inputs = {"q": q, "target": target, "weight": batch.weights}
        self.clip_and_step(self.loss("td", inputs), self.optimizer)
        self.report_td_errors(batch, sequence_priorities(q.detach() - target, cfg.priority_eta))
        return {"train/q_mean": q.detach().mean()}
