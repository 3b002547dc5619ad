"""Episodic bonuses (NGU, RIDE, E3B): per-env memory, resets, rollout vs replay layouts, and
the papers' formulas checked against explicit computations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium import spaces

from rlkit.rewards import (
    E3B,
    INTRINSIC_REWARDS,
    NGU,
    RIDE,
    EpisodicIntrinsicReward,
    TransitionBatch,
)

STATES = 12
VEC = spaces.Box(0.0, 1.0, (STATES,), np.float32)
ACT = spaces.Discrete(STATES)
SMALL: dict[str, dict[str, Any]] = {
    "ngu": {"embedding_dim": 8, "hidden_dim": 32, "rnd_latent_dim": 16},
    "e3b": {"embedding_dim": 8, "hidden_dim": 32},
    "ride": {"feature_dim": 16, "hidden_dim": 32},
}
EPISODIC = sorted(SMALL)


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(rid: str, **kwargs: Any) -> EpisodicIntrinsicReward:
    torch.manual_seed(0)
    module = INTRINSIC_REWARDS.build(
        {"id": rid, "reward_norm": "none", **SMALL[rid], **kwargs},
        observation_space=VEC,
        action_space=ACT,
    )
    assert isinstance(module, EpisodicIntrinsicReward)
    return module


def walk(states: torch.Tensor, dones: torch.Tensor | None = None) -> TransitionBatch:
    """Transitions ``states[t] -> states[t + 1]`` per env (``states`` is ``[T + 1, N]``); the
    action is the index of the next state, so it is always recoverable."""
    obs, nxt = states[:-1], states[1:]
    return TransitionBatch(
        obs=F.one_hot(obs, STATES).float(),
        actions=nxt.clone(),
        next_obs=F.one_hot(nxt, STATES).float(),
        dones=torch.zeros(obs.shape) if dones is None else dones,
    )


def shuttle(steps: int, num_envs: int = 2) -> torch.Tensor:
    """Every env going back and forth between states 0 and 1."""
    return (torch.arange(steps + 1) % 2).unsqueeze(1).repeat(1, num_envs)


# --------------------------------------------------------------------------- memory lifecycle
@pytest.mark.parametrize("rid", EPISODIC)
def test_memory_fills_per_env_and_reset_clears_only_masked_envs(rid: str) -> None:
    module = make(rid)
    module.compute(walk(shuttle(10)))
    sizes = module.memory_sizes()
    assert sizes.shape == (2,) and (sizes > 0).all()
    familiar = module.compute(walk(shuttle(2)))[0]
    module.reset_episodes(torch.tensor([True, False]))
    after = module.compute(walk(shuttle(2)))[0]
    assert after[0] > 1.5 * familiar[0], "env 0 forgot its episode: its first step is new again"
    assert after[1] <= familiar[1] * 1.01, "env 1 still remembers"
    module.reset_memory()
    assert (module.memory_sizes() == 0).all()


@pytest.mark.parametrize("rid", EPISODIC)
def test_done_inside_a_rollout_clears_memory_after_that_step(rid: str) -> None:
    module = make(rid)
    steps = 12
    dones = torch.zeros(steps, 2)
    dones[5, 0] = 1.0  # env 0's episode ends at step 5 (the step's next_obs is its last)
    bonus = module.compute(walk(shuttle(steps), dones))
    # env 0 restarts at step 6 and sees the shuttle as new; env 1 has seen it for 6 steps
    assert bonus[6, 0] > 1.5 * bonus[6, 1]
    torch.testing.assert_close(bonus[:6, 0], bonus[:6, 1])


@pytest.mark.parametrize("rid", EPISODIC)
def test_reset_announced_during_collection_matches_the_end_inside_the_next_rollout(
    rid: str,
) -> None:
    """The on-policy loop calls reset_episodes while collecting, before the rollout's bonus is
    computed: the memory must survive until the step where the episode ended."""
    announced, reference = make(rid), make(rid)
    warmup = walk(shuttle(10))
    announced.compute(warmup)
    reference.compute(warmup)
    dones = torch.zeros(8, 2)
    dones[3, 0] = 1.0
    announced.reset_episodes(torch.tensor([True, False]))  # as the loop does at step 3
    got = announced.compute(walk(shuttle(8), dones))
    expected = reference.compute(walk(shuttle(8), dones))  # no announcement at all
    torch.testing.assert_close(got, expected)
    assert got[4, 0] > 1.5 * got[3, 0]


@pytest.mark.parametrize("rid", EPISODIC)
def test_one_step_batches_stream_like_a_rollout(rid: str) -> None:
    """Acting-time use (one [1, N] batch per env step) gives the rollout's bonuses, with
    reset_episodes called after each step's compute as an off-policy loop would."""
    # NGU's life-long multiplier keeps batch-level statistics; switch it off (L = 1) here
    kwargs: dict[str, Any] = {"max_multiplier": 1.0, "obs_norm": False} if rid == "ngu" else {}
    whole, stepwise = make(rid, **kwargs), make(rid, **kwargs)
    states = torch.tensor([[0, 3], [1, 4], [2, 3], [0, 4], [1, 5], [1, 4], [2, 3]])
    dones = torch.zeros(6, 2)
    dones[2, 1] = 1.0
    expected = whole.compute(walk(states, dones))
    got = []
    for t in range(6):
        step = walk(states[t : t + 2], dones[t : t + 1])
        got.append(stepwise.compute(step)[0])
        stepwise.reset_episodes(dones[t].bool())
    torch.testing.assert_close(torch.stack(got), expected)


