"""The agent base: the public surface every agent shares (train, evaluate, act, save, load) and
the one plumbing every prototype registers through.

Responsibilities live in parts a reader can find:

- acting: :meth:`Agent.act` and the prototypes' ``explore`` hooks (the policy is the
  primitive that acts);
- learning: the prototypes' ``update`` / ``clip_and_step`` hooks on loss terms
  (:mod:`rlkit.losses`), run on the agent's compute backend (:mod:`rlkit.backends`);
- collection: each prototype's loop (``collect_rollout``, ``collect``, actors);
- training: :mod:`prototypes.trainer` (the loop, logging, periodic checkpoints);
- evaluation: :mod:`prototypes.evaluation`;
- state and checkpoints: :mod:`prototypes.state` (what is registered) and
  :mod:`prototypes.checkpointing` (what is written).

Prototypes (on-policy, off-policy, distributed) subclass :class:`Agent` and implement one
training iteration; reference agents subclass a prototype and add their algorithm.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from torch import Tensor, nn

from rlkit import guard, runtime
from rlkit.augmentations.base import Augmentation
from rlkit.backends import BACKENDS, BackendReport, resolve, use
from rlkit.backends.setting import Backend
from rlkit.checkpoint import CheckpointError, FileWriter
from rlkit.config import make_config
from rlkit.config.rules import (
    DEVICE,
    SEED,
    OneOf,
    Rule,
    check_arguments,
    check_config,
    count,
    positive,
)
from rlkit.configurable import Configurable, build_primitive
from rlkit.device import resolve_device
from rlkit.distributions.state_dependent import state_dependent_noise
from rlkit.envs import EpisodeTracker, reports_games
from rlkit.export.acting import ActingPath
from rlkit.losses import LossTerm
from rlkit.normalization import ObsNormalizer
from rlkit.policies.base import ActorCriticPolicy, Policy
from rlkit.policies.state import as_tuple
from rlkit.registry import Registry
from rlkit.rewards.base import IntrinsicReward
from rlkit.selfplay.turns import alternates
from rlkit.spaces import check_observation, check_space, describe_space, spaces_equal
from rlkit.trust import reading
from rlkit.types import Obs, PolicyState
from rlkit.utils.nn import evaluation_mode
from rlkit.utils.optim import FlatAdam, optimizer_step, set_fused
from rlkit.utils.seeding import seed_everything
from rlkit.utils.tensors import obs_to_tensor

from . import building, checkpointing, evaluation, trainer
from .callbacks import CallbackLike, as_callbacks
from .self_play import league_callbacks, register_league
from .state import FlatOptimizer, StateRegistry, StateValue, TargetNetwork

log = logging.getLogger("rlkit")

A = TypeVar("A", bound="Agent")
P = TypeVar("P", bound=Configurable)
F = TypeVar("F", bound=Callable[..., Any])

MODEL_FILE = checkpointing.MODEL_FILE
#: what :meth:`Agent.add_generator` accepts.
RandomGenerator = torch.Generator | np.random.Generator
#: names of the global generators a checkpoint always holds (``rng.<name>``).
GLOBAL_GENERATORS = checkpointing.GLOBAL_GENERATORS
TRAINING_STATE_FILE = checkpointing.TRAINING_STATE_FILE

#: torch.compile backends accepted by ``compiler`` (``inductor`` generates kernels; the others
#: only trace, for debugging and fast tests).
COMPILERS = ("inductor", "aot_eager", "eager")


@dataclasses.dataclass
class AgentConfig:
    """Hyperparameters every agent has."""

    #: seeds Python, NumPy, torch and the env's first reset; None leaves them as they are.
    seed: int | None = None
    #: "auto" (cuda, npu, mps, cpu in that order), "cpu", "cuda", "npu", ...
    device: str = "auto"
    #: torch intra-op threads while this agent trains (restored afterwards); None leaves
    #: torch's setting alone. See rlkit.runtime for the measured default of the CLI.
    num_threads: int | None = None
    #: flush denormal floats to zero on the training thread while this agent trains (restored
    #: afterwards): arithmetic on them is many times slower; see rlkit.runtime.flush_denormals.
    flush_denormals: bool = True
    #: whiten non-image observations with running statistics (kept in the checkpoint).
    normalize_obs: bool = False
    #: clip whitened observations to +-clip_obs.
    clip_obs: float = 10.0
    #: compute backend: "fast" (CPU kernels, closed-form loss derivatives), "reference"
    #: (plain autograd) or "compile" (torch.compile of the update); see rlkit.backends.
    compute: str = "fast"
    #: torch.compile backend for compute="compile": "inductor", "aot_eager" or "eager".
    compiler: str = "inductor"
    #: a NaN/inf gradient while training: "raise" (stop, naming the loss terms), "skip" (drop
    #: that update with a warning) or "off" (no checks); see rlkit.guard. Non-finite env
    #: output always stops training.
    on_nonfinite: str = "raise"

    #: what each field allows (:mod:`rlkit.config.rules`); a subclass's ``rules`` add to these.
    rules: ClassVar[dict[str, Rule]] = {
        "seed": SEED,
        "device": DEVICE,
        "num_threads": count(none=True),
        "clip_obs": positive(),
        "compute": OneOf(tuple(BACKENDS)),
        "compiler": OneOf(COMPILERS),
        "on_nonfinite": OneOf(guard.POLICIES),
    }

    def __post_init__(self) -> None:
        check_config(self)


def on_backend(method: F) -> F:
    """Run ``method`` with the agent's compute backend active (see :func:`rlkit.backends.use`)."""
    if getattr(method, "_rlkit_on_backend", False):
        return method

    @functools.wraps(method)
    def wrapper(self: Agent, *args: Any, **kwargs: Any) -> Any:
        with use(self._backend):
            return method(self, *args, **kwargs)

    wrapper._rlkit_on_backend = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


