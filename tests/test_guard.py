"""The non-finite guard: NaN or inf from the env, in a loss or in a gradient stops training with a
message naming the source and the step; a NaN model is never saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit import guard
from rlkit.agents import DQN, PPO, SAC
from rlkit.envs import make_vec_env
from rlkit.guard import NonFiniteError


class Spoil(gym.Wrapper):  # type: ignore[type-arg]
    """CartPole/Pendulum whose ``what`` (obs or reward) turns NaN/inf at the ``at``-th step."""

    def __init__(self, env: gym.Env, what: str, at: int, value: float) -> None:  # type: ignore[type-arg]
        super().__init__(env)
        self.what, self.at, self.value, self.count = what, at, value, 0

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.count += 1
        if self.count == self.at:
            if self.what == "obs":
                obs = np.array(obs, dtype=np.float32)
                obs[1] = self.value
            else:
                reward = self.value
        return obs, reward, terminated, truncated, info


def _env(env_id: str, what: str, at: int, value: float = float("nan")) -> Any:
    return make_vec_env(lambda: Spoil(gym.make(env_id), what, at, value), num_envs=2, seed=0)


@pytest.mark.parametrize(
    ("agent_cls", "env_id", "kwargs"),
    [
        (PPO, "CartPole-v1", {"num_steps": 16}),
        (DQN, "CartPole-v1", {"learning_starts": 10}),
        (SAC, "Pendulum-v1", {"learning_starts": 10, "batch_size": 16}),
    ],
    ids=["ppo", "dqn", "sac"],
)
@pytest.mark.parametrize(("what", "value"), [("obs", float("nan")), ("reward", float("inf"))])
def test_a_non_finite_env_output_stops_training_naming_it(
    agent_cls: Any, env_id: str, kwargs: dict[str, Any], what: str, value: float
) -> None:
    agent = agent_cls(_env(env_id, what, at=30, value=value), seed=0, **kwargs)
    with pytest.raises(NonFiniteError) as info:
        agent.train(2_000, progress_bar=False)
    message = str(info.value)
    expected = "observation" if what == "obs" else "reward"
    assert f"non-finite {expected} at env step 58" in message, message  # 2 envs: step 29 -> 58
    assert "sub-env(s) [0, 1]" in message
    assert agent.global_step < 100


def test_non_finite_weights_stop_training_and_name_the_loss_terms(tmp_path: Path) -> None:
    agent = PPO(make_vec_env("CartPole-v1", num_envs=2, seed=0), seed=0, num_steps=16)
    agent.train(64, progress_bar=False)
    good = agent.save(tmp_path / "checkpoint")
    before = {p.name: p.read_bytes() for p in good.iterdir()}
    with torch.no_grad():
        next(agent.policy.parameters()).fill_(float("nan"))
    with pytest.raises(
        NonFiniteError, match=r"non-finite gradient in PPO optimizer 'policy'; .*: policy=nan"
    ):
        agent.train(256, progress_bar=False)
    with pytest.raises(NonFiniteError, match=r"refusing to write checkpoint .*non-finite weights"):
        agent.save(tmp_path / "checkpoint", overwrite=True)
    assert {p.name: p.read_bytes() for p in good.iterdir()} == before  # the good one stays


def test_the_skip_policy_drops_only_the_bad_update() -> None:
    layer = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
    from rlkit.utils.optim import optimizer_step

    before = [p.detach().clone() for p in layer.parameters()]
    layer(torch.full((2, 3), float("nan"))).sum().backward()
    skipped = guard.skipped_updates()
    with guard.policy("skip"):
        optimizer_step(optimizer)
    assert guard.skipped_updates() == skipped + 1
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters(), strict=True))
    assert all(float(p.grad.abs().sum()) == 0.0 for p in layer.parameters())  # type: ignore[union-attr]
    layer(torch.ones(2, 3)).sum().backward()
    with guard.policy("skip"):
        optimizer_step(optimizer)  # a finite gradient steps as usual
    assert not torch.equal(before[0], layer.weight)
    layer(torch.full((2, 3), float("inf"))).sum().backward()
    with pytest.raises(NonFiniteError, match="non-finite gradient in Adam over 2"):
        optimizer_step(optimizer)  # default policy: raise
    with guard.policy("off"):
        optimizer_step(optimizer)  # no check: the step applies the NaN
    assert not bool(torch.isfinite(layer.weight).all())
    with (
        pytest.raises(ValueError, match="on_nonfinite must be one of raise, skip, off"),
        guard.policy("ignore"),
    ):
        pass


def test_on_nonfinite_skip_drops_the_bad_updates_and_training_goes_on() -> None:
    """A finite but huge reward (1e38) makes the value loss overflow for one rollout: with
    ``on_nonfinite="skip"`` those updates are dropped and training ends with finite weights;
    with the default it stops, naming the value term."""
    huge = 1e38
    agent = PPO(_env("CartPole-v1", "reward", at=30, value=huge), seed=0, num_steps=16)
    with pytest.raises(NonFiniteError, match=r"PPO optimizer 'policy'; .*value=inf"):
        agent.train(2_000, progress_bar=False)
    skipped = guard.skipped_updates()
    agent = PPO(
        _env("CartPole-v1", "reward", at=30, value=huge), seed=0, num_steps=16, on_nonfinite="skip"
    )
    agent.train(2_000, progress_bar=False)
    assert agent.global_step == 2_016 and guard.skipped_updates() > skipped
    assert all(bool(torch.isfinite(p).all()) for p in agent.policy.parameters())
