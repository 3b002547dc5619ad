"""Exploration bonuses change behaviour: on the DeepChain combination lock, PPO with a bonus
reaches the distant reward and covers the whole chain within a budget where plain PPO does not.

Same seeds, same budget (40k env steps, 8 envs), same PPO settings for every run; only
``intrinsic_reward`` differs. Measured here (2 cores): plain PPO covers 14-16 of the 20 states
and never reaches the goal; RND, RE3, PseudoCounts and NGU cover all 20 and reach the goal
7-121 times (see docs/exploration.md and benchmarks/exploration.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rlkit.agents import PPO
from rlkit.envs import make_vec_env

LENGTH = 20
STEPS = 40_000
PPO_SETTINGS: dict[str, Any] = {
    "num_steps": 128,
    "batch_size": 256,
    "num_epochs": 4,
    "ent_coef": 0.01,
}


def explore(intrinsic_reward: str | None, seed: int) -> tuple[int, int]:
    """Train PPO and return (distinct chain states visited, episodes that reached the goal)."""
    env = make_vec_env("rlkit/DeepChain-v0", num_envs=8, seed=seed, env_kwargs={"length": LENGTH})
    try:
        agent = PPO(env, seed=seed, intrinsic_reward=intrinsic_reward, **PPO_SETTINGS)
        agent.train(STEPS, progress_bar=False)
        visits = np.sum(env.unwrapped.get_attr("visit_counts"), axis=0)
    finally:
        env.close()
    return int((visits > 0).sum()), int(visits[-1])


@pytest.mark.learning
def test_bonuses_reach_the_goal_and_cover_the_chain_where_plain_ppo_does_not() -> None:
    plain = {seed: explore(None, seed) for seed in (0, 1)}
    for seed, (states, goals) in plain.items():
        assert goals == 0, f"plain PPO opened the lock (seed {seed}): the testbed is too easy"
        assert states <= LENGTH - 3, f"plain PPO covered {states} states (seed {seed})"
    runs = {
        "rnd": (0, 1),
        "re3": (0, 1),
        "pseudo_counts": (0, 1),
        "ngu": (0,),
    }
    for module, seeds in runs.items():
        for seed in seeds:
            states, goals = explore(module, seed)
            assert goals >= 1, f"{module} (seed {seed}) never reached the goal"
            assert states >= plain[seed][0] + 3, (
                f"{module} (seed {seed}) covered {states} states vs {plain[seed][0]} for plain PPO"
            )
