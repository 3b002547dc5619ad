"""CrossQ: the batch-renormalisation layer (hand-computed), the critic's joint forward pass on
one batch statistic, train/eval mode hygiene, save/load, config errors, and learning Pendulum."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rlkit.agents import CrossQ
from rlkit.envs import make_vec_env
from rlkit.policies import BatchNormActorCritic, BatchRenormEnsembleMLP
from rlkit.prototypes import Agent, load_agent
from rlkit.utils.batch_renorm import BatchRenorm


def _norms(agent: Agent) -> list[BatchRenorm]:
    critic = agent.policy.critic
    assert isinstance(critic, BatchRenormEnsembleMLP)
    return [n for n in critic.norms if isinstance(n, BatchRenorm)]


TINY = {"learning_starts": 32, "batch_size": 8, "hidden_sizes": [8], "critic_hidden_sizes": [16]}


def test_batch_renorm_matches_a_hand_computed_case() -> None:
    """Two features, batch [[1, 2], [3, 6]]: mean (2, 4), biased var (1, 4); running stats
    mean (1, 1), var (3, 15), eps 1, r_max 1.5, d_max 0.5, after warm-up:
    sigma_B = sqrt(var + 1) = (sqrt 2, sqrt 5), sigma = sqrt(running_var + 1) = (2, 4);
    r = clip(sigma_B / sigma, 1/1.5, 1.5) = (0.707, 2/3 [clipped from 0.559]);
    d = clip((mean - running_mean) / sigma, +-0.5) = (0.5, 0.5 [clipped from 0.75])."""
    layer = BatchRenorm(2, momentum=0.75, eps=1.0, r_max=1.5, d_max=0.5, warmup_steps=1)
    layer.running_mean.copy_(torch.tensor([1.0, 1.0]))
    layer.running_var.copy_(torch.tensor([3.0, 15.0]))
    layer.steps.fill_(1)  # past the warm-up
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([2.0, 1.0]))
        layer.bias.copy_(torch.tensor([0.0, 1.0]))
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    r = torch.tensor([0.5**0.5, 2.0 / 3.0])
    d = torch.tensor([0.5, 0.5])
    centred = torch.tensor([[-1.0, -2.0], [1.0, 2.0]]) / torch.tensor([2.0**0.5, 5.0**0.5])
    expected = (centred * r + d) * torch.tensor([2.0, 1.0]) + torch.tensor([0.0, 1.0])
    torch.testing.assert_close(layer(x), expected)
    # running = 0.75 * running + 0.25 * batch (biased variance), one more step counted
    torch.testing.assert_close(layer.running_mean, torch.tensor([1.25, 1.75]))
    torch.testing.assert_close(layer.running_var, torch.tensor([2.5, 12.25]))
    assert int(layer.steps) == 2
    # eval mode: the running statistics, nothing updated
    layer.eval()
    out = layer(x)
    scale = torch.tensor([2.0, 1.0]) / torch.sqrt(torch.tensor([2.5, 12.25]) + 1.0)
    torch.testing.assert_close(
        out, (x - torch.tensor([1.25, 1.75])) * scale + torch.tensor([0, 1.0])
    )
    assert int(layer.steps) == 2
    torch.testing.assert_close(layer.running_mean, torch.tensor([1.25, 1.75]))


def test_batch_renorm_warm_up_is_plain_batch_norm_with_gradients_through_the_batch() -> None:
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(0)) * 3 + 2
    layer = BatchRenorm(5, eps=1e-3, warmup_steps=10)
    layer.running_mean.fill_(5.0)  # far from the batch: renorm would correct, warm-up does not
    reference = torch.nn.BatchNorm1d(5, eps=1e-3)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.testing.assert_close(layer(a), reference(b))
    weights = torch.randn(64, 5)
    (layer(a) * weights).sum().backward()
    (reference(b) * weights).sum().backward()
    assert a.grad is not None and b.grad is not None
    torch.testing.assert_close(a.grad, b.grad)


def test_the_joint_forward_pass_uses_one_batch_statistic(tmp_path: Path) -> None:
    """After one update the input layer's running mean is 0.01 * the mean of the concatenated
    (s, a) and (s', a') batch (momentum 0.99 from 0): one statistic for both halves."""
    env = make_vec_env("Pendulum-v1", num_envs=1, seed=0)
    agent = CrossQ(env, seed=0, **{**TINY, "learning_starts": 64})
    agent.train(32, progress_bar=False)  # fill the replay, no update yet
    assert agent.num_updates == 0
    batch = agent.storage.sample(8, torch.Generator().manual_seed(1))
    policy = agent.policy
    gen_state = agent._generator.get_state()
    with torch.no_grad():
        next_actions, _ = policy.sample_with_log_prob(
            policy.features(batch.next_obs), agent._generator
        )
    agent._generator.set_state(gen_state)
    joint = torch.cat(
        [
            torch.cat([batch.obs, policy.normalize_actions(batch.actions)], -1),
            torch.cat([batch.next_obs, next_actions], -1),
        ]
    )
    agent.num_updates += 1
    agent.update(batch)
    first = _norms(agent)[0]
    for member in range(2):
        torch.testing.assert_close(first.running_mean[member, 0], 0.01 * joint.mean(0))
        var = joint.var(0, unbiased=False)
        torch.testing.assert_close(first.running_var[member, 0], 0.99 + 0.01 * var)
    assert int(first.steps) == 1
    assert not policy.critic.training  # back in eval mode after the update


def test_acting_and_the_actor_loss_leave_the_statistics_alone() -> None:
    env = make_vec_env("Pendulum-v1", num_envs=1, seed=0)
    agent = CrossQ(env, seed=0, policy_delay=1, **TINY)
    agent.train(40, progress_bar=False)
    norms = _norms(agent)
    steps = [int(n.steps) for n in norms]
    assert steps == [agent.num_updates] * len(norms)  # one train-mode pass per update
    agent.act(env.observation_space.sample())
    agent.evaluate(episodes=1)
    features = torch.randn(4, 3)
    agent.policy.q_values(features, torch.zeros(4, 1))  # outside an update: eval mode
    assert [int(n.steps) for n in norms] == steps


@pytest.mark.parametrize("compute", ["fast", "reference", "compile"])
def test_save_load_round_trip_keeps_the_running_statistics(tmp_path: Path, compute: str) -> None:
    env = make_vec_env("Pendulum-v1", num_envs=1, seed=0)
    agent = CrossQ(env, seed=0, compute=compute, compiler="eager", bn_warmup_steps=4, **TINY)
    before = [p.detach().clone() for p in agent.policy.parameters()]
    agent.train(64, progress_bar=False)
    assert agent.num_updates > 4 and "loss/critic" in agent.iteration()
    assert any(
        not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters(), strict=True)
    )
    agent.save(tmp_path / "crossq")
    loaded = load_agent(tmp_path / "crossq")
    assert isinstance(loaded, CrossQ) and isinstance(loaded.policy, BatchNormActorCritic)
    for name, buffer in agent.policy.named_buffers():
        torch.testing.assert_close(dict(loaded.policy.named_buffers())[name], buffer)
    assert int(_norms(loaded)[1].steps) == agent.num_updates
    for opt in loaded.registry.optimizers.values():
        assert opt.param_groups[0]["betas"] == (0.5, 0.999)
    obs = torch.randn(3, 3)
    actions = torch.rand(3, 1) * 2 - 1
    torch.testing.assert_close(
        loaded.policy.q_values(obs, actions), agent.policy.q_values(obs, actions)
    )
    torch.testing.assert_close(loaded.policy(obs), agent.policy(obs))


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"policy_delay": 0}, "policy_delay"),
        ({"adam_beta1": 1.0}, "adam_beta1"),
        ({"bn_momentum": -0.1}, "bn_momentum"),
        ({"critic_hidden_sizes": []}, "critic_hidden_sizes"),
        ({"ent_coef": "sometimes"}, "ent_coef"),
    ],
)
def test_bad_settings_are_one_line_errors(option: dict[str, object], message: str) -> None:
    env = make_vec_env("Pendulum-v1", num_envs=1, seed=0)
    with pytest.raises((ValueError, TypeError), match=message) as info:
        CrossQ(env, **option)
    assert "\n" not in str(info.value)


def crossq_pendulum(seed: int) -> dict[str, float]:
    """20-episode greedy evaluation after 5k steps (learning_starts 1000, 64-64 actor,
    128-128 batch-renormalised critics; the paper's other settings)."""
    env = make_vec_env("Pendulum-v1", num_envs=1, seed=seed)
    agent = CrossQ(
        env, seed=seed, learning_starts=1000, hidden_sizes=[64, 64],
        critic_hidden_sizes=[128, 128],
    )  # fmt: skip
    return agent.train(5_000, progress_bar=False).evaluate(episodes=20)


@pytest.mark.learning
def test_crossq_learns_pendulum_within_5k_steps() -> None:
    """CrossQ with the paper's settings but narrower networks (the paper's 2048-wide critics
    take ~0.3 s per update on one CPU core) and 1000 random steps instead of 5000, for a short
    test. The threshold (-250; a random policy scores about -1200) held for every seed tried.
    Validated on an Intel Xeon (AVX-512), two cores shared with other jobs, one torch thread,
    seeds 0-4 (``python benchmarks/learning_seeds.py crossq_pendulum --seeds 0-4``): 5 of 5
    pass, 20-episode means -118, -177, -145, -163, -128 (seeds 0-4), 47-66 s per seed here."""
    result = crossq_pendulum(0)
    assert result["return_mean"] >= -250, result
