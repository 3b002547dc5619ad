"""Intrinsic rewards inside agents: PPO checkpoints (weights, statistics, optimizers, spec),
Combined's spec round trip, and `rlkit train ... --intrinsic-reward ID` for every id."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from rlkit.agents import PPO
from rlkit.cli.main import main
from rlkit.configurable import build_from_spec
from rlkit.envs import make_vec_env
from rlkit.prototypes import load_agent
from rlkit.rewards import (
    E3B,
    INTRINSIC_REWARDS,
    RND,
    Combined,
    IntrinsicReward,
    TransitionBatch,
)

ENV = "rlkit/DeepChain-v0"
ENV_KWARGS = {"length": 6, "max_steps": 12}
SMALL: dict[str, dict[str, Any]] = {
    "rnd": {"latent_dim": 8, "hidden_dim": 16},
    "icm": {"feature_dim": 8, "hidden_dim": 16},
    "ride": {"feature_dim": 8, "hidden_dim": 16},
    "ngu": {"embedding_dim": 8, "hidden_dim": 16, "rnd_latent_dim": 8},
    "e3b": {"embedding_dim": 8, "hidden_dim": 16},
    "re3": {"latent_dim": 8, "hidden_dim": 16},
    "rise": {"latent_dim": 8, "hidden_dim": 16},
    "pseudo_counts": {"sketch_width": 256},
    "disagreement": {"feature_dim": 8, "hidden_dim": 16, "num_blocks": 1},
    "combined": {
        "modules": [
            {"id": "rnd", "latent_dim": 8, "hidden_dim": 16},
            {"id": "ngu", "embedding_dim": 8, "hidden_dim": 16, "rnd_latent_dim": 8},
            "pseudo_counts",
        ],
        "weights": [1.0, 0.5, 0.25],
    },
}


def _fresh_batch(seed: int) -> TransitionBatch:
    g = torch.Generator().manual_seed(seed)
    states = torch.randint(0, 6, (8, 2), generator=g)
    nxt = torch.randint(0, 6, (8, 2), generator=g)
    return TransitionBatch(
        obs=torch.nn.functional.one_hot(states, 6).float(),
        actions=torch.randint(0, 2, (8, 2), generator=g),
        next_obs=torch.nn.functional.one_hot(nxt, 6).float(),
        dones=torch.zeros(8, 2),
    )


@pytest.mark.parametrize("rid", sorted(SMALL))
def test_ppo_checkpoint_restores_the_bonus_exactly(rid: str, tmp_path: Path) -> None:
    env = make_vec_env(ENV, num_envs=2, seed=0, env_kwargs=ENV_KWARGS)
    agent = PPO(
        env,
        seed=0,
        num_steps=16,
        batch_size=32,
        num_epochs=1,
        intrinsic_reward={"id": rid, **SMALL[rid]},
    )
    agent.train(64, progress_bar=False)
    original = agent.intrinsic_reward
    assert original is not None and original.registry_id == rid
    path = agent.save(tmp_path / "ckpt")
    saved = json.loads((path / "config.json").read_text())["primitives"]["intrinsic_reward"]
    assert saved["id"] == rid and saved["__primitive__"] == "intrinsic_reward"

    loaded = load_agent(path)
    restored = loaded.intrinsic_reward  # type: ignore[attr-defined]
    assert type(restored) is type(original)
    own, back = original.state_dict(), restored.state_dict()
    assert own.keys() == back.keys()
    for key in own:
        assert torch.equal(own[key], back[key]), key
    assert original.optimizers().keys() == restored.optimizers().keys()
    for name, opt in original.optimizers().items():
        assert len(opt.state) > 0, f"{name} was never stepped"
        other = restored.optimizers()[name].state_dict()["state"]
        for index, entry in opt.state_dict()["state"].items():
            for key, value in entry.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(other[index][key]))

    # episodic memories are in the state_dict too: both continue the same episodes
    for seed in (1, 2):  # the second batch also checks the statistics moved identically
        batch = _fresh_batch(seed)
        torch.testing.assert_close(restored.compute(batch), original.compute(batch), rtol=0, atol=0)
    torch.manual_seed(5)
    metrics_a = original.update(_fresh_batch(3))
    torch.manual_seed(5)
    metrics_b = restored.update(_fresh_batch(3))
    assert metrics_a == metrics_b
    env.close()
    loaded.env.close()


# --------------------------------------------------------------------------- Combined
def test_combined_accepts_objects_ids_and_specs_and_round_trips() -> None:
    env = make_vec_env(ENV, num_envs=1, env_kwargs=ENV_KWARGS)
    obs_space, act_space = env.single_observation_space, env.single_action_space
    torch.manual_seed(0)
    combined = Combined(
        obs_space,
        act_space,
        modules=[
            RND(obs_space, act_space, latent_dim=8, hidden_dim=16),
            "re3",
            {"id": "e3b", "embedding_dim": 4, "hidden_dim": 8},
        ],
        weights=[1.0, 0.5, 2.0],
    )
    kinds = [type(m).__name__ for m in combined.members()]
    assert kinds == ["RND", "RE3", "E3B"]
    spec = combined.spec()
    assert spec["id"] == "combined"
    rebuilt = build_from_spec("intrinsic_reward", json.loads(json.dumps(spec)))
    assert isinstance(rebuilt, Combined)
    assert [type(m).__name__ for m in rebuilt.members()] == kinds
    assert rebuilt.weights == [1.0, 0.5, 2.0]
    assert rebuilt.state_dict().keys() == combined.state_dict().keys()
    e3b = rebuilt.members()[2]
    assert isinstance(e3b, E3B) and e3b.embedding_dim == 4
    assert set(combined.optimizers()) == {"0_rnd.predictor", "2_e3b.embedding"}
    env.close()


def test_combined_sums_weighted_sub_rewards_and_forwards_everything() -> None:
    env = make_vec_env(ENV, num_envs=1, env_kwargs=ENV_KWARGS)
    obs_space, act_space = env.single_observation_space, env.single_action_space
    specs = [{"id": "rnd", "latent_dim": 8, "hidden_dim": 16}, {"id": "e3b", "embedding_dim": 4}]
    torch.manual_seed(0)
    combined = Combined(obs_space, act_space, modules=specs, weights=[2.0, 0.5], coef=0.1)
    torch.manual_seed(0)
    parts = [
        INTRINSIC_REWARDS.build(s, observation_space=obs_space, action_space=act_space)
        for s in specs
    ]
    batch = _fresh_batch(0)
    expected = 0.1 * (2.0 * parts[0].reward(batch, 7) + 0.5 * parts[1].reward(batch, 7))
    torch.testing.assert_close(combined.reward(batch, step=7), expected)
    metrics = combined.update(batch)
    assert set(metrics) == {"0_rnd/rnd_loss", "1_e3b/e3b_inverse_loss"}
    e3b = combined.members()[1]
    assert isinstance(e3b, E3B)
    assert (e3b.memory_sizes() > 0).all()
    combined.reset_episodes(torch.ones(2, dtype=torch.bool))
    combined.compute(_fresh_batch(1))  # resets with no end in the batch clear before it
    assert (e3b.memory_sizes() == 9).all()  # the first observation and 8 next ones
    with pytest.raises(ValueError, match="non-empty list"):
        Combined(obs_space, act_space, modules=[])
    with pytest.raises(ValueError, match="weights"):
        Combined(obs_space, act_space, modules=["rnd"], weights=[1.0, 2.0])
    with pytest.raises(TypeError, match=r"modules\[0\]"):
        Combined(obs_space, act_space, modules=[3])  # type: ignore[list-item]
    env.close()


# --------------------------------------------------------------------------- CLI
COMBINED_FLAG = "{id: combined, modules: [rnd, pseudo_counts], weights: [1.0, 0.5]}"


@pytest.mark.parametrize("value", [*sorted(INTRINSIC_REWARDS), COMBINED_FLAG])
def test_cli_trains_with_every_intrinsic_reward(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rid = "combined" if value == COMBINED_FLAG else value
    out = tmp_path / "run"
    argv = [
        "train", "ppo", "--env", ENV, "--env-kwargs", json.dumps(ENV_KWARGS),
        "--intrinsic-reward", value, "--total-steps", "64", "--num-envs", "2",
        "--num-steps", "16", "--batch-size", "32", "--num-epochs", "1", "--seed", "0",
        "--eval-episodes", "1", "--out", str(out), "--no-progress",
    ]  # fmt: skip
    try:
        status = main(argv)
    except SystemExit as e:  # pragma: no cover - shows the CLI's message on failure
        print(e.code, file=sys.stderr)
        status = 1
    assert status == 0, capsys.readouterr().err
    config = json.loads((out / "final" / "config.json").read_text())
    assert config["primitives"]["intrinsic_reward"]["id"] == rid
    header = (out / "progress.csv").read_text().splitlines()[0]
    assert "rollout/intrinsic_reward_mean" in header
    loaded = load_agent(out / "final")
    module = loaded.intrinsic_reward  # type: ignore[attr-defined]
    assert type(module).registry_id == rid
    if value == COMBINED_FLAG:
        assert [m.registry_id for m in module.members()] == ["rnd", "pseudo_counts"]
        assert module.weights == [1.0, 0.5]
    loaded.env.close()


def test_yaml_config_with_an_intrinsic_reward_spec(tmp_path: Path) -> None:
    config = tmp_path / "explore.yaml"
    config.write_text(
        "env: rlkit/DeepChain-v0\n"
        "env_kwargs: {length: 6, max_steps: 12}\n"
        "num_envs: 2\n"
        "total_steps: 64\n"
        "seed: 0\n"
        "num_steps: 16\n"
        "batch_size: 32\n"
        "num_epochs: 1\n"
        "eval_episodes: 1\n"
        "intrinsic_reward:\n"
        "  id: ngu\n"
        "  coef: 0.5\n"
        "  embedding_dim: 8\n"
        "  k: 5\n"
    )
    out = tmp_path / "run"
    assert main(["train", "ppo", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    loaded = load_agent(out / "final")
    module = loaded.intrinsic_reward  # type: ignore[attr-defined]
    assert isinstance(module, IntrinsicReward) and module.registry_id == "ngu"
    assert module.init_args["coef"] == 0.5 and module.init_args["k"] == 5
    loaded.env.close()
