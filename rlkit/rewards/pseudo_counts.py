"""Count-based exploration with SimHash (Tang et al. 2017, "#Exploration: A Study of
Count-Based Exploration for Deep Reinforcement Learning")."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.config.rules import Rule, count
from rlkit.rewards.base import INTRINSIC_REWARDS, IntrinsicReward, RewardNorm, TransitionBatch
from rlkit.rewards.common import ObsWhitener, check_batch, check_obs_space, check_positive, rows
from rlkit.spaces import flat_dim


@INTRINSIC_REWARDS.register("pseudo_counts")
class PseudoCounts(IntrinsicReward):
    """Bonus = ``1 / sqrt(n(phi(s')))``, life-long visit counts of hashed next observations.

    ``phi(s) = sgn(A g(s))`` is SimHash with a fixed Gaussian ``A`` (``bits = k``, the paper's
    granularity; default 32) applied to the flattened observation ``g(s)`` (uint8 frames scaled
    to ``[0, 1]``). Each batch first adds its states to the counts, then reads them, so a state's
    first visit scores 1 (the paper's order). Counts live in a count-min sketch
    (``sketch_rows`` hash rows of ``sketch_width`` counters, a fixed-size tensor checkpointed with
    the module): estimates never undercount and are exact unless distinct codes collide in every
    row. The paper's ``beta`` is ``coef``.

    ``obs_norm`` defaults to False: SimHash needs a fixed ``g``, and running whitening would
    move states between hash cells while it adapts. Use it when observations are far from
    zero-centred (SimHash cuts space with hyperplanes through the origin), e.g. positions in
    ``[0, 1]``. Nothing is trained; :meth:`update` returns no losses. Counting happens in
    :meth:`compute`, so feed each transition once (an on-policy rollout).
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        "bits": count(integer=True),
        "sketch_rows": count(integer=True),
        "sketch_width": count(integer=True),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        coef: float = 1.0,
        coef_decay: float = 0.0,
        reward_norm: RewardNorm = "none",
        obs_norm: bool = False,
        bits: int = 32,
        sketch_rows: int = 4,
        sketch_width: int = 2**16,
    ) -> None:
        space = check_obs_space(observation_space, "PseudoCounts")
        super().__init__(observation_space, action_space, coef, coef_decay, reward_norm)
        check_positive(
            "PseudoCounts", bits=bits, sketch_rows=sketch_rows, sketch_width=sketch_width
        )
        self.bits, self.num_rows, self.width = int(bits), int(sketch_rows), int(sketch_width)
        self.obs_shape = tuple(space.shape or ())
        self.whitener = ObsWhitener(space, obs_norm)
        self._scale = str(space.dtype) == "uint8"
        self.register_buffer("projection", torch.randn(self.bits, flat_dim(space)))
        self.register_buffer(
            "hash_weights", torch.randint(0, self.width, (self.bits, self.num_rows))
        )
        self.register_buffer("counts", torch.zeros(self.num_rows, self.width, dtype=torch.int32))

    projection: Tensor
    hash_weights: Tensor
    counts: Tensor

    def codes(self, obs: Tensor) -> Tensor:
        """SimHash bits ``[M, bits]`` (0/1) of observations ``[M, *obs_shape]``."""
        x = obs.float()
        if self._scale and not self.whitener.enabled:
            x = x / 255.0
        x = self.whitener(x).reshape(x.shape[0], -1)
        return (x @ self.projection.T > 0).long()

    def _cells(self, obs: Tensor) -> Tensor:
        """Counter index per sketch row ``[M, rows]`` (a universal hash of the bits)."""
        return (self.codes(obs) @ self.hash_weights) % self.width

    def visit_counts(self, obs: Tensor) -> Tensor:
        """Count-min estimate ``[M]`` of how often each observation's hash cell was counted."""
        cells = self._cells(obs)
        row = torch.arange(self.num_rows, device=cells.device).expand_as(cells)
        return self.counts[row, cells].min(1).values

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> Tensor:
        lead = check_batch(batch, "PseudoCounts")
        next_obs = rows(batch.next_obs, lead, self.obs_shape)
        self.whitener.update(next_obs)
        cells = self._cells(next_obs)
        flat = (torch.arange(self.num_rows, device=cells.device) * self.width + cells).reshape(-1)
        self.counts.view(-1).index_add_(0, flat, torch.ones_like(flat, dtype=self.counts.dtype))
        n = self.visit_counts(next_obs).clamp(min=1).float()
        return n.rsqrt().reshape(lead)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        """Nothing to train (counts are updated as transitions are scored)."""
        return {}
