"""Multi-agent learning tests: MAPPO on MPE simple_spread, PPO league self-play and DQN negamax
self-play on tic-tac-toe, fixed seeds, thresholds validated over seeds (see each test's
docstring)."""

from __future__ import annotations

import pytest

pytest.importorskip("pettingzoo")
pytest.importorskip("mpe2")

from rlkit.agents import DQN, MAPPO, PPO
from rlkit.config.presets import load_preset
from rlkit.envs import make_vec_env
from rlkit.prototypes.self_play import evaluate_against

pytestmark = pytest.mark.learning

SPREAD = "mpe2:simple_spread_v3"
TICTACTOE = "pettingzoo.classic:tictactoe_v3"


def mappo_spread(seed: int, steps: int = 240_000) -> dict[str, float]:
    """MAPPO (defaults: the paper's MPE settings) on simple_spread (3 agents, 25-step
    episodes) for ``steps`` agent steps with 16 copies; the per-agent return of 48 episodes
    of the trained policy (sampling, as MAPPO evaluates) and of a policy that never moves."""
    env = make_vec_env(SPREAD, num_envs=16, seed=seed, env_kwargs={"max_cycles": 25})
    agent = MAPPO(env, seed=seed, num_threads=1).train(steps, progress_bar=False)
    result = agent.evaluate(episodes=48, deterministic=False, seed=1000 + seed)
    return {"return_mean": result["return_mean"], "team_return_mean": result["team_return_mean"]}


def test_mappo_improves_clearly_over_random_on_simple_spread() -> None:
    """After 240k agent steps (80k env steps, about 50 s on one core) MAPPO's per-agent return
    is at least -23.0, where a uniformly random policy scores -25.1 and one that never moves
    -24.0 (80 episodes each, same env settings). Validated on an AMD EPYC (AVX-512, 2 cores),
    seeds 0-3: -20.7, -20.3, -21.4, -21.8 (``python benchmarks/learning_seeds.py
    mappo_spread --seeds 0-3``). The MAPPO reference reaches its final score after 20M env
    steps (``docs/multi-agent.md``); this budget shows learning, not that score."""
    result = mappo_spread(0)
    assert result["return_mean"] >= -23.0, result


def selfplay_tictactoe(seed: int, steps: int = 150_000) -> dict[str, float]:
    """PPO self-play on tic-tac-toe against a league of its own snapshots (sampling their
    moves) and a random player in 10% of games, then deterministic play against the fixed
    players: non-losing rates over 200 games each, the learner's seat drawn per game."""
    league = {"snapshot_every": 5, "strategy": "latest", "greedy": 0.0, "fixed": {"random": 0.1}}
    env = make_vec_env("pettingzoo.classic:tictactoe_v3", num_envs=16, seed=seed, self_play=league)
    agent = PPO(
        env, seed=seed, num_threads=1, lr=1e-3, num_epochs=4, batch_size=512, num_steps=64,
        ent_coef=0.01,
    )  # fmt: skip
    agent.train(steps, progress_bar=False)
    return {
        "vs_random": evaluate_against(agent, "random", 200, seed=123)["non_losing_rate"],
        "vs_minimax": evaluate_against(agent, "tictactoe_minimax", 200, seed=123)[
            "non_losing_rate"
        ],
    }


def test_self_play_tictactoe_learns_to_hold_against_random() -> None:
    """After 150k learner moves of self-play (about 35 s on one core) the deterministic policy
    does not lose at least 75% of its games against a random player, where the untrained
    deterministic policies of seeds 0-3 score 37-69% (200 games each). Validated on an AMD EPYC
    (AVX-512, 2 cores), seeds 0-3: 83.5%, 88%, 90%, 85% (``python benchmarks/learning_seeds.py
    selfplay_tictactoe --seeds 0-3``; 83-95% in ten more runs of other league settings).
    Against the minimax player this budget gives 1.5-20% (not asserted: the issue's 80% is not
    reached by self-play alone at CPU budgets, see ``docs/multi-agent.md``)."""
    result = selfplay_tictactoe(0)
    assert result["vs_random"] >= 0.75, result


def negamax_tictactoe(seed: int) -> dict[str, float]:
    """DQN's tic-tac-toe preset: the learner plays both seats (``self_play={"mode":
    "alternate"}``, negamax targets) for 100k moves, then deterministic play against the fixed
    players: non-losing rates over 200 games each, the learner's seat drawn per game."""
    settings = load_preset("dqn", TICTACTOE)
    assert settings["self_play"] == {"mode": "alternate"}
    steps, num_envs = settings.pop("total_steps"), settings.pop("num_envs")
    env = make_vec_env(TICTACTOE, num_envs=num_envs, seed=seed, self_play=settings.pop("self_play"))
    agent = DQN(env, seed=seed, num_threads=1, **settings).train(steps, progress_bar=False)
    return {
        "vs_random": evaluate_against(agent, "random", 200, seed=123)["non_losing_rate"],
        "vs_minimax": evaluate_against(agent, "tictactoe_minimax", 200, seed=123)[
            "non_losing_rate"
        ],
    }


def test_negamax_self_play_holds_against_random_and_minimax() -> None:
    """The issue's bar: after 100k moves of self-play with the learner in both seats (about
    25-40 s on one core) the deterministic policy does not lose at least 95% of its games
    against a random player and 80% against the minimax player (which never loses). Validated
    on an AMD EPYC (AVX-512, 2 cores), seeds 0-9 (``python benchmarks/learning_seeds.py
    negamax_tictactoe --seeds 0-9``): vs random 99.5-100%, vs minimax 95.5, 86.5, 100, 98.5,
    93.5, 99.5, 96, 91, 95.5, 94%. The same training with +gamma (the opponent's moves taken
    as part of the env) plays 80.5% / 49% against random and 0% / 10%
    against minimax (seeds 0 / 1)."""
    result = negamax_tictactoe(0)
    assert result["vs_random"] >= 0.95, result
    assert result["vs_minimax"] >= 0.80, result
