"""Self-play parts: Elo ratings, the opponent pool and the fixed tic-tac-toe players, the latter
on the real PettingZoo ``tictactoe_v3`` env."""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from typing import Any

import numpy as np
import pytest
import torch

from rlkit.selfplay import (
    EloRatings,
    OpponentPool,
    RandomPlayer,
    TicTacToeMinimax,
    play_games,
)


def _tictactoe() -> Any:
    tictactoe_v3 = pytest.importorskip("pettingzoo.classic.tictactoe_v3")
    return tictactoe_v3


# -- Elo -------------------------------------------------------------------------------------


def test_elo_hand_computed_update() -> None:
    elo = EloRatings(k=32.0)
    assert elo.expected("a", "b") == 0.5
    elo.update("a", "b", 1.0)
    assert elo.rating("a") == pytest.approx(1216.0)
    assert elo.rating("b") == pytest.approx(1184.0)
    # second game: a (1216) is favoured, expected = 1 / (1 + 10 ** (-32 / 400))
    expected = 1.0 / (1.0 + 10.0 ** (-32.0 / 400.0))
    assert elo.expected("a", "b") == pytest.approx(expected)
    elo.update("a", "b", 0.0)
    assert elo.rating("a") == pytest.approx(1216.0 - 32.0 * expected)
    assert elo.rating("b") == pytest.approx(1184.0 + 32.0 * expected)
    assert sum(elo.ratings().values()) == pytest.approx(2400.0)  # zero-sum without fixed players
    assert elo.rating("never-played") == 1200.0


def test_elo_draw_between_equals_changes_nothing() -> None:
    elo = EloRatings(k=16.0, initial=1000.0)
    elo.update("x", "y", 0.5)
    assert elo.ratings() == {"x": 1000.0, "y": 1000.0}


def test_elo_fixed_opponent_stays() -> None:
    elo = EloRatings()
    for _ in range(5):
        elo.update("learner", "random", 1.0, fixed_b=True)
    assert elo.rating("random") == 1200.0
    assert elo.ratings()["random"] == 1200.0
    assert elo.rating("learner") > 1200.0 + 5 * 10.0
    before = elo.rating("learner")
    elo.update("learner", "random", 0.0, fixed_b=True)
    assert elo.rating("random") == 1200.0
    assert elo.rating("learner") < before


@pytest.mark.parametrize("k", [0.0, -1.0, math.inf, math.nan])
def test_elo_bad_k_raises_naming_it(k: float) -> None:
    with pytest.raises(ValueError, match=r"k must be a finite number > 0, got"):
        EloRatings(k=k)


@pytest.mark.parametrize("score", [1.5, -0.1, math.nan])
def test_elo_bad_score_raises_naming_it(score: float) -> None:
    with pytest.raises(ValueError, match="score_a must be in"):
        EloRatings().update("a", "b", score)


def test_elo_state_round_trip() -> None:
    elo = EloRatings()
    elo.update("a", "b", 1.0)
    elo.update("b", "c", 0.5)
    other = EloRatings()
    other.load_state_dict(elo.state_dict())
    assert other.ratings() == elo.ratings()
    elo.update("a", "c", 0.0)
    other.update("a", "c", 0.0)
    assert other.ratings() == elo.ratings()


# -- opponent pool ---------------------------------------------------------------------------


def _vec(value: float, size: int = 4) -> torch.Tensor:
    return torch.full((size,), value)


def test_pool_eviction_ids_and_latest() -> None:
    pool = OpponentPool(capacity=3, strategy="latest")
    ids = [pool.add(_vec(float(i)), step=10 * i) for i in range(5)]
    assert ids == [0, 1, 2, 3, 4]
    assert pool.ids() == [2, 3, 4]  # the two oldest were evicted, in order
    assert len(pool) == 3
    latest_id, latest_params = pool.latest()
    assert latest_id == 4
    assert torch.equal(latest_params, _vec(4.0))
    assert pool.sample()[0] == 4
    assert pool.results(2)["step"] == 20
    assert pool.add(_vec(5.0), step=50) == 5
    assert pool.ids() == [3, 4, 5]