@pytest.mark.parametrize("rid", EPISODIC)
def test_replay_batches_score_against_the_batch_and_leave_memory_alone(rid: str) -> None:
    module = make(rid)
    module.compute(walk(shuttle(6)))
    sizes = module.memory_sizes().clone()
    states = torch.tensor([0, 0, 0, 0, 0, 0, 7])
    batch = walk(torch.stack([states, (states + 1) % STATES]))  # [1, 7] -> reshape to [B]
    replay = TransitionBatch(
        batch.obs[0], batch.actions[0], batch.next_obs[0], torch.zeros(states.shape[0])
    )
    bonus = module.compute(replay)
    assert bonus.shape == (7,)
    assert torch.equal(module.memory_sizes(), sizes)
    assert bonus[6] > 1.5 * bonus[:6].max(), "the row unlike the others is the novel one"


@pytest.mark.parametrize("rid", EPISODIC)
def test_changing_env_count_starts_fresh_memories(rid: str) -> None:
    module = make(rid)
    module.compute(walk(shuttle(4, num_envs=2)))
    out = module.compute(walk(shuttle(4, num_envs=3)))
    assert out.shape == (4, 3)
    assert module.memory_sizes().shape == (3,)


# --------------------------------------------------------------------------- formulas
def test_e3b_matches_the_explicit_elliptical_bonus() -> None:
    module = make("e3b", ridge=0.1)
    assert isinstance(module, E3B)
    states = torch.tensor([[0], [3], [5], [3], [3], [7], [0]])
    batch = walk(states)
    got = module.compute(batch)[:, 0]
    with torch.no_grad():
        h = module.embedding(F.one_hot(states[:, 0], STATES).float()).double()
    cov = 0.1 * torch.eye(8, dtype=torch.float64) + torch.outer(h[0], h[0])
    for t in range(6):
        x = h[t + 1]
        expected = x @ torch.linalg.solve(cov, x)
        assert got[t].item() == pytest.approx(expected.item(), rel=1e-4)
        cov = cov + torch.outer(x, x)


def test_e3b_replay_bonus_is_leave_one_out() -> None:
    module = make("e3b", ridge=0.1)
    g = torch.Generator().manual_seed(0)
    nxt = torch.rand(6, STATES, generator=g)
    batch = TransitionBatch(
        torch.rand(6, STATES, generator=g), torch.zeros(6, dtype=torch.int64), nxt, torch.zeros(6)
    )
    got = module.compute(batch)
    with torch.no_grad():
        h = module.embedding(nxt).double()
    for i in range(6):
        others = torch.cat([h[:i], h[i + 1 :]])
        cov = 0.1 * torch.eye(8, dtype=torch.float64) + others.T @ others
        assert got[i].item() == pytest.approx(
            (h[i] @ torch.linalg.solve(cov, h[i])).item(), rel=1e-4
        )


def test_ngu_episodic_bonus_matches_algorithm_1() -> None:
    """NGU's kernel: k-NN squared distances over their running mean, cluster distance, kernel
    eps / (d + eps), similarity sqrt(sum) + c, 0 above max similarity; life-long multiplier
    off (L = 1) so only the episodic part remains."""
    k, xi, eps, c, s_max = 3, 0.008, 1e-4, 0.001, 8.0
    module = make("ngu", k=k, max_multiplier=1.0, obs_norm=False)
    assert isinstance(module, NGU)
    states = torch.tensor([[0], [1], [0], [2], [1], [0], [0], [3]])
    got = module.compute(walk(states))[:, 0]
    with torch.no_grad():
        h = module.embedding(F.one_hot(states[:, 0], STATES).float()).double()
    memory = [h[0]]
    all_d2: list[float] = []
    for t in range(7):
        x = h[t + 1]
        d2 = torch.stack([(x - m).pow(2).sum() for m in memory]).sort().values[:k]
        all_d2 += d2.tolist()
        dm2 = float(np.mean(all_d2))
        dn = (d2 / dm2 - xi).clamp(min=0.0)
        s = (eps / (dn + eps)).sum().sqrt() + c
        expected = 0.0 if s > s_max else 1.0 / s
        assert got[t].item() == pytest.approx(float(expected), rel=1e-3, abs=1e-5)
        memory.append(x)
    assert got[1] < 1.0 and got[2] > 10.0, (
        "a revisit scores about 1 / sqrt(1 + c), a new state far more"
    )


def test_ngu_life_long_multiplier_is_clipped_to_1_and_L() -> None:
    module = make("ngu", max_multiplier=5.0)
    assert isinstance(module, NGU)
    g = torch.Generator().manual_seed(0)
    batch = TransitionBatch(
        torch.rand(64, STATES, generator=g),
        torch.zeros(64, dtype=torch.int64),
        torch.rand(64, STATES, generator=g) * 10,
        torch.zeros(64),
    )
    multiplier = module._multiplier(batch)
    assert multiplier.min() >= 1.0 and multiplier.max() <= 5.0
    assert multiplier.max() > 1.0, "some states are more novel than average"


def test_ride_bonus_is_impact_over_sqrt_episodic_count() -> None:
    module = make("ride")
    assert isinstance(module, RIDE)
    states = torch.tensor([[0], [1], [0], [1], [2], [1]])
    got = module.compute(walk(states))[:, 0]
    with torch.no_grad():
        phi = module.encoder(F.one_hot(states[:, 0], STATES).float())
    impact = (phi[1:] - phi[:-1]).norm(dim=1)
    counts = torch.tensor([1.0, 1.0, 2.0, 1.0, 3.0])  # next states 1, 0, 1, 2, 1
    torch.testing.assert_close(got, impact / counts.sqrt())
