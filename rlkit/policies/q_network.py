"""Q-value policies for discrete actions (DQN and its variants): greedy acting on ``Q(s, .)``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Rule, non_negative
from rlkit.configurable import build_primitive
from rlkit.distributions.base import action_mask_of
from rlkit.distributions.categorical import Categorical
from rlkit.encoders.base import Encoder
from rlkit.encoders.default import default_encoder
from rlkit.encoders.mlp import mlp
from rlkit.policies.actor_critic import check_encoder
from rlkit.policies.base import POLICIES, Policy
from rlkit.policies.ensemble import mlp_head
from rlkit.spaces import check_space, is_image_space
from rlkit.types import Obs, PolicyState
from rlkit.utils.noisy import make_noisy


class QPolicy(Policy, ABC):
    """Base of value-based policies over a ``Discrete(n, start)`` action space.

    :meth:`q_values` gives ``Q(s, a)`` for every action, ``[B, n]``. :meth:`act` is greedy
    whether or not ``deterministic`` is set: exploration (epsilon-greedy, with its explicit
    schedule) belongs to the agent that collects experience, so the policy, its evaluation and
    its export are the same function.

    Action masks: for a dict observation with ``"action_mask"`` (``[B, n]``, 1 = legal),
    :meth:`act` takes the argmax over the legal actions and :meth:`value` the max over them
    (:meth:`legal_q_values`); :meth:`q_values` itself stays unmasked. A subclass that
    overrides :meth:`act` is taken not to apply masks (``applies_action_mask`` False) unless
    it sets ``applies_action_mask`` in its own body.
    """

    applies_action_mask = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "act" in cls.__dict__ and "applies_action_mask" not in cls.__dict__:
            cls.applies_action_mask = False  # its own acting path: masks unknown

    def __init__(
        self, observation_space: spaces.Space[Any], action_space: spaces.Space[Any]
    ) -> None:
        check_space(action_space, (spaces.Discrete,), "action space", type(self).__name__)
        super().__init__(observation_space, action_space)
        assert isinstance(action_space, spaces.Discrete)
        self.num_actions = int(action_space.n)
        self.action_start = int(action_space.start)
        #: the action layout and post-processing (zero-based index -> env action) of the
        #: categorical family: what an on-policy rollout of Q-values stores (PQN).
        self.distribution = Categorical(action_space)

    @abstractmethod
    def q_values(self, obs: Obs) -> Tensor:
        """``Q(s, a)`` for all actions: ``[B, num_actions]``."""

    def legal_q_values(self, obs: Obs) -> Tensor:
        """:meth:`q_values` with ``-inf`` for the actions the observation's ``"action_mask"``
        rules out (the Q-values themselves without a mask): what greedy acting and a greedy
        bootstrap (:func:`~rlkit.losses.greedy_value`) max over."""
        q = self.q_values(obs)
        mask = action_mask_of(obs)
        return q if mask is None else masked_q_values(q, mask)

    def value(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> Tensor:
        """The greedy state value ``max_a Q(s, a)`` ``[B]`` (PQN's bootstrap value); with an
        ``"action_mask"`` the max over the legal actions (0 where none is legal)."""
        value = self.legal_q_values(obs).amax(-1)
        return value.masked_fill(torch.isneginf(value), 0.0)

    def forward(self, obs: Obs) -> Tensor:
        return self.q_values(obs)

    def act(
        self,
        obs: Obs,
        deterministic: bool = False,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, PolicyState]:
        greedy = self.legal_q_values(obs).argmax(-1)
        return (greedy + self.action_start if self.action_start else greedy), None


def masked_q_values(q: Tensor, mask: Tensor) -> Tensor:
    """``q`` ``[B, n]`` with ``-inf`` where ``mask`` (same shape, 1 = legal: an observation's
    ``"action_mask"``) is 0, so ``argmax``/``amax`` keep to the legal actions (a row with no
    legal action is all ``-inf``: its argmax is action 0)."""
    if mask.shape != q.shape:
        raise ValueError(
            f"action mask of shape {tuple(mask.shape)} does not match the Q-values' "
            f"{tuple(q.shape)}"
        )
    return q.masked_fill(mask < 0.5, float("-inf"))


def q_trunk(
    policy: QPolicy,
    observation_space: spaces.Space[Any],
    encoder: Encoder | str | dict[str, Any] | None,
    hidden_sizes: Sequence[int] | None,
) -> tuple[Encoder, list[int]]:
    """The encoder (given, or the default for the space) and hidden sizes of a Q-network:
    ``hidden_sizes=None`` is ``(64, 64)`` for vector observations and none for images."""
    name = type(policy).__name__
    enc = build_primitive("encoder", encoder, Encoder, name, observation_space=observation_space)
    enc = enc if enc is not None else default_encoder(observation_space)
    check_encoder(enc, observation_space, name)
    if hidden_sizes is None:
        hidden_sizes = () if is_image_space(observation_space) else (64, 64)
    return enc, [int(s) for s in hidden_sizes]


class ActionValueNetwork(QPolicy):
    """Base of the Q-networks: encoder, MLP trunk and a head with ``atoms`` outputs per action
    (1 for Q-values, a quantile count or a support size for distributional heads).

    :meth:`action_values` maps encoder features ``[B, F]`` to ``[B, num_actions, atoms]``.
    Parts every subclass gets:

    - ``dueling`` (Wang et al. 2016): the last hidden layer splits into a value stream
      ``[B, 1, atoms]`` and an advantage stream, combined as ``V + A - mean_a A`` per atom
      (Rainbow's combination for distributional heads); without hidden layers both streams are
      linear heads on the features.
    - ``noisy`` (Fortunato et al. 2018): when > 0, every linear layer after the encoder
      becomes a :class:`~rlkit.utils.noisy.NoisyLinear` with this initial noise scale
      ``sigma0`` (the paper's 0.5); 0 keeps plain layers
      (:func:`~rlkit.utils.noisy.make_noisy` does the same for any encoder).
    - ``layer_norm`` (PQN, Gallici et al. 2024): every shared hidden layer is
      ``Linear -> LayerNorm -> activation`` (all hidden layers without ``dueling``, which then
      sit in the trunk before a linear head).

    ``hidden_sizes=None`` picks ``(64, 64)`` for vector observations (Stable-Baselines3's DQN
    default) and no trunk for images (the CNN already ends in a dense layer). Layers use
    PyTorch's default initialisation.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {"noisy": non_negative()}

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | str | dict[str, Any] | None = None,
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        dueling: bool = False,
        noisy: float = 0.0,
        atoms: int = 1,
        feature_dim: int | None = None,
        layer_norm: bool = False,
    ) -> None:
        super().__init__(observation_space, action_space)
        enc, sizes = q_trunk(self, observation_space, encoder, hidden_sizes)
        self.encoder = enc
        self.dueling, self.noisy = bool(dueling), float(noisy)
        self.atoms, self.layer_norm = int(atoms), bool(layer_norm)
        width = enc.feature_dim if feature_dim is None else int(feature_dim)
        out = self.num_actions * self.atoms
        self.value_head: nn.Module | None = None
        if not (self.dueling or self.layer_norm):
            self.head: nn.Module = mlp_head(width, sizes, out, activation)
            self.trunk: nn.Module = nn.Identity()
        else:
            shared, stream = (sizes[:-1], sizes[-1:]) if self.dueling else (sizes, [])
            norm = self.layer_norm
            self.trunk = (
                mlp(width, shared, activation, layer_norm=norm) if shared else nn.Identity()
            )
            for layer in self.trunk.modules():
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()  # PyTorch's default init, as the heads
            width = shared[-1] if shared else width
            self.head = mlp_head(width, stream, out, activation)
            if self.dueling:
                self.value_head = mlp_head(width, stream, self.atoms, activation)
        if self.noisy:
            for part in (self.trunk, self.head, self.value_head):
                if part is not None:
                    make_noisy(part, self.noisy)

    def action_values(self, features: Tensor) -> Tensor:
        """``[B, num_actions, atoms]`` from features ``[B, F]`` (dueling-combined)."""
        hidden = self.trunk(features)
        out: Tensor = self.head(hidden)
        out = out.reshape(out.shape[0], self.num_actions, self.atoms)
        if self.value_head is None:
            return out
        value: Tensor = self.value_head(hidden)
        return value.unsqueeze(1) + out - out.mean(1, keepdim=True)


@POLICIES.register("q_network")
class QNetwork(ActionValueNetwork):
    """Encoder, MLP trunk and a linear Q head, with the dueling, noisy and layer-norm options
    of :class:`ActionValueNetwork` (one value per action)."""

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | str | dict[str, Any] | None = None,
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        dueling: bool = False,
        noisy: float = 0.0,
        layer_norm: bool = False,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            encoder,
            hidden_sizes,
            activation,
            dueling=dueling,
            noisy=noisy,
            layer_norm=layer_norm,
        )

    def q_values(self, obs: Obs) -> Tensor:
        hidden = self.trunk(self.encoder(obs))
        q: Tensor = self.head(hidden)
        if self.value_head is None:
            return q
        value: Tensor = self.value_head(hidden)
        return value + q - q.mean(-1, keepdim=True)
