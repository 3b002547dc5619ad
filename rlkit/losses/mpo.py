"""MPO's loss terms (Abdolmaleki et al. 2018, "Maximum a Posteriori Policy Optimisation"), split
as DeepMind Acme's decoupled MPO loss (``acme/tf/losses/mpo.py``) splits them.

E-step: the non-parametric policy ``q(a|s) ~ pi_target(a|s) exp(Q(s, a) / eta)`` is represented
by ``N`` actions drawn from the target policy with the weights ``softmax_j(Q_j / eta)``
(:func:`nonparametric_weights`); the temperature ``eta`` descends the dual of
``KL(q || pi_target) <= epsilon`` (:class:`TemperatureDual`).

M-step: weighted maximum likelihood of those actions (:class:`WeightedLogLikelihood`), decoupled
into a Gaussian with the online mean and the target std and one with the target mean and the
online std (:func:`~rlkit.losses.gaussian.decoupled_gaussians`; their KLs to the target policy,
:func:`~rlkit.losses.gaussian.gaussian_kl`, are V-MPO's decoupled KLs too). Each stays within a
KL trust region of the target policy through a Lagrange multiplier ``alpha``: the policy pays
``sg(alpha) KL`` (:class:`KLConstraintPenalty`), the multiplier descends
``alpha (epsilon - sg(KL))`` (:class:`KLConstraintDual`).

The dual variables live in one module, :class:`MPODuals` (checkpointed with the agent and
trained by its own optimizer), and reach the dual terms as inputs (``log_temperature``,
``log_alpha_*``), as SAC's ``log_alpha`` reaches :class:`~rlkit.losses.TemperatureLoss`: each
multiplier is read by two losses (the policy's, held fixed, and its own), an off-policy agent
builds its optimizers before its terms, and as inputs they get closed-form derivatives. They are
kept in softplus space, ``value = softplus(log_value) + 1e-8``, and projected to
``log_value >= -18`` after each step (Acme's ``clip_mpo_params``).

The terms are registered in :data:`~rlkit.losses.LOSS_TERMS` as ``mpo_temperature_dual``,
``weighted_log_likelihood``, ``kl_constraint_penalty`` and ``kl_constraint_dual``;
``tests/test_losses.py`` checks their closed forms against autograd with every registered term's,
and ``tests/test_mpo.py`` against hand-computed values.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlkit.losses.base import LOSS_TERMS, Inputs, LossTerm

#: lower bound of every log dual variable after a step (Acme's ``_MIN_LOG_TEMPERATURE`` and
#: ``_MIN_LOG_ALPHA``).
MIN_LOG_DUAL = -18.0
#: added to ``softplus(log_value)`` so a dual variable never reaches 0 (Acme's
#: ``_MPO_FLOAT_EPSILON``).
DUAL_EPSILON = 1e-8


def positive_dual(log_value: Tensor) -> Tensor:
    """A dual variable from its parameter: ``softplus(log_value) + 1e-8`` (softplus rather than
    ``exp`` for stability, as Acme)."""
    return F.softplus(log_value) + DUAL_EPSILON


class MPODuals(nn.Module):
    """MPO's dual variables: the E-step temperature ``eta`` (one) and the M-step multipliers
    ``alpha_mean`` and ``alpha_stddev`` (one per action dimension with ``per_dim=True``, Acme's
    default, else one each). Initial values are given in softplus space (Acme's
    ``init_log_*``: ``softplus(10) = 10.00005``)."""

    def __init__(
        self,
        action_dim: int,
        per_dim: bool = True,
        init_log_temperature: float = 10.0,
        init_log_alpha_mean: float = 10.0,
        init_log_alpha_stddev: float = 1000.0,
    ) -> None:
        super().__init__()
        size = int(action_dim) if per_dim else 1
        self.log_temperature = nn.Parameter(torch.full((1,), float(init_log_temperature)))
        self.log_alpha_mean = nn.Parameter(torch.full((size,), float(init_log_alpha_mean)))
        self.log_alpha_stddev = nn.Parameter(torch.full((size,), float(init_log_alpha_stddev)))

    def temperature(self) -> Tensor:
        """``eta`` ``[1]``, without gradient (what the E-step weights use)."""
        return positive_dual(self.log_temperature.detach())

    def alpha_mean(self) -> Tensor:
        """The mean constraint's multipliers ``[D]`` or ``[1]``, without gradient."""
        return positive_dual(self.log_alpha_mean.detach())

    def alpha_stddev(self) -> Tensor:
        """The std constraint's multipliers ``[D]`` or ``[1]``, without gradient."""
        return positive_dual(self.log_alpha_stddev.detach())

    @torch.no_grad()
    def clamp_(self) -> None:
        """Project every log dual variable to ``>= MIN_LOG_DUAL`` (after each dual step)."""
        for param in self.parameters():
            param.clamp_(min=MIN_LOG_DUAL)


