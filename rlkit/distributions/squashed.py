"""Bounded continuous families: tanh-squashed Gaussian (SAC) and DrQ-v2's truncated normal."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor

from rlkit.distributions.base import DISTRIBUTIONS, ActionDistribution, Distribution
from rlkit.spaces import check_space

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOG_2 = math.log(2.0)

#: ``log_prob`` clamps the squashed action to ``[-1 + SQUASH_EPS, 1 - SQUASH_EPS]`` before
#: ``atanh`` (float32 resolves 1 - 1e-6, so ``atanh`` stays finite, at most ~7.25).
SQUASH_EPS = 1e-6


def _box_bounds(space: spaces.Box, owner: str, require_finite: bool) -> tuple[Tensor, Tensor]:
    """Flat float32 ``(low, high)`` of a Box; optionally insist on finite, non-empty bounds."""
    low = np.asarray(space.low, dtype=np.float64).reshape(-1)
    high = np.asarray(space.high, dtype=np.float64).reshape(-1)
    if require_finite:
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ValueError(
                f"{owner} needs an action space with finite bounds, got {space!r}; use "
                "DiagGaussian for unbounded Box spaces"
            )
        if not (high > low).all():
            raise ValueError(f"{owner} needs high > low in every dimension, got {space!r}")
    return (
        torch.as_tensor(low, dtype=torch.float32),
        torch.as_tensor(high, dtype=torch.float32),
    )


def _normal_log_prob(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Elementwise ``log N(x; mean, std^2)``."""
    z = (x - mean) / std
    return -0.5 * z * z - std.log() - _HALF_LOG_2PI


def tanh_log_abs_det_jacobian(u: Tensor) -> Tensor:
    """``log(1 - tanh(u)^2)`` in the stable form ``2 (log 2 - u - softplus(-2u))``."""
    return 2.0 * (_LOG_2 - u - F.softplus(-2.0 * u))


# --------------------------------------------------------------------------- SquashedNormal