#: methods that run with the agent's backend active however they are called (the training
#: loop, or a test or script calling one directly): wrapped in every class that defines them.
ENTRY_POINTS = (
    "iteration",
    "update",
    "collect_rollout",
    "collect",
    "train_round",
    "train_step",
    "evaluate",
    "act",
)


class Agent(ABC):
    """Base class of every agent (see the module doc)."""

    #: registry id ("ppo"); set by ``@AGENTS.register`` on the registered class only.
    registry_id: ClassVar[str | None] = None
    #: the hyperparameter dataclass of this agent.
    Config: ClassVar[type[AgentConfig]] = AgentConfig
    #: observation / action space types the agent accepts.
    observation_spaces: ClassVar[tuple[type, ...]] = (spaces.Box, spaces.Dict)
    action_spaces: ClassVar[tuple[type, ...]] = (
        spaces.Discrete,
        spaces.Box,
        spaces.MultiDiscrete,
        spaces.MultiBinary,
    )
    #: constructor arguments that build the default policy instead of passing ``policy=``.
    policy_parts: ClassVar[tuple[str, ...]] = ()
    #: other constructor arguments that take primitives (or what builds one), routed as
    #: primitives by YAML configs and the CLI (language-model agents: ``model``,
    #: ``reward_model``).
    primitive_arguments: ClassVar[tuple[str, ...]] = ()
    #: the documented extension points of this agent: methods a subclass may override and
    #: that run on every compute backend (``tests/test_hooks.py`` checks each of them).
    hooks: ClassVar[tuple[str, ...]] = ("clip_and_step", "new_optimizer")

    policy: Policy
    augmentation: Augmentation | None = None
    intrinsic_reward: IntrinsicReward | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A registry id belongs to the class registered under it; an unregistered subclass
        # must not save checkpoints that load as its parent.
        if "registry_id" not in cls.__dict__:
            cls.registry_id = None
        for name in ENTRY_POINTS:
            method = cls.__dict__.get(name)
            if callable(method):
                setattr(cls, name, on_backend(method))

    def __init__(self, env: VectorEnv, config: Any = None, **hyperparameters: Any) -> None:
        name = type(self).__name__
        if not isinstance(env, VectorEnv):
            raise TypeError(
                f"{name}: env must be a gymnasium VectorEnv (build one with "
                f"rlkit.envs.make_vec_env), got {type(env).__name__}"
            )
        for key in checkpointing.REMOVED_HYPERPARAMETERS & set(hyperparameters):
            raise TypeError(
                f"{name}: {key} was removed; call rlkit.runtime.{key}() (or pass "
                f"--{key.replace('_', '-')} to the CLI) to tune the process explicitly"
            )
        self.config = make_config(type(self).Config, config, hyperparameters, name)
        self.env = env
        self.num_envs = int(env.num_envs)
        self.observation_space = env.single_observation_space
        self.action_space = env.single_action_space
        check_space(self.observation_space, self.observation_spaces, "observation space", name)
        check_space(self.action_space, self.action_spaces, "action space", name)
        if alternates(env) and not self.learns_alternating_turns():
            raise ValueError(
                f"{name}: the env hands every move to the opponent (self_play mode "
                f"'alternate'), but {name}'s targets do not count the opponent's value "
                "negatively; train DQN, QR-DQN or IQN there, or use self_play mode 'league'"
            )
        self.device = resolve_device(self.config.device)
        self._backend = resolve(self.config.compute)
        #: which implementation each component runs on (logged once per run).
        self.backend_report = BackendReport(name, self._backend.name)
        if self.config.seed is not None:
            seed_everything(self.config.seed)
        self.registry = StateRegistry()
        self._generators: dict[str, RandomGenerator] = {}
        self.obs_normalizer: ObsNormalizer | None = None
        if self.config.normalize_obs:
            self.obs_normalizer = ObsNormalizer(self.observation_space, self.config.clip_obs)
            self.add_module("obs_normalizer", self.obs_normalizer.to(self.device))
        self.global_step = 0
        self.num_updates = 0
        self.episodes = EpisodeTracker(self.num_envs, info_only=reports_games(env))
        self._obs: Obs | None = None  # current (preprocessed) observation of the training env
        self._target_steps = 0
        #: the agent's random generator for minibatches, replay sampling and augmentation.
        self._generator = torch.Generator()
        if self.config.seed is not None:
            self._generator.manual_seed(self.config.seed)
        self.add_generator("generator", self._generator)
        self._compiled: dict[str, Callable[..., Any]] = {}
        self._groups: dict[str, FlatOptimizer] = {}
        self._recorded_terms: list[tuple[Sequence[LossTerm], str]] = []
        self._records_modules = False
        register_league(self)

    @classmethod
    def learns_alternating_turns(cls) -> bool:
        """Whether the agent learns two-player zero-sum games played in both seats, move by
        move (``make_vec_env(..., self_play={"mode": "alternate"})``): its targets count the
        next position's value negatively (negamax). False here; off-policy agents whose
        targets bootstrap through the storage's discounts say True
        (:attr:`OffPolicyAgent.negamax_targets`)."""
        return False

    # ----------------------------------------------------------------- subclass contract
    @abstractmethod
    def iteration(self) -> dict[str, float]:
        """Collect experience and update once; advance :attr:`global_step`; return metrics."""

    # ----------------------------------------------------------------- the one plumbing
    def add_module(self, name: str, module: nn.Module) -> nn.Module:
        """Register ``module`` (moved to the agent's device) for checkpointing as ``name``."""
        self.registry._check_new(name, self.registry.modules, "module")
        self.registry.modules[name] = module.to(self.device)
        return module

    def register_optimizer(self, name: str, optimizer: torch.optim.Optimizer) -> None:
        """Register an optimizer for checkpointing as ``name``."""
        self.registry._check_new(name, self.registry.optimizers, "optimizer")
        self.registry.optimizers[name] = optimizer
        guard.label(optimizer, f"{type(self).__name__} optimizer {name!r}")
        self.backend_report.record(
            f"optimizer {name}", _describe_optimizer(optimizer), self._optimizer_fallback(optimizer)
        )

    def add_optimizer(
        self,
        name: str,
        modules: Sequence[nn.Module],
        lr: float | None = None,
        max_grad_norm: float | None = None,
    ) -> FlatOptimizer:
        """A :class:`FlatOptimizer` over ``modules`` from :meth:`new_optimizer` (``lr``
        defaults to the config's ``lr``, Adam's epsilon is its ``adam_eps`` where it has one),
        checkpointed as ``name``."""
        rate = float(lr if lr is not None else getattr(self.config, "lr", 1e-3))
        clip = (
            max_grad_norm
            if max_grad_norm is not None
            else getattr(self.config, "max_grad_norm", None)
        )
        eps = float(getattr(self.config, "adam_eps", 1e-8))
        group = FlatOptimizer(
            modules, rate, clip, optimizer=lambda params: self.new_optimizer(params, rate, eps)
        )
        self.register_optimizer(name, group.optimizer)
        self._groups[name] = group
        return group

    def add_target(
        self, name: str, source: nn.Module, track: Sequence[nn.Module] | None = None
    ) -> TargetNetwork:
        """A :class:`TargetNetwork` of ``source`` (moved by :meth:`update_targets` where the
        prototype has it), checkpointed as ``name``. Register optimizers first: the target
        moves whole runs of their flat buffers at once."""
        target = TargetNetwork(source, track)
        self.add_module(name, target)
        self.registry.targets[name] = target
        return target

    def add_state(
        self,
        name: str,
        get: Callable[[], StateValue] | None = None,
        set: Callable[[Any], Any] | None = None,
    ) -> None:
        """Checkpoint an extra value (a number goes into ``config.json``, a tensor into
        ``training_state.safetensors``): by default the agent attribute ``name``, or what
        ``get`` returns (restored through ``set``)."""
        self.registry._check_new(name, self.registry.values, "state")
        getter = get if get is not None else (lambda: getattr(self, name))
        setter = set if set is not None else (lambda value: setattr(self, name, value))
        self.registry.values[name] = (getter, setter)

    def attach_state_dependent_noise(self) -> Any:
        """The gSDE noise of the policy or of its distribution (found by capability:
        :func:`~rlkit.distributions.state_dependent.state_dependent_noise`), given one acting
        matrix per env row and checkpointed as ``sde_exploration``; None without it. The loop
        redraws it with ``sde.redraw(position, num_envs, generator)``."""
        sde: Any = state_dependent_noise(self.policy)
        if sde is None:
            return None
        sde.allocate(self.num_envs)
        self.add_state(
            "sde_exploration", lambda: sde.exploration, lambda v: sde.exploration.copy_(v)
        )
        return sde

    def track_policy_state(self, always_starts: bool = False) -> None:
        """Keep a recurrent policy's loop-carried state, checkpointed for exact resume:
        :attr:`policy_state` (the state entering the next step, one row per env; None for a
        feed-forward policy) and the per-env episode-start flags of the next step (registered
        for every policy with ``always_starts``, else only for a recurrent one)."""
        self._episode_starts = torch.ones(self.num_envs, device=self.device)
        if always_starts or self.policy.recurrent:
            self.add_state("episode_starts", lambda: self._episode_starts, self._set_starts)
        #: recurrent policies: the state entering the next step, one row per env (None when
        #: feed-forward). An ``explore`` override must advance it.
        self.policy_state: PolicyState = self.policy.initial_state(self.num_envs)
        for i in range(len(as_tuple(self.policy_state))):
            self.add_state(f"policy_state_{i}", self._state_getter(i), self._state_setter(i))

    def _state_getter(self, i: int) -> Callable[[], Tensor]:
        return lambda: as_tuple(self.policy_state)[i]

    def _state_setter(self, i: int) -> Callable[[Any], None]:
        def set_row(value: Any) -> None:
            state = list(as_tuple(self.policy_state))
            if isinstance(value, Tensor) and value.shape == state[i].shape:
                state[i] = value.to(state[i].device, state[i].dtype)
                self.policy_state = tuple(state)

        return set_row

    def _set_starts(self, value: Tensor) -> None:
        if value.shape == self._episode_starts.shape:
            self._episode_starts = value.to(self.device, self._episode_starts.dtype)

    def add_generator(self, name: str, generator: RandomGenerator) -> None:
        """Checkpoint the state of a random generator the agent draws from, so a resumed run
        draws the same numbers: a ``torch.Generator`` goes into ``training_state.safetensors``
        as ``rng.<name>``, a ``numpy.random.Generator`` into ``config.json`` (``resume.rng``).
        Register every generator a subclass keeps (the state is restored in place, so keep the
        object). Torch's, NumPy's and Python's global generators are saved without this."""
        if not isinstance(generator, torch.Generator | np.random.Generator):
            raise TypeError(
                f"{type(self).__name__}.add_generator: generator must be a torch.Generator or a "
                f"numpy.random.Generator, got {type(generator).__name__}"
            )
        if name in GLOBAL_GENERATORS:
            raise ValueError(
                f"{type(self).__name__}.add_generator: name {name!r} is reserved for a global "
                f"generator ({', '.join(GLOBAL_GENERATORS)}); pick another"
            )
        self.registry._check_new(name, self._generators, "generator")
        self._generators[name] = generator

    def generators(self) -> dict[str, RandomGenerator]:
        """The agent's own random generators (name -> generator), as saved in checkpoints."""
        return dict(self._generators)

    def has_env_position(self) -> bool:
        """Whether the training loop is inside the training env's episodes (it reset the env
        and holds its current observation), so exact resume must put the env back (hook; the
        default reads the observation the on-policy loop keeps)."""
        return self._obs is not None

    def continue_from(self, obs: Any | None) -> None:
        """Continue the loop at the restored training env's raw observation ``obs`` (exact
        resume) or, with None, from a new reset because the env could not be put back (hook;
        the loop-carried state of an unfinished episode is then dropped)."""
        if obs is None:
            self._obs = None
            self.episodes.reset_running()
            if self.intrinsic_reward is not None:  # episodic memories start over too
                everyone = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
                self.intrinsic_reward.reset_episodes(everyone)
        else:
            self._obs = self.preprocess(self.obs_to_tensor(obs))

    def modules(self) -> dict[str, nn.Module]:
        """Modules whose state goes into ``model.safetensors`` (name -> module): everything
        registered, target networks included, and the intrinsic reward."""
        mods = dict(self.registry.modules)
        if self.intrinsic_reward is not None:
            mods["intrinsic_reward"] = self.intrinsic_reward
        return mods

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimizers whose state goes into the checkpoint (name -> optimizer)."""
        opts = dict(self.registry.optimizers)
        if self.intrinsic_reward is not None:
            for name, opt in self.intrinsic_reward.optimizers().items():
                opts[f"intrinsic_reward.{name}"] = opt
        return opts

    def extra_state(self) -> dict[str, StateValue]:
        """Registered extra values (name -> number or tensor), as saved in checkpoints."""
        return {name: get() for name, (get, _) in self.registry.values.items()}

    def checkpoint_files(self) -> dict[str, FileWriter]:
        """Extra files a checkpoint holds beside weights and state, as ``{file name:
        writer(path)}`` (off-policy agents: the replay storage). They are written inside the new
        checkpoint before it replaces the old one, so a checkpoint is always complete."""
        return {}

    def restore_checkpoint_files(self, directory: Path) -> None:  # noqa: B027 (optional hook)
        """Read back what :meth:`checkpoint_files` wrote (called by every load path)."""

    def set_extra_state(self, name: str, value: Any) -> None:
        """Restore the extra value ``name`` (from a checkpoint)."""
        self.registry.values[name][1](value)

    def primitives(self) -> dict[str, Configurable | None]:
        """Constructor primitives recorded in ``config.json`` (name -> primitive or None)."""
        return {
            "policy": self.policy,
            "augmentation": self.augmentation,
            "intrinsic_reward": self.intrinsic_reward,
        }

    # ----------------------------------------------------------------- compute backend
    @property
    def backend(self) -> Backend:
        """The compute backend the agent runs on (``config.compute``)."""
        return self._backend

    def set_compute(self, compute: str) -> None:
        """Switch the compute backend (``"reference"``, ``"fast"``, ``"compile"``); optimizer
        state carries over (the fused and plain Adam share one layout)."""
        backend = resolve(compute)
        self.config.compute = backend.name
        self._backend = backend
        self._compiled.clear()
        self.backend_report = BackendReport(type(self).__name__, backend.name)
        for name, opt in self.registry.optimizers.items():
            set_fused(opt, backend.name != "reference")
            self.backend_report.record(
                f"optimizer {name}", _describe_optimizer(opt), self._optimizer_fallback(opt)
            )
        for terms, prefix in self._recorded_terms:
            self.record_loss_terms(terms, prefix)
        if self._records_modules:
            self.record_modules()

    @property
    def use_fused_kernels(self) -> bool:
        """Whether the agent runs on the ``fast`` backend (kept for older code: setting it to
        False switches to ``reference``, True to ``fast``)."""
        return self._backend.name == "fast"

    @use_fused_kernels.setter
    def use_fused_kernels(self, value: bool) -> None:
        self.set_compute("fast" if value else "reference")

    def new_optimizer(
        self, params: Sequence[nn.Parameter], lr: float, eps: float = 1e-8
    ) -> torch.optim.Optimizer:
        """The optimizer for ``params`` (hook): Adam, fused except on ``reference``."""
        fused = False if self._backend.name == "reference" else None  # None: where supported
        return FlatAdam(params, lr=lr, eps=eps, fused=fused)

    def _optimizer_fallback(self, optimizer: torch.optim.Optimizer) -> str | None:
        group = optimizer.param_groups[0]
        if self._backend.name != "reference" and group.get("fused") is False:
            return "the fused Adam kernel does not support these parameters"
        return None

    def record_modules(self) -> None:
        """Note in :attr:`backend_report` which of the policy's modules run a hand-written
        kernel on this backend and why the others do not (again after :meth:`set_compute`)."""
        self._records_modules = True
        for name, module in self.policy.named_modules():
            describe = getattr(module, "kernel_status", None)
            if callable(describe):
                how, reason = describe(self._backend)
                self.backend_report.record(f"policy.{name}" if name else "policy", how, reason)

    def record_loss_terms(self, terms: Sequence[LossTerm], prefix: str = "") -> None:
        """Note in :attr:`backend_report` how each loss term is differentiated (again after
        :meth:`set_compute`)."""
        if (terms, prefix) not in self._recorded_terms:
            self._recorded_terms.append((terms, prefix))
        for term in terms:
            status = type(term).closed_form_status()
            if not self._backend.closed_form:
                how, reason = "autograd", None
            elif status is None:
                how, reason = "closed-form derivative", None
            else:
                how, reason = "autograd", status
            self.backend_report.record(
                f"loss {prefix}{term.name} ({type(term).__name__})", how, reason
            )

    def compile_update(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` wrapped in ``torch.compile`` on the ``compile`` backend (cached as ``name``;
        CUDA graphs through ``mode="reduce-overhead"`` on a CUDA device), else ``fn``."""
        if not self._backend.compile:
            return fn
        compiled = self._compiled.get(name)
        if compiled is None:
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            compiled = torch.compile(fn, backend=self.config.compiler, mode=mode)
            self._compiled[name] = compiled
            self.backend_report.record(
                f"update {name}", f"torch.compile ({self.config.compiler}, mode={mode})"
            )
        return compiled

    def clip_and_step(self, loss: Any, optimizer: FlatOptimizer | None = None) -> Tensor | None:
        """Zero the gradients of ``optimizer``'s parameters, backpropagate ``loss`` (a
        :class:`~rlkit.losses.Loss` or a tensor), clip and take the optimizer step (hook).
        Returns the gradient norm before clipping when one was computed."""
        if optimizer is None:
            raise TypeError(f"{type(self).__name__}.clip_and_step needs the optimizer to step")
        optimizer.zero_grad()
        loss.backward()
        norm = optimizer.clip()
        optimizer_step(optimizer.optimizer)
        return norm

    # ----------------------------------------------------------------- helpers for prototypes
    def build_primitive(self, kind: str, value: Any, base: type[P], **defaults: Any) -> P | None:
        """Accept a primitive as an object, an id string or an ``{"id": ...}`` spec (from YAML);
        see :func:`rlkit.configurable.build_primitive`."""
        return build_primitive(kind, value, base, type(self).__name__, **defaults)

    def build_actor_critic(self, policy: Any, encoder: Any, distribution: Any) -> ActorCriticPolicy:
        """``policy`` as given (object, id or spec), or the default
        :class:`~rlkit.policies.ActorCritic` built around ``encoder`` / ``distribution``."""
        return building.actor_critic(
            type(self).__name__, self.observation_space, self.action_space, policy, encoder,
            distribution,
        )  # fmt: skip

    def build_batch_primitives(self, augmentation: Any, intrinsic_reward: Any) -> None:
        """Set :attr:`augmentation` and :attr:`intrinsic_reward` (each an object, id, spec or
        None), built for this agent's spaces and moved to its device."""
        name = type(self).__name__
        self.augmentation = building.augmentation(name, augmentation)
        if self.augmentation is not None:
            self.augmentation.to(self.device)
        self.intrinsic_reward = building.intrinsic_reward(
            name, intrinsic_reward, self.observation_space, self.action_space
        )
        if self.intrinsic_reward is not None:
            self.intrinsic_reward.to(self.device)

    def augment(self, obs: Obs) -> Obs:
        """Apply the augmentation (if any) to the image tensors (4-d) of a batch."""
        aug = self.augmentation
        if aug is None:
            return obs
        if isinstance(obs, dict):
            return {k: aug(v, self._generator) if v.dim() == 4 else v for k, v in obs.items()}
        return aug(obs, self._generator)

    def preprocess(self, obs: Obs) -> Obs:
        """What the policy sees: observation normalisation (no statistics update)."""
        return self.obs_normalizer(obs) if self.obs_normalizer is not None else obs

    def obs_to_tensor(self, obs: Any) -> Obs:
        """Env observations (NumPy) as tensors on the agent's device."""
        return obs_to_tensor(obs, self.observation_space, self.device)

    _to_tensor = obs_to_tensor

    def to_env_actions(self, actions: Tensor) -> np.ndarray:
        """Policy actions as the env's NumPy array (the action space's dtype)."""
        array = actions.cpu().numpy()
        dtype = self.action_space.dtype
        return array.astype(dtype) if dtype is not None else array

    _to_env_actions = to_env_actions

    def _reset_env(self) -> Obs:
        """First reset of the training env (seeded when a seed is configured)."""
        seed = self.config.seed
        obs, _ = self.env.reset(seed=seed)
        if seed is not None:
            self.env.action_space.seed(seed)
        return self.obs_to_tensor(obs)

    # ----------------------------------------------------------------- public surface
    def train(
        self: A,
        total_steps: int,
        run_dir: str | Path | None = None,
        progress_bar: bool = True,
        checkpoint_every: int | None = None,
        tensorboard: bool = True,
        wandb: Mapping[str, Any] | None = None,
        callbacks: CallbackLike | Sequence[CallbackLike] | None = None,
    ) -> A:
        """Train until :attr:`global_step` reaches ``total_steps`` (a total, so resumed runs
        continue to the same target) or a callback stops it.

        With ``run_dir`` set, writes ``progress.csv``, TensorBoard scalars and, every
        ``checkpoint_every`` env steps, a checkpoint to ``run_dir/checkpoint``. ``callbacks``
        (:class:`~rlkit.prototypes.callbacks.Callback` objects or functions ``(agent, metrics)``)
        run after every iteration; e.g. ``Evaluate(every=10_000, stop_at=475)`` evaluates on a
        copy of the env and stops at a score.
        """
        check_arguments(
            f"{type(self).__name__}.train",
            {"total_steps": total_steps, "checkpoint_every": checkpoint_every},
            {
                "total_steps": count(integer=True),
                "checkpoint_every": count(integer=True, none=True),
            },
        )
        if total_steps <= self.global_step:
            log.warning(
                "train(total_steps=%d): already at step %d, nothing to do",
                total_steps,
                self.global_step,
            )
            return self
        hooks = [*league_callbacks(self), *as_callbacks(callbacks)]
        self._target_steps = int(total_steps)
        cfg = self.config
        with (
            runtime.num_threads(cfg.num_threads),
            runtime.flush_denormals(cfg.flush_denormals),
            guard.policy(cfg.on_nonfinite),
            use(self.backend),
        ):
            trainer.run_training(
                self,
                total_steps,
                run_dir,
                progress_bar,
                checkpoint_every,
                tensorboard,
                wandb,
                hooks,
            )
        return self

    def acting_path(self) -> ActingPath:
        """The deterministic acting path (normalisation, policy mode, post-processing) as one
        module sharing this agent's weights: what :mod:`rlkit.export` traces."""
        return ActingPath(
            self.policy, self.observation_space, self.action_space, self.obs_normalizer
        )

    @torch.inference_mode()
    @on_backend
    def act(self, obs: Any, deterministic: bool = False) -> np.ndarray:
        """Env-ready actions for a batch of observations (or for a single one); an observation
        that fits neither is an error naming the observation space."""
        owner = f"{type(self).__name__}.act"
        if self.policy.recurrent:
            raise TypeError(
                f"{owner}: the policy is recurrent; use act_with_state(obs, state, "
                "episode_start) and pass back the state it returns"
            )
        actions, _ = self._act(obs, deterministic, None, None, owner)
        return actions

    @torch.inference_mode()
    @on_backend
    def act_with_state(
        self,
        obs: Any,
        state: PolicyState = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, PolicyState]:
        """Env-ready actions and the next recurrent state, for a batch of observations (or a
        single one). ``state=None`` starts fresh episodes; ``episode_start`` (one flag per
        observation: 1 where an episode begins, i.e. the previous step's ``terminated or
        truncated``) resets those rows. The caller keeps the returned state for the next call.
        Feed-forward policies return ``None`` as the state."""
        return self._act(obs, deterministic, state, episode_start, f"{type(self).__name__}.act")

    def _act(
        self, obs: Any, deterministic: bool, state: PolicyState, episode_start: Any, owner: str
    ) -> tuple[np.ndarray, PolicyState]:
        single = check_observation(obs, self.observation_space, owner) is None
        tensor = self.obs_to_tensor(obs)
        if single:
            tensor = (
                tensor.unsqueeze(0)
                if isinstance(tensor, Tensor)
                else {k: v.unsqueeze(0) for k, v in tensor.items()}
            )
        starts = None
        if episode_start is not None:
            starts = torch.as_tensor(
                np.asarray(episode_start, dtype=np.float32), device=self.device
            ).reshape(-1)
        with evaluation_mode(self.policy, deterministic):
            actions, next_state = self.policy.act(
                self.preprocess(tensor), deterministic, state, starts
            )
        out = self.to_env_actions(actions)
        return (out[0] if single else out), next_state

    @on_backend
    def evaluate(
        self,
        episodes: int = 20,
        env: VectorEnv | None = None,
        deterministic: bool = True,
        seed: int | None = None,
        max_episode_steps: int | None = None,
    ) -> dict[str, float]:
        """Run ``episodes`` full episodes and report ``return_mean``, ``return_std``,
        ``length_mean``, ``length_std``, ``episodes`` and ``truncated`` (episodes that ended by
        truncation, the env's time limit or the step cap, rather than by termination).

        Without ``env`` a fresh copy of the training env is built (from how
        :func:`rlkit.envs.make_vec_env` made it), seeded with ``seed`` (default: training seed
        + 10_000) so evaluation never disturbs training episodes. Episodes are spread evenly
        over sub-envs so short episodes are not over-counted. Each episode stops after
        ``max_episode_steps`` steps (default: the env's own time limit, else
        :data:`~rlkit.prototypes.evaluation.DEFAULT_EVAL_STEP_CAP`, Atari's 108_000), so an
        env without a time limit cannot make evaluation run forever.
        """
        owner = f"{type(self).__name__}.evaluate"
        check_arguments(
            owner,
            {"episodes": episodes, "seed": seed, "max_episode_steps": max_episode_steps},
            {
                "episodes": count(integer=True),
                "seed": SEED,
                "max_episode_steps": count(integer=True, none=True),
            },
        )
        if env is not None:
            if not isinstance(env, VectorEnv):
                raise TypeError(
                    f"{owner}: env must be a gymnasium VectorEnv (rlkit.envs.make_vec_env), got "
                    f"{type(env).__name__}"
                )
            for which, mine, theirs in (
                ("observation", self.observation_space, env.single_observation_space),
                ("action", self.action_space, env.single_action_space),
            ):
                if not spaces_equal(mine, theirs):
                    raise ValueError(
                        f"{owner}: the env's {which} space {describe_space(theirs)} is not the "
                        f"agent's {describe_space(mine)}"
                    )
        own_env = env is None
        if env is None:
            env, seed = evaluation.evaluation_env(self, episodes, seed)
        try:
            return evaluation.run_episodes(
                self, env, episodes, deterministic, seed, max_episode_steps
            )
        finally:
            if own_env:
                env.close()

    # ----------------------------------------------------------------- checkpoints
    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write a checkpoint directory (``config.json`` + safetensors); atomic, no pickle."""
        return checkpointing.save_agent(self, path, overwrite)

    @classmethod
    def load(
        cls: type[A],
        path: str | Path,
        env: VectorEnv | None = None,
        trust_code: bool = False,
        **overrides: Any,
    ) -> A:
        """Rebuild an agent from a checkpoint directory and restore weights, optimizer state,
        extra state and counters. ``env`` defaults to a new env made from the recorded env id;
        keyword overrides replace hyperparameters (e.g. ``device="cpu"``) or primitives.

        Nothing in the checkpoint is imported or unpickled: it may name registered agents,
        primitives, goal functions and gymnasium env ids only. An env id ``"module:Env"`` or a
        HER function given as an import path is refused unless ``trust_code=True`` (only for
        checkpoints you trust: importing runs the module's code).

        Loading through a prototype or :class:`Agent` dispatches on the recorded agent id, so
        the module that registers that agent must be imported (``import rlkit.agents`` for
        the reference agents)."""
        directory, config = checkpointing.read_checkpoint(path, trust_code)
        recorded = config.get("agent")
        target: type[Agent] = cls
        if inspect.isabstract(cls):  # Agent.load / a prototype: dispatch on the recorded id
            target = _registered(recorded, directory, config)
        elif recorded is None:
            here = f"{cls.__module__}.{cls.__qualname__}"
            if config.get("agent_class") not in (None, here):
                log.warning(
                    "checkpoint %s was saved by the unregistered class %s; loading it as %s",
                    directory,
                    config.get("agent_class"),
                    here,
                )
        elif recorded != cls.registry_id:
            saved = _registered(recorded, directory, config)
            if not issubclass(cls, saved):
                raise CheckpointError(
                    f"checkpoint {directory} holds a {recorded!r} agent, not "
                    f"{cls.registry_id or cls.__name__!r}; use {saved.__name__}.load or "
                    "rlkit.prototypes.load_agent"
                )
        own_env = env is None
        if env is None:
            env = checkpointing.checkpoint_env(directory, config, trust_code)
        try:
            checkpointing.check_spaces(directory, config, env)
            arguments = checkpointing.constructor_arguments(
                directory, config, target, overrides, trust_code
            )
            agent = target(env, **arguments)
            with reading(f"checkpoint {directory}", trust_code):  # files inside, e.g. replay.h5
                checkpointing.restore_state(agent, directory, config, overrides)
        except BaseException:
            if own_env:
                env.close()
            raise
        return agent  # type: ignore[return-value]

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload this agent to a Hugging Face Hub repo; see :func:`rlkit.hub.push_to_hub`."""
        from rlkit.hub import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    @classmethod
    def from_pretrained(
        cls: type[A], repo_id_or_dir: str | Path, env: VectorEnv | None = None, **kwargs: Any
    ) -> A:
        """Load an agent from a Hub repo id or a local directory (checkpoint, run or downloaded
        repo); see :func:`rlkit.hub.from_pretrained`."""
        from rlkit.hub import from_pretrained

        cls_arg = cls if cls.registry_id else Agent
        return from_pretrained(repo_id_or_dir, env, cls=cls_arg, **kwargs)  # type: ignore[return-value]


#: agent id -> class; filled by ``@AGENTS.register`` (the reference agents register when
#: ``rlkit.agents`` is imported).
AGENTS: Registry[Agent] = Registry("agent", Agent)


def _registered(agent_id: Any, directory: Path, config: Mapping[str, Any]) -> type[Agent]:
    if agent_id is None:
        raise CheckpointError(
            f"checkpoint {directory} was saved by the unregistered agent class "
            f"{config.get('agent_class', '?')}; load it with that class's load(), or register "
            "the class with @rlkit.prototypes.AGENTS.register('<id>')"
        )
    if str(agent_id) in AGENTS:
        return AGENTS.get(str(agent_id))
    raise CheckpointError(
        f"checkpoint {directory} holds a {agent_id!r} agent, which is not registered; import the "
        f"module that registers it first (the reference agents: import rlkit.agents). "
        f"Registered: {', '.join(AGENTS) or '(none)'}"
    )


def load_agent(
    path: str | Path, env: VectorEnv | None = None, trust_code: bool = False, **overrides: Any
) -> Agent:
    """Load any registered agent from its checkpoint (the class is read from ``config.json``;
    import ``rlkit.agents`` first for the reference agents). ``trust_code`` as in
    :meth:`Agent.load`: without it nothing the checkpoint names is imported."""
    return Agent.load(path, env=env, trust_code=trust_code, **overrides)


def _describe_optimizer(optimizer: torch.optim.Optimizer) -> str:
    group = optimizer.param_groups[0]
    kind = type(optimizer).__name__
    if group.get("fused"):
        return f"{kind} (fused kernel)"
    if "fused" in group:
        return f"{kind} (plain)"
    return kind


def _has_image(space: spaces.Space[Any]) -> bool:
    return building.has_image(space)


__all__ = ["AGENTS", "Agent", "AgentConfig", "load_agent", "on_backend"]


def declares(cls: type, base: type, flag: str, hooks: Sequence[str]) -> bool:
    """Whether every class between ``cls`` and ``base`` keeps the capability ``flag``: each
    declares ``flag = True`` in its own body or overrides none of ``hooks`` (where the
    capability lives), and none declares it False. So a subclass that replaces such a hook
    never keeps the capability silently."""
    for klass in cls.__mro__:
        if klass is base:
            return True
        own = vars(klass)
        if flag in own:
            if not own[flag]:
                return False
        elif any(hook in own for hook in hooks):
            return False
    return False