def nonparametric_weights(q: Tensor, temperature: Tensor | float) -> Tensor:
    """The E-step's weights ``softmax_j(Q_j / eta)`` over the ``N`` sampled actions of each
    state (``q`` ``[N, B]``), without gradient."""
    with torch.no_grad():
        return torch.softmax(q / temperature, dim=0)


def nonparametric_kl(weights: Tensor) -> Tensor:
    """``KL(q || pi_target)`` per state ``[B]`` as estimated from the weights ``[N, B]``:
    ``sum_j w_j log(N w_j)`` (Acme's diagnostic ``kl_q_rel`` is its mean over epsilon)."""
    return (weights * torch.log(weights.shape[0] * weights + 1e-8)).sum(0)


@LOSS_TERMS.register("mpo_temperature_dual")
class TemperatureDual(LossTerm):
    """The E-step's temperature loss (the dual of ``max_q E_q[Q]`` s.t.
    ``KL(q || pi_target) <= epsilon``), from the target critic's values ``q`` ``[N, B]`` of
    ``N`` target-policy actions per state and the input ``log_temperature``:
    ``eta epsilon + eta mean_b(logsumexp_j(Q_bj / eta) - log N)``, ``eta =
    softplus(log_temperature) + 1e-8``. It grows ``eta`` while the weights are more peaked
    than ``epsilon`` allows and shrinks it otherwise.

    Derivative: ``sigmoid(log_temperature) (epsilon + mean_b(lse_b) - log N - mean_b(sum_j
    w_bj Q_bj) / eta)`` with ``w = softmax_j(Q / eta)``."""

    default_name = "temperature"
    inputs = ("log_temperature", "q")
    differentiable = ("log_temperature",)

    def __init__(self, epsilon: float, coef: float = 1.0, name: str | None = None) -> None:
        super().__init__(coef, name)
        if not (math.isfinite(epsilon) and epsilon > 0):
            raise ValueError(f"TemperatureDual: epsilon must be a finite number > 0, got {epsilon}")
        self.epsilon = float(epsilon)

    def forward(self, x: Inputs) -> Tensor:
        eta = positive_dual(x["log_temperature"])
        q: Tensor = x["q"].detach()
        lse = torch.logsumexp(q / eta, dim=0).mean() - math.log(q.shape[0])
        return (eta * (self.epsilon + lse)).sum()

    def derivative(self, x: Inputs) -> dict[str, Tensor]:
        return self.value_and_derivative(x)[1]

    def value_and_derivative(self, x: Inputs) -> tuple[Tensor, dict[str, Tensor]]:
        log_temperature: Tensor = x["log_temperature"]
        eta = positive_dual(log_temperature)
        q: Tensor = x["q"]
        tempered = q / eta
        lse = torch.logsumexp(tempered, dim=0).mean() - math.log(q.shape[0])
        expected_q = (torch.softmax(tempered, dim=0) * q).sum(0).mean()
        value = (eta * (self.epsilon + lse)).sum()
        grad = torch.sigmoid(log_temperature) * (self.epsilon + lse - expected_q / eta)
        return value, {"log_temperature": grad.mul_(self.coef)}


