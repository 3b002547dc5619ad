"""Evaluation: run whole episodes with an agent's acting path and report their statistics.

Every episode is capped at a number of steps (:func:`rlkit.envs.introspect.episode_step_cap`:
the caller's ``max_episode_steps``, else the env's own time limit, else
:data:`DEFAULT_EVAL_STEP_CAP`), so an env without a time limit or a policy that stands still
cannot keep an evaluation running forever: an episode that reaches the cap ends there as a
truncated one, its return so far recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from rlkit.envs import env_spec_of, is_multi_agent, make_vec_env
from rlkit.envs.introspect import DEFAULT_EVAL_STEP_CAP, episode_step_cap
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
        preprocessing=spec.preprocessing,
        self_play=spec.self_play,
        evaluation=True,  # whole games with true scores (Atari), see rlkit.envs.families
    )
    return env, seed


@torch.inference_mode()
def run_episodes(
    agent: Agent,
    env: VectorEnv,
    episodes: int,
    deterministic: bool,
    seed: int | None,
    max_episode_steps: int | None = None,
) -> dict[str, float]:
    """``episodes`` full episodes spread evenly over the sub-envs (so short episodes are not
    over-counted), acting with the agent's policy; returns ``return_mean``, ``return_std``,
    ``length_mean``, ``length_std``, ``episodes`` and ``truncated`` (how many of them ended by
    truncation, the env's time limit or the step cap, rather than by termination).

    Each episode is capped at ``max_episode_steps`` steps (default: the env's time limit, else
    :data:`DEFAULT_EVAL_STEP_CAP`); a capped sub-env is reset on its own (gymnasium's
    ``reset_mask``), so the whole run takes at most ``ceil(episodes / num_envs) * cap``
    steps."""
    n = env.num_envs
    cap = episode_step_cap(env, max_episode_steps)
    targets = np.array([(episodes + i) // n for i in range(n)])
    obs_np, _ = env.reset(seed=seed)
    policy = agent.policy
    state = policy.initial_state(n)
    episode_start = torch.ones(n, device=agent.device)
    with evaluation_mode(policy, deterministic):
        if is_multi_agent(env):
            return _agent_episodes(agent, env, obs_np, state, deterministic, episodes, cap)
        return _episodes(agent, env, obs_np, state, episode_start, deterministic, targets, cap)


def _agent_episodes(
    agent: Agent,
    env: Any,
    obs_np: Any,
    state: Any,
    deterministic: bool,
    episodes: int,
    cap: int,
) -> dict[str, float]:
    """Episodes of multi-agent rows (:mod:`rlkit.envs.agent_rows`), counted per copy of the
    env: ``return_mean`` is the mean per-agent episode return (one agent's summed rewards,
    averaged over agents and episodes), ``team_return_mean`` the mean of their sum, and
    ``return_mean/<agent>`` each agent's own."""
    copies, n_agents = env.num_copies, env.num_agents
    targets = np.array([(episodes + i) // copies for i in range(copies)])
    done_counts = np.zeros(copies, dtype=np.int64)
    run_ret = np.zeros((copies, n_agents))
    run_len = np.zeros(copies, dtype=np.int64)
    finished: list[np.ndarray] = []  # per episode: each agent's return
    lengths: list[int] = []
    truncations = 0
    episode_start = torch.ones(env.num_envs, device=agent.device)
    while (done_counts < targets).any():
        obs = agent.preprocess(agent.obs_to_tensor(obs_np))
        actions, state = agent.policy.act(obs, deterministic, state, episode_start)
        obs_np, rewards, terminated, truncated, info = env.step(agent.to_env_actions(actions))
        run_ret += np.asarray(rewards).reshape(copies, n_agents)
        run_len += 1
        ended = np.zeros(copies, dtype=bool)
        if "_team_episode" in info:
            ended = np.asarray(info["_team_episode"], dtype=bool)
        capped: np.ndarray = (run_len >= cap) & ~ended & (done_counts < targets)
        cut = np.asarray(np.asarray(truncated, dtype=bool).reshape(copies, n_agents).any(axis=1))
        for c in np.flatnonzero(ended | capped):
            if done_counts[c] < targets[c]:
                finished.append(run_ret[c].copy())
                lengths.append(int(run_len[c]))
                truncations += int(capped[c] or cut[c])
                done_counts[c] += 1
        if capped.any():  # the env will not reset these itself
            obs_np, _ = env.reset(options={"reset_mask": np.repeat(capped, n_agents)})
        ends = ended | capped
        run_ret[ends] = 0.0
        run_len[ends] = 0
        starts = np.logical_or(terminated, truncated) | np.repeat(capped, n_agents)
        episode_start = torch.as_tensor(starts, dtype=torch.float32, device=agent.device)
    per_agent = np.stack(finished)  # [episodes, agents]
    out = {
        "return_mean": float(per_agent.mean()),
        "return_std": float(per_agent.std()),
        "team_return_mean": float(per_agent.sum(axis=1).mean()),
        "team_return_std": float(per_agent.sum(axis=1).std()),
        "length_mean": float(np.mean(lengths)),
        "length_std": float(np.std(lengths)),
        "episodes": float(len(finished)),
        "truncated": float(truncations),
    }
    for i, name in enumerate(env.agents):
        out[f"return_mean/{name}"] = float(per_agent[:, i].mean())
    return out


def _episodes(
    agent: Agent,
    env: VectorEnv,
    obs_np: Any,
    state: Any,
    episode_start: torch.Tensor,
    deterministic: bool,
    targets: np.ndarray,
    cap: int,
) -> dict[str, float]:
    n, policy = env.num_envs, agent.policy
    done_counts = np.zeros(n, dtype=np.int64)
    returns: list[float] = []
    lengths: list[int] = []
    truncations = 0
    run_ret = np.zeros(n)
    run_len = np.zeros(n, dtype=np.int64)
    while (done_counts < targets).any():
        obs = agent.preprocess(agent.obs_to_tensor(obs_np))
        actions, state = policy.act(obs, deterministic, state, episode_start)
        obs_np, rewards, terminated, truncated, _ = env.step(agent.to_env_actions(actions))
        run_ret += rewards
        run_len += 1
        dones = np.logical_or(terminated, truncated)
        # the cap ends an episode the env did not end, where one is still wanted from it
        capped = (run_len >= cap) & ~dones & (done_counts < targets)
        ends = dones | capped
        for i in np.flatnonzero(ends):
            if done_counts[i] < targets[i]:
                returns.append(float(run_ret[i]))
                lengths.append(int(run_len[i]))
                truncations += int(not terminated[i])
                done_counts[i] += 1
        again = capped & (done_counts < targets)
        if again.any():  # the env will not reset these itself: start their next episode
            obs_np, _ = env.reset(options={"reset_mask": again})
        run_ret[ends] = 0.0
        run_len[ends] = 0
        episode_start = torch.as_tensor(ends, dtype=torch.float32, device=agent.device)
    return {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "length_mean": float(np.mean(lengths)),
        "length_std": float(np.std(lengths)),
        "episodes": float(len(returns)),
        "truncated": float(truncations),
    }


__all__ = ["DEFAULT_EVAL_STEP_CAP", "evaluation_env", "run_episodes"]