def test_pool_add_copies_to_cpu_float32() -> None:
    pool = OpponentPool()
    source = torch.arange(4, dtype=torch.float64, requires_grad=True)
    pool.add(source, step=0)
    with torch.no_grad():
        source.add_(100.0)
    stored = pool.latest()[1]
    assert stored.dtype == torch.float32 and not stored.requires_grad
    assert torch.equal(stored, torch.arange(4, dtype=torch.float32))


def test_pool_wrong_param_length_raises() -> None:
    pool = OpponentPool()
    pool.add(_vec(0.0, size=4), step=0)
    with pytest.raises(ValueError, match="must have 4 elements"):
        pool.add(_vec(0.0, size=5), step=1)
    with pytest.raises(ValueError, match="1-D float tensor"):
        pool.add(torch.zeros(2, 2), step=1)


def test_pool_bad_configuration_raises() -> None:
    with pytest.raises(ValueError, match="latest, uniform, prioritized"):
        OpponentPool(strategy="best")
    with pytest.raises(ValueError, match="capacity must be an int >= 1"):
        OpponentPool(capacity=0)
    with pytest.raises(ValueError, match="pool is empty"):
        OpponentPool().sample()


def test_pool_record_win_rate_and_evicted_ids() -> None:
    pool = OpponentPool(capacity=2)
    a = pool.add(_vec(0.0), step=0)
    b = pool.add(_vec(1.0), step=1)
    assert pool.win_rate(a) is None
    for score in (1.0, 0.5, 0.0, 1.0):
        pool.record(a, score)
    assert pool.win_rate(a) == pytest.approx(2.5 / 4)
    assert pool.results(a) == {
        "id": a,
        "step": 0,
        "games": 4,
        "wins": 2,
        "draws": 1,
        "losses": 1,
    }
    pool.record(b, 0.0)
    summary = pool.summary()
    assert summary["size"] == 2 and summary["games"] == 5
    assert summary["win_rate"] == pytest.approx(2.5 / 5)
    pool.add(_vec(2.0), step=2)  # evicts a
    pool.record(a, 1.0)  # ignored
    assert pool.win_rate(a) is None and a not in pool
    assert pool.summary()["games"] == 1
    with pytest.raises(ValueError, match="score must be 1"):
        pool.record(b, 0.7)


def test_pool_uniform_hits_every_member() -> None:
    pool = OpponentPool(capacity=5, strategy="uniform", seed=0)
    for i in range(5):
        pool.add(_vec(float(i)), step=i)
    counts = Counter(pool.sample()[0] for _ in range(1000))
    assert set(counts) == {0, 1, 2, 3, 4}
    assert all(150 <= c <= 250 for c in counts.values()), counts


def test_pool_prioritized_prefers_opponents_the_learner_loses_to() -> None:
    pool = OpponentPool(capacity=3, strategy="prioritized", seed=1)
    hard, easy, unseen = (pool.add(_vec(float(i)), step=i) for i in range(3))
    for _ in range(10):
        pool.record(hard, 0.0)  # learner always loses: weight (1 - 0) = 1
        pool.record(easy, 1.0)  # learner always wins: weight 0
    # unseen counts as p = 0.5: weight 0.5
    assert pool.weights().tolist() == pytest.approx([2 / 3, 0.0, 1 / 3])
    counts = Counter(pool.sample()[0] for _ in range(3000))
    assert counts[easy] == 0
    assert counts[hard] > 1.6 * counts[unseen] > 0
    assert 1800 <= counts[hard] <= 2200, counts


def test_pool_prioritized_all_beaten_falls_back_to_uniform() -> None:
    pool = OpponentPool(strategy="prioritized", seed=0, temperature=2.0)
    for i in range(4):
        pool.add(_vec(float(i)), step=i)
        pool.record(i, 1.0)
    assert pool.weights().tolist() == pytest.approx([0.25] * 4)
    assert set(pool.sample()[0] for _ in range(200)) == {0, 1, 2, 3}


def _safetensors_round_trip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from safetensors.torch import load, save

    return load(save(state))