@LOSS_TERMS.register("weighted_log_likelihood")
class WeightedLogLikelihood(LossTerm):
    """The M-step's weighted maximum likelihood ``-mean_b sum_j w_bj log pi(a_bj|s_b)`` of the
    E-step's actions: input ``log_prob<part>`` ``[N, B]`` (the policy's log-densities of the
    ``N`` actions per state) and the fixed ``weights`` ``[N, B]`` (:func:`nonparametric_weights`).
    ``part`` names the input, so the decoupled M-step's two halves are two terms
    (``"_mean"``: the fixed-std Gaussian, which trains the mean; ``"_stddev"``: the fixed-mean
    one). Derivative: ``-w / B``."""

    default_name = "policy"

    def __init__(self, part: str = "", coef: float = 1.0, name: str | None = None) -> None:
        super().__init__(coef, name if name is not None else f"{self.default_name}{part}")
        self.key = f"log_prob{part}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.key, "weights")

    @property
    def differentiable(self) -> tuple[str, ...]:
        return (self.key,)

    def forward(self, x: Inputs) -> Tensor:
        return -(x["weights"].detach() * x[self.key]).sum(0).mean()

    def derivative(self, x: Inputs) -> dict[str, Tensor]:
        weights: Tensor = x["weights"]
        return {self.key: weights * (-self.coef / weights.shape[-1])}


@LOSS_TERMS.register("kl_constraint_penalty")
class KLConstraintPenalty(LossTerm):
    """The policy's side of a KL trust region held by a Lagrange multiplier:
    ``sum_k alpha_k mean_b KL_bk`` with ``KL`` the input ``kl<part>`` ``[B, K]`` (``K``: one
    per action dimension, or 1) and the multiplier ``alpha<part>`` ``[K]`` a constant here
    (its own loss is :class:`KLConstraintDual`). Derivative: ``alpha / B``."""

    default_name = "kl"

    def __init__(self, part: str = "", coef: float = 1.0, name: str | None = None) -> None:
        super().__init__(coef, name if name is not None else f"{self.default_name}{part}")
        self.key, self.alpha = f"kl{part}", f"alpha{part}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.key, self.alpha)

    @property
    def differentiable(self) -> tuple[str, ...]:
        return (self.key,)

    def forward(self, x: Inputs) -> Tensor:
        return (x[self.alpha].detach() * x[self.key].mean(0)).sum()

    def derivative(self, x: Inputs) -> dict[str, Tensor]:
        kl: Tensor = x[self.key]
        alpha = x[self.alpha].to(kl.dtype) * (self.coef / kl.shape[0])
        return {self.key: alpha.expand_as(kl).clone()}


@LOSS_TERMS.register("kl_constraint_dual")
class KLConstraintDual(LossTerm):
    """The multiplier's side of a KL trust region ``mean_b KL_bk <= epsilon``:
    ``sum_k alpha_k (epsilon - mean_b KL_bk)`` with ``alpha = softplus(log_alpha<part>) + 1e-8``
    (input ``[K]``) and ``kl<part>`` ``[B, K]`` a constant here. It grows ``alpha`` while the
    KL exceeds ``epsilon`` and shrinks it otherwise. Derivative:
    ``sigmoid(log_alpha) (epsilon - mean_b KL)``."""

    default_name = "alpha"

    def __init__(
        self, epsilon: float, part: str = "", coef: float = 1.0, name: str | None = None
    ) -> None:
        super().__init__(coef, name if name is not None else f"{self.default_name}{part}")
        if not (math.isfinite(epsilon) and epsilon > 0):
            raise ValueError(
                f"KLConstraintDual: epsilon must be a finite number > 0, got {epsilon}"
            )
        self.epsilon = float(epsilon)
        self.key, self.log_alpha = f"kl{part}", f"log_alpha{part}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.log_alpha, self.key)

    @property
    def differentiable(self) -> tuple[str, ...]:
        return (self.log_alpha,)

    def forward(self, x: Inputs) -> Tensor:
        slack = self.epsilon - x[self.key].detach().mean(0)
        return (positive_dual(x[self.log_alpha]) * slack).sum()

    def derivative(self, x: Inputs) -> dict[str, Tensor]:
        log_alpha: Tensor = x[self.log_alpha]
        slack = self.epsilon - x[self.key].mean(0)
        return {self.log_alpha: (torch.sigmoid(log_alpha) * slack).mul_(self.coef)}


__all__ = [
    "DUAL_EPSILON",
    "MIN_LOG_DUAL",
    "KLConstraintDual",
    "KLConstraintPenalty",
    "MPODuals",
    "TemperatureDual",
    "WeightedLogLikelihood",
    "nonparametric_kl",
    "nonparametric_weights",
    "positive_dual",
]
