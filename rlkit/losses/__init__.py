"""Loss terms, the seventh primitive kind: each piece of an algorithm's loss exists once here and
every agent composes its loss from them (see :mod:`rlkit.losses.base`)."""

from rlkit.losses.base import (
    LOSS_TERMS,
    Inputs,
    Loss,
    LossPlan,
    LossTerm,
    Pullback,
    array_namespace,
    compute_loss,
)
from rlkit.losses.distributional import (
    CategoricalLoss,
    QuantileHuberLoss,
    categorical_projection,
    quantile_midpoints,
    truncated_quantiles,
)
from rlkit.losses.divergence import PolicyKL
from rlkit.losses.gaussian import GaussianParameters, decoupled_gaussians, gaussian_kl
from rlkit.losses.mpo import (
    KLConstraintDual,
    KLConstraintPenalty,
    MPODuals,
    TemperatureDual,
    WeightedLogLikelihood,
    nonparametric_kl,
    nonparametric_weights,
)
from rlkit.losses.policy_gradient import ClippedSurrogate, EntropyBonus, KLPenalty, PolicyGradient
from rlkit.losses.q_learning import (
    DeterministicActorLoss,
    DiscreteSACActorLoss,
    SACActorLoss,
    TDLoss,
)
from rlkit.losses.reference import ReferenceKL
from rlkit.losses.targets import (
    clipped_double_q,
    expected_soft_value,
    greedy_value,
    inverse_value_rescale,
    munchausen_bonus,
    random_members,
    scaled_log_policy,
    sequence_nstep_targets,
    sequence_priorities,
    soft_expectation,
    soft_value,
    td_target,
    value_rescale,
)
from rlkit.losses.temperature import EntropyCoefficient, TemperatureLoss
from rlkit.losses.trust_region import Surrogate
from rlkit.losses.value import ValueLoss
from rlkit.losses.vmpo import (
    GaussianCovarianceKLConstraint,
    GaussianMeanKLConstraint,
    KLConstraint,
    LagrangeMultiplier,
    TopKTemperatureDual,
    TopKWeightedLikelihood,
    top_k_mask,
)

__all__ = [
    "LOSS_TERMS",
    "CategoricalLoss",
    "ClippedSurrogate",
    "DeterministicActorLoss",
    "DiscreteSACActorLoss",
    "EntropyBonus",
    "EntropyCoefficient",
    "GaussianCovarianceKLConstraint",
    "GaussianMeanKLConstraint",
    "GaussianParameters",
    "Inputs",
    "KLConstraint",
    "KLConstraintDual",
    "KLConstraintPenalty",
    "KLPenalty",
    "LagrangeMultiplier",
    "Loss",
    "LossPlan",
    "LossTerm",
    "MPODuals",
    "PolicyGradient",
    "PolicyKL",
    "Pullback",
    "QuantileHuberLoss",
    "ReferenceKL",
    "SACActorLoss",
    "Surrogate",
    "TDLoss",
    "TemperatureDual",
    "TemperatureLoss",
    "TopKTemperatureDual",
    "TopKWeightedLikelihood",
    "ValueLoss",
    "WeightedLogLikelihood",
    "array_namespace",
    "categorical_projection",
    "clipped_double_q",
    "compute_loss",
    "decoupled_gaussians",
    "expected_soft_value",
    "gaussian_kl",
    "greedy_value",
    "inverse_value_rescale",
    "munchausen_bonus",
    "nonparametric_kl",
    "nonparametric_weights",
    "quantile_midpoints",
    "random_members",
    "scaled_log_policy",
    "sequence_nstep_targets",
    "sequence_priorities",
    "soft_expectation",
    "soft_value",
    "td_target",
    "top_k_mask",
    "truncated_quantiles",
    "value_rescale",
]
