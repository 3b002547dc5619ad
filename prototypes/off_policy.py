"""Off-policy prototype: collect into a replay storage, then take gradient steps on sampled batches.

One cycle is ``train_freq`` vectorised env steps (random actions until ``learning_starts`` env
steps, then the agent's exploration), followed by ``gradient_steps`` updates once
``learning_starts`` is reached. Each update samples a batch, applies the batch hooks
(observation normalisation, augmentation, intrinsic reward), calls the agent's :meth:`update`
and moves the target networks. Parameters of each optimizer live in one flat buffer
(:class:`FlatOptimizer`) and each target network in another (:class:`TargetNetwork`), so an
optimizer step and a soft target update are one tensor operation each.
"""

from __future__ import annotations

import copy
import ctypes
import dataclasses
import logging
import os
import platform
import sys
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from gymnasium.vector import VectorEnv
from torch import Tensor, nn

from rlkit.augmentations.base import Augmentation
from rlkit.checkpoint import CheckpointError, find_checkpoint
from rlkit.configurable import Configurable
from rlkit.encoders.base import Encoder
from rlkit.envs import check_same_step_autoreset
from rlkit.policies.base import Policy
from rlkit.rewards.base import IntrinsicReward, TransitionBatch
from rlkit.storages.base import Storage
from rlkit.storages.replay import ReplayBatch, ReplayStorage
from rlkit.storages.samplers import PrioritizedSampler
from rlkit.types import Obs
from rlkit.utils.optim import FlatAdam, clip_grad_norm_, flatten_parameters
from rlkit.utils.tensors import obs_map

from .base import Agent, AgentConfig

log = logging.getLogger("rlkit")

#: file name of the replay storage inside a checkpoint directory (``save_replay=True``).
REPLAY_FILE = "replay.h5"

_MALLOC_TUNED = False


