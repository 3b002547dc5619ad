"""REDQ: the random in-target subset, the delayed actor, round trips, bad settings, the CLI,
and learning Pendulum."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import rlkit.agents.redq as redq_module
from rlkit.agents import REDQ
from rlkit.cli.main import main
from rlkit.config.presets import load_preset
from rlkit.envs import make_vec_env
from rlkit.losses import random_members
from rlkit.prototypes import load_agent

TINY = {"learning_starts": 32, "batch_size": 16, "hidden_sizes": [16], "buffer_size": 500}


def _pendulum(seed: int = 0) -> Any:
    return make_vec_env("Pendulum-v1", num_envs=1, seed=seed)


def test_random_members_are_distinct_uniform_and_follow_the_seed() -> None:
    gen = torch.Generator().manual_seed(0)
    draws = [random_members(10, 2, gen) for _ in range(2000)]
    assert all(
        len(d) == 2 and d[0] != d[1] and 0 <= int(d.min()) <= int(d.max()) < 10 for d in draws
    )
    counts = torch.bincount(torch.cat(draws), minlength=10)  # 400 expected per member
    assert int(counts.min()) > 300 and int(counts.max()) < 500
    pairs = {tuple(sorted(d.tolist())) for d in draws}
    assert len(pairs) == 45  # every unordered pair of 10 occurs
    again = torch.Generator().manual_seed(0)
    assert all(torch.equal(d, random_members(10, 2, again)) for d in draws[:50])
    other = torch.Generator().manual_seed(1)
    assert any(not torch.equal(d, random_members(10, 2, other)) for d in draws[:50])
    assert sorted(random_members(4, 4, gen).tolist()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"size must be in \[1, 3\], got 4"):
        random_members(3, 4)


def test_the_target_is_the_minimum_over_the_drawn_subset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Target critics that output the constants 10, 20, ..., 100 and a negligible fixed
    temperature: each update's TD target is ``r + g * 10 (min(S) + 1)`` for the subset ``S`` it
    drew, and the subsets come from the agent's seeded generator."""
    drawn: list[torch.Tensor] = []

    def recording(num: int, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        assert generator is not None  # the agent's own generator, so the seed decides
        out = random_members(num, size, generator)
        drawn.append(out.clone())
        return out

    monkeypatch.setattr(redq_module, "random_members", recording)
    agent = REDQ(_pendulum(), seed=0, n_critics=10, num_min=2, ent_coef=1e-9, **TINY)
    agent.train(40, progress_bar=False)
    last = agent.target.net.critic.layers[-1]
    seen: list[dict[str, torch.Tensor]] = []
    td_inputs = agent.td_inputs

    def record(batch: Any, q: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        seen.append({"target": target, "rewards": batch.rewards, "discounts": batch.discounts})
        return td_inputs(batch, q, target)

    agent.td_inputs = record
    for _ in range(5):
        with torch.no_grad():  # re-pin the target critics (the Polyak update moves them)
            last.weight.zero_()
            last.bias.copy_(torch.arange(10.0, 101.0, 10.0).reshape(10, 1, 1))
        drawn.clear()
        agent.train_step()
        (subset,) = drawn
        row = seen[-1]
        expected = row["rewards"] + row["discounts"] * 10.0 * (subset.min() + 1)
        torch.testing.assert_close(row["target"], expected, rtol=0, atol=1e-5)


def test_the_actor_and_temperature_step_once_per_policy_delay_updates() -> None:
    steps: list[str] = []

    class Counting(REDQ):
        def clip_and_step(self, loss: Any, optimizer: Any = None) -> Any:
            names = {id(self.critic_optimizer): "critic", id(self.actor_optimizer): "actor"}
            steps.append(names.get(id(optimizer), "ent_coef"))
            return super().clip_and_step(loss, optimizer)

    agent = Counting(_pendulum(), seed=0, gradient_steps=4, policy_delay=4, **TINY)
    agent.train(40, progress_bar=False)
    assert agent.num_updates == 4 * (40 - 32 + 1)
    assert steps.count("critic") == agent.num_updates
    assert steps.count("actor") == steps.count("ent_coef") == agent.num_updates // 4
    assert steps[:5] == ["critic", "critic", "critic", "ent_coef", "critic"]  # 4th update


def test_same_seed_same_run_and_round_trip(tmp_path: Path) -> None:
    settings = {"seed": 3, "n_critics": 4, "num_min": 2, "gradient_steps": 2, **TINY}
    agent = REDQ(_pendulum(3), **settings).train(60, progress_bar=False)
    twin = REDQ(_pendulum(3), **settings).train(60, progress_bar=False)
    for net, other in ((agent.policy, twin.policy), (agent.target.net, twin.target.net)):
        for a, b in zip(net.state_dict().values(), other.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    assert agent.policy.num_critics == 4
    agent.save(tmp_path / "redq")
    loaded = load_agent(tmp_path / "redq")
    assert isinstance(loaded, REDQ) and loaded.config.num_min == 2
    features, actions = agent.policy.features(torch.randn(3, 3)), torch.zeros(3, 1)
    torch.testing.assert_close(
        loaded.policy.q_values(features, actions), agent.policy.q_values(features, actions)
    )
    loaded.train(80, progress_bar=False)  # resumes
    assert loaded.num_updates == agent.num_updates + 2 * 20


def test_prioritized_replay_weights_and_priorities() -> None:
    agent = REDQ(_pendulum(), seed=0, prioritized_replay=True, compute="reference", **TINY)
    agent.train(48, progress_bar=False)
    assert agent.prioritized and agent.storage.sampler.max_priority != 1.0
    seen: list[Any] = []
    loss = agent.loss

    def record(name: str, inputs: Any) -> Any:
        seen.append((name, set(inputs)))
        return loss(name, inputs)

    agent.loss = record
    agent.train_step()
    assert "weight" in next(keys for name, keys in seen if name == "critic")


def test_bad_settings_fail_in_one_line() -> None:
    with pytest.raises(ValueError, match="num_min=4 exceeds the policy's 3 critics"):
        REDQ(_pendulum(), n_critics=3, num_min=4, **TINY)
    with pytest.raises(ValueError, match=r"invalid hyperparameter\(s\): policy_delay=0"):
        REDQ(_pendulum(), policy_delay=0)
    with pytest.raises(TypeError, match="REDQ needs a SquashedGaussianActorCritic policy"):
        REDQ(_pendulum(), policy="deterministic_actor_critic")


def test_cli_trains_redq(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "redq", "--env", "Pendulum-v1", "--seed", "0", "--no-progress"]
    tiny = ["--total-steps", "60", "--learning-starts", "40", "--batch-size", "16"]
    assert main([*args, *tiny, "--gradient-steps", "2", "--out", str(out)]) == 0
    assert isinstance(load_agent(out), REDQ)


def redq_pendulum(seed: int) -> dict[str, float]:
    hyper = load_preset("redq", "Pendulum-v1")
    num_envs = hyper.pop("num_envs")
    hyper.pop("total_steps")
    env = make_vec_env("Pendulum-v1", num_envs=num_envs, seed=seed)
    small = {"hidden_sizes": [64, 64], "gradient_steps": 5, "policy_delay": 5}
    agent = REDQ(env, seed=seed, **{**hyper, **small})
    return agent.train(2_500, progress_bar=False).evaluate(episodes=20)


@pytest.mark.learning
def test_redq_solves_pendulum_within_2500_steps() -> None:
    """The Pendulum preset (rlkit's own: the authors' N = 10 and M = 2 with lr 1e-3 and 500
    warm-up steps) with 64-64 networks and G = 5 updates per env step (the actor once per env step,
    as the authors' policy_delay = G): G = 20 would take four times as long (3-5 minutes on
    one core), and at G = 5 every seed tried already solves the task. The 20-episode mean of
    the deterministic policy after 2500 steps is >= -250 (random: about -1200).
    Validated on an Intel Xeon (AVX-512), torch on one thread (``python
    benchmarks/learning_seeds.py redq_pendulum --seeds 0-9``): 10 of 10 pass, return_mean
    -108 .. -170 (28-68 s per seed, on a shared machine)."""
    result = redq_pendulum(0)
    assert result["return_mean"] >= -250, result
