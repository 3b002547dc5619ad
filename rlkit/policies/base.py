"""Policy contract: the acting path shared by rollouts, evaluation and export."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import PAIR, Rule, Sizes, count, positive
from rlkit.configurable import Configurable
from rlkit.distributions.base import ActionDistribution, Distribution
from rlkit.policies.state import StateSpec, StateTuple, as_tuple, check_state
from rlkit.registry import Registry
from rlkit.types import Obs, PolicyState
from rlkit.utils.nn import ACTIVATION


class Policy(Configurable, nn.Module, ABC):
    """Base of every policy.

    ``act`` maps observations to env-ready actions. Recurrent policies (:attr:`recurrent`)
    thread a state through ``act``: pass the previous state and ``episode_start`` (1 where a new
    episode begins, so the state is reset there); feed-forward policies ignore both and return
    ``None`` as the state.

    The state contract (:mod:`rlkit.policies.state`): a recurrent policy declares its state in
    :meth:`state_spec` (a tuple of batch-first tensors); ``state=None`` means the initial state.
    Given ``B`` state rows and ``T * B`` observation rows, the observations are a time-major
    sequence ``[T, B]`` flattened (row ``t * B + b``) and ``episode_start`` has one entry per
    observation row: the state is reset to the initial state *before* a step whose entry is 1.
    Acting is the ``T = 1`` case; training on stored sequence chunks is the general one.
    """

    kind = "policy"
    #: whether the policy applies an observation's ``"action_mask"`` to its action
    #: distribution (:meth:`~rlkit.distributions.Distribution.masked`); agents refuse masked
    #: observations for a policy that would ignore them.
    applies_action_mask: ClassVar[bool] = False
    #: arguments shared by the policies (each applies where the class takes it).
    argument_rules: ClassVar[dict[str, Rule]] = {
        "hidden_sizes": Sizes(none=True),
        "critic_hidden_sizes": Sizes(none=True),
        "num_critics": count(integer=True),
        "feature_dim": count(integer=True),
        "std": positive(),
        "log_std_bounds": PAIR,
        "activation": ACTIVATION,
    }

    def __init__(
        self, observation_space: spaces.Space[Any], action_space: spaces.Space[Any]
    ) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space

    @property
    def recurrent(self) -> bool:
        """Whether the policy carries state between steps: it declares one in
        :meth:`state_spec` (LSTM/GRU/Transformer policies)."""
        return bool(self.state_spec())

    def state_spec(self) -> tuple[StateSpec, ...]:
        """The recurrent state's tensors (per-row shape, dtype, name); empty when
        feed-forward. Storages, evaluation, checkpoints and export read it."""
        return ()

    def initial_state(self, batch_size: int) -> PolicyState:
        """State for ``batch_size`` fresh episodes (``None`` when feed-forward): zeros laid
        out by :meth:`state_spec` on the policy's device."""
        specs = self.state_spec()
        if not specs:
            return None
        param = next(self.parameters(), None)
        device = param.device if param is not None else "cpu"
        return tuple(spec.zeros(batch_size, device) for spec in specs)

    def state_tuple(self, state: PolicyState, batch_size: int) -> StateTuple:
        """``state`` as a tuple checked against :meth:`state_spec` for ``batch_size`` rows
        (a clear error names a wrong shape or dtype); ``None`` is the initial state."""
        if state is None:
            return as_tuple(self.initial_state(batch_size))
        out = as_tuple(state)
        check_state(out, self.state_spec(), batch_size, type(self).__name__)
        return out

    @abstractmethod
    def act(
        self,
        obs: Obs,
        deterministic: bool = False,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, PolicyState]:
        """Env-ready actions ``[B, *action_shape]`` and the next recurrent state."""


@dataclass
class ActorCriticOutput:
    """One forward pass of an actor-critic: action distribution, state value, next state."""

    dist: ActionDistribution
    value: Tensor
    state: PolicyState = None


class ActorCriticPolicy(Policy, ABC):
    """On-policy actor-critic base: a distribution over actions and a state-value estimate."""

    distribution: Distribution

    @abstractmethod
    def forward(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> ActorCriticOutput:
        """Distribution, value ``[B]`` and next state for a batch of observations."""

    def value(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> Tensor:
        """State values ``[B]`` (subclasses may skip the actor)."""
        return self.forward(obs, state, episode_start).value

    def evaluate_actions(
        self,
        obs: Obs,
        actions: Tensor,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, ActionDistribution]:
        """``(log_prob [B], entropy [B], value [B], dist)`` of stored raw ``actions``.

        Families without a closed-form entropy (tanh-squashed Gaussians) get the one-sample
        estimate ``-log_prob(actions)``, as Stable-Baselines3 does for them.
        """
        out = self.forward(obs, state, episode_start)
        log_prob, entropy = log_prob_and_entropy(out.dist, actions)
        return log_prob, entropy, out.value, out.dist

    def action_distribution(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> tuple[ActionDistribution, PolicyState]:
        """The action distribution and next state only (subclasses may skip the critic)."""
        out = self.forward(obs, state, episode_start)
        return out.dist, out.state

    def act(
        self,
        obs: Obs,
        deterministic: bool = False,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, PolicyState]:
        dist, next_state = self.action_distribution(obs, state, episode_start)
        raw = dist.mode() if deterministic else dist.sample()
        return self.distribution.postprocess(raw), next_state

    def __call__(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> ActorCriticOutput:
        out: ActorCriticOutput = super().__call__(obs, state, episode_start)
        return out


def log_prob_and_entropy(dist: ActionDistribution, actions: Tensor) -> tuple[Tensor, Tensor]:
    """``(log_prob, entropy)`` of ``actions``; the one-sample estimate ``-log_prob`` where the
    family has no closed-form entropy."""
    log_prob = dist.log_prob(actions)
    try:
        entropy = dist.entropy()
    except TypeError:
        entropy = -log_prob
    return log_prob, entropy


POLICIES: Registry[Policy] = Registry("policy", Policy)
