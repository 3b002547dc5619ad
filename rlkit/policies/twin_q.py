"""Off-policy actor-critics: an actor plus an ensemble of Q critics (twin by default) sharing one
encoder. DDPG/TD3 use the deterministic actor, SAC the squashed Gaussian, SAC-discrete the
categorical actor with a Q value per action.

Layout: ``encoder -> features``; ``actor(features)``;
``critic(features[, action]) -> [E, B(, n)]`` with the ``E`` critics evaluated as one batched
module (:class:`~rlkit.policies.ensemble.EnsembleMLP`).
Continuous actors work in the normalised action box ``[-1, 1]^A``: the critics see normalised
actions (:meth:`ContinuousActorCritic.normalize_actions` maps stored env actions), and
:meth:`ContinuousActorCritic.to_env` rescales to the env's bounds. The encoder is trained by the
critic loss; agents feed the actor detached features (the DrQ / SAC-AE convention), so an image
encoder is shared without the actor's gradient pulling on it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.backends import kernels_active, overridden
from rlkit.backends.setting import Backend
from rlkit.backends.squash_kernel import squash_backward, squash_forward, squash_sample
from rlkit.backends.torch_private import hooks_present
from rlkit.configurable import build_primitive
from rlkit.distributions.base import Distribution
from rlkit.distributions.categorical import Categorical, CategoricalDist
from rlkit.distributions.noise import NormalNoise
from rlkit.distributions.squashed import SquashedNormal, SquashedNormalDist
from rlkit.encoders.base import Encoder
from rlkit.encoders.default import default_encoder
from rlkit.encoders.mlp import Identity
from rlkit.policies.actor_critic import check_distribution, check_encoder
from rlkit.policies.base import POLICIES, Policy
from rlkit.policies.ensemble import (
    NUMPY_MAX_BATCH,
    DenseStack,
    EnsembleMLP,
    mlp_head,
    numpy_eligible,
)
from rlkit.spaces import check_space, is_image_space
from rlkit.types import Obs, PolicyState

#: an encoder or distribution given as an object, a registered id or an ``{"id": ...}`` spec.
PartSpec = Any


class OffPolicyActorCritic(Policy, ABC):
    """Base: shared encoder, an actor, and ``num_critics`` Q critics in one batched module.

    ``hidden_sizes`` shapes the actor and (unless ``critic_hidden_sizes`` is given) the
    critics; ``None`` picks ``default_hidden`` for vector observations and ``(256,)`` after an
    image encoder. Subclasses build :attr:`actor` and say what the critic sees.
    """

    #: hidden sizes used when ``hidden_sizes`` is None on vector observations.
    default_hidden: tuple[int, ...] = (256, 256)

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | PartSpec = None,
        hidden_sizes: Sequence[int] | None = None,
        critic_hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        num_critics: int = 2,
    ) -> None:
        super().__init__(observation_space, action_space)
        name = type(self).__name__
        enc = build_primitive(
            "encoder", encoder, Encoder, name, observation_space=observation_space
        )
        enc = enc if enc is not None else default_encoder(observation_space)
        check_encoder(enc, observation_space, name)
        if int(num_critics) < 1:
            raise ValueError(f"{name}: num_critics must be >= 1, got {num_critics}")
        if hidden_sizes is None:
            hidden_sizes = (256,) if is_image_space(observation_space) else self.default_hidden
        self.encoder = enc
        self.num_critics = int(num_critics)
        self.hidden_sizes = [int(s) for s in hidden_sizes]
        self.critic_hidden_sizes = (
            list(self.hidden_sizes)
            if critic_hidden_sizes is None
            else [int(s) for s in critic_hidden_sizes]
        )
        self.activation = activation
        self.critic = self.make_critic(
            enc.feature_dim + self.critic_action_dim(), self.critic_out_dim()
        )

    # ----------------------------------------------------------------- what subclasses define
    @abstractmethod
    def critic_action_dim(self) -> int:
        """Width of the action input of the critics (0 when they output a value per action)."""

    @abstractmethod
    def critic_out_dim(self) -> int:
        """Outputs per critic: 1 for ``Q(s, a)``, ``n`` for ``Q(s, .)``."""

    def make_critic(self, in_features: int, out_features: int) -> nn.Module:
        """The critics as one module, ``[B, in] -> [E, B, out]`` with the call signature of
        :class:`EnsembleMLP` (the default; a subclass may build another, e.g. with
        normalisation layers)."""
        return EnsembleMLP(
            self.num_critics, in_features, self.critic_hidden_sizes, out_features, self.activation
        )

    # ----------------------------------------------------------------- shared parts
    def features(self, obs: Obs) -> Tensor:
        """Encoder features ``[B, feature_dim]``."""
        return self.encoder(obs)

    def q_values(
        self,
        features: Tensor,
        actions: Tensor | None = None,
        detach_params: bool = False,
        members: slice | None = None,
    ) -> Tensor:
        """All critics at once: ``[E, B]`` for ``Q(s, a)`` (``actions`` normalised, ``[B, A]``),
        ``[E, B, n]`` when the critics output a value per discrete action (no ``actions``).

        ``detach_params`` keeps the critics' weights out of autograd (the actor's loss only
        needs the gradient with respect to the action); ``members`` picks some critics only."""
        if self.critic_action_dim():
            if actions is None:
                raise ValueError(f"{type(self).__name__}.q_values needs actions")
            features = torch.cat([features, actions], dim=-1)
        q = self.critic(features, detach_params, members)
        return q.squeeze(-1) if self.critic_out_dim() == 1 else q

    def actor_modules(self) -> list[nn.Module]:
        """Modules trained by the actor loss (one optimizer)."""
        return [self.actor]

    def critic_modules(self) -> list[nn.Module]:
        """Modules trained by the critic loss (one optimizer): the encoder and the critics."""
        return [self.encoder, self.critic]

    actor: nn.Module


class ContinuousActorCritic(OffPolicyActorCritic, ABC):
    """Box actions with finite bounds; the actor and critics work in ``[-1, 1]^A``."""

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | PartSpec = None,
        hidden_sizes: Sequence[int] | None = None,
        critic_hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        num_critics: int = 2,
    ) -> None:
        name = type(self).__name__
        check_space(action_space, (spaces.Box,), "action space", name)
        assert isinstance(action_space, spaces.Box)
        low = np.asarray(action_space.low, dtype=np.float64).reshape(-1)
        high = np.asarray(action_space.high, dtype=np.float64).reshape(-1)
        if not (np.isfinite(low).all() and np.isfinite(high).all() and (high > low).all()):
            raise ValueError(
                f"{name} needs a Box action space with finite bounds (high > low), got "
                f"{action_space!r}; rescale the env's actions (gymnasium.wrappers.RescaleAction)"
            )
        self.action_dim = int(low.size)
        self.action_shape = tuple(action_space.shape)
        super().__init__(
            observation_space,
            action_space,
            encoder,
            hidden_sizes,
            critic_hidden_sizes,
            activation,
            num_critics,
        )
        as_tensor = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
        self.register_buffer("action_low", as_tensor(low))
        self.register_buffer("action_high", as_tensor(high))
        self.register_buffer("action_loc", as_tensor((high + low) / 2))
        self.register_buffer("action_scale", as_tensor((high - low) / 2))
        self.action_low: Tensor
        self.action_high: Tensor
        self.action_loc: Tensor
        self.action_scale: Tensor

    def critic_action_dim(self) -> int:
        return self.action_dim

    def critic_out_dim(self) -> int:
        return 1

    def normalize_actions(self, actions: Tensor) -> Tensor:
        """Env actions (any shape ``[B, *shape]``) -> ``[B, A]`` in ``[-1, 1]``."""
        return (actions.reshape(actions.shape[0], -1) - self.action_loc) / self.action_scale

    def to_env(self, actions: Tensor) -> Tensor:
        """Normalised ``[B, A]`` actions -> env actions ``[B, *shape]`` clipped to the bounds."""
        out = torch.addcmul(self.action_loc, actions, self.action_scale)
        out = torch.maximum(torch.minimum(out, self.action_high), self.action_low)
        return out.reshape(out.shape[0], *self.action_shape)


@POLICIES.register("deterministic_actor_critic")
class DeterministicActorCritic(ContinuousActorCritic):
    """DDPG/TD3 policy: ``tanh`` actor and twin critics (Fujimoto et al. 2018).

    ``noise`` is the exploration family applied by ``act(deterministic=False)`` in env units
    (default :class:`~rlkit.distributions.NormalNoise` with ``sigma=0.1`` of the half-width,
    TD3's setting); :class:`~rlkit.distributions.OrnsteinUhlenbeckNoise` also fits (the agent
    steps and resets its state). ``hidden_sizes=None`` is ``(256, 256)`` (TD3 paper revision /
    CleanRL; Stable-Baselines3 uses ``(400, 300)``).
    """

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | PartSpec = None,
        noise: Distribution | PartSpec = None,
        hidden_sizes: Sequence[int] | None = None,
        critic_hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        num_critics: int = 2,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            encoder,
            hidden_sizes,
            critic_hidden_sizes,
            activation,
            num_critics,
        )
        name = type(self).__name__
        family = build_primitive(
            "distribution", noise, Distribution, name, action_space=action_space
        )
        family = family if family is not None else NormalNoise(action_space, sigma=0.1)
        check_distribution(family, action_space, name)
        self.noise = family
        self.actor = mlp_head(
            self.encoder.feature_dim, self.hidden_sizes, self.action_dim, activation
        )

    def actor_action(self, features: Tensor) -> Tensor:
        """The actor's normalised action ``[B, A]`` in ``[-1, 1]`` (``tanh`` of its output)."""
        return torch.tanh(self.actor(features))

    def forward(self, obs: Obs) -> Tensor:
        return self.to_env(self.actor_action(self.features(obs)))

    def act(
        self,
        obs: Obs,
        deterministic: bool = False,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, PolicyState]:
        action = self.forward(obs)
        if not deterministic:
            flat = action.reshape(action.shape[0], -1)
            action = self.noise(flat).sample().reshape(action.shape)
        return action, None


