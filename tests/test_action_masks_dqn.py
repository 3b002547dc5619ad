"""Action masks for value-based agents: QPolicy's masked greedy acting, the masked bootstrap
target (plain and double DQN, all-illegal terminal masks), DQN training on an env whose legal
actions change every step, and the refusal of agents that cannot apply masks."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.agents import C51, DQN, IQN, MDQN, QRDQN, Rainbow
from rlkit.envs import make_vec_env
from rlkit.losses import greedy_value, td_target
from rlkit.policies import (
    CategoricalQNetwork,
    ImplicitQuantileNetwork,
    LSTMQNetwork,
    QNetwork,
    QPolicy,
    QuantileQNetwork,
    RecurrentQNetwork,
)
from rlkit.policies.q_network import masked_q_values
from rlkit.storages.replay import ReplayBatch
from rlkit.types import Obs, PolicyState

N = 4

#: DQN's masked exploration (random actions among the legal ones) and its refusal of agents
#: that cannot mask live in the off-policy prototype; these tests need it there.
needs_masked_exploration = pytest.mark.skipif(
    not getattr(DQN, "handles_action_masks", False),
    reason="needs the off-policy prototype's masked random actions and mask refusal",
)


class MaskedEnv(gym.Env[Any, Any]):
    """Each step a random subset of the ``N`` actions is legal (never none); action 0 is the
    rewarded one, so a greedy policy drifts towards it. An illegal action raises (``strict``).
    Episodes terminate after 12 steps with an all-zero final mask (no legal action); about a
    third are truncated after 9 instead."""

    strict = True

    def __init__(self) -> None:
        self.observation_space = spaces.Dict(
            {
                "observation": spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32),
                "action_mask": spaces.Box(0, 1, shape=(N,), dtype=np.int8),
            }
        )
        self.action_space = spaces.Discrete(N)
        self.t = 0
        self.mask = np.ones(N, np.int8)

    def _obs(self, terminal: bool = False) -> dict[str, np.ndarray]:
        if terminal:
            self.mask = np.zeros(N, np.int8)
        else:
            self.mask = (self.np_random.random(N) < 0.5).astype(np.int8)
            self.mask[self.np_random.integers(0, N)] = 1
        observation = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        observation[0] = self.mask[0]
        return {"observation": observation, "action_mask": self.mask.copy()}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.t = 0
        self.truncate_at = 9 if self.np_random.random() < 0.3 else 1_000
        return self._obs(), {}

    def step(self, action: int) -> Any:
        if self.strict and not self.mask[int(action)]:
            raise ValueError(f"illegal action {action} under mask {self.mask}")
        self.t += 1
        reward = 1.0 if int(action) == 0 and self.mask[0] else 0.0
        terminated = self.t >= 12
        return self._obs(terminal=terminated), reward, terminated, self.t >= self.truncate_at, {}


class LenientMaskedEnv(MaskedEnv):
    """:class:`MaskedEnv` that accepts illegal actions (to train without masked exploration)."""

    strict = False


def small_dqn(env: Any, agent: type[DQN] = DQN, **kwargs: Any) -> DQN:
    options: dict[str, Any] = {
        "seed": 0,
        "learning_starts": 32,
        "batch_size": 16,
        "train_freq": 1,
        "buffer_size": 1_000,
        "target_update_interval": 40,
        "exploration_fraction": 0.5,
        "lr": 1e-3,
        "hidden_sizes": [32],
        "num_threads": 1,
    }
    return agent(env, **{**options, **kwargs})


def legal(obs: dict[str, np.ndarray], actions: np.ndarray) -> bool:
    return bool(obs["action_mask"][np.arange(len(actions)), actions].all())


# --------------------------------------------------------------------------- the target
def test_masked_greedy_value_is_the_max_over_legal_actions() -> None:
    q_target = torch.tensor([[1.0, 5.0, 3.0], [2.0, 0.0, 4.0]])
    mask = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.int8)
    assert greedy_value(q_target).tolist() == [5.0, 4.0]  # unmasked: as before
    assert greedy_value(q_target, mask=mask).tolist() == [3.0, 4.0]
    # Q-values already -inf where illegal (QPolicy.legal_q_values) give the same
    assert greedy_value(masked_q_values(q_target, mask)).tolist() == [3.0, 4.0]


def test_masked_double_q_picks_the_online_argmax_among_legal_actions() -> None:
    q_target = torch.tensor([[1.0, 5.0, 3.0], [2.0, 0.0, 4.0]])
    q_online = torch.tensor([[0.0, 9.0, 2.0], [7.0, 1.0, 0.0]])
    mask = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.int8)
    # unmasked: online argmax 1 and 0 -> target values 5 and 2
    assert greedy_value(q_target, q_online).tolist() == [5.0, 2.0]
    # masked: online argmax over {0, 2} is 2 (-> 3), over {1, 2} is 1 (-> 0)
    assert greedy_value(q_target, q_online, mask).tolist() == [3.0, 0.0]
    online, target = masked_q_values(q_online, mask), masked_q_values(q_target, mask)
    assert greedy_value(target, online).tolist() == [3.0, 0.0]


@pytest.mark.parametrize("double", [False, True])
def test_an_all_illegal_terminal_mask_gives_a_finite_target(double: bool) -> None:
    q = torch.tensor([[1.0, 2.0], [3.0, -4.0]])
    mask = torch.tensor([[0.0, 0.0], [1.0, 0.0]])  # row 0: terminal, no legal action
    online = q.flip(-1) if double else None
    value = greedy_value(q, online, mask)
    assert value.tolist() == [0.0, 3.0]
    target = td_target(torch.tensor([0.5, 1.0]), torch.tensor([0.0, 0.9]), value)
    assert torch.isfinite(target).all()
    assert target.tolist() == pytest.approx([0.5, 1.0 + 0.9 * 3.0])
    # the same from -inf Q-values, even where the discount is not 0
    value = greedy_value(masked_q_values(q, mask), None if online is None else online)
    assert value[0] == 0.0 and torch.isfinite(td_target(torch.ones(2), torch.ones(2), value)).all()


def test_a_mask_of_the_wrong_shape_is_an_error() -> None:
    with pytest.raises(ValueError, match="action mask of shape"):
        greedy_value(torch.zeros(2, 3), mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="action mask of shape"):
        masked_q_values(torch.zeros(2, 3), torch.ones(3))


# --------------------------------------------------------------------------- the policy
def masked_space() -> spaces.Dict:
    return spaces.Dict(
        {
            "observation": spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32),
            "action_mask": spaces.Box(0, 1, shape=(N,), dtype=np.int8),
        }
    )


@pytest.mark.parametrize("start", [0, 2])
def test_q_policy_acts_greedily_among_legal_actions(start: int) -> None:
    torch.manual_seed(0)
    policy = QNetwork(masked_space(), spaces.Discrete(N, start=start), hidden_sizes=[16])
    features = torch.randn(256, 3)
    mask = (torch.rand(256, N) < 0.5).to(torch.int8)
    mask[torch.arange(256), torch.randint(0, N, (256,))] = 1
    obs = {"observation": features, "action_mask": mask}
    q = policy.q_values(obs)
    actions, state = policy.act(obs, deterministic=True)
    index = actions - start
    assert state is None
    assert mask[torch.arange(256), index].all()
    best_legal = q.masked_fill(mask == 0, float("-inf")).amax(-1)
    assert torch.equal(q.gather(-1, index.unsqueeze(-1)).squeeze(-1), best_legal)
    assert (q.argmax(-1) != index).any()  # the mask mattered for some rows
    assert torch.equal(policy.value(obs), best_legal)
    # a single legal action is always taken
    only = torch.zeros(256, N, dtype=torch.int8)
    only[:, 3] = 1
    assert (policy.act({"observation": features, "action_mask": only})[0] == 3 + start).all()


def test_q_policy_without_masks_acts_as_before() -> None:
    """Unmasked observations (a Box, or a Dict without "action_mask"): the same actions and
    values as the plain argmax/max of the Q-values, for the same seed."""
    box = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
    no_mask = spaces.Dict({"observation": box})
    for space, make_obs in (
        (box, lambda x: x),
        (no_mask, lambda x: {"observation": x}),
    ):
        torch.manual_seed(3)
        policy = QNetwork(space, spaces.Discrete(N, start=1), hidden_sizes=[16], dueling=True)
        obs = make_obs(torch.randn(64, 3, generator=torch.Generator().manual_seed(1)))
        q = policy.q_values(obs)
        assert torch.equal(policy.legal_q_values(obs), q)
        assert torch.equal(policy.act(obs)[0], q.argmax(-1) + 1)
        assert torch.equal(policy.value(obs), q.amax(-1))
        torch.manual_seed(3)
        again = QNetwork(space, spaces.Discrete(N, start=1), hidden_sizes=[16], dueling=True)
        assert torch.equal(again.act(obs)[0], policy.act(obs)[0])


def test_dqn_without_masks_is_reproducible_from_the_seed() -> None:
    def run() -> tuple[list[int], Tensor]:
        env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
        agent = small_dqn(env, double_q=True)
        agent.train(200, progress_bar=False)
        obs, _ = env.reset(seed=5)
        actions = [int(a) for _ in range(10) for a in agent.act(obs, deterministic=True)]
        env.close()
        return actions, torch.cat([p.detach().flatten() for p in agent.policy.parameters()])

    (a, pa), (b, pb) = run(), run()
    assert a == b and torch.equal(pa, pb)


class ActingOnItsOwn(QNetwork):
    """A Q-network with its own acting path (ignoring masks): not mask-aware by default."""

    def act(
        self,
        obs: Obs,
        deterministic: bool = False,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, PolicyState]:
        return self.q_values(obs).argmax(-1), None


class ActingOnItsOwnWithMasks(ActingOnItsOwn):
    applies_action_mask = True


def test_which_q_policies_apply_masks() -> None:
    masking: tuple[type[QPolicy], ...] = (
        QNetwork,
        QuantileQNetwork,
        CategoricalQNetwork,
        ImplicitQuantileNetwork,
    )
    # their own act() without masks: the recurrent Q-networks (R2D2), an override
    ignoring: tuple[type[QPolicy], ...] = (RecurrentQNetwork, LSTMQNetwork, ActingOnItsOwn)
    assert all(cls.applies_action_mask for cls in masking)
    assert not any(cls.applies_action_mask for cls in ignoring)
    assert ActingOnItsOwnWithMasks.applies_action_mask and QPolicy.applies_action_mask


# --------------------------------------------------------------------------- DQN
@pytest.mark.parametrize("double", [False, True])
def test_dqn_bootstraps_from_the_legal_next_actions(double: bool) -> None:
    """DQN's own target (captured from its update) is r + discount * the max (double: the
    online argmax) over the next observation's legal actions, 0 for no legal action."""
    seen: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []

    class Capture(DQN):
        def td_inputs(self, batch: ReplayBatch, q: Tensor, target: Tensor) -> dict[str, Tensor]:
            with torch.no_grad():
                next_obs: Any = batch.next_obs
                next_q = self.target.net.q_values(next_obs)
                chooser = self.policy.q_values(next_obs) if double else next_q
                mask = next_obs["action_mask"]
                best = chooser.masked_fill(mask == 0, float("-inf")).argmax(-1, keepdim=True)
                value = next_q.gather(-1, best).squeeze(-1) * mask.any(-1)
                expected = td_target(batch.rewards, batch.discounts, value)
                best = chooser.argmax(-1, keepdim=True)
                unmasked = td_target(
                    batch.rewards, batch.discounts, next_q.gather(-1, best).squeeze(-1)
                )
            seen.append((mask, target, expected, unmasked))
            return super().td_inputs(batch, q, target)

    env = make_vec_env(LenientMaskedEnv, num_envs=2, seed=0)
    agent = small_dqn(env, Capture, double_q=double, target_update_interval=5)
    agent.train(120, progress_bar=False)
    env.close()
    assert len(seen) == agent.num_updates >= 40
    for _, target, expected, _ in seen:
        assert torch.isfinite(target).all()
        torch.testing.assert_close(target, expected, rtol=0, atol=0)
    masks = torch.cat([mask for mask, *_ in seen])
    assert (masks.sum(-1) == 0).any()  # terminal next states without a legal action
    assert any(not torch.equal(t, u) for _, t, _, u in seen)  # the mask mattered
    assert all(torch.isfinite(p).all() for p in agent.policy.parameters())


