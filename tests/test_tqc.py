"""TQC: the truncated quantile target, the critic loss's scale, the policy, round trips, bad
settings, the CLI, and learning Pendulum with the zoo preset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from rlkit.agents import TQC
from rlkit.cli.main import main
from rlkit.config.presets import load_preset
from rlkit.envs import make_vec_env
from rlkit.losses import quantile_midpoints, truncated_quantiles
from rlkit.policies import POLICIES, QuantileActorCritic
from rlkit.prototypes import load_agent

TINY = {"learning_starts": 32, "batch_size": 16, "hidden_sizes": [16], "buffer_size": 500}


def _pendulum(seed: int = 0) -> Any:
    return make_vec_env("Pendulum-v1", num_envs=1, seed=seed)


def test_truncated_quantiles_pool_sort_and_drop_the_largest() -> None:
    # two critics of three quantiles; per sample the six atoms are pooled and sorted, and the
    # two largest (d = 1 per critic) dropped
    next_quantiles = torch.tensor(
        [[[1.0, 5.0, 3.0], [0.0, -1.0, 9.0]], [[4.0, 2.0, 6.0], [8.0, 7.0, -2.0]]]
    )  # [E=2, B=2, N=3]
    kept = truncated_quantiles(next_quantiles, drop=2)
    torch.testing.assert_close(kept, torch.tensor([[1.0, 2, 3, 4], [-2.0, -1, 0, 7]]))
    torch.testing.assert_close(truncated_quantiles(next_quantiles, 0)[0], torch.arange(1.0, 7))
    with pytest.raises(ValueError, match=r"drop must be in \[0, 6\)"):
        truncated_quantiles(next_quantiles, drop=6)


def test_the_agent_regresses_every_quantile_on_the_truncated_soft_target() -> None:
    """With target critics that output fixed quantiles ({1, 5, 3} and {4, 2, 6}), the atoms
    the critics regress on are ``r + g (sorted[:4] - alpha log pi)``: per sample, the atoms
    are [1, 2, 3, 4] shifted by one constant and scaled by the discount."""
    agent = TQC(
        _pendulum(), seed=0, n_critics=2, n_quantiles=3, top_quantiles_to_drop_per_net=1, **TINY
    )
    assert agent.drop == 2
    agent.train(64, progress_bar=False)
    last = agent.target.net.critic.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([[[1.0, 5.0, 3.0]], [[4.0, 2.0, 6.0]]]))
    seen: dict[str, Any] = {}
    loss = agent.loss

    def record(name: str, inputs: Any) -> Any:
        seen[name] = dict(inputs)
        return loss(name, inputs)

    agent.loss = record
    batch = agent.storage.sample(16, torch.Generator().manual_seed(1))
    agent.train_step(batch)
    critic = seen["critic"]
    atoms, current = critic["target_quantiles"], critic["quantiles"]
    assert atoms.shape == (16, 4) and current.shape == (16, 2 * 3)
    discounts = batch.discounts.unsqueeze(1)
    spread = discounts * torch.tensor([0.0, 1.0, 2.0, 3.0])  # (kept - kept[0]) times g
    torch.testing.assert_close(atoms - atoms[:, :1], spread)
    # the shift is r + g (1 - alpha log pi): alpha log pi is the same for every atom
    shift = (atoms[:, 0] - batch.rewards) / batch.discounts - 1.0
    assert torch.isfinite(shift).all() and shift.std() > 0  # depends on the sampled a'
    torch.testing.assert_close(critic["taus"], quantile_midpoints(3).repeat(2))


def test_the_critic_loss_is_sb3_contribs_mean_over_critics_quantiles_and_atoms() -> None:
    """sb3-contrib's ``quantile_huber_loss(..., sum_over_quantiles=False)`` averages over the
    batch, the critics, the quantiles and the target atoms; QuantileHuberLoss sums over the
    predicted quantiles, so the agent weights it by 1 / (E N) to give the same number."""
    agent = TQC(_pendulum(), seed=0, n_critics=3, n_quantiles=4, **TINY)
    gen = torch.Generator().manual_seed(0)
    current = torch.randn(8, 3, 4, generator=gen) * 2  # [B, E, N], sb3-contrib's layout
    target = torch.randn(8, 3 * 4 - 6, generator=gen) * 2
    taus = quantile_midpoints(4)
    delta = target[:, None, None, :] - current[:, :, :, None]
    huber = torch.where(delta.abs() > 1, delta.abs() - 0.5, 0.5 * delta**2)
    expected = ((taus[None, None, :, None] - (delta < 0).float()).abs() * huber).mean()
    term = agent.terms["critic"][0]
    inputs = {"quantiles": current.flatten(1), "target_quantiles": target, "taus": taus.repeat(3)}
    assert float(term.coef * term(inputs)) == pytest.approx(float(expected), rel=1e-5)


def test_the_policy_gives_quantiles_and_q_values_their_mean() -> None:
    env = _pendulum()
    policy = POLICIES.build(
        {"id": "quantile_actor_critic", "num_critics": 3, "n_quantiles": 7},
        observation_space=env.single_observation_space,
        action_space=env.single_action_space,
    )
    assert isinstance(policy, QuantileActorCritic)
    features, actions = policy.features(torch.randn(5, 3)), torch.rand(5, 1) * 2 - 1
    quantiles = policy.quantiles(features, actions)
    assert quantiles.shape == (3, 5, 7)
    torch.testing.assert_close(policy.q_values(features, actions), quantiles.mean(-1))
    one = QuantileActorCritic(env.single_observation_space, env.single_action_space, n_quantiles=1)
    assert one.quantiles(one.features(torch.randn(2, 3)), actions[:2]).shape == (5, 2, 1)
    with pytest.raises(ValueError, match="n_quantiles must be an integer >= 1, got 0"):
        QuantileActorCritic(env.single_observation_space, env.single_action_space, n_quantiles=0)


@pytest.mark.parametrize(
    "options", [{}, {"prioritized_replay": True, "compute": "reference", "ent_coef": 0.1}]
)
def test_updates_train_and_round_trip(tmp_path: Path, options: dict[str, Any]) -> None:
    agent = TQC(_pendulum(), seed=0, n_critics=2, n_quantiles=5, **TINY, **options)
    before = [p.detach().clone() for p in agent.policy.parameters()]
    agent.train(96, progress_bar=False)
    assert agent.num_updates == 96 - 32 + 1
    params = agent.policy.parameters()
    changed = [not torch.equal(a, b) for a, b in zip(before, params, strict=True)]
    assert all(changed)  # the encoder has no parameters; actor and critics all moved
    metrics = agent.iteration()
    assert {"loss/critic", "loss/actor"} <= set(metrics)
    assert ("loss/ent_coef" in metrics) == ("ent_coef" not in options)
    if options.get("prioritized_replay"):  # priorities came from the updates' TD errors
        assert agent.prioritized and agent.storage.sampler.max_priority != 1.0
    seen: list[Any] = []
    loss = agent.loss

    def record(name: str, inputs: Any) -> Any:
        seen.append((name, set(inputs)))
        return loss(name, inputs)

    agent.loss = record
    agent.train_step()
    critic_keys = next(keys for name, keys in seen if name == "critic")
    assert ("weight" in critic_keys) == bool(options.get("prioritized_replay"))  # PER weights
    agent.save(tmp_path / "tqc")
    loaded = load_agent(tmp_path / "tqc")
    assert isinstance(loaded, TQC) and loaded.policy.n_quantiles == 5
    assert loaded.policy.num_critics == 2 and loaded.drop == 4
    features, actions = agent.policy.features(torch.randn(3, 3)), torch.zeros(3, 1)
    torch.testing.assert_close(
        loaded.policy.quantiles(features, actions), agent.policy.quantiles(features, actions)
    )


def test_bad_settings_fail_in_one_line() -> None:
    with pytest.raises(ValueError, match="top_quantiles_to_drop_per_net=5 would drop every"):
        TQC(_pendulum(), n_quantiles=5, top_quantiles_to_drop_per_net=5, **TINY)
    with pytest.raises(ValueError, match=r"invalid hyperparameter\(s\): n_critics=0"):
        TQC(_pendulum(), n_critics=0)
    with pytest.raises(TypeError, match="TQC needs a QuantileActorCritic policy"):
        TQC(_pendulum(), policy="squashed_gaussian_actor_critic")


def test_cli_trains_tqc(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "tqc", "--env", "Pendulum-v1", "--seed", "0", "--no-progress"]
    tiny = ["--total-steps", "80", "--learning-starts", "40", "--batch-size", "16"]
    assert main([*args, *tiny, "--n-quantiles", "5", "--out", str(out)]) == 0
    assert isinstance(load_agent(out), TQC)


def tqc_pendulum(seed: int) -> dict[str, float]:
    hyper = load_preset("tqc", "Pendulum-v1")
    num_envs = hyper.pop("num_envs")
    hyper.pop("total_steps")
    env = make_vec_env("Pendulum-v1", num_envs=num_envs, seed=seed)
    agent = TQC(env, seed=seed, **{**hyper, "hidden_sizes": [64, 64]})
    return agent.train(10_000, progress_bar=False).evaluate(episodes=20)


@pytest.mark.learning
def test_tqc_solves_pendulum_within_10k_steps() -> None:
    """rl-baselines3-zoo's TQC Pendulum setting (the shipped preset: lr 1e-3, 2 critics of 25
    quantiles) with 64-64 networks, as the SAC test, for 10k of the preset's 20k steps; the
    20-episode mean of the deterministic policy is >= -250 (random: about -1200).
    Validated on an Intel Xeon (AVX-512), torch on one thread (``python
    benchmarks/learning_seeds.py tqc_pendulum --seeds 0-9``): 10 of 10 pass, return_mean
    -107 .. -171 (57-68 s per seed). Shorter runs failed some seeds (an episode or two of 20
    not swung up): at 6k steps seed 2 scored -563 (4 of 5 passed), at 8k seed 8 scored -263
    (9 of 10 passed)."""
    result = tqc_pendulum(0)
    assert result["return_mean"] >= -250, result