@POLICIES.register("squashed_gaussian_actor_critic")
class SquashedGaussianActorCritic(ContinuousActorCritic):
    """SAC policy (Haarnoja et al. 2018): tanh-squashed Gaussian actor and twin critics.

    The actor head outputs mean and log-std (clamped to ``log_std_bounds``) of a
    :class:`~rlkit.distributions.SquashedNormal` on ``[-1, 1]^A``, so log-probabilities are
    those of the normalised action (as Stable-Baselines3 computes them; the target entropy
    ``-A`` refers to them). Acting deterministically takes ``tanh(mean)``.
    """

    actor: DenseStack

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | PartSpec = None,
        hidden_sizes: Sequence[int] | None = None,
        critic_hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        num_critics: int = 2,
        log_std_bounds: tuple[float, float] = (-20.0, 2.0),
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            encoder,
            hidden_sizes,
            critic_hidden_sizes,
            activation,
            num_critics,
        )
        unit = spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32)
        low, high = log_std_bounds
        self.distribution = SquashedNormal(unit, log_std_bounds=(float(low), float(high)))
        self.actor = mlp_head(
            self.encoder.feature_dim, self.hidden_sizes, 2 * self.action_dim, activation
        )

    def action_distribution(self, features: Tensor) -> SquashedNormalDist:
        """The actor's distribution over normalised actions."""
        return self.distribution(self.actor(features))

    def sample_with_log_prob(
        self, features: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """A reparameterised normalised action ``[B, A]`` and its log-density ``[B]``.

        The same numbers as ``action_distribution(features).rsample_with_log_prob(generator)``
        (same noise draw; tested). On the ``fast`` backend the squashing and its derivative
        run as one autograd node (:mod:`rlkit.backends.squash_kernel`).
        ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`` keeps it stable for large ``u``.
        """
        head = self.actor(features)
        dim = self.action_dim
        eps = torch.randn(
            (head.shape[0], dim), generator=generator, dtype=head.dtype, device=head.device
        )
        bounds = self.distribution.log_std_bounds
        if kernels_active():
            return squash_sample(head, eps, bounds, self.distribution.eps)
        mean, log_std = head.chunk(2, dim=-1)
        log_std = log_std.clamp(*bounds)
        u = torch.addcmul(mean, log_std.exp(), eps)
        bound = 1.0 - self.distribution.eps
        action = torch.tanh(u).clamp(-bound, bound)
        # per dim: log N(u; mean, std) - log(1 - tanh(u)^2)
        #        = -eps^2 / 2 - log_std - log(2 pi) / 2 - 2 log 2 + 2 (u + softplus(-2u))
        squash = (F.softplus(-2.0 * u) + u).mul(2.0).sub(log_std)
        log_prob = torch.addcmul(squash, eps, eps, value=-0.5).sum(-1) - self._log_prob_offset
        return action, log_prob

    def kernel_status(self, backend: Backend) -> tuple[str, str | None]:
        """What the tanh-Gaussian sampling runs on ``backend``."""
        if not backend.kernels:
            return "sampling: autograd", None
        return "sampling: squash kernel (one autograd node)", None

    def squash(self, head_out: Tensor, eps: Tensor) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
        """:meth:`sample_with_log_prob` from the actor's output ``[B, 2A]`` and a given noise
        draw ``eps`` ``[B, A]``, without autograd: ``(action, log_prob, cache)``, where the
        cache is what :meth:`squash_backward` needs."""
        return squash_forward(
            head_out, eps, self.distribution.log_std_bounds, self.distribution.eps
        )

    def squash_backward(
        self, cache: tuple[Tensor, ...], grad_action: Tensor, grad_log_prob: float | Tensor
    ) -> Tensor:
        """The gradient with respect to the actor's output ``[B, 2A]`` of a loss whose
        gradient is ``grad_action`` ``[B, A]`` with respect to :meth:`squash`'s action and
        ``grad_log_prob`` (per sample, or one number for all) with respect to its log-prob."""
        return squash_backward(
            cache, grad_action, grad_log_prob, self.distribution.log_std_bounds,
            self.distribution.eps,
        )  # fmt: skip

    @property
    def _log_prob_offset(self) -> float:
        return self.action_dim * (0.5 * math.log(2.0 * math.pi) + 2.0 * math.log(2.0))

    def forward(self, obs: Obs) -> Tensor:
        return self.to_env(self.action_distribution(self.features(obs)).mode())

    def act(
        self,
        obs: Obs,
        deterministic: bool = False,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, PolicyState]:
        head = self.actor(self.features(obs))
        if numpy_eligible(head):
            return torch.from_numpy(self._act_numpy(head.numpy(), deterministic)), None
        dist = self.distribution(head)
        return self.to_env(dist.mode() if deterministic else dist.sample()), None

    def act_numpy(self, obs: Any, deterministic: bool = False) -> np.ndarray | None:
        """:meth:`act` on a NumPy observation batch, all in NumPy but the noise draw, or None
        where that does not apply (not a small float batch, not the default flattening encoder
        and ReLU actor on the CPU, or the actor has hooks)."""
        actor = self.actor
        if not (
            isinstance(obs, np.ndarray)
            and obs.dtype.kind == "f"
            and 0 < obs.shape[0] <= NUMPY_MAX_BATCH
            and isinstance(self.encoder, Identity)
            and not overridden(self.encoder, Identity, "forward")
            and isinstance(actor, DenseStack)
            and not overridden(actor, DenseStack, "forward")
            and actor.supports_manual_backward
            and not hooks_present(actor)
            and actor.layers[0].weight.device.type == "cpu"
        ):
            return None
        x = obs.reshape(obs.shape[0], -1).astype(np.float32, copy=False)
        return self._act_numpy(actor.numpy_forward(x), deterministic)

    def _act_numpy(self, head: np.ndarray, deterministic: bool) -> np.ndarray:
        """:meth:`act` for acting-size CPU batches: the same noise draw (torch's default
        generator, as ``dist.sample()``) with the squashing and rescaling in NumPy, where
        each call costs ~1 us instead of several (it runs once per env step)."""
        dim = self.action_dim
        mean = head[:, :dim]
        if deterministic:
            unit = np.tanh(mean)
        else:
            low, high = self.distribution.log_std_bounds
            std = np.exp(np.clip(head[:, dim:], low, high))
            noise = torch.randn(mean.shape).numpy()
            bound = 1.0 - self.distribution.eps
            unit = np.clip(np.tanh(mean + std * noise), -bound, bound)
        loc, scale, low_a, high_a = self._numpy_bounds()
        env = np.clip(loc + scale * unit, low_a, high_a)
        return env.reshape(env.shape[0], *self.action_shape)

    def _numpy_bounds(self) -> tuple[np.ndarray, ...]:
        """NumPy copies of the action box (buffers on the CPU; rebuilt if they move)."""
        key = self.action_loc.data_ptr()
        cached = self.__dict__.get("_bounds_np")
        if cached is None or cached[0] != key:
            arrays = tuple(
                b.detach().cpu().numpy().copy()
                for b in (self.action_loc, self.action_scale, self.action_low, self.action_high)
            )
            cached = (key, arrays)
            self.__dict__["_bounds_np"] = cached
        return cached[1]


@POLICIES.register("categorical_actor_critic")
class CategoricalActorCritic(OffPolicyActorCritic):
    """SAC-discrete policy (Christodoulou 2019): categorical actor and critics that output
    ``Q(s, a)`` for every action (no action input). ``hidden_sizes=None`` is ``(256, 256)``."""

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | PartSpec = None,
        hidden_sizes: Sequence[int] | None = None,
        critic_hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        num_critics: int = 2,
    ) -> None:
        check_space(action_space, (spaces.Discrete,), "action space", type(self).__name__)
        assert isinstance(action_space, spaces.Discrete)
        self.num_actions = int(action_space.n)
        super().__init__(
            observation_space,
            action_space,
            encoder,
            hidden_sizes,
            critic_hidden_sizes,
            activation,
            num_critics,
        )
        self.distribution = Categorical(action_space)
        self.actor = mlp_head(
            self.encoder.feature_dim, self.hidden_sizes, self.num_actions, activation
        )

    def critic_action_dim(self) -> int:
        return 0

    def critic_out_dim(self) -> int:
        return self.num_actions

    def action_distribution(self, features: Tensor) -> CategoricalDist:
        """The actor's categorical over zero-based action indices."""
        return CategoricalDist(self.actor(features))

    def forward(self, obs: Obs) -> Tensor:
        return self.distribution.postprocess(self.actor(self.features(obs)).argmax(-1))

    def act(
        self,
        obs: Obs,
        deterministic: bool = False,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, PolicyState]:
        if deterministic:
            return self.forward(obs), None
        dist = self.action_distribution(self.features(obs))
        return self.distribution.postprocess(dist.sample()), None
