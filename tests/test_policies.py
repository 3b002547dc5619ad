"""ActorCritic: shapes, env-valid actions, determinism, trunk sharing and space checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.distributions import Categorical, DiagGaussian
from rlkit.encoders import MLP, DictEncoder, Identity, NatureCNN
from rlkit.policies import POLICIES, ActorCritic, ActorCriticOutput

B = 4

OBS_SPACES = {
    "vector": spaces.Box(-1.0, 1.0, (5,), np.float32),
    "image": spaces.Box(0, 255, (3, 36, 36), np.uint8),
    "dict": spaces.Dict(
        {
            "image": spaces.Box(0, 255, (3, 36, 36), np.uint8),
            "vec": spaces.Box(-1.0, 1.0, (3,), np.float32),
        }
    ),
}

ACTION_SPACES = {
    "discrete": spaces.Discrete(4, start=2),
    "multidiscrete": spaces.MultiDiscrete([3, 2, 4], start=[0, 5, -1]),
    "multibinary": spaces.MultiBinary([2, 2]),
    "box": spaces.Box(
        np.array([-1.0, 0.0], np.float32), np.array([1.0, 0.5], np.float32), dtype=np.float32
    ),
}


def make_obs(space, batch=B, seed=0):
    g = torch.Generator().manual_seed(seed)
    if isinstance(space, spaces.Dict):
        return {k: make_obs(s, batch, seed + i) for i, (k, s) in enumerate(space.spaces.items())}
    if space.dtype == np.uint8:
        return torch.randint(0, 256, (batch, *space.shape), generator=g, dtype=torch.uint8)
    return torch.rand((batch, *space.shape), generator=g) * 2 - 1


def make_policy(obs_name, act_name, **kwargs):
    torch.manual_seed(0)
    kwargs.setdefault("encoder", small_encoder(OBS_SPACES[obs_name]))
    return ActorCritic(OBS_SPACES[obs_name], ACTION_SPACES[act_name], **kwargs)


def small_encoder(space):
    if isinstance(space, spaces.Dict):
        return DictEncoder(space, cnn_feature_dim=16)
    if space.dtype == np.uint8:
        return NatureCNN(space, feature_dim=16)
    return Identity(space)


def action_shape(space):
    if isinstance(space, spaces.Discrete):
        return ()
    if isinstance(space, spaces.MultiDiscrete):
        return (int(space.nvec.size),)
    return (int(np.prod(space.shape)),)


COMBOS = [(o, a) for o in OBS_SPACES for a in ACTION_SPACES]


@pytest.mark.parametrize(("obs_name", "act_name"), COMBOS)
def test_forward_act_and_evaluate(obs_name, act_name):
    policy = make_policy(obs_name, act_name)
    act_space = ACTION_SPACES[act_name]
    obs = make_obs(OBS_SPACES[obs_name])

    out = policy(obs)
    assert isinstance(out, ActorCriticOutput)
    assert out.value.shape == (B,)
    assert out.state is None
    raw = out.dist.sample(torch.Generator().manual_seed(0))
    assert raw.shape == (B, *action_shape(act_space))

    # env-ready actions, sampled and deterministic, all lie in the action space
    for deterministic in (False, True):
        with torch.no_grad():
            actions, state = policy.act(obs, deterministic=deterministic)
        assert state is None
        assert actions.shape[0] == B
        for a in actions.numpy():
            if isinstance(act_space, spaces.Discrete):
                a = np.int64(a)
            assert act_space.contains(a), (a, act_space)

    log_prob, entropy, value, dist = policy.evaluate_actions(obs, raw)
    assert log_prob.shape == (B,)
    assert entropy.shape == (B,)
    assert value.shape == (B,)
    torch.testing.assert_close(log_prob, dist.log_prob(raw))
    torch.testing.assert_close(value, out.value)
    assert torch.isfinite(log_prob).all() and torch.isfinite(entropy).all()


@pytest.mark.parametrize("obs_name", list(OBS_SPACES))
@pytest.mark.parametrize("share", [False, True])
def test_value_equals_forward_value(obs_name, share):
    policy = make_policy(obs_name, "box", share_trunk=share)
    obs = make_obs(OBS_SPACES[obs_name])
    torch.testing.assert_close(policy.value(obs), policy(obs).value)
    assert policy.value(obs).shape == (B,)


@pytest.mark.parametrize("act_name", list(ACTION_SPACES))
def test_deterministic_act_is_deterministic(act_name):
    policy = make_policy("vector", act_name)
    # make the action head non-trivial so the mode is not a tie everywhere
    with torch.no_grad():
        policy.action_head.weight.normal_(0, 1.0)
    obs = make_obs(OBS_SPACES["vector"], batch=16)
    a1, _ = policy.act(obs, deterministic=True)
    torch.manual_seed(123)
    a2, _ = policy.act(obs, deterministic=True)
    torch.testing.assert_close(a1, a2)
    mode = policy(obs).dist.mode()
    torch.testing.assert_close(a1, policy.distribution.postprocess(mode))


def test_stochastic_act_varies():
    policy = make_policy("vector", "discrete")
    obs = make_obs(OBS_SPACES["vector"], batch=64)
    torch.manual_seed(0)
    a1, _ = policy.act(obs)
    a2, _ = policy.act(obs)
    assert not torch.equal(a1, a2)  # near-uniform initial policy over 4 actions


def test_share_trunk_parameter_counts():
    separate = make_policy("vector", "discrete", hidden_sizes=(32, 32))
    shared = make_policy("vector", "discrete", hidden_sizes=(32, 32), share_trunk=True)
    assert separate.critic_trunk is not separate.actor_trunk
    assert shared.critic_trunk is shared.actor_trunk
    n_sep = sum(p.numel() for p in separate.parameters())
    n_shared = sum(p.numel() for p in shared.parameters())
    trunk = sum(p.numel() for p in separate.actor_trunk.parameters())
    assert trunk == 5 * 32 + 32 + 32 * 32 + 32
    assert n_sep - n_shared == trunk


def test_shared_trunk_value_gradient_reaches_actor_trunk():
    shared = make_policy("vector", "box", share_trunk=True)
    shared.value(make_obs(OBS_SPACES["vector"])).sum().backward()
    assert all(p.grad is not None for p in shared.actor_trunk.parameters())
    separate = make_policy("vector", "box")
    separate.value(make_obs(OBS_SPACES["vector"])).sum().backward()
    assert all(p.grad is None for p in separate.actor_trunk.parameters())


def test_default_hidden_sizes():
    vec = ActorCritic(OBS_SPACES["vector"], ACTION_SPACES["discrete"])
    assert isinstance(vec.encoder, Identity)
    assert vec.action_head.in_features == 64
    assert len([m for m in vec.actor_trunk if isinstance(m, torch.nn.Linear)]) == 2
    img = ActorCritic(OBS_SPACES["image"], ACTION_SPACES["discrete"])
    assert isinstance(img.encoder, NatureCNN)
    assert len(img.actor_trunk) == 0  # no trunk on top of the CNN
    assert img.action_head.in_features == 512


def test_head_initialisation_scales():
    policy = make_policy("vector", "discrete", hidden_sizes=(64,))
    # actor head orthogonal with gain 0.01, value head gain 1
    assert policy.action_head.weight.abs().max() < 0.02
    assert policy.value_head.weight.abs().max() > 0.05
    assert torch.count_nonzero(policy.action_head.bias) == 0


def test_initial_state_is_none():
    policy = make_policy("vector", "discrete")
    assert policy.initial_state(3) is None
    assert policy.recurrent is False


def test_encoder_space_mismatch_raises_naming_both_spaces():
    env_space = spaces.Box(-1.0, 1.0, (5,), np.float32)
    enc_space = spaces.Box(-1.0, 1.0, (6,), np.float32)
    with pytest.raises(ValueError) as info:
        ActorCritic(env_space, spaces.Discrete(2), encoder=MLP(enc_space))
    msg = str(info.value)
    assert repr(env_space) in msg
    assert repr(enc_space) in msg
    assert "MLP" in msg


def test_distribution_space_mismatch_raises_naming_both_spaces():
    dist_space = spaces.Discrete(3)
    env_space = spaces.Discrete(4)
    with pytest.raises(ValueError) as info:
        ActorCritic(OBS_SPACES["vector"], env_space, distribution=Categorical(dist_space))
    msg = str(info.value)
    assert repr(dist_space) in msg and repr(env_space) in msg


def test_custom_distribution_used():
    act = ACTION_SPACES["box"]
    dist = DiagGaussian(act, state_dependent_std=True)
    policy = ActorCritic(OBS_SPACES["vector"], act, distribution=dist)
    assert policy.distribution is dist
    assert policy.action_head.out_features == 4


def test_registered():
    assert POLICIES.get("actor_critic") is ActorCritic
