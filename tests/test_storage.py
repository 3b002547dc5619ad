"""RolloutStorage and GAE."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.storages import STORAGES, RolloutStorage, action_layout, compute_gae

T, N = 5, 3

VEC = spaces.Box(-np.inf, np.inf, (2,), np.float32)
IMG = spaces.Box(0, 255, (2, 4, 4), np.uint8)
DICT = spaces.Dict({"image": IMG, "vec": VEC})


def ref_gae(rewards, values, dones, last_value, gamma, lam):
    """Textbook GAE, one env at a time, plain Python floats."""
    num_steps, num_envs = len(rewards), len(rewards[0])
    adv = [[0.0] * num_envs for _ in range(num_steps)]
    for n in range(num_envs):
        gae = 0.0
        for t in reversed(range(num_steps)):
            next_value = last_value[n] if t == num_steps - 1 else values[t + 1][n]
            nonterminal = 1.0 - dones[t][n]
            delta = rewards[t][n] + gamma * next_value * nonterminal - values[t][n]
            gae = delta + gamma * lam * nonterminal * gae
            adv[t][n] = gae
    ret = [[adv[t][n] + values[t][n] for n in range(num_envs)] for t in range(num_steps)]
    return adv, ret


def random_rollout(num_steps, num_envs, seed, done_prob=0.2):
    rng = random.Random(seed)
    rewards = [[rng.uniform(-1, 1) for _ in range(num_envs)] for _ in range(num_steps)]
    values = [[rng.uniform(-2, 2) for _ in range(num_envs)] for _ in range(num_steps)]
    dones = [[float(rng.random() < done_prob) for _ in range(num_envs)] for _ in range(num_steps)]
    last = [rng.uniform(-2, 2) for _ in range(num_envs)]
    return rewards, values, dones, last


def as_tensors(*lists):
    return [torch.tensor(x, dtype=torch.float32) for x in lists]


def obs_for(space, t, num_envs=N):
    """Observations whose values encode the flat sample index t * N + n."""
    idx = torch.arange(num_envs) + t * num_envs
    if isinstance(space, spaces.Dict):
        return {k: obs_for(s, t, num_envs) for k, s in space.spaces.items()}
    shape = (num_envs, *space.shape)
    if space.dtype == np.uint8:
        return idx.to(torch.uint8).reshape(-1, *[1] * len(space.shape)).expand(shape).clone()
    return idx.float().reshape(-1, *[1] * len(space.shape)).expand(shape).clone()


def actions_for(space, t, num_envs=N):
    idx = torch.arange(num_envs) + t * num_envs
    if isinstance(space, spaces.Discrete):
        return idx % space.n
    if isinstance(space, spaces.MultiDiscrete):
        return torch.stack([idx % int(n) for n in space.nvec], -1)
    if isinstance(space, spaces.MultiBinary):
        d = int(np.prod(space.shape))
        return ((idx[:, None] + torch.arange(d)) % 2).float()
    return idx.float()[:, None].expand(num_envs, int(np.prod(space.shape))).clone()


def fill(storage, space, act_space, steps=None, next_obs=False, start=0):
    for t in range(start, start + (storage.num_steps if steps is None else steps)):
        idx = (torch.arange(storage.num_envs) + t * storage.num_envs).float()
        storage.add(
            obs=obs_for(space, t, storage.num_envs),
            actions=actions_for(act_space, t, storage.num_envs),
            rewards=idx * 0.5,
            dones=(idx % 4 == 0).float(),
            values=idx,
            log_probs=-idx,
            episode_starts=(idx % 5 == 0).float(),
            next_obs=obs_for(space, t + 1, storage.num_envs) if next_obs else None,
        )


def flat_index_of_obs(obs):
    x = obs["vec"] if isinstance(obs, dict) else obs
    return x.reshape(x.shape[0], -1)[:, 0].long()


# --------------------------------------------------------------------------- GAE


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0)])
def test_compute_gae_matches_reference(seed, gamma, lam):
    rewards, values, dones, last = random_rollout(8, 4, seed)
    adv, ret = compute_gae(*as_tensors(rewards, values, dones, last), gamma, lam)
    ref_adv, ref_ret = ref_gae(rewards, values, dones, last, gamma, lam)
    assert adv.shape == (8, 4) and ret.shape == (8, 4)
    torch.testing.assert_close(adv, torch.tensor(ref_adv), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ret, torch.tensor(ref_ret), rtol=1e-5, atol=1e-5)


def test_gae_lambda_one_gives_discounted_returns():
    rewards, values, _, last = random_rollout(6, 2, 7)
    dones = [[0.0, 0.0] for _ in range(6)]
    dones[2][1] = 1.0
    _, ret = compute_gae(*as_tensors(rewards, values, dones, last), 0.9, 1.0)
    for n in range(2):
        g = last[n]
        for t in reversed(range(6)):
            g = rewards[t][n] + 0.9 * g * (1.0 - dones[t][n])
            assert ret[t, n].item() == pytest.approx(g, rel=1e-5, abs=1e-5)


def test_done_stops_bootstrapping():
    rewards, values, dones, last = random_rollout(6, 2, 3, done_prob=0.0)
    dones[2][0] = 1.0
    adv, _ = compute_gae(*as_tensors(rewards, values, dones, last), 0.99, 0.95)
    # at the done step the advantage is the one-step error without a next value
    assert adv[2, 0].item() == pytest.approx(rewards[2][0] - values[2][0], abs=1e-6)
    # nothing after the done step leaks into steps <= 2 of env 0
    r2, v2, _, l2 = random_rollout(6, 2, 99, done_prob=0.0)
    for t in range(3, 6):
        rewards[t][0], values[t][0] = r2[t][0], v2[t][0]
    last[0] = l2[0]
    adv2, _ = compute_gae(*as_tensors(rewards, values, dones, last), 0.99, 0.95)
    torch.testing.assert_close(adv2[:3, 0], adv[:3, 0])
    assert not torch.allclose(adv2[3:, 0], adv[3:, 0])
    # env 1 (no done) does see its future
    values[5][1] += 10.0
    adv3, _ = compute_gae(*as_tensors(rewards, values, dones, last), 0.99, 0.95)
    assert adv3[0, 1] != adv2[0, 1]


def test_truncation_reward_carries_bootstrap():
    # a truncated step ends the episode (done=1) and its reward already includes
    # gamma * V(final_obs); the return at that step is exactly that reward
    gamma, v_final, r = 0.9, 4.0, 1.0
    rewards = torch.tensor([[0.5], [r + gamma * v_final]])
    values = torch.tensor([[1.0], [2.0]])
    dones = torch.tensor([[0.0], [1.0]])
    last = torch.tensor([100.0])  # value of the next episode's first obs: must be ignored
    adv, ret = compute_gae(rewards, values, dones, last, gamma, 1.0)
    assert ret[1, 0].item() == pytest.approx(r + gamma * v_final)
    assert ret[0, 0].item() == pytest.approx(0.5 + gamma * (r + gamma * v_final))
    assert adv[1, 0].item() == pytest.approx(r + gamma * v_final - 2.0)


# --------------------------------------------------------------------------- storage basics


@pytest.mark.parametrize(
    "act_space",
    [
        spaces.Discrete(3),
        spaces.MultiDiscrete([2, 3]),
        spaces.MultiBinary([2, 2]),
        spaces.Box(-1, 1, (2,)),
    ],
    ids=["discrete", "multidiscrete", "multibinary", "box"],
)
@pytest.mark.parametrize("obs_space", [VEC, IMG, DICT], ids=["vec", "img", "dict"])
def test_add_len_reset_full(obs_space, act_space):
    storage = RolloutStorage(obs_space, act_space, T, N)
    assert len(storage) == 0
    shape, dtype = action_layout(act_space)
    assert storage.actions.shape == (T, N, *shape) and storage.actions.dtype == dtype
    fill(storage, obs_space, act_space, steps=2)
    assert len(storage) == 2 * N
    fill(storage, obs_space, act_space, steps=T - 2, start=2)
    assert len(storage) == T * N
    with pytest.raises(RuntimeError, match="full"):
        fill(storage, obs_space, act_space, steps=1)
    # stored contents
    if isinstance(obs_space, spaces.Dict):
        assert storage.obs["image"].dtype == torch.uint8
        assert storage.obs["vec"].dtype == torch.float32
        assert storage.obs["image"].shape == (T, N, *IMG.shape)
    elif obs_space is IMG:
        assert storage.obs.dtype == torch.uint8
        assert storage.obs.shape == (T, N, *IMG.shape)
    else:
        assert storage.obs.dtype == torch.float32
    torch.testing.assert_close(storage.actions[1], actions_for(act_space, 1).to(dtype))
    torch.testing.assert_close(storage.values[2], torch.arange(N).float() + 2 * N)
    storage.reset()
    assert len(storage) == 0
    fill(storage, obs_space, act_space, steps=1)  # usable again
    assert len(storage) == N


def test_action_layout():
    assert action_layout(spaces.Discrete(4)) == ((), torch.int64)
    assert action_layout(spaces.MultiDiscrete([[2, 3], [4, 5]])) == ((4,), torch.int64)
    assert action_layout(spaces.MultiBinary([2, 3])) == ((6,), torch.float32)
    assert action_layout(spaces.Box(-1, 1, (2, 2))) == ((4,), torch.float32)
    with pytest.raises(TypeError, match="unsupported action space"):
        action_layout(spaces.Dict({"a": spaces.Discrete(2)}))


def test_constructor_errors():
    with pytest.raises(ValueError, match="num_steps"):
        RolloutStorage(VEC, spaces.Discrete(2), 0, 1)
    with pytest.raises(ValueError, match="num_steps"):
        RolloutStorage(VEC, spaces.Discrete(2), 2, 0)
    with pytest.raises(TypeError, match="unsupported observation space"):
        RolloutStorage(spaces.Discrete(3), spaces.Discrete(2), 2, 2)


def test_registered():
    assert STORAGES.get("rollout") is RolloutStorage


def test_compute_returns_and_advantages_uses_gae():
    storage = RolloutStorage(VEC, spaces.Discrete(3), T, N)
    fill(storage, VEC, spaces.Discrete(3))
    last = torch.tensor([1.0, -1.0, 0.5])
    storage.compute_returns_and_advantages(last, 0.9, 0.8)
    adv, ret = compute_gae(storage.rewards, storage.values, storage.dones, last, 0.9, 0.8)
    torch.testing.assert_close(storage.advantages, adv)
    torch.testing.assert_close(storage.returns, ret)
    ref_adv, _ = ref_gae(
        storage.rewards.tolist(),
        storage.values.tolist(),
        storage.dones.tolist(),
        last.tolist(),
        0.9,
        0.8,
    )
    torch.testing.assert_close(storage.advantages, torch.tensor(ref_adv), rtol=1e-5, atol=1e-4)


# --------------------------------------------------------------------------- minibatches


@pytest.mark.parametrize("obs_space", [VEC, DICT], ids=["vec", "dict"])
@pytest.mark.parametrize("batch_size", [1, 4, 5, 7, 15])
def test_minibatches_cover_every_sample_once(obs_space, batch_size):
    act_space = spaces.MultiDiscrete([4, 5])
    storage = RolloutStorage(obs_space, act_space, T, N)
    fill(storage, obs_space, act_space)
    storage.compute_returns_and_advantages(torch.zeros(N), 0.99, 0.95)
    gen = torch.Generator().manual_seed(0)
    for _epoch in range(2):
        seen = []
        sizes = []
        for mb in storage.minibatches(batch_size, generator=gen):
            ids = flat_index_of_obs(mb.obs)
            sizes.append(ids.numel())
            seen.extend(ids.tolist())
            # every field of the minibatch is aligned with the same samples
            torch.testing.assert_close(mb.old_values, ids.float())
            torch.testing.assert_close(mb.old_log_probs, -ids.float())
            expected_actions = torch.stack([ids % 4, ids % 5], -1)
            torch.testing.assert_close(mb.actions, expected_actions)
            torch.testing.assert_close(mb.advantages, storage.advantages.reshape(-1)[ids])
            torch.testing.assert_close(mb.returns, storage.returns.reshape(-1)[ids])
            torch.testing.assert_close(mb.episode_starts, (ids % 5 == 0).float())
            if isinstance(mb.obs, dict):
                assert mb.obs["image"].dtype == torch.uint8
                torch.testing.assert_close(mb.obs["image"][:, 0, 0, 0].long(), ids)
        assert sorted(seen) == list(range(T * N))
        assert all(s == batch_size for s in sizes[:-1])
        assert sum(sizes) == T * N


def test_minibatches_shuffle_reproducibly():
    storage = RolloutStorage(VEC, spaces.Discrete(3), T, N)
    fill(storage, VEC, spaces.Discrete(3))

    def order(seed):
        g = torch.Generator().manual_seed(seed)
        return [flat_index_of_obs(mb.obs).tolist() for mb in storage.minibatches(4, g)]

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert [i for mb in order(1) for i in mb] != list(range(T * N))  # actually shuffled


def test_minibatches_batch_size_errors():
    storage = RolloutStorage(VEC, spaces.Discrete(3), T, N)
    fill(storage, VEC, spaces.Discrete(3))
    with pytest.raises(ValueError, match="batch_size"):
        next(storage.minibatches(0))


@pytest.mark.parametrize("batch_size", [2, 100], ids=["small", "full"])
def test_minibatches_partial_rollout_only_yields_stored_samples(batch_size):
    storage = RolloutStorage(VEC, spaces.Discrete(3), T, N)
    fill(storage, VEC, spaces.Discrete(3), steps=2)
    seen = []
    for mb in storage.minibatches(batch_size, torch.Generator().manual_seed(0)):
        seen.extend(flat_index_of_obs(mb.obs).tolist())
        assert mb.actions.shape[0] == mb.old_values.shape[0]
    assert sorted(seen) == list(range(2 * N))


def test_sample():
    storage = RolloutStorage(DICT, spaces.Box(-1, 1, (2,)), T, N)
    fill(storage, DICT, spaces.Box(-1, 1, (2,)))
    batch = storage.sample(6, generator=torch.Generator().manual_seed(0))
    ids = flat_index_of_obs(batch.obs)
    assert ids.shape == (6,)
    assert len(set(ids.tolist())) == 6  # without replacement
    assert ((ids >= 0) & (ids < T * N)).all()
    torch.testing.assert_close(batch.old_values, ids.float())
    torch.testing.assert_close(batch.actions, ids.float()[:, None].expand(6, 2))
    again = storage.sample(6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(flat_index_of_obs(again.obs), ids)
    # a batch larger than the rollout returns every stored sample once
    everything = storage.sample(1000, generator=torch.Generator().manual_seed(0))
    assert sorted(flat_index_of_obs(everything.obs).tolist()) == list(range(T * N))


def test_sample_partial_rollout():
    storage = RolloutStorage(VEC, spaces.Discrete(3), T, N)
    fill(storage, VEC, spaces.Discrete(3), steps=2)
    batch = storage.sample(1000, generator=torch.Generator().manual_seed(0))
    assert sorted(flat_index_of_obs(batch.obs).tolist()) == list(range(2 * N))


# --------------------------------------------------------------------------- next obs


def test_store_next_obs():
    act = spaces.Discrete(3)
    storage = RolloutStorage(DICT, act, T, N, store_next_obs=True)
    fill(storage, DICT, act, next_obs=True)
    for t in range(T):
        torch.testing.assert_close(storage.next_obs["vec"][t], obs_for(DICT, t + 1)["vec"])
        torch.testing.assert_close(storage.next_obs["image"][t], obs_for(DICT, t + 1)["image"])
    assert storage.next_obs["image"].dtype == torch.uint8
    storage.reset()
    with pytest.raises(ValueError, match="next_obs"):
        fill(storage, DICT, act, steps=1, next_obs=False)


def test_next_obs_absent_by_default():
    storage = RolloutStorage(VEC, spaces.Discrete(3), T, N)
    assert storage.next_obs is None
    assert not any(k.startswith("next_obs") for k in storage.state_dict())


# --------------------------------------------------------------------------- state dict


@pytest.mark.parametrize("obs_space", [VEC, DICT], ids=["vec", "dict"])
def test_state_dict_round_trip(obs_space):
    act = spaces.MultiBinary(3)
    src = RolloutStorage(obs_space, act, T, N, store_next_obs=True)
    fill(src, obs_space, act, steps=3, next_obs=True)
    src.compute_returns_and_advantages(torch.ones(N), 0.9, 0.9)
    state = src.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    if isinstance(obs_space, spaces.Dict):
        assert {"obs.image", "obs.vec", "next_obs.image", "next_obs.vec"} <= set(state)
    else:
        assert {"obs", "next_obs"} <= set(state)

    dst = RolloutStorage(obs_space, act, T, N, store_next_obs=True)
    dst.load_state_dict(state)
    assert len(dst) == len(src) == 3 * N
    for key, value in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[key], value, msg=key)
    # loaded storage continues where the source stopped
    fill(dst, obs_space, act, steps=T - 3, next_obs=True, start=3)
    torch.testing.assert_close(dst.values[:3], src.values[:3])
    torch.testing.assert_close(dst.values.reshape(-1), torch.arange(T * N).float())
    with pytest.raises(RuntimeError):
        fill(dst, obs_space, act, steps=1, next_obs=True)


def test_load_state_dict_shape_mismatch():
    act = spaces.Discrete(3)
    src = RolloutStorage(VEC, act, T, N)
    fill(src, VEC, act)
    other = RolloutStorage(VEC, act, T, N + 1)
    with pytest.raises(ValueError, match="shape") as info:
        other.load_state_dict(src.state_dict())
    assert str((T, N + 1)) in str(info.value) or str((T, N + 1, 2)) in str(info.value)


def test_load_state_dict_missing_entries():
    act = spaces.Discrete(3)
    src = RolloutStorage(VEC, act, T, N)
    dst = RolloutStorage(VEC, act, T, N, store_next_obs=True)
    with pytest.raises(ValueError, match="next_obs"):
        dst.load_state_dict(src.state_dict())
