"""NoisyNet layers: factorised noise, mean in eval mode, conversion of any module, the fast
backend's fallback, noise drawn before every update from the agent's generator."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
from torch import nn

from rlkit.agents import DQN
from rlkit.encoders import MLP
from rlkit.envs import make_vec_env
from rlkit.policies import DenseStack, QNetwork
from rlkit.utils.noisy import NoisyLinear, draw_noise, make_noisy, noisy_layers, reset_noise


def test_noise_is_factorised_from_the_generator() -> None:
    layer = NoisyLinear(3, 2, sigma0=0.5)
    layer.reset_noise(torch.Generator().manual_seed(7))
    draws = torch.randn(5, generator=torch.Generator().manual_seed(7))
    f = draws.sign() * draws.abs().sqrt()
    eps_in, eps_out = f[:3], f[3:]
    torch.testing.assert_close(layer.weight_epsilon, torch.outer(eps_out, eps_in))
    torch.testing.assert_close(layer.bias_epsilon, eps_out)
    assert torch.linalg.matrix_rank(layer.weight_epsilon) == 1
    # the paper's factorised initialisation: sigma = sigma0 / sqrt(in_features)
    torch.testing.assert_close(layer.weight_sigma, torch.full((2, 3), 0.5 / 3**0.5))


def test_training_mode_is_noisy_and_eval_mode_is_the_mean() -> None:
    torch.manual_seed(0)
    layer = NoisyLinear(4, 3)
    x = torch.randn(5, 4)
    mean = nn.functional.linear(x, layer.weight_mu, layer.bias_mu)
    torch.testing.assert_close(layer(x), mean)  # no noise drawn yet
    layer.reset_noise(torch.Generator().manual_seed(1))
    assert not torch.allclose(layer(x), mean)
    layer.eval()
    torch.testing.assert_close(layer(x), mean)
    layer.train()
    layer(x).sum().backward()
    assert layer.weight_sigma.grad is not None and layer.weight_sigma.grad.abs().sum() > 0
    assert layer.weight_mu.grad is not None


def test_make_noisy_converts_any_module_and_keeps_its_function() -> None:
    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    encoder = MLP(env.single_observation_space, feature_dim=8, hidden_sizes=(16,))
    obs = torch.randn(6, 4)
    before = encoder(obs)
    make_noisy(encoder, 0.3)
    assert not any(isinstance(m, nn.Linear) for m in encoder.modules())
    assert len(noisy_layers(encoder)) == 2
    torch.testing.assert_close(encoder(obs), before)  # mean = the old weights until noise
    assert reset_noise(encoder, torch.Generator().manual_seed(0)) == 2
    assert not torch.allclose(encoder(obs), before)
    with pytest.raises(ValueError, match="sigma0 must be a finite number >= 0, got -1"):
        NoisyLinear(2, 2, sigma0=-1)


def test_noisy_dense_stack_leaves_the_fused_kernel_and_trains_sigma_on_fast() -> None:
    stack = make_noisy(DenseStack(4, [8], 2))
    assert isinstance(stack, DenseStack) and not stack.plain_layers
    assert not stack.supports_manual_backward
    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    agent = DQN(env, seed=0, noisy=0.5, compute="fast", learning_starts=32, batch_size=16)
    assert "plain Linear" in str(agent.backend_report)
    sigma = [p for n, p in agent.policy.named_parameters() if n.endswith("weight_sigma")]
    before = [p.detach().clone() for p in sigma]
    agent.train(120, progress_bar=False)
    assert all(not torch.equal(a, b) for a, b in zip(before, sigma, strict=True))


@pytest.mark.parametrize("compute", ["fast", "reference", "compile"])
def test_noise_is_resampled_before_every_update_on_every_backend(compute: str) -> None:
    seen: list[torch.Tensor] = []

    class Watch(DQN):
        def update(self, batch: Any) -> Any:
            seen.append(self.policy.head.layers[0].weight_epsilon.clone())
            return super().update(batch)

    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    options: dict[str, Any] = {"compute": compute}
    if compute == "compile":
        options["compiler"] = "eager"
    agent = Watch(env, seed=0, noisy=0.5, learning_starts=32, batch_size=16, **options)
    agent.train(64, progress_bar=False)
    assert len(seen) == agent.num_updates >= 3
    assert all(not torch.equal(a, b) for a, b in itertools.pairwise(seen))
    target_eps = agent.target.net.head.layers[0].weight_epsilon
    assert target_eps.abs().sum() > 0 and not torch.equal(target_eps, seen[-1])


def test_noisy_runs_are_reproducible_from_the_seed() -> None:
    def run() -> list[torch.Tensor]:
        env = make_vec_env("CartPole-v1", num_envs=1, seed=3)
        agent = DQN(env, seed=3, noisy=0.5, learning_starts=32, batch_size=16)
        agent.train(96, progress_bar=False)
        return [p.detach().clone() for p in agent.policy.parameters()]

    for a, b in zip(run(), run(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_deterministic_evaluation_and_act_use_the_mean_and_restore_the_mode() -> None:
    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    agent = DQN(env, seed=0, noisy=0.5)
    assert isinstance(agent.policy, QNetwork)
    reset_noise(agent.policy, torch.Generator().manual_seed(0))
    obs = torch.randn(64, 4)
    with torch.no_grad():
        noisy = agent.policy.q_values(obs).argmax(-1)
        agent.policy.eval()
        mean = agent.policy.q_values(obs).argmax(-1)
        agent.policy.train()
    greedy = torch.as_tensor(agent.act(obs.numpy(), deterministic=True))
    assert torch.equal(greedy, mean)
    assert agent.policy.training  # restored
    stochastic = torch.as_tensor(agent.act(obs.numpy(), deterministic=False))
    assert torch.equal(stochastic, noisy)
    first = agent.evaluate(episodes=3, seed=5)
    reset_noise(agent.policy, torch.Generator().manual_seed(9))
    assert agent.evaluate(episodes=3, seed=5) == first  # the noise plays no part
    assert all(m.training for m in agent.policy.modules())


def test_one_draw_for_many_layers_is_factorised_and_respects_overrides() -> None:
    calls: list[int] = []

    class Own(NoisyLinear):
        def reset_noise(self, generator: torch.Generator | None = None) -> None:
            calls.append(1)
            super().reset_noise(generator)

    layers = [NoisyLinear(3, 2), NoisyLinear(2, 4), Own(2, 2)]
    draw_noise(layers, torch.Generator().manual_seed(0))
    # the overriding layer draws first (4 values), then one draw of 11 for the other two
    g = torch.Generator().manual_seed(0)
    torch.randn(4, generator=g)
    draws = torch.randn(11, generator=g)
    f = draws.sign() * draws.abs().sqrt()
    torch.testing.assert_close(layers[0].weight_epsilon, torch.outer(f[3:5], f[:3]))
    torch.testing.assert_close(layers[1].weight_epsilon, torch.outer(f[7:11], f[5:7]))
    assert calls == [1]  # the subclass drew its own noise
    assert layers[2].weight_epsilon.abs().sum() > 0


@pytest.mark.parametrize("compute", ["fast", "reference", "compile"])
def test_an_overridden_resample_noise_hook_runs_before_every_update(compute: str) -> None:
    order: list[str] = []

    class Own(DQN):
        def resample_noise(self) -> None:
            order.append("noise")
            super().resample_noise()

        def update(self, batch: Any) -> Any:
            order.append("update")
            return super().update(batch)

    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    options: dict[str, Any] = {"compute": compute}
    if compute == "compile":
        options["compiler"] = "eager"
    agent = Own(env, seed=0, noisy=0.5, learning_starts=32, batch_size=16, **options)
    agent.train(48, progress_bar=False)
    assert agent.num_updates >= 2
    assert order == ["noise", "update"] * agent.num_updates
