"""Alternating self-play (``self_play={"mode": "alternate"}``): the game seen by whoever moves,
negamax discounts in the replay storage, which agents accept it, checkpoints and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

pytest.importorskip("pettingzoo")

from pettingzoo import AECEnv
from pettingzoo.classic import tictactoe_v3

from rlkit.agents import DQN, IQN, PPO, QRDQN, R2D2
from rlkit.cli.main import main, parse_self_play
from rlkit.envs import make_vec_env
from rlkit.prototypes import load_agent
from rlkit.prototypes.self_play import evaluate_against
from rlkit.selfplay.env import SelfPlayVecEnv
from rlkit.selfplay.turns import TURNS_KEY, AlternatingGameEnv, alternates
from rlkit.storages import ReplayStorage

TICTACTOE = "pettingzoo.classic:tictactoe_v3"
ALTERNATE = {"mode": "alternate"}
SMALL = {"learning_starts": 64, "batch_size": 16, "buffer_size": 2_000, "train_freq": 1}


class PickGame(AECEnv):  # type: ignore[misc]
    """``players`` players each pick 0 or 1 once, in turn; the last picker wins if the picks
    sum to an odd number. ``twice``: the first player picks twice in a row; ``bonus``: every
    player gets +1 at the end on top (not zero-sum)."""

    metadata = {"name": "pick_v0", "is_parallelizable": False}

    def __init__(self, players: int = 2, twice: bool = False, bonus: bool = False) -> None:
        super().__init__()
        self.possible_agents = [f"p{i}" for i in range(players)]
        self.twice, self.bonus = twice, bonus
        self.observation_spaces = {a: spaces.Discrete(2) for a in self.possible_agents}
        self.action_spaces = {a: spaces.Discrete(2) for a in self.possible_agents}

    def observation_space(self, agent: str) -> spaces.Space[Any]:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space[Any]:
        return self.action_spaces[agent]

    def observe(self, agent: str) -> int:
        return int(sum(self.picks) % 2)

    def reset(self, seed: int | None = None, options: Any = None) -> None:
        self.agents = list(self.possible_agents)
        self.picks: list[int] = []
        self.order = [self.agents[0], *self.agents] if self.twice else list(self.agents)
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        self.agent_selection = self.order[0]

    def step(self, action: int) -> None:
        mover = self.agent_selection
        self.picks.append(int(action))
        if len(self.picks) == len(self.order):
            won = sum(self.picks) % 2 == 1
            for agent in self.agents:
                score = (1.0 if agent == mover else -1.0 / (len(self.agents) - 1)) * (
                    1 if won else -1
                )
                self.rewards[agent] = score + (1.0 if self.bonus else 0.0)
                self.terminations[agent] = True
        else:
            self.agent_selection = self.order[len(self.picks)]


def board(obs: dict[str, np.ndarray]) -> np.ndarray:
    """The mover's marks minus the opponent's, as a 3x3 grid (row = PettingZoo's column)."""
    planes = np.asarray(obs["observation"])
    return planes[..., 0].astype(int) - planes[..., 1].astype(int)


def test_the_game_is_seen_by_whoever_moves() -> None:
    env = AlternatingGameEnv(tictactoe_v3.env())
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert board(obs).sum() == 0 and obs["action_mask"].sum() == 9
    # X plays cells 0, 1, 2 (a line), O plays 3, 4
    obs, reward, terminated, _, _ = env.step(0)
    assert board(obs).flat[0] == -1  # O's view: X's mark is the opponent's
    assert obs["action_mask"][0] == 0 and (reward, terminated) == (0.0, False)
    obs, _, _, _, _ = env.step(3)
    assert board(obs).flat[0] == 1 and board(obs).flat[3] == -1  # X's view again
    env.step(1)
    env.step(4)
    obs, reward, terminated, truncated, _ = env.step(2)
    assert (reward, terminated, truncated) == (1.0, True, False)  # the winner's reward
    assert board(obs).sum() == -1  # the final position from the loser's (next mover's) side


def test_games_that_do_not_alternate_or_are_not_zero_sum_are_refused() -> None:
    with pytest.raises(ValueError, match="two-player game, got 3 players"):
        AlternatingGameEnv(PickGame(players=3))
    twice = AlternatingGameEnv(PickGame(twice=True))
    twice.reset(seed=0)
    with pytest.raises(ValueError, match="'p0' moves twice in a row"):
        twice.step(1)
    bonus = AlternatingGameEnv(PickGame(bonus=True))
    bonus.reset(seed=0)
    bonus.step(1)
    with pytest.raises(ValueError, match="do not sum to zero"):
        bonus.step(0)
    with pytest.raises(TypeError, match="expected a PettingZoo AEC env"):
        AlternatingGameEnv(object())


def test_alternating_storage_discounts_with_minus_gamma() -> None:
    """n-step returns ``r0 - g r1 + g^2 r2`` and discount ``(-g)^3``; one step: ``-g``, and 0
    where the game ended."""
    obs_space, act_space = spaces.Box(-1, 1, (1,)), spaces.Discrete(2)
    storage = ReplayStorage(obs_space, act_space, 16, n_step=3, gamma=0.9, alternating=True)
    one_step = ReplayStorage(obs_space, act_space, 16, gamma=0.9, alternating=True)
    rewards, terminated = [1.0, 2.0, 4.0, 8.0], [False, False, False, True]
    for t, (r, term) in enumerate(zip(rewards, terminated, strict=True)):
        for s in (storage, one_step):
            s.add(
                np.full((1, 1), t, np.float32), np.zeros(1, np.int64), np.array([r]),
                np.full((1, 1), t + 1, np.float32), np.array([term]), np.array([False]),
            )  # fmt: skip
    storage.sampler.sample = lambda n, size, g: (np.array([0, 1, 3]), None)  # type: ignore[method-assign]
    batch = storage.sample(3)
    expected = [1 - 0.9 * 2 + 0.81 * 4, 2 - 0.9 * 4 + 0.81 * 8, 8.0]
    assert batch.rewards.tolist() == pytest.approx(expected)
    assert batch.discounts.tolist() == pytest.approx([-0.729, 0.0, 0.0])
    one_step.sampler.sample = lambda n, size, g: (np.array([0, 3]), None)  # type: ignore[method-assign]
    assert one_step.sample(2).discounts.tolist() == pytest.approx([-0.9, 0.0])
    with pytest.raises(TypeError, match="alternating must be a bool"):
        ReplayStorage(obs_space, act_space, 16, alternating="yes")  # type: ignore[arg-type]


def test_the_env_is_marked_and_evaluates_from_one_seat() -> None:
    env = make_vec_env(TICTACTOE, num_envs=2, seed=0, self_play=ALTERNATE)
    assert alternates(env) and env.metadata[TURNS_KEY] is True
    assert not alternates(make_vec_env(TICTACTOE, num_envs=2, seed=0, self_play=True))
    evaluation = make_vec_env(TICTACTOE, num_envs=2, self_play=ALTERNATE, evaluation=True)
    assert isinstance(evaluation.unwrapped, SelfPlayVecEnv) and not alternates(evaluation)
    with pytest.raises(ValueError, match="mode 'both' is not one of 'league', 'alternate'"):
        make_vec_env(TICTACTOE, self_play={"mode": "both"})
    with pytest.raises(ValueError, match="snapshot_every for mode 'alternate'"):
        make_vec_env(TICTACTOE, self_play={"mode": "alternate", "snapshot_every": 3})


def test_only_agents_with_negamax_targets_accept_alternating_turns() -> None:
    env = make_vec_env(TICTACTOE, num_envs=2, seed=0, self_play=ALTERNATE)
    for cls in (DQN, QRDQN, IQN):
        agent = cls(env, seed=0, **SMALL)
        assert agent.storage.alternating, cls.__name__
    for cls in (PPO, R2D2):
        with pytest.raises(ValueError, match="do not count the opponent's value negatively"):
            cls(env, seed=0)

    class MyDQN(DQN):  # replaces the update without saying its targets are negamax
        def update(self, batch: Any) -> dict[str, torch.Tensor]:
            return super().update(batch)

    class MyNegamaxDQN(DQN):  # the same, saying so
        negamax_targets = True
        handles_action_masks = True

        def update(self, batch: Any) -> dict[str, torch.Tensor]:
            return super().update(batch)

    with pytest.raises(ValueError, match="MyDQN: the env hands every move to the opponent"):
        MyDQN(env, seed=0)
    assert MyNegamaxDQN(env, seed=0, **SMALL).storage.alternating
    plain = ReplayStorage(env.single_observation_space, env.single_action_space, 64, num_envs=2)
    with pytest.raises(ValueError, match="build it with alternating=True"):
        DQN(env, seed=0, storage=plain)
    # a plain env never gets the alternating storage
    assert not DQN(make_vec_env("CartPole-v1", seed=0), seed=0).storage.alternating


def test_resume_is_bit_identical(tmp_path: Path) -> None:
    def make() -> Any:
        return make_vec_env(TICTACTOE, num_envs=2, seed=3, self_play=ALTERNATE)

    config = {**SMALL, "target_update_interval": 20, "save_replay": True}
    whole = DQN(make(), seed=1, num_threads=1, **config).train(300, progress_bar=False)
    first = DQN(make(), seed=1, num_threads=1, **config).train(150, progress_bar=False)
    first.save(tmp_path / "ckpt")
    resumed = load_agent(tmp_path / "ckpt", trust_code=True)  # env rebuilt from its spec
    assert alternates(resumed.env) and resumed.storage.alternating
    resumed.train(300, progress_bar=False)
    for (name, a), b in zip(
        whole.policy.state_dict().items(), resumed.policy.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    rates = evaluate_against(resumed, "random", games=8, seed=0)
    assert rates["games"] == 8


def test_cli_trains_alternating_self_play_and_evaluates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert parse_self_play("alternate") == ALTERNATE
    out = tmp_path / "run"
    argv = ["train", "dqn", "--env", TICTACTOE, "--self-play", "alternate", "--num-envs", "2"]
    argv += ["--total-steps", "400", "--learning-starts", "100", "--out", str(out)]
    assert main([*argv, "--eval-episodes", "2"]) == 0
    capsys.readouterr()
    argv = ["eval", str(out), "--episodes", "4", "--json", "--opponent", "tictactoe_minimax"]
    assert main([*argv, "--trust-code"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["vs_tictactoe_minimax"]["games"] == 4
    assert main(["train", "ppo", "--env", TICTACTOE, "--self-play", "alternate"]) == 2
    assert "PPO's targets do not count the opponent's value" in capsys.readouterr().err


def test_a_seeded_evaluation_repeats_the_fixed_players_choices() -> None:
    agent = DQN(make_vec_env(TICTACTOE, num_envs=2, seed=0, self_play=ALTERNATE), seed=0, **SMALL)
    runs = [evaluate_against(agent, "random", games=40, seed=5) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]


def test_connect_four_trains_with_n_step_negamax_targets() -> None:
    env = make_vec_env(
        "pettingzoo.classic:connect_four_v3", num_envs=2, seed=0, self_play=ALTERNATE
    )
    agent = QRDQN(env, seed=0, n_step=3, **SMALL).train(400, progress_bar=False)
    assert agent.storage.alternating and agent.storage.n_step == 3
    assert agent.episodes.episodes > 0
    # a game's return is its last move's reward: 1 for a decided game, 0 for a draw
    assert set(agent.episodes.returns) <= {0.0, 1.0}
