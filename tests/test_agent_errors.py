"""Clear errors for bad agent arguments; act/evaluate surface; swapping primitives."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlkit.agents import A2C, PPO
from rlkit.config import UnknownHyperparameterError
from rlkit.distributions import Categorical
from rlkit.encoders import MLP, DictEncoder, Identity
from rlkit.envs import make_vec_env
from rlkit.policies import ActorCritic
from rlkit.registry import UnknownIdError
from rlkit.rewards.rnd import RND

TINY = {"num_steps": 16, "batch_size": 32, "num_epochs": 1}


class TupleActionEnv(gym.Env[np.ndarray, Any]):
    """Box observation, Tuple action space (not supported by the on-policy agents)."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3)))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return np.zeros(3, dtype=np.float32), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return np.zeros(3, dtype=np.float32), 0.0, False, False, {}


class DictObsEnv(gym.Env[dict[str, np.ndarray], np.int64]):
    """Dict observation, Discrete(3) action, 10-step episodes with reward 1."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict(
            {
                "a": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
                "b": spaces.Box(0.0, 1.0, shape=(4,), dtype=np.float32),
            }
        )
        self.action_space = spaces.Discrete(3)
        self.t = 0

    def _obs(self) -> dict[str, np.ndarray]:
        return {k: s.sample() for k, s in self.observation_space.spaces.items()}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        self.t = 0
        return self._obs(), {}

    def step(
        self, action: np.int64
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self._obs(), 1.0, False, self.t >= 10, {}


@pytest.fixture
def cartpole() -> Any:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    yield env
    env.close()


@pytest.fixture
def pendulum() -> Any:
    env = make_vec_env("Pendulum-v1", num_envs=2, seed=0)
    yield env
    env.close()


# --------------------------------------------------------------------------- unsupported spaces
@pytest.mark.parametrize(
    ("env_id", "space_repr"),
    [("FrozenLake-v1", "Discrete(16)"), ("Blackjack-v1", "Tuple(Discrete(32)")],
)
@pytest.mark.parametrize("agent_cls", [PPO, A2C])
def test_unsupported_observation_space(agent_cls: type, env_id: str, space_repr: str) -> None:
    env = make_vec_env(env_id, num_envs=1)
    with pytest.raises(TypeError) as info:
        agent_cls(env)
    msg = str(info.value)
    assert agent_cls.__name__ in msg
    assert "observation space" in msg
    assert space_repr in msg
    assert "supported: Box, Dict" in msg
    env.close()


def test_unsupported_action_space() -> None:
    env = make_vec_env(TupleActionEnv, num_envs=1)
    with pytest.raises(TypeError, match=r"PPO does not support action space Tuple\(") as info:
        PPO(env)
    assert "Discrete" in str(info.value) and "Box" in str(info.value)
    env.close()


def test_encoder_built_for_another_space(cartpole: Any) -> None:
    other = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
    with pytest.raises(ValueError, match=r"MLP was built for observation space Box") as info:
        PPO(cartpole, encoder=MLP(other))
    assert "(3,)" in str(info.value) and "(4,)" in str(info.value)


def test_distribution_built_for_another_space(cartpole: Any) -> None:
    with pytest.raises(ValueError, match=r"Categorical was built for action space Discrete\(5\)"):
        PPO(cartpole, distribution=Categorical(spaces.Discrete(5)))


# --------------------------------------------------------------------------- hyperparameters
def test_unknown_hyperparameter_lists_valid_names(cartpole: Any) -> None:
    with pytest.raises(TypeError) as info:
        PPO(cartpole, learning_rate=1e-3)
    assert isinstance(info.value, UnknownHyperparameterError)
    msg = str(info.value)
    assert "learning_rate" in msg
    for name in ("lr", "gamma", "num_steps", "clip_range", "ent_coef", "seed"):
        assert name in msg
    # A2C's own names are listed for A2C
    with pytest.raises(UnknownHyperparameterError, match="rms_alpha"):
        A2C(cartpole, clip_range=0.1)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"gamma": 2}, r"gamma=2"),
        ({"gamma": -0.1}, r"gamma=-0.1"),
        ({"gae_lambda": 1.5}, r"gae_lambda=1.5"),
        ({"num_steps": 0}, r"num_steps=0"),
        ({"lr": -1e-3}, r"lr=-0.001"),
        ({"batch_size": 0, "num_epochs": 0}, r"batch_size=0, num_epochs=0"),
    ],
)
def test_invalid_hyperparameter_values(cartpole: Any, kwargs: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        PPO(cartpole, **kwargs)


def test_wrongly_typed_hyperparameter(cartpole: Any) -> None:
    with pytest.raises(TypeError, match=r"gamma: expected a number, got 'high'"):
        PPO(cartpole, gamma="high")
    with pytest.raises(TypeError, match=r"num_steps: expected an integer"):
        PPO(cartpole, num_steps=2.5)
    # lossless conversions are accepted
    agent = PPO(cartpole, num_steps=8.0, gamma="0.9", normalize_obs="true")
    assert agent.config.num_steps == 8 and isinstance(agent.config.num_steps, int)
    assert agent.config.gamma == 0.9
    assert agent.config.normalize_obs is True


def test_config_object_and_mapping(cartpole: Any) -> None:
    agent = PPO(cartpole, {"gamma": 0.5, "num_steps": 4}, gamma=0.7)
    assert (agent.config.gamma, agent.config.num_steps) == (0.7, 4)
    with pytest.raises(TypeError, match="config must be a PPOConfig or a mapping"):
        PPO(cartpole, 42)


def test_policy_and_encoder_together(cartpole: Any) -> None:
    with pytest.raises(ValueError, match=r"either policy= or encoder=/distribution="):
        PPO(cartpole, policy="actor_critic", encoder="mlp")
    with pytest.raises(ValueError, match=r"either policy= or encoder=/distribution="):
        PPO(cartpole, policy="actor_critic", distribution="categorical")


def test_non_vector_env() -> None:
    env = gym.make("CartPole-v1")
    with pytest.raises(TypeError, match=r"must be a gymnasium VectorEnv.*make_vec_env.*TimeLimit"):
        PPO(env)  # type: ignore[arg-type]
    env.close()


def test_unknown_primitive_id_lists_known_ids(cartpole: Any) -> None:
    with pytest.raises(KeyError) as info:
        PPO(cartpole, encoder="resnet9000")
    assert isinstance(info.value, UnknownIdError)
    msg = str(info.value)
    assert "resnet9000" in msg
    for known in ("identity", "mlp", "nature_cnn", "dict"):
        assert known in msg
    with pytest.raises(UnknownIdError, match=r"known intrinsic_rewards: .*rnd"):
        PPO(cartpole, intrinsic_reward="icm-nope")
    with pytest.raises(UnknownIdError, match=r"unknown policy id 'nope'.*actor_critic"):
        PPO(cartpole, policy={"id": "nope"})


def test_primitive_of_wrong_type(cartpole: Any) -> None:
    with pytest.raises(TypeError, match=r"encoder must be a Encoder, a registered id"):
        PPO(cartpole, encoder=3)


# --------------------------------------------------------------------------- act / evaluate
def test_act_single_and_batch_discrete(cartpole: Any) -> None:
    agent = PPO(cartpole, seed=0)
    space = cartpole.single_observation_space
    space.seed(0)
    single = np.clip(space.sample(), -2, 2)
    a = agent.act(single)
    assert np.ndim(a) == 0 and cartpole.single_action_space.contains(int(a))
    batch = np.clip(np.stack([space.sample() for _ in range(7)]), -2, 2)
    actions = agent.act(batch, deterministic=True)
    assert actions.shape == (7,)
    assert actions.dtype == cartpole.single_action_space.dtype
    assert all(cartpole.single_action_space.contains(int(x)) for x in actions)
    # deterministic acting is deterministic and a single observation matches its batch row
    np.testing.assert_array_equal(actions, agent.act(batch, deterministic=True))
    assert agent.act(batch[3], deterministic=True) == actions[3]


def test_act_single_and_batch_continuous_clipped(pendulum: Any) -> None:
    agent = PPO(pendulum, seed=0)
    with torch.no_grad():
        agent.policy.distribution.log_std.fill_(3.0)  # std ~20: samples leave [-2, 2]
    space = pendulum.single_observation_space
    space.seed(1)
    batch = np.stack([space.sample() for _ in range(64)])
    actions = agent.act(batch)
    assert actions.shape == (64, 1) and actions.dtype == np.float32
    assert actions.min() >= -2.0 and actions.max() <= 2.0
    assert np.isclose(np.abs(actions), 2.0).any()  # some samples were clipped to the bounds
    single = agent.act(batch[0], deterministic=True)
    assert single.shape == (1,)
    np.testing.assert_allclose(single, agent.act(batch, deterministic=True)[0], atol=1e-6)


def test_act_dict_observations() -> None:
    env = make_vec_env(DictObsEnv, num_envs=2, seed=0)
    agent = PPO(env, seed=0, **TINY)
    assert isinstance(agent.policy.encoder, DictEncoder)
    obs, _ = env.reset(seed=0)
    actions = agent.act(obs, deterministic=True)
    assert actions.shape == (2,)
    single = {k: v[1] for k, v in obs.items()}
    assert agent.act(single, deterministic=True) == actions[1]
    agent.train(32, progress_bar=False)
    assert agent.global_step == 32
    env.close()


def test_evaluate_returns_documented_keys(cartpole: Any) -> None:
    agent = PPO(cartpole, seed=0)
    result = agent.evaluate(episodes=3)
    documented = {"return_mean", "return_std", "length_mean", "length_std", "episodes"}
    assert set(result) == documented | {"truncated"}
    assert result["episodes"] == 3
    assert all(isinstance(v, float) and math.isfinite(v) for v in result.values())
    # CartPole pays 1 per step: return == length
    assert result["return_mean"] == pytest.approx(result["length_mean"])
    assert result["length_mean"] >= 8
    # evaluation is reproducible for a fixed seed and does not touch the training env's steps
    assert agent.evaluate(episodes=3, seed=5) == agent.evaluate(episodes=3, seed=5)
    assert agent.global_step == 0


def test_evaluate_on_given_env_and_bad_arguments(pendulum: Any) -> None:
    agent = PPO(pendulum, seed=0)
    with pytest.raises(ValueError, match="episodes must be an integer >= 1"):
        agent.evaluate(episodes=0)
    eval_env = make_vec_env("Pendulum-v1", num_envs=2, seed=3)
    result = agent.evaluate(episodes=2, env=eval_env)
    assert result["episodes"] == 2 and result["length_mean"] == 200
    assert result["return_mean"] < 0
    eval_env.close()
    raw = SyncVectorEnv([lambda: gym.make("Pendulum-v1")], autoreset_mode=AutoresetMode.SAME_STEP)
    hand_built = PPO(raw, seed=0)
    with pytest.raises(ValueError, match=r"not built by rlkit.envs.make_vec_env.*pass env="):
        hand_built.evaluate(episodes=1)
    raw.close()


# --------------------------------------------------------------------------- swapping primitives
def test_default_encoder_is_identity(cartpole: Any) -> None:
    assert isinstance(PPO(cartpole).policy.encoder, Identity)


@pytest.mark.parametrize(
    ("encoder", "feature_dim"),
    [
        ("mlp", 64),
        ({"id": "mlp", "feature_dim": 32}, 32),
        ({"id": "mlp", "feature_dim": 16, "hidden_sizes": [8], "activation": "relu"}, 16),
    ],
)
def test_swap_encoder_by_id_and_spec(cartpole: Any, encoder: Any, feature_dim: int) -> None:
    agent = PPO(cartpole, seed=0, encoder=encoder, **TINY)
    assert isinstance(agent.policy.encoder, MLP)
    assert agent.policy.encoder.feature_dim == feature_dim
    first = agent.policy.actor_trunk[0]
    assert first.in_features == feature_dim
    metrics = agent.iteration()
    assert agent.global_step == 32 and agent.num_updates == 1
    assert math.isfinite(metrics["loss/policy"])


def test_swap_policy_and_distribution_by_spec(pendulum: Any) -> None:
    agent = PPO(
        pendulum,
        seed=0,
        policy={"id": "actor_critic", "hidden_sizes": [16], "share_trunk": True},
        **TINY,
    )
    assert isinstance(agent.policy, ActorCritic)
    assert agent.policy.share_trunk and agent.policy.actor_trunk is agent.policy.critic_trunk
    assert agent.policy.action_head.in_features == 16
    agent.iteration()
    agent2 = PPO(
        pendulum,
        seed=0,
        distribution={"id": "diag_gaussian", "state_dependent_std": True},
        **TINY,
    )
    assert agent2.policy.action_head.out_features == 2  # mean and log-std
    agent2.iteration()
    assert agent2.global_step == 32


def test_primitive_objects_are_used_as_given(cartpole: Any) -> None:
    encoder = MLP(cartpole.single_observation_space, feature_dim=12)
    agent = PPO(cartpole, encoder=encoder)
    assert agent.policy.encoder is encoder


def test_intrinsic_reward_rnd_changes_rewards() -> None:
    def run(intrinsic: Any) -> tuple[Any, dict[str, float]]:
        env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
        agent = PPO(env, seed=0, intrinsic_reward=intrinsic, **TINY)
        metrics = agent.iteration()
        env.close()
        return agent, metrics

    plain, plain_metrics = run(None)
    # CartPole pays exactly 1 per step and cannot be truncated within 16 steps
    torch.testing.assert_close(plain.storage.rewards, torch.ones(16, 2))
    assert "rollout/intrinsic_reward_mean" not in plain_metrics

    rnd, metrics = run("rnd")
    assert isinstance(rnd.intrinsic_reward, RND)
    assert "rollout/intrinsic_reward_mean" in metrics
    assert math.isfinite(metrics["rollout/intrinsic_reward_mean"])
    assert any(k.startswith("intrinsic/") for k in metrics)
    assert not torch.allclose(rnd.storage.rewards, torch.ones(16, 2))
    bonus = rnd.storage.rewards - 1.0
    assert metrics["rollout/intrinsic_reward_mean"] == pytest.approx(float(bonus.mean()), abs=1e-5)
    assert "intrinsic_reward.predictor" in rnd.optimizers()  # checkpointed with the agent

    spec, _ = run({"id": "rnd", "coef": 0.5, "hidden_dim": 32})
    assert spec.intrinsic_reward is not None
    assert spec.intrinsic_reward.init_args["coef"] == 0.5


def test_custom_storage_by_object_and_spec() -> None:
    from rlkit.storages import RolloutStorage

    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    storage = RolloutStorage(env.single_observation_space, env.single_action_space, 16, 2)
    agent = PPO(env, storage=storage, num_steps=16, batch_size=16, num_epochs=1)
    assert agent.storage is storage
    agent.train(32, progress_bar=False)
    assert agent.primitives()["storage"] is storage
    by_id = PPO(env, storage="rollout", num_steps=8, batch_size=16, num_epochs=1)
    assert by_id.storage.num_steps == 8


def test_storage_with_wrong_shape_is_rejected() -> None:
    from rlkit.storages import RolloutStorage

    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    storage = RolloutStorage(env.single_observation_space, env.single_action_space, 32, 2)
    with pytest.raises(ValueError, match="num_steps=16"):
        PPO(env, storage=storage, num_steps=16)
    wrong_actions = RolloutStorage(
        env.single_observation_space, env.single_action_space, 16, 2, action_dtype="float32"
    )
    with pytest.raises(ValueError, match="lays out actions"):
        PPO(env, storage=wrong_actions, num_steps=16)
