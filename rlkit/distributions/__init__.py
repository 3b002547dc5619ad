"""Action distributions: families that turn policy-head outputs into distributions."""

from rlkit.distributions.base import DISTRIBUTIONS, ActionDistribution, Distribution
from rlkit.distributions.categorical import (
    Bernoulli,
    BernoulliDist,
    Categorical,
    CategoricalDist,
    MultiCategorical,
    MultiCategoricalDist,
)
from rlkit.distributions.default import default_distribution
from rlkit.distributions.gaussian import DiagGaussian, DiagGaussianDist
from rlkit.distributions.noise import (
    NormalNoise,
    NormalNoiseDist,
    OrnsteinUhlenbeckNoise,
    OUNoiseDist,
)
from rlkit.distributions.squashed import (
    SquashedNormal,
    SquashedNormalDist,
    TruncatedNormal,
    TruncatedNormalDist,
)
from rlkit.distributions.state_dependent import (
    GSDEGaussianDist,
    StateDependentGaussian,
    StateDependentNoise,
    state_dependent_noise,
)

__all__ = [
    "DISTRIBUTIONS",
    "ActionDistribution",
    "Bernoulli",
    "BernoulliDist",
    "Categorical",
    "CategoricalDist",
    "DiagGaussian",
    "DiagGaussianDist",
    "Distribution",
    "GSDEGaussianDist",
    "MultiCategorical",
    "MultiCategoricalDist",
    "NormalNoise",
    "NormalNoiseDist",
    "OUNoiseDist",
    "OrnsteinUhlenbeckNoise",
    "SquashedNormal",
    "SquashedNormalDist",
    "StateDependentGaussian",
    "StateDependentNoise",
    "TruncatedNormal",
    "TruncatedNormalDist",
    "default_distribution",
    "state_dependent_noise",
]
