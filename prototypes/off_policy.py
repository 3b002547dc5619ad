"""Off-policy prototype: collect into a replay storage, then take gradient steps on sampled batches.

One cycle is ``train_freq`` vectorised env steps (random actions until ``learning_starts`` env
steps, then the agent's exploration), followed by ``gradient_steps`` updates once
``learning_starts`` is reached. Each update samples a batch (:meth:`OffPolicyAgent.minibatches`),
applies the batch hooks (observation normalisation, augmentation, intrinsic reward), calls the
agent's :meth:`~OffPolicyAgent.update` and moves the target networks. An agent's update is its
algorithm: loss terms (:meth:`~OffPolicyAgent.loss_terms`) on its networks' outputs, each loss
applied with :meth:`~rlkit.prototypes.Agent.clip_and_step` to one registered optimizer.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from torch import Tensor, nn

from rlkit import guard
from rlkit.augmentations.base import Augmentation
from rlkit.backends import closed_form_active
from rlkit.checkpoint import CheckpointError, FileWriter
from rlkit.config.rules import (
    Range,
    Rule,
    Sizes,
    check_config,
    count,
    non_negative,
    positive,
    unit,
)
from rlkit.configurable import Configurable
from rlkit.encoders.base import Encoder
from rlkit.envs import check_same_step_autoreset
from rlkit.envs.introspect import frame_stack_of
from rlkit.losses import Inputs, Loss, LossPlan, LossTerm
from rlkit.policies.base import Policy
from rlkit.policies.state import as_tuple
from rlkit.registry import arguments_of
from rlkit.rewards.base import IntrinsicReward, TransitionBatch
from rlkit.runtime import retain_freed_memory
from rlkit.selfplay.turns import alternates
from rlkit.storages.base import STORAGES
from rlkit.storages.replay import ReplayBatch, ReplayStorage
from rlkit.storages.samplers import PrioritizedSampler
from rlkit.storages.sequence_replay import SequenceBatch
from rlkit.storages.stores import PixelStore
from rlkit.types import Obs
from rlkit.utils.noisy import draw_noise, noisy_layers
from rlkit.utils.tensors import obs_map

from .base import Agent, AgentConfig, declares
from .on_policy import check_action_masks
from .state import FlatOptimizer, TargetNetwork

log = logging.getLogger("rlkit")

#: file name of the replay storage inside a checkpoint directory (``save_replay=True``).
REPLAY_FILE = "replay.h5"

A = TypeVar("A", bound="OffPolicyAgent")


@dataclasses.dataclass
class GSDEConfig:
    """gSDE options (Raffin et al. 2022; Stable-Baselines3's names and defaults), for the
    config of an off-policy agent whose policy can explore that way (SAC and TQC mix it in).
    The loop redraws the policy's exploration weights (:meth:`OffPolicyAgent.collect`)."""

    #: explore with gSDE: the agent's default policy becomes its gSDE variant, whose noise is a
    #: function of the state, redrawn now and then, instead of fresh per step.
    use_sde: bool = False
    #: with gSDE, vector steps between two draws of the exploration weights; -1: once per
    #: train_freq round (Stable-Baselines3's default).
    sde_sample_freq: int = -1
    #: with use_sde, the default policy's initial log std of the exploration weights.
    log_std_init: float = -3.0

    rules: ClassVar[dict[str, Rule]] = {
        "sde_sample_freq": Range(1, integer=True, also=(-1,)),
        "log_std_init": Range(),
    }

    def __post_init__(self) -> None:
        check_config(self)


@dataclasses.dataclass
class OffPolicyConfig(AgentConfig):
    """Hyperparameters of the off-policy loop (Stable-Baselines3 names where it has them)."""

    #: replay capacity in transitions (all envs together); memory is allocated up front.
    buffer_size: int = 100_000
    #: env steps of uniformly random actions before the first update.
    learning_starts: int = 100
    #: transitions per sampled batch.
    batch_size: int = 256
    #: vectorised env steps (``env.step`` calls) between two rounds of updates.
    train_freq: int = 1
    #: updates per round; -1 takes as many as transitions were collected in the round.
    gradient_steps: int = 1
    #: discount factor of future rewards.
    gamma: float = 0.99
    #: soft target update coefficient (1.0: hard copy).
    tau: float = 0.005
    #: updates between target-network updates (counted in gradient steps).
    target_update_interval: int = 1
    #: n-step returns (computed by the storage, per env, stopping at episode ends).
    n_step: int = 1
    #: proportional prioritized replay (Schaul et al. 2016); priorities are |TD errors|.
    prioritized_replay: bool = False
    #: priority exponent, initial and final importance-sampling exponents.
    per_alpha: float = 0.6
    #: initial importance-sampling exponent (beta) of prioritized replay.
    per_beta: float = 0.4
    #: final importance-sampling exponent, reached after per_beta_steps.
    per_beta_final: float = 1.0
    #: transitions over which beta anneals to per_beta_final; None keeps it at per_beta.
    per_beta_steps: int | None = None
    #: learning rate of the agent's Adam optimizers.
    lr: float = 3e-4
    #: decay every optimizer's learning rate linearly to 0 over ``train(total_steps)``, set
    #: before each round of updates (Stable-Baselines3's ``lin_<lr>`` schedules).
    anneal_lr: bool = False
    #: Adam's epsilon (1e-8, PyTorch's and Stable-Baselines3's; CleanRL's C51 and Dopamine's
    #: distributional agents use larger values).
    adam_eps: float = 1e-8
    #: hidden layer sizes of the default policy's networks; None: the policy's default.
    hidden_sizes: list[int] | None = None
    #: global gradient-norm clip per optimizer; None disables.
    max_grad_norm: float | None = None
    #: include the replay storage (HDF5) in checkpoints, so a resumed run keeps its data.
    save_replay: bool = False
    #: env steps per training iteration (one progress/log row each).
    log_interval: int = 1000

    rules: ClassVar[dict[str, Rule]] = {
        "buffer_size": count(),
        "learning_starts": count(0),
        "batch_size": count(),
        "train_freq": count(),
        "gradient_steps": Range(1, also=(-1,)),
        "gamma": unit(),
        "tau": Range(0, 1, low_open=True),
        "target_update_interval": count(),
        "n_step": count(),
        "per_alpha": non_negative(),
        "per_beta": unit(),
        "per_beta_final": unit(),
        "per_beta_steps": count(none=True),
        "lr": positive(),
        "adam_eps": positive(),
        "hidden_sizes": Sizes(none=True),
        "max_grad_norm": positive(none=True),
        "log_interval": count(),
    }


class OffPolicyAgent(Agent):
    """Owns the replay loop; agents implement :meth:`default_policy`, :meth:`setup`,
    :meth:`loss_terms` and :meth:`update`.

    Primitives: ``policy`` (default from :meth:`default_policy`, with ``encoder`` swapped in);
    ``storage``, any :class:`~rlkit.storages.ReplayStorage` (object, id or spec; default: one of
    ``buffer_size`` transitions with the configured n-step and sampler); ``augmentation``,
    applied to sampled ``obs`` and ``next_obs`` (independently drawn); ``intrinsic_reward``,
    whose bonus is computed on each sampled batch and added to its rewards before the TD target.
    Each may be an object, a registered id or a spec dict.

    Agents register their optimizers with :meth:`add_optimizer` and their target networks with
    :meth:`add_target` in :meth:`setup`; both are checkpointed. :attr:`num_updates` counts
    gradient steps. Every hook listed in :attr:`hooks` runs on every compute backend.
    """

    Config = OffPolicyConfig
    config: OffPolicyConfig
    policy_parts = ("encoder",)
    #: the policy base class this agent trains.
    policy_class: ClassVar[type[Policy]] = Policy
    #: the replay storage class this agent needs (the default one is built from it).
    storage_class: ClassVar[type[ReplayStorage]] = ReplayStorage
    #: whether the algorithm trains recurrent policies (on replayed sequences with their
    #: stored states, as R2D2); other agents refuse a recurrent policy with one line.
    trains_recurrent_policies: ClassVar[bool] = False
    #: whether the agent's targets and collection honour an observation's ``"action_mask"``
    #: (1 = legal): the prototype's random actions keep to the legal ones, the greedy ones
    #: come from a policy that applies masks, the targets are the agent's. Declared in a
    #: class's own body: an agent that overrides one of :data:`MASK_HOOKS` without declaring
    #: it True refuses masked observations (:func:`handles_action_masks`).
    handles_action_masks: ClassVar[bool] = False
    #: whether the agent's targets bootstrap only through the storage's ``discounts`` (and
    #: n-step ``rewards``), so a storage built with ``alternating=True`` makes them negamax
    #: targets for two-player games played in both seats (``self_play={"mode":
    #: "alternate"}``). Declared in a class's own body: an agent that overrides one of
    #: :data:`NEGAMAX_HOOKS` without declaring it True refuses such envs.
    negamax_targets: ClassVar[bool] = False
    hooks: ClassVar[tuple[str, ...]] = (
        "explore",
        "update",
        "loss_terms",
        "minibatches",
        "clip_and_step",
        "new_optimizer",
        "update_targets",
    )

    def __init__(
        self,
        env: VectorEnv,
        config: Any = None,
        *,
        policy: Policy | str | dict[str, Any] | None = None,
        encoder: Encoder | str | dict[str, Any] | None = None,
        storage: ReplayStorage | str | dict[str, Any] | None = None,
        augmentation: Augmentation | str | dict[str, Any] | None = None,
        intrinsic_reward: IntrinsicReward | str | dict[str, Any] | None = None,
        **hyperparameters: Any,
    ) -> None:
        super().__init__(env, config, **hyperparameters)
        name = type(self).__name__
        check_same_step_autoreset(env, name)
        obs_space, act_space = self.observation_space, self.action_space
        if policy is not None and encoder is not None:
            raise ValueError(
                f"{name}: pass either policy= or encoder= (which builds the default policy), "
                "not both"
            )
        built = self.build_primitive(
            "policy", policy, Policy, observation_space=obs_space, action_space=act_space
        )
        if built is None:
            built = self.default_policy(
                self.build_primitive("encoder", encoder, Encoder, observation_space=obs_space)
            )
        if not isinstance(built, self.policy_class):
            raise TypeError(
                f"{name} needs a {self.policy_class.__name__} policy, got {type(built).__name__}"
            )
        if built.recurrent and not self.trains_recurrent_policies:
            raise ValueError(
                f"{name} does not train recurrent policies (got {type(built).__name__}); "
                "use R2D2 (a recurrent Q-network) or RecurrentSAC (continuous actions), or a "
                "feed-forward policy"
            )
        self.policy = built.to(self.device)
        self.add_module("policy", self.policy)
        if has_action_mask(obs_space):
            check_action_masks(self.policy, obs_space, name)
            if not handles_action_masks(type(self)):
                raise TypeError(
                    f"{name}: the observation has 'action_mask' but {name} does not apply "
                    "masks to its targets or its exploration (DQN does; an agent that "
                    f"overrides one of {', '.join(MASK_HOOKS)} declares "
                    "handles_action_masks = True once they honour the mask)"
                )
        self.track_policy_state()
        self.build_batch_primitives(augmentation, intrinsic_reward)
        self.storage = self._build_storage(storage)
        self._custom_storage = storage is not None
        self.np_random = np.random.default_rng(self.config.seed)
        self.add_generator("np_random", self.np_random)  # epsilon-greedy draws
        self._obs_np: Any = None  # the training env's current raw observation
        self._round_steps = 0  # vector steps collected in the current train_freq round
        self.add_state("round_steps", lambda: self._round_steps, self._set_round_steps)
        noise: Any = getattr(self.policy, "noise", None)
        if isinstance(getattr(noise, "state", None), Tensor):  # a stateful process (OU)
            self.add_state("exploration_noise", lambda: noise.state, lambda v: noise.state.copy_(v))
        #: the policy's state-dependent exploration (gSDE), redrawn by :meth:`collect`.
        sde: Any = self.attach_state_dependent_noise()
        if sde is not None:
            sde.sample_freq = getattr(self.config, "sde_sample_freq", -1)
        elif getattr(self.config, "use_sde", False):
            raise ValueError(
                f"{name}: use_sde=True needs a policy with state-dependent exploration "
                f"(gsde_actor_critic); {type(self.policy).__name__} has none"
            )
        self.sde: Any = sde
        self.setup()
        #: the algorithm's loss terms by loss name (built once: stateful terms are saved).
        self._term_lists = self.loss_terms()
        self.terms = nn.ModuleDict({k: nn.ModuleList(v) for k, v in self._term_lists.items()})
        self.add_module("loss_terms", self.terms)
        for loss_name, terms in self._term_lists.items():
            self.record_loss_terms(terms, f"{loss_name}/")
        self._plans: dict[str, LossPlan] = {}
        self.record_modules()

    # ----------------------------------------------------------------- agent hooks
    @abstractmethod
    def default_policy(self, encoder: Encoder | None) -> Policy:
        """The policy built when none is given (``encoder`` swapped in if not None)."""

    @abstractmethod
    def setup(self) -> None:
        """Build optimizers (:meth:`add_optimizer`), targets (:meth:`add_target`, after the
        optimizers) and any extra state; called near the end of ``__init__``."""

    @abstractmethod
    def loss_terms(self) -> dict[str, list[LossTerm]]:
        """The algorithm's losses: loss name -> its terms (:mod:`rlkit.losses`), built once
        after :meth:`setup`. Override and extend ``super().loss_terms()`` to add a term."""

    @abstractmethod
    def update(self, batch: ReplayBatch) -> Mapping[str, Tensor | float]:
        """One gradient step on a prepared batch; returns metrics (tensors are fine: they are
        read once per iteration). :attr:`num_updates` already counts this step."""

    def loss(self, name: str, inputs: Inputs) -> Loss:
        """The loss ``name`` of :meth:`loss_terms` on ``inputs`` (see
        :func:`rlkit.losses.compute_loss`), ready for :meth:`clip_and_step`. Its term values
        are logged as ``loss/<term name>`` with the update's metrics."""
        plan = self._plans.get(name)
        if plan is None or plan.closed_form != closed_form_active():
            plan = self._plans[name] = LossPlan(self._term_lists[name])
        loss = plan(inputs)
        self._losses.append(loss)
        return loss

    _losses: list[Loss] = []
    _update_depth = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        update = cls.__dict__.get("update")
        if callable(update) and not getattr(update, "_rlkit_logs_losses", False):
            setattr(cls, "update", _logs_losses(update))  # noqa: B010

    def explore(self, obs: Obs) -> np.ndarray:
        """Env actions for the collection step after warm-up (hook; default: the policy's
        non-deterministic ``act``, after advancing a stateful exploration noise process such
        as Ornstein-Uhlenbeck, one the policy exposes as ``noise`` with ``step``/``reset``).
        With a recurrent policy an override must advance :attr:`policy_state`
        (:meth:`act_and_advance` does)."""
        noise = getattr(self.policy, "noise", None)
        if callable(getattr(noise, "step", None)):
            noise.step(self._generator)  # type: ignore[union-attr]
        return self.to_env_actions(self.act_and_advance(obs, deterministic=False))

    def act_and_advance(self, obs: Obs, deterministic: bool) -> Tensor:
        """The policy's raw actions for ``obs``; a recurrent policy acts from
        :attr:`policy_state` (reset where an episode starts) and the state moves on a step."""
        if not self.policy.recurrent:
            return self.policy.act(obs, deterministic=deterministic)[0]
        actions, self.policy_state = self.policy.act(
            obs, deterministic, self.policy_state, self._episode_starts
        )
        return actions

    def explore_numpy(self, obs: Any) -> np.ndarray | None:
        """Env actions straight from the env's NumPy observation, or None to use
        :meth:`explore` (hook for subclasses that act without tensors; the default is None,
        so :meth:`explore` runs; the built-in policies act in NumPy inside ``act`` on the
        ``fast`` backend). Not used when observations are normalised."""
        return None

    def epsilon_greedy(self, obs: Obs, epsilon: float) -> np.ndarray:
        """Per env: a uniformly random action with probability ``epsilon``, else the policy's
        deterministic action (the network runs only if some env acts greedily)."""
        explore = self.np_random.random(self.num_envs) < epsilon
        if explore.all() and not self.policy.recurrent:
            return self.random_actions(obs)
        out = self.to_env_actions(self.act_and_advance(obs, deterministic=True))
        if explore.any():
            out[explore] = self.random_actions(obs)[explore]
        return out

    def td_inputs(self, batch: ReplayBatch, q: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Inputs of a TD term (:class:`~rlkit.losses.TDLoss`) for Q-values ``q`` (``[B]`` or
        ``[E, B]``) and their ``target``; with prioritized replay also the importance weights,
        and the batch's new priorities (``|q - target|``, averaged over critics) are reported."""
        inputs = {"q": q, "target": target}
        if self.prioritized:
            inputs["weight"] = batch.weights
            errors = (q.detach() - target).abs()
            self.report_td_errors(batch, errors.mean(0) if errors.dim() == 2 else errors)
        return inputs

    def on_episode_end(self, dones: np.ndarray) -> None:
        """Called after an env step in which some episodes ended (``dones`` [num_envs] bool):
        resets per-episode state (an intrinsic reward's memory, a stateful noise process)."""
        if self.intrinsic_reward is not None:
            self.intrinsic_reward.reset_episodes(torch.as_tensor(dones, device=self.device))
        noise = getattr(self.policy, "noise", None)
        if callable(getattr(noise, "reset", None)):
            noise.reset(dones)  # type: ignore[union-attr]

    def target_update_due(self) -> bool:
        """Whether the targets move after the current update."""
        return self.num_updates % self.config.target_update_interval == 0

    def update_targets(self) -> None:
        """Polyak-update every registered target with ``tau`` (hook)."""
        for target in self.registry.targets.values():
            target.update(self.config.tau)

    def iteration_metrics(self) -> dict[str, float]:
        """Extra values logged once per iteration (e.g. the exploration rate)."""
        return {}

    def begin_round(self, batches: ReplayBatch) -> None:
        """Called with all of a round's batches when they are sampled together (uniform
        sampling), before its first update: agents may precompute what stays fixed during
        the round. Default: nothing."""

    def fused_kernels_apply(self, name: str, check: Callable[[], bool]) -> bool:
        """Whether a hand-written path may run: the backend runs kernels and ``check()``
        holds (kept for subclasses written against older versions)."""
        return self.backend.kernels and bool(check())

    def clip_and_step(self, loss: Any, optimizer: FlatOptimizer | None = None) -> Tensor | None:
        """Zero ``optimizer``'s gradients, backpropagate ``loss``, clip (``max_grad_norm``)
        and step (hook)."""
        return super().clip_and_step(loss, optimizer)

    # ----------------------------------------------------------------- storage
    def _build_storage(self, storage: ReplayStorage | str | dict[str, Any] | None) -> ReplayStorage:
        cfg = self.config
        sampler: dict[str, Any] | None = None
        if cfg.prioritized_replay:
            sampler = {
                "id": "prioritized",
                "alpha": cfg.per_alpha,
                "beta": cfg.per_beta,
                "beta_final": cfg.per_beta_final,
                "beta_steps": cfg.per_beta_steps,
            }
        defaults = self.storage_defaults()
        if sampler is not None:
            defaults["sampler"] = sampler
        if "store" in defaults and not _takes_store(self._storage_class_of(storage)):
            del defaults["store"]  # the automatic store choice is for storages that take one
        built = self.build_primitive("storage", storage, self.storage_class, **defaults)
        if built is None:
            built = self.storage_class(**defaults)
        return self._check_storage(built)

    @classmethod
    def learns_alternating_turns(cls) -> bool:
        """True when every class between this one and :class:`OffPolicyAgent` declares
        :attr:`negamax_targets` or overrides none of :data:`NEGAMAX_HOOKS`."""
        return declares(cls, OffPolicyAgent, "negamax_targets", NEGAMAX_HOOKS)

    def storage_defaults(self) -> dict[str, Any]:
        """Constructor arguments of the storage (default, or named by id) besides the
        sampler: layout, capacity and discounting (hook; a sequence agent returns
        :meth:`sequence_storage_defaults`)."""
        return self.storage_defaults_base()

    def storage_defaults_base(self) -> dict[str, Any]:
        """The transition storage's arguments (what :meth:`storage_defaults` returns unless
        overridden). Frame-stacked uint8 images get ``store="pixel"`` (each frame kept once,
        about 1/8 of the array store's memory for 4-frame stacks; see :meth:`default_store`);
        a store named in the storage's spec wins."""
        cfg = self.config
        out: dict[str, Any] = {
            "observation_space": self.observation_space,
            "action_space": self.action_space,
            "capacity": cfg.buffer_size,
            "num_envs": self.num_envs,
            "n_step": cfg.n_step,
            "gamma": cfg.gamma,
            "device": str(self.device),
        }
        if alternates(self.env):
            out["alternating"] = True  # the next position's value is the opponent's
        store = self.default_store()
        if store is not None:
            out["store"] = store
        return out

    def default_store(self) -> str | dict[str, Any] | None:
        """The replay store used when none is named: a :class:`~rlkit.storages.PixelStore` of
        the env's frame stack for uint8 ``(stack * C, H, W)`` observations, else None (the
        storage's default, ``"array"``).

        The rule: the observations are a rank-3 uint8 Box and the sub-envs are wrapped in
        gymnasium's ``FrameStackObservation`` whose ``stack_size`` (at least 2) divides their
        first axis (:func:`rlkit.envs.introspect.frame_stack_of`). The pixel store shares the
        frames that consecutive observations have in common, which only frame stacks have; it
        stays exact for any uint8 image, but an unstacked image (``rlkit/PixelReach-v0``'s
        ``(3, 40, 40)``) would have its channels read as frames and its frame pool regrown
        again and again, so images without a detected frame stack keep the array store (pass
        ``store={"id": "pixel", "stack_size": 1}`` to halve their memory instead)."""
        space = self.observation_space
        if not (PixelStore.supports(space) and len(space.shape or ()) == 3):
            return None
        assert isinstance(space, spaces.Box)
        stack = frame_stack_of(self.env)
        if stack is None or stack < 2 or space.shape[0] % stack:
            return None
        return "pixel" if stack == space.shape[0] else {"id": "pixel", "stack_size": stack}

    def _storage_class_of(self, storage: Any) -> type | None:
        """The class ``storage`` (None, an id or a spec) builds; None when it is an object
        or an unknown id (nothing is built from the defaults then, or it fails by itself)."""
        if storage is None:
            return self.storage_class
        name = storage if isinstance(storage, str) else None
        if isinstance(storage, Mapping):
            name = storage.get("id")
        return STORAGES.lookup(name) if isinstance(name, str) else None

    def sequence_storage_defaults(self, sequence_length: int) -> dict[str, Any]:
        """:meth:`storage_defaults` for a :class:`~rlkit.storages.SequenceReplay`: windows of
        ``sequence_length`` steps and the policy's state layout (no ``n_step``: the targets
        are computed inside the windows)."""
        out = {k: v for k, v in self.storage_defaults_base().items() if k != "n_step"}
        specs = self.policy.state_spec()
        out["sequence_length"] = int(sequence_length)
        out["state_shapes"] = [list(spec.shape) for spec in specs]
        out["state_dtypes"] = [str(spec.dtype).removeprefix("torch.") for spec in specs]
        return out

    def check_sequence_storage(self, sequence_length: int) -> None:
        """Refuse what sequence replay cannot serve: a storage whose windows are not
        ``sequence_length`` steps, and an intrinsic reward (it scores single transitions)."""
        name, storage = type(self).__name__, self.storage
        if self.intrinsic_reward is not None:
            raise ValueError(f"{name}: intrinsic_reward is not supported on sequence replay")
        if getattr(storage, "sequence_length", None) != sequence_length:
            raise ValueError(
                f"{name}: the storage's sequence_length is "
                f"{getattr(storage, 'sequence_length', None)}, but burn_in + seq_len = "
                f"{sequence_length}"
            )
        stored = [(tuple(s.shape[1:]), str(s.dtype)) for s in getattr(storage, "states", ())]
        specs = self.policy.state_spec()
        declared = [(s.shape, str(s.dtype).removeprefix("torch.")) for s in specs]
        if stored != declared:
            raise ValueError(
                f"{name}: the storage keeps recurrent states {stored}, but the policy's state "
                f"is {declared} (state_shapes / state_dtypes)"
            )

    def _check_storage(self, storage: Any) -> ReplayStorage:
        """``storage`` if it is a ReplayStorage laid out for this agent, else a clear error."""
        name, need = type(self).__name__, self.storage_class
        if not isinstance(storage, need):
            raise TypeError(f"{name} needs a {need.__name__}, got {type(storage).__name__}")
        if storage.num_envs != self.num_envs:
            raise ValueError(
                f"{name}: the storage is laid out for {storage.num_envs} envs, but the env has "
                f"{self.num_envs}"
            )
        if storage.gamma != self.config.gamma:
            raise ValueError(
                f"{name}: the storage discounts with gamma={storage.gamma}, but the agent's "
                f"gamma is {self.config.gamma}; make them equal"
            )
        if alternates(self.env) and not getattr(storage, "alternating", False):
            raise ValueError(
                f"{name}: the env hands every move to the opponent (self_play mode "
                "'alternate'), but the storage discounts with +gamma; build it with "
                "alternating=True"
            )
        return storage

    @property
    def prioritized(self) -> bool:
        """Whether the storage samples by priority (so updates report TD errors)."""
        return isinstance(self.storage.sampler, PrioritizedSampler)

    def report_td_errors(self, batch: ReplayBatch | SequenceBatch, td_errors: Tensor) -> None:
        """Give ``|td_errors|`` ([B]) of ``batch`` to a prioritized storage as new priorities
        (nothing to do for uniform sampling); for sequences, one priority per window."""
        if self.prioritized:
            self.storage.update_priorities(batch.indices, td_errors.detach().abs().cpu())

    # ----------------------------------------------------------------- Agent contract
    def primitives(self) -> dict[str, Configurable | None]:
        return {
            **super().primitives(),
            # the default storage is rebuilt from the hyperparameters; a custom one is recorded
            "storage": self.storage if self._custom_storage else None,
        }

    # ----------------------------------------------------------------- the loop
    def iteration(self) -> dict[str, float]:
        cfg = self.config
        target = self._target_steps if self._target_steps > self.global_step else 0
        end = self.global_step + cfg.log_interval
        if target:
            end = min(end, target)
        per_round = cfg.gradient_steps
        if per_round == -1:
            per_round = cfg.train_freq * self.num_envs
        metrics: Mapping[str, Tensor | float] = {}
        while self.global_step < end:
            # a round may span iterations; it never runs past the end of this one
            remaining = -(-(end - self.global_step) // self.num_envs)
            steps = min(cfg.train_freq - self._round_steps, remaining)
            self.collect(steps)
            self._round_steps += steps
            if self._round_steps < cfg.train_freq:
                continue
            self._round_steps = 0
            if self.global_step >= cfg.learning_starts and self.storage.can_sample():
                metrics = {**metrics, **self.train_round(per_round)}
        out = {k: float(v) for k, v in metrics.items()}
        out.update(self.iteration_metrics())
        out["replay/size"] = float(len(self.storage))
        return out

    def anneal_lr(self) -> float:
        """Set every registered optimizer's learning rate to its initial value times the
        fraction of ``train(total_steps)`` left (as Stable-Baselines3 before each ``train``
        call); returns the first optimizer's new rate. The initial rate of each parameter
        group is kept in the group (``initial_lr``), so checkpoints carry it."""
        target = self._target_steps
        remaining = max(0.0, 1.0 - self.global_step / target) if target else 1.0
        first: float | None = None
        for opt in self.registry.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * remaining
                first = group["lr"] if first is None else first
        return float(first or 0.0)

    def _set_round_steps(self, value: Any) -> None:
        self._round_steps = max(0, min(int(value), self.config.train_freq - 1))

    def has_env_position(self) -> bool:
        return self._obs_np is not None

    def continue_from(self, obs: Any | None) -> None:
        self._obs_np = obs
        if obs is None:  # every env starts a new episode
            super().continue_from(None)
            self._episode_starts = torch.ones(self.num_envs, device=self.device)
            noise = getattr(self.policy, "noise", None)
            if callable(getattr(noise, "reset", None)):
                noise.reset()  # type: ignore[union-attr]

    def _current_obs(self) -> Any:
        if self._obs_np is None:
            seed = self.config.seed
            obs, _ = self.env.reset(seed=seed)
            if seed is not None:
                self.env.action_space.seed(seed)
            self._obs_np = obs
            if self.obs_normalizer is not None:
                self.obs_normalizer.update(self.obs_to_tensor(obs))
        return self._obs_np

    def random_actions(self, obs: Any = None) -> np.ndarray:
        """Uniformly random env actions for every env (the warm-up policy); where ``obs`` (the
        envs' observations, NumPy or tensors) has an ``"action_mask"``, uniform over each
        env's legal actions (drawn from :attr:`np_random`)."""
        mask = obs.get("action_mask") if isinstance(obs, Mapping) else None
        if mask is None:
            return np.asarray(self.env.action_space.sample())
        legal = np.asarray(mask.cpu() if isinstance(mask, Tensor) else mask) >= 0.5
        index = np.where(legal, self.np_random.random(legal.shape), -1.0).argmax(-1)
        start = int(getattr(self.action_space, "start", 0))
        return (index + start).astype(self.action_space.dtype or np.int64)

    def collect(self, num_steps: int) -> None:
        """Step the envs ``num_steps`` times and add the transitions to :attr:`storage`:
        random actions until ``learning_starts``, then :meth:`explore_numpy` (if a subclass
        defines it) or :meth:`explore`."""
        env, storage, cfg = self.env, self.storage, self.config
        normalizer = self.obs_normalizer
        recurrent = self.policy.recurrent
        obs = self._current_obs()
        for i in range(num_steps):
            if self.sde is not None:
                self.sde.redraw(self._round_steps + i, self.num_envs, self._generator)
            actions: np.ndarray | None = None
            state_in = self.policy_state
            if self.global_step < cfg.learning_starts:
                actions = self.random_actions(obs)
                if recurrent:  # the memory follows the random actions' observations
                    with torch.inference_mode():
                        self.act_and_advance(self.preprocess(self.obs_to_tensor(obs)), True)
            elif normalizer is None and not recurrent:
                actions = self.explore_numpy(obs)
            if actions is None:
                with torch.inference_mode():
                    actions = self.explore(self.preprocess(self.obs_to_tensor(obs)))
                if recurrent and self.policy_state is state_in:
                    raise RuntimeError(
                        f"{type(self).__name__}.explore did not advance policy_state; an "
                        "override for a recurrent policy must set self.policy_state to the "
                        "state after the step (self.act_and_advance does)"
                    )
            next_obs, rewards, terminated, truncated, info = env.step(actions)
            guard.check_env(next_obs, rewards, self.global_step)
            dones = np.logical_or(terminated, truncated)
            self.episodes.step(rewards, dones, info)
            extra: dict[str, Any] = {}
            if recurrent:
                extra = {"state": as_tuple(state_in), "episode_start": self._episode_starts}
                self._episode_starts = torch.as_tensor(dones, device=self.device).float()
            if dones.any():
                storage.add(
                    obs, actions, rewards, self._true_next_obs(next_obs, info, dones),
                    terminated, truncated, **extra,
                )  # fmt: skip
                self.on_episode_end(dones)
            else:
                storage.add(obs, actions, rewards, next_obs, terminated, truncated, **extra)
            if normalizer is not None:
                normalizer.update(self.obs_to_tensor(next_obs))
            obs = next_obs
            self.global_step += self.num_envs
        self._obs_np = obs

    def _true_next_obs(self, next_obs: Any, info: dict[str, Any], dones: np.ndarray) -> Any:
        """``next_obs`` with the rows of finished envs replaced by ``info["final_obs"]``."""
        final = info.get("final_obs")
        if final is None:
            raise RuntimeError(
                "the env finished an episode without info['final_obs']; build it with "
                "rlkit.envs.make_vec_env (same-step autoreset)"
            )
        rows = np.flatnonzero(np.asarray(info.get("_final_obs", dones), dtype=bool))
        if isinstance(next_obs, dict):
            out = {k: v.copy() for k, v in next_obs.items()}
            for i in rows:
                for k in out:
                    out[k][i] = final[i][k]
            return out
        out_arr = np.array(next_obs, copy=True)
        for i in rows:
            out_arr[i] = final[i]
        return out_arr

    def minibatches(self, num_updates: int) -> Iterator[ReplayBatch]:
        """The batches of one round of ``num_updates`` updates (hook).

        Nothing is added to the storage during a round, so with uniform sampling the round's
        batches are drawn in one call (the same i.i.d. draws as one call per step, with one
        call's overhead) and sliced, after :meth:`begin_round` has seen them; prioritized
        sampling draws each batch after the previous update's new priorities.
        """
        size = self.config.batch_size
        if num_updates > 1 and not self.prioritized and self.storage.rows_independent:
            batches = self.storage.sample(size * num_updates, self._generator)
            self.begin_round(batches)
            for i in range(num_updates):
                yield _batch_slice(batches, i * size, (i + 1) * size)
        else:
            for _ in range(num_updates):
                yield self.storage.sample(size, self._generator)

    def train_round(self, num_updates: int) -> Mapping[str, Tensor | float]:
        """``num_updates`` gradient steps on :meth:`minibatches`; returns each metric's latest
        value (an actor loss logged by a delayed actor update stays in the row); with
        ``anneal_lr`` the round's learning rate is set first (:meth:`anneal_lr`)."""
        metrics: dict[str, Tensor | float] = {}
        if self.config.anneal_lr:
            metrics["train/lr"] = self.anneal_lr()
        for batch in self.minibatches(num_updates):
            metrics.update(self.train_step(batch))
        return metrics

    def train_step(self, batch: ReplayBatch | None = None) -> Mapping[str, Tensor | float]:
        """Sample (unless ``batch`` is given), prepare, update, move the targets; returns the
        update's metrics."""
        if batch is None:
            batch = self.storage.sample(self.config.batch_size, self._generator)
        batch, transitions, metrics = self.prepare_batch(batch)
        self.resample_noise()
        self.num_updates += 1
        update = self.compile_update("update", self.update)
        metrics = {**metrics, **update(batch)}
        if self.target_update_due():
            self.update_targets()
        if self.intrinsic_reward is not None and transitions is not None:
            for key, value in self.intrinsic_reward.update(transitions).items():
                metrics[f"intrinsic/{key}"] = value
        return metrics

    def resample_noise(self) -> None:
        """Draw new noise in every noisy layer (:mod:`rlkit.utils.noisy`) of the policy and
        its targets, from the agent's generator, before each update (hook); the online
        network keeps that noise for acting until the next update. Nothing when there is
        none (the layers are looked up once per policy)."""
        modules = [self.policy, *(t.net for t in self.registry.targets.values())]
        key = tuple(id(m) for m in modules)
        cached = self.__dict__.get("_noisy_cache")
        if cached is None or cached[0] != key:
            layers = [layer for m in modules for layer in noisy_layers(m)]
            cached = self.__dict__["_noisy_cache"] = (key, layers)
        if cached[1]:
            draw_noise(cached[1], self._generator)

    def prepare_batch(
        self, batch: ReplayBatch
    ) -> tuple[ReplayBatch, TransitionBatch | None, dict[str, Tensor | float]]:
        """Normalise and augment observations, add the intrinsic bonus to the rewards; returns
        the batch, the transitions the intrinsic reward trains on, and metrics."""
        metrics: dict[str, Tensor | float] = {}
        if self.obs_normalizer is not None:
            batch = batch.map_obs(self.preprocess)
        if self.augmentation is not None:
            batch = batch.map_obs(self.augment)
        transitions = None
        if self.intrinsic_reward is not None:
            transitions = TransitionBatch(
                obs=batch.obs, actions=batch.actions, next_obs=batch.next_obs, dones=batch.dones
            )
            bonus = self.intrinsic_reward.reward(transitions, self.global_step)
            batch = dataclasses.replace(batch, rewards=batch.rewards + bonus)
            metrics["intrinsic/reward_mean"] = bonus.mean()
        return batch, transitions, metrics

    # ----------------------------------------------------------------- checkpoints
    def checkpoint_files(self) -> dict[str, FileWriter]:
        """With ``save_replay`` the replay storage goes into checkpoints as ``replay.h5``,
        written inside the new checkpoint before it becomes visible."""
        files = super().checkpoint_files()
        if self.config.save_replay:
            files[REPLAY_FILE] = self.storage.save
        return files

    def restore_checkpoint_files(self, directory: Path) -> None:
        super().restore_checkpoint_files(directory)
        self._restore_replay(directory)

    def _restore_replay(self, directory: Path) -> None:
        file = directory / REPLAY_FILE
        if not self.config.save_replay:
            return
        if not file.is_file():
            raise CheckpointError(
                f"checkpoint {directory} was saved with save_replay=True but has no "
                f"{REPLAY_FILE}; load with save_replay=False to start with an empty replay"
            )
        storage = ReplayStorage.load(file, device=str(self.device))
        self._check_storage(storage)
        self.storage = storage


def _takes_store(cls: type | None) -> bool:
    """Whether the storage class ``cls`` takes a ``store`` argument (or any keyword)."""
    if cls is None:
        return False
    arguments = arguments_of(cls)
    return arguments is None or "store" in arguments


def _logs_losses(update: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an agent's ``update`` so its metrics also hold ``loss/<term>`` for every loss it
    computed with :meth:`OffPolicyAgent.loss` (keys the agent returns itself win)."""

    @functools.wraps(update)
    def wrapper(self: OffPolicyAgent, batch: ReplayBatch) -> Mapping[str, Tensor | float]:
        outer = self._update_depth == 0
        if outer:
            self._losses = []
        self._update_depth += 1
        try:
            metrics = dict(update(self, batch))
        finally:
            self._update_depth -= 1
        if outer:
            for loss in self._losses:
                for key, value in loss.values.items():
                    metrics.setdefault(f"loss/{key}", value)
        return metrics

    wrapper._rlkit_logs_losses = True  # type: ignore[attr-defined]
    return wrapper


def _batch_slice(batch: ReplayBatch, start: int, stop: int) -> ReplayBatch:
    """Rows ``start:stop`` of every field of a sampled batch (views, no copies)."""
    rows = slice(start, stop)
    return ReplayBatch(
        obs=obs_map(lambda x: x[rows], batch.obs),
        actions=batch.actions[rows],
        rewards=batch.rewards[rows],
        next_obs=obs_map(lambda x: x[rows], batch.next_obs),
        discounts=batch.discounts[rows],
        dones=batch.dones[rows],
        weights=batch.weights[rows],
        indices=batch.indices[rows],
    )


#: the hooks through which an off-policy agent bootstraps and collects: a class that
#: overrides one declares ``handles_action_masks`` in its own body, or masked observations
#: are refused.
MASK_HOOKS = (
    "update",
    "explore",
    "explore_numpy",
    "epsilon_greedy",
    "random_actions",
    "act_and_advance",
    "collect",
    "iteration",
)


#: the hooks through which an off-policy agent's targets are discounted: a class that
#: overrides one declares ``negamax_targets`` in its own body, or alternating-turn envs are
#: refused.
NEGAMAX_HOOKS = (
    "update",
    "storage_defaults",
    "storage_defaults_base",
    "sequence_storage_defaults",
)


def has_action_mask(space: spaces.Space[Any]) -> bool:
    """Whether observations of ``space`` carry an ``"action_mask"`` (a Dict space's key)."""
    return isinstance(space, spaces.Dict) and "action_mask" in space.spaces


def handles_action_masks(cls: type) -> bool:
    """Whether the off-policy agent class ``cls`` honours action masks: each class between it
    and :class:`OffPolicyAgent` declares ``handles_action_masks = True`` in its own body or
    overrides none of :data:`MASK_HOOKS`, and none declares it False."""
    return declares(cls, OffPolicyAgent, "handles_action_masks", MASK_HOOKS)


__all__ = [
    "REPLAY_FILE",
    "FlatOptimizer",
    "OffPolicyAgent",
    "OffPolicyConfig",
    "TargetNetwork",
    "retain_freed_memory",
]
