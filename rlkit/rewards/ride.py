"""Rewarding Impact-Driven Exploration (Raileanu & Rocktaschel 2020, "RIDE"; authors' code
``facebookresearch/impact-driven-exploration``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Rule, non_negative
from rlkit.rewards.base import INTRINSIC_REWARDS, RewardNorm, TransitionBatch
from rlkit.rewards.common import (
    ActionCoder,
    ObsWhitener,
    action_rows,
    check_batch,
    check_obs_space,
    check_positive,
    minibatches,
    obs_pair,
)
from rlkit.rewards.dynamics import ForwardModel, InverseModel, attach_dynamics_models
from rlkit.rewards.episodic import EpisodicIntrinsicReward


def _keys(x: Tensor) -> list[bytes]:
    """One hashable key per row: the raw bytes of the observation."""
    array = np.ascontiguousarray(x.detach().cpu().numpy())
    return [row.tobytes() for row in array.reshape(array.shape[0], -1)]


@INTRINSIC_REWARDS.register("ride")
class RIDE(EpisodicIntrinsicReward):
    """Bonus = ``||phi(s_t+1) - phi(s_t)||_2 / sqrt(N_ep(s_t+1))``.

    ``phi`` is trained as in ICM, with the authors' weights: ``forward_coef * mean ||f(phi(s),
    a) - phi(s')||_2 + inverse_coef * cross-entropy`` (10 and 0.1). ``N_ep(s')`` counts the
    visits to ``s'`` in the current episode of that env, this visit included; states are keyed by
    their exact observation (as the authors' count on the raw MiniGrid observation), so in
    continuous spaces, where observations never repeat exactly, the bonus is the impact alone.
    Episodic counts live per env and are cleared at episode ends (see
    :mod:`rlkit.rewards.episodic`); in a ``[B]`` replay batch a state is counted over the batch.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        "forward_coef": non_negative(),
        "inverse_coef": non_negative(),
    }

    # set by attach_dynamics_models
    actions: ActionCoder
    whitener: ObsWhitener
    encoder: nn.Module
    inverse: InverseModel
    forward_model: ForwardModel
    optimizer: torch.optim.Optimizer

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        coef: float = 1.0,
        coef_decay: float = 0.0,
        reward_norm: RewardNorm = "rms",
        obs_norm: bool = False,
        feature_dim: int = 128,
        hidden_dim: int = 256,
        forward_coef: float = 10.0,
        inverse_coef: float = 0.1,
        lr: float = 1e-3,
        batch_size: int = 256,
    ) -> None:
        space = check_obs_space(observation_space, "RIDE")
        super().__init__(observation_space, action_space, coef, coef_decay, reward_norm)
        check_positive("RIDE", lr=lr, batch_size=batch_size)
        if forward_coef < 0 or inverse_coef < 0 or forward_coef + inverse_coef == 0:
            raise ValueError(
                "RIDE: forward_coef and inverse_coef must be >= 0 and not both 0, got "
                f"{forward_coef} and {inverse_coef}"
            )
        self.forward_coef = float(forward_coef)
        self.inverse_coef = float(inverse_coef)
        self.batch_size = int(batch_size)
        self.obs_shape = tuple(space.shape or ())
        attach_dynamics_models(
            self, space, action_space, obs_norm, feature_dim, hidden_dim, lr, "RIDE"
        )
        self._counts: list[Counter[bytes]] = []

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"ride": self.optimizer}

    # ----------------------------------------------------------------- episodic memory
    def init_memory(self, num_envs: int, device: torch.device) -> None:
        self._counts = [Counter() for _ in range(num_envs)]

    def clear_memory(self, env_mask: Tensor) -> None:
        for i in np.flatnonzero(env_mask.cpu().numpy()):
            self._counts[int(i)].clear()

    def memory_sizes(self) -> Tensor:
        return torch.tensor([sum(c.values()) for c in self._counts], dtype=torch.int64)

    def memory_state(self) -> dict[str, Tensor]:
        # one row per (env, state) pair, in each env's insertion order: the env, the count, and
        # the state's key bytes, zero-padded to the longest with their lengths
        entries = [
            (n, key, c) for n, counts in enumerate(self._counts) for key, c in counts.items()
        ]
        width = max((len(key) for _, key, _ in entries), default=0)
        keys = np.zeros((len(entries), width), dtype=np.uint8)
        for i, (_, key, _) in enumerate(entries):
            keys[i, : len(key)] = np.frombuffer(key, dtype=np.uint8)
        return {
            "envs": torch.tensor([n for n, _, _ in entries], dtype=torch.int64),
            "counts": torch.tensor([c for _, _, c in entries], dtype=torch.int64),
            "keys": torch.from_numpy(keys),
            "key_lengths": torch.tensor([len(key) for _, key, _ in entries], dtype=torch.int64),
        }

    def load_memory_state(self, state: Mapping[str, Tensor]) -> None:
        keys = state["keys"].cpu().numpy()
        rows = zip(
            state["envs"].tolist(),
            state["counts"].tolist(),
            state["key_lengths"].tolist(),
            strict=True,
        )
        for i, (n, c, length) in enumerate(rows):
            self._counts[n][keys[i, :length].tobytes()] = c

    # ----------------------------------------------------------------- bonus
    def _impact(self, batch: TransitionBatch, lead: tuple[int, ...]) -> tuple[Tensor, Tensor]:
        obs, next_obs = obs_pair(batch, lead, self.obs_shape)
        self.whitener.update(next_obs)
        phi = self.encoder(self.whitener(obs))
        phi_next = self.encoder(self.whitener(next_obs))
        return (phi_next - phi).norm(dim=1), next_obs

    def prepare_stream(self, batch: TransitionBatch) -> tuple[Tensor, list[bytes], int]:
        lead = check_batch(batch, "RIDE")
        impact, next_obs = self._impact(batch, lead)
        return impact.reshape(lead), _keys(next_obs), lead[1]

    def stream_step(self, prepared: tuple[Tensor, list[bytes], int], t: int) -> Tensor:
        impact, keys, num_envs = prepared
        counts = torch.empty(num_envs, dtype=torch.float32)
        for n in range(num_envs):
            key = keys[t * num_envs + n]
            self._counts[n][key] += 1
            counts[n] = self._counts[n][key]
        return impact[t] / counts.to(impact.device).sqrt()

    def compute_independent(self, batch: TransitionBatch) -> Tensor:
        lead = check_batch(batch, "RIDE")
        impact, next_obs = self._impact(batch, lead)
        keys = _keys(next_obs)
        seen = Counter(keys)
        counts = torch.tensor([seen[k] for k in keys], dtype=torch.float32, device=impact.device)
        return impact / counts.sqrt()

    # ----------------------------------------------------------------- training
    def update(self, batch: TransitionBatch) -> dict[str, float]:
        lead = check_batch(batch, "RIDE")
        obs, next_obs = obs_pair(batch, lead, self.obs_shape)
        actions = action_rows(batch.actions, lead)
        fwd_sum = inv_sum = total = 0.0
        count = 0
        for idx in minibatches(obs.shape[0], self.batch_size, obs.device):
            phi = self.encoder(self.whitener(obs[idx]))
            phi_next = self.encoder(self.whitener(next_obs[idx]))
            forward = (self.forward_model(phi, actions[idx]) - phi_next).norm(dim=1).mean()
            inverse = self.inverse.loss(phi, phi_next, actions[idx]).mean()
            loss = self.forward_coef * forward + self.inverse_coef * inverse
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
            fwd_sum += float(forward.detach())
            inv_sum += float(inverse.detach())
            count += 1
        return {
            "ride_loss": total / count,
            "ride_forward_loss": fwd_sum / count,
            "ride_inverse_loss": inv_sum / count,
        }