class SquashedNormalDist(ActionDistribution):
    """``a = loc + scale * tanh(u)``, ``u ~ N(mean, std^2)`` per dim (Haarnoja et al. 2018, App. C).

    ``loc``/``scale`` are the centre and half-width of the Box, so actions lie in ``(low, high)``.
    Samples are clamped to ``tanh(u)`` in ``[-1 + eps, 1 - eps]`` so they stay strictly inside the
    bounds (up to float32 resolution of the rescale). There is no closed-form entropy:
    :meth:`entropy` raises and :meth:`entropy_estimate` gives a Monte-Carlo estimate.
    """

    def __init__(
        self, mean: Tensor, log_std: Tensor, loc: Tensor, scale: Tensor, eps: float = SQUASH_EPS
    ) -> None:
        self.mean = mean
        self.log_std = log_std.expand_as(mean)
        self.std = self.log_std.exp()
        self.loc = loc
        self.scale = scale
        self.eps = eps

    def _squash(self, u: Tensor) -> Tensor:
        y = torch.tanh(u).clamp(-1.0 + self.eps, 1.0 - self.eps)
        return self.loc + self.scale * y

    def _pre_squash_sample(self, generator: torch.Generator | None) -> Tensor:
        noise = torch.randn(
            self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        return self.mean + self.std * noise

    def _log_prob_u(self, u: Tensor) -> Tensor:
        log_det = tanh_log_abs_det_jacobian(u) + self.scale.log()
        return (_normal_log_prob(u, self.mean, self.std) - log_det).sum(-1)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            return self._squash(self._pre_squash_sample(generator))

    def rsample(self, generator: torch.Generator | None = None) -> Tensor:
        return self._squash(self._pre_squash_sample(generator))

    def rsample_with_log_prob(
        self, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Reparameterised action and its log-density from the pre-tanh sample (no ``atanh``).

        This is what SAC's actor and entropy-temperature losses use; it avoids the clamp that
        :meth:`log_prob` needs when it has to invert ``tanh``.
        """
        u = self._pre_squash_sample(generator)
        return self._squash(u), self._log_prob_u(u)

    def log_prob(self, actions: Tensor) -> Tensor:
        """``log N(u) - sum log|d a / d u|`` with ``u = atanh((a - loc) / scale)``.

        ``(a - loc) / scale`` is clamped to ``[-1 + eps, 1 - eps]`` first, so actions on (or past)
        the bounds get a finite, very low density instead of ``-inf``/NaN.
        """
        y = ((actions - self.loc) / self.scale).clamp(-1.0 + self.eps, 1.0 - self.eps)
        return self._log_prob_u(torch.atanh(y))

    def entropy(self) -> Tensor:
        raise TypeError(
            "SquashedNormalDist has no closed-form entropy; use entropy_estimate(num_samples) "
            "or -log_prob of rsample_with_log_prob() as SAC does"
        )

    def entropy_estimate(
        self, num_samples: int = 16, generator: torch.Generator | None = None
    ) -> Tensor:
        """Monte-Carlo entropy ``-E[log p(a)]`` per row from ``num_samples`` reparameterised draws.

        Unbiased and differentiable (through the reparameterisation); its variance shrinks as
        ``1 / num_samples``.
        """
        if num_samples < 1:
            raise ValueError(f"entropy_estimate needs num_samples >= 1, got {num_samples}")
        total = torch.zeros(self.mean.shape[:-1], device=self.mean.device, dtype=self.mean.dtype)
        for _ in range(num_samples):
            total = total - self._log_prob_u(self._pre_squash_sample(generator))
        return total / num_samples

    def mode(self) -> Tensor:
        """``loc + scale * tanh(mean)`` (the squashed Gaussian mean, SAC's deterministic action)."""
        return self.loc + self.scale * torch.tanh(self.mean)


@DISTRIBUTIONS.register("squashed_normal")
class SquashedNormal(Distribution):
    """Tanh-squashed diagonal Gaussian for a Box with finite bounds (SAC, Haarnoja et al. 2018).

    The head outputs ``[mean, log_std]`` (``num_params = 2 * dim``); ``log_std`` is hard-clamped
    to ``log_std_bounds``, default ``(-20, 2)`` as in the SAC reference code and DiagGaussian.
    Actions are stored already rescaled to ``[low, high]``; :meth:`postprocess` only reshapes.
    """

    def __init__(
        self,
        action_space: spaces.Space[Any],
        log_std_bounds: tuple[float, float] = (-20.0, 2.0),
        eps: float = SQUASH_EPS,
    ) -> None:
        check_space(action_space, (spaces.Box,), "action space", "SquashedNormal")
        super().__init__(action_space)
        assert isinstance(action_space, spaces.Box)
        low, high = _box_bounds(action_space, "SquashedNormal", require_finite=True)
        if not 0.0 < eps < 1.0:
            raise ValueError(f"SquashedNormal: eps must lie in (0, 1), got {eps}")
        self.space_shape = tuple(action_space.shape)
        self.dim = int(np.prod(action_space.shape))
        self.log_std_bounds = (float(log_std_bounds[0]), float(log_std_bounds[1]))
        self.eps = float(eps)
        self.register_buffer("low", low)
        self.register_buffer("high", high)
        self.register_buffer("loc", (high + low) / 2)
        self.register_buffer("scale", (high - low) / 2)
        self.low: Tensor
        self.high: Tensor
        self.loc: Tensor
        self.scale: Tensor

    @property
    def num_params(self) -> int:
        return 2 * self.dim

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def forward(self, params: Tensor) -> SquashedNormalDist:
        mean, log_std = params.chunk(2, dim=-1)
        log_std = log_std.clamp(*self.log_std_bounds)
        return SquashedNormalDist(mean, log_std, self.loc, self.scale, self.eps)

    def __call__(self, params: Tensor) -> SquashedNormalDist:
        return self.forward(params)

    def postprocess(self, actions: Tensor) -> Tensor:
        actions = torch.maximum(torch.minimum(actions, self.high), self.low)
        return actions.reshape(actions.shape[0], *self.space_shape)


# --------------------------------------------------------------------------- TruncatedNormal


class TruncatedNormalDist(ActionDistribution):
    """DrQ-v2's ``utils.TruncatedNormal`` (Yarats et al. 2021, Sec. 3.1) over a batch.

    Sampling draws ``eps ~ N(0, std^2)``, clips it to ``[-clip, clip]`` when ``clip`` is set, and
    clamps ``mean + eps`` to ``[low + eps_bound, high - eps_bound]`` with a straight-through
    gradient (the clamp is invisible to backprop). ``log_prob`` and ``entropy`` are those of the
    untruncated ``N(mean, std^2)``, exactly as in DrQ-v2 (which subclasses ``Normal``); they are
    not the density of the clipped samples.
    """

    def __init__(
        self,
        mean: Tensor,
        std: Tensor,
        low: Tensor,
        high: Tensor,
        clip: float | None = None,
        eps: float = 1e-6,
    ) -> None:
        self.mean = mean
        self.std = std.expand_as(mean)
        self.low = low
        self.high = high
        self.clip = clip
        self.eps = eps

    def _clamp(self, x: Tensor) -> Tensor:
        clamped = torch.maximum(torch.minimum(x, self.high - self.eps), self.low + self.eps)
        return x - x.detach() + clamped.detach()

    def _draw(self, generator: torch.Generator | None) -> Tensor:
        noise = torch.randn(
            self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        noise = noise * self.std
        if self.clip is not None:
            noise = noise.clamp(-self.clip, self.clip)
        return self._clamp(self.mean + noise)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            return self._draw(generator)

    def rsample(self, generator: torch.Generator | None = None) -> Tensor:
        """Straight-through sample: gradients reach ``mean`` even where the action was clamped."""
        return self._draw(generator)

    def log_prob(self, actions: Tensor) -> Tensor:
        return _normal_log_prob(actions, self.mean, self.std).sum(-1)

    def entropy(self) -> Tensor:
        return (0.5 + _HALF_LOG_2PI + self.std.log()).sum(-1)

    def mode(self) -> Tensor:
        """The mean clamped to ``[low + eps, high - eps]`` (DrQ-v2 acts with ``dist.mean``)."""
        return torch.maximum(torch.minimum(self.mean, self.high - self.eps), self.low + self.eps)


@DISTRIBUTIONS.register("truncated_normal")
class TruncatedNormal(Distribution):
    """DrQ-v2's exploration distribution: the head outputs the mean, the std is explicit.

    The std is not learned and not stored as schedule state: pass it on every call,
    ``family(params, std=schedule(step))``, or fix it with the ``std`` constructor argument.
    ``clip`` (DrQ-v2's ``stddev_clip``, 0.3 there in the actor/critic updates and ``None`` when
    acting) bounds the noise and can also be given per call. DrQ-v2's actor squashes the mean with
    ``tanh`` itself; this family uses the head output as the mean unchanged.
    """

    def __init__(
        self,
        action_space: spaces.Space[Any],
        std: float | None = None,
        clip: float | None = None,
        eps: float = 1e-6,
    ) -> None:
        check_space(action_space, (spaces.Box,), "action space", "TruncatedNormal")
        super().__init__(action_space)
        assert isinstance(action_space, spaces.Box)
        low, high = _box_bounds(action_space, "TruncatedNormal", require_finite=False)
        if std is not None:
            _check_positive("std", std)
        if clip is not None:
            _check_positive("clip", clip)
        self.space_shape = tuple(action_space.shape)
        self.dim = int(np.prod(action_space.shape))
        self.std = None if std is None else float(std)
        self.clip = None if clip is None else float(clip)
        self.eps = float(eps)
        self.register_buffer("low", low)
        self.register_buffer("high", high)
        self.low: Tensor
        self.high: Tensor

    @property
    def num_params(self) -> int:
        return self.dim

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def forward(
        self,
        params: Tensor,
        std: float | Tensor | None = None,
        clip: float | None = None,
    ) -> TruncatedNormalDist:
        """``std`` (a float or a tensor broadcastable to ``params``) and ``clip`` override the
        constructor's values for this call."""
        if std is None:
            std = self.std
        if std is None:
            raise ValueError(
                "TruncatedNormal needs an explicit std: call family(params, std=...) "
                "(e.g. std=schedule(step)) or construct it with std=..."
            )
        if isinstance(std, Tensor):
            std_t = std.to(device=params.device, dtype=params.dtype)
        else:
            _check_positive("std", std)
            std_t = torch.full((), float(std), device=params.device, dtype=params.dtype)
        if clip is None:
            clip = self.clip
        elif not isinstance(clip, Tensor):
            _check_positive("clip", clip)
        std_t = std_t.expand_as(params)
        return TruncatedNormalDist(params, std_t, self.low, self.high, clip, self.eps)

    def __call__(
        self,
        params: Tensor,
        std: float | Tensor | None = None,
        clip: float | None = None,
    ) -> TruncatedNormalDist:
        return self.forward(params, std, clip)

    def postprocess(self, actions: Tensor) -> Tensor:
        actions = torch.maximum(torch.minimum(actions, self.high), self.low)
        return actions.reshape(actions.shape[0], *self.space_shape)


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
