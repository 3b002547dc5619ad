"""Generalised state-dependent exploration (gSDE; Raffin, Kober and Stulp, CoRL 2022).

Independent Gaussian noise per step makes a continuous-control policy jitter: on tasks such as
MountainCarContinuous the car shakes in place and never builds momentum. gSDE makes the noise a
function of the state instead: ``noise = z(s) @ W`` with ``z(s)`` the actor's last hidden
features and ``W ~ N(0, sigma^2)`` a ``[latent, A]`` matrix drawn now and then, so
within a draw the same state gives the same perturbation and the exploration is smooth. The
marginal per state is Gaussian with variance ``z(s)^2 @ sigma^2`` (per action), which is what
the log-probabilities use. As in Stable-Baselines3's SAC policy (``learn_features=True``), the
noise and the variance also train the hidden layers that compute ``z``.

:class:`StateDependentNoise` holds ``log sigma`` (learned, one per latent unit and action: the
"full std" variant) and two draws: the exploration weights for acting (one matrix per env row,
redrawn by the off-policy loop at the start of every ``train_freq`` round and, with
``sample_freq > 0``, every ``sample_freq`` vector steps: Stable-Baselines3's schedule) and the
training weights (one matrix, redrawn before every update through the ``reset_noise`` hook
that noisy layers use, and reparameterised so ``sigma`` gets its gradient).
:class:`GSDEActorCritic` is SAC's tanh-Gaussian actor-critic with that noise
(``SAC(env, use_sde=True)`` builds it; :class:`GSDEQuantileActorCritic` is TQC's), as
Stable-Baselines3's SAC policy with ``use_sde``:
the mean clipped to ``[-clip_mean, clip_mean]``, ``sigma = exp(log_std)`` initialised at
``exp(log_std_init)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.backends.setting import Backend
from rlkit.config.rules import Range, Rule
from rlkit.distributions.squashed import SquashedNormalDist
from rlkit.distributions.state_dependent import StateDependentNoise
from rlkit.encoders.base import Encoder
from rlkit.policies.base import POLICIES
from rlkit.policies.quantile_critic import QuantileActorCritic
from rlkit.policies.twin_q import PartSpec, SquashedGaussianActorCritic
from rlkit.types import Obs, PolicyState
from rlkit.utils.nn import activation_class


def _latent_net(in_dim: int, sizes: Sequence[int], activation: str) -> nn.Sequential:
    """``Linear -> activation`` per size, PyTorch's default init (Stable-Baselines3's)."""
    act = activation_class(activation)
    layers: list[nn.Module] = []
    prev = in_dim
    for size in sizes:
        layers += [nn.Linear(prev, int(size)), act()]
        prev = int(size)
    return nn.Sequential(*layers)


class GSDEActor(nn.Module):
    """features -> latent ``z`` (hidden layers) -> mean (clipped); plus the gSDE noise on ``z``.
    ``forward`` returns ``(mean, z)``."""

    def __init__(
        self,
        in_dim: int,
        hidden_sizes: Sequence[int],
        action_dim: int,
        activation: str,
        log_std_init: float,
        clip_mean: float,
    ) -> None:
        super().__init__()
        self.latent = _latent_net(in_dim, hidden_sizes, activation)
        latent_dim = int(hidden_sizes[-1]) if hidden_sizes else in_dim
        self.mu = nn.Linear(latent_dim, action_dim)
        self.sde = StateDependentNoise(latent_dim, action_dim, log_std_init)
        self.clip_mean = float(clip_mean)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        latent = self.latent(features)
        mean = self.mu(latent)
        if self.clip_mean > 0:
            mean = mean.clamp(-self.clip_mean, self.clip_mean)
        return mean, latent


@POLICIES.register("gsde_actor_critic")
class GSDEActorCritic(SquashedGaussianActorCritic):
    """SAC's actor-critic with gSDE exploration (see the module doc): a tanh-squashed
    Gaussian whose noise is ``z(s) @ W``. ``log_std_init`` is ``log sigma`` at the start
    (Stable-Baselines3's SAC default -3; rl-baselines3-zoo's MountainCarContinuous uses
    -3.67), ``clip_mean`` bounds the pre-tanh mean (2.0 as Stable-Baselines3; 0 disables).
    Acting deterministically takes ``tanh(mean)``."""

    argument_rules: ClassVar[dict[str, Rule]] = {"clip_mean": Range(0.0)}

    actor: GSDEActor  # type: ignore[assignment]

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | PartSpec = None,
        hidden_sizes: Sequence[int] | None = None,
        critic_hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        num_critics: int = 2,
        log_std_init: float = -3.0,
        clip_mean: float = 2.0,
    ) -> None:
        super().__init__(
            observation_space, action_space, encoder, hidden_sizes, critic_hidden_sizes,
            activation, num_critics,
        )  # fmt: skip
        self.actor = self.gsde_actor(activation, log_std_init, clip_mean)

    def gsde_actor(self, activation: str, log_std_init: float, clip_mean: float) -> GSDEActor:
        """The actor on this policy's encoder features and hidden sizes."""
        return GSDEActor(
            self.encoder.feature_dim,
            self.hidden_sizes,
            self.action_dim,
            activation,
            float(log_std_init),
            float(clip_mean),
        )

    @property
    def sde(self) -> StateDependentNoise:
        """The gSDE noise (what the off-policy loop redraws; its ``exploration`` is saved in
        checkpoints)."""
        return self.actor.sde

    def action_distribution(self, features: Tensor) -> SquashedNormalDist:
        """The per-state marginal: ``tanh(u)``, ``u ~ N(mean, z^2 @ sigma^2 + eps)`` per action
        (the noise of one state is Gaussian whatever the weights' draw)."""
        mean, latent = self.actor(features)
        log_std = self.sde.scale(latent).log()
        return self.distribution(torch.cat([mean, log_std], dim=-1))

    def sample_with_log_prob(
        self, features: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """A reparameterised normalised action ``tanh(mean + z @ (sigma * eps))`` ``[B, A]``
        with this update's weights, and its log-density under the per-state marginal ``[B]``
        (Stable-Baselines3's ``log_prob_from_params`` with gSDE)."""
        mean, latent = self.actor(features)
        u = mean + self.sde.train_noise(latent, generator)
        scale = self.sde.scale(latent)
        bound = 1.0 - self.distribution.eps
        action = torch.tanh(u).clamp(-bound, bound)
        # log N(u; mean, scale) - log(1 - tanh(u)^2), the latter as 2 (log 2 - u - softplus(-2u))
        gauss = -0.5 * ((u - mean) / scale).square() - scale.log() - 0.5 * math.log(2 * math.pi)
        correction = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
        return action, (gauss - correction).sum(-1)

    def kernel_status(self, backend: Backend) -> tuple[str, str | None]:
        return "sampling: autograd (gSDE)", None

    def forward(self, obs: Obs) -> Tensor:
        mean, _ = self.actor(self.features(obs))
        return self.to_env(self._squash(mean))

    def _squash(self, u: Tensor) -> Tensor:
        bound = 1.0 - self.distribution.eps
        return torch.tanh(u).clamp(-bound, bound)

    def act(
        self,
        obs: Obs,
        deterministic: bool = False,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, PolicyState]:
        """``tanh(mean)`` when ``deterministic``, else ``tanh(mean + z @ W_row)`` with each
        env row's current exploration weights."""
        mean, latent = self.actor(self.features(obs))
        if deterministic:
            return self.to_env(self._squash(mean)), None
        return self.to_env(self._squash(mean + self.sde.explore(latent.detach()))), None

    def act_numpy(self, obs: Any, deterministic: bool = False) -> None:
        """No NumPy acting path: gSDE acts in torch."""
        return None


@POLICIES.register("gsde_quantile_actor_critic")
class GSDEQuantileActorCritic(GSDEActorCritic, QuantileActorCritic):
    """TQC's quantile critics with the gSDE actor of :class:`GSDEActorCritic`
    (``TQC(env, use_sde=True)`` builds it; sb3-contrib's TQC with ``use_sde``)."""

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | PartSpec = None,
        hidden_sizes: Sequence[int] | None = None,
        critic_hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        num_critics: int = 5,
        n_quantiles: int = 25,
        log_std_init: float = -3.0,
        clip_mean: float = 2.0,
    ) -> None:
        QuantileActorCritic.__init__(
            self, observation_space, action_space, encoder, hidden_sizes, critic_hidden_sizes,
            activation, num_critics, n_quantiles=n_quantiles,
        )  # fmt: skip
        self.actor = self.gsde_actor(activation, log_std_init, clip_mean)


__all__ = ["GSDEActor", "GSDEActorCritic", "GSDEQuantileActorCritic", "StateDependentNoise"]
