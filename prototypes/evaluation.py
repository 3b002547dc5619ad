"""Evaluation: run whole episodes with an agent's acting path and report their statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from rlkit.envs import env_spec_of, make_vec_env
from rlkit.utils.nn import evaluation_mode

if TYPE_CHECKING:
    from .base import Agent


def evaluation_env(agent: Agent, episodes: int, seed: int | None) -> tuple[VectorEnv, int | None]:
    """A fresh copy of ``agent``'s training env (as :func:`rlkit.envs.make_vec_env` made it)
    and the seed to reset it with (default: the training seed + 10_000)."""
    spec = env_spec_of(agent.env)
    if spec is None:
        raise ValueError(
            "evaluate: the training env was not built by rlkit.envs.make_vec_env, so pass env= "
            "(a VectorEnv) to evaluate on"
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
    return env, seed


@torch.inference_mode()
def run_episodes(
    agent: Agent, env: VectorEnv, episodes: int, deterministic: bool, seed: int | None
) -> dict[str, float]:
    """``episodes`` full episodes spread evenly over the sub-envs (so short episodes are not
    over-counted), acting with the agent's policy; returns ``return_mean``, ``return_std``,
    ``length_mean``, ``length_std`` and ``episodes``."""
    n = env.num_envs
    targets = np.array([(episodes + i) // n for i in range(n)])
    obs_np, _ = env.reset(seed=seed)
    policy = agent.policy
    state = policy.initial_state(n)
    episode_start = torch.ones(n, device=agent.device)
    with evaluation_mode(policy, deterministic):
        return _episodes(agent, env, obs_np, state, episode_start, deterministic, targets)


def _episodes(
    agent: Agent,
    env: VectorEnv,
    obs_np: Any,
    state: Any,
    episode_start: torch.Tensor,
    deterministic: bool,
    targets: np.ndarray,
) -> dict[str, float]:
    n, policy = env.num_envs, agent.policy
    done_counts = np.zeros(n, dtype=np.int64)
    returns: list[float] = []
    lengths: list[int] = []
    run_ret = np.zeros(n)
    run_len = np.zeros(n, dtype=np.int64)
    while (done_counts < targets).any():
        obs = agent.preprocess(agent.obs_to_tensor(obs_np))
        actions, state = policy.act(obs, deterministic, state, episode_start)
        obs_np, rewards, terminated, truncated, _ = env.step(agent.to_env_actions(actions))
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
        episode_start = torch.as_tensor(dones, dtype=torch.float32, device=agent.device)
    return {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "length_mean": float(np.mean(lengths)),
        "length_std": float(np.std(lengths)),
        "episodes": float(len(returns)),
    }


__all__ = ["evaluation_env", "run_episodes"]