def retain_freed_memory(
    mmap_threshold: int = 16 << 20, trim_threshold: int = 256 << 20, top_pad: int = 16 << 20
) -> bool:
    """Ask glibc's allocator to keep freed memory for reuse (``mallopt``; process-wide).

    A gradient step allocates and frees the same few hundred-KiB activation tensors every
    time. With glibc's defaults blocks of that size are ``mmap``-ed, or the heap top is handed
    back to the OS, so each step faults the pages in again (~200 page faults per SAC step with
    256-256 networks, several percent of its time). Raising the mmap and trim thresholds keeps
    up to ``trim_threshold`` bytes of freed memory in the process instead. Returns whether the
    settings are in effect (False off glibc). Idempotent.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        # M_TRIM_THRESHOLD = -1, M_TOP_PAD = -2, M_MMAP_THRESHOLD = -3 (malloc.h)
        settings = ((-3, mmap_threshold), (-1, trim_threshold), (-2, top_pad))
        _MALLOC_TUNED = all(libc.mallopt(param, value) == 1 for param, value in settings)
    except (OSError, AttributeError):
        return False
    if _MALLOC_TUNED:
        log.debug("glibc malloc keeps freed memory (mallopt): fewer page faults per update")
    return _MALLOC_TUNED


A = TypeVar("A", bound="OffPolicyAgent")


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
    per_beta: float = 0.4
    per_beta_final: float = 1.0
    #: transitions over which beta anneals to per_beta_final; None keeps it at per_beta.
    per_beta_steps: int | None = None
    lr: float = 3e-4
    #: hidden layer sizes of the default policy's networks; None: the policy's default.
    hidden_sizes: list[int] | None = None
    #: global gradient-norm clip per optimizer; None disables.
    max_grad_norm: float | None = None
    #: include the replay storage (HDF5) in checkpoints, so a resumed run keeps its data.
    save_replay: bool = False
    #: env steps per training iteration (one progress/log row each).
    log_interval: int = 1000
    #: on CPU, let glibc keep freed memory for reuse (see :func:`retain_freed_memory`); the
    #: setting is process-wide and stays after the agent is gone.
    retain_freed_memory: bool = True

    def __post_init__(self) -> None:
        checks = {
            "buffer_size": self.buffer_size >= 1,
            "learning_starts": self.learning_starts >= 0,
            "batch_size": self.batch_size >= 1,
            "train_freq": self.train_freq >= 1,
            "gradient_steps": self.gradient_steps >= 1 or self.gradient_steps == -1,
            "gamma": 0.0 <= self.gamma <= 1.0,
            "tau": 0.0 < self.tau <= 1.0,
            "target_update_interval": self.target_update_interval >= 1,
            "n_step": self.n_step >= 1,
            "lr": self.lr > 0,
            "max_grad_norm": self.max_grad_norm is None or self.max_grad_norm > 0,
            "per_alpha": self.per_alpha >= 0,
            "per_beta": 0.0 <= self.per_beta <= 1.0,
            "per_beta_final": 0.0 <= self.per_beta_final <= 1.0,
            "per_beta_steps": self.per_beta_steps is None or self.per_beta_steps >= 1,
            "log_interval": self.log_interval >= 1,
            "hidden_sizes": self.hidden_sizes is None or all(h >= 1 for h in self.hidden_sizes),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                "invalid hyperparameter(s): "
                + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
                + " (buffer_size, batch_size, train_freq, target_update_interval, n_step, "
                "log_interval >= 1; learning_starts >= 0; gradient_steps >= 1 or -1; gamma, "
                "per_beta, per_beta_final in [0, 1]; tau in (0, 1]; lr, max_grad_norm > 0)"
            )


class FlatOptimizer:
    """Adam over the trainable parameters of some modules, laid out in one flat buffer.

    :meth:`step` is zero-grad, backward, optional norm clip and the Adam update, each one tensor
    operation however many parameters there are (see
    :func:`rlkit.utils.optim.flatten_parameters`).
    """

    def __init__(
        self,
        modules: Sequence[nn.Module],
        lr: float,
        max_grad_norm: float | None = None,
        eps: float = 1e-8,
    ) -> None:
        self.flat = flatten_parameters(nn.ModuleList(modules))
        self.optimizer = FlatAdam([self.flat], lr=lr, eps=eps)
        self.max_grad_norm = max_grad_norm
        # torch.optim wraps step() for profiler labels and step hooks (nobody registers hooks
        # on this private optimizer); calling the undecorated step saves ~10 us per update
        step = type(self.optimizer).step
        self._step = getattr(step, "__wrapped__", step).__get__(self.optimizer)

    def step(self, loss: Tensor) -> None:
        """Backpropagate ``loss`` into this buffer only and take one Adam step."""
        grad = self.flat.grad
        assert grad is not None
        grad.zero_()
        loss.backward()
        if self.max_grad_norm is not None:
            clip_grad_norm_(grad, self.max_grad_norm)
        self._step()

    def step_manual(self, accumulate: Callable[[], None]) -> None:
        """Zero the gradient buffer, let ``accumulate`` add gradients computed by hand into the
        parameters' ``.grad`` views, clip and step (the autograd-free twin of :meth:`step`)."""
        grad = self.flat.grad
        assert grad is not None
        grad.zero_()
        accumulate()
        if self.max_grad_norm is not None:
            clip_grad_norm_(grad, self.max_grad_norm)
        self._step()

    def step_with_grad(self, grad: Tensor) -> None:
        """One Adam step with a gradient computed by hand (``grad`` shaped like the buffer, or
        a scalar for a one-parameter buffer): no autograd graph for trivial losses."""
        flat_grad = self.flat.grad
        assert flat_grad is not None
        flat_grad.copy_(grad.detach().reshape(flat_grad.shape))
        if self.max_grad_norm is not None:
            clip_grad_norm_(flat_grad, self.max_grad_norm)
        self._step()


