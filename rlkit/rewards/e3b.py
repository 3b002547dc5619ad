"""Exploration via Elliptical Episodic Bonuses (Henaff et al. 2022, "E3B"; authors' code
``facebookresearch/e3b``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.config.rules import Rule, positive
from rlkit.rewards.base import INTRINSIC_REWARDS, RewardNorm, TransitionBatch
from rlkit.rewards.common import (
    ActionCoder,
    ObsWhitener,
    action_rows,
    check_batch,
    check_obs_space,
    check_positive,
    embedding_net,
    minibatches,
    obs_pair,
    rows,
)
from rlkit.rewards.dynamics import InverseModel
from rlkit.rewards.episodic import EpisodicIntrinsicReward


@INTRINSIC_REWARDS.register("e3b")
class E3B(EpisodicIntrinsicReward):
    """Bonus = ``phi(s)^T C^-1 phi(s)`` with ``C = ridge * I + sum phi phi^T`` over the states of
    the current episode.

    ``phi`` is trained by an inverse dynamics model (the paper's "elliptical-icm"). Each env
    keeps its own inverse covariance, starting at ``I / ridge`` (``ridge = 0.1``) and updated by
    the rank-1 Sherman-Morrison step ``C^-1 -= u u^T / (1 + b)`` with ``u = C^-1 phi``, ``b =
    phi^T u`` (as the authors' code). The memory of a new episode starts with its first
    observation, and each transition scores its next observation against the states before it
    (the authors' code scores ``s_t`` against ``s_0 .. s_t-1`` and gives the first step 0; this
    is the same sequence one step earlier, credited to the action that caused it). The bonus is
    non-negative. In a ``[B]`` replay batch each row is scored against the other rows
    (leave-one-out: ``l / (1 - l)`` with ``l = phi^T (ridge I + Phi^T Phi)^-1 phi``).
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        "ridge": positive(),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        coef: float = 1.0,
        coef_decay: float = 0.0,
        reward_norm: RewardNorm = "rms",
        obs_norm: bool = False,
        embedding_dim: int = 64,
        hidden_dim: int = 256,
        ridge: float = 0.1,
        lr: float = 1e-3,
        batch_size: int = 256,
    ) -> None:
        space = check_obs_space(observation_space, "E3B")
        super().__init__(observation_space, action_space, coef, coef_decay, reward_norm)
        check_positive(
            "E3B", ridge=ridge, lr=lr, batch_size=batch_size, embedding_dim=embedding_dim
        )
        self.ridge = float(ridge)
        self.batch_size = int(batch_size)
        self.embedding_dim = int(embedding_dim)
        self.obs_shape = tuple(space.shape or ())
        self.actions = ActionCoder(action_space, "E3B")
        self.whitener = ObsWhitener(space, obs_norm)
        self.embedding = embedding_net(self.whitener.encoder_space(), embedding_dim, hidden_dim)
        self.inverse = InverseModel(self.embedding_dim, self.actions, hidden_dim)
        self.optimizer = torch.optim.Adam(
            [*self.embedding.parameters(), *self.inverse.parameters()], lr=lr
        )
        self._cov_inv = torch.zeros(0, self.embedding_dim, self.embedding_dim, dtype=torch.float64)
        self._seen = torch.zeros(0, dtype=torch.int64)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"embedding": self.optimizer}

    # ----------------------------------------------------------------- episodic memory
    def init_memory(self, num_envs: int, device: torch.device) -> None:
        eye = torch.eye(self.embedding_dim, dtype=torch.float64, device=device) / self.ridge
        self._cov_inv = eye.repeat(num_envs, 1, 1)
        self._seen = torch.zeros(num_envs, dtype=torch.int64, device=device)

    def clear_memory(self, env_mask: Tensor) -> None:
        mask = env_mask.to(self._seen.device)
        eye = torch.eye(self.embedding_dim, dtype=torch.float64, device=mask.device)
        self._cov_inv[mask] = eye / self.ridge
        self._seen[mask] = 0

    def memory_sizes(self) -> Tensor:
        return self._seen.cpu()

    def memory_state(self) -> dict[str, Tensor]:
        return {"cov_inv": self._cov_inv, "seen": self._seen}

    def load_memory_state(self, state: Mapping[str, Tensor]) -> None:
        self._cov_inv = state["cov_inv"].to(torch.float64).clone()
        self._seen = state["seen"].to(torch.int64).clone()

    def _fold(self, h: Tensor, env_mask: Tensor | None = None) -> Tensor:
        """Bonus ``b = h^T C^-1 h`` per env, then the rank-1 update of ``C^-1`` (masked envs);
        kept in float64 so long episodes do not lose positive definiteness."""
        h = h.double()
        u = torch.bmm(self._cov_inv, h.unsqueeze(2)).squeeze(2)  # [N, D]
        b = (h * u).sum(1)
        update = torch.einsum("ni,nj->nij", u, u) / (1.0 + b).view(-1, 1, 1)
        if env_mask is not None:
            update = update * env_mask.view(-1, 1, 1).to(update.dtype)
            self._seen += env_mask.long()
        else:
            self._seen += 1
        self._cov_inv -= update
        return b.clamp(min=0.0).float()

    # ----------------------------------------------------------------- bonus
    def _embed(self, x: Tensor) -> Tensor:
        return self.embedding(self.whitener(x))

    def prepare_stream(self, batch: TransitionBatch) -> tuple[Tensor, Tensor]:
        lead = check_batch(batch, "E3B")
        obs, next_obs = obs_pair(batch, lead, self.obs_shape)
        self.whitener.update(next_obs)
        return self._embed(obs).reshape(*lead, -1), self._embed(next_obs).reshape(*lead, -1)

    def stream_step(self, prepared: tuple[Tensor, Tensor], t: int) -> Tensor:
        h_obs, h_next = prepared
        fresh = self._seen == 0
        if fresh.any():
            self._fold(h_obs[t], fresh)  # a new episode remembers its first state
        return self._fold(h_next[t])

    def compute_independent(self, batch: TransitionBatch) -> Tensor:
        lead = check_batch(batch, "E3B")
        next_obs = rows(batch.next_obs, lead, self.obs_shape)
        self.whitener.update(next_obs)
        h = self._embed(next_obs).double()
        a = self.ridge * torch.eye(self.embedding_dim, dtype=h.dtype, device=h.device) + h.T @ h
        leverage = (h * torch.linalg.solve(a, h.T).T).sum(1).clamp(0.0, 1.0 - 1e-12)
        return (leverage / (1.0 - leverage)).float().reshape(lead)

    # ----------------------------------------------------------------- training
    def update(self, batch: TransitionBatch) -> dict[str, float]:
        lead = check_batch(batch, "E3B")
        obs, next_obs = obs_pair(batch, lead, self.obs_shape)
        actions = action_rows(batch.actions, lead)
        total, count = 0.0, 0
        for idx in minibatches(obs.shape[0], self.batch_size, obs.device):
            loss = self.inverse.loss(
                self._embed(obs[idx]), self._embed(next_obs[idx]), actions[idx]
            ).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
            count += 1
        return {"e3b_inverse_loss": total / count}
