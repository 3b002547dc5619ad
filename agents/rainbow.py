"""Rainbow (Hessel et al. 2018, "Rainbow: Combining Improvements in Deep Reinforcement
Learning"): DQN with its six improvements as parts that already exist on their own here:
a categorical (C51) or implicit-quantile (IQN, Rainbow-IQN) return head, a dueling head,
NoisyNet layers instead of epsilon-greedy, n-step returns, prioritized replay and double
Q-learning. Both agents are their base agent with other defaults; nothing is re-implemented."""

from __future__ import annotations

import dataclasses

from rlkit.prototypes import AGENTS

from .c51 import C51, C51Config
from .iqn import IQN, IQNConfig


@dataclasses.dataclass
class RainbowDefaults:
    """The Rainbow settings (CleanRL's ``rainbow_atari.py``, the paper's Atari values) shared
    by :class:`RainbowConfig` and :class:`RainbowIQNConfig`. Departures, kept from rlkit's
    off-policy defaults because they size the run rather than the algorithm: ``buffer_size``
    (100k; the paper 1M), ``learning_starts`` (100; the paper 80k frames) and
    ``per_beta_steps`` (None keeps beta at 0.4; the paper anneals it to 1 over training: set
    it to the run length)."""

    #: dueling head in the default Q-network.
    dueling: bool = True
    #: initial noise scale of the NoisyNet layers (the paper's 0.5); 0: plain layers.
    noisy: float = 0.5
    #: double Q-learning: the online net picks the next action.
    double_q: bool = True
    #: n-step returns (the paper's 3).
    n_step: int = 3
    #: proportional prioritized replay.
    prioritized_replay: bool = True
    #: priority exponent of prioritized replay (the paper's 0.5).
    per_alpha: float = 0.5
    #: epsilon at the start of training (0: NoisyNet does the exploring).
    exploration_initial_eps: float = 0.0
    #: epsilon at the end of the schedule (0: NoisyNet does the exploring).
    exploration_final_eps: float = 0.0
    #: learning rate of the Adam optimizer (the paper's 6.25e-5).
    lr: float = 6.25e-5
    #: Adam's epsilon (the paper's 1.5e-4).
    adam_eps: float = 1.5e-4
    #: gradient steps between target-network copies.
    target_update_interval: int = 2_000
    #: global gradient-norm clip; None disables.
    max_grad_norm: float | None = None


@dataclasses.dataclass
class RainbowConfig(RainbowDefaults, C51Config):
    """C51's hyperparameters with Rainbow's defaults (:class:`RainbowDefaults`)."""


@dataclasses.dataclass
class RainbowIQNConfig(RainbowDefaults, IQNConfig):
    """IQN's hyperparameters with Rainbow's defaults (:class:`RainbowDefaults`)."""


@AGENTS.register("rainbow")
class Rainbow(C51):
    """Rainbow: :class:`~rlkit.agents.C51` with dueling and noisy heads, 3-step returns,
    prioritized replay (priorities: the per-sample cross-entropy) and double Q-learning;
    exploration by the noisy layers alone (epsilon 0), new noise before every update."""

    Config = RainbowConfig
    config: RainbowConfig


@AGENTS.register("rainbow_iqn")
class RainbowIQN(IQN):
    """Rainbow-IQN (Toromanoff et al. 2019): :class:`~rlkit.agents.IQN` with Rainbow's parts
    (priorities: ``|mean quantile - mean target|``)."""

    Config = RainbowIQNConfig
    config: RainbowIQNConfig
