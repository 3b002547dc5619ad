"""MAPPO/IPPO on multi-agent rows and PPO self-play on a turn-based game: construction,
checkpoints (the opponent pool included), evaluation, export and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("pettingzoo")
pytest.importorskip("mpe2")

from rlkit.agents import IPPO, MAPPO, PPO
from rlkit.cli.main import main
from rlkit.envs import make_vec_env
from rlkit.prototypes import load_agent
from rlkit.prototypes.self_play import evaluate_against, league_of

SPREAD = "mpe2:simple_spread_v3"
TICTACTOE = "pettingzoo.classic:tictactoe_v3"
SHORT = {"max_cycles": 10}


def spread(num_envs: int = 2, seed: int = 0) -> object:
    return make_vec_env(SPREAD, num_envs=num_envs, seed=seed, env_kwargs=SHORT)


def test_mappo_refuses_a_single_agent_env() -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    with pytest.raises(ValueError, match="PettingZoo"):
        MAPPO(env)


def test_mappo_critic_reads_the_state_and_ippo_the_observation() -> None:
    mappo, ippo = MAPPO(spread(), seed=0), IPPO(spread(), seed=0)
    # 3 agents: obs 18 + one-hot id 3; state 54 + id 3
    assert mappo.policy.critic_encoder.feature_dim == 54 + 3
    assert ippo.policy.critic_encoder.feature_dim == 18 + 3
    assert mappo.policy.encoder.feature_dim == ippo.policy.encoder.feature_dim == 18 + 3
    # the centralised critic's value changes with another agent's observation, IPPO's does not
    obs = {k: torch.as_tensor(v) for k, v in spread().reset(seed=1)[0].items()}
    other = dict(obs)
    other["state"] = obs["state"] + 1.0
    with torch.no_grad():
        assert not torch.allclose(mappo.policy.value(obs), mappo.policy.value(other))
        assert torch.equal(ippo.policy.value(obs), ippo.policy.value(other))


def test_mappo_trains_and_normalises_values(tmp_path: Path) -> None:
    agent = MAPPO(spread(), seed=0, num_epochs=2)
    agent.train(2 * 3 * 10 * 2, progress_bar=False)  # two rollouts
    norm = agent.value_normalizer
    assert norm is not None and float(norm.debiasing) > 0
    # the critic's outputs are normalised: the loop's values are the denormalised ones
    returns = agent.storage.returns
    assert torch.isfinite(returns).all()
    path = agent.save(tmp_path / "ckpt")
    loaded = load_agent(path, env=spread())
    assert loaded.value_normalizer is not None
    assert torch.equal(loaded.value_normalizer.running_mean, norm.running_mean)
    obs = spread(seed=3).reset(seed=3)[0]
    assert np.array_equal(agent.act(obs, deterministic=True), loaded.act(obs, deterministic=True))


def test_multi_agent_evaluation_reports_team_and_agent_returns() -> None:
    agent = MAPPO(spread(), seed=0)
    result = agent.evaluate(episodes=4, seed=5)
    assert result["episodes"] == 4 and result["length_mean"] == 10
    per_agent = [result[f"return_mean/agent_{i}"] for i in range(3)]
    assert result["return_mean"] == pytest.approx(np.mean(per_agent))
    assert result["team_return_mean"] == pytest.approx(3 * result["return_mean"])


def test_mappo_exports_to_onnx_with_parity(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from rlkit.export import to_onnx

    agent = MAPPO(spread(), seed=0)
    result = to_onnx(agent, tmp_path / "mappo.onnx")  # raises ParityError on any difference
    assert Path(result.path).exists()


def test_cli_trains_mappo_on_a_pettingzoo_id_and_evaluates_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["train", "mappo", "--env", SPREAD, "--num-envs", "2", "--total-steps", "120"]
    argv += ["--out", str(out), "--env-kwargs", "{max_cycles: 10}", "--eval-episodes", "2"]
    assert main(argv) == 0
    capsys.readouterr()
    argv = ["eval", str(out), "--episodes", "2", "--json", "--trust-code"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["team_return_mean"] == pytest.approx(3 * result["return_mean"])
    assert {"return_mean/agent_0", "return_mean/agent_2"} <= set(result)


def self_play_env(seed: int = 0, **league: object) -> object:
    options = {"snapshot_every": 1, "capacity": 3, **league}
    return make_vec_env(TICTACTOE, num_envs=4, seed=seed, self_play=options)


def test_self_play_snapshots_into_the_pool_and_logs_ratings() -> None:
    env = self_play_env()
    agent = PPO(env, seed=0, num_steps=32)
    rows: list[dict[str, float]] = []
    agent.train(4 * 32 * 5, progress_bar=False, callbacks=lambda a, m: rows.append(dict(m)))
    league = league_of(env)
    assert league is not None
    assert len(league.pool) == 3  # capacity 3: 6 snapshots taken, the oldest evicted
    assert league.pool.ids() == [3, 4, 5]
    last = rows[-1]
    assert last["selfplay/pool_size"] == 3
    assert 0.0 <= last["selfplay/win_rate"] <= 1.0 and last["selfplay/elo"] != 1200.0


def test_self_play_pool_is_checkpointed_and_resumed(tmp_path: Path) -> None:
    env = self_play_env(strategy="uniform")
    agent = PPO(env, seed=0, num_steps=32)
    agent.train(4 * 32 * 3, progress_bar=False)
    league = league_of(env)
    assert league is not None
    saved = league.state_tensors()
    path = agent.save(tmp_path / "ckpt")
    fresh_env = self_play_env(seed=7, strategy="uniform")
    load_agent(path, env=fresh_env)
    restored = league_of(fresh_env)
    assert restored is not None
    for key, value in saved.items():
        assert torch.equal(restored.state_tensors()[key], value), key
    # the pool's sampler continues where the saved one stopped
    assert [league.pool.sample()[0] for _ in range(20)] == [
        restored.pool.sample()[0] for _ in range(20)
    ]


def test_self_play_evaluation_against_fixed_players() -> None:
    agent = PPO(self_play_env(), seed=0)
    for opponent in ("random", "tictactoe_minimax"):
        rates = evaluate_against(agent, opponent, games=12, seed=3)
        assert rates["games"] == 12
        total = rates["win_rate"] + rates["draw_rate"] + rates["loss_rate"]
        assert total == pytest.approx(1.0)
    # an untrained policy never beats perfect play
    assert evaluate_against(agent, "tictactoe_minimax", games=12, seed=3)["win_rate"] == 0.0


def test_cli_self_play_run_and_eval_against_players(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["train", "ppo", "--env", TICTACTOE, "--self-play", "{snapshot_every: 1}"]
    argv += ["--num-envs", "2", "--total-steps", "512", "--out", str(out), "--eval-episodes", "2"]
    assert main(argv) == 0
    capsys.readouterr()
    argv = ["eval", str(out), "--episodes", "6", "--json", "--trust-code"]
    argv += ["--opponent", "random", "--opponent", "tictactoe_minimax"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["vs_random"]["games"] == 6 and result["vs_tictactoe_minimax"]["games"] == 6


def test_cli_rejects_an_unknown_opponent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(tmp_path), "--opponent", "stockfish"]) == 2
    err = capsys.readouterr().err
    assert "--opponent 'stockfish'" in err and "tictactoe_minimax" in err


def test_recurrent_mappo_keeps_actor_and_critic_inputs_apart() -> None:
    agent = MAPPO(spread(), seed=0, recurrent="gru", num_epochs=1)
    policy = agent.policy
    assert policy.recurrent
    assert policy.encoder.keys == ["agent_id", "obs"]
    assert policy.critic_encoder.keys == ["agent_id", "state"]
    agent.train(2 * 3 * 10 * 2, progress_bar=False)
    obs = {k: torch.as_tensor(v) for k, v in spread().reset(seed=2)[0].items()}
    other = {**obs, "state": obs["state"] + 1.0}
    with torch.no_grad():
        out, moved = policy(obs), policy(other)
    assert torch.allclose(out.dist.probs, moved.dist.probs)  # the actor never sees the state
    assert not torch.allclose(out.value, moved.value)


def test_recurrent_policies_refuse_turn_based_rows() -> None:
    env = make_vec_env(TICTACTOE, num_envs=2, seed=0)
    agent = PPO(env, seed=0, policy="lstm_actor_critic", num_steps=8)
    with pytest.raises(ValueError, match="waiting for their turn"):
        agent.train(64, progress_bar=False)


def test_batched_self_play_games_equal_games_stepped_one_by_one() -> None:
    from pettingzoo.classic import tictactoe_v3

    from rlkit.selfplay.env import SelfPlayEnv, SelfPlayVecEnv

    batched = SelfPlayVecEnv([SelfPlayEnv(tictactoe_v3.env(), opponent="random") for _ in range(3)])
    single = [SelfPlayEnv(tictactoe_v3.env(), opponent="random") for _ in range(3)]
    for game in (*batched.games, *single):
        game._fixed._rng = np.random.default_rng(0)  # type: ignore[union-attr]
    obs, _ = batched.reset(seed=4)
    views = [game.reset(seed=4 + i)[0] for i, game in enumerate(single)]
    assert np.array_equal(obs["observation"], np.stack([v["observation"] for v in views]))
    rng = np.random.default_rng(1)
    for _ in range(40):
        actions = [int(rng.choice(np.flatnonzero(m))) for m in obs["action_mask"]]
        obs, rewards, terminated, truncated, info = batched.step(np.array(actions))
        for i, game in enumerate(single):
            view, reward, term, trunc, _ = game.step(actions[i])
            if term or trunc:
                assert np.array_equal(info["final_obs"][i]["observation"], view["observation"])
                view, _ = game.reset()
            assert reward == rewards[i] and term == terminated[i] and trunc == truncated[i]
            assert np.array_equal(obs["observation"][i], view["observation"])


def test_ippo_keeps_its_decentralised_critic_when_the_policy_is_named() -> None:
    agent = IPPO(spread(), seed=0, policy={"id": "multi_agent_actor_critic", "agent_id": False})
    assert not agent.policy.centralised_critic and agent.policy.critic_encoder.feature_dim == 18


def test_self_play_on_without_options_evaluates() -> None:
    env = make_vec_env(TICTACTOE, num_envs=2, seed=0, self_play=True)
    agent = PPO(env, seed=0, num_steps=16)
    agent.train(64, progress_bar=False)
    assert agent.evaluate(episodes=4)["episodes"] == 4  # against the random player
    assert evaluate_against(agent, "random", games=4, seed=0)["games"] == 4


def test_bad_self_play_and_preprocessing_options_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown option.*snapshot_evry.*valid: .*snapshot_every"):
        make_vec_env(TICTACTOE, self_play={"snapshot_evry": 3})
    with pytest.raises(ValueError, match="PettingZoo env"):
        make_vec_env(SPREAD, preprocessing={"frame_stack": 2})


def test_multi_agent_and_self_play_episodes_are_recorded(tmp_path: Path) -> None:
    pytest.importorskip("imageio")
    from rlkit.envs.recording import record_episodes

    agent = MAPPO(spread(num_envs=2), seed=0)
    info = record_episodes(agent, tmp_path / "spread.gif", episodes=2)
    assert (
        info.episodes == 2 and info.frames == 10 + 1
    )  # one tiled frame per step (10-step episodes)
    assert (tmp_path / "spread.gif").stat().st_size > 0
    agent = PPO(self_play_env(), seed=0)
    info = record_episodes(agent, tmp_path / "games.gif", episodes=3)
    assert info.episodes == 3 and info.frames >= 3


def test_group_policies_give_each_group_its_own_network() -> None:
    from rlkit.policies.multi_agent import GroupedActorCritic, groups_by_prefix

    assert groups_by_prefix(["adversary_0", "adversary_1", "agent_0", "leader"]) == [0, 0, 1, 2]
    env = make_vec_env("mpe2:simple_tag_v3", num_envs=2, seed=0, env_kwargs=SHORT)
    agent = MAPPO(env, seed=0, group_policies=True, num_epochs=1)
    policy = agent.policy
    assert isinstance(policy, GroupedActorCritic) and policy.group_of.tolist() == [0, 0, 0, 1]
    agent.train(2 * 4 * 10, progress_bar=False)
    obs = {k: torch.as_tensor(v) for k, v in env.reset(seed=1)[0].items()}
    good = obs["agent_id"].argmax(-1) == 3  # the good agent's rows (group 1)
    with torch.no_grad():
        before, values = policy(obs).dist.probs, policy.value(obs)
        for p in policy.members[1].parameters():
            p.add_(0.5)
        after, moved = policy(obs).dist.probs, policy.value(obs)
    assert torch.equal(before[~good], after[~good]) and torch.equal(values[~good], moved[~good])
    assert not torch.allclose(before[good], after[good])
    with pytest.raises(ValueError, match="one group index per agent"):
        GroupedActorCritic(env.single_observation_space, env.single_action_space, groups=[0, 1])


def test_cli_names_a_bad_self_play_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "ppo", "--env", TICTACTOE, "--self-play", "maybe"]) == 2
    assert "--self-play 'maybe': give on, alternate, off or a mapping" in capsys.readouterr().err


def test_agents_that_would_train_on_inactive_steps_refuse_agent_rows() -> None:
    from rlkit.agents import PQN, DrAC

    # their own compute_returns / minibatches ignore active steps
    for cls, kwargs in ((PQN, {}), (DrAC, {"augmentation": "identity"})):
        with pytest.raises(TypeError, match="handles_active_steps"):
            cls(spread(), seed=0, **kwargs)

    class Declared(PPO):
        handles_active_steps = True

        def minibatches(self) -> Any:
            yield from super().minibatches()

    Declared(spread(), seed=0)  # declared: accepted
