"""Self-supervised dynamics heads that exploration bonuses train on transitions: an inverse
model (which action led from ``s`` to ``s'``) and a forward model (the next embedding)."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.encoders.mlp import mlp
from rlkit.rewards.common import ActionCoder, ObsWhitener, embedding_net


class InverseModel(nn.Module):
    """``[phi(s), phi(s')] -> action`` through one ReLU hidden layer (ICM, RIDE, NGU, E3B)."""

    def __init__(self, feature_dim: int, actions: ActionCoder, hidden_dim: int) -> None:
        super().__init__()
        self.actions = actions
        self.net = nn.Sequential(
            mlp(2 * feature_dim, [hidden_dim], "relu"), nn.Linear(hidden_dim, actions.dim)
        )

    def loss(self, phi: Tensor, phi_next: Tensor, actions: Tensor) -> Tensor:
        """Per-sample loss ``[M]`` (cross-entropy for discrete actions)."""
        logits = self.net(torch.cat([phi, phi_next], dim=1))
        return self.actions.inverse_loss(logits, actions)


class ForwardModel(nn.Module):
    """``[phi(s), a] -> phi(s')``: a ReLU layer, ``num_blocks`` residual blocks that see the
    action again at each layer (as the disagreement paper's dynamics net), a linear output."""

    def __init__(
        self, feature_dim: int, actions: ActionCoder, hidden_dim: int, num_blocks: int = 0
    ) -> None:
        super().__init__()
        self.actions = actions
        a = actions.dim
        self.inp = nn.Linear(feature_dim + a, hidden_dim)
        self.block_in = nn.ModuleList(
            nn.Linear(hidden_dim + a, hidden_dim) for _ in range(num_blocks)
        )
        self.block_out = nn.ModuleList(
            nn.Linear(hidden_dim + a, hidden_dim) for _ in range(num_blocks)
        )
        self.out = nn.Linear(hidden_dim + a, feature_dim)

    def forward(self, phi: Tensor, actions: Tensor) -> Tensor:
        a = self.actions.encode(actions, phi.shape[0]).to(phi.dtype)
        x = torch.relu(self.inp(torch.cat([phi, a], 1)))
        for first, second in zip(self.block_in, self.block_out, strict=True):
            res = torch.relu(first(torch.cat([x, a], 1)))
            x = x + second(torch.cat([res, a], 1))
        out: Tensor = self.out(torch.cat([x, a], 1))
        return out


def attach_dynamics_models(
    module: nn.Module,
    space: spaces.Box,
    action_space: spaces.Space[Any],
    obs_norm: bool,
    feature_dim: int,
    hidden_dim: int,
    lr: float,
    owner: str,
) -> None:
    """Give ``module`` what ICM and RIDE share: ``actions``, ``whitener``, a Pathak ``encoder``,
    ``inverse`` and ``forward_model`` on its features, and one Adam ``optimizer`` over the three
    networks."""
    actions = ActionCoder(action_space, owner)
    whitener = ObsWhitener(space, obs_norm)
    encoder = embedding_net(whitener.encoder_space(), feature_dim, hidden_dim, "pathak")
    dim = int(encoder.feature_dim)  # type: ignore[arg-type]
    inverse = InverseModel(dim, actions, hidden_dim)
    forward_model = ForwardModel(dim, actions, hidden_dim)
    module.actions = actions  # type: ignore[assignment]
    module.whitener = whitener
    module.encoder = encoder
    module.inverse = inverse
    module.forward_model = forward_model
    params = [*encoder.parameters(), *inverse.parameters(), *forward_model.parameters()]
    module.optimizer = torch.optim.Adam(params, lr=lr)  # type: ignore[assignment]
