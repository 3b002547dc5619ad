"""Generalised state-dependent exploration (gSDE; Raffin, Kober and Stulp, CoRL 2022) as a
distribution family: the noise a continuous action gets is ``z(s) @ W``, with ``z(s)`` the
actor's last hidden features and ``W ~ N(0, sigma^2)`` a ``[latent, A]`` matrix redrawn now and
then, so within a draw the same state gives the same perturbation and the exploration is smooth
in time (MountainCarContinuous's car builds momentum instead of shaking in place).

- :class:`StateDependentNoise` holds the learned ``log sigma`` ``[latent, A]`` and the draws
  (one acting matrix per env row, one training matrix per update).
- :class:`StateDependentGaussian` (``state_dependent_gaussian``) is the on-policy family, as
  Stable-Baselines3's ``use_sde=True`` for PPO/A2C/TRPO and sb3-contrib's RecurrentPPO: the
  head gives the means, the policy passes its actor features too
  (:meth:`~rlkit.distributions.Distribution.from_features`; the features are detached, SB3's
  on-policy ``learn_features=False``), log-probabilities and entropies are those of the per-state
  marginal ``N(mean, z^2 @ sigma^2 + eps)``. Any actor-critic that calls ``bind_features`` and
  ``from_features`` takes it (``actor_critic``, ``lstm_actor_critic``, ``gru_actor_critic``,
  ``transformer_actor_critic``): ``policy={"id": "lstm_actor_critic", "distribution":
  {"id": "state_dependent_gaussian", "sample_freq": 4}}``.

The loop that acts redraws the acting weights (:meth:`StateDependentNoise.redraw`): at every
rollout start (on-policy) or ``train_freq`` round (off-policy) and, with ``sample_freq > 0``,
every ``sample_freq`` vector steps; :func:`state_dependent_noise` finds a policy's noise.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Range, Rule
from rlkit.distributions.base import DISTRIBUTIONS
from rlkit.distributions.gaussian import DiagGaussian, DiagGaussianDist

#: added to the variance before its square root (Stable-Baselines3's epsilon).
VARIANCE_EPS = 1e-6


class StateDependentNoise(nn.Module):
    """gSDE's noise: ``log_std`` ``[latent, A]`` and the current draws (see the module doc
    of :mod:`rlkit.policies.gsde` for the off-policy use).

    ``sample_freq`` is set by the agent from its config (``sde_sample_freq``): -1 redraws the
    acting weights once per ``train_freq`` round only.
    """

    def __init__(self, latent_dim: int, action_dim: int, log_std_init: float = -3.0) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.action_dim = int(action_dim)
        self.log_std = nn.Parameter(torch.full((self.latent_dim, self.action_dim), log_std_init))
        #: standard-normal draws of the acting weights, one ``[latent, A]`` matrix per env row
        #: (zero rows until the first draw); the weights are ``std * exploration``.
        #: (not in the module's state dict: the agent checkpoints it, its row count is the env's).
        empty = torch.zeros(0, self.latent_dim, self.action_dim)
        self.register_buffer("exploration", empty, persistent=False)
        self.exploration: Tensor
        #: the standard-normal draw of the training weights (one matrix per update).
        self.training_draw: Tensor | None = None
        #: vector steps between two draws of the acting weights inside a round (-1: none).
        self.sample_freq = -1

    def std(self) -> Tensor:
        """``sigma`` ``[latent, A]``."""
        return self.log_std.exp()

    def scale(self, latent: Tensor) -> Tensor:
        """The per-state standard deviation ``sqrt(z^2 @ sigma^2 + eps)`` ``[B, A]``."""
        variance = torch.mm(latent.square(), self.std().square())
        return (variance + VARIANCE_EPS).sqrt()

    def allocate(self, rows: int) -> None:
        """Room for ``rows`` acting matrices (zeros: no noise until :meth:`resample`)."""
        self.exploration = self.log_std.new_zeros(rows, self.latent_dim, self.action_dim)

    @torch.no_grad()
    def resample(self, rows: int, generator: torch.Generator | None = None) -> None:
        """Draw new acting weights for ``rows`` env rows."""
        self.exploration = self._randn((rows, self.latent_dim, self.action_dim), generator)

    @torch.no_grad()
    def redraw(self, position: int, rows: int, generator: torch.Generator | None = None) -> None:
        """Stable-Baselines3's acting schedule: new weights at ``position`` 0 of a period (a
        rollout, a ``train_freq`` round) and, with ``sample_freq > 0``, every ``sample_freq``
        vector steps into it; otherwise the current draw stays."""
        freq = int(self.sample_freq)
        if position == 0 or (freq > 0 and position % freq == 0):
            self.resample(rows, generator)

    @torch.no_grad()
    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        """Draw the training weights (called before every update, as noisy layers are)."""
        self.training_draw = self._randn((self.latent_dim, self.action_dim), generator)

    def _randn(self, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
        """Standard normals drawn on ``generator``'s device (the agent's generator lives on
        the CPU), placed on the parameters' device."""
        device = generator.device if generator is not None else self.log_std.device
        return torch.randn(shape, generator=generator, device=device).to(self.log_std.device)

    def explore(self, latent: Tensor) -> Tensor:
        """The acting perturbation ``z_b @ W_b`` per row ``[B, A]`` (fresh weights for rows
        the current draw does not cover: a caller acting on another batch size)."""
        draws = self.exploration
        if draws.shape[0] != latent.shape[0]:
            draws = torch.randn(
                latent.shape[0], self.latent_dim, self.action_dim, device=latent.device
            )
        weights = draws * self.std()
        return torch.bmm(latent.unsqueeze(1), weights).squeeze(1)

    def train_noise(self, latent: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``z @ (sigma * eps)`` ``[B, A]`` with this update's draw (made now if none),
        reparameterised: the gradient reaches ``log_std``."""
        if self.training_draw is None:
            self.reset_noise(generator)
        assert self.training_draw is not None
        return torch.mm(latent, self.std() * self.training_draw)


class GSDEGaussianDist(DiagGaussianDist):
    """``N(mean, scale^2)`` whose :meth:`sample` is ``mean + z @ W`` with the current
    exploration draw (``sde`` computes that perturbation on demand)."""

    def __init__(self, mean: Tensor, scale: Tensor, latent: Tensor, sde: StateDependentNoise):
        super().__init__(mean, scale.log())
        self._latent = latent
        self._sde = sde

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            return self.mean + self._sde.explore(self._latent)


@DISTRIBUTIONS.register("state_dependent_gaussian")
class StateDependentGaussian(DiagGaussian):
    """gSDE for on-policy actor-critics (see the module doc): the head gives the means, the
    standard deviation comes from the actor's features through :attr:`sde`. ``log_std_init``
    is ``log sigma`` at the start (Stable-Baselines3's on-policy default 0), ``sample_freq``
    the vector steps between two draws of the acting weights within a rollout (-1: one draw
    per rollout). ``latent_dim`` is the features' width; the owning policy gives it through
    :meth:`bind_features` when it is left out. Clipping to the bounds is ``diag_gaussian``'s."""

    argument_rules: ClassVar[dict[str, Rule]] = {
        "sample_freq": Range(1, integer=True, also=(-1,)),
        "latent_dim": Range(1, integer=True, none=True),
    }
    needs_features = True

    def __init__(
        self,
        action_space: spaces.Space[Any],
        latent_dim: int | None = None,
        log_std_init: float = 0.0,
        sample_freq: int = -1,
    ) -> None:
        if not isinstance(action_space, spaces.Box):
            raise TypeError(
                "StateDependentGaussian: gSDE explores continuous actions; the action space "
                f"is {action_space!r}"
            )
        super().__init__(action_space, state_dependent_std=True)  # no log-std parameter
        self.log_std_init = float(log_std_init)
        self.sample_freq = int(sample_freq)
        self._sde: StateDependentNoise | None = None
        if latent_dim is not None:
            self.bind_features(int(latent_dim))

    @property
    def num_params(self) -> int:
        return self.dim  # the means only

    @property
    def sde(self) -> StateDependentNoise:
        """The exploration noise (built by :meth:`bind_features`)."""
        if self._sde is None:
            raise RuntimeError(
                "StateDependentGaussian has no noise yet: the policy that owns it calls "
                "bind_features(latent_dim) (or pass latent_dim=)"
            )
        return self._sde

    def bind_features(self, feature_dim: int) -> None:
        if self._sde is not None:
            if self._sde.latent_dim != feature_dim:
                raise ValueError(
                    f"StateDependentGaussian: bound to {self._sde.latent_dim} actor features, "
                    f"got feature_dim={feature_dim}; build one distribution per policy"
                )
            return
        self._sde = StateDependentNoise(feature_dim, self.dim, self.log_std_init)
        self._sde.sample_freq = self.sample_freq

    def forward(self, params: Tensor, latent: Tensor | None = None) -> GSDEGaussianDist:
        if latent is None:
            raise ValueError(
                "StateDependentGaussian needs the actor's latent features: "
                "distribution(mean, latent) or from_features(mean, latent)"
            )
        latent = latent.detach()
        return GSDEGaussianDist(params, self.sde.scale(latent), latent, self.sde)

    def from_features(
        self, params: Tensor, features: Tensor, mask: Tensor | None = None
    ) -> GSDEGaussianDist:
        if mask is not None:
            super().masked(params, mask)  # refuses, naming the family
        return self.forward(params, features)


def state_dependent_noise(policy: Any) -> StateDependentNoise | None:
    """The gSDE noise a policy explores with: its own ``sde`` or its distribution's (found by
    capability: an object with ``resample``), else None."""
    for owner in (policy, getattr(policy, "distribution", None)):
        try:
            sde = getattr(owner, "sde", None)
        except RuntimeError:  # an unbound StateDependentGaussian
            sde = None
        if callable(getattr(sde, "resample", None)):
            return sde
    return None


__all__ = [
    "VARIANCE_EPS",
    "GSDEGaussianDist",
    "StateDependentGaussian",
    "StateDependentNoise",
    "state_dependent_noise",
]