class TargetNetwork(nn.Module):
    """A frozen copy of ``source`` that follows it by Polyak averaging.

    ``track`` (default: all of ``source``) names the sub-modules whose parameters move; the
    rest of the copy keeps its initial weights (SAC's target needs only the critics). The
    copy's parameters live in one buffer, and the tracked online parameters are grouped into
    runs that are contiguous in memory (they are after :class:`FlatOptimizer`), so an update is
    one ``lerp_`` (soft) or ``copy_`` (hard) per run.
    """

    def __init__(self, source: nn.Module, track: Sequence[nn.Module] | None = None) -> None:
        super().__init__()
        self.net = copy.deepcopy(source)
        online = list(source.parameters())
        target = list(self.net.parameters())
        self._runs: list[tuple[Tensor, Tensor]] = []
        if not target:
            return
        flat = torch.empty(
            sum(p.numel() for p in target), dtype=target[0].dtype, device=target[0].device
        )
        offset = 0
        with torch.no_grad():
            for p in target:
                n = p.numel()
                flat[offset : offset + n].copy_(p.reshape(-1))
                p.data = flat[offset : offset + n].view_as(p)
                p.grad = None
                p.requires_grad_(False)
                offset += n
        tracked = {id(p) for m in track for p in m.parameters()} if track is not None else None
        pairs: list[tuple[Tensor, Tensor]] = [
            (o, t)
            for o, t in zip(online, target, strict=True)
            if tracked is None or id(o) in tracked
        ]
        self._runs = _contiguous_runs(pairs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.net(*args, **kwargs)

    @torch.no_grad()
    def update(self, tau: float) -> None:
        """``target <- (1 - tau) * target + tau * online`` (``tau == 1``: copy)."""
        for online, target in self._runs:
            if tau >= 1.0:
                target.copy_(online)
            else:
                target.lerp_(online, tau)


def _contiguous_runs(pairs: list[tuple[Tensor, Tensor]]) -> list[tuple[Tensor, Tensor]]:
    """Merge consecutive ``(online, target)`` parameter pairs that are adjacent in memory on
    both sides into single 1-D views."""
    runs: list[tuple[Tensor, Tensor]] = []
    start = 0
    for i in range(1, len(pairs) + 1):
        if i < len(pairs) and _adjacent(pairs[i - 1], pairs[i]):
            continue
        chunk = pairs[start:i]
        numel = sum(o.numel() for o, _ in chunk)
        first_online, first_target = chunk[0]
        runs.append((_span(first_online, numel), _span(first_target, numel)))
        start = i
    return runs


def _adjacent(a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor]) -> bool:
    for x, y in zip(a, b, strict=True):
        if not (x.is_contiguous() and y.is_contiguous()):
            return False
        if x.untyped_storage().data_ptr() != y.untyped_storage().data_ptr():
            return False
        if y.storage_offset() != x.storage_offset() + x.numel():
            return False
    return True


def _span(first: Tensor, numel: int) -> Tensor:
    """A 1-D view of ``numel`` elements starting at ``first`` in its storage."""
    return first.detach().as_strided((numel,), (1,), first.storage_offset())