def test_pool_state_round_trip_continues_the_same_samples() -> None:
    pool = OpponentPool(capacity=4, strategy="prioritized", seed=3)
    for i in range(6):
        pool.add(torch.randn(7, generator=torch.Generator().manual_seed(i)), step=100 * i)
    pool.record(3, 0.0)
    pool.record(4, 1.0)
    pool.record(5, 0.5)
    for _ in range(5):
        pool.sample()
    state = _safetensors_round_trip(pool.state_tensors())
    assert state["params"].shape == (4, 7) and state["params"].dtype == torch.float32
    assert state["meta"].shape == (4, 6) and state["meta"].dtype == torch.int64
    original = [pool.sample() for _ in range(30)]

    restored = OpponentPool(capacity=4, strategy="prioritized", seed=99)
    restored.load_state_tensors(state)
    again = [restored.sample() for _ in range(30)]
    assert [i for i, _ in again] == [i for i, _ in original]
    assert len({i for i, _ in original}) > 1  # the sequence actually varies
    assert all(torch.equal(p, q) for (_, p), (_, q) in zip(again, original, strict=True))
    assert restored.ids() == pool.ids()
    assert restored.results(3) == pool.results(3)
    assert restored.add(_vec(0.0, size=7), step=600) == pool.add(_vec(0.0, size=7), step=600) == 6
    with pytest.raises(ValueError, match="must have 7 elements"):
        restored.add(_vec(0.0, size=3), step=700)


def test_pool_empty_round_trip() -> None:
    pool = OpponentPool(strategy="uniform", seed=5)
    state = _safetensors_round_trip(pool.state_tensors())
    assert state["params"].shape == (0, 0)
    assert state["meta"].shape == (0, 6)
    restored = OpponentPool(strategy="uniform", seed=6)
    restored.load_state_tensors(state)
    assert len(restored) == 0
    for p in (pool, restored):
        for i in range(3):
            p.add(_vec(float(i), size=2), step=i)
    assert [pool.sample()[0] for _ in range(20)] == [restored.sample()[0] for _ in range(20)]


def test_pool_state_too_large_for_capacity_raises() -> None:
    pool = OpponentPool(capacity=3)
    for i in range(3):
        pool.add(_vec(float(i)), step=i)
    with pytest.raises(ValueError, match="more than this pool's capacity 2"):
        OpponentPool(capacity=2).load_state_tensors(pool.state_tensors())


# -- players on the real tictactoe_v3 env -----------------------------------------------------


def test_tictactoe_action_to_observation_mapping() -> None:
    """Action ``a`` marks observation[a // 3, a % 3] (row-major), not [a % 3, a // 3]."""
    env = _tictactoe().env()
    env.reset(seed=0)
    env.step(1)  # player_1 marks square 1
    obs, *_ = env.last()  # player_2 to move
    assert env.agent_selection == "player_2"
    planes = obs["observation"]
    assert planes[:, :, 0].sum() == 0  # player_2 has no marks
    assert planes[0, 1, 1] == 1 and planes[:, :, 1].sum() == 1  # row 0, column 1
    assert env.unwrapped.board.squares[1] == 1
    assert obs["action_mask"].tolist() == [1, 0, 1, 1, 1, 1, 1, 1, 1]
    env.step(5)  # player_2 marks square 5 -> row 1, column 2
    obs, *_ = env.last()  # player_1 to move: its own marks on plane 0
    planes = obs["observation"]
    assert planes[0, 1, 0] == 1 and planes[1, 2, 1] == 1
    assert planes.sum() == 2
    assert TicTacToeMinimax.board(obs) == (0, 1, 0, 0, 0, -1, 0, 0, 0)
    env.close()


def _play(env: Any, actions: list[int]) -> Any:
    env.reset(seed=0)
    for a in actions:
        env.step(a)
    return env.last()[0]