@pytest.mark.parametrize("double", [False, True])
def test_dqn_target_without_masks_is_unchanged(double: bool) -> None:
    """Without masks DQN's target is still ``r + discount * max_a Q'`` (double: at the online
    argmax), exactly."""
    checked: list[int] = []

    class Capture(DQN):
        def td_inputs(self, batch: ReplayBatch, q: Tensor, target: Tensor) -> dict[str, Tensor]:
            with torch.no_grad():
                next_q = self.target.net.q_values(batch.next_obs)
                if double:
                    best = self.policy.q_values(batch.next_obs).argmax(-1, keepdim=True)
                    value = next_q.gather(-1, best).squeeze(-1)
                else:
                    value = next_q.amax(-1)
            torch.testing.assert_close(
                target, td_target(batch.rewards, batch.discounts, value), rtol=0, atol=0
            )
            checked.append(1)
            return super().td_inputs(batch, q, target)

    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = small_dqn(env, Capture, double_q=double)
    agent.train(80, progress_bar=False)
    env.close()
    assert len(checked) == agent.num_updates > 0


@needs_masked_exploration
@pytest.mark.parametrize("double", [False, True])
def test_dqn_never_takes_an_illegal_action(double: bool) -> None:
    env = make_vec_env(MaskedEnv, num_envs=2, seed=0)  # raises on an illegal action
    agent = small_dqn(env, double_q=double)
    agent.train(400, progress_bar=False)  # warm-up, epsilon-greedy, then mostly greedy
    assert agent.global_step >= 400 and agent.num_updates > 150
    assert all(torch.isfinite(p).all() for p in agent.policy.parameters())
    obs, _ = env.reset(seed=1)
    rewarded = 0
    for _ in range(30):  # greedy acting keeps to the legal actions too
        actions = agent.act(obs, deterministic=True)
        assert legal(obs, actions)
        obs, rewards, *_ = env.step(actions)
        rewarded += int(rewards.sum())
    assert rewarded > 0
    env.close()