class OffPolicyAgent(Agent):
    """Owns the replay loop; agents implement :meth:`default_policy`, :meth:`setup` and
    :meth:`update`.

    Primitives: ``policy`` (default from :meth:`default_policy`, with ``encoder`` swapped in);
    ``storage``, any :class:`~rlkit.storages.ReplayStorage` (object, id or spec; default: one of
    ``buffer_size`` transitions with the configured n-step and sampler); ``augmentation``,
    applied to sampled ``obs`` and ``next_obs`` (independently drawn); ``intrinsic_reward``,
    whose bonus is computed on each sampled batch and added to its rewards before the TD target.
    Each may be an object, a registered id or a spec dict.

    Agents register their optimizers with :meth:`add_optimizer` and their target networks with
    :meth:`add_target` in :meth:`setup`; both are checkpointed. :attr:`num_updates` counts
    gradient steps.
    """

    Config = OffPolicyConfig
    config: OffPolicyConfig
    policy_parts = ("encoder",)
    #: the policy base class this agent trains.
    policy_class: ClassVar[type[Policy]] = Policy
    #: let agents compute gradients by hand where their policy supports it (set False on an
    #: agent to force the autograd path; both give the same updates up to rounding).
    use_fused_kernels: bool = True

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
        if self.config.retain_freed_memory and self.device.type == "cpu":
            retain_freed_memory()
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
        self.policy = built.to(self.device)
        self.build_batch_primitives(augmentation, intrinsic_reward)
        self.storage = self._build_storage(storage)
        self._custom_storage = storage is not None
        self._generator = torch.Generator()
        self.np_random = np.random.default_rng(self.config.seed)
        if self.config.seed is not None:
            self._generator.manual_seed(self.config.seed)
        self._optimizers: dict[str, FlatOptimizer] = {}
        self._targets: dict[str, TargetNetwork] = {}
        self._extra_modules: dict[str, nn.Module] = {}
        self._obs_np: Any = None  # the training env's current raw observation
        self._round_steps = 0  # vector steps collected in the current train_freq round
        self._fused_checks: dict[str, bool] | None = None  # fused_kernels_apply's, per round
        self.setup()

    # ----------------------------------------------------------------- agent hooks
    @abstractmethod
    def default_policy(self, encoder: Encoder | None) -> Policy:
        """The policy built when none is given (``encoder`` swapped in if not None)."""

    @abstractmethod
    def setup(self) -> None:
        """Build optimizers (:meth:`add_optimizer`), targets (:meth:`add_target`, after the
        optimizers) and any extra state; called at the end of ``__init__``."""

    @abstractmethod
    def update(self, batch: ReplayBatch) -> Mapping[str, Tensor | float]:
        """One gradient step on a prepared batch; returns metrics (tensors are fine: they are
        read once per iteration). :attr:`num_updates` already counts this step."""

    def explore(self, obs: Obs) -> np.ndarray:
        """Env actions for the collection step after warm-up (default: the policy's
        non-deterministic ``act``)."""
        actions, _ = self.policy.act(obs, deterministic=False)
        return self._to_env_actions(actions)

    def explore_numpy(self, obs: Any) -> np.ndarray | None:
        """:meth:`explore` computed in NumPy straight from the env's observation, or None where
        the agent cannot (then :meth:`explore` runs on a tensor). Agents whose default policy
        can act in NumPy override it: an env step then makes one or two torch calls instead of
        a dozen, which matters most right after an update has evicted torch's code and data
        from the CPU caches. Not used when observations are normalised. Default: None."""
        return None

    def on_episode_end(self, dones: np.ndarray) -> None:
        """Called after an env step in which some episodes ended (``dones`` [num_envs] bool)."""
        if self.intrinsic_reward is not None:
            self.intrinsic_reward.reset_episodes(torch.as_tensor(dones, device=self.device))

    def target_update_due(self) -> bool:
        """Whether the targets move after the current update."""
        return self.num_updates % self.config.target_update_interval == 0

    def update_targets(self) -> None:
        """Polyak-update every registered target with ``tau``."""
        for target in self._targets.values():
            target.update(self.config.tau)

    def iteration_metrics(self) -> dict[str, float]:
        """Extra values logged once per iteration (e.g. the exploration rate)."""
        return {}

    def begin_round(self, batches: ReplayBatch) -> None:
        """Called with all of a round's batches when they are sampled together (uniform
        sampling; the round's updates then take consecutive ``batch_size`` slices of them, as
        views), before its first update: agents may precompute what stays fixed during the
        round, e.g. DQN's target-network values. Default: nothing."""

    def fused_kernels_apply(self, name: str, check: Callable[[], bool]) -> bool:
        """Whether the hand-written path ``name`` may run: :attr:`use_fused_kernels` is on and
        ``check()`` (e.g. "the policy is a plain float32 CPU MLP without hooks") holds. Within
        a round of updates the answer is computed once."""
        if not self.use_fused_kernels:
            return False
        checks = self._fused_checks
        if checks is None:  # outside a round (a direct update() call): check every time
            return bool(check())
        cached = checks.get(name)
        if cached is None:
            cached = checks[name] = bool(check())
        return cached

    # ----------------------------------------------------------------- registration helpers
    def add_optimizer(
        self, name: str, modules: Sequence[nn.Module], lr: float | None = None
    ) -> FlatOptimizer:
        """A :class:`FlatOptimizer` over ``modules`` (lr and grad clip from the config),
        checkpointed as ``name``."""
        opt = FlatOptimizer(
            modules, self.config.lr if lr is None else lr, self.config.max_grad_norm
        )
        self._optimizers[name] = opt
        return opt

    def add_target(
        self, name: str, source: nn.Module, track: Sequence[nn.Module] | None = None
    ) -> TargetNetwork:
        """A :class:`TargetNetwork` of ``source`` updated by :meth:`update_targets` and saved
        as ``name``. Register the optimizers first: the target groups the flat buffers."""
        target = TargetNetwork(source, track)
        self._targets[name] = target
        return target

    def add_module(self, name: str, module: nn.Module) -> nn.Module:
        """Checkpoint ``module`` (e.g. a learned temperature) under ``name``."""
        self._extra_modules[name] = module.to(self.device)
        return module

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
        defaults: dict[str, Any] = {
            "observation_space": self.observation_space,
            "action_space": self.action_space,
            "capacity": cfg.buffer_size,
            "num_envs": self.num_envs,
            "n_step": cfg.n_step,
            "gamma": cfg.gamma,
            "device": str(self.device),
        }
        if sampler is not None:
            defaults["sampler"] = sampler
        built = self.build_primitive("storage", storage, Storage, **defaults)
        if built is None:
            built = ReplayStorage(**defaults)
        return self._check_storage(built)

    def _check_storage(self, storage: Any) -> ReplayStorage:
        """``storage`` if it is a ReplayStorage laid out for this agent, else a clear error."""
        name = type(self).__name__
        if not isinstance(storage, ReplayStorage):
            raise TypeError(f"{name} needs a ReplayStorage, got {type(storage).__name__}")
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
        return storage

    @property
    def prioritized(self) -> bool:
        """Whether the storage samples by priority (so updates report TD errors)."""
        return isinstance(self.storage.sampler, PrioritizedSampler)

    def report_td_errors(self, batch: ReplayBatch, td_errors: Tensor) -> None:
        """Give ``|td_errors|`` ([B]) of ``batch`` to a prioritized storage as new priorities
        (nothing to do for uniform sampling)."""
        if self.prioritized:
            self.storage.update_priorities(batch.indices, td_errors.detach().abs().cpu())

    # ----------------------------------------------------------------- Agent contract
    def modules(self) -> dict[str, nn.Module]:
        mods: dict[str, nn.Module] = {"policy": self.policy}
        mods.update(self._targets)
        mods.update(self._extra_modules)
        for name, mod in (
            ("obs_normalizer", self.obs_normalizer),
            ("intrinsic_reward", self.intrinsic_reward),
        ):
            if mod is not None:
                mods[name] = mod
        return mods

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts: dict[str, torch.optim.Optimizer] = {
            name: group.optimizer for name, group in self._optimizers.items()
        }
        if self.intrinsic_reward is not None:
            for name, opt in self.intrinsic_reward.optimizers().items():
                opts[f"intrinsic_reward.{name}"] = opt
        return opts

    def primitives(self) -> dict[str, Configurable | None]:
        return {
            "policy": self.policy,
            "augmentation": self.augmentation,
            "intrinsic_reward": self.intrinsic_reward,
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
            if self.global_step >= cfg.learning_starts and len(self.storage) > 0:
                metrics = self.train_round(per_round)
        out = {k: float(v) for k, v in metrics.items()}
        out.update(self.iteration_metrics())
        out["replay/size"] = float(len(self.storage))
        return out

    def _current_obs(self) -> Any:
        if self._obs_np is None:
            seed = self.config.seed
            obs, _ = self.env.reset(seed=seed)
            if seed is not None:
                self.env.action_space.seed(seed)
            self._obs_np = obs
            if self.obs_normalizer is not None:
                self.obs_normalizer.update(self._to_tensor(obs))
        return self._obs_np

    def random_actions(self) -> np.ndarray:
        """Uniformly random env actions for every env (the warm-up policy)."""
        return np.asarray(self.env.action_space.sample())

    def collect(self, num_steps: int) -> None:
        """Step the envs ``num_steps`` times and add the transitions to :attr:`storage`."""
        env, storage, cfg = self.env, self.storage, self.config
        normalizer = self.obs_normalizer
        obs = self._current_obs()
        for _ in range(num_steps):
            actions: np.ndarray | None = None
            if self.global_step < cfg.learning_starts:
                actions = self.random_actions()
            elif normalizer is None:
                actions = self.explore_numpy(obs)
            if actions is None:
                with torch.inference_mode():
                    actions = self.explore(self.preprocess(self._to_tensor(obs)))
            next_obs, rewards, terminated, truncated, info = env.step(actions)
            dones = np.logical_or(terminated, truncated)
            self.episodes.step(rewards, dones, info)
            if dones.any():
                storage.add(
                    obs, actions, rewards, self._true_next_obs(next_obs, info, dones),
                    terminated, truncated,
                )  # fmt: skip
                self.on_episode_end(dones)
            else:
                storage.add(obs, actions, rewards, next_obs, terminated, truncated)
            if normalizer is not None:
                normalizer.update(self._to_tensor(next_obs))
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

    def train_round(self, num_updates: int) -> Mapping[str, Tensor | float]:
        """``num_updates`` gradient steps; returns the last one's metrics.

        Nothing is added to the storage during a round, so with uniform sampling the round's
        batches are drawn in one call (the same i.i.d. draws as one call per step, with one
        call's overhead) and sliced; prioritized sampling draws each batch after the previous
        update's new priorities.
        """
        metrics: Mapping[str, Tensor | float] = {}
        size = self.config.batch_size
        self._fused_checks = {}  # a round checks fused-kernel eligibility once
        try:
            if num_updates > 1 and not self.prioritized:
                batches = self.storage.sample(size * num_updates, self._generator)
                self.begin_round(batches)
                for i in range(num_updates):
                    metrics = self.train_step(_batch_slice(batches, i * size, (i + 1) * size))
            else:
                for _ in range(num_updates):
                    metrics = self.train_step()
        finally:
            self._fused_checks = None
        return metrics

    def train_step(self, batch: ReplayBatch | None = None) -> Mapping[str, Tensor | float]:
        """Sample (unless ``batch`` is given), prepare, update, move the targets; returns the
        update's metrics."""
        if batch is None:
            batch = self.storage.sample(self.config.batch_size, self._generator)
        batch, transitions, metrics = self.prepare_batch(batch)
        self.num_updates += 1
        metrics = {**metrics, **self.update(batch)}
        if self.target_update_due():
            self.update_targets()
        if self.intrinsic_reward is not None and transitions is not None:
            for key, value in self.intrinsic_reward.update(transitions).items():
                metrics[f"intrinsic/{key}"] = value
        return metrics

    def prepare_batch(
        self, batch: ReplayBatch
    ) -> tuple[ReplayBatch, TransitionBatch | None, dict[str, Tensor | float]]:
        """Normalise and augment observations, add the intrinsic bonus to the rewards; returns
        the batch, the transitions the intrinsic reward trains on, and metrics."""
        metrics: dict[str, Tensor | float] = {}
        if self.obs_normalizer is not None:
            batch = dataclasses.replace(
                batch, obs=self.preprocess(batch.obs), next_obs=self.preprocess(batch.next_obs)
            )
        if self.augmentation is not None:
            batch = dataclasses.replace(
                batch, obs=self.augment(batch.obs), next_obs=self.augment(batch.next_obs)
            )
        transitions = None
        if self.intrinsic_reward is not None:
            transitions = TransitionBatch(
                obs=batch.obs, actions=batch.actions, next_obs=batch.next_obs, dones=batch.dones
            )
            bonus = self.intrinsic_reward.reward(transitions, self.global_step)
            batch = dataclasses.replace(batch, rewards=batch.rewards + bonus)
            metrics["intrinsic/reward_mean"] = bonus.mean()
        return batch, transitions, metrics

    def augment(self, obs: Obs) -> Obs:
        """Apply the augmentation (if any) to the image tensors of a sampled batch."""
        aug = self.augmentation
        if aug is None:
            return obs
        if isinstance(obs, dict):
            return {k: aug(v, self._generator) if v.dim() == 4 else v for k, v in obs.items()}
        return aug(obs, self._generator)

    # ----------------------------------------------------------------- checkpoints
    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the checkpoint; with ``save_replay`` the replay storage goes into it as
        ``replay.h5`` (written beside it first, moved in after the checkpoint's rename)."""
        if not self.config.save_replay:
            return super().save(path, overwrite)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.parent / f".{target.name}.{REPLAY_FILE}.{os.getpid()}"
        self.storage.save(staged)
        try:
            out = super().save(target, overwrite)
            os.replace(staged, out / REPLAY_FILE)
        finally:
            staged.unlink(missing_ok=True)
        return out

    @classmethod
    def load(cls: type[A], path: str | Path, env: VectorEnv | None = None, **overrides: Any) -> A:
        """:meth:`Agent.load`, plus the replay storage when the checkpoint has one and
        ``save_replay`` is on."""
        agent = super().load(path, env=env, **overrides)
        if isinstance(agent, OffPolicyAgent):
            agent._restore_replay(find_checkpoint(path))
        return agent

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


__all__ = [
    "FlatOptimizer",
    "OffPolicyAgent",
    "OffPolicyConfig",
    "TargetNetwork",
    "retain_freed_memory",
]