def test_minimax_takes_the_win_and_blocks_the_loss() -> None:
    env = _tictactoe().env()
    # player_1: 0, 1; player_2: 3, 4. player_1 to move: 2 wins (5 would only block).
    obs = _play(env, [0, 3, 1, 4])
    values = TicTacToeMinimax().action_values(obs)
    assert max(values, key=lambda a: values[a]) == 2 and values[2] > 0
    for seed in range(10):
        assert TicTacToeMinimax(seed=seed)(obs, "player_1") == 2
    env.step(2)
    _, reward, termination, *_ = env.last()  # player_2 (the loser) is selected next
    assert env.agent_selection == "player_2" and termination and reward == -1
    assert env.rewards["player_1"] == 1  # it really was the winning square on the real env

    # player_1: 3, 4; player_2: 0. player_2 to move must block at 5.
    obs = _play(env, [3, 0, 4])
    for seed in range(10):
        assert TicTacToeMinimax(seed=seed)(obs, "player_2") == 5
    values = TicTacToeMinimax().action_values(obs)
    assert all(v < 0 for a, v in values.items() if a != 5)
    env.close()


def test_minimax_tie_break() -> None:
    env = _tictactoe().env()
    obs = _play(env, [])
    # every opening draws, so every move is optimal
    assert set(TicTacToeMinimax().action_values(obs).values()) == {0}
    assert TicTacToeMinimax(random_tie_break=False)(obs, "player_1") == 0
    seen = {TicTacToeMinimax(seed=s)(obs, "player_1") for s in range(40)}
    assert len(seen) > 3
    env.close()


def test_minimax_vs_minimax_always_draws() -> None:
    tictactoe_v3 = _tictactoe()
    players = {"player_1": TicTacToeMinimax(seed=0), "player_2": TicTacToeMinimax(seed=1)}
    result = play_games(tictactoe_v3.env, players, num_games=20, seed=0)
    for agent in ("player_1", "player_2"):
        assert result[agent]["draws"] == 20
        assert result[agent]["mean_return"] == 0.0


@pytest.mark.parametrize("minimax_seat", ["player_1", "player_2"])
def test_minimax_never_loses_to_random(minimax_seat: str) -> None:
    tictactoe_v3 = _tictactoe()
    random_seat = "player_2" if minimax_seat == "player_1" else "player_1"
    players = {minimax_seat: TicTacToeMinimax(seed=0), random_seat: RandomPlayer(seed=0)}
    result = play_games(tictactoe_v3.env, players, num_games=200, seed=1)
    assert result[minimax_seat]["losses"] == 0
    assert result[random_seat]["wins"] == 0
    assert result[minimax_seat]["wins"] == result[random_seat]["losses"]
    if minimax_seat == "player_1":
        assert result[minimax_seat]["wins"] >= 170, result
    else:
        assert result[minimax_seat]["wins"] >= 100, result


def test_play_games_counts_add_up() -> None:
    tictactoe_v3 = _tictactoe()
    players = {"player_1": RandomPlayer(seed=0), "player_2": RandomPlayer(seed=1)}
    n = 30
    result = play_games(tictactoe_v3.env, players, num_games=n, seed=0)
    p1, p2 = result["player_1"], result["player_2"]
    for r in (p1, p2):
        assert r["wins"] + r["draws"] + r["losses"] == n
        assert r["mean_return"] == pytest.approx((r["wins"] - r["losses"]) / n)
    assert p1["wins"] == p2["losses"] and p1["draws"] == p2["draws"]
    assert p1["wins"] > 0 and p2["wins"] > 0  # random play: both sides win some
    # same seeds, same games
    again = play_games(
        tictactoe_v3.env,
        {"player_1": RandomPlayer(seed=0), "player_2": RandomPlayer(seed=1)},
        num_games=n,
        seed=0,
    )
    assert again == result
    with pytest.raises(ValueError, match="no entry for agents"):
        play_games(tictactoe_v3.env, {"player_1": RandomPlayer()}, num_games=1, seed=0)


def test_random_player_only_legal_moves() -> None:
    player = RandomPlayer(seed=0)
    obs = {"observation": np.zeros((3, 3, 2), np.int8), "action_mask": np.zeros(9, np.int8)}
    obs["action_mask"][[2, 7]] = 1
    assert {player(obs, "player_1") for _ in range(50)} == {2, 7}
    with pytest.raises(ValueError, match="all-zero action_mask"):
        player({"action_mask": np.zeros(9, np.int8)}, "player_1")


def test_import_does_not_load_pettingzoo() -> None:
    code = "import sys, rlkit.selfplay; print('pettingzoo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
