"""V-MPO's terms (Song et al. 2019, "V-MPO: On-Policy Maximum a Posteriori Policy Optimization
for Discrete and Continuous Control", its policy improvement): the E-step's temperature dual,
the M-step's weighted maximum likelihood on the top advantages, and the KL constraint with a
learned Lagrange multiplier (decoupled into mean and covariance parts for Gaussian policies).

The maths follows DeepMind's reference implementation, rlax's ``vmpo_loss``
(github.com/google-deepmind/rlax, ``rlax/_src/mpo_ops.py``): the top-k selection keeps every
sample whose advantage is at least the k-th largest (``k = int(fraction * B)``), the weights are a
softmax of ``A / eta`` over the selected samples (no gradient), the temperature loss is
``eta eps_eta + eta log(mean_selected exp(A / eta))``, and each KL constraint is
``alpha (eps - sg(KL)) + sg(alpha) KL`` on the batch-mean KL. The dual variables live in
:class:`LagrangeMultiplier` modules owned by their terms (so they are checkpointed with the
agent) and are kept positive as the paper does: after each optimizer step they are projected to
``>= 1e-8`` (:meth:`LagrangeMultiplier.project`); rlax clips them inside the loss instead.

The duals are trained by autograd (they are the terms' parameters, not inputs); the weighted
likelihood has a closed-form derivative with respect to ``log_prob``. The Gaussian constraints'
mean and covariance parts are MPO's decoupled KLs (:mod:`rlkit.losses.gaussian`). The terms are
registered in :data:`~rlkit.losses.LOSS_TERMS` as ``top_k_weighted_likelihood``,
``top_k_temperature_dual``, ``kl_constraint``, ``gaussian_mean_kl_constraint`` and
``gaussian_covariance_kl_constraint``; ``tests/test_losses.py`` checks the closed form against
autograd and the multipliers' gradients on every assembly, ``tests/test_vmpo.py`` checks them by
hand.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import Tensor, nn

from rlkit.distributions.gaussian import DiagGaussianDist
from rlkit.losses.base import LOSS_TERMS, Inputs, LossTerm
from rlkit.losses.divergence import PolicyKL
from rlkit.losses.gaussian import GaussianParameters, decoupled_gaussians, gaussian_kl

#: the paper's floor for the dual variables (eta_min = alpha_min = 1e-8).
MULTIPLIER_MIN = 1e-8


def _check_fraction(owner: str, fraction: float) -> float:
    value = float(fraction)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{owner}: top_k_fraction must be in (0, 1], got {fraction!r}")
    return value


def _check_positive(owner: str, name: str, value: float) -> float:
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return number


def top_k_mask(advantage: Tensor, fraction: float) -> Tensor:
    """Which samples V-MPO keeps: those whose advantage is at least the ``k``-th largest of the
    batch, ``k = max(1, int(fraction * B))`` (ties at the threshold are all kept, as rlax's)."""
    flat = advantage.detach().reshape(-1)
    k = max(1, int(fraction * flat.numel()))
    threshold = torch.topk(flat, k).values[-1]
    return advantage.detach() >= threshold


def _scaled_top_k(advantage: Tensor, temperature: Tensor, fraction: float) -> tuple[Tensor, Tensor]:
    """``A / eta`` with the unselected samples at ``-inf``, and the number selected."""
    mask = top_k_mask(advantage, fraction)
    scaled = (advantage.detach() / temperature).masked_fill(~mask, -math.inf)
    return scaled, mask.sum()


class LagrangeMultiplier(nn.Module):
    """A dual variable (V-MPO's ``eta``, ``alpha``): a scalar parameter, kept ``>= minimum`` by
    :meth:`project` after each optimizer step (the paper's projection)."""

    def __init__(self, initial: float, minimum: float = MULTIPLIER_MIN) -> None:
        super().__init__()
        self.minimum = _check_positive("LagrangeMultiplier", "minimum", minimum)
        start = _check_positive("LagrangeMultiplier", "initial", initial)
        self.value = nn.Parameter(torch.tensor(max(start, self.minimum)))

    def forward(self) -> Tensor:
        """The multiplier, with its gradient."""
        return self.value

    def project(self) -> None:
        """Clamp to ``>= minimum`` in place (after an optimizer step)."""
        with torch.no_grad():
            self.value.clamp_(min=self.minimum)

    def extra_repr(self) -> str:
        return f"value={self.value.item():.4g}, minimum={self.minimum:g}"


@LOSS_TERMS.register("top_k_weighted_likelihood")
class TopKWeightedLikelihood(LossTerm):
    """V-MPO's M-step policy loss: ``-sum_{top k} psi log pi(a|s)`` with
    ``psi = softmax(A / eta)`` over the samples whose advantage is in the batch's top
    ``top_k_fraction`` (:func:`top_k_mask`); ``psi`` carries no gradient. ``temperature`` is
    ``eta`` (owned by :class:`TopKTemperatureDual`, passed without gradient). Derivative with
    respect to ``log_prob``: ``-coef psi``."""

    default_name = "policy"
    inputs = ("log_prob", "advantage", "temperature")
    differentiable = ("log_prob",)

    def __init__(self, top_k_fraction: float = 0.5, coef: float = 1.0, name: str | None = None):
        super().__init__(coef, name)
        self.top_k_fraction = _check_fraction("TopKWeightedLikelihood", top_k_fraction)

    def weights(self, x: Inputs) -> Tensor:
        """``psi`` per sample (0 outside the top ``k``), summing to 1."""
        temperature = torch.as_tensor(x["temperature"]).detach()
        scaled, _ = _scaled_top_k(x["advantage"], temperature, self.top_k_fraction)
        return torch.softmax(scaled.reshape(-1), 0).reshape(scaled.shape)

    def forward(self, x: Inputs) -> Tensor:
        return -(self.weights(x) * x["log_prob"]).sum()

    def value_and_derivative(self, x: Inputs) -> tuple[Tensor, dict[str, Tensor]]:
        psi = self.weights(x)
        return -(psi * x["log_prob"]).sum(), {"log_prob": psi * -self.coef}

    def derivative(self, x: Inputs) -> dict[str, Any]:
        return self.value_and_derivative(x)[1]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, top_k_fraction={self.top_k_fraction:g}"


@LOSS_TERMS.register("top_k_temperature_dual")
class TopKTemperatureDual(LossTerm):
    """V-MPO's temperature loss, the dual of the E-step's KL bound ``epsilon``:
    ``eta epsilon + eta log(mean_{top k} exp(A / eta))``, differentiated in ``eta`` only (its
    own :class:`LagrangeMultiplier`, initially ``initial``).

    Its gradient is ``epsilon - KL(psi || uniform over the top k)``: ``eta`` grows while the
    weights of :class:`TopKWeightedLikelihood` are more peaked than ``epsilon`` allows and
    shrinks otherwise. Diagnostics: ``eta`` and ``weights_kl`` (that KL).
    """

    default_name = "temperature"
    inputs = ("advantage",)
    differentiable = ()

    def __init__(
        self,
        epsilon: float,
        initial: float = 1.0,
        top_k_fraction: float = 0.5,
        coef: float = 1.0,
        name: str | None = None,
        minimum: float = MULTIPLIER_MIN,
    ) -> None:
        super().__init__(coef, name)
        self.epsilon = _check_positive("TopKTemperatureDual", "epsilon", epsilon)
        self.top_k_fraction = _check_fraction("TopKTemperatureDual", top_k_fraction)
        self.eta = LagrangeMultiplier(initial, minimum)

    def forward(self, x: Inputs) -> Tensor:
        eta = self.eta()
        scaled, count = _scaled_top_k(x["advantage"], eta, self.top_k_fraction)
        log_mean = torch.logsumexp(scaled.reshape(-1), 0) - count.to(scaled.dtype).log()
        return eta * self.epsilon + eta * log_mean

    def diagnostics(self, x: Inputs) -> dict[str, Tensor]:
        eta = self.eta().detach()
        scaled, count = _scaled_top_k(x["advantage"], eta, self.top_k_fraction)
        flat = scaled.reshape(-1)
        log_psi = torch.log_softmax(flat, 0)
        terms = log_psi.exp() * (log_psi + count.to(flat.dtype).log())
        kl = torch.where(torch.isfinite(flat), terms, 0.0).sum()  # (0 log 0 = 0 outside)
        return {"eta": eta, "weights_kl": kl}

    def extra_repr(self) -> str:
        base = super().extra_repr()
        return f"{base}, epsilon={self.epsilon:g}, top_k_fraction={self.top_k_fraction:g}"


@LOSS_TERMS.register("kl_constraint")
class KLConstraint(PolicyKL):
    """V-MPO's M-step KL constraint on :class:`~rlkit.losses.PolicyKL`'s ``mean KL(pi_old ||
    pi)``: ``alpha (epsilon - sg(KL)) + sg(alpha) KL``, where ``alpha`` is this term's
    :class:`LagrangeMultiplier` (initially ``initial``). The first part trains ``alpha`` (it
    grows while ``KL > epsilon``), the second pulls the policy back with weight ``alpha``.
    Subclasses constrain another divergence by overriding :meth:`divergence`. Diagnostics:
    ``<name>`` (the divergence) and ``<name>_alpha``."""

    default_name = "kl"

    def __init__(
        self,
        epsilon: float,
        initial: float = 1.0,
        coef: float = 1.0,
        name: str | None = None,
        minimum: float = MULTIPLIER_MIN,
    ) -> None:
        super().__init__(coef, name)
        self.epsilon = _check_positive(type(self).__name__, "epsilon", epsilon)
        self.alpha = LagrangeMultiplier(initial, minimum)

    def divergence(self, x: Inputs) -> Tensor:
        """The constrained divergence, a batch mean (here PolicyKL's)."""
        return super().forward(x)

    def forward(self, x: Inputs) -> Tensor:
        kl = self.divergence(x)
        alpha = self.alpha()
        return alpha * (self.epsilon - kl.detach()) + alpha.detach() * kl

    def diagnostics(self, x: Inputs) -> dict[str, Tensor]:
        return {self.name: self.divergence(x), f"{self.name}_alpha": self.alpha().detach()}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, epsilon={self.epsilon:g}"


def _decoupled(
    owner: str, x: Inputs
) -> tuple[DiagGaussianDist, DiagGaussianDist, DiagGaussianDist]:
    """``pi_old`` (detached) and the decoupled Gaussians ``(fixed_std, fixed_mean)`` of ``dist``
    against it (:func:`~rlkit.losses.gaussian.decoupled_gaussians`), from ``old_dist`` and
    ``dist`` checked for ``mean`` and ``log_std`` tensors (attribute checks rather than a runtime
    protocol check, which torch.compile's tracing gets wrong)."""
    pair = (x["old_dist"], x["dist"])
    for dist in pair:
        mean, log_std = getattr(dist, "mean", None), getattr(dist, "log_std", None)
        if not (isinstance(mean, Tensor) and isinstance(log_std, Tensor)):
            raise TypeError(
                f"{owner}: needs Gaussian action distributions (with mean and log_std), got "
                f"{type(dist).__name__}"
            )
    old, new = cast(GaussianParameters, pair[0]), cast(GaussianParameters, pair[1])
    fixed_std, fixed_mean = decoupled_gaussians(online=new, target=old)
    return DiagGaussianDist(old.mean.detach(), old.log_std.detach()), fixed_std, fixed_mean


@LOSS_TERMS.register("gaussian_mean_kl_constraint")
class GaussianMeanKLConstraint(KLConstraint):
    """:class:`KLConstraint` on the mean part of the decoupled Gaussian KL (V-MPO's ``C_mu``):
    ``KL(N(mu_old, S_old) || N(mu, S_old)) = 1/2 (mu - mu_old)^T S_old^-1 (mu - mu_old)``,
    averaged over the batch: :func:`~rlkit.losses.gaussian.gaussian_kl` to the fixed-std
    Gaussian of :func:`~rlkit.losses.gaussian.decoupled_gaussians`; only the mean moves it."""

    default_name = "kl_mean"

    def divergence(self, x: Inputs) -> Tensor:
        old, fixed_std, _ = _decoupled(type(self).__name__, x)
        return gaussian_kl(old, fixed_std, per_dim=False).mean()


@LOSS_TERMS.register("gaussian_covariance_kl_constraint")
class GaussianCovarianceKLConstraint(KLConstraint):
    """:class:`KLConstraint` on the covariance part of the decoupled Gaussian KL (V-MPO's
    ``C_Sigma``): ``KL(N(mu_old, S_old) || N(mu_old, S)) = 1/2 [tr(S^-1 S_old) - d +
    log(|S| / |S_old|)]``, averaged over the batch: :func:`~rlkit.losses.gaussian.gaussian_kl`
    (written with ``expm1``, so a KL near 1e-5, ``epsilon_alpha_sigma``, is resolved in float32)
    to the fixed-mean Gaussian of :func:`~rlkit.losses.gaussian.decoupled_gaussians`; only the
    standard deviation moves it."""

    default_name = "kl_cov"

    def divergence(self, x: Inputs) -> Tensor:
        old, _, fixed_mean = _decoupled(type(self).__name__, x)
        return gaussian_kl(old, fixed_mean, per_dim=False).mean()


__all__ = [
    "MULTIPLIER_MIN",
    "GaussianCovarianceKLConstraint",
    "GaussianMeanKLConstraint",
    "KLConstraint",
    "LagrangeMultiplier",
    "TopKTemperatureDual",
    "TopKWeightedLikelihood",
    "top_k_mask",
]
