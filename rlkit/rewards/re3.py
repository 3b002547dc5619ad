"""Random Encoders for Efficient Exploration (Seo et al. 2021, "State Entropy Maximization with
Random Encoders for Efficient Exploration"; authors' code ``younggyoseo/RE3``)."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.rewards.base import INTRINSIC_REWARDS, IntrinsicReward, RewardNorm, TransitionBatch
from rlkit.rewards.common import (
    ObsWhitener,
    check_batch,
    check_obs_space,
    check_positive,
    embedding_net,
    knn_distances,
    rows,
)


@INTRINSIC_REWARDS.register("re3")
class RE3(IntrinsicReward):
    """Bonus = ``log(1 + ||y - y_kNN||)``, a particle estimate of state entropy.

    ``y`` is the embedding of the next observation by a randomly initialised encoder that is
    never trained (NatureCNN for images, a ReLU MLP for vectors); ``y_kNN`` is its ``k``-th
    nearest neighbour (``k = 3``) among the embeddings of the same batch (a rollout's ``T * N``
    transitions, or a replay sample), itself excluded. ``average=True`` averages the distances
    to the 1st..k-th neighbours instead (the code's ``average_entropy``). The paper decays the
    weight as ``beta_0 * (1 - rho)^t``: that is ``coef`` and ``coef_decay``. Nothing is
    trained, so :meth:`update` returns no losses.
    """

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        coef: float = 1.0,
        coef_decay: float = 0.0,
        reward_norm: RewardNorm = "rms",
        obs_norm: bool = False,
        latent_dim: int = 128,
        hidden_dim: int = 256,
        k: int = 3,
        average: bool = False,
    ) -> None:
        space = check_obs_space(observation_space, type(self).__name__)
        super().__init__(observation_space, action_space, coef, coef_decay, reward_norm)
        check_positive(type(self).__name__, k=k, latent_dim=latent_dim)
        self.k = int(k)
        self.average = bool(average)
        self.obs_shape = tuple(space.shape or ())
        self.whitener = ObsWhitener(space, obs_norm)
        self.encoder = embedding_net(self.whitener.encoder_space(), latent_dim, hidden_dim)
        for p in self.encoder.parameters():
            p.requires_grad_(False)

    def transform(self, distances: Tensor) -> Tensor:
        """The entropy term of a k-NN distance: RE3's ``log(1 + d)``."""
        return torch.log1p(distances)

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> Tensor:
        lead = check_batch(batch, type(self).__name__)
        next_obs = rows(batch.next_obs, lead, self.obs_shape)
        self.whitener.update(next_obs)
        y = self.encoder(self.whitener(next_obs))
        k = min(self.k, y.shape[0] - 1)
        if k < 1:
            return torch.zeros(lead, device=y.device)
        dist = knn_distances(y, y, k, exclude_self=True)
        d = dist.mean(1) if self.average else dist[:, -1]
        return self.transform(d).reshape(lead)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        """Nothing to train: the encoder stays random."""
        return {}
