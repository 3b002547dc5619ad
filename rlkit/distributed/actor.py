"""The actor: a vector env and a copy of the policy that produces :class:`Trajectory` unrolls.

One :class:`ActorWorker` runs wherever a backend puts it: in the learner's process, in a
subprocess, or in a Ray actor. It is built from an :class:`ActorSpec` (the env's id and
arguments, the policy's JSON spec) and acts with the weights the learner broadcasts, tagged with
the learner's version so that the learner can measure policy lag.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from rlkit import guard
from rlkit.configurable import from_json
from rlkit.device import resolve_device
from rlkit.distributions.base import Distribution
from rlkit.envs.make import make_vec_env
from rlkit.envs.resume import restore_vector_env, vector_env_state
from rlkit.envs.stats import reports_games
from rlkit.envs.wrapper_registry import WrapperLike
from rlkit.normalization import ObsNormalizer
from rlkit.policies.base import Policy
from rlkit.policies.state import as_tuple
from rlkit.utils.tensors import obs_map, obs_to_tensor, stack_obs

from .behaviour import Behaviour
from .trajectory import Trajectory, TrajectoryBatch

#: where an actor is between unrolls, :meth:`ActorWorker.position`: (JSON state, arrays);
#: picklable, so backends pass it between processes.
ActorPosition = tuple[dict[str, Any], dict[str, np.ndarray]]


@dataclass
class PolicyWeights:
    """A versioned snapshot of what actors need to act: module name -> CPU state dict."""

    #: the learner's update count when the snapshot was taken.
    version: int
    #: ``{"policy": state_dict, "obs_normalizer": state_dict (when normalising)}``.
    state: dict[str, dict[str, Tensor]]

    def num_bytes(self) -> int:
        """Size of the tensors (what a broadcast moves per actor)."""
        return sum(t.numel() * t.element_size() for s in self.state.values() for t in s.values())


@dataclass
class ActorSpec:
    """Everything an actor process needs to build itself (picklable; no learner objects)."""

    actor_id: int
    #: env id or zero-argument factory, as given to :func:`rlkit.envs.make_vec_env`.
    env: str | Callable[[], gym.Env[Any, Any]]
    num_envs: int
    num_steps: int
    #: seed of the actor's first reset (sub-env i gets ``seed + i``); None: unseeded.
    seed: int | None = None
    #: seed of the action-sampling generator; None: nondeterministic.
    sample_seed: int | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    wrappers: tuple[WrapperLike, ...] = ()
    #: the env family's preprocessing, as given to :func:`rlkit.envs.make_vec_env`.
    preprocessing: bool | dict[str, Any] = True
    asynchronous: bool = False
    #: the policy as a JSON spec (``rlkit.configurable.to_json``), rebuilt in the actor...
    policy_spec: Any = None
    #: ...or the policy module itself (in-process actors, unregistered policies).
    policy_module: Policy | None = None
    normalize_obs: bool = False
    clip_obs: float = 10.0
    device: str = "cpu"
    #: torch intra-op threads for the actor's process; None leaves them (in-process actors).
    num_threads: int | None = None
    #: how many times this actor slot was (re)started before (0 for the first start).
    incarnation: int = 0
    #: how the actor acts with the policy and what it adds to unrolls; None: sample the
    #: policy's own distribution (:class:`~rlkit.distributed.Behaviour`).
    behaviour: Behaviour | None = None


class ActorWorker:
    """Steps a vector env with the latest policy weights, ``num_steps`` per :meth:`collect`."""

    def __init__(self, spec: ActorSpec) -> None:
        if spec.num_threads is not None:
            torch.set_num_threads(spec.num_threads)
        self.spec = spec
        self.actor_id = spec.actor_id
        self.device = resolve_device(spec.device)
        self.env = make_vec_env(
            spec.env,
            num_envs=spec.num_envs,
            asynchronous=spec.asynchronous,
            env_kwargs=spec.env_kwargs,
            wrappers=spec.wrappers,
            preprocessing=spec.preprocessing,
        )
        self.observation_space = self.env.single_observation_space
        self.action_space = self.env.single_action_space
        policy = spec.policy_module
        policy = from_json(spec.policy_spec) if policy is None else copy.deepcopy(policy)
        self.behaviour = spec.behaviour if spec.behaviour is not None else Behaviour()
        family = getattr(policy, "distribution", None)
        if not isinstance(policy, Policy) or not isinstance(family, Distribution):
            raise TypeError(
                f"actor {spec.actor_id}: expected a Policy with a `distribution` (an "
                f"ActorCriticPolicy, or a Q-value policy with an EpsilonGreedy behaviour), got "
                f"{type(policy).__name__}"
            )
        self.policy: Policy = policy.to(self.device).eval()
        self.policy.requires_grad_(False)
        #: the policy's action family (layout, dtype, env post-processing).
        self.family: Distribution = family
        self.obs_normalizer = (
            ObsNormalizer(self.observation_space, spec.clip_obs).to(self.device)
            if spec.normalize_obs
            else None
        )
        self.generator = torch.Generator(device=self.device)
        if spec.sample_seed is not None:
            self.generator.manual_seed(spec.sample_seed)
        else:
            self.generator.seed()
        self.version = -1
        #: env steps this actor has taken (all its sub-envs), for messages.
        self.env_steps = 0
        obs, _ = self.env.reset(seed=spec.seed)
        if spec.seed is not None:
            self.env.action_space.seed(spec.seed)
        self._obs = self._to_tensor(obs)
        self._games = reports_games(self.env)  # episodes are counted where games end
        self._returns = np.zeros(spec.num_envs, dtype=np.float64)
        self._lengths = np.zeros(spec.num_envs, dtype=np.int64)
        #: recurrent policies: the state entering the next step and its reset flags
        #: (carried across unrolls; None / unused for feed-forward policies).
        self._state: Any = self.policy.initial_state(spec.num_envs)
        self._starts = torch.ones(spec.num_envs, device=self.device)

    def _to_tensor(self, obs: Any) -> Any:
        return obs_to_tensor(obs, self.observation_space, self.device)

    def ping(self) -> int:
        """The actor id (a cheap call to check the actor is up)."""
        return self.actor_id

    def set_weights(self, weights: PolicyWeights) -> None:
        """Load a broadcast snapshot and adopt its version."""
        self.policy.load_state_dict(weights.state["policy"])
        if self.obs_normalizer is not None:
            self.obs_normalizer.load_state_dict(weights.state["obs_normalizer"])
        self.version = weights.version

    @torch.no_grad()  # not inference_mode: in-process learners train on these tensors
    def collect(self, weights: PolicyWeights | None, version: int) -> Trajectory:
        """One unroll with policy ``version``; ``weights`` may be None when already loaded."""
        if weights is not None:
            self.set_weights(weights)
        if self.version != version:
            raise RuntimeError(
                f"actor {self.actor_id} holds policy version {self.version}, asked to act with "
                f"version {version} but given no weights"
            )
        start = time.perf_counter()
        steps, envs = self.spec.num_steps, self.spec.num_envs
        dist_family = self.family
        obs = self._obs
        obs_buf = obs_map(lambda x: x.new_empty((steps, *x.shape)), obs)
        actions_buf = torch.empty(
            (steps, envs, *dist_family.action_shape),
            dtype=dist_family.action_dtype,
            device=self.device,
        )
        log_probs = torch.empty((steps, envs), device=self.device)
        rewards = np.empty((steps, envs), dtype=np.float32)
        terminated = np.empty((steps, envs), dtype=bool)
        truncated = np.empty((steps, envs), dtype=bool)
        final_steps: list[tuple[int, int]] = []
        final_items: list[Any] = []
        final_states: list[tuple[Tensor, ...]] = []
        returns: list[float] = []
        lengths: list[int] = []
        action_dtype = self.action_space.dtype
        recurrent = self.policy.recurrent
        initial_state = as_tuple(self._state)
        starts_buf = torch.empty((steps, envs), device=self.device) if recurrent else None
        for t in range(steps):
            _assign(obs_buf, t, obs)
            x = self.obs_normalizer(obs) if self.obs_normalizer is not None else obs
            if starts_buf is not None:
                starts_buf[t] = self._starts
            dist, self._state = self.behaviour.act_distribution(
                self.policy, x, self._state, self._starts
            )
            actions = dist.sample(self.generator)
            actions_buf[t] = actions
            log_probs[t] = dist.log_prob(actions)
            env_actions = dist_family.postprocess(actions).cpu().numpy()
            if action_dtype is not None:
                env_actions = env_actions.astype(action_dtype)
            next_obs, reward, term, trunc, info = self.env.step(env_actions)
            guard.check_env(next_obs, reward, self.env_steps)
            self.env_steps += envs
            rewards[t] = reward
            terminated[t] = term
            truncated[t] = np.logical_and(trunc, np.logical_not(term))
            done = np.logical_or(term, trunc)
            self._returns += reward
            self._lengths += 1
            if done.any():
                final = info.get("final_obs")
                if final is None:
                    raise RuntimeError(
                        "the env finished an episode without info['final_obs']; actors build "
                        "their envs with rlkit.envs.make_vec_env (same-step autoreset)"
                    )
                for i in np.flatnonzero(done):
                    final_steps.append((t, int(i)))
                    final_items.append(final[i])
                    if recurrent:
                        final_states.append(tuple(s[i] for s in as_tuple(self._state)))
                if "_episode" in info:  # the env's statistics (whole games for Atari)
                    mask = np.asarray(info["_episode"], dtype=bool)
                    returns.extend(float(r) for r in np.asarray(info["episode"]["r"])[mask])
                    lengths.extend(int(n) for n in np.asarray(info["episode"]["l"])[mask])
                elif not self._games:
                    returns.extend(float(r) for r in self._returns[done])
                    lengths.extend(int(n) for n in self._lengths[done])
                self._returns[done] = 0.0
                self._lengths[done] = 0
            obs = self._to_tensor(next_obs)
            if recurrent:
                self._starts = torch.as_tensor(done, dtype=torch.float32, device=self.device)
        self._obs = obs
        if final_items:
            final_obs = self._to_tensor(stack_obs(final_items, self.observation_space))
        else:
            final_obs = obs_map(lambda x: x[:0], obs)
        cpu = torch.device("cpu")
        data = TrajectoryBatch(
            obs=obs_map(lambda x: x.to(cpu), obs_buf),
            actions=actions_buf.to(cpu),
            rewards=torch.from_numpy(rewards),
            terminated=torch.from_numpy(terminated),
            truncated=torch.from_numpy(truncated),
            log_probs=log_probs.to(cpu),
            bootstrap_obs=obs_map(lambda x: x.to(cpu), obs),
            final_steps=torch.tensor(final_steps, dtype=torch.long).reshape(-1, 2),
            final_obs=obs_map(lambda x: x.to(cpu), final_obs),
            versions=torch.full((envs,), version, dtype=torch.long),
        )
        if starts_buf is not None:
            data.episode_starts = starts_buf.to(cpu)
            data.initial_state = tuple(s.to(cpu) for s in initial_state)
            data.bootstrap_state = tuple(s.to(cpu) for s in as_tuple(self._state))
            data.final_states = tuple(
                torch.stack([row[k] for row in final_states]).to(cpu)
                if final_states
                else s.new_empty((0, *s.shape[1:])).to(cpu)
                for k, s in enumerate(initial_state)
            )
        data.extras = {k: v.to(cpu) for k, v in self.behaviour.annotate(self.policy, data).items()}
        return Trajectory(
            data=data,
            actor_id=self.actor_id,
            version=version,
            incarnation=self.spec.incarnation,
            episode_returns=returns,
            episode_lengths=lengths,
            collect_s=time.perf_counter() - start,
        )

    def position(self) -> ActorPosition:
        """Where this actor is between unrolls, for exact resume: JSON (its env's reset
        records, :func:`rlkit.envs.resume.vector_env_state`, and its step count) and arrays
        (the env's ``env.*``, the sampling generator's state and the unfinished episodes'
        sums)."""
        env_state, env_arrays = vector_env_state(self.env)
        arrays = {f"env.{k}": v for k, v in env_arrays.items()}
        arrays["generator"] = self.generator.get_state().numpy()
        arrays["returns"] = self._returns.copy()
        arrays["lengths"] = self._lengths.copy()
        if self.policy.recurrent:
            arrays["starts"] = self._starts.cpu().numpy()
            for i, s in enumerate(as_tuple(self._state)):
                arrays[f"state.{i}"] = s.cpu().numpy()
        return {"env": env_state, "env_steps": self.env_steps}, arrays

    def restore_position(
        self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> str | None:
        """Put this actor where :meth:`position` was taken (its env replayed, see
        :mod:`rlkit.envs.resume`). Returns None, or why it could not (the actor then goes on
        from its own reset)."""
        env_arrays = {k[4:]: v for k, v in arrays.items() if k.startswith("env.")}
        obs, problem = restore_vector_env(self.env, state["env"], env_arrays)
        if obs is None:
            obs, _ = self.env.reset(seed=self.spec.seed)
            self._obs = self._to_tensor(obs)
            self._starts = torch.ones_like(self._starts)  # fresh episodes: reset the state
            return problem
        self.generator.set_state(torch.from_numpy(np.array(arrays["generator"])))
        self._obs = self._to_tensor(obs)
        self._returns = np.array(arrays["returns"], dtype=np.float64)
        self._lengths = np.array(arrays["lengths"], dtype=np.int64)
        self.env_steps = int(state["env_steps"])
        if self.policy.recurrent and "starts" in arrays:
            self._starts = torch.as_tensor(np.array(arrays["starts"]), device=self.device)
            self._state = tuple(
                torch.as_tensor(np.array(arrays[f"state.{i}"]), device=self.device)
                for i in range(len(as_tuple(self._state)))
            )
        return None

    def close(self) -> None:
        """Close the env (idempotent)."""
        self.env.close()


def _assign(buffer: Any, t: int, value: Any) -> None:
    if isinstance(buffer, dict):
        for k, v in buffer.items():
            v[t] = value[k]
    else:
        buffer[t] = value


__all__ = ["ActorPosition", "ActorSpec", "ActorWorker", "PolicyWeights"]
