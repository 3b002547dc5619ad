"""The agent base: the public surface every agent shares (train, evaluate, act, save, load).

Prototypes (on-policy, off-policy, distributed) subclass :class:`Agent` and implement one
training iteration; reference agents subclass a prototype and implement their update.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from torch import nn

from rlkit.augmentations.base import Augmentation
from rlkit.checkpoint import (
    CheckpointError,
    find_checkpoint,
    load_module_state,
    optimizer_from_tensors,
    optimizer_to_tensors,
    read_config,
    read_tensors,
    split_prefix,
    write_checkpoint,
)
from rlkit.config import config_to_dict, make_config
from rlkit.configurable import Configurable, build_primitive, from_json, to_json
from rlkit.device import resolve_device
from rlkit.distributions.base import Distribution
from rlkit.encoders.base import Encoder
from rlkit.envs import EpisodeTracker, env_spec_of, make_vec_env
from rlkit.export.acting import ActingPath
from rlkit.logging import Logger, ProgressBar
from rlkit.normalization import ObsNormalizer
from rlkit.policies.actor_critic import ActorCritic
from rlkit.policies.base import ActorCriticPolicy, Policy
from rlkit.registry import Registry
from rlkit.rewards.base import IntrinsicReward
from rlkit.spaces import check_space, is_image_space, space_from_dict, space_to_dict, spaces_equal
from rlkit.types import Obs
from rlkit.utils.seeding import seed_everything
from rlkit.utils.tensors import obs_to_tensor
from rlkit.version import __version__

log = logging.getLogger("rlkit")

A = TypeVar("A", bound="Agent")
P = TypeVar("P", bound=Configurable)

MODEL_FILE = "model.safetensors"
TRAINING_STATE_FILE = "training_state.safetensors"


@dataclasses.dataclass
class AgentConfig:
    """Hyperparameters every agent has."""

    #: seeds Python, NumPy, torch and the env's first reset; None leaves them as they are.
    seed: int | None = None
    #: "auto" (cuda, npu, mps, cpu in that order), "cpu", "cuda", "npu", ...
    device: str = "auto"
    #: torch intra-op threads; None picks 1 on CPU for non-image observations (small networks
    #: run fastest single-threaded) and leaves torch's default otherwise.
    num_threads: int | None = None
    #: whiten non-image observations with running statistics (kept in the checkpoint).
    normalize_obs: bool = False
    #: clip whitened observations to +-clip_obs.
    clip_obs: float = 10.0


class Agent(ABC):
    """Base class of every agent (see the module doc)."""

    #: registry id ("ppo"); set by ``@AGENTS.register``.
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

    policy: Policy
    augmentation: Augmentation | None = None
    intrinsic_reward: IntrinsicReward | None = None

    def __init__(self, env: VectorEnv, config: Any = None, **hyperparameters: Any) -> None:
        name = type(self).__name__
        if not isinstance(env, VectorEnv):
            raise TypeError(
                f"{name}: env must be a gymnasium VectorEnv (build one with "
                f"rlkit.envs.make_vec_env), got {type(env).__name__}"
            )
        self.config = make_config(type(self).Config, config, hyperparameters, name)
        self.env = env
        self.num_envs = int(env.num_envs)
        self.observation_space = env.single_observation_space
        self.action_space = env.single_action_space
        check_space(self.observation_space, self.observation_spaces, "observation space", name)
        check_space(self.action_space, self.action_spaces, "action space", name)
        self.device = resolve_device(self.config.device)
        self._set_threads()
        if self.config.seed is not None:
            seed_everything(self.config.seed)
        self.obs_normalizer: ObsNormalizer | None = (
            ObsNormalizer(self.observation_space, self.config.clip_obs).to(self.device)
            if self.config.normalize_obs
            else None
        )
        self.global_step = 0
        self.num_updates = 0
        self.episodes = EpisodeTracker(self.num_envs)
        self._obs: Obs | None = None  # current (preprocessed) observation of the training env
        self._target_steps = 0

    # ----------------------------------------------------------------- subclass contract
    @abstractmethod
    def iteration(self) -> dict[str, float]:
        """Collect experience and update once; advance :attr:`global_step`; return metrics."""

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """Modules whose state goes into ``model.safetensors`` (name -> module)."""

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimizers whose state goes into the checkpoint (name -> optimizer)."""

    @abstractmethod
    def primitives(self) -> dict[str, Configurable | None]:
        """Constructor primitives recorded in ``config.json`` (name -> primitive or None)."""

    # ----------------------------------------------------------------- helpers for prototypes
    def _set_threads(self) -> None:
        threads = self.config.num_threads
        if threads is None and self.device.type == "cpu" and not _has_image(self.observation_space):
            threads = 1
        if threads is not None and threads != torch.get_num_threads():
            torch.set_num_threads(int(threads))

    def build_primitive(self, kind: str, value: Any, base: type[P], **defaults: Any) -> P | None:
        """Accept a primitive as an object, an id string or an ``{"id": ...}`` spec (from YAML);
        see :func:`rlkit.configurable.build_primitive`."""
        return build_primitive(kind, value, base, type(self).__name__, **defaults)

    def build_actor_critic(self, policy: Any, encoder: Any, distribution: Any) -> ActorCriticPolicy:
        """``policy`` as given (object, id or spec), or the default :class:`ActorCritic` built
        around ``encoder`` / ``distribution``; refuses both at once and non-actor-critics."""
        name = type(self).__name__
        obs_space, act_space = self.observation_space, self.action_space
        if policy is not None and (encoder is not None or distribution is not None):
            raise ValueError(
                f"{name}: pass either policy= or encoder=/distribution= (which build the "
                "default policy), not both"
            )
        built = self.build_primitive(
            "policy", policy, Policy, observation_space=obs_space, action_space=act_space
        )
        if built is None:
            built = ActorCritic(
                obs_space,
                act_space,
                encoder=self.build_primitive(
                    "encoder", encoder, Encoder, observation_space=obs_space
                ),
                distribution=self.build_primitive(
                    "distribution", distribution, Distribution, action_space=act_space
                ),
            )
        if not isinstance(built, ActorCriticPolicy):
            raise TypeError(f"{name} needs an ActorCriticPolicy, got {type(built).__name__}")
        return built

    def build_batch_primitives(self, augmentation: Any, intrinsic_reward: Any) -> None:
        """Set :attr:`augmentation` and :attr:`intrinsic_reward` (each an object, id, spec or
        None), built for this agent's spaces and moved to its device."""
        self.augmentation = self.build_primitive("augmentation", augmentation, Augmentation)
        if self.augmentation is not None:
            self.augmentation.to(self.device)
        self.intrinsic_reward = self.build_primitive(
            "intrinsic_reward",
            intrinsic_reward,
            IntrinsicReward,
            observation_space=self.observation_space,
            action_space=self.action_space,
        )
        if self.intrinsic_reward is not None:
            self.intrinsic_reward.to(self.device)

    def preprocess(self, obs: Obs) -> Obs:
        """What the policy sees: observation normalisation (no statistics update)."""
        return self.obs_normalizer(obs) if self.obs_normalizer is not None else obs

    def _to_tensor(self, obs: Any) -> Obs:
        return obs_to_tensor(obs, self.observation_space, self.device)

    def _reset_env(self) -> Obs:
        """First reset of the training env (seeded when a seed is configured)."""
        seed = self.config.seed
        obs, _ = self.env.reset(seed=seed)
        if seed is not None:
            self.env.action_space.seed(seed)
        return self._to_tensor(obs)

    # ----------------------------------------------------------------- public surface
    def train(
        self: A,
        total_steps: int,
        run_dir: str | Path | None = None,
        progress_bar: bool = True,
        checkpoint_every: int | None = None,
        tensorboard: bool = True,
        wandb: Mapping[str, Any] | None = None,
    ) -> A:
        """Train until :attr:`global_step` reaches ``total_steps`` (a total, so resumed runs
        continue to the same target).

        With ``run_dir`` set, writes ``progress.csv``, TensorBoard scalars and, every
        ``checkpoint_every`` env steps, a checkpoint to ``run_dir/checkpoint``.
        """
        if total_steps <= self.global_step:
            log.warning(
                "train(total_steps=%d): already at step %d, nothing to do",
                total_steps,
                self.global_step,
            )
            return self
        self._target_steps = int(total_steps)
        logger = None
        if run_dir is not None:
            logger = Logger(
                run_dir, tensorboard=tensorboard, wandb=wandb, config=config_to_dict(self.config)
            )
        bar = ProgressBar(total_steps, self.global_step, progress_bar, type(self).__name__)
        next_checkpoint = (
            self.global_step + checkpoint_every if checkpoint_every and run_dir else None
        )
        start_step, start_time = self.global_step, time.perf_counter()
        try:
            while self.global_step < total_steps:
                before = self.global_step
                metrics = self.iteration()
                elapsed = time.perf_counter() - start_time
                sps = (self.global_step - start_step) / max(elapsed, 1e-9)
                ret = self.episodes.return_mean
                bar.update(self.global_step - before, sps, ret)
                if logger is not None:
                    row = {
                        "time/sps": sps,
                        "time/elapsed_s": elapsed,
                        "time/updates": float(self.num_updates),
                        **metrics,
                    }
                    if ret is not None:
                        row["rollout/return_mean"] = ret
                        row["rollout/length_mean"] = float(self.episodes.length_mean or 0.0)
                    logger.write(self.global_step, row)
                if next_checkpoint is not None and self.global_step >= next_checkpoint:
                    assert run_dir is not None and checkpoint_every is not None
                    self.save(Path(run_dir) / "checkpoint", overwrite=True)
                    next_checkpoint += checkpoint_every
        finally:
            bar.close()
            if logger is not None:
                logger.close()
        return self

    def acting_path(self) -> ActingPath:
        """The deterministic acting path (normalisation, policy mode, post-processing) as one
        module sharing this agent's weights: what :mod:`rlkit.export` traces."""
        return ActingPath(
            self.policy, self.observation_space, self.action_space, self.obs_normalizer
        )

    @torch.inference_mode()
    def act(self, obs: Any, deterministic: bool = False) -> np.ndarray:
        """Env-ready actions for a batch of observations (or for a single one)."""
        single = _is_single(obs, self.observation_space)
        tensor = self._to_tensor(obs)
        if single:
            tensor = (
                tensor.unsqueeze(0)
                if isinstance(tensor, torch.Tensor)
                else {k: v.unsqueeze(0) for k, v in tensor.items()}
            )
        actions, _ = self.policy.act(self.preprocess(tensor), deterministic=deterministic)
        out = self._to_env_actions(actions)
        return out[0] if single else out

    def _to_env_actions(self, actions: torch.Tensor) -> np.ndarray:
        array = actions.cpu().numpy()
        dtype = self.action_space.dtype
        return array.astype(dtype) if dtype is not None else array

    def evaluate(
        self,
        episodes: int = 20,
        env: VectorEnv | None = None,
        deterministic: bool = True,
        seed: int | None = None,
    ) -> dict[str, float]:
        """Run ``episodes`` full episodes and report ``return_mean``, ``return_std``,
        ``length_mean``, ``length_std`` and ``episodes``.

        Without ``env`` a fresh copy of the training env is built (from how
        :func:`rlkit.envs.make_vec_env` made it), seeded with ``seed`` (default: training seed
        + 10_000) so evaluation never disturbs training episodes. Episodes are spread evenly
        over sub-envs so short episodes are not over-counted.
        """
        if episodes < 1:
            raise ValueError(f"evaluate: episodes must be >= 1, got {episodes}")
        own_env = env is None
        if env is None:
            spec = env_spec_of(self.env)
            if spec is None:
                raise ValueError(
                    "evaluate: the training env was not built by rlkit.envs.make_vec_env, so "
                    "pass env= (a VectorEnv) to evaluate on"
                )
            if seed is None:
                seed = (spec.seed if spec.seed is not None else 0) + 10_000
            env = make_vec_env(
                spec.env,
                num_envs=min(episodes, spec.num_envs),
                seed=None,
                env_kwargs=spec.env_kwargs,
                wrappers=spec.wrappers,
            )
        try:
            return self._run_episodes(env, episodes, deterministic, seed)
        finally:
            if own_env:
                env.close()

    @torch.inference_mode()
    def _run_episodes(
        self, env: VectorEnv, episodes: int, deterministic: bool, seed: int | None
    ) -> dict[str, float]:
        n = env.num_envs
        targets = np.array([(episodes + i) // n for i in range(n)])
        done_counts = np.zeros(n, dtype=np.int64)
        returns: list[float] = []
        lengths: list[int] = []
        run_ret = np.zeros(n)
        run_len = np.zeros(n, dtype=np.int64)
        obs_np, _ = env.reset(seed=seed)
        state = self.policy.initial_state(n)
        episode_start = torch.ones(n, device=self.device)
        while (done_counts < targets).any():
            obs = self.preprocess(self._to_tensor(obs_np))
            actions, state = self.policy.act(obs, deterministic, state, episode_start)
            obs_np, rewards, terminated, truncated, _ = env.step(self._to_env_actions(actions))
            run_ret += rewards
            run_len += 1
            dones = np.logical_or(terminated, truncated)
            for i in np.flatnonzero(dones):
                if done_counts[i] < targets[i]:
                    returns.append(float(run_ret[i]))
                    lengths.append(int(run_len[i]))
                    done_counts[i] += 1
            run_ret[dones] = 0.0
            run_len[dones] = 0
            episode_start = torch.as_tensor(dones, dtype=torch.float32, device=self.device)
        return {
            "return_mean": float(np.mean(returns)),
            "return_std": float(np.std(returns)),
            "length_mean": float(np.mean(lengths)),
            "length_std": float(np.std(lengths)),
            "episodes": float(len(returns)),
        }

    # ----------------------------------------------------------------- checkpoints
    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write a checkpoint directory (``config.json`` + safetensors); atomic, no pickle."""
        spec = env_spec_of(self.env)
        model: dict[str, torch.Tensor] = {}
        for name, module in self.modules().items():
            model.update({f"{name}.{k}": v.clone() for k, v in module.state_dict().items()})
        training: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
        optim_meta: dict[str, Any] = {}
        for name, opt in self.optimizers().items():
            tensors, meta = optimizer_to_tensors(opt, f"optim.{name}")
            training.update(tensors)
            optim_meta[name] = meta
        config = {
            "agent": type(self).registry_id,
            "rlkit_version": __version__,
            "hyperparameters": config_to_dict(self.config),
            "primitives": {k: to_json(v, k) for k, v in self.primitives().items()},
            "spaces": {
                "observation": space_to_dict(self.observation_space),
                "action": space_to_dict(self.action_space),
            },
            "env": None
            if spec is None or spec.env_id is None
            else {
                "id": spec.env_id,
                "num_envs": spec.num_envs,
                "seed": spec.seed,
                "kwargs": to_json(spec.env_kwargs, "env_kwargs"),
            },
            "counters": {"global_step": self.global_step, "num_updates": self.num_updates},
            "optimizers": optim_meta,
        }
        return write_checkpoint(
            path, config, {MODEL_FILE: model, TRAINING_STATE_FILE: training}, overwrite=overwrite
        )

    @classmethod
    def load(cls: type[A], path: str | Path, env: VectorEnv | None = None, **overrides: Any) -> A:
        """Rebuild an agent from a checkpoint directory and restore weights, optimizer state
        and counters. ``env`` defaults to a new env made from the recorded env id; keyword
        overrides replace hyperparameters (e.g. ``device="cpu"``) or primitives."""
        path = find_checkpoint(path)
        config = read_config(path)
        agent_id = config.get("agent")
        target: type[Agent] = cls
        if cls.registry_id is None:  # Agent.load / a prototype: dispatch on the recorded id
            target = AGENTS.get(str(agent_id))
        elif agent_id != cls.registry_id:
            raise CheckpointError(
                f"checkpoint {path} holds a {agent_id!r} agent, not {cls.registry_id!r}; use "
                f"{AGENTS.get(str(agent_id)).__name__}.load or rlkit.prototypes.load_agent"
            )
        if env is None:
            env_info = config.get("env")
            if not env_info:
                raise CheckpointError(
                    f"checkpoint {path} was trained on an env given as a callable; pass env="
                )
            env = make_vec_env(
                env_info["id"],
                num_envs=int(env_info["num_envs"]),
                seed=env_info.get("seed"),
                env_kwargs=from_json(env_info.get("kwargs") or {}),
            )
        for which, env_space in (
            ("observation", env.single_observation_space),
            ("action", env.single_action_space),
        ):
            saved = space_from_dict(config["spaces"][which])
            if not spaces_equal(saved, env_space):
                raise CheckpointError(
                    f"checkpoint {path} was trained with {which} space {saved!r}, but the env's "
                    f"is {env_space!r}"
                )
        hyper = dict(config["hyperparameters"])
        saved_prims = dict(config.get("primitives", {}))
        if "policy" in saved_prims and any(k in overrides for k in target.policy_parts):
            del saved_prims["policy"]  # the given parts rebuild the default policy
        primitives: dict[str, Any] = {}
        for key, spec in saved_prims.items():
            if key in overrides or spec is None:
                continue
            try:
                primitives[key] = from_json(spec)
            except ValueError as e:
                raise CheckpointError(
                    f"cannot rebuild the {key} of checkpoint {path}: {e}; pass {key}=... to load()"
                ) from None
        for key, value in overrides.items():
            if key in saved_prims or key in target.policy_parts:
                primitives[key] = value
            else:
                hyper[key] = value
        agent = target(env, **hyper, **primitives)
        model = read_tensors(path, MODEL_FILE)
        modules = agent.modules()
        unknown = {k.split(".", 1)[0] for k in model} - set(modules)
        if unknown:
            raise CheckpointError(
                f"checkpoint {path} has weights for unknown parts {sorted(unknown)}"
            )
        for name, module in modules.items():
            load_module_state(module, split_prefix(model, name), f"{target.__name__}.{name}")
        training = read_tensors(path, TRAINING_STATE_FILE)
        for name, opt in agent.optimizers().items():
            meta = config.get("optimizers", {}).get(name)
            if meta is None:
                raise CheckpointError(f"checkpoint {path} has no state for optimizer {name!r}")
            optimizer_from_tensors(opt, training, meta, f"optim.{name}")
        if "lr" in overrides:  # a new learning rate beats the one saved with the optimizer
            for opt in agent.optimizers().values():
                for group in opt.param_groups:
                    group["lr"] = float(overrides["lr"])
        if "rng.torch" in training:
            torch.set_rng_state(training["rng.torch"])
        counters = config.get("counters", {})
        agent.global_step = int(counters.get("global_step", 0))
        agent.num_updates = int(counters.get("num_updates", 0))
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

        cls_arg = cls if cls.registry_id else None
        return from_pretrained(repo_id_or_dir, env, cls=cls_arg, **kwargs)


#: agent id -> class; filled by ``@AGENTS.register`` in rlkit.agents.
AGENTS: Registry[Agent] = Registry("agent", Agent)


def load_agent(path: str | Path, env: VectorEnv | None = None, **overrides: Any) -> Agent:
    """Load any agent from its checkpoint (the class is read from ``config.json``)."""
    import rlkit.agents  # noqa: F401  (registers the reference agents)

    return Agent.load(path, env=env, **overrides)


def _has_image(space: spaces.Space[Any]) -> bool:
    if isinstance(space, spaces.Dict):
        return any(is_image_space(s) for s in space.spaces.values())
    return is_image_space(space)


def _is_single(obs: Any, space: spaces.Space[Any]) -> bool:
    if isinstance(space, spaces.Dict):
        key = next(iter(space.spaces))
        return np.ndim(obs[key]) == len(space.spaces[key].shape or ())
    return np.ndim(obs) == len(space.shape or ())
