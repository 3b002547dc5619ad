"""Action distribution families: shapes, closed forms, KL, gradients, postprocessing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.distributions as td
from gymnasium import spaces

from rlkit.distributions import (
    DISTRIBUTIONS,
    Bernoulli,
    Categorical,
    DiagGaussian,
    MultiCategorical,
    default_distribution,
)

B = 6


def params_for(family, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, family.num_params, generator=g) * scale


# --------------------------------------------------------------------------- Categorical


def test_categorical_shapes_and_closed_forms():
    fam = Categorical(spaces.Discrete(5))
    assert fam.num_params == 5
    assert fam.action_shape == ()
    assert fam.action_dtype == torch.int64
    logits = params_for(fam)
    dist = fam(logits)
    ref = td.Categorical(logits=logits)

    a = dist.sample(torch.Generator().manual_seed(1))
    assert a.shape == (B,) and a.dtype == torch.int64
    assert ((a >= 0) & (a < 5)).all()
    m = dist.mode()
    assert m.shape == (B,)
    torch.testing.assert_close(m, logits.argmax(-1))

    actions = torch.arange(B) % 5
    lp = dist.log_prob(actions)
    assert lp.shape == (B,)
    torch.testing.assert_close(lp, ref.log_prob(actions))
    # closed form: log softmax
    torch.testing.assert_close(lp, torch.log_softmax(logits, -1)[torch.arange(B), actions])
    ent = dist.entropy()
    assert ent.shape == (B,)
    torch.testing.assert_close(ent, ref.entropy())
    assert (ent <= math.log(5) + 1e-6).all()


def test_categorical_uniform_entropy_is_log_n():
    dist = Categorical(spaces.Discrete(7))(torch.zeros(3, 7))
    torch.testing.assert_close(dist.entropy(), torch.full((3,), math.log(7)))


def test_categorical_kl_matches_torch():
    fam = Categorical(spaces.Discrete(4))
    p, q = params_for(fam, 1), params_for(fam, 2)
    kl = fam(p).kl(fam(q))
    assert kl.shape == (B,)
    ref = td.kl_divergence(td.Categorical(logits=p), td.Categorical(logits=q))
    torch.testing.assert_close(kl, ref)
    torch.testing.assert_close(fam(p).kl(fam(p)), torch.zeros(B), atol=1e-6, rtol=0)


def test_categorical_postprocess_start_offset():
    fam = Categorical(spaces.Discrete(3, start=-1))
    raw = torch.tensor([0, 1, 2])
    torch.testing.assert_close(fam.postprocess(raw), torch.tensor([-1, 0, 1]))
    space = spaces.Discrete(3, start=5)
    fam5 = Categorical(space)
    out = fam5.postprocess(raw)
    torch.testing.assert_close(out, torch.tensor([5, 6, 7]))
    assert all(space.contains(np.int64(v)) for v in out.numpy())
    # start=0 is a no-op
    plain = Categorical(spaces.Discrete(3))
    torch.testing.assert_close(plain.postprocess(raw), raw)


def test_categorical_sampling_frequencies():
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4])
    fam = Categorical(spaces.Discrete(4))
    n = 20000
    dist = fam(probs.log().expand(n, 4))
    a = dist.sample(torch.Generator().manual_seed(0))
    freq = torch.bincount(a, minlength=4).float() / n
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)


def test_categorical_sampling_is_reproducible_with_generator():
    fam = Categorical(spaces.Discrete(6))
    dist = fam(params_for(fam))
    a = dist.sample(torch.Generator().manual_seed(3))
    b = dist.sample(torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


# --------------------------------------------------------------------------- MultiCategorical


@pytest.mark.parametrize("nvec", [[3, 3, 3], [2, 4, 3]], ids=["uniform", "non_uniform"])
def test_multicategorical_shapes_and_references(nvec):
    fam = MultiCategorical(spaces.MultiDiscrete(nvec))
    assert fam.num_params == sum(nvec)
    assert fam.action_shape == (3,)
    assert fam.action_dtype == torch.int64
    logits = params_for(fam)
    dist = fam(logits)
    chunks = torch.split(logits, nvec, dim=-1)
    refs = [td.Categorical(logits=c) for c in chunks]

    a = dist.sample(torch.Generator().manual_seed(0))
    assert a.shape == (B, 3) and a.dtype == torch.int64
    for d, n in enumerate(nvec):
        assert ((a[:, d] >= 0) & (a[:, d] < n)).all()
    mode = dist.mode()
    assert mode.shape == (B, 3)
    torch.testing.assert_close(mode, torch.stack([c.argmax(-1) for c in chunks], -1))

    actions = torch.stack([torch.arange(B) % n for n in nvec], -1)
    lp = dist.log_prob(actions)
    assert lp.shape == (B,)
    ref_lp = sum(r.log_prob(actions[:, d]) for d, r in enumerate(refs))
    torch.testing.assert_close(lp, ref_lp)
    ent = dist.entropy()
    assert ent.shape == (B,)
    torch.testing.assert_close(ent, sum(r.entropy() for r in refs))

    other = params_for(fam, 5)
    kl = dist.kl(fam(other))
    assert kl.shape == (B,)
    ref_kl = sum(
        td.kl_divergence(r, td.Categorical(logits=c))
        for r, c in zip(refs, torch.split(other, nvec, dim=-1), strict=True)
    )
    torch.testing.assert_close(kl, ref_kl)


def test_multicategorical_postprocess_start_and_reshape():
    space = spaces.MultiDiscrete(np.array([[2, 3], [4, 5]]), start=np.array([[1, -1], [0, 10]]))
    fam = MultiCategorical(space)
    assert fam.num_params == 14
    assert fam.action_shape == (4,)
    raw = torch.tensor([[0, 0, 0, 0], [1, 2, 3, 4]])
    out = fam.postprocess(raw)
    assert out.shape == (2, 2, 2)
    torch.testing.assert_close(out[0], torch.tensor([[1, -1], [0, 10]]))
    torch.testing.assert_close(out[1], torch.tensor([[2, 1], [3, 14]]))
    for row in out.numpy():
        assert space.contains(row)
    # sampled then postprocessed actions are valid
    dist = fam(params_for(fam))
    for row in fam.postprocess(dist.sample(torch.Generator().manual_seed(0))).numpy():
        assert space.contains(row)


def test_multicategorical_sampling_frequencies_non_uniform():
    fam = MultiCategorical(spaces.MultiDiscrete([2, 3]))
    p0 = torch.tensor([0.25, 0.75])
    p1 = torch.tensor([0.5, 0.3, 0.2])
    n = 20000
    logits = torch.cat([p0.log(), p1.log()]).expand(n, 5)
    a = fam(logits).sample(torch.Generator().manual_seed(1))
    torch.testing.assert_close(
        torch.bincount(a[:, 0], minlength=2).float() / n, p0, atol=0.015, rtol=0
    )
    torch.testing.assert_close(
        torch.bincount(a[:, 1], minlength=3).float() / n, p1, atol=0.015, rtol=0
    )


# --------------------------------------------------------------------------- Bernoulli


def test_bernoulli_shapes_and_references():
    fam = Bernoulli(spaces.MultiBinary(4))
    assert fam.num_params == 4
    assert fam.action_shape == (4,)
    assert fam.action_dtype == torch.float32
    logits = params_for(fam, scale=2.0)
    dist = fam(logits)
    ref = td.Independent(td.Bernoulli(logits=logits), 1)

    a = dist.sample(torch.Generator().manual_seed(0))
    assert a.shape == (B, 4) and a.dtype == torch.float32
    assert ((a == 0) | (a == 1)).all()
    mode = dist.mode()
    torch.testing.assert_close(mode, (logits > 0).float())

    actions = (torch.arange(B * 4).reshape(B, 4) % 3 == 0).float()
    torch.testing.assert_close(dist.log_prob(actions), ref.log_prob(actions))
    assert dist.log_prob(actions).shape == (B,)
    torch.testing.assert_close(dist.entropy(), ref.entropy())
    assert dist.entropy().shape == (B,)
    # closed form entropy of p=0.5 is log 2 per dim
    half = fam(torch.zeros(2, 4)).entropy()
    torch.testing.assert_close(half, torch.full((2,), 4 * math.log(2)))

    other = params_for(fam, 9)
    ref_kl = td.kl_divergence(ref, td.Independent(td.Bernoulli(logits=other), 1))
    torch.testing.assert_close(dist.kl(fam(other)), ref_kl)


def test_bernoulli_postprocess_int8_and_shape():
    space = spaces.MultiBinary([2, 3])
    fam = Bernoulli(space)
    assert fam.num_params == 6
    dist = fam(params_for(fam))
    raw = dist.sample(torch.Generator().manual_seed(0))
    out = fam.postprocess(raw)
    assert out.dtype == torch.int8
    assert out.shape == (B, 2, 3)
    torch.testing.assert_close(out.reshape(B, 6).float(), raw)
    for row in out.numpy():
        assert space.contains(row)


def test_bernoulli_sampling_frequencies():
    p = torch.tensor([0.1, 0.5, 0.8])
    n = 20000
    fam = Bernoulli(spaces.MultiBinary(3))
    a = fam(torch.logit(p).expand(n, 3)).sample(torch.Generator().manual_seed(2))
    torch.testing.assert_close(a.mean(0), p, atol=0.015, rtol=0)


# --------------------------------------------------------------------------- DiagGaussian


@pytest.mark.parametrize("state_dependent", [False, True])
def test_diag_gaussian_shapes_and_references(state_dependent):
    space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    fam = DiagGaussian(space, log_std_init=-0.5, state_dependent_std=state_dependent)
    assert fam.num_params == (6 if state_dependent else 3)
    assert fam.action_shape == (3,)
    assert fam.action_dtype == torch.float32
    params = params_for(fam)
    dist = fam(params)
    if state_dependent:
        # the head's log-std is clamped to log_std_bounds (-20, 2)
        mean, log_std = params[:, :3], params[:, 3:].clamp(-20.0, 2.0)
        assert not any(True for _ in fam.parameters())
    else:
        mean, log_std = params, torch.full((B, 3), -0.5)
        assert [p.shape for p in fam.parameters()] == [torch.Size([3])]
    ref = td.Independent(td.Normal(mean, log_std.exp()), 1)

    a = dist.sample(torch.Generator().manual_seed(0))
    assert a.shape == (B, 3) and a.dtype == torch.float32
    assert not a.requires_grad
    torch.testing.assert_close(dist.mode(), mean)
    lp = dist.log_prob(a)
    assert lp.shape == (B,)
    torch.testing.assert_close(lp, ref.log_prob(a))
    ent = dist.entropy()
    assert ent.shape == (B,)
    torch.testing.assert_close(ent, ref.entropy())

    other = params_for(fam, 4)
    other_dist = fam(other)
    ref_other = td.Independent(td.Normal(other_dist.mean, other_dist.std), 1)
    kl = dist.kl(other_dist)
    assert kl.shape == (B,)
    torch.testing.assert_close(kl, td.kl_divergence(ref, ref_other))
    torch.testing.assert_close(dist.kl(fam(params)), torch.zeros(B), atol=1e-6, rtol=0)


def test_diag_gaussian_log_std_clamped_when_state_dependent():
    fam = DiagGaussian(spaces.Box(-1, 1, (2,)), state_dependent_std=True, log_std_bounds=(-2, 1))
    params = torch.tensor([[0.0, 0.0, -10.0, 10.0]])
    dist = fam(params)
    torch.testing.assert_close(dist.std, torch.tensor([[math.exp(-2), math.exp(1)]]))


def test_diag_gaussian_sampling_moments():
    fam = DiagGaussian(spaces.Box(-np.inf, np.inf, (2,)), state_dependent_std=True)
    n = 20000
    params = torch.tensor([1.0, -2.0, math.log(0.5), math.log(2.0)]).expand(n, 4)
    a = fam(params).sample(torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.mean(0), torch.tensor([1.0, -2.0]), atol=0.05, rtol=0)
    torch.testing.assert_close(a.std(0), torch.tensor([0.5, 2.0]), atol=0.05, rtol=0)


def test_diag_gaussian_rsample_has_gradient():
    fam = DiagGaussian(spaces.Box(-1, 1, (2,)))
    mean = torch.zeros(4, 2, requires_grad=True)
    torch.manual_seed(0)
    fam(mean).rsample().sum().backward()
    assert mean.grad is not None
    assert fam.log_std.grad is not None and fam.log_std.grad.abs().sum() > 0


def test_diag_gaussian_postprocess_clips_to_bounds():
    low = np.array([-1.0, 0.0, -5.0], dtype=np.float32)
    high = np.array([1.0, 2.0, 5.0], dtype=np.float32)
    space = spaces.Box(low, high, dtype=np.float32)
    fam = DiagGaussian(space)
    raw = torch.tensor([[-3.0, 1.0, 9.0], [0.5, 7.0, -9.0]])
    out = fam.postprocess(raw)
    torch.testing.assert_close(out, torch.tensor([[-1.0, 1.0, 5.0], [0.5, 2.0, -5.0]]))
    for row in out.numpy():
        assert space.contains(row)
    # wide samples from the family always land inside the space after postprocess
    dist = fam(torch.zeros(50, 3) + 4.0)
    for row in fam.postprocess(dist.sample(torch.Generator().manual_seed(0))).numpy():
        assert space.contains(row)


def test_diag_gaussian_postprocess_clips_finite_bounds_of_partly_bounded_box():
    # only some dimensions are bounded: those must still be clipped to land in the space
    low = np.array([-1.0, -np.inf], dtype=np.float32)
    high = np.array([1.0, np.inf], dtype=np.float32)
    space = spaces.Box(low, high, dtype=np.float32)
    fam = DiagGaussian(space)
    out = fam.postprocess(torch.tensor([[5.0, 5.0], [-5.0, -50.0]]))
    torch.testing.assert_close(out, torch.tensor([[1.0, 5.0], [-1.0, -50.0]]))
    for row in out.numpy():
        assert space.contains(row)


def test_diag_gaussian_postprocess_unbounded_and_reshape():
    fam = DiagGaussian(spaces.Box(-np.inf, np.inf, (2, 2), np.float32))
    assert fam.num_params == 4
    raw = torch.tensor([[100.0, -100.0, 3.0, 4.0]])
    out = fam.postprocess(raw)
    assert out.shape == (1, 2, 2)
    torch.testing.assert_close(out.reshape(1, 4), raw)


# --------------------------------------------------------------------------- common


FAMILIES = [
    pytest.param(lambda: Categorical(spaces.Discrete(4)), id="categorical"),
    pytest.param(lambda: MultiCategorical(spaces.MultiDiscrete([3, 3])), id="multicat_uniform"),
    pytest.param(lambda: MultiCategorical(spaces.MultiDiscrete([2, 5])), id="multicat_mixed"),
    pytest.param(lambda: Bernoulli(spaces.MultiBinary(3)), id="bernoulli"),
    pytest.param(lambda: DiagGaussian(spaces.Box(-1, 1, (2,))), id="gaussian"),
    pytest.param(
        lambda: DiagGaussian(spaces.Box(-1, 1, (2,)), state_dependent_std=True),
        id="gaussian_sd",
    ),
]


@pytest.mark.parametrize("make", FAMILIES)
def test_gradients_flow_to_params(make):
    fam = make()
    params = params_for(fam).requires_grad_(True)
    dist = fam(params)
    actions = dist.sample(torch.Generator().manual_seed(0))
    other = fam(params_for(fam, 3))
    loss = -dist.log_prob(actions).sum() - dist.entropy().sum() + dist.kl(other).sum()
    loss.backward()
    assert params.grad is not None
    assert torch.isfinite(params.grad).all()
    assert params.grad.abs().sum() > 0


@pytest.mark.parametrize("make", FAMILIES)
def test_registered_and_default(make):
    fam = make()
    assert DISTRIBUTIONS.get(fam.registry_id) is type(fam)
    assert type(default_distribution(fam.action_space)) is type(fam)


@pytest.mark.parametrize(
    ("cls", "space"),
    [
        (Categorical, spaces.Box(-1, 1, (2,))),
        (MultiCategorical, spaces.Discrete(3)),
        (Bernoulli, spaces.MultiDiscrete([2, 2])),
        (DiagGaussian, spaces.Discrete(3)),
    ],
)
def test_wrong_action_space_type_error(cls, space):
    with pytest.raises(TypeError) as info:
        cls(space)
    msg = str(info.value)
    assert cls.__name__ in msg
    assert "action space" in msg


def test_default_distribution_unsupported_space():
    with pytest.raises(TypeError, match="no default distribution"):
        default_distribution(spaces.Dict({"a": spaces.Discrete(2)}))


def test_default_distribution_passes_kwargs_to_gaussian():
    fam = default_distribution(spaces.Box(-1, 1, (3,)), log_std_init=-1.0)
    torch.testing.assert_close(fam.log_std.detach(), torch.full((3,), -1.0))


def test_discrete_families_have_no_rsample():
    dist = Categorical(spaces.Discrete(3))(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="reparameterised"):
        dist.rsample()
    gauss = DiagGaussian(spaces.Box(-1, 1, (3,)))(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="KL"):
        dist.kl(gauss)
