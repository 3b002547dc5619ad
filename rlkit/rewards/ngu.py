"""Never Give Up's exploration bonus (Badia et al. 2020, "Never Give Up: Learning Directed
Exploration Strategies", Algorithm 1 and appendix hyperparameters)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.config.rules import Range, Rule, count, non_negative, positive
from rlkit.rewards.base import INTRINSIC_REWARDS, RewardNorm, TransitionBatch
from rlkit.rewards.common import (
    ActionCoder,
    ObsWhitener,
    action_rows,
    check_batch,
    check_obs_space,
    check_positive,
    embedding_net,
    knn_distances,
    minibatches,
    obs_pair,
    rows,
)
from rlkit.rewards.dynamics import InverseModel
from rlkit.rewards.episodic import EpisodicIntrinsicReward
from rlkit.rewards.rnd import RND
from rlkit.utils.running import RunningMeanStd


@INTRINSIC_REWARDS.register("ngu")
class NGU(EpisodicIntrinsicReward):
    """Bonus = episodic novelty x life-long novelty.

    Episodic: an embedding ``f`` trained by an inverse model (``[f(x_t), f(x_t+1)] -> a_t``,
    one hidden layer) fills a per-env episodic memory. For a new embedding, its ``k`` nearest
    neighbours' squared distances ``d^2`` are divided by ``d_m^2``, the running mean of all
    k-NN squared distances seen so far, moved by the cluster distance (``max(d^2 / d_m^2 - xi,
    0)``) and put through the kernel ``K = eps / (d + eps)``; the similarity is ``s = sqrt(sum
    K) + c`` and the episodic bonus ``1 / s``, or 0 when ``s > max_similarity``. Defaults are the
    paper's: ``k=10``, ``xi=0.008``, ``eps=1e-4``, ``c=0.001``, ``max_similarity=8``,
    embedding size 32, memory 30000.

    Life-long: RND's error ``err`` gives ``alpha = 1 + (err - mean) / std`` over running
    statistics, and the bonus is ``r_episodic * min(max(alpha, 1), L)`` with ``L = 5``.

    The memory of a new episode starts with the embedding of its first observation, so
    ``x_t+1`` is compared with ``x_0 .. x_t`` (``next_obs`` of each transition is scored). Memory
    handling per env and at episode ends: see :mod:`rlkit.rewards.episodic`.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        "cluster_distance": non_negative(),
        "kernel_epsilon": positive(),
        "c": non_negative(),
        "max_similarity": positive(),
        "max_multiplier": Range(1),
        "memory_capacity": count(integer=True),
        "rnd_lr": positive(),
        "rnd_latent_dim": count(integer=True),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        coef: float = 1.0,
        coef_decay: float = 0.0,
        reward_norm: RewardNorm = "rms",
        obs_norm: bool = True,
        embedding_dim: int = 32,
        hidden_dim: int = 128,
        k: int = 10,
        cluster_distance: float = 0.008,
        kernel_epsilon: float = 1e-4,
        c: float = 0.001,
        max_similarity: float = 8.0,
        max_multiplier: float = 5.0,
        memory_capacity: int = 30_000,
        lr: float = 5e-4,
        batch_size: int = 256,
        rnd_lr: float = 5e-4,
        rnd_latent_dim: int = 128,
    ) -> None:
        space = check_obs_space(observation_space, "NGU")
        super().__init__(observation_space, action_space, coef, coef_decay, reward_norm)
        check_positive(
            "NGU",
            k=k,
            kernel_epsilon=kernel_epsilon,
            c=c,
            max_similarity=max_similarity,
            memory_capacity=memory_capacity,
            lr=lr,
            batch_size=batch_size,
        )
        if cluster_distance < 0:
            raise ValueError(f"NGU: cluster_distance must be >= 0, got {cluster_distance}")
        if max_multiplier < 1:
            raise ValueError(f"NGU: max_multiplier (L) must be >= 1, got {max_multiplier}")
        self.k = int(k)
        self.cluster_distance = float(cluster_distance)
        self.kernel_epsilon = float(kernel_epsilon)
        self.c = float(c)
        self.max_similarity = float(max_similarity)
        self.max_multiplier = float(max_multiplier)
        self.memory_capacity = int(memory_capacity)
        self.batch_size = int(batch_size)
        self.obs_shape = tuple(space.shape or ())
        self.actions = ActionCoder(action_space, "NGU")
        self.whitener = ObsWhitener(space, obs_norm)
        self.embedding = embedding_net(self.whitener.encoder_space(), embedding_dim, hidden_dim)
        self.embedding_dim = int(embedding_dim)
        self.inverse = InverseModel(self.embedding_dim, self.actions, hidden_dim)
        self.optimizer = torch.optim.Adam(
            [*self.embedding.parameters(), *self.inverse.parameters()], lr=lr
        )
        self.rnd = RND(
            observation_space,
            action_space,
            reward_norm="none",
            obs_norm=obs_norm,
            latent_dim=rnd_latent_dim,
            lr=rnd_lr,
            batch_size=batch_size,
        )
        #: running mean of the k-NN squared distances (d_m^2).
        self.knn_stats = RunningMeanStd(())
        #: running mean/std of RND errors for the life-long multiplier.
        self.error_stats = RunningMeanStd(())
        self._memory = torch.zeros(0, 0, self.embedding_dim)
        self._written = torch.zeros(0, dtype=torch.int64)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"embedding": self.optimizer, "rnd": self.rnd.optimizer}

    # ----------------------------------------------------------------- episodic memory
    def init_memory(self, num_envs: int, device: torch.device) -> None:
        self._memory = torch.zeros(
            num_envs, min(64, self.memory_capacity), self.embedding_dim, device=device
        )
        self._written = torch.zeros(num_envs, dtype=torch.int64, device=device)

    def clear_memory(self, env_mask: Tensor) -> None:
        self._written[env_mask.to(self._written.device)] = 0

    def memory_sizes(self) -> Tensor:
        return self._written.clamp(max=self.memory_capacity).cpu()

    def memory_state(self) -> dict[str, Tensor]:
        # the slots in use: env n fills min(written, capacity) of them; the rest is never read
        used = (
            int(self._written.clamp(max=self.memory_capacity).max()) if self._written.numel() else 0
        )
        return {"memory": self._memory[:, :used], "written": self._written}

    def load_memory_state(self, state: Mapping[str, Tensor]) -> None:
        memory, written = state["memory"], state["written"]
        if memory.shape[1] > self._memory.shape[1]:
            self._memory = memory.to(self._memory.dtype).clone()
        else:
            self._memory[:, : memory.shape[1]] = memory
        self._written = written.to(torch.int64).clone()

    def _insert(self, h: Tensor, env_mask: Tensor) -> None:
        """Write ``h[n]`` into the memory of each env ``n`` in ``env_mask`` (a ring buffer)."""
        idx = env_mask.nonzero().squeeze(1)
        if idx.numel() == 0:
            return
        needed = int(self._written[idx].max()) + 1
        size = self._memory.shape[1]
        if needed > size and size < self.memory_capacity:
            grown = min(self.memory_capacity, max(needed, 2 * size))
            extra = self._memory.new_zeros(self._memory.shape[0], grown - size, self.embedding_dim)
            self._memory = torch.cat([self._memory, extra], 1)
        slots = self._written[idx] % self.memory_capacity
        self._memory[idx, slots] = h[idx]
        self._written[idx] += 1

    # ----------------------------------------------------------------- bonus
    def _kernel_bonus(self, d2: Tensor, valid: Tensor) -> Tensor:
        """Episodic bonus from k-NN squared distances ``[M, k]`` (``valid`` marks real ones)."""
        if valid.any():
            self.knn_stats.update(d2[valid])
        mean = float(self.knn_stats.mean)
        dn = (d2 / max(mean, 1e-8) - self.cluster_distance).clamp(min=0.0)
        kernel = torch.where(valid, self.kernel_epsilon / (dn + self.kernel_epsilon), 0.0)
        s = kernel.sum(1).sqrt() + self.c
        return torch.where(s > self.max_similarity, torch.zeros_like(s), 1.0 / s)

    def _multiplier(self, batch: TransitionBatch) -> Tensor:
        """Life-long novelty ``min(max(alpha, 1), L)`` per transition."""
        err = self.rnd.compute(batch).float().reshape(-1)
        self.error_stats.update(err)
        alpha = 1.0 + (err - self.error_stats.mean.float()) / (self.error_stats.std.float() + 1e-8)
        return alpha.clamp(1.0, self.max_multiplier)

    def _embed(self, x: Tensor) -> Tensor:
        return self.embedding(self.whitener(x))

    def prepare_stream(self, batch: TransitionBatch) -> tuple[Tensor, Tensor, Tensor]:
        lead = check_batch(batch, "NGU")
        obs, next_obs = obs_pair(batch, lead, self.obs_shape)
        self.whitener.update(next_obs)
        h_obs = self._embed(obs).reshape(*lead, -1)
        h_next = self._embed(next_obs).reshape(*lead, -1)
        return h_obs, h_next, self._multiplier(batch).reshape(lead)

    def stream_step(self, prepared: tuple[Tensor, Tensor, Tensor], t: int) -> Tensor:
        h_obs, h_next, multiplier = prepared
        num_envs = h_next.shape[1]
        self._insert(h_obs[t], self._written == 0)  # a new episode remembers its first state
        size = int(self._written.clamp(max=self.memory_capacity).max())
        memory = self._memory[:, :size]
        d2 = (memory - h_next[t].unsqueeze(1)).pow(2).sum(-1)  # [N, size]
        filled = torch.arange(size, device=d2.device) < self._written.clamp(
            max=self.memory_capacity
        ).unsqueeze(1)
        d2 = torch.where(filled, d2, torch.inf)
        kk = min(self.k, size)
        nearest = d2.topk(kk, dim=1, largest=False).values
        valid = torch.isfinite(nearest)
        bonus = self._kernel_bonus(torch.where(valid, nearest, 0.0), valid)
        self._insert(h_next[t], torch.ones(num_envs, dtype=torch.bool, device=d2.device))
        return bonus * multiplier[t]

    def compute_independent(self, batch: TransitionBatch) -> Tensor:
        lead = check_batch(batch, "NGU")
        next_obs = rows(batch.next_obs, lead, self.obs_shape)
        self.whitener.update(next_obs)
        h = self._embed(next_obs)
        multiplier = self._multiplier(batch)
        d2 = knn_distances(h, h, min(self.k, h.shape[0] - 1), exclude_self=True).pow(2)
        bonus = self._kernel_bonus(d2, torch.ones_like(d2, dtype=torch.bool))
        return (bonus * multiplier).reshape(lead)

    # ----------------------------------------------------------------- training
    def update(self, batch: TransitionBatch) -> dict[str, float]:
        lead = check_batch(batch, "NGU")
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
        metrics = {"ngu_inverse_loss": total / count}
        metrics.update(self.rnd.update(batch))
        return metrics