@needs_masked_exploration
def test_dqn_explores_among_legal_actions_only() -> None:
    env = make_vec_env(MaskedEnv, num_envs=4, seed=2)
    agent = small_dqn(env, learning_starts=0)
    obs, _ = env.reset(seed=2)
    seen: set[int] = set()
    for epsilon in (1.0, 0.5):
        for _ in range(50):
            actions = agent.epsilon_greedy(agent.obs_to_tensor(obs), epsilon)
            assert legal(obs, actions)
            seen.update(int(a) for a in actions)
            obs = env.step(actions)[0]
    assert seen == set(range(N))
    env.close()


@needs_masked_exploration
def test_agents_that_cannot_mask_refuse_masked_observations() -> None:
    env = make_vec_env(MaskedEnv, num_envs=2, seed=0)
    ignoring = ActingOnItsOwn(env.single_observation_space, env.single_action_space)
    with pytest.raises(TypeError, match="action_mask"):
        DQN(env, policy=ignoring)
    for agent in (C51, MDQN, Rainbow):  # their targets ignore the mask
        with pytest.raises(TypeError, match="action_mask"):
            agent(env, seed=0)
    env.close()


@pytest.mark.parametrize("agent_cls", [QRDQN, IQN])
def test_quantile_agents_keep_to_legal_actions(agent_cls: type[DQN]) -> None:
    """QR-DQN and IQN bootstrap from the legal next action and explore among legal ones."""
    env = make_vec_env(MaskedEnv, num_envs=2, seed=0)  # raises on an illegal action
    agent = small_dqn(env, agent_cls)
    agent.train(200, progress_bar=False)
    obs, _ = env.reset(seed=1)
    for _ in range(20):
        actions = agent.act(obs, deterministic=True)
        assert legal(obs, actions)
        obs, *_ = env.step(actions)
    env.close()


def test_pqn_keeps_to_legal_actions() -> None:
    """PQN (on-policy Q-learning) explores, acts and bootstraps among legal actions."""
    from rlkit.agents import PQN

    env = make_vec_env(MaskedEnv, num_envs=2, seed=0)  # raises on an illegal action
    agent = PQN(env, seed=0, num_steps=16, batch_size=16, hidden_sizes=[16], num_threads=1)
    agent.train(256, progress_bar=False)
    assert torch.isfinite(agent.storage.returns).all()
    obs, _ = env.reset(seed=1)
    for _ in range(20):
        actions = agent.act(obs, deterministic=True)
        assert legal(obs, actions)
        obs, *_ = env.step(actions)
    env.close()
